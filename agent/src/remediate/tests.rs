use std::os::unix::fs::PermissionsExt;

use rampart_proto::v1::{
    FileModeAction, KernelModuleAction, SshdOptionAction, SysctlAction, UnitDisableAction,
};

use super::*;
use crate::facts::testing::{symlink, write};

struct Fixture {
    root: tempfile::TempDir,
    state: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "/proc/sys/net/ipv4/ip_forward", "1\n");
        write(r, "/proc/sys/kernel/randomize_va_space", "2\n");
        write(
            r,
            "/etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/sh\n",
        );
        write(r, "/etc/group", "root:x:0:\nshadow:x:42:\nops:x:1000:\n");
        write(r, "/proc/modules", "cramfs 16384 0 - Live 0x0\n");
        Self {
            root,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn remediator(&self) -> Remediator {
        Remediator {
            source: FactSource::fixture(self.root.path()),
            state_dir: self.state.path().to_path_buf(),
            enabled: true,
        }
    }

    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.path().join(path.trim_start_matches('/'))).ok()
    }

    fn mode(&self, path: &str) -> u32 {
        std::fs::metadata(self.root.path().join(path.trim_start_matches('/')))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    fn facts(&self) -> rampart_proto::v1::FactReport {
        crate::facts::collect(&FactSource::fixture(self.root.path()), &[])
    }
}

fn action(a: remediation_action::Action) -> RemediationAction {
    RemediationAction { action: Some(a) }
}

fn sysctl() -> RemediationAction {
    action(remediation_action::Action::Sysctl(SysctlAction {
        keys: vec!["net.ipv4.ip_forward".into()],
        value: "0".into(),
    }))
}

fn sshd(key: &str, value: &str) -> RemediationAction {
    action(remediation_action::Action::SshdOption(SshdOptionAction {
        key: key.into(),
        value: value.into(),
    }))
}

#[test]
fn a_dry_run_describes_and_changes_nothing() {
    let f = Fixture::new();
    let out = f
        .remediator()
        .remediate("run-1", "r", &sysctl(), false)
        .unwrap();
    assert!(!out.applied);
    assert_eq!(
        out.changes,
        vec![
            "net.ipv4.ip_forward: 1 → 0 (live)".to_string(),
            "persist net.ipv4.ip_forward = 0 in /etc/sysctl.d/99-rampart.conf".to_string()
        ]
    );
    assert_eq!(f.read("/proc/sys/net/ipv4/ip_forward").unwrap(), "1\n");
    assert!(f.read(sysctl::PERSIST_FILE).is_none());
    assert!(
        !f.state.path().join("remediation/run-1").exists(),
        "no backup for a dry run"
    );
}

#[test]
fn sysctl_is_set_live_and_persisted_then_rolled_back() {
    let f = Fixture::new();
    let r = f.remediator();
    let out = r
        .remediate("run-1", "sysctl-ip-forward", &sysctl(), true)
        .unwrap();
    assert!(out.applied);
    assert_eq!(f.facts().sysctl["net.ipv4.ip_forward"], "0");
    assert!(
        f.read(sysctl::PERSIST_FILE)
            .unwrap()
            .contains("\nnet.ipv4.ip_forward = 0\n")
    );
    // Applying again finds nothing to do.
    let again = r
        .remediate("run-2", "sysctl-ip-forward", &sysctl(), true)
        .unwrap();
    assert_eq!(
        (again.applied, again.changes),
        (false, vec!["nothing to change".to_string()])
    );
    // A run id that already holds backups is never overwritten.
    write(f.root.path(), "/proc/sys/net/ipv4/ip_forward", "1\n");
    let e = r
        .remediate("run-1", "sysctl-ip-forward", &sysctl(), true)
        .unwrap_err();
    assert!(e.to_string().contains("already applied"), "{e}");
    write(f.root.path(), "/proc/sys/net/ipv4/ip_forward", "0\n");

    let back = r.rollback("run-1").unwrap();
    assert!(back.applied, "{back:?}");
    assert_eq!(f.facts().sysctl["net.ipv4.ip_forward"], "1");
    assert!(
        f.read(sysctl::PERSIST_FILE).is_none(),
        "a file that was new is removed"
    );
    let again = r.rollback("run-1").unwrap();
    assert!(!again.applied && again.changes[0].contains("already rolled back"));
    assert!(matches!(r.rollback("run-9"), Err(RemediateError::NoRun(_))));
}

