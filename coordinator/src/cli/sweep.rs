//! `rampart sweep`: streams the sweep, shows progress on stderr, prints the report on stdout.

use rampart_proto::v1::{HostResult, SweepRequest, SweepSummary, sweep_event};

use super::output::print_table;
use super::{Client, EXIT_FINDINGS, Output, rpc};
use crate::compliance::Severity;

/// The JSON report: per host its status and every result with its evidence and time.
fn report_json(
    sweep_id: &str,
    pack: &str,
    hosts: &[HostResult],
    summary: &SweepSummary,
    profiled: bool,
) -> serde_json::Value {
    let hosts: Vec<_> = hosts
        .iter()
        .map(|h| {
            let results: Vec<_> = h
                .results
                .iter()
                .map(|r| {
                    let mut v = serde_json::json!({
                        "rule": r.rule,
                        "title": r.title,
                        "status": r.status,
                        "severity": r.severity,
                        "evidence": serde_json::from_str::<serde_json::Value>(&r.evidence_json).unwrap_or_default(),
                    });
                    if profiled {
                        v["micros"] = r.micros.into();
                    }
                    v
                })
                .collect();
            serde_json::json!({
                "agent_id": h.agent_id,
                "hostname": h.hostname,
                "status": h.status,
                "message": h.message,
                "collect_ms": h.collect_ms,
                "eval_micros": h.eval_micros,
                "results": results,
            })
        })
        .collect();
    serde_json::json!({
        "sweep_id": sweep_id,
        "pack": pack,
        "hosts": hosts,
        "summary": summary,
    })
}

fn severity_of(s: &str) -> Severity {
    s.parse().unwrap_or(Severity::Critical)
}

/// Whether `--fail-on` trips: a failed or errored check at or above `level`, or an unchecked host.
pub fn trips(hosts: &[HostResult], level: Severity) -> bool {
    hosts.iter().any(|h| {
        h.status != "ok"
            || h.results.iter().any(|r| {
                matches!(r.status.as_str(), "fail" | "error") && severity_of(&r.severity) >= level
            })
    })
}

pub async fn run(
    client: Client,
    req: SweepRequest,
    fail_on: Option<Severity>,
    output: Output,
) -> anyhow::Result<i32> {
    let profiled = req.profile;
    let mut stream = client
        .compliance()
        .sweep(req)
        .await
        .map_err(rpc)?
        .into_inner();
    let (mut sweep_id, mut pack, mut total) = (String::new(), String::new(), 0u32);
    let mut hosts = Vec::new();
    let mut summary = None;
    while let Some(ev) = stream.message().await.map_err(rpc)? {
        match ev.event {
            Some(sweep_event::Event::Started(s)) => {
                eprintln!(
                    "sweep {} with pack {}: {} host(s)",
                    s.sweep_id, s.pack, s.hosts
                );
                (sweep_id, pack, total) = (s.sweep_id, s.pack, s.hosts);
            }
            Some(sweep_event::Event::Host(h)) => {
                let count = |s: &str| h.results.iter().filter(|r| r.status == s).count();
                let line = if h.status == "ok" {
                    format!(
                        "{} pass, {} fail, {} error, {} n/a",
                        count("pass"),
                        count("fail"),
                        count("error"),
                        count("not_applicable")
                    )
                } else {
                    format!("UNREACHABLE: {}", h.message)
                };
                eprintln!(
                    "[{}/{total}] {} ({}): {line}",
                    hosts.len() + 1,
                    h.hostname,
                    h.agent_id
                );
                hosts.push(h);
            }
            Some(sweep_event::Event::Summary(s)) => summary = Some(s),
            None => {}
        }
    }
    let summary = summary.ok_or_else(|| {
        anyhow::anyhow!("the sweep ended without a summary; see the coordinator's log")
    })?;
    hosts.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report_json(
                &sweep_id, &pack, &hosts, &summary, profiled
            ))?
        ),
        Output::Table => {
            let rows: Vec<Vec<String>> = hosts
                .iter()
                .map(|h| {
                    let count = |s: &str| {
                        h.results
                            .iter()
                            .filter(|r| r.status == s)
                            .count()
                            .to_string()
                    };
                    vec![
                        h.hostname.clone(),
                        h.agent_id.clone(),
                        h.status.clone(),
                        count("pass"),
                        count("fail"),
                        count("error"),
                        count("not_applicable"),
                    ]
                })
                .collect();
            print_table(
                &["HOST", "AGENT", "STATUS", "PASS", "FAIL", "ERROR", "N/A"],
                &rows,
            );
            let findings: Vec<Vec<String>> = hosts
                .iter()
                .flat_map(|h| {
                    h.results
                        .iter()
                        .filter(|r| r.status == "fail" || r.status == "error")
                        .map(move |r| {
                            vec![
                                h.hostname.clone(),
                                r.severity.clone(),
                                r.status.clone(),
                                r.rule.clone(),
                                r.title.clone(),
                            ]
                        })
                })
                .collect();
            if !findings.is_empty() {
                println!();
                print_table(&["HOST", "SEVERITY", "STATUS", "RULE", "TITLE"], &findings);
            }
            println!(
                "\n{} host(s), {} unreachable; {} pass, {} fail, {} error, {} n/a in {} ms",
                summary.hosts,
                summary.unreachable,
                summary.pass,
                summary.fail,
                summary.error,
                summary.not_applicable,
                summary.duration_ms
            );
        }
    }
    Ok(match fail_on {
        Some(level) if trips(&hosts, level) => EXIT_FINDINGS,
        _ => 0,
    })
}
