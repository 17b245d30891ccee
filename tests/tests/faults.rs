//! End-to-end fault injection: agents in network-namespace hosts, every effect checked from
//! outside (packets that arrive, connections that fail, round trips, throughput, process states,
//! free space), and every host's nftables and qdisc state compared before and after.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rampart_e2e::netns::{network_state, run_in};
use rampart_e2e::{Harness, WAIT, eventually};
use serde_json::Value;

/// A TCP echo server on `addr` (in the current namespace), one thread per connection.
fn echo_server(listener: TcpListener) {
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// A TCP server that reads and discards everything, counting the bytes (a throughput sink).
fn sink_server(listener: TcpListener) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 64 * 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    count
}

/// Bits per second arriving at the sink while a thread in `netns` writes to it for `secs`:
/// measured at the receiver, from 1 s in (the sender's socket buffers are full by then).
fn throughput(netns: &str, target: SocketAddr, received: &Arc<AtomicU64>, secs: f64) -> f64 {
    rampart_e2e::netns::spawn_in(netns, move || {
        let Ok(mut s) = TcpStream::connect_timeout(&target, Duration::from_secs(3)) else {
            return;
        };
        let chunk = vec![0u8; 16 * 1024];
        let start = Instant::now();
        while start.elapsed().as_secs_f64() < secs + 1.0 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let (t0, b0) = (Instant::now(), received.load(Ordering::Relaxed));
    std::thread::sleep(Duration::from_secs_f64(secs));
    let bytes = received.load(Ordering::Relaxed) - b0;
    bytes as f64 * 8.0 / t0.elapsed().as_secs_f64()
}

/// The share of `count` pings to `ip` lost, in %, as `ping` reports it.
fn ping_loss(ip: std::net::Ipv4Addr, count: u32) -> f64 {
    let out = std::process::Command::new("ping")
        .args([
            "-n",
            "-q",
            "-i",
            "0.01",
            "-W",
            "1",
            "-c",
            &count.to_string(),
        ])
        .arg(ip.to_string())
        .output()
        .expect("ping (iputils-ping) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let pct = text
        .split(',')
        .find(|f| f.contains("packet loss"))
        .and_then(|f| f.trim().split('%').next()?.parse().ok());
    pct.unwrap_or_else(|| panic!("no loss figure in ping's output: {text}"))
}

fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(800)).is_ok()
}

/// Median round trip of one byte through an echo server, over one connection.
fn median_rtt(addr: SocketAddr) -> Duration {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rtts = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        s.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        rtts.push(t.elapsed());
    }
    rtts.sort();
    rtts[rtts.len() / 2]
}

fn ids(out: &str) -> Vec<String> {
    out.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("flt-"))
        .map(str::to_string)
        .collect()
}

