//! Kernel parameters from `/proc/sys`, keyed in dotted form (`net.ipv4.ip_forward`). Per-interface
//! `net.ipv{4,6}.conf.<iface>` entries are kept only for `all`, `default` and `lo`: policies check
//! those, and a host with many interfaces would otherwise send thousands of values.

use std::collections::HashMap;
use std::path::Path;

use super::{CollectResult, FactSource};

/// Files above this size are not values (none are, but a fixture could be anything).
const MAX_VALUE_BYTES: u64 = 4096;

fn skip_dir(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    // net/ipv4/conf/<iface>, net/ipv6/conf/<iface>, net/ipv4/neigh/<iface>, net/ipv6/neigh/<iface>
    parts.len() == 4
        && parts[0] == "net"
        && (parts[2] == "conf" || parts[2] == "neigh")
        && !matches!(parts[3], "all" | "default" | "lo")
}

fn walk(base: &Path, dir: &Path, out: &mut HashMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(rel) = path.strip_prefix(base) else {
            continue;
        };
        let rel = rel.to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if !skip_dir(&rel) {
                walk(base, &path, out);
            }
        } else if ft.is_file() {
            if e.metadata()
                .map(|m| m.len() > MAX_VALUE_BYTES)
                .unwrap_or(true)
            {
                continue;
            }
            // Write-only and permission-protected entries are simply not facts.
            if let Ok(v) = std::fs::read_to_string(&path) {
                let value = v.split_whitespace().collect::<Vec<_>>().join(" ");
                out.insert(rel.replace('/', "."), value);
            }
        }
    }
}

pub fn collect(src: &FactSource) -> CollectResult<HashMap<String, String>> {
    let Ok(base) = src.path("/proc/sys") else {
        return Ok(HashMap::new());
    };
    let mut out = HashMap::new();
    walk(&base, &base, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn dotted_keys_and_interfaces_filtered() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "proc/sys/net/ipv4/ip_forward", "0\n");
        write(
            dir.path(),
            "proc/sys/net/ipv4/conf/all/accept_redirects",
            "0\n",
        );
        write(
            dir.path(),
            "proc/sys/net/ipv4/conf/eth0/accept_redirects",
            "1\n",
        );
        write(dir.path(), "proc/sys/kernel/randomize_va_space", "2\n");
        write(
            dir.path(),
            "proc/sys/net/ipv4/ip_local_port_range",
            "32768\t60999\n",
        );
        let s = collect(&FactSource::fixture(dir.path())).unwrap();
        assert_eq!(s["net.ipv4.ip_forward"], "0");
        assert_eq!(s["net.ipv4.conf.all.accept_redirects"], "0");
        assert_eq!(s["kernel.randomize_va_space"], "2");
        assert_eq!(s["net.ipv4.ip_local_port_range"], "32768 60999");
        assert!(!s.contains_key("net.ipv4.conf.eth0.accept_redirects"));
    }
}
