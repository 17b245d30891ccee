//! `rampart compliance status|drift|history`: stored results over time.

use rampart_common::time::{format_ms, now_ms};
use rampart_proto::v1::{
    AddScheduleRequest, DriftRequest, HistoryRequest, HostScore, ListSchedulesRequest,
    RemoveScheduleRequest, StatusRequest,
};

use super::output::print_table;
use super::{Client, ComplianceCommand, Output, ScheduleCommand, rpc, usage};

/// `--since`: a duration ago, or an RFC 3339 time.
pub fn parse_since(s: &str) -> anyhow::Result<i64> {
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now_ms() - d.as_millis() as i64);
    }
    let t = humantime::parse_rfc3339_weak(s).map_err(|_| {
        usage(format!(
            "--since {s:?}: expected a duration (24h, 7d) or a time (2026-11-30T08:00:00Z)"
        ))
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

fn score_rows(scores: &[HostScore]) -> Vec<Vec<String>> {
    scores
        .iter()
        .map(|h| {
            vec![
                h.hostname.clone(),
                h.agent_id.clone(),
                format!("{:.1}%", h.score),
                h.pass.to_string(),
                h.fail.to_string(),
                h.error.to_string(),
                h.not_applicable.to_string(),
                format_ms(h.checked_unix_ms),
                h.sweep_id.clone(),
            ]
        })
        .collect()
}

const SCORE_HEADERS: [&str; 9] = [
    "HOST", "AGENT", "SCORE", "PASS", "FAIL", "ERROR", "N/A", "CHECKED", "SWEEP",
];

pub async fn run(client: Client, cmd: ComplianceCommand) -> anyhow::Result<i32> {
    match cmd {
        ComplianceCommand::Status { output, group_by } => {
            let r = client
                .compliance()
                .status(StatusRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => {
                    let mut j = serde_json::json!({"hosts": r.hosts, "rules": r.rules});
                    if let Some(label) = &group_by {
                        j["groups"] = serde_json::json!({
                            "label": label,
                            "groups": crate::report::score_groups(&r.hosts, label),
                        });
                    }
                    println!("{}", serde_json::to_string_pretty(&j)?)
                }
                Output::Table => {
                    print_table(&SCORE_HEADERS, &score_rows(&r.hosts));
                    if let Some(label) = &group_by {
                        println!();
                        super::sweep::print_groups(
                            label,
                            &crate::report::score_groups(&r.hosts, label),
                        );
                    }
                    println!();
                    let rows: Vec<Vec<String>> = r
                        .rules
                        .iter()
                        .map(|x| {
                            vec![
                                x.rule.clone(),
                                x.severity.clone(),
                                x.pass.to_string(),
                                x.fail.to_string(),
                                x.error.to_string(),
                                x.not_applicable.to_string(),
                            ]
                        })
                        .collect();
                    print_table(&["RULE", "SEVERITY", "PASS", "FAIL", "ERROR", "N/A"], &rows);
                }
            }
        }
        ComplianceCommand::Drift { since, output } => {
            let since_unix_ms = since.as_deref().map(parse_since).transpose()?.unwrap_or(0);
            let r = client
                .compliance()
                .drift(DriftRequest { since_unix_ms })
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => {
                    let events: Vec<_> = r
                        .events
                        .iter()
                        .map(|e| {
                            serde_json::json!({
                                "agent_id": e.agent_id, "hostname": e.hostname, "rule": e.rule,
                                "from": e.from_status, "to": e.to_status, "at": format_ms(e.at_unix_ms), "sweep_id": e.sweep_id,
                                "evidence_before": serde_json::from_str::<serde_json::Value>(&e.evidence_before_json).unwrap_or_default(),
                                "evidence_after": serde_json::from_str::<serde_json::Value>(&e.evidence_after_json).unwrap_or_default(),
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&events)?);
                }
                Output::Table => {
                    let rows: Vec<Vec<String>> = r
                        .events
                        .iter()
                        .map(|e| {
                            vec![
                                format_ms(e.at_unix_ms),
                                e.hostname.clone(),
                                e.rule.clone(),
                                format!("{} -> {}", e.from_status, e.to_status),
                                format!("{} -> {}", e.evidence_before_json, e.evidence_after_json),
                            ]
                        })
                        .collect();
                    print_table(&["WHEN", "HOST", "RULE", "FLIP", "EVIDENCE"], &rows);
                }
            }
        }
        ComplianceCommand::History { id, output } => {
            let r = client
                .compliance()
                .history(HistoryRequest { agent_id: id })
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&r.sweeps)?),
                Output::Table => print_table(&SCORE_HEADERS, &score_rows(&r.sweeps)),
            }
        }
    }
    Ok(0)
}

pub async fn schedule(client: Client, cmd: ScheduleCommand) -> anyhow::Result<i32> {
    match cmd {
        ScheduleCommand::Add {
            cron,
            selector,
            pack,
        } => {
            let s = client
                .compliance()
                .add_schedule(AddScheduleRequest {
                    cron,
                    selector,
                    pack,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            println!("{}", s.id);
            eprintln!(
                "schedule {} ({} UTC, pack {}), next run {}",
                s.id,
                s.cron,
                s.pack,
                format_ms(s.next_run_unix_ms)
            );
        }
        ScheduleCommand::Ls { output } => {
            let r = client
                .compliance()
                .list_schedules(ListSchedulesRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&r.schedules)?),
                Output::Table => {
                    let rows: Vec<Vec<String>> = r
                        .schedules
                        .iter()
                        .map(|s| {
                            vec![
                                s.id.clone(),
                                s.cron.clone(),
                                s.selector.clone(),
                                s.pack.clone(),
                                format_ms(s.last_run_unix_ms),
                                s.last_sweep_id.clone(),
                                format_ms(s.next_run_unix_ms),
                            ]
                        })
                        .collect();
                    print_table(
                        &[
                            "ID",
                            "CRON (UTC)",
                            "SELECTOR",
                            "PACK",
                            "LAST RUN",
                            "LAST SWEEP",
                            "NEXT RUN",
                        ],
                        &rows,
                    );
                }
            }
        }
        ScheduleCommand::Rm { id } => {
            client
                .compliance()
                .remove_schedule(RemoveScheduleRequest { id: id.clone() })
                .await
                .map_err(rpc)?;
            println!("removed {id}");
        }
    }
    Ok(0)
}
