//! systemd units: disabled by removing their enablement links, stopped when the host is live.

use rampart_proto::v1::UnitDisableAction;

use super::{Host, Planned, RemediateError, Step, check_name, invalid};

const LINK_DIR: &str = "/etc/systemd/system";

pub fn plan(host: &Host, a: &UnitDisableAction) -> Result<Vec<Planned>, RemediateError> {
    check_name("unit", &a.unit, "@._-")?;
    let unit = &a.unit;
    if ![".service", ".socket", ".timer"]
        .iter()
        .any(|s| unit.ends_with(s))
    {
        return Err(invalid(format!(
            "unit {unit:?} must be a .service, .socket or .timer"
        )));
    }
    let mut planned = Vec::new();
    let dir = host.resolve(LINK_DIR)?;
    let mut wants: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wants") || n.ends_with(".requires"))
        .collect();
    wants.sort();
    for w in wants {
        let link = format!("{LINK_DIR}/{w}/{unit}");
        if host.exists(&link)? {
            planned.push(Planned::change(
                Step::Unlink { path: link.clone() },
                format!("disable {unit}: remove {link}"),
            ));
        }
    }
    if host.live {
        let daemon_reload = vec!["systemctl".to_string(), "daemon-reload".to_string()];
        if !planned.is_empty() {
            planned.push(Planned::change(
                Step::Run {
                    argv: daemon_reload.clone(),
                    undo: Some(daemon_reload),
                },
                "systemctl daemon-reload",
            ));
        }
        let active = std::process::Command::new("systemctl")
            .args(["is-active", "--quiet", unit])
            .status()
            .is_ok_and(|s| s.success());
        if active {
            planned.push(Planned::change(
                Step::Run {
                    argv: vec!["systemctl".into(), "stop".into(), unit.clone()],
                    undo: Some(vec!["systemctl".into(), "start".into(), unit.clone()]),
                },
                format!("stop {unit}"),
            ));
        }
    }
    if planned.is_empty() {
        planned.push(Planned::note(format!("{unit} is not enabled")));
    }
    Ok(planned)
}
