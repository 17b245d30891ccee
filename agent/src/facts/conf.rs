//! Reading the configuration formats collectors meet: `key value` and `key = value` files, and
//! systemd's `[Section]` files with their drop-in folders. Comments (`#`, and `;` where the format
//! has them) and blank lines are skipped; values lose surrounding quotes.

use std::collections::HashMap;

use super::FactSource;

/// The non-empty lines of `text` with `#` comments (whole-line and trailing) removed, trimmed.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v)
        .to_string()
}

/// `key value` or `key = value` settings (both forms are accepted on every line; `=` wins when
/// present). A bare keyword maps to "". A later line overrides an earlier one.
pub fn settings(text: &str, into: &mut HashMap<String, String>) {
    for line in lines(text) {
        let (k, v) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), unquote(v)),
            None => match line.split_once(char::is_whitespace) {
                Some((k, v)) => (k, unquote(v)),
                None => (line, String::new()),
            },
        };
        into.insert(k.to_string(), v);
    }
}

/// `settings` of a file that may be missing (missing or unreadable: nothing).
pub fn settings_of(src: &FactSource, path: &str, into: &mut HashMap<String, String>) -> bool {
    match src.read_optional(path) {
        Ok(Some(text)) => {
            settings(&text, into);
            true
        }
        _ => false,
    }
}

/// The `*.conf` files of a folder, sorted.
pub fn conf_files(src: &FactSource, dir: &str) -> Vec<String> {
    src.list(dir)
        .into_iter()
        .filter(|f| f.ends_with(".conf"))
        .collect()
}

/// Settings of one section of a systemd configuration, e.g. `journald` / `Journal`: the main file
/// under /etc/systemd, then the drop-ins of `/usr/lib/systemd/<name>.conf.d`,
/// `/run/systemd/<name>.conf.d` and `/etc/systemd/<name>.conf.d` in file-name order (a drop-in
/// of the same name in a later folder replaces the earlier one). The last value wins.
pub fn systemd_section(src: &FactSource, name: &str, section: &str) -> HashMap<String, String> {
    let mut files = vec![format!("/etc/systemd/{name}.conf")];
    let mut dropins: std::collections::BTreeMap<String, String> = Default::default();
    for dir in ["/usr/lib/systemd", "/run/systemd", "/etc/systemd"] {
        for f in conf_files(src, &format!("{dir}/{name}.conf.d")) {
            let file_name = f.rsplit('/').next().unwrap_or_default().to_string();
            dropins.insert(file_name, f);
        }
    }
    files.extend(dropins.into_values());
    let mut out = HashMap::new();
    for f in files {
        let Ok(Some(text)) = src.read_optional(&f) else {
            continue;
        };
        for (name, values) in ini_sections(&text) {
            if name == section {
                out.extend(values);
            }
        }
    }
    out
}

/// The `[section]` blocks of an INI-style file (systemd units and configuration, dnf.conf,
/// `.repo` files, gdm's custom.conf) in file order, each with its `key=value` settings. Lines
/// before the first section belong to the section "".
pub fn ini_sections(text: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((s.trim().to_string(), HashMap::new()));
        } else if let Some((k, v)) = line.split_once('=') {
            if out.is_empty() {
                out.push((String::new(), HashMap::new()));
            }
            if let Some((_, values)) = out.last_mut() {
                values.insert(k.trim().to_string(), unquote(v));
            }
        }
    }
    out
}

/// Expands a path pattern whose last component may hold `*` (e.g. `/etc/rsyslog.d/*.conf`) to the
/// existing files below the root, sorted; a plain path is returned as is.
pub fn glob(src: &FactSource, pattern: &str) -> Vec<String> {
    let Some((dir, name)) = pattern.rsplit_once('/') else {
        return Vec::new();
    };
    if !name.contains('*') {
        return vec![pattern.to_string()];
    }
    let (prefix, suffix) = name.split_once('*').unwrap_or((name, ""));
    src.list(if dir.is_empty() { "/" } else { dir })
        .into_iter()
        .filter(|f| {
            let n = f.rsplit('/').next().unwrap_or_default();
            n.starts_with(prefix) && n.ends_with(suffix) && n.len() >= prefix.len() + suffix.len()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn settings_in_both_forms_and_dropins_in_order() {
        let mut m = HashMap::new();
        settings(
            "# c\nPASS_MAX_DAYS\t365\nminlen = 14 # trailing\nenforce_for_root\nname=\"quoted\"\nPASS_MAX_DAYS 90\n",
            &mut m,
        );
        assert_eq!(m["PASS_MAX_DAYS"], "90");
        assert_eq!(m["minlen"], "14");
        assert_eq!(m["enforce_for_root"], "");
        assert_eq!(m["name"], "quoted");

        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "etc/systemd/journald.conf",
            "[Journal]\nStorage=auto\nCompress=no\n[Other]\nStorage=x\n",
        );
        write(
            r,
            "usr/lib/systemd/journald.conf.d/10-a.conf",
            "[Journal]\nCompress=yes\n",
        );
        write(
            r,
            "etc/systemd/journald.conf.d/20-b.conf",
            "[Journal]\nStorage=persistent\n",
        );
        write(
            r,
            "etc/systemd/journald.conf.d/10-a.conf",
            "[Journal]\nForwardToSyslog=no\n",
        );
        let j = systemd_section(&FactSource::fixture(r), "journald", "Journal");
        assert_eq!(j["Storage"], "persistent");
        // /etc's 10-a.conf replaced /usr/lib's: Compress stays as the main file set it.
        assert_eq!(j["Compress"], "no");
        assert_eq!(j["ForwardToSyslog"], "no");
        write(r, "etc/rsyslog.d/50-default.conf", "");
        write(r, "etc/rsyslog.d/README", "");
        assert_eq!(
            glob(&FactSource::fixture(r), "/etc/rsyslog.d/*.conf"),
            ["/etc/rsyslog.d/50-default.conf"]
        );
    }
}
