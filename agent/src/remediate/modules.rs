//! Kernel modules: disabled through modprobe.d (`install … /bin/false` and `blacklist`), and
//! unloaded when the host is live.

use rampart_proto::v1::KernelModuleAction;

use super::{Host, Planned, RemediateError, Step, check_name};

pub fn plan(host: &Host, a: &KernelModuleAction) -> Result<Vec<Planned>, RemediateError> {
    check_name("kernel module", &a.module, "_-")?;
    let m = &a.module;
    let path = format!("/etc/modprobe.d/rampart-{m}.conf");
    let content = format!(
        "# Written by Rampart remediation; rollback restores the previous state.\ninstall {m} /bin/false\nblacklist {m}\n"
    );
    let mut planned = Vec::new();
    if host.read_optional(&path)?.as_deref() != Some(content.as_str()) {
        planned.push(Planned::change(
            Step::Write {
                path: path.clone(),
                content,
                mode: 0o644,
            },
            format!("disable module {m} in {path} (install {m} /bin/false, blacklist {m})"),
        ));
    }
    let kernel_name = m.replace('-', "_");
    let loaded = host
        .read_optional("/proc/modules")?
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().next() == Some(kernel_name.as_str()));
    if loaded {
        if host.live {
            planned.push(Planned::change(
                Step::Run {
                    argv: vec!["modprobe".into(), "-r".into(), m.clone()],
                    undo: Some(vec!["modprobe".into(), m.clone()]),
                },
                format!("unload module {m} (modprobe -r)"),
            ));
        } else {
            planned.push(Planned::note(format!(
                "module {m} stays loaded: not a live host (unload it or reboot)"
            )));
        }
    }
    Ok(planned)
}
