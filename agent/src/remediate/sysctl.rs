//! Kernel parameters: set live through /proc/sys and persisted in /etc/sysctl.d, in a file named
//! to sort last so it wins over the distribution's own.

use rampart_proto::v1::SysctlAction;

use super::{Host, Planned, RemediateError, Step, check_name, invalid, set_line};

pub const PERSIST_FILE: &str = "/etc/sysctl.d/99-rampart.conf";

pub fn plan(host: &Host, a: &SysctlAction) -> Result<Vec<Planned>, RemediateError> {
    if a.keys.is_empty() {
        return Err(invalid("a sysctl action needs at least one key"));
    }
    if a.value.is_empty() || a.value.contains(['\n', '\r', '#']) || a.value.len() > 256 {
        return Err(invalid(format!("sysctl value {:?} is not valid", a.value)));
    }
    let mut planned = Vec::new();
    let mut persist = host.read_optional(PERSIST_FILE)?.unwrap_or_default();
    let before = persist.clone();
    for key in &a.keys {
        check_name("sysctl key", key, "._-")?;
        if key.contains("..") || key.starts_with('.') {
            return Err(invalid(format!("sysctl key {key:?} is not valid")));
        }
        let proc_path = format!("/proc/sys/{}", key.replace('.', "/"));
        let current = host.read_optional(&proc_path)?.ok_or_else(|| {
            invalid(format!(
                "kernel parameter {key} does not exist on this host"
            ))
        })?;
        let current = current.trim();
        if current != a.value {
            planned.push(Planned::change(
                Step::Live {
                    path: proc_path,
                    value: a.value.clone(),
                },
                format!("{key}: {current} → {} (live)", a.value),
            ));
        }
        persist = set_line(&persist, key, &format!("{key} = {}", a.value), |line| {
            line.split('=').next().is_some_and(|k| k.trim() == key)
        });
    }
    if persist != before {
        if before.is_empty() {
            persist = format!(
                "# Written by Rampart remediation; rollback restores the previous state.\n{persist}"
            );
        }
        planned.push(Planned::change(
            Step::Write {
                path: PERSIST_FILE.into(),
                content: persist,
                mode: 0o644,
            },
            format!(
                "persist {} in {PERSIST_FILE}",
                a.keys
                    .iter()
                    .map(|k| format!("{k} = {}", a.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(planned)
}
