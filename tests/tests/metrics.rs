//! Prometheus metrics end to end: a coordinator serving `/metrics` with two agents after a sweep
//! and a fault, checked by `promtool check metrics`, scraped by a real Prometheus server that
//! answers a PromQL query with the agent count; and the alerting rules and scrape config in
//! `deploy/prometheus/`, checked by promtool.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rampart_e2e::chaos::free_port;
use rampart_e2e::prometheus::{PROMETHEUS, PROMTOOL, available, body, get};
use rampart_e2e::{Harness, WAIT, eventually};

/// The value of the series written exactly as `series` (name and labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn promtool(args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(PROMTOOL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

#[test]
fn metrics_pass_promtool_and_a_real_prometheus_counts_the_agents() {
    if !available(PROMTOOL) || !available(PROMETHEUS) {
        return;
    }
    let h = Harness::start();
    let metrics_port = free_port();
    h.with_proc("coordinator", |p| p.kill());
    h.start_coordinator_with(&["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
    let token = h.join_token(&["env=test"], 2, "10m");
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let a = h.enroll_ok(name, None, &token, &[]);
        h.run_agent(name, &a, &[]);
        ids.push(a.id);
    }
    h.wait_online(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    h.rampart_ok(&["sweep", "--wait"]);
    h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "cpu",
        "--load",
        "5",
        "--duration",
        "1s",
    ]);

    let text = eventually(WAIT, "metrics with the fault's revert", || {
        let r = get(metrics_port, "/metrics")?;
        let text = body(&r).to_string();
        match value(
            &text,
            "rampart_fault_transitions_total{kind=\"cpu\",state=\"reverted\"}",
        ) {
            Some(n) if n >= 2.0 => Ok((r, text)),
            _ => Err(text),
        }
    });
    let (response, text) = text;
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    assert!(response.contains("text/plain; version=0.0.4"), "{response}");
    let out = promtool(&["check", "metrics"], Some(&text));
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        value(&text, "rampart_agents{state=\"online\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(value(&text, "rampart_agents{state=\"offline\"}"), Some(0.0));
    assert_eq!(value(&text, "rampart_sweeps_total"), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            "rampart_agent_commands_total{kind=\"collect_facts\",outcome=\"ok\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "rampart_agent_command_duration_seconds_count{kind=\"collect_facts\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "rampart_agent_sessions_opened_total"),
        Some(2.0)
    );
    assert!(
        value(&text, "rampart_audit_entries_total").unwrap() >= 4.0,
        "{text}"
    );
    let score = value(&text, "rampart_compliance_score_ratio{group=\"all\"}").unwrap();
    assert!((0.0..=1.0).contains(&score), "{score}");
    assert!(
        text.contains("\nrampart_sweep_results_total{status=\""),
        "{text}"
    );
    // Each host's facts were judged by the compiled pack, not redone by the interpreter.
    assert_eq!(
        value(
            &text,
            "rampart_pack_evaluations_total{pack=\"linux-baseline\",evaluator=\"compiled\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("evaluator=\"fallback\""), "{text}");
    assert!(value(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    // No host is a label, and nothing secret is served.
    for id in &ids {
        assert!(!text.contains(id.as_str()), "agent id {id} in the metrics");
    }
    assert!(!text.contains(&h.admin_token));
    // Only /metrics is served.
    assert!(get(metrics_port, "/").unwrap().starts_with("HTTP/1.0 404"));

    // A real Prometheus scrapes the coordinator and answers PromQL with the agent count.
    let server = rampart_e2e::prometheus::start(
        &h,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rampart-coordinator\n    static_configs:\n      - targets: [\"127.0.0.1:{metrics_port}\"]\n"
        ),
    );
    let port = server.port;
    let answer = eventually(
        Duration::from_secs(60),
        "Prometheus to count the agents",
        || {
            let r = get(
                port,
                "/api/v1/query?query=sum(rampart_agents%7Bstate%3D%22online%22%7D)",
            )?;
            let v: serde_json::Value =
                serde_json::from_str(body(&r)).map_err(|e| format!("{e}: {r}"))?;
            match v["data"]["result"][0]["value"][1].as_str() {
                Some(n) => Ok(n.to_string()),
                None => Err(v.to_string()),
            }
        },
    );
    assert_eq!(answer, "2");
}

#[test]
fn the_shipped_alerting_rules_and_scrape_config_pass_promtool() {
    if !available(PROMTOOL) {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus");
    let out = promtool(
        &[
            "check",
            "rules",
            dir.join("rampart-rules.yml").to_str().unwrap(),
        ],
        None,
    );
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("SUCCESS: 6 rules found"), "{said}");
    let out = promtool(
        &[
            "check",
            "config",
            dir.join("prometheus.yml").to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every metric the rules use is one the coordinator serves.
    let rules = std::fs::read_to_string(dir.join("rampart-rules.yml")).unwrap();
    for name in [
        "rampart_agents",
        "rampart_compliance_score_ratio",
        "rampart_sweep_results_total",
        "rampart_fault_transitions_total",
        "rampart_experiment_runs_total",
    ] {
        assert!(rules.contains(name), "{name}");
    }
}

/// An agent serves its own metrics only when its config asks: the session, commands, the
/// faults active on its host, the process.
#[test]
fn an_agent_serves_its_own_metrics_when_configured() {
    if !available(PROMTOOL) {
        return;
    }
    let h = Harness::start();
    let port = free_port();
    let config = h.dir.path().join("agent.toml");
    std::fs::write(&config, format!("metrics_listen = \"127.0.0.1:{port}\"\n")).unwrap();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    h.run_agent("agent", &a, &["--config", config.to_str().unwrap()]);
    h.wait_online(&[&a.id]);
    h.rampart_ok(&["agents", "ping", &a.id]);
    h.rampart_ok(&[
        "fault",
        "inject",
        "--kind",
        "cpu",
        "--load",
        "5",
        "--duration",
        "60s",
    ]);
    let text = eventually(WAIT, "the agent's metrics with its fault", || {
        let text = body(&get(port, "/metrics")?).to_string();
        match value(&text, "rampart_agent_faults_active{kind=\"cpu\"}") {
            Some(1.0) => Ok(text),
            _ => Err(text),
        }
    });
    let out = promtool(&["check", "metrics"], Some(&text));
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(value(&text, "rampart_agent_connected"), Some(1.0), "{text}");
    assert_eq!(
        value(&text, "rampart_agent_sessions_opened_total"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "rampart_agent_commands_total{kind=\"ping\",outcome=\"ok\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "rampart_agent_commands_total{kind=\"inject_fault\",outcome=\"ok\"}"
        ),
        Some(1.0)
    );
    assert!(value(&text, "process_resident_memory_bytes").unwrap() > 1e6);
    h.rampart_ok(&["stop"]);
    eventually(WAIT, "the fault reverted in the metrics", || {
        let text = body(&get(port, "/metrics")?).to_string();
        if value(&text, "rampart_agent_faults_active{kind=\"cpu\"}").is_none() {
            Ok(())
        } else {
            Err(text)
        }
    });
}