#[test]
fn sshd_option_goes_in_the_drop_in_and_earlier_global_lines_are_disabled() {
    let f = Fixture::new();
    let main = "# header\nPermitRootLogin yes\nInclude /etc/ssh/sshd_config.d/*.conf\nX11Forwarding yes\nMatch User backup\n    PermitRootLogin yes\n";
    write(f.root.path(), sshd::MAIN, main);
    write(
        f.root.path(),
        "/etc/ssh/sshd_config.d/50-site.conf",
        "PermitRootLogin prohibit-password\n",
    );
    let r = f.remediator();
    let out = r
        .remediate(
            "run-1",
            "sshd-permit-root-login",
            &sshd("permitrootlogin", "no"),
            true,
        )
        .unwrap();
    assert_eq!(out.changes.len(), 2, "{out:?}");
    let facts = f.facts().sshd.unwrap();
    assert_eq!(facts.settings["permitrootlogin"], "no");
    assert_eq!(facts.matches.len(), 1, "the Match block is left alone");
    let new_main = f.read(sshd::MAIN).unwrap();
    assert!(new_main.contains("# PermitRootLogin yes (disabled by rampart)"));
    assert!(new_main.contains("Match User backup\n    PermitRootLogin yes\n"));

    r.rollback("run-1").unwrap();
    assert_eq!(f.read(sshd::MAIN).unwrap(), main);
    assert!(f.read(sshd::DROP_IN).is_none());
    assert_eq!(f.facts().sshd.unwrap().settings["permitrootlogin"], "yes");
}

#[test]
fn sshd_option_goes_at_the_top_when_nothing_is_included() {
    let f = Fixture::new();
    write(
        f.root.path(),
        sshd::MAIN,
        "# weak\nX11Forwarding yes\nMaxAuthTries 10\n",
    );
    f.remediator()
        .remediate("run-1", "r", &sshd("maxauthtries", "4"), true)
        .unwrap();
    assert_eq!(f.facts().sshd.unwrap().settings["maxauthtries"], "4");
    assert!(
        f.read(sshd::MAIN)
            .unwrap()
            .starts_with("# weak\nmaxauthtries 4\n")
    );
}

#[test]
fn file_mode_only_removes_bits_and_fixes_the_owner() {
    let f = Fixture::new();
    write(f.root.path(), "/etc/shadow", "x");
    write(f.root.path(), "/etc/passwd.lock", "x");
    let set = |p: &str, m: u32| {
        std::fs::set_permissions(
            f.root.path().join(p.trim_start_matches('/')),
            std::fs::Permissions::from_mode(m),
        )
        .unwrap()
    };
    set("/etc/shadow", 0o664);
    set("/etc/passwd.lock", 0o600);
    let file_mode = |path: &str, mode: &str| {
        action(remediation_action::Action::FileMode(FileModeAction {
            path: path.into(),
            mode: mode.into(),
            owner: String::new(),
            group: String::new(),
            allowed_groups: vec![],
        }))
    };
    let r = f.remediator();
    let out = r
        .remediate("run-1", "r", &file_mode("/etc/shadow", "0640"), true)
        .unwrap();
    assert_eq!(
        out.changes,
        vec!["chmod /etc/shadow: 0664 → 0640".to_string()]
    );
    assert_eq!(f.mode("/etc/shadow"), 0o640);
    let out = r
        .remediate("run-2", "r", &file_mode("/etc/passwd.lock", "0644"), true)
        .unwrap();
    assert!(!out.applied, "never loosens: {out:?}");
    assert_eq!(f.mode("/etc/passwd.lock"), 0o600);
    r.rollback("run-1").unwrap();
    assert_eq!(f.mode("/etc/shadow"), 0o664);
}

#[test]
fn kernel_modules_are_disabled_and_a_loaded_one_is_reported() {
    let f = Fixture::new();
    let module = |m: &str| {
        action(remediation_action::Action::KernelModule(
            KernelModuleAction { module: m.into() },
        ))
    };
    let r = f.remediator();
    let out = r.remediate("run-1", "r", &module("cramfs"), true).unwrap();
    assert!(
        out.changes.iter().any(|c| c.contains("stays loaded")),
        "{out:?}"
    );
    let km = f.facts().kernel_modules.unwrap();
    assert!(km.install_disabled.contains(&"cramfs".to_string()));
    assert!(km.blacklisted.contains(&"cramfs".to_string()));
}

