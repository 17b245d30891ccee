//! Test hosts as network namespaces: a bridge with the gateway address (where the coordinator
//! listens) and one namespace per host joined to it by a veth pair. Addresses come from
//! 198.18.0.0/15, reserved for benchmarking; traffic stays on this machine.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("{e}");
    }
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes namespaces and bridges left by earlier test processes that no longer exist.
pub fn sweep_leftovers() {
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(rest) = name.strip_prefix("rpt-") else {
                continue;
            };
            let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !pid_alive(p)) {
                let _ = ip(&["netns", "del", name]);
            }
        }
    }
    if let Ok(out) = Command::new("ip")
        .args(["-o", "link", "show", "type", "bridge"])
        .output()
    {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split(':').nth(1).map(str::trim).unwrap_or("");
            let Some(rest) = name.strip_prefix("rpb") else {
                continue;
            };
            let pid = rest.get(..6).and_then(|p| u32::from_str_radix(p, 16).ok());
            if pid.is_some_and(|p| !pid_alive(p)) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}

/// One namespace host.
#[derive(Debug, Clone)]
pub struct Host {
    pub netns: String,
    pub ip: Ipv4Addr,
    /// Our end of the host's veth pair: its counters are the host's traffic.
    pub veth: String,
}

/// A bridge and its hosts; removed on drop.
#[derive(Debug)]
pub struct Network {
    pub bridge: String,
    /// The bridge's address, reachable from every host.
    pub gateway: Ipv4Addr,
    pub hosts: Vec<Host>,
}

impl Network {
    /// Creates a bridge on its own /24 of 198.18.0.0/15 and `count` hosts on it.
    pub fn create(count: usize) -> Self {
        assert!(count < 200);
        sweep_leftovers();
        let pid = std::process::id();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // A /24 per (process, network): 512 of them in 198.18.0.0/15.
        let subnet = ((pid % 32) * 16 + (n % 16)) as u16;
        let (b2, b3) = (18 + (subnet / 256) as u8, (subnet % 256) as u8);
        let gateway = Ipv4Addr::new(198, b2, b3, 1);
        let bridge = format!("rpb{:06x}{:02x}", pid & 0xff_ffff, n & 0xff);
        let mut net = Network {
            bridge: bridge.clone(),
            gateway,
            hosts: Vec::new(),
        };
        must(&["link", "add", &bridge, "type", "bridge"]);
        must(&["addr", "add", &format!("{gateway}/24"), "dev", &bridge]);
        must(&["link", "set", &bridge, "up"]);
        for i in 0..count {
            let netns = format!("rpt-{pid}-{n}-{i}");
            let veth = format!("rpv{:06x}{:02x}{:02x}", pid & 0xff_ffff, n & 0xff, i);
            let host_ip = Ipv4Addr::new(198, b2, b3, 10 + i as u8);
            must(&["netns", "add", &netns]);
            net.hosts.push(Host {
                netns: netns.clone(),
                ip: host_ip,
                veth: veth.clone(),
            });
            must(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ]);
            must(&["link", "set", &veth, "master", &bridge, "up"]);
            must(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{host_ip}/24"),
                "dev",
                "eth0",
            ]);
            must(&["-n", &netns, "link", "set", "eth0", "up"]);
            must(&["-n", &netns, "link", "set", "lo", "up"]);
        }
        net
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it ours.
        for h in &self.hosts {
            let _ = ip(&["netns", "del", &h.netns]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

/// Runs `f` on a thread that has entered network namespace `netns`: sockets it opens live there.
pub fn run_in<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    spawn_in(netns, f)
        .join()
        .expect("thread in the namespace panicked")
}

/// Starts a thread in `netns` running `f` (e.g. a server), and returns its handle at once.
pub fn spawn_in<T: Send + 'static>(
    netns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{netns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        f()
    })
}

/// A host's nftables ruleset and qdiscs, as text, to compare before and after a test.
pub fn network_state(netns: &str) -> String {
    let out = |args: &[&str]| {
        let o = std::process::Command::new("ip")
            .args(["netns", "exec", netns])
            .args(args)
            .output()
            .expect("ip netns exec");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    format!(
        "{}\n{}",
        out(&["nft", "list", "ruleset"]),
        out(&["tc", "qdisc", "show"])
    )
}
