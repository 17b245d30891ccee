//! Benchmarks of the foundation, with the real binaries and the real protocol:
//!
//! - `agent-idle`: one agent in a namespace host at the default 10 s heartbeat; its resident memory,
//!   CPU use, and the bytes its host sends and receives per minute (veth counters: TCP, TLS and
//!   HTTP/2 overhead included).
//! - `fleet`: N simulated agents (the agent library's own enrolment and session code, one mTLS
//!   connection each) against one coordinator; the coordinator's memory and CPU before and after.
//!
//! Build with `--release`. Figures are medians over the repeats; see BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

mod cis;
mod console;
mod fleet;
mod halt;
mod store;
mod threats;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rampart_e2e::Harness;

/// The coordinator's allocator (see `coordinator/src/main.rs`), so that what is measured in this
/// process (pack evaluation, the store) runs as it does in `rampart`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "Rampart foundation benchmarks (run with --release)")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Idle agent: memory, CPU, bytes per minute (needs root and iproute2).
    AgentIdle {
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        window: Duration,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
    /// Fact collection on this machine: time per collection and the agent's extra memory.
    Facts {
        #[arg(long, default_value_t = 20)]
        repeats: usize,
    },
    /// Evaluation of the built-in linux-baseline pack over this machine's facts, per host.
    Evaluate {
        #[arg(long, default_value_t = 200)]
        repeats: usize,
    },
    /// The CIS packs: evaluation per host for every built-in pack; cis-debian-12 beside
    /// `oscap-chroot` with ssg-debian on the same fixture trees (needs root, openscap-utils,
    /// ssg-debian).
    Cis {
        #[arg(long, default_value_t = 50)]
        repeats: usize,
        /// Packs that replace the built-in ones of the same name (e.g. a changed copy).
        #[arg(long)]
        packs_dir: Option<std::path::PathBuf>,
        /// Instead: time each pack of this folder beside the built-in pack of the same name,
        /// alternating in one run (a pack folder may carry its own copy of `cis-common`).
        #[arg(long)]
        against: Option<std::path::PathBuf>,
        /// Instead: evaluate only this pack, compiled, `--repeats` times over this machine's facts,
        /// and nothing else; for counting its instructions with
        /// `valgrind --tool=callgrind --toggle-collect='*Pack*evaluate*'`.
        #[arg(long, conflicts_with = "against")]
        only: Option<String>,
    },
    /// Command → fault active latency for nftables faults: one real agent in a namespace host,
    /// partition faults injected and reverted through the coordinator (needs root, ip, nft).
    FaultLatency {
        #[arg(long, default_value_t = 200)]
        repeats: usize,
    },
    /// CPU fault accuracy (1 worker at 50 %) beside `stress-ng --cpu 1 --cpu-load 50`, in turns.
    CpuAccuracy {
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        window: Duration,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
    },
    /// Experiment halt latency: N simulated agents each holding a (harmless) fault of one run;
    /// the hypothesis breaks, and the time from that probe result to the last revert
    /// confirmation is the run's halt latency.
    Halt {
        #[arg(long, default_value_t = 100)]
        agents: usize,
        #[arg(long, default_value_t = 20)]
        repeats: usize,
    },
    /// Threat model: a generated model (components, flows) read, ruled, rated and resolved
    /// against 1,000 hosts of evidence in process, then applied through a real coordinator.
    Threats {
        #[arg(long, default_value_t = 500)]
        components: usize,
        #[arg(long, default_value_t = 2000)]
        flows: usize,
        #[arg(long, default_value_t = 20)]
        repeats: usize,
    },
    /// Findings and time of Rampart and OWASP pytm (installed from PyPI into a throw-away
    /// virtual environment) on the same three-element model.
    Pytm {
        #[arg(long, default_value_t = 50)]
        repeats: usize,
    },
    /// The web console: fleet page time with N simulated agents, live view latency with several
    /// watchers, coordinator memory with the console on and off (side by side).
    Console {
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        #[arg(long, default_value_t = 200)]
        requests: usize,
        #[arg(long, default_value_t = 5)]
        watchers: usize,
        #[arg(long, default_value_t = 20)]
        notes: usize,
    },
    /// Coordinator with N simulated agents: memory and CPU.
    Fleet {
        #[arg(long, default_value_t = 1000)]
        agents: usize,
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        window: Duration,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Where the coordinator stores: sqlite, postgres (a fresh database on the server
        /// RAMPART_TEST_DATABASE_URL names), or both, one after the other in this run.
        #[arg(long, value_enum, default_value_t = fleet::Databases::Sqlite)]
        database: fleet::Databases,
    },
    /// Writing one sweep's results (N hosts x linux-baseline's 52 verdicts) to each database,
    /// without the fleet: time, and CPU on each side (PostgreSQL's server processes counted); then
    /// the reads of reports, status, history and lists over what was written.
    Store {
        #[arg(long, default_value_t = 10_000)]
        hosts: usize,
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        #[arg(long, value_enum, default_value_t = fleet::Databases::Both)]
        database: fleet::Databases,
    },
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: i32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field}"))?;
    Ok(line.split_whitespace().nth(1).context("value")?.parse()?)
}