fn fault_state(h: &Harness, id: &str) -> Value {
    let all: Value = serde_json::from_str(&h.rampart_ok(&["fault", "ls", "-o", "json"])).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["faults"].as_array().unwrap().iter())
        .find(|f| f["fault_id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn network_faults_drop_delay_and_limit_traffic_and_leave_no_trace() {
    let Some(h) = Harness::start_with_hosts(1) else {
        return;
    };
    let net = h.network.as_ref().unwrap();
    let host = net.hosts[0].clone();
    let gateway = net.gateway;
    let before = network_state(&host.netns);
    let token = h.join_token(&["role=web"], 1, "10m");
    let a = h.enroll_ok("agent", Some(&host.netns), &token, &[]);
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);

    // Services inside the host: TCP echo on 18080, a UDP counter on 18081.
    let received = Arc::new(AtomicU64::new(0));
    let r = received.clone();
    let (echo, udp) = run_in(&host.netns, || {
        (
            TcpListener::bind("0.0.0.0:18080").unwrap(),
            UdpSocket::bind("0.0.0.0:18081").unwrap(),
        )
    });
    echo_server(echo);
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while udp.recv(&mut b).is_ok() {
            r.fetch_add(1, Ordering::Relaxed);
        }
    });
    let service = SocketAddr::from((host.ip, 18080));
    assert!(connects(service), "the service answers before any fault");

    // Partition: a TCP connection to the service fails, and works again after revert.
    let out = h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "network-partition",
        "--port",
        "18080",
        "--duration",
        "5m",
    ]);
    let partition = ids(&out);
    assert_eq!(partition.len(), 1, "{out}");
    assert!(!connects(service), "partitioned");
    assert_eq!(
        h.agent_state(&a.id).as_deref(),
        Some("online"),
        "the session is never cut"
    );
    let reverted: Value =
        serde_json::from_str(&h.rampart_ok(&["fault", "revert", &partition[0], "-o", "json"]))
            .unwrap();
    assert_eq!(reverted[0]["faults"][0]["state"], "reverted", "{reverted}");
    assert!(connects(service), "reachable again after revert");

    // Loss: 30 % asked; count what arrives out of 3000 probes.
    let out = h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "network-loss",
        "--percent",
        "30",
        "--port",
        "18081",
        "--direction",
        "in",
        "--duration",
        "5m",
    ]);
    let loss = ids(&out);
    let sender = UdpSocket::bind("0.0.0.0:0").unwrap();
    received.store(0, Ordering::Relaxed);
    let probes = 3000;
    for i in 0..probes {
        sender.send_to(b"probe", (host.ip, 18081)).unwrap();
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let arrived = received.load(Ordering::Relaxed) as f64 / f64::from(probes);
    assert!(
        (0.62..=0.78).contains(&arrived),
        "30% loss asked, {:.1}% arrived",
        arrived * 100.0
    );
    h.rampart_ok(&["fault", "revert", &loss[0]]);

    // Loss with the default direction drops egress only, as tc netem and other chaos tools do:
    // ping from outside sees about the asked share lost, not 1 - 0.7² = 51 %.
    let out = h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "network-loss",
        "--percent",
        "30",
        "--duration",
        "5m",
    ]);
    let loss = ids(&out);
    let lost = ping_loss(host.ip, 400);
    assert!(
        (20.0..=40.0).contains(&lost),
        "30% loss asked, ping lost {lost}%"
    );
    h.rampart_ok(&["fault", "revert", &loss[0]]);
    assert!(ping_loss(host.ip, 50) < 5.0, "nothing lost after revert");

    // Latency: connections from the host to port 18090 outside get 100 ms more per round trip.
    let echo_out = TcpListener::bind((gateway, 18090)).unwrap();
    echo_server(echo_out);
    let outside = SocketAddr::from((gateway, 18090));
    let base = run_in(&host.netns, move || median_rtt(outside));
    let out = h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "network-latency",
        "--interface",
        "eth0",
        "--delay",
        "100ms",
        "--port",
        "18090",
        "--duration",
        "5m",
    ]);
    let latency = ids(&out);
    assert_eq!(latency.len(), 1, "{out}");
    let delayed = run_in(&host.netns, move || median_rtt(outside));
    let added = delayed.saturating_sub(base);
    assert!(
        (Duration::from_millis(80)..=Duration::from_millis(200)).contains(&added),
        "100 ms asked: {base:?} → {delayed:?}"
    );
    h.rampart_ok(&["fault", "revert", &latency[0]]);
    let after = run_in(&host.netns, move || median_rtt(outside));
    assert!(
        after < base + Duration::from_millis(30),
        "back to {after:?}"
    );

    // Bandwidth: 2 Mbit/s on the host's interface; measured throughput stays under it.
    // Each measurement has its own sink, so bytes of the unlimited run still queued in a
    // receive buffer are never counted as limited traffic.
    let free_sink = sink_server(TcpListener::bind((gateway, 18091)).unwrap());
    let limited_sink = sink_server(TcpListener::bind((gateway, 18092)).unwrap());
    let free = throughput(
        &host.netns,
        SocketAddr::from((gateway, 18091)),
        &free_sink,
        1.0,
    );
    let out = h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "network-bandwidth",
        "--interface",
        "eth0",
        "--rate",
        "2mbit",
        "--duration",
        "5m",
    ]);
    let bandwidth = ids(&out);
    assert_eq!(bandwidth.len(), 1, "{out}");
    let limited = throughput(
        &host.netns,
        SocketAddr::from((gateway, 18092)),
        &limited_sink,
        2.0,
    );
    assert!(
        limited < 2.6e6,
        "limited to 2 Mbit/s, measured {:.2} Mbit/s",
        limited / 1e6
    );
    assert!(
        free > 4.0 * limited,
        "unlimited {:.1} Mbit/s vs limited {:.2}",
        free / 1e6,
        limited / 1e6
    );
    assert_eq!(h.agent_state(&a.id).as_deref(), Some("online"));
    h.rampart_ok(&["fault", "revert", &bandwidth[0]]);

    assert_eq!(
        network_state(&host.netns),
        before,
        "nftables and qdiscs are as they were"
    );
    let listed: Value =
        serde_json::from_str(&h.rampart_ok(&["fault", "ls", "-o", "json"])).unwrap();
    let states: Vec<&str> = listed[0]["faults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["reverted"; 5], "{listed}");
}

