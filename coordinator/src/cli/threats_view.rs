//! How `rampart threats` prints risk registers and diffs.

use rampart_common::time::format_ms;
use rampart_proto::v1::Assessment;

use super::output::print_table;
use super::threats::{EXIT_NEW_RISK, TextFormat, json};
use crate::threat::{self, assess::severity_of, diff};

pub fn print_diff(old: &Assessment, new: &Assessment, output: TextFormat) -> anyhow::Result<i32> {
    let entries = diff::diff(old, new);
    let gate = entries.iter().any(|e| e.gate);
    match output {
        TextFormat::Json => {
            let v: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    let (change, from, to) = match &e.change {
                        diff::Change::Added => ("added", None, None),
                        diff::Change::Removed => ("removed", None, None),
                        diff::Change::Changed { from, to } => {
                            ("changed", Some(from.clone()), Some(to.clone()))
                        }
                    };
                    serde_json::json!({
                        "id": e.id, "title": e.title, "change": change, "from": from, "to": to,
                        "severity": e.severity.as_str(), "status": e.status, "new_open_high_risk": e.gate,
                    })
                })
                .collect();
            print!(
                "{}",
                json(&serde_json::json!({"changes": v, "new_open_high_risk": gate}))?
            );
        }
        TextFormat::Text => {
            if entries.is_empty() {
                println!("no change in risks ({} risk(s))", new.risks.len());
            }
            for e in &entries {
                let what = match &e.change {
                    diff::Change::Added => format!("+ {} {}", e.severity, e.status),
                    diff::Change::Removed => format!("- {} {}", e.severity, e.status),
                    diff::Change::Changed { from, to } => format!("~ {from} → {to}"),
                };
                println!(
                    "{what:<34} {}  {}{}",
                    e.id,
                    e.title,
                    if e.gate {
                        "   <- new open high risk"
                    } else {
                        ""
                    }
                );
            }
            if gate {
                eprintln!(
                    "error: {} new open high or critical risk(s)",
                    entries.iter().filter(|e| e.gate).count()
                );
            }
        }
    }
    Ok(if gate { EXIT_NEW_RISK } else { 0 })
}

pub fn risk_rows(a: &Assessment) -> Vec<Vec<String>> {
    a.risks
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                severity_of(r.residual.as_ref()).to_string(),
                severity_of(r.inherent.as_ref()).to_string(),
                r.status.clone(),
                r.stride.clone(),
                r.title.clone(),
            ]
        })
        .collect()
}

pub fn print_register(a: &Assessment) {
    print_table(
        &["RISK", "RESIDUAL", "INHERENT", "STATUS", "STRIDE", "TITLE"],
        &risk_rows(a),
    );
    let counts: Vec<String> = threat::report::counts(a)
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    println!(
        "\n{} risk(s): {}; model {:?} version {} (applied {} by {}), evidence fresh within {}",
        a.risks.len(),
        counts.join(", "),
        a.model,
        a.version,
        format_ms(a.applied_at_unix_ms),
        a.applied_by,
        humantime::format_duration(std::time::Duration::from_millis(a.freshness_ms))
    );
    for e in &a.unmodeled_exposures {
        println!(
            "unmodeled exposure: {} listens on {}/{} ({}) on {} and no flow to {} explains it",
            e.hostname,
            e.protocol,
            e.port,
            if e.process.is_empty() {
                "unknown process"
            } else {
                &e.process
            },
            e.address,
            e.components.join(", ")
        );
    }
    for h in &a.unmodeled_hosts {
        println!(
            "unmodeled host: {} ({}) — no component selects it",
            h.hostname, h.agent_id
        );
    }
}