pub(crate) fn rss_kib(pid: i32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// Collection time in-process (the agent's own collector code on `/`), and the real agent's
/// resident memory before and at its peak across repeated `rampart facts` calls.
fn facts(repeats: usize) -> anyhow::Result<()> {
    use rampart_agent::facts::{FactSource, collect};
    let mut times = Vec::new();
    let mut sizes = Vec::new();
    // The first collection walks the filesystems (world-writable and unowned files); the next
    // ones reuse that walk for 15 minutes, as an agent does.
    let start = Instant::now();
    let first = collect(&FactSource::host(), &[]);
    let first_ms = start.elapsed().as_secs_f64() * 1000.0;
    let walk = first.file_walk.clone().unwrap_or_default();
    let walk_ms = first
        .timings
        .iter()
        .find(|t| t.collector == "file_walk")
        .map_or(0.0, |t| f64::from(t.micros) / 1000.0);
    for _ in 0..repeats {
        let start = Instant::now();
        let report = collect(&FactSource::host(), &[]);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        sizes.push(prost::Message::encoded_len(&report) as f64);
        if !report.errors.is_empty() {
            println!("collector errors: {:?}", report.errors);
        }
    }
    let h = Harness::start();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    h.run_agent("agent", &a, &["--heartbeat-interval", "10s"]);
    h.wait_online(&[&a.id]);
    let pid = h.with_proc("agent", |p| p.pid().as_raw());
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid)? as f64 / 1024.0;
    let mut round_trips = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        h.rampart_ok(&["facts", &a.id, "-o", "json"]);
        round_trips.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let peak = status_kib(pid, "VmHWM:")? as f64 / 1024.0;
    let after = rss_kib(pid)? as f64 / 1024.0;
    let last = collect(&FactSource::host(), &[]);
    let per: Vec<String> = last
        .timings
        .iter()
        .map(|t| format!("{} {:.1} ms", t.collector, f64::from(t.micros) / 1000.0))
        .collect();
    println!("fact collection on this machine (median of {repeats}):");
    println!("  per collector        {}", per.join(", "));
    println!(
        "  collection time      {:.1} ms (in-process, all {} collectors, the walk reused)",
        median(times),
        last.timings.len()
    );
    println!(
        "  first collection     {first_ms:.1} ms, of which the file walk {walk_ms:.1} ms ({} entries, budget {}, {})",
        walk.walked,
        walk.budget,
        if walk.budget_hit {
            "budget hit"
        } else {
            "whole disk"
        }
    );
    println!(
        "  report size          {:.0} KiB (protobuf)",
        median(sizes) / 1024.0
    );
    println!(
        "  `rampart facts` call {:.1} ms (CLI start, TLS, RPC, collection, JSON)",
        median(round_trips)
    );
    println!(
        "  agent memory         {before:.2} MiB idle, peak {peak:.2} MiB (+{:.2} MiB), {after:.2} MiB after",
        peak - before
    );
    Ok(())
}

