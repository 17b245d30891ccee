//! Running processes from `/proc`: pid, name, owner, command line.

use rampart_proto::v1::{Account, Process};

use super::{CollectResult, FactSource, io_err};

/// Bytes of a command line kept: enough to tell processes apart; a command line may be up to
/// 2 MiB, and thousands of those would not fit in a report.
const MAX_CMDLINE: usize = 4096;

/// Pids found under `proc/` of the root.
pub fn pids(src: &FactSource) -> CollectResult<Vec<u32>> {
    let entries = match src.path("/proc").and_then(std::fs::read_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("/proc")(e)),
    };
    let mut pids: Vec<u32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

pub fn collect(src: &FactSource, accounts: &[Account]) -> CollectResult<Vec<Process>> {
    let mut out = Vec::new();
    for pid in pids(src)? {
        // A process may exit while we read it: skip it rather than fail.
        let Ok(status) = src.read(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(str::trim)
        };
        let name = field("Name:").unwrap_or("").to_string();
        let uid: u32 = field("Uid:")
            .and_then(|u| u.split_whitespace().next()?.parse().ok())
            .unwrap_or(u32::MAX);
        let cmdline = src
            .read_bytes(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                let mut s = String::from_utf8_lossy(&b[..b.len().min(MAX_CMDLINE)])
                    .split('\0')
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                if b.len() > MAX_CMDLINE {
                    s.push_str(" …[truncated]");
                }
                s
            })
            .unwrap_or_default();
        let user = accounts
            .iter()
            .find(|a| a.uid == uid)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| uid.to_string());
        out.push(Process {
            pid,
            name,
            user,
            uid,
            cmdline,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn reads_processes_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "proc/1/status",
            "Name:\tsystemd\nUid:\t0\t0\t0\t0\n",
        );
        write(dir.path(), "proc/1/cmdline", "/sbin/init\0splash\0");
        write(
            dir.path(),
            "proc/42/status",
            "Name:\tsshd\nUid:\t0\t0\t0\t0\n",
        );
        write(dir.path(), "proc/self/status", "Name:\tignored\n");
        let accounts = vec![Account {
            name: "root".into(),
            uid: 0,
            ..Default::default()
        }];
        let p = collect(&FactSource::fixture(dir.path()), &accounts).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].name.as_str(),
                p[0].user.as_str(),
                p[0].cmdline.as_str()
            ),
            ("systemd", "root", "/sbin/init splash")
        );
        assert_eq!(p[1].pid, 42);
    }
}
