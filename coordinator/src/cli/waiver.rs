//! `rampart waiver`: accept a failing check on some hosts, with a reason, until a date.

use clap::Subcommand;
use rampart_common::time::{format_ms, now_ms};
use rampart_proto::v1::{AddWaiverRequest, ListWaiversRequest, RemoveWaiverRequest};

use super::output::print_table;
use super::{Client, Output, rpc, usage};
use crate::compliance::waiver;

#[derive(Debug, Subcommand)]
pub enum WaiverCommand {
    /// Waive a check: from the next sweep on, a failure (or error) of RULE on the selected hosts
    /// is reported `waived` with the reason and expiry — never `pass`, never hidden — and does
    /// not trip `sweep --fail-on`. The day it expires the failure counts again. Needs the
    /// operator role; audited.
    Add {
        /// The check's id (see `rampart packs show PACK`).
        #[arg(long)]
        rule: String,
        /// Only this pack's check; default: the check in any pack.
        #[arg(long, default_value = "")]
        pack: String,
        /// Only hosts with all these labels: k=v,k2=v2; default: every host.
        #[arg(long, default_value = "")]
        selector: String,
        /// Why the failure is accepted (a ticket, a compensating control): auditors read it.
        #[arg(long)]
        reason: String,
        /// Last day of the waiver is the day before this date: YYYY-MM-DD (00:00 UTC) or an
        /// RFC 3339 time. At most three years ahead.
        #[arg(long, value_parser = waiver::parse_expiry)]
        expires: i64,
    },
    /// List waivers, expired ones included (until removed).
    Ls {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove a waiver: the failure counts again at once. Results it waived keep their record
    /// of it. Needs the operator role; audited.
    Rm { id: String },
}

impl WaiverCommand {
    /// Usage mistakes, found before dialing.
    pub fn check(&self) -> anyhow::Result<()> {
        if let WaiverCommand::Add {
            rule,
            selector,
            reason,
            expires,
            ..
        } = self
        {
            waiver::validate(rule, selector, reason, *expires, now_ms()).map_err(usage)?;
        }
        Ok(())
    }
}

/// "active, 12 days left" or "expired".
fn state(expires: i64, now: i64) -> String {
    if expires <= now {
        return "expired".into();
    }
    let days = (expires - now) / 86_400_000;
    match days {
        0 => "active, ends within a day".into(),
        1 => "active, 1 day left".into(),
        d => format!("active, {d} days left"),
    }
}

pub async fn run(client: Client, cmd: WaiverCommand) -> anyhow::Result<i32> {
    match cmd {
        WaiverCommand::Add {
            rule,
            pack,
            selector,
            reason,
            expires,
        } => {
            let w = client
                .compliance()
                .add_waiver(AddWaiverRequest {
                    rule,
                    pack,
                    selector,
                    reason,
                    expires_unix_ms: expires,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            println!("{}", w.id);
            eprintln!(
                "waiver {}: {} on {} waived until {}",
                w.id,
                w.rule,
                if w.selector.is_empty() {
                    "every host"
                } else {
                    &w.selector
                },
                format_ms(w.expires_unix_ms)
            );
        }
        WaiverCommand::Ls { output } => {
            let r = client
                .compliance()
                .list_waivers(ListWaiversRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&r.waivers)?),
                Output::Table => {
                    let now = now_ms();
                    let rows: Vec<Vec<String>> = r
                        .waivers
                        .iter()
                        .map(|w| {
                            vec![
                                w.id.clone(),
                                w.rule.clone(),
                                if w.pack.is_empty() {
                                    "*".into()
                                } else {
                                    w.pack.clone()
                                },
                                w.selector.clone(),
                                format_ms(w.expires_unix_ms),
                                state(w.expires_unix_ms, now),
                                w.created_by.clone(),
                                w.reason.clone(),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "ID", "RULE", "PACK", "SELECTOR", "EXPIRES", "STATE", "BY", "REASON",
                        ],
                        &rows,
                    );
                }
            }
        }
        WaiverCommand::Rm { id } => {
            client
                .compliance()
                .remove_waiver(RemoveWaiverRequest { id: id.clone() })
                .await
                .map_err(rpc)?;
            println!("removed {id}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_column_counts_whole_days_left() {
        let day = 86_400_000;
        assert_eq!(state(0, 1), "expired");
        assert_eq!(state(day, day), "expired");
        assert_eq!(state(day, 1), "active, ends within a day");
        assert_eq!(state(2 * day + 5, 5), "active, 2 days left");
    }
}
