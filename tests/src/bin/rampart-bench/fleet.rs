//! `fleet`: N simulated agents (the agent library's own enrolment and session code, one mTLS
//! connection each) against one coordinator storing in SQLite, PostgreSQL, or each in turn:
//! its memory and CPU with the fleet idle, a sweep of every host, the emergency stop.

use std::time::{Duration, Instant};

use anyhow::Context;
use rampart_e2e::Harness;
use rampart_e2e::postgres::PgDatabase;

use crate::{bench_coordinator_on, cpu_seconds, median, rss_kib};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Databases {
    Sqlite,
    Postgres,
    Both,
}

/// One database's medians.
struct Figures {
    database: &'static str,
    base_rss: f64,
    base_cpu: f64,
    enrol: Duration,
    connect: Duration,
    rss: f64,
    cpu: f64,
    online: usize,
    sweep: f64,
    stop: f64,
    /// After a coordinator restart: time until every agent is online again, and how many came
    /// back in each second.
    reconnect: Duration,
    reconnect_per_second: Vec<usize>,
}

pub(crate) fn fleet(
    agents: usize,
    window: Duration,
    repeats: usize,
    databases: Databases,
) -> anyhow::Result<()> {
    let mut all = Vec::new();
    if databases != Databases::Postgres {
        all.push(measure(agents, window, repeats, None)?);
    }
    if databases != Databases::Sqlite {
        let db = PgDatabase::create()
            .context("set RAMPART_TEST_DATABASE_URL to a PostgreSQL server (see .ci/postgres)")?;
        all.push(measure(agents, window, repeats, Some(&db))?);
    }
    println!(
        "coordinator with {agents} simulated agents (median of {repeats} x {window:?}, heartbeat 10s):"
    );
    for f in &all {
        println!("[{}]", f.database);
        println!(
            "  enrolment of all  {:.1} s ({:.1} ms each, 16 at a time)",
            f.enrol.as_secs_f64(),
            f.enrol.as_secs_f64() * 1000.0 / agents as f64
        );
        println!("  all online after  {:.1} s", f.connect.as_secs_f64());
        println!(
            "  resident memory   {:.1} MiB (idle: {:.1} MiB; {:.1} KiB per agent)",
            f.rss,
            f.base_rss,
            (f.rss - f.base_rss) * 1024.0 / agents as f64
        );
        println!(
            "  CPU               {:.3} % of one core (idle: {:.3} %)",
            f.cpu, f.base_cpu
        );
        println!("  still online      {}/{agents}", f.online);
        println!(
            "  sweep end to end  {:.2} s for {agents} hosts (linux-baseline; `rampart sweep -o json`, CLI included)",
            f.sweep
        );
        println!(
            "  emergency stop    {:.3} s to the last of {agents} confirmations (`rampart stop`, CLI included)",
            f.stop
        );
        let peak = f.reconnect_per_second.iter().max().copied().unwrap_or(0);
        println!(
            "  after a restart   all online {:.1} s after the coordinator listened again; at most {peak} came back in one second",
            f.reconnect.as_secs_f64()
        );
        println!(
            "  back per second   {}",
            f.reconnect_per_second
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(())
}

fn measure(
    agents: usize,
    window: Duration,
    repeats: usize,
    db: Option<&PgDatabase>,
) -> anyhow::Result<Figures> {
    let database = if db.is_some() { "postgres" } else { "sqlite" };
    let started = match db {
        Some(db) => Harness::start_on_postgres(db),
        None => Harness::start(),
    };
    let h = bench_coordinator_on(started, &[])?;
    let coord = h.with_proc("coordinator", |p| p.pid().as_raw());
    std::thread::sleep(Duration::from_secs(2));
    let base_rss = rss_kib(coord)? as f64 / 1024.0;
    let c0 = cpu_seconds(coord)?;
    std::thread::sleep(window);
    let base_cpu = (cpu_seconds(coord)? - c0) / window.as_secs_f64() * 100.0;
    println!("[{database}] coordinator with 0 agents: rss {base_rss:.1} MiB, cpu {base_cpu:.3} %");

    let sim = rampart_e2e::sim::start(&h, agents, &["sim=true"], Default::default())?;
    let (enrol, connect) = (sim.enrol_time, sim.connect_time);
    std::thread::sleep(Duration::from_secs(5));
    let (mut rss, mut cpu) = (vec![], vec![]);
    for i in 0..repeats {
        let c0 = cpu_seconds(coord)?;
        let start = Instant::now();
        std::thread::sleep(window);
        let c = (cpu_seconds(coord)? - c0) / start.elapsed().as_secs_f64() * 100.0;
        let r = rss_kib(coord)? as f64 / 1024.0;
        println!(
            "[{database}] repeat {}: rss {r:.1} MiB, cpu {c:.3} %",
            i + 1
        );
        rss.push(r);
        cpu.push(c);
    }
    let online = h.agents().iter().filter(|a| a["state"] == "online").count();
    let mut sweeps = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let out = h.rampart(&["sweep", "--wait", "-o", "json"]);
        sweeps.push(start.elapsed().as_secs_f64());
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("sweep JSON")?;
        let checked = report["hosts"]
            .as_array()
            .map(|hs| hs.iter().filter(|h| h["status"] == "ok").count())
            .unwrap_or(0);
        println!(
            "[{database}] sweep of {agents} hosts: {:.2} s, {checked} checked, summary {}",
            sweeps.last().unwrap_or(&0.0),
            report["summary"]
        );
    }
    // The emergency stop: every simulated agent must confirm.
    let mut stops = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let out = h.rampart(&["stop", "-o", "json"]);
        stops.push(start.elapsed().as_secs_f64());
        let answers: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("stop JSON")?;
        let confirmed = answers
            .as_array()
            .map(|a| a.iter().filter(|x| x["error"] == "").count())
            .unwrap_or(0);
        println!(
            "[{database}] emergency stop: {:.3} s, {confirmed}/{agents} confirmed",
            stops.last().unwrap_or(&0.0)
        );
    }
    let (reconnect, reconnect_per_second) = restart(&h, agents, db)?;
    println!(
        "[{database}] restart: all {agents} online after {:.1} s; per second: {reconnect_per_second:?}",
        reconnect.as_secs_f64()
    );
    sim.stop();
    Ok(Figures {
        database,
        base_rss,
        base_cpu,
        enrol,
        connect,
        rss: median(rss),
        cpu: median(cpu),
        online,
        sweep: median(sweeps),
        stop: median(stops),
        reconnect,
        reconnect_per_second,
    })
}

