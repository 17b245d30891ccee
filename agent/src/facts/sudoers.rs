//! sudoers: `Defaults` entries (with their binding) and the user specifications that carry
//! `NOPASSWD`, across `/etc/sudoers` and the files it includes (`@include`, `@includedir`, and
//! the older `#include` / `#includedir`). Includes are followed below the fact root, at most 8
//! deep; a folder's files are read in name order, skipping names with a `.` or ending in `~`, as
//! sudo does.

use rampart_proto::v1::{SudoDefault, SudoFacts};

use super::{CollectResult, FactSource};

const MAIN: &str = "/etc/sudoers";
const MAX_DEPTH: usize = 8;

/// Joins lines continued with a trailing backslash.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if let Some(stripped) = line.strip_suffix('\\') {
            cur.push_str(stripped);
            cur.push(' ');
        } else {
            cur.push_str(line);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits `a, b="x, y", !c` on the commas outside quotes.
fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// An include path; a relative one is relative to the folder of the file naming it.
fn relative(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        let dir = base.rsplit_once('/').map_or("", |b| b.0);
        format!("{dir}/{path}")
    }
}

fn file(src: &FactSource, path: &str, depth: usize, facts: &mut SudoFacts) {
    if facts.files.iter().any(|f| f == path) {
        facts.problems.push(format!("{path} is included twice"));
        return;
    }
    let text = match src.read_optional(path) {
        Ok(Some(t)) => t,
        Ok(None) => {
            if path != MAIN {
                facts
                    .problems
                    .push(format!("{path} is included but missing"));
            }
            return;
        }
        Err(e) => {
            facts.problems.push(format!("{path}: {e}"));
            return;
        }
    };
    facts.files.push(path.to_string());
    for line in logical_lines(&text) {
        let line = line.trim();
        let include = ["@includedir", "#includedir", "@include", "#include"]
            .into_iter()
            .find_map(|d| line.strip_prefix(d).map(|rest| (d, rest.trim())));
        if let Some((directive, target)) = include {
            if depth >= MAX_DEPTH {
                facts
                    .problems
                    .push(format!("{path}: includes nested too deep"));
                continue;
            }
            let target = relative(path, target.trim_matches('"'));
            if directive.ends_with("dir") {
                for f in src.list(&target) {
                    let name = f.rsplit('/').next().unwrap_or_default();
                    if !name.contains('.') && !name.ends_with('~') {
                        file(src, &f, depth + 1, facts);
                    }
                }
            } else {
                file(src, &target, depth + 1, facts);
            }
            continue;
        }
        let code = line.split('#').next().unwrap_or_default().trim();
        if code.is_empty() {
            continue;
        }
        if let Some(rest) = code.strip_prefix("Defaults") {
            let (scope, list) = if rest.starts_with(char::is_whitespace) {
                (String::new(), rest.trim())
            } else {
                match rest.split_once(char::is_whitespace) {
                    Some((scope, list)) => (scope.to_string(), list.trim()),
                    None => continue,
                }
            };
            for item in split_list(list) {
                let (name, value) = match item.split_once('=') {
                    Some((n, v)) => (
                        n.trim().trim_end_matches(['+', '-']).to_string(),
                        v.trim().trim_matches('"').to_string(),
                    ),
                    None => (item.clone(), String::new()),
                };
                let (negated, name) = match name.strip_prefix('!') {
                    Some(n) => (true, n.trim().to_string()),
                    None => (false, name),
                };
                facts.defaults.push(SudoDefault {
                    scope: scope.clone(),
                    name,
                    value,
                    negated,
                    file: path.to_string(),
                });
            }
        } else if code.contains("NOPASSWD") {
            facts.nopasswd.push(code.to_string());
        }
    }
}

pub fn collect(src: &FactSource) -> CollectResult<SudoFacts> {
    let mut facts = SudoFacts::default();
    file(src, MAIN, 0, &mut facts);
    facts.present = !facts.files.is_empty();
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn defaults_and_nopasswd_across_includes() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        assert!(!collect(&FactSource::fixture(r)).unwrap().present);
        write(
            r,
            "etc/sudoers",
            "Defaults\tenv_reset, use_pty\nDefaults logfile=\"/var/log/sudo.log\"\n# Defaults !authenticate\nroot ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n",
        );
        write(
            r,
            "etc/sudoers.d/90-deploy",
            "Defaults:deploy !authenticate, timestamp_timeout=30\ndeploy ALL=(ALL) \\\n  NOPASSWD: ALL\n#include extra.inc\n",
        );
        write(
            r,
            "etc/sudoers.d/README.txt",
            "deploy ALL=(ALL) NOPASSWD: ALL\n",
        );
        write(r, "etc/sudoers.d/old~", "Defaults !use_pty\n");
        write(r, "etc/sudoers.d/extra.inc", "@include /etc/sudoers\n");
        let s = collect(&FactSource::fixture(r)).unwrap();
        assert!(s.present);
        assert_eq!(
            s.files,
            [
                "/etc/sudoers",
                "/etc/sudoers.d/90-deploy",
                "/etc/sudoers.d/extra.inc"
            ]
        );
        let d: Vec<(&str, &str, &str, bool)> = s
            .defaults
            .iter()
            .map(|d| {
                (
                    d.scope.as_str(),
                    d.name.as_str(),
                    d.value.as_str(),
                    d.negated,
                )
            })
            .collect();
        assert_eq!(
            d,
            [
                ("", "env_reset", "", false),
                ("", "use_pty", "", false),
                ("", "logfile", "/var/log/sudo.log", false),
                (":deploy", "authenticate", "", true),
                (":deploy", "timestamp_timeout", "30", false),
            ]
        );
        assert_eq!(s.nopasswd, ["deploy ALL=(ALL)    NOPASSWD: ALL"]);
        assert_eq!(s.problems, ["/etc/sudoers is included twice"]);
    }
}
