//! sshd options. sshd takes the first value it reads for a keyword, so the option goes in a
//! drop-in that the main config includes (named to sort first), and global lines of the main
//! config that come before that `Include` and set the same keyword are commented out. When the
//! main config includes no drop-in folder, the option goes at its top. `Match` blocks are left
//! alone. On a live host the result is checked with `sshd -t` before sshd is reloaded.

use std::path::Path;

use rampart_proto::v1::SshdOptionAction;

use super::{Host, Planned, RemediateError, Step, check_name, invalid, set_line};

pub const MAIN: &str = "/etc/ssh/sshd_config";
pub const DROP_IN: &str = "/etc/ssh/sshd_config.d/00-rampart.conf";

/// The keyword of a config line (lowercase), if it is not a comment.
fn keyword(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    t.split(|c: char| c.is_whitespace() || c == '=')
        .next()
        .map(str::to_ascii_lowercase)
}

/// Whether an `Include` line's patterns name the drop-in.
fn includes_drop_in(line: &str) -> bool {
    line.split_whitespace().skip(1).any(|p| {
        let abs = if p.starts_with('/') {
            p.to_string()
        } else {
            Path::new("/etc/ssh").join(p).to_string_lossy().into_owned()
        };
        glob::Pattern::new(&abs).is_ok_and(|g| g.matches(DROP_IN))
    })
}

fn reload_command(host: &Host) -> Result<Vec<String>, RemediateError> {
    let debian = [
        "/lib/systemd/system/ssh.service",
        "/usr/lib/systemd/system/ssh.service",
    ]
    .into_iter()
    .map(|p| host.exists(p))
    .collect::<Result<Vec<_>, _>>()?
    .into_iter()
    .any(|e| e);
    let unit = if debian {
        "ssh.service"
    } else {
        "sshd.service"
    };
    Ok(vec!["systemctl".into(), "reload".into(), unit.into()])
}

pub fn plan(host: &Host, a: &SshdOptionAction) -> Result<Vec<Planned>, RemediateError> {
    check_name("sshd option", &a.key, "")?;
    if a.value.is_empty() || a.value.contains(['\n', '\r', '#']) || a.value.len() > 1024 {
        return Err(invalid(format!("sshd value {:?} is not valid", a.value)));
    }
    let key = a.key.to_ascii_lowercase();
    let main = host
        .read_optional(MAIN)?
        .ok_or_else(|| invalid(format!("{MAIN} does not exist: sshd is not installed")))?;
    let lines: Vec<&str> = main.lines().collect();
    // Global section: everything before the first Match.
    let global_end = lines
        .iter()
        .position(|l| keyword(l).as_deref() == Some("match"))
        .unwrap_or(lines.len());
    let include_at = lines[..global_end]
        .iter()
        .position(|l| keyword(l).as_deref() == Some("include") && includes_drop_in(l));
    let option_line = format!("{} {}", a.key, a.value);
    let shadowing_end = include_at.unwrap_or(global_end);
    let mut new_main = String::new();
    let mut commented = Vec::new();
    if include_at.is_none() {
        // No drop-in folder: the option goes first, after the leading comment block.
        let header = lines
            .iter()
            .take_while(|l| l.trim_start().starts_with('#'))
            .count();
        for l in &lines[..header] {
            new_main.push_str(l);
            new_main.push('\n');
        }
        new_main.push_str(&format!("{option_line}\n"));
        for (i, l) in lines.iter().enumerate().skip(header) {
            push_line(&mut new_main, &mut commented, l, i < shadowing_end, &key);
        }
    } else {
        for (i, l) in lines.iter().enumerate() {
            push_line(&mut new_main, &mut commented, l, i < shadowing_end, &key);
        }
    }
    let mut planned = Vec::new();
    if new_main != main && (include_at.is_none() || !commented.is_empty()) {
        let what = if include_at.is_none() {
            format!("set `{option_line}` at the top of {MAIN}")
        } else {
            format!(
                "comment out {} in {MAIN} (they come before the drop-ins and would win)",
                commented.join(", ")
            )
        };
        let mode = std::fs::metadata(host.resolve(MAIN)?)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
            .unwrap_or(0o600);
        planned.push(Planned::change(
            Step::Write {
                path: MAIN.into(),
                content: new_main,
                mode,
            },
            what,
        ));
    }
    if include_at.is_some() {
        let current = host.read_optional(DROP_IN)?.unwrap_or_default();
        let mut updated = set_line(&current, &key, &option_line, |l| {
            keyword(l).as_deref() == Some(key.as_str())
        });
        if current.is_empty() {
            updated = format!(
                "# Written by Rampart remediation; rollback restores the previous state.\n{updated}"
            );
        }
        if updated != current {
            planned.push(Planned::change(
                Step::Write {
                    path: DROP_IN.into(),
                    content: updated,
                    mode: 0o600,
                },
                format!("set `{option_line}` in {DROP_IN}"),
            ));
        }
    }
    if host.live && !planned.is_empty() {
        let reload = reload_command(host)?;
        planned.push(Planned::change(
            Step::Run {
                argv: vec!["sshd".into(), "-t".into()],
                undo: None,
            },
            "check the configuration with sshd -t",
        ));
        planned.push(Planned::change(
            Step::Run {
                argv: reload.clone(),
                undo: Some(reload.clone()),
            },
            format!("reload sshd ({})", reload.join(" ")),
        ));
    }
    if planned.is_empty() {
        planned.push(Planned::note(format!(
            "`{option_line}` is already in effect in the files"
        )));
    }
    Ok(planned)
}

/// Copies a line of the main config, commenting it out when it is a global line before the
/// drop-ins that sets `key`.
fn push_line(out: &mut String, commented: &mut Vec<String>, line: &str, shadows: bool, key: &str) {
    if shadows && keyword(line).as_deref() == Some(key) {
        commented.push(format!("`{}`", line.trim()));
        out.push_str(&format!("# {line} (disabled by rampart)\n"));
    } else {
        out.push_str(line);
        out.push('\n');
    }
}