/// CPU time of all of a process's threads, in seconds, from the scheduler's nanosecond counters
/// (`/proc/PID/task/*/schedstat`): an idle agent uses less than one 10 ms clock tick a minute.
pub(crate) fn cpu_seconds(pid: i32) -> anyhow::Result<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = std::fs::read_to_string(task?.path().join("schedstat"))?;
        ns += stat
            .split_whitespace()
            .next()
            .context("schedstat format")?
            .parse::<u64>()?;
    }
    Ok(ns as f64 / 1e9)
}

fn counter(iface: &str, name: &str) -> anyhow::Result<u64> {
    let p = Path::new("/sys/class/net")
        .join(iface)
        .join("statistics")
        .join(name);
    Ok(std::fs::read_to_string(&p)
        .with_context(|| p.display().to_string())?
        .trim()
        .parse()?)
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn agent_idle(window: Duration, repeats: usize) -> anyhow::Result<()> {
    let Some(h) = Harness::start_with_hosts(1) else {
        bail!("needs root and iproute2")
    };
    let host = h.network.as_ref().context("network")?.hosts[0].clone();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", Some(&host.netns), &token, &[]);
    h.run_agent(
        "agent",
        &a,
        &["--heartbeat-interval", "10s", "--reconnect-max", "30s"],
    );
    h.wait_online(&[&a.id]);
    let pid = h.with_proc("agent", |p| p.pid().as_raw());
    std::thread::sleep(Duration::from_secs(5));
    let (mut rss, mut cpu, mut sent, mut recv) = (vec![], vec![], vec![], vec![]);
    for i in 0..repeats {
        let (c0, tx0, rx0) = (
            cpu_seconds(pid)?,
            counter(&host.veth, "rx_bytes")?,
            counter(&host.veth, "tx_bytes")?,
        );
        let start = Instant::now();
        std::thread::sleep(window);
        let secs = start.elapsed().as_secs_f64();
        let (c1, tx1, rx1) = (
            cpu_seconds(pid)?,
            counter(&host.veth, "rx_bytes")?,
            counter(&host.veth, "tx_bytes")?,
        );
        let r = rss_kib(pid)? as f64 / 1024.0;
        // Our end's rx is what the host sent.
        let s = (tx1 - tx0) as f64 * 60.0 / secs;
        let v = (rx1 - rx0) as f64 * 60.0 / secs;
        let c = (c1 - c0) / secs * 100.0;
        println!(
            "repeat {}: rss {r:.2} MiB, cpu {c:.4} %, sent {s:.0} B/min, received {v:.0} B/min",
            i + 1
        );
        rss.push(r);
        cpu.push(c);
        sent.push(s);
        recv.push(v);
    }
    assert_eq!(h.agent_state(&a.id).as_deref(), Some("online"));
    println!("agent idle (median of {repeats} x {window:?}, heartbeat 10s):");
    println!("  resident memory  {:.2} MiB", median(rss));
    println!("  CPU              {:.4} % of one core", median(cpu));
    println!("  sent             {:.0} bytes/min", median(sent));
    println!("  received         {:.0} bytes/min", median(recv));
    Ok(())
}

/// A coordinator that lets every simulated agent enrol from 127.0.0.1 (no enrolment limits).
pub(crate) fn bench_coordinator() -> anyhow::Result<Harness> {
    bench_coordinator_with(&[])
}

/// A coordinator on loopback without enrolment limits, with `extra` serve arguments.
pub(crate) fn bench_coordinator_with(extra: &[&str]) -> anyhow::Result<Harness> {
    bench_coordinator_on(Harness::start(), extra)
}

/// Like [`bench_coordinator_with`], on a started harness (e.g. one on PostgreSQL).
pub(crate) fn bench_coordinator_on(h: Harness, extra: &[&str]) -> anyhow::Result<Harness> {
    let config = h.dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        "enroll_per_source_per_minute = 1000000\nenroll_per_minute = 1000000\n",
    )?;
    h.with_proc("coordinator", |p| p.kill());
    let mut args = vec!["--config", config.to_str().unwrap_or_default()];
    args.extend(extra);
    h.start_coordinator_with(&args);
    Ok(h)
}

