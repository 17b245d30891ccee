//! Experiment and game-day files as users write them, good and bad.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

const GOOD: &str = r#"kind: Experiment
name: checkout-survives-db-latency
description: free text
scope:
  selector: role=db,env=staging
  max_targets: 1
hypothesis:
  - name: shop-up
    http: {url: "http://198.18.6.1:8080/health", status: 200, max_latency: 500ms}
    from: coordinator
    interval: 1s
    tolerance: 2
  - name: db-port
    tcp: {address: "198.18.6.2:5432", timeout: 1s}
  - name: cpu-headroom
    metric: {name: cpu_percent, below: 90}
  - name: error-rate
    prometheus: {url: "http://127.0.0.1:9090", query: "sum(rate(http_errors_total[1m]))", below: 5}
  - name: app-self-check
    command: {argv: ["/usr/local/bin/check-shop"], exit_code: 0}
method:
  - fault: {kind: network-latency, delay: 200ms, port: [5432], interface: eth0}
    at: 0s
    duration: 60s
  - fault: {kind: cpu, load: 80, workers: 2}
    at: 30s
    duration: 30s
abort:
  max_duration: 5m
"#;

#[test]
fn the_documented_example_reads() {
    let e = experiment("x.yaml", GOOD).unwrap();
    assert_eq!(e.name, "checkout-survives-db-latency");
    assert_eq!(e.selector, "role=db,env=staging");
    assert_eq!(e.max_targets, Some(1));
    assert_eq!(e.hypothesis.len(), 5);
    assert_eq!(e.hypothesis[0].tolerance, 2);
    assert_eq!(e.hypothesis[1].tolerance, 1);
    assert_eq!(e.hypothesis[2].from, Source::Targets);
    assert_eq!(e.hypothesis[4].from, Source::Targets);
    assert_eq!(e.method.len(), 2);
    assert_eq!(e.method[0].kind, "network-latency");
    let Some(rampart_proto::v1::fault_spec::Kind::NetworkLatency(l)) = &e.method[0].spec.kind
    else {
        panic!("{:?}", e.method[0].spec)
    };
    assert_eq!(
        (l.delay_ms, l.ports.clone(), l.interface.as_str()),
        (200, vec![5432], "eth0")
    );
    let Some(rampart_proto::v1::fault_spec::Kind::Cpu(c)) = &e.method[1].spec.kind else {
        panic!()
    };
    assert_eq!((c.workers, c.load_percent), (2, 80));
    assert_eq!(e.method_end(), Duration::from_secs(60));
    assert_eq!(e.max_duration, Duration::from_secs(300));
    assert_eq!(e.plan()[1], "at 30s for 30s: cpu load=80 workers=2");
}

#[test]
fn every_error_is_listed_with_its_place() {
    let bad = r#"kind: Experiment
name: broken
colour: blue
scope:
  selector: "role"
  max_targets: 1
  max_percent: 50
hypothesis:
  - name: up
    http: {url: "ftp://x/", status: 200}
    interval: 10ms
  - name: both
    tcp: {address: "a:1"}
    metric: {name: cpu_percent, below: 1}
method:
  - fault: {kind: teleport}
    duration: 10s
  - fault: {kind: cpu, load: 50}
    at: 4m
    duration: 2m
  - fault: {kind: cpu, speed: 3}
    duration: soon
abort:
  max_duration: 5m
"#;
    let errs = experiment("bad.yaml", bad).unwrap_err();
    let text = errs.to_string();
    for want in [
        "bad.yaml:3:1: unknown field `colour`",
        "bad.yaml:5:13: selector \"role\"",
        "not both",
        "bad.yaml:10:17: \"ftp://x/\": only http",
        "`interval` must be at least 200ms",
        "probe \"both\" needs exactly one of",
        "fault: invalid value `teleport`",
        "ends at 6m, after `abort.max_duration` (5m)",
        "bad.yaml:21:24: unknown field `speed`",
        "bad.yaml:22:15: `duration`: invalid duration \"soon\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(errs.0.len() >= 10, "{text}");
}

#[test]
fn syntax_errors_and_duplicates_are_located() {
    let e = experiment("s.yaml", "kind: Experiment\nname: [unclosed\n").unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert!(e.0[0].line >= 2, "{e}");
    let e = experiment("d.yaml", "kind: Experiment\nname: a\nname: b\n").unwrap_err();
    assert!(e.to_string().starts_with("d.yaml:3:1:"), "{e}");
    assert!(experiment("l.yaml", &"#".repeat(MAX_FILE_BYTES + 1)).is_err());
}

#[test]
fn command_probes_never_run_on_the_coordinator() {
    let text = GOOD.replace(
        "command: {argv: [\"/usr/local/bin/check-shop\"], exit_code: 0}",
        "command: {argv: [\"check-shop\"]}\n    from: coordinator",
    );
    let errs = experiment("c.yaml", &text).unwrap_err().to_string();
    assert!(errs.contains("absolute path"), "{errs}");
    assert!(errs.contains("runs on agents only"), "{errs}");
}

#[test]
fn the_examples_in_the_repository_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir.join("experiments")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = format!(
            "experiments/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        experiment(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        files.insert(name, text);
    }
    assert!(files.len() >= 3);
    let plan = std::fs::read_to_string(dir.join("gameday.yaml")).unwrap();
    let day = gameday("gameday.yaml", &plan, &files).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(day.stages.len(), 3);
}

#[test]
fn game_days_read_their_experiments() {
    let plan = "kind: GameDay\nname: q4\nstages:\n  - name: warm-up\n    experiments: [a.yaml]\n  - name: go/no-go\n    gate: approval\n  - name: db\n    parallel: true\n    continue_on_failure: true\n    experiments: [a.yaml, b.yaml]\n";
    let mut files = BTreeMap::new();
    files.insert("a.yaml".to_string(), GOOD.to_string());
    let errs = gameday("plan.yaml", plan, &files).unwrap_err().to_string();
    assert!(
        errs.contains("plan.yaml:11:27: experiment file \"b.yaml\" was not found"),
        "{errs}"
    );
    files.insert(
        "b.yaml".to_string(),
        GOOD.replace("max_targets: 1", "max_targets: 0"),
    );
    let errs = gameday("plan.yaml", plan, &files).unwrap_err().to_string();
    assert!(
        errs.contains("b.yaml:6:16: `max_targets` must be at least 1"),
        "{errs}"
    );
    files.insert("b.yaml".to_string(), GOOD.to_string());
    let day = gameday("plan.yaml", plan, &files).unwrap();
    assert_eq!(day.stages.len(), 3);
    assert!(day.stages[1].approval && day.stages[1].experiments.is_empty());
    assert!(day.stages[2].parallel && day.stages[2].continue_on_failure);
    assert_eq!(day.stages[2].experiments.len(), 2);
}
