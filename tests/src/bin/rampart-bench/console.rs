//! The web console under a fleet: two coordinators side by side, one with the console and one
//! without, each with the same number of simulated agents. Measures the fleet page's server time
//! (its `Server-Timing` header) and round trip, how fast a game day's live view shows a note to
//! several watchers, and the memory of both coordinators.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::BodyExt;
use rampart_e2e::Harness;
use rampart_e2e::https::{Https, request, server_ms, text};

use crate::{bench_coordinator_with, median, percentile, rss_kib};

pub fn console(
    agents: usize,
    requests: usize,
    watchers: usize,
    notes: usize,
) -> anyhow::Result<()> {
    let web: SocketAddr = format!("127.0.0.1:{}", rampart_e2e::chaos::free_port()).parse()?;
    let on = bench_coordinator_with(&["--web-listen", &web.to_string()])?;
    let off = bench_coordinator_with(&[])?;
    let pid_on = on.with_proc("coordinator", |p| p.pid().as_raw());
    let pid_off = off.with_proc("coordinator", |p| p.pid().as_raw());
    let sim_on = rampart_e2e::sim::start(&on, agents, &["sim=true"], Default::default())?;
    let sim_off = rampart_e2e::sim::start(&off, agents, &["sim=true"], Default::default())?;
    std::thread::sleep(Duration::from_secs(5));
    let idle = (rss_kib(pid_on)?, rss_kib(pid_off)?);
    println!(
        "{agents} agents each, idle: console on {:.1} MiB, off {:.1} MiB",
        idle.0 as f64 / 1024.0,
        idle.1 as f64 / 1024.0
    );
    let client = Https::new(web, &std::fs::read(on.data_dir.join("ca.pem"))?)?;
    let host = web.to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;

    // Log in and load the fleet page over one kept-alive connection.
    let (cookie, server, round, bytes) = rt.block_on(async {
        let mut c = client.connect().await?;
        let resp = c
            .send_request(request(
                "POST",
                "/login",
                &host,
                None,
                &format!("token={}", on.admin_token),
            )?)
            .await?;
        let cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
            .context("no session cookie")?;
        text(resp).await?;
        let (mut server, mut round, mut bytes) = (vec![], vec![], 0);
        for i in 0..requests {
            c.ready().await?;
            let start = Instant::now();
            let resp = c
                .send_request(request("GET", "/fleet", &host, Some(&cookie), "")?)
                .await?;
            let ms = server_ms(&resp).context("no Server-Timing")?;
            let body = text(resp).await?;
            round.push(start.elapsed().as_secs_f64() * 1000.0);
            server.push(ms);
            let rows = body.matches("<tr>").count() - 1;
            if i == 0 && rows != agents {
                bail!("the fleet page lists {rows} agents, not {agents}");
            }
            bytes = body.len();
        }
        anyhow::Ok((cookie, server, round, bytes))
    })?;
    println!(
        "fleet page, {agents} agents, {requests} loads ({:.0} kB): server p50 {:.1} ms p99 {:.1} ms; round trip p50 {:.1} ms p99 {:.1} ms",
        bytes as f64 / 1000.0,
        percentile(server.clone(), 0.5),
        percentile(server.clone(), 0.99),
        percentile(round.clone(), 0.5),
        percentile(round.clone(), 0.99),
    );
    let after_pages = rss_kib(pid_on)?;

    // A game day waiting at its gate, watched by several people; notes from the CLI.
    let live = live_view(&on, &client, &host, &cookie, &rt, watchers, notes)?;
    let after_live = rss_kib(pid_on)?;
    sim_on.stop();
    sim_off.stop();
    let (cli, seen) = live;
    println!(
        "live view, {watchers} watchers, {notes} notes: note command sent → shown on every watcher p50 {:.0} ms p99 {:.0} ms max {:.0} ms (the CLI call alone: median {:.0} ms)",
        percentile(seen.clone(), 0.5),
        percentile(seen.clone(), 0.99),
        seen.iter().copied().fold(0.0, f64::max),
        median(cli),
    );
    println!(
        "coordinator memory with {agents} agents: console off {:.1} MiB; console on {:.1} MiB idle, {:.1} MiB after the page loads, {:.1} MiB with {watchers} live watchers",
        idle.1 as f64 / 1024.0,
        idle.0 as f64 / 1024.0,
        after_pages as f64 / 1024.0,
        after_live as f64 / 1024.0,
    );
    Ok(())
}

/// Starts a game day that waits at an approval gate, opens `watchers` live views, adds `notes`
/// notes with the CLI and times each until every watcher has shown it. Returns the CLI times
/// and the note → shown times (ms).
fn live_view(
    h: &Harness,
    client: &Https,
    host: &str,
    cookie: &str,
    rt: &tokio::runtime::Runtime,
    watchers: usize,
    notes: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let dir = h.dir.path().join("day");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("later.yaml"),
        format!(
            "kind: Experiment\nname: later\nscope: {{selector: sim=true}}\nhypothesis:\n  - name: up\n    tcp: {{address: \"{}\"}}\nmethod:\n  - fault: {{kind: cpu, load: 10}}\n    duration: 1s\n",
            h.addr
        ),
    )?;
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        "kind: GameDay\nname: bench-day\nstages:\n  - name: go/no-go\n    gate: approval\n  - name: later\n    experiments: [later.yaml]\n",
    )?;
    let id = h
        .rampart_ok(&["gameday", "run", plan.to_str().unwrap_or_default()])
        .trim()
        .to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    rt.block_on(async {
        for w in 0..watchers {
            let mut c = client.connect().await?;
            let resp = c
                .send_request(request(
                    "GET",
                    &format!("/experiments/{id}/events"),
                    host,
                    Some(cookie),
                    "",
                )?)
                .await?;
            if !resp.status().is_success() {
                bail!("live view answered {}", resp.status());
            }
            let tx = tx.clone();
            tokio::spawn(async move {
                let _keep = c;
                let mut body = resp.into_body();
                while let Some(Ok(frame)) = body.frame().await {
                    if let Some(data) = frame.data_ref() {
                        let _ = tx.send((
                            w,
                            String::from_utf8_lossy(data).into_owned(),
                            Instant::now(),
                        ));
                    }
                }
            });
        }
        anyhow::Ok(())
    })?;
    // Let every stream deliver its first panel.
    std::thread::sleep(Duration::from_secs(1));
    while rx.try_recv().is_ok() {}
    let (mut cli, mut seen) = (vec![], vec![]);
    for k in 0..notes {
        let note = format!("bench-note-{k}");
        let sent = Instant::now();
        h.rampart_ok(&["gameday", "note", &id, &note]);
        cli.push(sent.elapsed().as_secs_f64() * 1000.0);
        let mut waiting: std::collections::BTreeSet<usize> = (0..watchers).collect();
        let mut buffers = vec![String::new(); watchers];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let got = rt.block_on(async { tokio::time::timeout(left, rx.recv()).await });
            let Ok(Some((w, chunk, at))) = got else {
                bail!("{} watcher(s) never showed {note}", waiting.len());
            };
            buffers[w].push_str(&chunk);
            if waiting.contains(&w) && buffers[w].contains(&note) {
                waiting.remove(&w);
                seen.push(at.duration_since(sent).as_secs_f64() * 1000.0);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    h.rampart_ok(&["gameday", "abort", &id, "--reason", "benchmark done"]);
    Ok((cli, seen))
}