/// Time to evaluate every check of linux-baseline over one host's facts (this machine's).
/// The duplicate-UID rule as it was (a count over all accounts for each account: O(n²)) and as it
/// is (sorted, each UID compared with its neighbour), side by side over `n` accounts: medians, ms.
fn duplicate_uid_rules(n: usize, repeats: usize) -> anyhow::Result<(f64, f64)> {
    const BEFORE: &str = "package bench\ndups := sort({sprintf(\"%d\", [u]) | some a in input.accounts; u := a.uid; count([b | some b in input.accounts; b.uid == u]) > 1})\n";
    const AFTER: &str = "package bench\nuids := sort([a.uid | some a in input.accounts])\ndups := sort({sprintf(\"%d\", [u]) | some i, u in uids; i > 0; uids[i - 1] == u})\n";
    let accounts: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"name": format!("u{i}"), "uid": if i == 7 { 0 } else { 10_000 + i }}))
        .collect();
    let input =
        regorus::Value::from_json_str(&serde_json::json!({"accounts": accounts}).to_string())?;
    let mut medians = Vec::new();
    for policy in [BEFORE, AFTER] {
        let mut engine = regorus::Engine::new();
        engine.add_policy("bench.rego".into(), policy.into())?;
        let mut times = Vec::new();
        for _ in 0..repeats.max(1) {
            engine.set_input(input.clone());
            let start = Instant::now();
            let v = engine.eval_rule("data.bench.dups".into())?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(
                v.as_array().map(|a| a.is_empty()).unwrap_or(false),
                "no duplicates expected"
            );
        }
        medians.push(median(times));
    }
    Ok((medians[0], medians[1]))
}