/// Restarts the coordinator (SIGTERM, as `systemctl restart` does, then the same command) and
/// counts the agents online, from its database, until all are back.
fn restart(
    h: &Harness,
    agents: usize,
    db: Option<&PgDatabase>,
) -> anyhow::Result<(Duration, Vec<usize>)> {
    let online = || -> usize {
        const SQL: &str = "SELECT COUNT(*) FROM agents WHERE state = 'online'";
        let n = match db {
            Some(db) => db.scalar(SQL),
            None => h.sql(SQL),
        };
        n.unwrap_or(0) as usize
    };
    h.with_proc("coordinator", |p| {
        p.signal(nix::sys::signal::Signal::SIGTERM);
        p.wait_exit(Duration::from_secs(60));
    });
    let config = h.dir.path().join("coordinator.toml");
    h.start_coordinator_with(&["--config", config.to_str().unwrap_or_default()]);
    let start = Instant::now();
    let mut per_second = Vec::new();
    let mut counted = 0;
    loop {
        let n = online();
        let second = start.elapsed().as_secs() as usize;
        if per_second.len() <= second {
            per_second.resize(second + 1, 0);
        }
        per_second[second] += n.saturating_sub(counted);
        counted = counted.max(n);
        if n >= agents {
            return Ok((start.elapsed(), per_second));
        }
        if start.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("only {n}/{agents} agents back online 300 s after the restart");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