#[test]
fn units_are_disabled_by_removing_their_links_and_restored() {
    let f = Fixture::new();
    write(
        f.root.path(),
        "/lib/systemd/system/avahi-daemon.service",
        "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    );
    let link = "/etc/systemd/system/multi-user.target.wants/avahi-daemon.service";
    symlink(
        f.root.path(),
        link,
        "/lib/systemd/system/avahi-daemon.service",
    );
    let unit = action(remediation_action::Action::UnitDisable(UnitDisableAction {
        unit: "avahi-daemon.service".into(),
    }));
    let enabled = || {
        f.facts()
            .units
            .iter()
            .find(|u| u.name == "avahi-daemon.service")
            .unwrap()
            .enabled
            .clone()
    };
    assert_eq!(enabled(), "enabled");
    let r = f.remediator();
    r.remediate("run-1", "r", &unit, true).unwrap();
    assert_eq!(enabled(), "disabled");
    r.rollback("run-1").unwrap();
    assert_eq!(enabled(), "enabled");
}

#[test]
fn forbidden_by_config_and_bad_parameters_are_refused() {
    let f = Fixture::new();
    let mut r = f.remediator();
    r.enabled = false;
    assert!(matches!(
        r.remediate("run-1", "r", &sysctl(), false),
        Err(RemediateError::Disabled)
    ));
    let r = f.remediator();
    let chmod = |path: &str| {
        action(remediation_action::Action::FileMode(FileModeAction {
            path: path.into(),
            mode: "0600".into(),
            ..Default::default()
        }))
    };
    for bad in ["/etc/../../outside", "etc/shadow"] {
        let e = r.remediate("run-1", "r", &chmod(bad), true).unwrap_err();
        assert!(e.to_string().contains("not a plain absolute path"), "{e}");
    }
    // A link inside the tree pointing outside it (absolutely, or by a `..` chain) means that path
    // under the root: the file outside is never touched, the one inside is.
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    symlink(
        f.root.path(),
        "/etc/escape",
        outside.path().to_str().unwrap(),
    );
    let dots = format!("../../../../../../../..{}", outside.path().display());
    symlink(f.root.path(), "/etc/dots", &dots);
    for (run, via) in [
        ("run-a", "/etc/escape/secret"),
        ("run-b", "/etc/dots/secret"),
    ] {
        r.remediate(run, "r", &chmod(via), true).unwrap();
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o7777,
            0o644,
            "{via} reached the file outside the root"
        );
    }
    write(
        f.root.path(),
        &format!("{}/secret", outside.path().display()),
        "inside",
    );
    let inside = f
        .root
        .path()
        .join(outside.path().strip_prefix("/").unwrap())
        .join("secret");
    std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o644)).unwrap();
    r.remediate("run-2", "r", &chmod("/etc/escape/secret"), true)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&inside).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    // A link loop in a folder is an error, not a hang.
    symlink(f.root.path(), "/etc/loop", "/etc/loop");
    let e = r
        .remediate("run-3", "r", &chmod("/etc/loop/x"), true)
        .unwrap_err();
    assert!(
        e.to_string().to_lowercase().contains("symbolic links"),
        "{e}"
    );
    let e = r.remediate("run/../x", "r", &sysctl(), true).unwrap_err();
    assert!(e.to_string().contains("run id"), "{e}");
    let e = r
        .remediate("run-1", "r", &sshd("PermitRootLogin\nEvil", "no"), true)
        .unwrap_err();
    assert!(e.to_string().contains("not a valid name"), "{e}");
    let e = r
        .remediate("run-1", "r", &RemediationAction { action: None }, false)
        .unwrap_err();
    assert!(e.to_string().contains("unknown remediation action"), "{e}");
}

#[test]
fn a_failing_step_undoes_the_steps_before_it() {
    let f = Fixture::new();
    write(f.root.path(), "/etc/a.conf", "old\n");
    write(f.root.path(), "/etc/not-a-link", "x");
    let host = Host {
        src: &FactSource::fixture(f.root.path()),
        live: false,
    };
    let planned = vec![
        Planned::change(
            Step::Write {
                path: "/etc/a.conf".into(),
                content: "new\n".into(),
                mode: 0o600,
            },
            "write a.conf",
        ),
        Planned::change(
            Step::Unlink {
                path: "/etc/not-a-link".into(),
            },
            "unlink",
        ),
    ];
    let dir = f.state.path().join("remediation/run-1");
    let e = apply_steps(&host, &dir, "run-1", "r", &planned).unwrap_err();
    assert!(matches!(e, RemediateError::Failed { .. }), "{e}");
    assert_eq!(f.read("/etc/a.conf").unwrap(), "old\n");
    assert_eq!(f.mode("/etc/a.conf"), 0o644);
}