fn evaluate(repeats: usize) -> anyhow::Result<()> {
    use rampart_agent::facts::{FactSource, collect};
    use rampart_coordinator::compliance::Packs;
    let facts = serde_json::to_value(collect(&FactSource::host(), &[]))?;
    let packs = Packs::builtin();
    let pack = packs.get("linux-baseline").context("built-in pack")?;
    let mut per_host = Vec::new();
    let mut profiled = Vec::new();
    let mut per_rule = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        pack.evaluate(&facts);
        per_host.push(start.elapsed().as_secs_f64() * 1000.0);
        let start = Instant::now();
        let results = pack.evaluate_profiled(&facts);
        profiled.push(start.elapsed().as_secs_f64() * 1000.0);
        per_rule.push(results.iter().map(|r| r.micros as f64).sum::<f64>() / results.len() as f64);
    }
    // The same pack over a small host (the `weak` fixture tree: few packages, few sysctl keys),
    // side by side, to show how the figure scales with the size of the facts.
    let small = serde_json::to_value(collect(
        &FactSource::fixture(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hosts/weak")),
        &[],
    ))?;
    let mut per_small_host = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        pack.evaluate(&small);
        per_small_host.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    // The largest host a report carries: 20,000 accounts and groups (the collectors' limit).
    let mut large = small.clone();
    large["accounts"] = (0..20_000)
        .map(|i| serde_json::json!({"name": format!("user{i}"), "uid": 10_000 + i, "gid": 100, "password": "locked", "shell": "/usr/sbin/nologin"}))
        .collect();
    large["groups"] = (0..20_000)
        .map(|i| serde_json::json!({"name": format!("group{i}"), "gid": 10_000 + i}))
        .collect();
    let mut per_large_host = Vec::new();
    for _ in 0..repeats.min(20) {
        let start = Instant::now();
        pack.evaluate(&large);
        per_large_host.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let (before, after) = duplicate_uid_rules(5_000, repeats.min(5))?;
    let size = |v: &serde_json::Value, k: &str| v[k].as_array().map_or(0, Vec::len);
    let results = pack.evaluate_profiled(&facts);
    let slowest = results.iter().max_by_key(|r| r.micros).context("results")?;
    println!(
        "linux-baseline on this machine's facts ({} checks, median of {repeats}):",
        results.len()
    );
    println!(
        "  per host            {:.2} ms (one pass over every check)",
        median(per_host)
    );
    println!(
        "  (this machine: {} packages, {} sysctl keys, {} units)",
        size(&facts, "packages"),
        facts["sysctl"].as_object().map_or(0, |m| m.len()),
        size(&facts, "units")
    );
    println!(
        "  per small host      {:.2} ms (the weak fixture: {} packages, {} sysctl keys)",
        median(per_small_host),
        size(&small, "packages"),
        small["sysctl"].as_object().map_or(0, |m| m.len())
    );
    println!(
        "  per large host      {:.2} ms (the weak fixture with 20,000 accounts and groups)",
        median(per_large_host)
    );
    println!(
        "  duplicate-UID rule over 5,000 accounts: count per account {before:.1} ms, sorted {after:.2} ms ({:.0}x)",
        before / after
    );
    println!(
        "  per host, profiled  {:.2} ms (each check on its own, timed)",
        median(profiled)
    );
    println!(
        "  per check, profiled {:.0} us on average; slowest {} ({} us)",
        median(per_rule),
        slowest.rule,
        slowest.micros
    );
    Ok(())
}

pub(crate) fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}

/// Injects and reverts a partition `repeats` times; the agent's answer time as the coordinator
/// measures it (command sent → `active` back, nft applied and checked), and the operator's
/// round trip (CLI included).
fn fault_latency(repeats: usize) -> anyhow::Result<()> {
    let h = Harness::start_with_hosts(1).context("needs root and iproute2")?;
    let host = h.network.as_ref().context("network")?.hosts[0].clone();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", Some(&host.netns), &token, &[]);
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);
    let mut agent_ms = Vec::new();
    let mut cli_ms = Vec::new();
    for i in 0..repeats {
        let start = Instant::now();
        let out = h.rampart(&[
            "fault",
            "inject",
            "--kind",
            "network-partition",
            "--port",
            "9",
            "--duration",
            "1m",
            "-o",
            "json",
        ]);
        cli_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).context("inject JSON")?;
        let f = &r[0]["faults"][0];
        if f["state"] != "active" {
            bail!("repeat {i}: {r}");
        }
        agent_ms.push(r[0]["latency_micros"].as_f64().unwrap_or(f64::NAN) / 1000.0);
        h.rampart_ok(&[
            "fault",
            "revert",
            f["fault_id"].as_str().unwrap_or_default(),
        ]);
    }
    println!("network-partition, command → active (median of {repeats}):");
    println!(
        "  coordinator → agent → coordinator  p50 {:.2} ms, p99 {:.2} ms",
        percentile(agent_ms.clone(), 0.5),
        percentile(agent_ms, 0.99)
    );
    println!(
        "  `rampart fault inject` end to end  p50 {:.1} ms, p99 {:.1} ms (CLI start and TLS included)",
        percentile(cli_ms.clone(), 0.5),
        percentile(cli_ms, 0.99)
    );
    Ok(())
}

/// CPU seconds of this process, ended threads included (user + system).
fn self_cpu() -> f64 {
    rusage_cpu(nix::sys::resource::UsageWho::RUSAGE_SELF)
}

fn rusage_cpu(who: nix::sys::resource::UsageWho) -> f64 {
    nix::sys::resource::getrusage(who)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(f64::NAN)
}

