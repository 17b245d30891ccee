//! Settings only the Red Hat family has (RHEL, Rocky, Alma): whether dnf checks package
//! signatures (`gpgcheck` in dnf.conf and in each enabled repository), the system-wide crypto
//! policy and an sshd override of it, the authselect profile and its features, and gdm's XDMCP
//! switch. Hosts of other families report an empty message.

use std::collections::HashMap;

use rampart_proto::v1::RedHatFacts;

use super::{CollectResult, FactSource, conf};

pub fn collect(src: &FactSource) -> CollectResult<RedHatFacts> {
    let mut facts = RedHatFacts::default();
    for path in ["/etc/dnf/dnf.conf", "/etc/yum.conf"] {
        if let Ok(Some(text)) = src.read_optional(path) {
            facts.present = true;
            if let Some(v) = setting(&text, "main", "gpgcheck") {
                facts.dnf_gpgcheck = v;
            }
            break;
        }
    }
    for file in conf::glob(src, "/etc/yum.repos.d/*.repo") {
        let Ok(Some(text)) = src.read_optional(&file) else {
            continue;
        };
        for (id, values) in conf::ini_sections(&text) {
            let enabled = values.get("enabled").is_none_or(|v| is_true(v));
            // A repository without its own gpgcheck inherits dnf.conf's.
            let checked = values
                .get("gpgcheck")
                .map_or_else(|| is_true(&facts.dnf_gpgcheck), |v| is_true(v));
            if enabled && !checked && !id.is_empty() {
                facts.repos_without_gpgcheck.push(format!("{file}:[{id}]"));
            }
        }
    }
    if let Ok(Some(text)) = src.read_optional("/etc/crypto-policies/config") {
        facts.present = true;
        facts.crypto_policy = conf::lines(&text).next().unwrap_or_default().to_string();
    }
    let mut sshd = HashMap::new();
    if conf::settings_of(src, "/etc/sysconfig/sshd", &mut sshd) {
        facts.sshd_crypto_policy = sshd.remove("CRYPTO_POLICY").unwrap_or_default();
    }
    if let Ok(Some(text)) = src.read_optional("/etc/authselect/authselect.conf") {
        // The profile on the first line, then one enabled feature per line.
        let mut lines = conf::lines(&text);
        facts.authselect_profile = lines.next().unwrap_or_default().to_string();
        facts.authselect_features = lines.map(str::to_string).collect();
    }
    if let Ok(Some(text)) = src.read_optional("/etc/gdm/custom.conf")
        && let Some(v) = setting(&text, "xdmcp", "Enable")
    {
        facts.gdm_xdmcp_enable = v;
    }
    Ok(facts)
}

/// The last value of `key` in `[section]`.
fn setting(text: &str, section: &str, key: &str) -> Option<String> {
    conf::ini_sections(text)
        .into_iter()
        .rev()
        .filter(|(s, _)| s == section)
        .find_map(|(_, mut v)| v.remove(key))
}

/// dnf's booleans: 1, yes, true, on.
fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "yes" | "true" | "on"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn signatures_crypto_policy_authselect_and_xdmcp() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "etc/dnf/dnf.conf",
            "[main]\ngpgcheck=1\ninstallonly_limit=3\n",
        );
        write(
            r,
            "etc/yum.repos.d/site.repo",
            "[signed]\nbaseurl=https://repo.example/a\n\n[unsigned]\nbaseurl=https://repo.example/b\ngpgcheck=0\n\n[off]\nenabled=0\ngpgcheck=0\n",
        );
        write(r, "etc/yum.repos.d/inherit.repo", "[inherits]\nname=x\n");
        write(
            r,
            "etc/crypto-policies/config",
            "# set by the installer\nDEFAULT:NO-SHA1\n",
        );
        write(
            r,
            "etc/sysconfig/sshd",
            "# crypto\nCRYPTO_POLICY=\"-oCiphers=aes128-cbc\"\n",
        );
        write(
            r,
            "etc/authselect/authselect.conf",
            "custom/site\nwith-faillock\nwith-pwhistory\n",
        );
        write(r, "etc/gdm/custom.conf", "[daemon]\n[xdmcp]\nEnable=true\n");
        let f = collect(&FactSource::fixture(r)).unwrap();
        assert!(f.present);
        assert_eq!(f.dnf_gpgcheck, "1");
        // Disabled repositories do not count; one without gpgcheck inherits dnf.conf's.
        assert_eq!(
            f.repos_without_gpgcheck,
            ["/etc/yum.repos.d/site.repo:[unsigned]"]
        );
        assert_eq!(f.crypto_policy, "DEFAULT:NO-SHA1");
        assert_eq!(f.sshd_crypto_policy, "-oCiphers=aes128-cbc");
        assert_eq!(f.authselect_profile, "custom/site");
        assert_eq!(f.authselect_features, ["with-faillock", "with-pwhistory"]);
        assert_eq!(f.gdm_xdmcp_enable, "true");
    }

    #[test]
    fn other_families_report_nothing() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "etc/debian_version", "12.5\n");
        let f = collect(&FactSource::fixture(dir.path())).unwrap();
        assert_eq!(f, RedHatFacts::default());
    }
}
