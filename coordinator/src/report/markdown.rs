//! Markdown, for tickets and pull requests: a summary table per host, then every finding
//! (failed and errored checks) with its evidence, the waived ones with reason and expiry, then
//! unreachable hosts.

use super::SweepReport;

/// Escapes what would break a table cell or inline formatting.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub fn markdown(r: &SweepReport) -> String {
    let s = r.summary;
    let mut out = format!(
        "# Compliance sweep `{}`\n\nPack **{}** {} — {} host(s), {} unreachable: {} pass, {} fail, {} error, {} not applicable, {} waived ({} ms).\n\n",
        r.sweep_id,
        cell(r.pack),
        cell(r.pack_version),
        s.hosts,
        s.unreachable,
        s.pass,
        s.fail,
        s.error,
        s.not_applicable,
        s.waived,
        s.duration_ms
    );
    out.push_str("## Hosts\n\n| Host | Agent | Labels | Status | Pass | Fail | Error | N/A | Waived |\n|---|---|---|---|---:|---:|---:|---:|---:|\n");
    for h in r.hosts {
        let count = |st: &str| h.results.iter().filter(|v| v.status == st).count();
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&h.hostname),
            cell(&h.agent_id),
            cell(&super::labels_text(&h.labels)),
            if h.status == "ok" {
                "checked".to_string()
            } else {
                format!("**{}**", cell(&h.status))
            },
            count("pass"),
            count("fail"),
            count("error"),
            count("not_applicable"),
            count(crate::compliance::waiver::WAIVED)
        ));
    }
    let findings: Vec<_> = r
        .hosts
        .iter()
        .flat_map(|h| {
            h.results
                .iter()
                .filter(|v| v.status == "fail" || v.status == "error")
                .map(move |v| (h, v))
        })
        .collect();
    out.push_str(&format!("\n## Findings ({})\n\n", findings.len()));
    if findings.is_empty() {
        out.push_str("No check failed.\n");
    } else {
        out.push_str(
            "| Severity | Host | Rule | Status | Title | Evidence |\n|---|---|---|---|---|---|\n",
        );
        for (h, v) in &findings {
            out.push_str(&format!(
                "| {} | {} | `{}` | {} | {} | `{}` |\n",
                cell(&v.severity),
                cell(&h.hostname),
                cell(&v.rule),
                cell(&v.status),
                cell(&v.title),
                cell(&v.evidence_json).replace('`', "'")
            ));
        }
    }
    let waived: Vec<_> = r
        .hosts
        .iter()
        .flat_map(|h| {
            h.results
                .iter()
                .filter_map(move |v| v.waiver.as_ref().map(|w| (h, v, w)))
        })
        .collect();
    if !waived.is_empty() {
        out.push_str(&format!("\n## Waived ({})\n\n", waived.len()));
        out.push_str("| Host | Rule | Was | Reason | Expires | By | Waiver |\n|---|---|---|---|---|---|---|\n");
        for (h, v, w) in waived {
            out.push_str(&format!(
                "| {} | `{}` | {} | {} | {} | {} | `{}` |\n",
                cell(&h.hostname),
                cell(&v.rule),
                cell(&w.was),
                cell(&w.reason),
                super::rfc3339(w.expires_unix_ms),
                cell(&w.created_by),
                cell(&w.id)
            ));
        }
    }
    let unreachable: Vec<_> = r.hosts.iter().filter(|h| h.status != "ok").collect();
    if !unreachable.is_empty() {
        out.push_str(&format!("\n## Not checked ({})\n\n", unreachable.len()));
        for h in unreachable {
            out.push_str(&format!(
                "- **{}** (`{}`): {}\n",
                cell(&h.hostname),
                cell(&h.agent_id),
                cell(&h.message)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

    use super::*;

    #[test]
    fn markdown_parses_into_the_expected_tables() {
        let md = super::super::fixture::with_report(markdown);
        // Parse with a CommonMark + GFM tables parser and collect each table's rows of cells.
        let mut tables: Vec<Vec<Vec<String>>> = Vec::new();
        let mut headings = Vec::new();
        let mut in_heading = false;
        let mut cell_text: Option<String> = None;
        for ev in Parser::new_ext(&md, Options::ENABLE_TABLES) {
            match ev {
                Event::Start(Tag::Table(_)) => tables.push(Vec::new()),
                Event::Start(Tag::TableHead) | Event::Start(Tag::TableRow) => {
                    tables.last_mut().unwrap().push(Vec::new())
                }
                Event::Start(Tag::TableCell) => cell_text = Some(String::new()),
                Event::End(TagEnd::TableCell) => {
                    let t = cell_text.take().unwrap();
                    tables.last_mut().unwrap().last_mut().unwrap().push(t);
                }
                Event::Start(Tag::Heading { .. }) => {
                    in_heading = true;
                    headings.push(String::new());
                }
                Event::End(TagEnd::Heading(_)) => in_heading = false,
                Event::Text(t) | Event::Code(t) => {
                    if let Some(c) = cell_text.as_mut() {
                        c.push_str(&t);
                    } else if in_heading {
                        headings.last_mut().unwrap().push_str(&t);
                    }
                }
                _ => {}
            }
        }
        assert_eq!(
            headings,
            [
                "Compliance sweep sweep-abc",
                "Hosts",
                "Findings (2)",
                "Waived (1)",
                "Not checked (1)"
            ]
        );
        assert_eq!(tables.len(), 3);
        let hosts = &tables[0];
        assert_eq!(hosts.len(), 3, "header and two hosts");
        assert_eq!(
            hosts[1],
            [
                "web-1",
                "agent-1",
                "env=prod,team/owner=web-ops",
                "checked",
                "1",
                "1",
                "1",
                "1",
                "1"
            ]
        );
        assert_eq!(hosts[2][3], "unreachable");
        let findings = &tables[1];
        assert_eq!(findings.len(), 3);
        assert_eq!(
            findings[1][0..4],
            ["high", "web-1", "sshd-permit-root-login", "fail"]
        );
        // Markup in titles stays text: the cell reads exactly as the title.
        assert_eq!(findings[1][4], "title of sshd-permit-root-login <&>");
        let waived = &tables[2];
        assert_eq!(
            waived[1][0..5],
            [
                "web-1",
                "sysctl-rp-filter",
                "fail",
                "router hosts forward <by design>; ticket NET-7",
                "2027-01-15T08:00:00.000Z"
            ]
        );
    }
}
