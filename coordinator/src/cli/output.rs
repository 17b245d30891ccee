//! Rendering for the operator commands: aligned tables and JSON objects.

use rampart_common::time::format_ms;
use rampart_proto::v1::Agent;

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
        "last_seen": format_ms(a.last_seen_unix_ms),
    })
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