/// The CPU fault at 50 % and stress-ng at 50 %, in turns, each measured as CPU seconds used per
/// wall second.
fn cpu_accuracy(window: Duration, repeats: usize) -> anyhow::Result<()> {
    use rampart_agent::faults::{FaultPolicy, Faults};
    use rampart_proto::v1::{CpuFault, FaultSpec, InjectFault, fault_spec};
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let faults = Faults::new(FaultPolicy::default(), dir.path(), Vec::new());
    let stress = which("stress-ng");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..repeats {
        let (c0, t0) = (self_cpu(), Instant::now());
        let st = runtime.block_on(faults.inject(InjectFault {
            fault_id: format!("bench-{i}"),
            spec: Some(FaultSpec {
                kind: Some(fault_spec::Kind::Cpu(CpuFault {
                    workers: 1,
                    load_percent: 50,
                    cpus: vec![],
                })),
            }),
            duration_ms: window.as_millis() as u32 + 60_000,
        }));
        if st.state != "active" {
            bail!("{st:?}");
        }
        std::thread::sleep(window);
        let used = (self_cpu() - c0) / t0.elapsed().as_secs_f64() * 100.0;
        runtime.block_on(faults.revert(&format!("bench-{i}"), "request"));
        ours.push(used);
        if let Some(stress) = &stress {
            let before = children_cpu();
            let t0 = Instant::now();
            let status = std::process::Command::new(stress)
                .args(["--cpu", "1", "--cpu-load", "50", "--timeout"])
                .arg(format!("{}s", window.as_secs()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()?;
            if !status.success() {
                bail!("stress-ng failed: {status}");
            }
            theirs.push((children_cpu() - before) / t0.elapsed().as_secs_f64() * 100.0);
        }
        println!(
            "repeat {}: rampart cpu fault {:.1} %{}",
            i + 1,
            ours.last().unwrap_or(&f64::NAN),
            theirs
                .last()
                .map(|t| format!(", stress-ng {t:.1} %"))
                .unwrap_or_default()
        );
    }
    println!("CPU load asked: 50 % of one core (median of {repeats} x {window:?}):");
    println!("  rampart cpu fault  {:.1} %", median(ours));
    match stress {
        Some(_) => println!("  stress-ng          {:.1} %", median(theirs)),
        None => println!("  stress-ng          not installed (apt install stress-ng)"),
    }
    Ok(())
}

fn which(tool: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// CPU seconds used by this process's waited-for children.
fn children_cpu() -> f64 {
    rusage_cpu(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Bench::FaultLatency { repeats } => fault_latency(repeats),
        Bench::CpuAccuracy { window, repeats } => cpu_accuracy(window, repeats),
        Bench::AgentIdle { window, repeats } => agent_idle(window, repeats),
        Bench::Fleet {
            agents,
            window,
            repeats,
            database,
        } => fleet::fleet(agents, window, repeats, database),
        Bench::Store {
            hosts,
            repeats,
            database,
        } => store::store(hosts, repeats, database),
        Bench::Facts { repeats } => facts(repeats),
        Bench::Halt { agents, repeats } => halt::halt(agents, repeats),
        Bench::Evaluate { repeats } => evaluate(repeats),
        Bench::Cis {
            repeats,
            packs_dir,
            only: Some(name),
            ..
        } => cis::only(&name, repeats, packs_dir.as_deref()),
        Bench::Cis {
            repeats,
            packs_dir,
            against,
            only: None,
        } => cis::run(repeats, packs_dir.as_deref(), against.as_deref()),
        Bench::Threats {
            components,
            flows,
            repeats,
        } => threats::threats(components, flows, repeats),
        Bench::Pytm { repeats } => threats::versus_pytm(repeats),
        Bench::Console {
            agents,
            requests,
            watchers,
            notes,
        } => console::console(agents, requests, watchers, notes),
    }
}
