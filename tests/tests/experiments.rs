//! End-to-end chaos experiments: agents in namespace hosts, a small HTTP service in one of them,
//! experiments run through the CLI, and every outcome checked from outside (the service reachable
//! again, the host's nftables and qdisc state as before, no fault active); and a PromQL probe
//! against a real Prometheus server.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rampart_e2e::chaos::{
    active_faults, connects, file, http_server, run_json, show, wait_finished,
};
use rampart_e2e::netns::{network_state, run_in};
use rampart_e2e::{Harness, WAIT, eventually};
use serde_json::Value;

#[test]
fn experiments_halt_on_a_broken_hypothesis_pass_when_it_holds_and_respect_their_scope() {
    let Some(h) = Harness::start_with_hosts(4) else {
        return;
    };
    let net = h.network.as_ref().unwrap();
    let hosts = net.hosts.clone();
    let before: Vec<String> = hosts.iter().map(|x| network_state(&x.netns)).collect();
    let token = h.join_token(&["tier=pool"], 4, "10m");
    let mut agents = Vec::new();
    // The second host is a client: its agent may run `/bin/true` as a command probe.
    let client_config = file(&h, "client.toml", "[probes]\ncommands = [\"/bin/true\"]\n");
    for (i, host) in hosts.iter().enumerate() {
        let labels: &[&str] = match i {
            0 => &["role=svc"],
            1 => &["role=client"],
            _ => &[],
        };
        let a = h.enroll_ok(&format!("agent{i}"), Some(&host.netns), &token, labels);
        let extra: Vec<&str> = if i == 1 {
            vec!["--config", client_config.to_str().unwrap()]
        } else {
            vec![]
        };
        h.run_agent(&format!("agent{i}"), &a, &extra);
        agents.push(a);
    }
    let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
    h.wait_online(&ids);
    // The service lives in the first host.
    let listener = run_in(&hosts[0].netns, || {
        TcpListener::bind("0.0.0.0:18080").unwrap()
    });
    http_server(listener, || "ok".into());
    let service = SocketAddr::from((hosts[0].ip, 18080));
    assert!(connects(service));
    let url = format!("http://{service}/health");

    // A file with errors: every one listed, located, and nothing runs.
    let bad = file(
        &h,
        "bad.yaml",
        "kind: Experiment\nname: bad\nscope: {selector: tier=pool}\nhypothesis:\n  - name: x\n    http: {url: \"gopher://x\"}\nmethod:\n  - fault: {kind: teleport}\n    duration: 10s\n  - fault: {kind: cpu}\n    duration: 20m\n",
    );
    let out = h.rampart(&["experiment", "validate", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bad.yaml:6:17:") && err.contains("only http"),
        "{err}"
    );
    assert!(
        err.contains("bad.yaml:8:") && err.contains("teleport"),
        "{err}"
    );
    assert!(err.contains("after `abort.max_duration`"), "{err}");
    let out = h.rampart(&["experiment", "run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        run_json(&h, &["experiment", "ls", "-o", "json"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Scope: 50 % of 4 matching agents is exactly 2; --preview injects and records nothing.
    let cpu = file(
        &h,
        "cpu.yaml",
        &format!(
            "kind: Experiment\nname: cpu-headroom\nscope:\n  selector: tier=pool\n  max_percent: 50\nhypothesis:\n  - name: shop-up\n    http: {{url: \"{url}\", status: 200, max_latency: 2s}}\n    interval: 300ms\n  - name: cpu-known\n    metric: {{name: cpu_percent, below: 101}}\n    interval: 300ms\n  - name: shop-up-from-client\n    http: {{url: \"{url}\", status: 200}}\n    from: {{selector: role=client}}\n    interval: 300ms\n  - name: client-self-check\n    command: {{argv: [\"/bin/true\"]}}\n    from: {{selector: role=client}}\n    interval: 300ms\nmethod:\n  - fault: {{kind: cpu, load: 50, workers: 1}}\n    duration: 2s\nabort:\n  max_duration: 1m\n"
        ),
    );
    let preview = run_json(
        &h,
        &[
            "experiment",
            "run",
            cpu.to_str().unwrap(),
            "--preview",
            "-o",
            "json",
        ],
    );
    assert_eq!(preview["targets"].as_array().unwrap().len(), 2, "{preview}");
    assert_eq!(
        preview["plan"][0], "at 0s for 2s: cpu load=50 workers=1",
        "{preview}"
    );
    assert_eq!(active_faults(&h), 0);
    assert!(
        run_json(&h, &["experiment", "ls", "-o", "json"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // CPU load where the hypothesis holds: passed, on exactly two targets, metrics streamed.
    let passed = run_json(
        &h,
        &[
            "experiment",
            "run",
            cpu.to_str().unwrap(),
            "--wait",
            "-o",
            "json",
        ],
    );
    assert_eq!(passed["verdict"], "passed", "{passed:#}");
    assert_eq!(passed["targets"].as_array().unwrap().len(), 2);
    let faults = passed["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2);
    assert!(
        faults.iter().all(|f| f["state"] == "reverted"),
        "{passed:#}"
    );
    let metric = passed["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "metric")
        .unwrap()
        .clone();
    assert!(
        metric["checks"].as_u64().unwrap() >= 2 && metric["misses"] == 0,
        "{metric}"
    );
    // Probes run by the client host's agent: HTTP across the network, and an allowed command.
    for (name, kind) in [
        ("shop-up-from-client", "http"),
        ("client-self-check", "command"),
    ] {
        let p = passed["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {passed:#}"))
            .clone();
        assert_eq!(p["kind"], kind);
        assert!(
            p["checks"].as_u64().unwrap() >= 2 && p["misses"] == 0,
            "{p}"
        );
    }
    assert!(passed["recovery_ms"].as_i64().unwrap() >= 0);

    // Partition the service's host: the probe from the coordinator misses, the run halts within
    // the tolerance (2 misses of 300 ms), the fault is reverted and the service answers again.
    let part = file(
        &h,
        "partition.yaml",
        &format!(
            "kind: Experiment\nname: shop-survives-partition\nscope: {{selector: role=svc}}\nhypothesis:\n  - name: shop-up\n    http: {{url: \"{url}\", status: 200, timeout: 500ms}}\n    interval: 300ms\n    tolerance: 2\nmethod:\n  - fault: {{kind: network-partition, port: 18080}}\n    duration: 2m\nabort:\n  max_duration: 3m\n"
        ),
    );
    let started = std::time::Instant::now();
    let failed = run_json(
        &h,
        &[
            "experiment",
            "run",
            part.to_str().unwrap(),
            "--wait",
            "-o",
            "json",
        ],
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "halted long before the 2-minute step ended"
    );
    assert_eq!(failed["verdict"], "failed", "{failed:#}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("missed 2 time(s) in a row"),
        "{failed:#}"
    );
    assert_eq!(failed["faults"][0]["state"], "reverted", "{failed:#}");
    assert!(
        failed["halt_latency_ms"].as_i64().unwrap() >= 0,
        "{failed:#}"
    );
    assert!(failed["recovery_ms"].as_i64().unwrap() >= 0, "{failed:#}");
    assert!(connects(service), "reachable again, from outside");
    let kinds: Vec<&str> = failed["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "targets",
        "hypothesis",
        "inject",
        "probe",
        "halt",
        "revert",
        "recovered",
        "verdict",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let report = h.rampart_ok(&[
        "experiment",
        "report",
        failed["id"].as_str().unwrap(),
        "-o",
        "markdown",
    ]);
    assert!(
        report.contains("# Experiment `shop-survives-partition` — failed"),
        "{report}"
    );
    assert!(
        report.contains("| shop-up | http | coordinator |"),
        "{report}"
    );

    // A hypothesis that already fails: not_started, nothing injected.
    let down = file(
        &h,
        "down.yaml",
        &format!(
            "kind: Experiment\nname: down\nscope: {{selector: role=svc}}\nhypothesis:\n  - name: nothing-there\n    tcp: {{address: \"{}:18099\", timeout: 500ms}}\nmethod:\n  - fault: {{kind: network-partition, port: 18080}}\n    duration: 1m\n",
            hosts[0].ip
        ),
    );
    let out = h.rampart(&[
        "experiment",
        "run",
        down.to_str().unwrap(),
        "--wait",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let not_started: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(not_started["verdict"], "not_started", "{not_started:#}");
    assert!(not_started["faults"].as_array().unwrap().is_empty());

    // A command probe the agent's config does not allow: refused, so the run does not start.
    let cmd = file(
        &h,
        "cmd.yaml",
        "kind: Experiment\nname: self-check\nscope: {selector: role=svc}\nhypothesis:\n  - name: app-self-check\n    command: {argv: [\"/bin/true\"], exit_code: 0}\nmethod:\n  - fault: {kind: cpu, load: 10}\n    duration: 1s\n",
    );
    let refused = run_json(
        &h,
        &[
            "experiment",
            "run",
            cmd.to_str().unwrap(),
            "--wait",
            "-o",
            "json",
        ],
    );
    assert_eq!(refused["verdict"], "not_started", "{refused:#}");
    assert!(
        refused["reason"].as_str().unwrap().contains("allow-list"),
        "{refused:#}"
    );
    assert!(refused["faults"].as_array().unwrap().is_empty());

    // Every run is listed; no fault is left; the hosts are as they were.
    assert_eq!(
        run_json(&h, &["experiment", "ls", "-o", "json"])
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(active_faults(&h), 0);
    for (host, b) in hosts.iter().zip(&before) {
        assert_eq!(&network_state(&host.netns), b, "{} changed", host.netns);
    }
    let audit = h.rampart_ok(&["audit", "ls", "-o", "json"]);
    assert!(
        audit.contains("ExperimentService/StartExperiment"),
        "runs are audited"
    );
}

#[test]
fn a_prometheus_probe_fails_the_run_when_the_exporter_crosses_its_threshold() {
    if !rampart_e2e::prometheus::available(rampart_e2e::prometheus::PROMETHEUS) {
        return;
    }
    let Some(h) = Harness::start_with_hosts(1) else {
        return;
    };
    let host = h.network.as_ref().unwrap().hosts[0].clone();
    let token = h.join_token(&["role=shop"], 1, "10m");
    let a = h.enroll_ok("agent", Some(&host.netns), &token, &[]);
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);
    // The exporter runs in the namespace host; Prometheus scrapes it every second.
    let errors = Arc::new(AtomicU64::new(0));
    let e = errors.clone();
    let listener = run_in(&host.netns, || TcpListener::bind("0.0.0.0:19100").unwrap());
    http_server(listener, move || {
        format!(
            "# TYPE shop_errors gauge\nshop_errors {}\n",
            e.load(Ordering::SeqCst)
        )
    });
    let server = rampart_e2e::prometheus::start(
        &h,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: shop\n    static_configs:\n      - targets: [\"{}:19100\"]\n",
            host.ip
        ),
    );
    let port = server.port;
    eventually(
        Duration::from_secs(60),
        "Prometheus to have scraped the exporter",
        || {
            let body = rampart_e2e::prometheus::get(port, "/api/v1/query?query=shop_errors")?;
            if body.contains("\"value\"") {
                Ok(())
            } else {
                Err(body)
            }
        },
    );
    let x = file(
        &h,
        "errors.yaml",
        &format!(
            "kind: Experiment\nname: error-budget\nscope: {{selector: role=shop}}\nhypothesis:\n  - name: error-rate\n    prometheus: {{url: \"http://127.0.0.1:{port}\", query: \"max(shop_errors)\", below: 5}}\n    interval: 500ms\n    tolerance: 2\nmethod:\n  - fault: {{kind: cpu, load: 10}}\n    duration: 2m\nabort:\n  max_duration: 3m\n"
        ),
    );
    let id = h
        .rampart_ok(&["experiment", "run", x.to_str().unwrap()])
        .trim()
        .to_string();
    eventually(
        WAIT,
        "the run to inject its fault with the hypothesis holding",
        || {
            let r = show(&h, &id);
            if r["faults"][0]["state"] == "active" {
                Ok(())
            } else {
                Err(r.to_string())
            }
        },
    );
    errors.store(12, Ordering::SeqCst);
    eventually(WAIT, "the probe to halt the run", || {
        let r = show(&h, &id);
        let halted = r["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "halt");
        if halted && r["faults"][0]["state"] == "reverted" {
            Ok(())
        } else {
            Err(r.to_string())
        }
    });
    // The errors stop: the hypothesis holds again, and the recovery is timed.
    errors.store(0, Ordering::SeqCst);
    let r = wait_finished(&h, &id);
    assert_eq!(r["verdict"], "failed", "{r:#}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("max(shop_errors) = 12"),
        "{r:#}"
    );
    assert_eq!(r["faults"][0]["state"], "reverted");
    assert!(r["recovery_ms"].as_i64().unwrap() > 0, "{r:#}");
    assert!(r["halt_latency_ms"].as_i64().unwrap() >= 0, "{r:#}");
    assert_eq!(active_faults(&h), 0);
}
