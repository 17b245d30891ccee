//! PAM: the stacks policies look at (the shared `common-*` / `system-auth` / `password-auth`
//! stacks and the services that matter, `su`, `sshd`, `login`, ...), with `@include`, `include`
//! and `substack` expanded in place, and the settings files of pam_pwquality, pam_faillock and
//! pam_pwhistory.

use std::collections::HashMap;

use rampart_proto::v1::{PamEntry, PamFacts, PamService};

use super::{CollectResult, FactSource, conf};

/// The services reported, when their file exists.
const SERVICES: [&str; 12] = [
    "common-auth",
    "common-account",
    "common-password",
    "common-session",
    "system-auth",
    "password-auth",
    "su",
    "sudo",
    "sshd",
    "login",
    "passwd",
    "other",
];
/// Nesting depth at which includes stop (a loop, or a configuration no one could read).
const MAX_DEPTH: usize = 8;

/// Splits a PAM line into words, keeping `[...]` (control and arguments) as one word.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in line.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' if depth > 0 => {
                depth -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn stack(
    src: &FactSource,
    service: &str,
    only_type: Option<&str>,
    depth: usize,
    out: &mut Vec<PamEntry>,
) {
    let path = format!("/etc/pam.d/{service}");
    let Ok(Some(text)) = src.read_optional(&path) else {
        return;
    };
    for line in conf::lines(&text) {
        let w = words(line);
        if w.is_empty() {
            continue;
        }
        if w[0] == "@include" {
            if depth < MAX_DEPTH
                && let Some(name) = w.get(1)
            {
                stack(src, name, only_type, depth + 1, out);
            }
            continue;
        }
        if w.len() < 3 {
            continue;
        }
        let kind = w[0].trim_start_matches('-').to_string();
        if only_type.is_some_and(|t| t != kind) {
            continue;
        }
        if w[1] == "include" || w[1] == "substack" {
            if depth < MAX_DEPTH {
                stack(src, &w[2], Some(&kind), depth + 1, out);
            }
            continue;
        }
        out.push(PamEntry {
            r#type: kind,
            control: w[1].clone(),
            module: w[2].rsplit('/').next().unwrap_or_default().to_string(),
            args: w[3..].to_vec(),
            file: path.clone(),
        });
    }
}

pub fn collect(src: &FactSource) -> CollectResult<PamFacts> {
    let mut facts = PamFacts::default();
    for name in SERVICES {
        let path = format!("/etc/pam.d/{name}");
        if !matches!(src.read_optional(&path), Ok(Some(_))) {
            continue;
        }
        let mut entries = Vec::new();
        stack(src, name, None, 0, &mut entries);
        facts.services.push(PamService {
            name: name.to_string(),
            entries,
        });
    }
    let mut pwquality = HashMap::new();
    conf::settings_of(src, "/etc/security/pwquality.conf", &mut pwquality);
    for f in conf::conf_files(src, "/etc/security/pwquality.conf.d") {
        conf::settings_of(src, &f, &mut pwquality);
    }
    facts.pwquality = pwquality;
    conf::settings_of(src, "/etc/security/faillock.conf", &mut facts.faillock);
    conf::settings_of(src, "/etc/security/pwhistory.conf", &mut facts.pwhistory);
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn includes_expand_in_place_with_their_type() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "etc/pam.d/common-auth",
            "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\n",
        );
        write(
            r,
            "etc/pam.d/system-auth",
            "auth required pam_env.so\n-auth sufficient /usr/lib64/security/pam_sss.so\npassword substack common-password\n",
        );
        write(
            r,
            "etc/pam.d/common-password",
            "password requisite pam_pwquality.so retry=3\nauth required pam_never.so\n",
        );
        write(
            r,
            "etc/pam.d/su",
            "auth sufficient pam_rootok.so\n# auth required pam_wheel.so\n@include common-auth\n",
        );
        write(r, "etc/pam.d/loop", "@include loop\n");
        write(r, "etc/pam.d/sshd", "@include loop\n@include missing\n");
        write(
            r,
            "etc/security/pwquality.conf",
            "minlen = 8\n# minclass = 4\n",
        );
        write(
            r,
            "etc/security/pwquality.conf.d/50-cis.conf",
            "minlen = 14\nenforce_for_root\n",
        );
        write(
            r,
            "etc/security/faillock.conf",
            "deny = 5\neven_deny_root\n",
        );
        let p = collect(&FactSource::fixture(r)).unwrap();
        let names: Vec<&str> = p.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "common-auth",
                "common-password",
                "system-auth",
                "su",
                "sshd"
            ]
        );
        let su = &p.services[3];
        let su_modules: Vec<&str> = su.entries.iter().map(|e| e.module.as_str()).collect();
        assert_eq!(su_modules, ["pam_rootok.so", "pam_unix.so", "pam_deny.so"]);
        assert_eq!(su.entries[1].control, "[success=1 default=ignore]");
        assert_eq!(su.entries[1].args, ["nullok"]);
        assert_eq!(su.entries[1].file, "/etc/pam.d/common-auth");
        // substack takes only the lines of its type; "-auth" is an auth line; paths become names.
        let sys: Vec<(&str, &str)> = p.services[2]
            .entries
            .iter()
            .map(|e| (e.r#type.as_str(), e.module.as_str()))
            .collect();
        assert_eq!(
            sys,
            [
                ("auth", "pam_env.so"),
                ("auth", "pam_sss.so"),
                ("password", "pam_pwquality.so")
            ]
        );
        // An include loop ends; the stack is just empty.
        assert!(p.services[4].entries.is_empty());
        assert_eq!(p.pwquality["minlen"], "14");
        assert_eq!(p.pwquality["enforce_for_root"], "");
        assert!(!p.pwquality.contains_key("minclass"));
        assert_eq!(p.faillock["deny"], "5");
        assert!(p.faillock.contains_key("even_deny_root"));
    }
}
