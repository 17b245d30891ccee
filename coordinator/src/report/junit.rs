//! JUnit XML, the format CI systems (Jenkins, GitLab, GitHub Actions reporters) read: one
//! `<testsuite>` per host, one `<testcase>` per check. A failed check is a `<failure>`, a check
//! that could not decide is an `<error>`, not applicable and waived are `<skipped>` (a waived
//! one says so, with the waiver's reason and expiry), and an unreachable host
//! is a suite with one errored `host-reachable` case, so it can never look green.

use quick_xml::escape::escape;

use super::SweepReport;

fn attr(s: &str) -> String {
    escape(s).into_owned()
}

pub fn junit(r: &SweepReport) -> String {
    let s = r.summary;
    let unreachable = r.hosts.iter().filter(|h| h.status != "ok").count();
    let tests: usize = r
        .hosts
        .iter()
        .map(|h| if h.status == "ok" { h.results.len() } else { 1 })
        .sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" timestamp=\"{}\">\n",
        attr(&format!("rampart sweep {} ({})", r.sweep_id, r.pack)),
        s.fail,
        s.error as usize + unreachable,
        s.not_applicable + s.waived,
        f64::from(s.duration_ms) / 1000.0,
        super::rfc3339(r.started_unix_ms),
    ));
    for h in r.hosts {
        let count = |st: &str| h.results.iter().filter(|v| v.status == st).count();
        let reachable = h.status == "ok";
        out.push_str(&format!(
            "  <testsuite name=\"{}\" hostname=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.6}\" timestamp=\"{}\">\n",
            attr(&format!("{} ({})", h.hostname, h.agent_id)),
            attr(&h.hostname),
            if reachable { h.results.len() } else { 1 },
            count("fail"),
            if reachable { count("error") } else { 1 },
            count("not_applicable") + count(crate::compliance::waiver::WAIVED),
            f64::from(h.eval_micros) / 1e6,
            super::rfc3339(r.started_unix_ms),
        ));
        out.push_str(&format!(
            "    <properties>\n      <property name=\"agent_id\" value=\"{}\"/>\n      <property name=\"pack\" value=\"{}\"/>\n      <property name=\"sweep_id\" value=\"{}\"/>\n",
            attr(&h.agent_id),
            attr(r.pack),
            attr(r.sweep_id)
        ));
        for (k, v) in &h.labels {
            out.push_str(&format!(
                "      <property name=\"label.{}\" value=\"{}\"/>\n",
                attr(k),
                attr(v)
            ));
        }
        out.push_str("    </properties>\n");
        let classname = attr(&format!("{}.{}", r.pack, h.hostname));
        if !reachable {
            out.push_str(&format!(
                "    <testcase name=\"host-reachable\" classname=\"{classname}\" time=\"0\">\n      <error type=\"unreachable\" message=\"{}\">{}</error>\n    </testcase>\n",
                attr(&format!("host {} was not checked", h.hostname)),
                attr(&h.message)
            ));
        }
        for v in h.results.iter().filter(|_| reachable) {
            let title = if v.title.is_empty() {
                &v.rule
            } else {
                &v.title
            };
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{classname}\" time=\"{:.6}\">\n",
                attr(&v.rule),
                v.micros as f64 / 1e6
            ));
            let body = format!(
                "{title}\nseverity: {}\nevidence: {}",
                v.severity, v.evidence_json
            );
            match v.status.as_str() {
                "fail" => out.push_str(&format!(
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                    attr(&v.severity),
                    attr(title),
                    attr(&body)
                )),
                "error" => out.push_str(&format!(
                    "      <error type=\"check-error\" message=\"{}\">{}</error>\n",
                    attr(title),
                    attr(&body)
                )),
                "not_applicable" => out.push_str(&format!(
                    "      <skipped message=\"{}\"/>\n",
                    attr(&format!("not applicable: {}", v.evidence_json))
                )),
                crate::compliance::waiver::WAIVED => out.push_str(&format!(
                    "      <skipped message=\"{}\">{}</skipped>\n",
                    attr(
                        &v.waiver
                            .as_ref()
                            .map(super::waiver_text)
                            .unwrap_or_else(|| "waived".into())
                    ),
                    attr(&body)
                )),
                _ => {}
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use quick_xml::Reader;
    use quick_xml::events::Event;

    use super::*;

    type Element = (String, std::collections::BTreeMap<String, String>);

    /// Parses the document with a real XML parser (end names checked, entities resolved) and
    /// returns every element's path and attributes; panics on malformed XML.
    fn elements(xml: &str) -> Vec<Element> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<String> = Vec::new();
        let mut out = Vec::new();
        loop {
            let (e, empty) = match reader.read_event().unwrap() {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    stack.pop();
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.unescape_value().unwrap().into_owned(),
                    )
                })
                .collect();
            stack.push(name);
            out.push((stack.join("/"), attrs));
            if empty {
                stack.pop();
            }
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
        out
    }

    #[test]
    fn junit_is_well_formed_and_counts_match() {
        let xml = super::super::fixture::with_report(junit);
        let els = elements(&xml);
        let root = &els.iter().find(|e| e.0 == "testsuites").unwrap().1;
        assert_eq!(root["tests"], "6");
        assert_eq!(root["failures"], "1");
        assert_eq!(
            root["errors"], "2",
            "the errored check and the unreachable host"
        );
        assert_eq!(root["skipped"], "2", "n/a and waived");
        let suites: Vec<_> = els.iter().filter(|e| e.0.ends_with("testsuite")).collect();
        assert_eq!(suites.len(), 2);
        assert_eq!(suites[1].1["errors"], "1");
        let cases: Vec<_> = els.iter().filter(|e| e.0.ends_with("testcase")).collect();
        assert_eq!(cases.len(), 6);
        let failure = els.iter().find(|e| e.0.ends_with("failure")).unwrap();
        assert_eq!(failure.1["message"], "title of sshd-permit-root-login <&>");
        assert_eq!(failure.1["type"], "high");
        let errors: Vec<_> = els.iter().filter(|e| e.0.ends_with("error")).collect();
        assert!(errors.iter().any(|e| e.1["type"] == "unreachable"));
        assert!(errors.iter().any(|e| e.1["type"] == "check-error"));
        let skipped: Vec<_> = els.iter().filter(|e| e.0.ends_with("skipped")).collect();
        assert_eq!(skipped.len(), 2);
        assert!(skipped[1].1["message"].starts_with("waived (fail accepted) until 2027-01-15"));
    }
}
