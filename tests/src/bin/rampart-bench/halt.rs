//! `halt`: an experiment's halt latency across many simulated targets.

use std::time::Duration;

use anyhow::bail;
use rampart_e2e::eventually;

use crate::{bench_coordinator, median, percentile};

/// A TCP service on loopback that can be taken down and brought back (the hypothesis).
struct Service {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Service {
    fn up(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((c, _)) => drop(c),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    fn down(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn halt(agents: usize, repeats: usize) -> anyhow::Result<()> {
    let h = bench_coordinator()?;
    let sim = rampart_e2e::sim::start(&h, agents, &["sim=true"], Default::default())?;
    let addr: std::net::SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let spec = h.dir.path().join("halt.yaml");
    std::fs::write(
        &spec,
        format!(
            "kind: Experiment\nname: halt-bench\nscope: {{selector: sim=true}}\nhypothesis:\n  - name: service\n    tcp: {{address: \"{addr}\", timeout: 500ms}}\n    interval: 200ms\nmethod:\n  - fault: {{kind: memory, bytes: 4KiB}}\n    duration: 10m\nabort:\n  max_duration: 15m\n"
        ),
    )?;
    let mut latencies = Vec::new();
    for i in 0..repeats {
        let service = Service::up(addr)?;
        let id = h.rampart_ok(&["experiment", "run", spec.to_str().unwrap_or_default()]);
        let id = id.trim().to_string();
        let show = || -> serde_json::Value {
            serde_json::from_slice(&h.rampart(&["experiment", "show", &id, "-o", "json"]).stdout)
                .unwrap_or_default()
        };
        eventually(
            Duration::from_secs(60),
            "every target's fault active",
            || {
                let r = show();
                let active = r["faults"]
                    .as_array()
                    .map(|f| f.iter().filter(|x| x["state"] == "active").count())
                    .unwrap_or(0);
                if active == agents {
                    Ok(())
                } else {
                    Err(format!("{active}/{agents} active"))
                }
            },
        );
        service.down();
        eventually(Duration::from_secs(120), "the run to halt", || {
            let r = show();
            let halted = r["timeline"]
                .as_array()
                .is_some_and(|t| t.iter().any(|e| e["kind"] == "halt"));
            if halted {
                Ok(())
            } else {
                Err(r["state"].to_string())
            }
        });
        // Back up, so the run's recovery check ends at once instead of after its 60 s limit.
        let service = Service::up(addr)?;
        eventually(Duration::from_secs(120), "the run to finish", || {
            let r = show();
            if r["state"] == "finished" {
                Ok(())
            } else {
                Err(r["state"].to_string())
            }
        });
        let r = show();
        let reverted = r["faults"]
            .as_array()
            .map(|f| f.iter().filter(|x| x["state"] == "reverted").count())
            .unwrap_or(0);
        if reverted != agents {
            bail!("only {reverted}/{agents} faults confirmed reverted: {r}");
        }
        let ms = r["halt_latency_ms"].as_f64().unwrap_or(-1.0);
        println!(
            "repeat {}: verdict {}, halt latency {ms:.0} ms, {reverted}/{agents} reverted",
            i + 1,
            r["verdict"]
        );
        latencies.push(ms);
        service.down();
    }
    sim.stop();
    println!(
        "halt latency with {agents} targets ({repeats} runs; probe result that broke the tolerance → last revert confirmation):"
    );
    println!(
        "  median {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        median(latencies.clone()),
        percentile(latencies.clone(), 0.99),
        latencies.iter().cloned().fold(0.0, f64::max)
    );
    Ok(())
}
