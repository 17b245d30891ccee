//! sshd's effective settings. From the config files (any root): `Include` is expanded in place
//! (globs sorted, relative paths under /etc/ssh), the first value of a keyword wins, keywords that
//! sshd accumulates are joined, and `Match` blocks are kept apart from the global settings; keys
//! sshd defaults are filled in with sshd's defaults. On the real host, `sshd -T` gives the global
//! settings instead when it works.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rampart_proto::v1::{SshdFacts, SshdMatch};

use super::{CollectResult, FactSource};

const MAIN_CONFIG: &str = "/etc/ssh/sshd_config";
/// Include loops are cut off here, as sshd does.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Keywords whose values add up instead of the first one winning.
const ACCUMULATING: [&str; 10] = [
    "acceptenv",
    "allowgroups",
    "allowusers",
    "denygroups",
    "denyusers",
    "hostkey",
    "listenaddress",
    "port",
    "setenv",
    "subsystem",
];
/// OpenSSH's defaults (sshd_config(5)) for settings that policies check.
const DEFAULTS: [(&str, &str); 13] = [
    ("permitrootlogin", "prohibit-password"),
    ("passwordauthentication", "yes"),
    ("permitemptypasswords", "no"),
    ("maxauthtries", "6"),
    ("x11forwarding", "no"),
    ("ignorerhosts", "yes"),
    ("hostbasedauthentication", "no"),
    ("logingracetime", "120"),
    ("clientaliveinterval", "0"),
    ("clientalivecountmax", "3"),
    ("permituserenvironment", "no"),
    ("usepam", "no"),
    ("port", "22"),
];

#[derive(Debug, Default)]
struct Parser {
    global: HashMap<String, String>,
    matches: Vec<SshdMatch>,
    files: Vec<String>,
    errors: Vec<String>,
}

impl Parser {
    fn set(map: &mut HashMap<String, String>, key: String, value: String) {
        if ACCUMULATING.contains(&key.as_str()) {
            let entry = map.entry(key).or_default();
            if !entry.split(',').any(|v| v == value) {
                if !entry.is_empty() {
                    entry.push(',');
                }
                entry.push_str(&value);
            }
        } else {
            map.entry(key).or_insert(value);
        }
    }

    fn file(&mut self, src: &FactSource, path: &str, depth: usize) {
        if depth > MAX_INCLUDE_DEPTH {
            self.errors.push(format!(
                "{path}: Include nested deeper than {MAX_INCLUDE_DEPTH}"
            ));
            return;
        }
        let text = match src.read(path) {
            Ok(t) => t,
            Err(e) => {
                self.errors.push(format!("{path}: {e}"));
                return;
            }
        };
        self.files.push(path.to_string());
        for raw in text.lines() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = match line.find(|c: char| c.is_whitespace() || c == '=') {
                Some(i) => (
                    &line[..i],
                    line[i..]
                        .trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                        .trim(),
                ),
                None => (line, ""),
            };
            let key = key.to_ascii_lowercase();
            let value = value.trim_matches('"').to_string();
            match key.as_str() {
                "include" => {
                    for pattern in value.split_whitespace() {
                        for inc in expand(src, pattern) {
                            self.file(src, &inc, depth + 1);
                        }
                    }
                }
                "match" => self.matches.push(SshdMatch {
                    criteria: value,
                    settings: Default::default(),
                }),
                _ => match self.matches.last_mut() {
                    Some(m) => {
                        let mut map: HashMap<String, String> =
                            std::mem::take(&mut m.settings).into_iter().collect();
                        Self::set(&mut map, key, value);
                        m.settings = map.into_iter().collect();
                    }
                    None => Self::set(&mut self.global, key, value),
                },
            }
        }
    }
}

