//! Logging: journald's `[Journal]` settings (with drop-ins) and rsyslog's configuration
//! (`/etc/rsyslog.conf` and what it includes): global settings such as `FileCreateMode` (legacy
//! `$FileCreateMode 0640` or a RainerScript parameter), the modules it loads (an `imtcp` means it
//! receives logs from the network) and its selector rules.

use rampart_proto::v1::LoggingFacts;

use super::{CollectResult, FactSource, conf};

const RSYSLOG: &str = "/etc/rsyslog.conf";
/// Include depth at which reading stops.
const MAX_DEPTH: usize = 4;

/// Joins RainerScript statements spread over lines (until parentheses balance).
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for line in conf::lines(text) {
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(line);
        depth += line.matches('(').count() as i32 - line.matches(')').count() as i32;
        if depth <= 0 {
            out.push(std::mem::take(&mut cur));
            depth = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `name="value"` parameters of a RainerScript statement such as `module(load="imtcp")`.
fn params(stmt: &str) -> Vec<(String, String)> {
    let inner = stmt
        .split_once('(')
        .map(|(_, rest)| rest.trim_end().trim_end_matches(')'))
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut rest = inner;
    while let Some((k, after)) = rest.split_once('=') {
        let key = k.split_whitespace().last().unwrap_or_default().to_string();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            q.split_once('"').unwrap_or((q, ""))
        } else {
            after.split_once(char::is_whitespace).unwrap_or((after, ""))
        };
        out.push((key, value.to_string()));
        rest = next;
    }
    out
}

fn rsyslog_file(src: &FactSource, path: &str, depth: usize, facts: &mut LoggingFacts) {
    if facts.files.iter().any(|f| f == path) {
        return;
    }
    let Ok(Some(text)) = src.read_optional(path) else {
        return;
    };
    facts.files.push(path.to_string());
    for stmt in statements(&text) {
        if let Some(rest) = stmt.strip_prefix('$') {
            let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let v = v.trim().to_string();
            match k {
                "IncludeConfig" if depth < MAX_DEPTH => {
                    for f in conf::glob(src, &v) {
                        rsyslog_file(src, &f, depth + 1, facts);
                    }
                }
                "ModLoad" => facts.rsyslog_modules.push(v),
                _ => {
                    facts.rsyslog.insert(k.to_string(), v);
                }
            }
        } else if let Some((word, _)) = stmt.split_once('(')
            && matches!(word.trim(), "module" | "include" | "global" | "input")
        {
            let params = params(&stmt);
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            match word.trim() {
                "include" if depth < MAX_DEPTH => {
                    if let Some(f) = get("file") {
                        for f in conf::glob(src, &f) {
                            rsyslog_file(src, &f, depth + 1, facts);
                        }
                    }
                }
                "module" => {
                    if let Some(m) = get("load") {
                        facts.rsyslog_modules.push(m);
                    }
                    for (k, v) in params.iter().filter(|(k, _)| k != "load") {
                        facts.rsyslog.insert(k.clone(), v.clone());
                    }
                }
                "input" => {
                    if let Some(t) = get("type") {
                        facts.rsyslog_modules.push(t);
                    }
                }
                _ => {
                    for (k, v) in params {
                        facts.rsyslog.insert(k, v);
                    }
                }
            }
        } else if stmt
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('.') && !w.contains('(') && !w.starts_with(':'))
        {
            facts
                .rsyslog_rules
                .push(stmt.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
}

pub fn collect(src: &FactSource) -> CollectResult<LoggingFacts> {
    let mut facts = LoggingFacts {
        journald: conf::systemd_section(src, "journald", "Journal"),
        ..Default::default()
    };
    rsyslog_file(src, RSYSLOG, 0, &mut facts);
    facts.rsyslog_present = !facts.files.is_empty();
    facts.rsyslog_modules.sort();
    facts.rsyslog_modules.dedup();
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn journald_and_rsyslog_with_includes() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "etc/systemd/journald.conf",
            "[Journal]\n#Storage=auto\nCompress=yes\n",
        );
        write(
            r,
            "etc/rsyslog.conf",
            "module(load=\"imuxsock\")\nmodule(\n  load=\"builtin:omfile\"\n  FileCreateMode=\"0600\"\n)\n$FileCreateMode 0640\n$IncludeConfig /etc/rsyslog.d/*.conf\n",
        );
        write(
            r,
            "etc/rsyslog.d/50-default.conf",
            "auth,authpriv.*\t\t\t/var/log/auth.log\n*.*;auth,authpriv.none  -/var/log/syslog\n",
        );
        write(
            r,
            "etc/rsyslog.d/60-remote.conf",
            "$ModLoad imtcp\n$InputTCPServerRun 514\ninclude(file=\"/etc/rsyslog.d/50-default.conf\")\n",
        );
        let l = collect(&FactSource::fixture(r)).unwrap();
        assert_eq!(l.journald["Compress"], "yes");
        assert!(!l.journald.contains_key("Storage"));
        assert!(l.rsyslog_present);
        assert_eq!(l.rsyslog["FileCreateMode"], "0640");
        assert_eq!(l.rsyslog_modules, ["builtin:omfile", "imtcp", "imuxsock"]);
        assert_eq!(
            l.rsyslog_rules,
            [
                "auth,authpriv.* /var/log/auth.log",
                "*.*;auth,authpriv.none -/var/log/syslog"
            ]
        );
        assert_eq!(l.files.len(), 3);
        assert!(
            !collect(&FactSource::fixture("/nonexistent"))
                .unwrap()
                .rsyslog_present
        );
    }
}