#[test]
fn faults_are_reverted_when_the_agent_dies_the_coordinator_is_gone_or_everything_stops() {
    let Some(h) = Harness::start_with_hosts(1) else {
        return;
    };
    let host = h.network.as_ref().unwrap().hosts[0].clone();
    let before = network_state(&host.netns);
    let config = h.dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[faults]\nlease = \"3s\"\nallowed_kinds = [\"cpu\", \"network-partition\", \"dns\", \"process-kill\", \"process-pause\", \"disk-fill\"]\n",
    )
    .unwrap();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", Some(&host.netns), &token, &[]);
    let config_arg = config.to_str().unwrap().to_string();
    h.run_agent("agent", &a, &["--config", &config_arg]);
    h.wait_online(&[&a.id]);
    let table_exists = || {
        std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &host.netns,
                "nft",
                "list",
                "table",
                "inet",
                "rampart",
            ])
            .output()
            .unwrap()
            .status
            .success()
    };

    // The agent is SIGKILLed mid-fault: the rule outlives it, and its restart reverts it first.
    let id = ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "network-partition",
        "--port",
        "18080",
        "--duration",
        "5m",
    ]))
    .remove(0);
    assert!(table_exists());
    h.with_proc("agent", |p| p.kill());
    assert!(table_exists(), "nothing reverted it yet");
    h.run_agent("agent", &a, &["--config", &config_arg]);
    eventually(WAIT, "the restarted agent to revert and report it", || {
        let f = fault_state(&h, &id);
        if f["state"] == "reverted" && f["reverted_by"] == "startup" {
            Ok(())
        } else {
            Err(f.to_string())
        }
    });
    assert!(!table_exists());

    // The coordinator goes away: after the lease (3 s) the agent continues the paused process.
    let mut sleeper = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pid = sleeper.id().to_string();
    let state_of = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, t)| t.trim_start().chars().next().unwrap())
            })
    };
    let pause = ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "process-pause",
        "--pid",
        &pid,
        "--duration",
        "5m",
    ]))
    .remove(0);
    assert_eq!(state_of(&pid), Some('T'));
    h.with_proc("coordinator", |p| p.kill());
    let stopped_at = Instant::now();
    eventually(
        Duration::from_secs(20),
        "the lease to revert the pause",
        || match state_of(&pid) {
            Some('T') => Err("still stopped".to_string()),
            s => Ok(s),
        },
    );
    let waited = stopped_at.elapsed();
    assert!(
        waited >= Duration::from_secs(2),
        "not before the lease: {waited:?}"
    );
    h.start_coordinator();
    h.wait_online(&[&a.id]);
    eventually(WAIT, "the lease revert to be reported", || {
        let f = fault_state(&h, &pause);
        if f["reverted_by"] == "lease" && f["state"] == "reverted" {
            Ok(())
        } else {
            Err(f.to_string())
        }
    });

    // The agent's own policy: a kind it does not allow, a protected process.
    let out = h.rampart(&[
        "fault",
        "inject",
        "--kind",
        "memory",
        "--bytes",
        "1MiB",
        "--duration",
        "10s",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("memory is not allowed by this agent's config"),
        "{err}"
    );
    let out = h.rampart(&[
        "fault",
        "inject",
        "--kind",
        "process-kill",
        "--name",
        "rampart-agent",
        "--duration",
        "10s",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("protected"), "{err}");

    // Duration is honoured by the agent's own timer.
    let dns =
        ids(&h.rampart_ok(&["fault", "inject", "--kind", "dns", "--duration", "2s"])).remove(0);
    eventually(WAIT, "the DNS fault to end by itself", || {
        let f = fault_state(&h, &dns);
        if f["reverted_by"] == "duration" {
            Ok(())
        } else {
            Err(f.to_string())
        }
    });

    // A revert that cannot be verified is revert_failed, with the reason.
    let fill_dir = h.dir.path().join("fill");
    std::fs::create_dir_all(&fill_dir).unwrap();
    let fill = ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "disk-fill",
        "--path",
        fill_dir.to_str().unwrap(),
        "--bytes",
        "8MiB",
        "--duration",
        "5m",
    ]))
    .remove(0);
    let file = fill_dir.join(format!(".rampart-fill-{fill}"));
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    std::fs::write(file.join("x"), "in the way").unwrap();
    let out = h.rampart(&["fault", "revert", &fill, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r[0]["faults"][0]["state"], "revert_failed", "{r}");
    std::fs::remove_dir_all(&file).unwrap();

    // The emergency stop: every fault on every agent, confirmed per agent.
    ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "cpu",
        "--load",
        "10",
        "--duration",
        "5m",
    ]));
    ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "network-partition",
        "--port",
        "18082",
        "--duration",
        "5m",
    ]));
    let out = h.rampart(&["stop", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stop: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stop[0]["error"], "", "{stop}");
    assert_eq!(stop[0]["faults"].as_array().unwrap().len(), 2, "{stop}");
    let active: Value =
        serde_json::from_str(&h.rampart_ok(&["fault", "ls", "--active", "-o", "json"])).unwrap();
    assert_eq!(active, serde_json::json!([]));
    let audit = h.rampart_ok(&["audit", "ls", "-o", "json"]);
    assert!(
        audit.contains("ChaosService/InjectFault") && audit.contains("ChaosService/EmergencyStop"),
        "{audit}"
    );

    // recover --all works with no coordinator and no running agent.
    ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "network-partition",
        "--port",
        "18083",
        "--duration",
        "5m",
    ]));
    h.with_proc("agent", |p| p.kill());
    h.with_proc("coordinator", |p| p.kill());
    assert!(table_exists());
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &host.netns])
        .arg(&rampart_e2e::binaries().agent)
        .args([
            "recover",
            "--all",
            "--state-dir",
            a.state_dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("reverted"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!table_exists());
    assert_eq!(
        network_state(&host.netns),
        before,
        "nftables and qdiscs are as they were"
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// Host faults through the real agent, measured from outside its process: CPU time, resident
/// memory, free space, a killed process, and a pause undone when the agent is told to stop.
#[test]
fn host_faults_are_measured_from_outside_and_undone_at_agent_shutdown() {
    let h = Harness::start();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);
    let pid = h.with_proc("agent", |p| p.pid().as_raw());
    let status_kib = |field: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap()
    };
    let cpu_seconds = || -> f64 {
        let u = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = u.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        ticks as f64 / 100.0
    };

    // CPU: one worker at 40 % for 3 s.
    let (c0, t0) = (cpu_seconds(), Instant::now());
    ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "cpu",
        "--load",
        "40",
        "--duration",
        "3s",
    ]));
    std::thread::sleep(Duration::from_millis(2500));
    let share = (cpu_seconds() - c0) / t0.elapsed().as_secs_f64();
    assert!(
        (0.28..=0.55).contains(&share),
        "40 % asked, the agent used {:.0} %",
        share * 100.0
    );

    // Memory: resident memory grows by the amount, and comes back down.
    let rss0 = status_kib("VmRSS:");
    let mem = ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "memory",
        "--bytes",
        "128MiB",
        "--duration",
        "5m",
    ]))
    .remove(0);
    eventually(
        WAIT,
        "the agent's resident memory to grow by 128 MiB",
        || {
            let grown = status_kib("VmRSS:").saturating_sub(rss0);
            if grown >= 120 * 1024 {
                Ok(())
            } else {
                Err(format!("+{grown} KiB"))
            }
        },
    );
    h.rampart_ok(&["fault", "revert", &mem]);
    eventually(WAIT, "the memory to be released", || {
        let grown = status_kib("VmRSS:").saturating_sub(rss0);
        if grown < 32 * 1024 {
            Ok(())
        } else {
            Err(format!("+{grown} KiB"))
        }
    });

    // Disk fill: free space drops by the amount, then returns.
    let dir = h.dir.path().join("fill");
    std::fs::create_dir_all(&dir).unwrap();
    let free = || {
        let s = nix::sys::statvfs::statvfs(&dir).unwrap();
        s.blocks_available() as u64 * s.fragment_size() as u64
    };
    let before = free();
    let fill = ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "disk-fill",
        "--path",
        dir.to_str().unwrap(),
        "--bytes",
        "96MiB",
        "--duration",
        "5m",
    ]))
    .remove(0);
    assert!(
        before.saturating_sub(free()) >= 90 << 20,
        "{before} → {}",
        free()
    );
    h.rampart_ok(&["fault", "revert", &fill]);
    assert!(before.saturating_sub(free()) < 16 << 20, "space returned");

    // Kill: the target pid is gone.
    let mut victim = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let victim_pid = victim.id().to_string();
    ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "process-kill",
        "--pid",
        &victim_pid,
        "--duration",
        "10s",
    ]));
    let status = victim.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "SIGKILL by default");

    // A pause is undone when the agent shuts down.
    let mut paused = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let paused_pid = paused.id();
    ids(&h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "process-pause",
        "--pid",
        &paused_pid.to_string(),
        "--duration",
        "5m",
    ]));
    let state = || {
        std::fs::read_to_string(format!("/proc/{paused_pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, t)| t.trim_start().chars().next())
            })
    };
    assert_eq!(state(), Some('T'));
    h.with_proc("agent", |p| {
        p.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(p.wait_exit(WAIT).success());
    });
    assert_ne!(state(), Some('T'), "continued before the agent exited");
    assert!(
        std::fs::read_dir(a.state_dir.join("faults")).map_or(true, |mut d| d.next().is_none()),
        "the journal is empty after a clean shutdown"
    );
    let _ = paused.kill();
    let _ = paused.wait();
}
