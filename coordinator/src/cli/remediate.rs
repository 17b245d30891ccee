//! `rampart remediate`: plans (dry run) or applies one rule's remediation on the selected hosts,
//! and `rampart remediate rollback RUN` restores what a run changed. Progress goes to stderr, the
//! per-host table (or JSON) to stdout.

use clap::{Args, Subcommand};
use rampart_proto::v1::{
    HostRemediation, RemediateRequest, RollbackRemediationRequest, remediate_event,
};

use super::output::print_table;
use super::{Client, EXIT_NOT_FIXED, Output, rpc, usage};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RemediateArgs {
    #[command(subcommand)]
    pub command: Option<RemediateCommand>,
    /// The rule to remediate (see `rampart packs show linux-baseline`).
    #[arg(long)]
    pub rule: Option<String>,
    /// Only agents with all these labels: k=v,k2=v2.
    #[arg(long, default_value = "")]
    pub selector: String,
    /// Policy pack holding the rule.
    #[arg(long, default_value = crate::api::compliance::DEFAULT_PACK)]
    pub pack: String,
    /// Change the hosts (operator role; audited; backed up for `remediate rollback`). Without it,
    /// only print each host's planned change.
    #[arg(long)]
    pub apply: bool,
    /// How long each host gets for each step (facts, change, facts again).
    #[arg(long, default_value = "30s", value_parser = rampart_common::time::parse_duration)]
    pub timeout: std::time::Duration,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum RemediateCommand {
    /// Restore, from the agents' backups, what an applied run changed, and check the rule again.
    Rollback {
        /// The run id `remediate --apply` printed.
        run_id: String,
        #[arg(long, default_value = "30s", value_parser = rampart_common::time::parse_duration)]
        timeout: std::time::Duration,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
}

impl RemediateArgs {
    pub fn check(&self) -> anyhow::Result<()> {
        if self.command.is_none() {
            if self.rule.as_deref().unwrap_or_default().is_empty() {
                return Err(usage(
                    "name the rule to remediate with --rule ID (`rampart packs show PACK` lists them), or use `rampart remediate rollback RUN`",
                ));
            }
            rampart_common::labels::Selector::parse(&self.selector).map_err(usage)?;
        }
        Ok(())
    }
}

fn millis(d: std::time::Duration) -> u32 {
    d.as_millis().min(u128::from(u32::MAX)) as u32
}

/// Statuses that mean the run did what was asked on that host.
fn ok_status(s: &str) -> bool {
    matches!(s, "compliant" | "planned" | "fixed" | "restored")
}

pub async fn run(client: Client, args: RemediateArgs) -> anyhow::Result<i32> {
    let (stream, output) = match args.command {
        Some(RemediateCommand::Rollback {
            run_id,
            timeout,
            output,
        }) => (
            client
                .compliance()
                .rollback_remediation(RollbackRemediationRequest {
                    run_id,
                    timeout_ms: millis(timeout),
                })
                .await
                .map_err(rpc)?
                .into_inner(),
            output,
        ),
        None => (
            client
                .compliance()
                .remediate(RemediateRequest {
                    rule: args.rule.unwrap_or_default(),
                    selector: args.selector,
                    pack: args.pack,
                    apply: args.apply,
                    timeout_ms: millis(args.timeout),
                })
                .await
                .map_err(rpc)?
                .into_inner(),
            args.output,
        ),
    };
    let mut stream = stream;
    let mut run_id = String::new();
    let mut mode = String::new();
    let mut total = 0;
    let mut hosts: Vec<HostRemediation> = Vec::new();
    let mut summary = None;
    while let Some(ev) = stream.message().await.map_err(rpc)? {
        match ev.event {
            Some(remediate_event::Event::Started(s)) => {
                let what = match (s.mode.as_str(), s.apply) {
                    ("rollback", _) => "rollback of",
                    (_, true) => "applying",
                    _ => "dry run of",
                };
                eprintln!(
                    "run {}: {what} {} ({}) on {} host(s)",
                    s.run_id, s.rule, s.pack, s.hosts
                );
                (run_id, mode, total) = (s.run_id, s.mode, s.hosts);
            }
            Some(remediate_event::Event::Host(h)) => {
                eprintln!(
                    "[{}/{total}] {} ({}): {}{}",
                    hosts.len() + 1,
                    h.hostname,
                    h.agent_id,
                    h.status,
                    if h.message.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", h.message)
                    }
                );
                hosts.push(h);
            }
            Some(remediate_event::Event::Summary(s)) => summary = Some(s),
            None => {}
        }
    }
    let summary = summary.ok_or_else(|| {
        anyhow::anyhow!("the run ended without a summary; see the coordinator's log")
    })?;
    hosts.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "run_id": run_id,
                "mode": mode,
                "hosts": hosts,
                "summary": summary,
            }))?
        ),
        Output::Table => {
            let rows: Vec<Vec<String>> = hosts
                .iter()
                .map(|h| {
                    vec![
                        h.hostname.clone(),
                        h.agent_id.clone(),
                        h.status.clone(),
                        match (h.before.is_empty(), h.after.is_empty()) {
                            (_, false) => format!(
                                "{} → {}",
                                if h.before.is_empty() { "?" } else { &h.before },
                                h.after
                            ),
                            (false, true) => h.before.clone(),
                            (true, true) => "-".into(),
                        },
                        if h.changes.is_empty() {
                            h.message.clone()
                        } else {
                            h.changes.join("; ")
                        },
                    ]
                })
                .collect();
            print_table(&["HOST", "AGENT", "STATUS", "RULE", "CHANGES"], &rows);
            let counts: Vec<String> = summary
                .statuses
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect();
            println!(
                "\nrun {run_id}: {} in {} ms",
                counts.join(", "),
                summary.duration_ms
            );
            if mode == "remediate"
                && hosts
                    .iter()
                    .any(|h| h.status == "fixed" || h.status == "not_fixed")
            {
                println!("undo with: rampart remediate rollback {run_id}");
            }
        }
    }
    Ok(if hosts.iter().all(|h| ok_status(&h.status)) {
        0
    } else {
        EXIT_NOT_FIXED
    })
}
