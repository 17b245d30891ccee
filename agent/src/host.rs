//! What the agent tells the coordinator about its host in `Hello`: names, OS, kernel, and the
//! capabilities the kernel and tools here actually offer.

use std::path::Path;

/// Host description for `Hello`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostDescription {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
}

/// Reads the host's names and versions.
pub fn describe() -> HostDescription {
    use sysinfo::System;
    HostDescription {
        hostname: System::host_name().unwrap_or_else(|| "unknown".into()),
        os: System::long_os_version()
            .or_else(System::name)
            .unwrap_or_else(|| "Linux".into()),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false)
}

fn kernel_has_module(name: &str, kernel: &str) -> bool {
    let loaded = std::fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.split_whitespace().next() == Some(name)))
        .unwrap_or(false);
    if loaded {
        return true;
    }
    let dir = Path::new("/lib/modules")
        .join(kernel)
        .join("kernel/net/sched");
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{name}.ko"))
            })
        })
        .unwrap_or(false)
}

/// Capabilities: `nftables` and `tc` when their tools are installed, `netem` when the kernel has
/// the netem qdisc (loaded or loadable), and which latency path network-latency faults take:
/// `latency-netem` (any traffic on an interface) or `latency-tcp-proxy` (TCP to named ports, when
/// there is no netem but nftables can redirect).
pub fn capabilities(kernel: &str) -> Vec<String> {
    let mut caps = Vec::new();
    if on_path("nft") {
        caps.push("nftables".to_string());
    }
    if on_path("tc") {
        caps.push("tc".to_string());
    }
    if kernel_has_module("sch_netem", kernel) {
        caps.push("netem".to_string());
    }
    let has = |c: &str| caps.iter().any(|x| x == c);
    if has("netem") && has("tc") {
        caps.push("latency-netem".to_string());
    } else if has("nftables") {
        caps.push("latency-tcp-proxy".to_string());
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_this_host() {
        let d = describe();
        assert!(!d.hostname.is_empty());
        assert!(!d.arch.is_empty());
        assert_eq!(
            d.kernel,
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap()
                .trim()
        );
    }
}
