//! systemd service units and whether they are enabled and active. From files alone (any root):
//! unit files and `*.wants/` links give the enabled state, active is "unknown". On the real host,
//! when systemd is running it, `systemctl` gives both.

use std::collections::BTreeMap;

use rampart_proto::v1::Unit;

use super::{CollectResult, FactSource};

const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

fn from_files(src: &FactSource) -> BTreeMap<String, Unit> {
    let mut units = BTreeMap::new();
    for dir in UNIT_DIRS {
        for path in src.list(dir) {
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            if !name.ends_with(".service") {
                continue;
            }
            let masked = src
                .path_nofollow(&path)
                .and_then(std::fs::read_link)
                .is_ok_and(|t| t == std::path::Path::new("/dev/null"));
            let text = src.read(&path).unwrap_or_default();
            let enabled = if masked {
                "masked"
            } else if text.contains("[Install]") {
                "disabled"
            } else {
                "static"
            };
            units.entry(name.clone()).or_insert(Unit {
                name,
                enabled: enabled.into(),
                active: "unknown".into(),
            });
        }
    }
    // Links in *.wants/ directories mean enabled.
    for dir in ["/etc/systemd/system"] {
        for wants in src.list(dir) {
            if !wants.ends_with(".wants") {
                continue;
            }
            for link in src.list(&wants) {
                let name = link.rsplit('/').next().unwrap_or_default().to_string();
                let unit = units.entry(name.clone()).or_insert(Unit {
                    name,
                    enabled: String::new(),
                    active: "unknown".into(),
                });
                if unit.enabled != "masked" {
                    unit.enabled = "enabled".into();
                }
            }
        }
    }
    units
}

fn systemctl(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("systemctl")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn collect(src: &FactSource) -> CollectResult<Vec<Unit>> {
    let mut units = from_files(src);
    // systemctl only knows the active state when systemd runs the host (sd_booted's test);
    // elsewhere (containers, other inits) it would cost ~300 ms to learn nothing new.
    if src.commands_allowed() && src.path("/run/systemd/system").is_ok_and(|p| p.is_dir()) {
        if let Some(files) = systemctl(&[
            "list-unit-files",
            "--type=service",
            "--no-legend",
            "--plain",
            "--no-pager",
        ]) {
            for l in files.lines() {
                let mut f = l.split_whitespace();
                if let (Some(name), Some(state)) = (f.next(), f.next()) {
                    let u = units.entry(name.into()).or_insert(Unit {
                        name: name.into(),
                        enabled: String::new(),
                        active: "unknown".into(),
                    });
                    u.enabled = state.into();
                }
            }
        }
        if let Some(active) = systemctl(&[
            "list-units",
            "--type=service",
            "--all",
            "--no-legend",
            "--plain",
            "--no-pager",
        ]) {
            for l in active.lines() {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() >= 3 {
                    let u = units.entry(f[0].into()).or_insert(Unit {
                        name: f[0].into(),
                        enabled: "unknown".into(),
                        active: String::new(),
                    });
                    u.active = f[2].into();
                }
            }
        }
    }
    Ok(units.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::{symlink, write};

    #[test]
    fn enabled_state_from_unit_files() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "lib/systemd/system/ssh.service",
            "[Service]\nExecStart=/usr/sbin/sshd\n[Install]\nWantedBy=multi-user.target\n",
        );
        write(
            dir.path(),
            "lib/systemd/system/auditd.service",
            "[Service]\n[Install]\nWantedBy=multi-user.target\n",
        );
        write(
            dir.path(),
            "lib/systemd/system/systemd-journald.service",
            "[Service]\n",
        );
        symlink(
            dir.path(),
            "etc/systemd/system/multi-user.target.wants/ssh.service",
            "/lib/systemd/system/ssh.service",
        );
        symlink(dir.path(), "etc/systemd/system/telnet.service", "/dev/null");
        let u = collect(&FactSource::fixture(dir.path())).unwrap();
        let got: Vec<(&str, &str, &str)> = u
            .iter()
            .map(|u| (u.name.as_str(), u.enabled.as_str(), u.active.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("auditd.service", "disabled", "unknown"),
                ("ssh.service", "enabled", "unknown"),
                ("systemd-journald.service", "static", "unknown"),
                ("telnet.service", "masked", "unknown"),
            ]
        );
    }
}
