//! File permissions and ownership: removes permission bits beyond the allowed mode (never adds
//! any), and sets owner and group by name, as the host's own passwd and group files map them.

use std::os::unix::fs::MetadataExt;

use rampart_proto::v1::FileModeAction;

use super::{Host, Planned, RemediateError, Step, invalid, io};

/// The id of `name` in a passwd- or group-format file below the root.
fn id_of(host: &Host, file: &str, name: &str) -> Result<Option<u32>, RemediateError> {
    Ok(host.read_optional(file)?.and_then(|text| {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[0] == name)
                .then(|| f[2].parse().ok())
                .flatten()
        })
    }))
}

fn name_of(host: &Host, file: &str, id: u32) -> Result<Option<String>, RemediateError> {
    Ok(host.read_optional(file)?.and_then(|text| {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[2].parse() == Ok(id)).then(|| f[0].to_string())
        })
    }))
}

pub fn plan(host: &Host, a: &FileModeAction) -> Result<Vec<Planned>, RemediateError> {
    let path = &a.path;
    let full = host.resolve(path)?;
    let max = u32::from_str_radix(a.mode.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| invalid(format!("mode {:?} is not an octal mode", a.mode)))?;
    let meta = match std::fs::symlink_metadata(&full) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(vec![Planned::note(format!("{path} does not exist"))]);
        }
        Err(e) => return Err(io(path)(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(invalid(format!(
            "{path} is a symbolic link; links are not followed"
        )));
    }
    let mut planned = Vec::new();
    let mode = meta.mode() & 0o7777;
    let tightened = mode & max;
    if tightened != mode {
        planned.push(Planned::change(
            Step::Chmod {
                path: path.clone(),
                mode: tightened,
            },
            format!("chmod {path}: {mode:04o} → {tightened:04o}"),
        ));
    }
    let mut uid = None;
    let mut gid = None;
    let mut describe = Vec::new();
    if !a.owner.is_empty() {
        let want = id_of(host, "/etc/passwd", &a.owner)?.ok_or_else(|| {
            invalid(format!(
                "user {:?} is not in this host's /etc/passwd",
                a.owner
            ))
        })?;
        if meta.uid() != want {
            uid = Some(want);
            describe.push(format!("owner {} → {}", meta.uid(), a.owner));
        }
    }
    if !a.group.is_empty() {
        let current = name_of(host, "/etc/group", meta.gid())?;
        let acceptable = current
            .as_ref()
            .is_some_and(|c| c == &a.group || a.allowed_groups.iter().any(|g| g == c));
        if !acceptable {
            let want = id_of(host, "/etc/group", &a.group)?.ok_or_else(|| {
                invalid(format!(
                    "group {:?} is not in this host's /etc/group",
                    a.group
                ))
            })?;
            gid = Some(want);
            describe.push(format!(
                "group {} → {}",
                current.unwrap_or_else(|| meta.gid().to_string()),
                a.group
            ));
        }
    }
    if uid.is_some() || gid.is_some() {
        planned.push(Planned::change(
            Step::Chown {
                path: path.clone(),
                uid,
                gid,
            },
            format!("chown {path}: {}", describe.join(", ")),
        ));
    }
    Ok(planned)
}
