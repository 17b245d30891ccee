//! Mandatory access control: whether AppArmor is enabled and its profiles' modes
//! (`/sys/kernel/security/apparmor/profiles`), and SELinux's running mode
//! (`/sys/fs/selinux/enforce`) and configured mode and policy (`/etc/selinux/config`).

use rampart_proto::v1::{MacFacts, MacProfile};

use super::{CollectResult, FactSource, conf};

pub fn collect(src: &FactSource) -> CollectResult<MacFacts> {
    let read = |p: &str| src.read_optional(p).ok().flatten().unwrap_or_default();
    let mut facts = MacFacts {
        apparmor_enabled: read("/sys/module/apparmor/parameters/enabled").trim() == "Y",
        ..Default::default()
    };
    facts.apparmor_profiles = read("/sys/kernel/security/apparmor/profiles")
        .lines()
        .filter_map(|l| {
            let (name, mode) = l.trim().rsplit_once(" (")?;
            Some(MacProfile {
                name: name.to_string(),
                mode: mode.trim_end_matches(')').to_string(),
            })
        })
        .collect();
    facts.selinux_mode = match read("/sys/fs/selinux/enforce").trim() {
        "1" => "enforcing",
        "0" => "permissive",
        _ => "disabled",
    }
    .to_string();
    let mut config = std::collections::HashMap::new();
    conf::settings_of(src, "/etc/selinux/config", &mut config);
    facts.selinux_config_mode = config.remove("SELINUX").unwrap_or_default();
    facts.selinux_config_type = config.remove("SELINUXTYPE").unwrap_or_default();
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn apparmor_profiles_and_selinux_modes() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        let none = collect(&FactSource::fixture(r)).unwrap();
        assert!(!none.apparmor_enabled);
        assert_eq!(none.selinux_mode, "disabled");
        write(r, "sys/module/apparmor/parameters/enabled", "Y\n");
        write(
            r,
            "sys/kernel/security/apparmor/profiles",
            "/usr/sbin/chronyd (enforce)\nnvidia_modprobe//kmod (complain)\nunix-chkpwd (enforce)\n",
        );
        write(r, "sys/fs/selinux/enforce", "1");
        write(
            r,
            "etc/selinux/config",
            "SELINUX=permissive\nSELINUXTYPE=targeted\n",
        );
        let m = collect(&FactSource::fixture(r)).unwrap();
        assert!(m.apparmor_enabled);
        assert_eq!(m.apparmor_profiles.len(), 3);
        assert_eq!(m.apparmor_profiles[1].name, "nvidia_modprobe//kmod");
        assert_eq!(m.apparmor_profiles[1].mode, "complain");
        assert_eq!(m.selinux_mode, "enforcing");
        assert_eq!(m.selinux_config_mode, "permissive");
        assert_eq!(m.selinux_config_type, "targeted");
    }
}