/// Files an `Include` pattern names (below the root), sorted as sshd sorts them.
fn expand(src: &FactSource, pattern: &str) -> Vec<String> {
    let absolute = if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        Path::new("/etc/ssh").join(pattern)
    };
    // The literal folder part is resolved inside the root (links in it may be absolute); the
    // pattern part is matched below it, and every match is read through the root again.
    let text = absolute.to_string_lossy().into_owned();
    let glob_at = text.find(['*', '?', '[']).unwrap_or(text.len());
    let split = text[..glob_at].rfind('/').unwrap_or(0);
    let (literal, pattern_part) = (&text[..split], &text[split..]);
    let literal = if literal.is_empty() { "/" } else { literal };
    let Ok(base) = src.path(literal) else {
        return Vec::new();
    };
    let full = format!(
        "{}{}",
        glob::Pattern::escape(&base.to_string_lossy()).trim_end_matches('/'),
        pattern_part
    );
    let mut found: Vec<String> = glob::glob(&full)
        .map(|paths| {
            paths
                .flatten()
                .filter_map(|p| {
                    let rel = p.strip_prefix(&base).ok()?;
                    Some(format!(
                        "{}/{}",
                        literal.trim_end_matches('/'),
                        rel.display()
                    ))
                })
                .filter(|host| src.path(host).is_ok_and(|p| p.is_file()))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn sshd_t() -> Option<HashMap<String, String>> {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let out = std::process::Command::new(sshd).arg("-T").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut map = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.split_once(' ') {
            Parser::set(&mut map, k.to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(map)
}

pub fn collect(src: &FactSource) -> CollectResult<SshdFacts> {
    if !src.path(MAIN_CONFIG).is_ok_and(|p| p.exists()) {
        return Ok(SshdFacts {
            present: false,
            ..Default::default()
        });
    }
    let mut p = Parser::default();
    p.file(src, MAIN_CONFIG, 0);
    if let Some(first) = p.errors.first().filter(|_| p.files.is_empty()) {
        return Err(first.clone());
    }
    let (mut settings, source) = match src.commands_allowed().then(sshd_t).flatten() {
        Some(t) => (t, "sshd -T"),
        None => (p.global, "config files"),
    };
    for (k, v) in DEFAULTS {
        settings
            .entry(k.to_string())
            .or_insert_with(|| v.to_string());
    }
    Ok(SshdFacts {
        present: true,
        source: source.into(),
        settings: settings.into_iter().collect(),
        matches: p.matches,
        files: p.files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/ssh/sshd_config",
            "# main\nInclude /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nPort 22\nMaxAuthTries=3\nAllowUsers alice\nMatch User backup\n  PasswordAuthentication yes\n  X11Forwarding yes\nMatch Address 10.0.0.0/8\n  PermitRootLogin without-password\n",
        );
        // Sorted: 10-hardening.conf comes before 50-cloud.conf, and its value wins over the main file's.
        write(
            dir.path(),
            "etc/ssh/sshd_config.d/50-cloud.conf",
            "PasswordAuthentication yes\nPermitRootLogin prohibit-password\nAllowUsers bob\n",
        );
        write(
            dir.path(),
            "etc/ssh/sshd_config.d/10-hardening.conf",
            "PermitRootLogin no\nPasswordAuthentication no\nInclude extra/*.conf\n",
        );
        write(dir.path(), "etc/ssh/extra/x11.conf", "x11forwarding no\n");
        write(
            dir.path(),
            "etc/ssh/sshd_config.d/notes.txt",
            "PermitRootLogin yes\n",
        );
        dir
    }

    #[test]
    fn include_globs_first_value_wins_and_match_blocks_apart() {
        let dir = fixture();
        let s = collect(&FactSource::fixture(dir.path())).unwrap();
        assert!(s.present);
        assert_eq!(s.source, "config files");
        assert_eq!(
            s.files,
            [
                "/etc/ssh/sshd_config",
                "/etc/ssh/sshd_config.d/10-hardening.conf",
                "/etc/ssh/extra/x11.conf",
                "/etc/ssh/sshd_config.d/50-cloud.conf"
            ]
        );
        assert_eq!(s.settings["permitrootlogin"], "no");
        assert_eq!(s.settings["passwordauthentication"], "no");
        assert_eq!(s.settings["x11forwarding"], "no");
        assert_eq!(s.settings["maxauthtries"], "3");
        assert_eq!(s.settings["allowusers"], "bob,alice");
        // Not set anywhere: sshd's default.
        assert_eq!(s.settings["permitemptypasswords"], "no");
        assert_eq!(s.matches.len(), 2);
        assert_eq!(s.matches[0].criteria, "User backup");
        assert_eq!(s.matches[0].settings["x11forwarding"], "yes");
        assert_eq!(s.matches[1].settings["permitrootlogin"], "without-password");
    }

    #[test]
    fn absent_sshd_is_reported_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let s = collect(&FactSource::fixture(dir.path())).unwrap();
        assert!(!s.present);
    }

    #[test]
    fn include_loops_stop() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/ssh/sshd_config",
            "Include /etc/ssh/sshd_config\nPort 2222\n",
        );
        let s = collect(&FactSource::fixture(dir.path())).unwrap();
        assert_eq!(s.settings["port"], "2222");
    }
}
