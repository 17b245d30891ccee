//! Rendering for the operator commands: aligned tables and JSON objects.

use rampart_common::time::format_ms;
use rampart_proto::v1::{Agent, FactReport};

/// The state name operators see.
pub fn agent_state(state: i32) -> &'static str {
    use rampart_proto::v1::AgentState as S;
    match S::try_from(state).unwrap_or(S::Unspecified) {
        S::Online => "online",
        S::Offline => "offline",
        S::Revoked => "revoked",
        S::Unspecified => "unknown",
    }
}

/// JSON form of an agent for `-o json`.
pub fn agent_json(a: &Agent) -> serde_json::Value {
    serde_json::json!({
        "id": a.id,
        "hostname": a.hostname,
        "labels": a.labels,
        "state": agent_state(a.state),
        "os": a.os,
        "kernel": a.kernel,
        "arch": a.arch,
        "version": a.version,
        "capabilities": a.capabilities,
        "address": a.address,
        "enrolled": format_ms(a.enrolled_unix_ms),
        "cert_expires_unix_ms": (a.cert_expires_unix_ms != 0).then_some(a.cert_expires_unix_ms),
        "last_seen": format_ms(a.last_seen_unix_ms),
    })
}

/// A one-screen summary of a fact report; `-o json` has everything.
pub fn print_fact_summary(r: &FactReport) {
    let os = r.os.clone().unwrap_or_default();
    let sshd = r.sshd.clone().unwrap_or_default();
    let modules = r.kernel_modules.clone().unwrap_or_default();
    let rows = vec![
        vec!["fact root".to_string(), r.fact_root.clone()],
        vec![
            "os".into(),
            format!(
                "{} ({} {}), kernel {} {}",
                os.pretty_name, os.id, os.version_id, os.kernel, os.arch
            ),
        ],
        vec!["hostname".into(), os.hostname],
        vec!["packages".into(), r.packages.len().to_string()],
        vec![
            "accounts".into(),
            format!(
                "{} ({} with uid 0)",
                r.accounts.len(),
                r.accounts.iter().filter(|a| a.uid == 0).count()
            ),
        ],
        vec!["groups".into(), r.groups.len().to_string()],
        vec!["listening sockets".into(), r.sockets.len().to_string()],
        vec!["processes".into(), r.processes.len().to_string()],
        vec!["units".into(), r.units.len().to_string()],
        vec![
            "sshd".into(),
            if sshd.present {
                format!(
                    "{} settings, {} Match blocks, from {}",
                    sshd.settings.len(),
                    sshd.matches.len(),
                    sshd.source
                )
            } else {
                "absent".into()
            },
        ],
        vec!["sysctl keys".into(), r.sysctl.len().to_string()],
        vec![
            "kernel modules".into(),
            format!(
                "{} loaded, {} blacklisted, {} install-disabled",
                modules.loaded.len(),
                modules.blacklisted.len(),
                modules.install_disabled.len()
            ),
        ],
        vec!["mounts".into(), r.mounts.len().to_string()],
        vec![
            "files".into(),
            format!(
                "{} ({} exist)",
                r.files.len(),
                r.files.iter().filter(|f| f.exists).count()
            ),
        ],
        vec![
            "collected in".into(),
            format!(
                "{:.1} ms",
                f64::from(r.timings.iter().map(|t| t.micros).sum::<u32>()) / 1000.0
            ),
        ],
    ];
    print_table(&["FACT", "VALUE"], &rows);
    for e in &r.errors {
        println!("error in {}: {}", e.collector, e.message);
    }
}

/// Prints rows under headers, columns padded to their widest cell.
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    print!("{}", render_table(headers, rows));
}

fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let t = render_table(
            &["ID", "STATE"],
            &[
                vec!["agent-1".into(), "online".into()],
                vec!["a".into(), "offline".into()],
            ],
        );
        assert_eq!(t, "ID       STATE\nagent-1  online\na        offline\n");
    }
}
