//! `store`: what writing one sweep's results costs each database, without the fleet around it.
//! The results are linux-baseline's real verdicts on the `weak` fixture host, written for N hosts
//! in the batches a sweep writes (`record_sweep_hosts`), as the sweep's writer does.
//! Then what reading them back costs: one sweep's report, status (all stored results), one host's
//! history, the latest counts, the sweep list.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rampart_agent::facts::{FactSource, collect};
use rampart_coordinator::compliance::Packs;
use rampart_coordinator::store::{Store, StoredHost, SweepHostRecord, SweepResultRecord};
use rampart_e2e::postgres::PgDatabase;

use crate::fleet::Databases;
use crate::{cpu_seconds, median};

/// Hosts per `record_sweep_hosts` call: the sweep's write batch.
const BATCH: usize = 256;

pub(crate) fn store(hosts: usize, repeats: usize, databases: Databases) -> anyhow::Result<()> {
    let facts = collect(
        &FactSource::fixture(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hosts/weak")),
        &[],
    );
    let facts_json = serde_json::to_string(&facts)?;
    let facts = serde_json::to_value(&facts)?;
    let packs = Packs::builtin();
    let pack = packs.get("linux-baseline").context("built-in pack")?;
    let results: Vec<SweepResultRecord> = pack
        .evaluate(&facts)
        .into_iter()
        .map(|r| SweepResultRecord {
            rule: r.rule,
            status: r.status.name().into(),
            severity: r.severity.name().into(),
            evidence: r.evidence.to_string(),
            micros: r.micros,
            waiver: None,
        })
        .collect();
    let evidence: usize = results.iter().map(|r| r.evidence.len()).sum();
    let per_host = results.len();
    println!(
        "one sweep of {hosts} hosts x {} results ({} bytes of evidence a host, {} of facts), written {BATCH} hosts a transaction; median of {repeats}:",
        results.len(),
        evidence,
        facts_json.len()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut dbs: Vec<(&str, Option<PgDatabase>)> = Vec::new();
    if databases != Databases::Postgres {
        dbs.push(("sqlite", None));
    }
    if databases != Databases::Sqlite {
        let db = PgDatabase::create()
            .context("set RAMPART_TEST_DATABASE_URL to a PostgreSQL server (see .ci/postgres)")?;
        dbs.push(("postgres", Some(db)));
    }
    for (name, db) in &dbs {
        let dir = tempfile::tempdir()?;
        let store = runtime.block_on(Store::connect(
            dir.path(),
            db.as_ref().map(|d| d.url.as_str()),
        ))?;
        let mut wall = Vec::new();
        let mut own_cpu = Vec::new();
        let mut server_cpu = Vec::new();
        for repeat in 0..repeats {
            let sweep = format!("sweep-bench-{repeat}");
            let targets: Vec<(String, String)> = (0..hosts)
                .map(|i| (format!("agent-{i:05}"), format!("host-{i:05}")))
                .collect();
            runtime.block_on(store.create_sweep(
                &sweep,
                "linux-baseline",
                "",
                "bench",
                &targets,
            ))?;
            let batches: Vec<Vec<StoredHost>> = targets
                .chunks(BATCH)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|(agent, hostname)| StoredHost {
                            host: SweepHostRecord {
                                agent_id: agent.clone(),
                                hostname: hostname.clone(),
                                status: "ok".into(),
                                message: String::new(),
                                collect_ms: 12,
                                eval_micros: 1800,
                                labels: Default::default(),
                            },
                            results: results.clone(),
                            facts: Some((1, facts_json.clone())),
                        })
                        .collect()
                })
                .collect();
            let servers = server_pids(db.as_ref());
            let server_before: f64 = servers.iter().filter_map(|p| cpu_seconds(*p).ok()).sum();
            let cpu_before = crate::self_cpu();
            let start = Instant::now();
            runtime.block_on(async {
                for batch in &batches {
                    store.record_sweep_hosts(&sweep, batch).await?;
                }
                anyhow::Ok(())
            })?;
            wall.push(start.elapsed().as_secs_f64());
            own_cpu.push(crate::self_cpu() - cpu_before);
            let server_after: f64 = servers.iter().filter_map(|p| cpu_seconds(*p).ok()).sum();
            server_cpu.push(server_after - server_before);
        }
        let wall = median(wall);
        println!(
            "  [{name}] {wall:.2} s ({:.0} hosts/s); CPU: coordinator side {:.2} s{}",
            hosts as f64 / wall,
            median(own_cpu),
            if db.is_some() {
                format!(", server {:.2} s", median(server_cpu))
            } else {
                String::new()
            }
        );
        // What readers then pay, with `repeats` such sweeps stored: one sweep's report, the
        // fleet's status (every stored result), one host's history, the sweep list.
        let mut reads: Vec<(&str, Vec<f64>)> = vec![
            ("sweep show (one sweep, every result)", vec![]),
            ("status and drift (every stored result)", vec![]),
            ("one host's history", vec![]),
            ("latest counts per host", vec![]),
            ("sweep list", vec![]),
        ];
        for _ in 0..3 {
            runtime.block_on(async {
                let timed = Instant::now();
                let (_, _, results) = store
                    .sweep("sweep-bench-0")
                    .await?
                    .context("stored sweep")?;
                anyhow::ensure!(
                    results.len() == hosts * per_host,
                    "{} results",
                    results.len()
                );
                reads[0].1.push(timed.elapsed().as_secs_f64());
                let timed = Instant::now();
                let rows = store.result_history(None, 0).await?;
                anyhow::ensure!(
                    rows.len() == repeats * hosts * per_host,
                    "{} rows",
                    rows.len()
                );
                reads[1].1.push(timed.elapsed().as_secs_f64());
                let timed = Instant::now();
                let rows = store.result_history(Some("agent-00042"), 0).await?;
                anyhow::ensure!(rows.len() == repeats * per_host, "{} rows", rows.len());
                reads[2].1.push(timed.elapsed().as_secs_f64());
                let timed = Instant::now();
                store.latest_status_counts().await?;
                reads[3].1.push(timed.elapsed().as_secs_f64());
                let timed = Instant::now();
                store.recent_sweeps(50).await?;
                reads[4].1.push(timed.elapsed().as_secs_f64());
                anyhow::Ok(())
            })?;
        }
        for (what, times) in reads {
            println!("    read: {what}: {:.3} s", median(times));
        }
    }
    Ok(())
}

/// The PostgreSQL server's processes on this machine (their CPU is the write's cost too): every
/// process whose name starts with `postgres`, found in /proc.
fn server_pids(db: Option<&PgDatabase>) -> Vec<i32> {
    if db.is_none() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.starts_with("postgres"))
        })
        .collect()
}
