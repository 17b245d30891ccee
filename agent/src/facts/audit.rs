//! auditd: its configuration (`/etc/audit/auditd.conf`), the rules on disk
//! (`/etc/audit/rules.d/*.rules`, in the order augenrules loads them) and, on the real host, the
//! rules the kernel has loaded (`auditctl -l`). Both rule sets are parsed into the same shape so
//! a policy can ask "is this watched, on disk and loaded?".

use rampart_proto::v1::{AuditFacts, AuditRule};

use super::{CollectResult, FactSource, conf, run_command};

/// Parses one rule line in auditctl syntax (as written in rules files, or as `auditctl -l`
/// prints it).
pub fn parse_rule(line: &str) -> Option<AuditRule> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let first = *words.first()?;
    let mut rule = AuditRule {
        text: words.join(" "),
        ..Default::default()
    };
    rule.kind = match first {
        "-w" | "-W" => "watch",
        "-a" | "-A" => "syscall",
        _ if first.starts_with('-') => "control",
        _ => return None,
    }
    .to_string();
    let mut i = 0;
    while i < words.len() {
        let value = words.get(i + 1).copied().unwrap_or_default();
        match words[i] {
            "-w" | "-W" => rule.path = value.to_string(),
            "-p" => rule.perms = value.to_string(),
            "-a" | "-A" => rule.action = value.to_string(),
            "-k" => rule.key = value.to_string(),
            "-S" => rule
                .syscalls
                .extend(value.split(',').filter(|s| !s.is_empty()).map(String::from)),
            "-F" => {
                if let Some(k) = value.strip_prefix("key=") {
                    rule.key = k.to_string();
                } else {
                    if let Some(p) = value
                        .strip_prefix("path=")
                        .or_else(|| value.strip_prefix("dir="))
                    {
                        rule.path = p.to_string();
                    }
                    if let Some(p) = value.strip_prefix("perm=") {
                        rule.perms = p.to_string();
                    }
                    rule.fields.push(value.to_string());
                }
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Some(rule)
}

pub fn collect(src: &FactSource) -> CollectResult<AuditFacts> {
    let mut facts = AuditFacts::default();
    let mut config = std::collections::HashMap::new();
    conf::settings_of(src, "/etc/audit/auditd.conf", &mut config);
    facts.config = config
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    facts.rule_files = conf::glob(src, "/etc/audit/rules.d/*.rules");
    for f in &facts.rule_files {
        let text = src.read(f).map_err(|e| format!("{f}: {e}"))?;
        facts
            .disk_rules
            .extend(conf::lines(&text).filter_map(parse_rule));
    }
    if src.commands_allowed()
        && let Some(out) = run_command(&["/usr/sbin/auditctl", "/sbin/auditctl"], &["-l"])
    {
        facts.loaded_source = "auditctl -l".into();
        facts.loaded_rules = out.lines().filter_map(parse_rule).collect();
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn rules_files_parse_like_auditctl_output() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "etc/audit/auditd.conf",
            "max_log_file = 8\nmax_log_file_action = keep_logs\nSpace_Left_Action = email\n",
        );
        write(
            r,
            "etc/audit/rules.d/50-scope.rules",
            "-w /etc/sudoers -p wa -k scope\n-w /etc/sudoers.d -p wa -k scope\n",
        );
        write(
            r,
            "etc/audit/rules.d/50-time.rules",
            "## time\n-a always,exit -F arch=b64 -S adjtimex -S settimeofday -k time-change\n",
        );
        write(r, "etc/audit/rules.d/99-finalize.rules", "-e 2\n");
        write(r, "etc/audit/rules.d/notes.txt", "-w /ignored -p wa\n");
        let a = collect(&FactSource::fixture(r)).unwrap();
        assert_eq!(a.config["max_log_file_action"], "keep_logs");
        assert_eq!(a.config["space_left_action"], "email");
        assert_eq!(a.rule_files.len(), 3);
        assert_eq!(a.disk_rules.len(), 4);
        let w = &a.disk_rules[0];
        assert_eq!(
            (
                w.kind.as_str(),
                w.path.as_str(),
                w.perms.as_str(),
                w.key.as_str()
            ),
            ("watch", "/etc/sudoers", "wa", "scope")
        );
        let s = &a.disk_rules[2];
        assert_eq!(s.kind, "syscall");
        assert_eq!(s.action, "always,exit");
        assert_eq!(s.syscalls, ["adjtimex", "settimeofday"]);
        assert_eq!(s.fields, ["arch=b64"]);
        assert_eq!(a.disk_rules[3].kind, "control");
        // A fixture never runs auditctl.
        assert!(a.loaded_rules.is_empty() && a.loaded_source.is_empty());

        // auditctl -l prints keys as fields and syscalls comma-joined.
        let l =
            parse_rule("-a always,exit -F arch=b64 -S adjtimex,settimeofday -F key=time-change")
                .unwrap();
        assert_eq!(l.syscalls, s.syscalls);
        assert_eq!(l.key, "time-change");
        assert_eq!(l.fields, ["arch=b64"]);
        let p = parse_rule("-a always,exit -F path=/usr/bin/chcon -F perm=x -F auid>=1000 -F auid!=-1 -F key=perm_chng").unwrap();
        assert_eq!((p.path.as_str(), p.perms.as_str()), ("/usr/bin/chcon", "x"));
        assert!(parse_rule("No rules").is_none());
    }
}
