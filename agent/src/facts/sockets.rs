//! Listening TCP and UDP sockets from `/proc/net`, with the process that owns each (matched by
//! socket inode through `/proc/PID/fd`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use rampart_proto::v1::{Process, Socket};

use super::{CollectResult, FactSource, io_err};

/// TCP_LISTEN in /proc/net/tcp; UDP sockets count when unconnected (TCP_CLOSE, 07).
const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

fn parse_addr(hex: &str, v6: bool) -> Option<(String, u32)> {
    let (addr, port) = hex.split_once(':')?;
    let port = u32::from_str_radix(port, 16).ok()?;
    let addr = if v6 {
        let mut bytes = [0u8; 16];
        for (i, chunk) in addr.as_bytes().chunks(8).enumerate() {
            let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
        }
        Ipv6Addr::from(bytes).to_string()
    } else {
        Ipv4Addr::from(u32::from_str_radix(addr, 16).ok()?.to_le_bytes()).to_string()
    };
    Some((addr, port))
}

/// Parses one /proc/net table; returns (address, port, inode) of listening sockets.
pub fn parse_table(text: &str, v6: bool, listening_state: &str) -> Vec<(String, u32, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 || f[3] != listening_state {
                return None;
            }
            let (addr, port) = parse_addr(f[1], v6)?;
            Some((addr, port, f[9].parse().ok()?))
        })
        .collect()
}

fn socket_owners(src: &FactSource, processes: &[Process]) -> HashMap<u64, (u32, String)> {
    let mut owners = HashMap::new();
    for p in processes {
        let Ok(fds) = src
            .path(format!("/proc/{}/fd", p.pid))
            .and_then(std::fs::read_dir)
        else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(inode) = t
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse().ok())
            {
                owners.entry(inode).or_insert((p.pid, p.name.clone()));
            }
        }
    }
    owners
}

pub fn collect(src: &FactSource, processes: &[Process]) -> CollectResult<Vec<Socket>> {
    let owners = socket_owners(src, processes);
    let mut out = Vec::new();
    for (proto, v6, state) in [
        ("tcp", false, TCP_LISTEN),
        ("tcp6", true, TCP_LISTEN),
        ("udp", false, UDP_UNCONNECTED),
        ("udp6", true, UDP_UNCONNECTED),
    ] {
        let path = format!("/proc/net/{proto}");
        let Some(text) = src.read_optional(&path).map_err(io_err(&path))? else {
            continue;
        };
        for (address, port, inode) in parse_table(&text, v6, state) {
            let (pid, process) = owners.get(&inode).cloned().unwrap_or((0, String::new()));
            out.push(Socket {
                protocol: proto.into(),
                address,
                port,
                pid,
                process,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::{symlink, write};

    #[test]
    fn listening_sockets_with_owners() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "proc/net/tcp",
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0\n",
        );
        write(
            dir.path(),
            "proc/net/tcp6",
            "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5678 1 0000000000000000 100 0 0 10 0\n",
        );
        write(
            dir.path(),
            "proc/net/udp",
            "  sl  local_address rem_address   st\n   0: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4321 2 0000000000000000 0\n",
        );
        symlink(dir.path(), "proc/42/fd/3", "socket:[1234]");
        let procs = vec![Process {
            pid: 42,
            name: "sshd".into(),
            ..Default::default()
        }];
        let s = collect(&FactSource::fixture(dir.path()), &procs).unwrap();
        let got: Vec<(&str, &str, u32, &str)> = s
            .iter()
            .map(|s| {
                (
                    s.protocol.as_str(),
                    s.address.as_str(),
                    s.port,
                    s.process.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("tcp", "0.0.0.0", 22, "sshd"),
                ("tcp6", "::1", 631, ""),
                ("udp", "0.0.0.0", 68, "")
            ]
        );
    }
}
