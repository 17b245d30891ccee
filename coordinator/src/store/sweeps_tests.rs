//! Tests of sweep storage (`sweeps.rs`), on both databases.
use super::*;
use crate::store::testing::{TestDb, on_both_backends};

on_both_backends!(
    a_sweep_round_trips_with_counts_history_and_facts,
    results_stored_one_row_each_by_an_older_version_are_kept_with_their_host
);

/// A host's results array keeps each result as written, evidence and waiver as the JSON they
/// are; evidence that is not JSON is kept as a JSON string rather than lost; only the five
/// statuses are counted.
#[test]
fn a_hosts_results_array_keeps_what_was_written() {
    let mut results = vec![
        result("b", "pass", 1),
        result("a", "fail", 2),
        result("c", "waived", 3),
        result("d", "unknown", 4),
    ];
    results[2].waiver = Some(r#"{"id":"w","reason":"line\nbreak"}"#.into());
    results[3].evidence = "not JSON {".into();
    let (json, counts) = encode_results(&results);
    assert_eq!(counts, [1, 1, 0, 0, 1]);
    let back = decode_results(&json).unwrap();
    let rules: Vec<&str> = back.iter().map(|r| r.rule.as_str()).collect();
    assert_eq!(rules, ["a", "b", "c", "d"], "ordered by rule");
    assert_eq!(back[0], results[1]);
    assert_eq!(back[1], results[0]);
    assert_eq!(back[2], results[2]);
    assert_eq!(back[3].evidence, r#""not JSON {""#);
    assert!(matches!(
        decode_results("[{\"rule\":1}]"),
        Err(StoreError::Corrupt { .. })
    ));
}

/// A database an older Rampart wrote (one `sweep_results` row per result) reads the same
/// after the migration that keeps results with their host: every result, its evidence and
/// waiver, the counts, the history and the evidence a threat model reads.
async fn results_stored_one_row_each_by_an_older_version_are_kept_with_their_host(db: TestDb) {
    db.at_version(
        16,
        "INSERT INTO sweeps (id, pack, selector, actor, started_at, finished_at, hosts, coordinator_id)
           VALUES ('old', 'linux-baseline', '', 'admin', 1000, 2000, 3, '');
         INSERT INTO sweep_hosts (sweep_id, agent_id, hostname, status, message, collect_ms, eval_micros, labels)
           VALUES ('old', 'a1', 'web-1', 'ok', '', 5, 6, '{\"env\":\"prod\"}'),
                  ('old', 'a2', 'web-2', 'ok', '', 5, 6, '{}'),
                  ('old', 'a3', 'web-3', 'unreachable', 'offline', 0, 0, '{}');
         INSERT INTO sweep_results (sweep_id, agent_id, rule, status, severity, evidence, micros, waiver)
           VALUES ('old', 'a1', 'ssh-root', 'fail', 'high', '{\"PermitRootLogin\": \"yes\", \"note\": \"quote '' and ✓\"}', 11, NULL),
                  ('old', 'a1', 'aslr', 'pass', 'medium', '{\"kernel.randomize_va_space\":2}', 12, NULL),
                  ('old', 'a1', 'tmp', 'waived', 'low', '[]', 13, '{\"id\":\"w1\",\"reason\":\"r\"}'),
                  ('old', 'a2', 'aslr', 'error', 'medium', '{\"error\":\"no sysctl\"}', 14, NULL);",
    )
    .await;
    let s = db.open().await;
    let (sweep, hosts, results) = s.sweep("old").await.unwrap().unwrap();
    assert_eq!((sweep.hosts, hosts.len()), (3, 3));
    // (agent, rule, status, evidence, micros, waiver)
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a str,
        serde_json::Value,
        u64,
        Option<&'a str>,
    );
    let got: Vec<Row> = results
        .iter()
        .map(|(agent, r)| {
            (
                agent.as_str(),
                r.rule.as_str(),
                r.status.as_str(),
                serde_json::from_str(&r.evidence).unwrap(),
                r.micros,
                r.waiver.as_deref(),
            )
        })
        .collect();
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
    assert_eq!(
        got,
        vec![
            (
                "a1",
                "aslr",
                "pass",
                json(r#"{"kernel.randomize_va_space":2}"#),
                12,
                None
            ),
            (
                "a1",
                "ssh-root",
                "fail",
                json(r#"{"PermitRootLogin":"yes","note":"quote ' and ✓"}"#),
                11,
                None
            ),
            (
                "a1",
                "tmp",
                "waived",
                json("[]"),
                13,
                Some(r#"{"id":"w1","reason":"r"}"#)
            ),
            (
                "a2",
                "aslr",
                "error",
                json(r#"{"error":"no sysctl"}"#),
                14,
                None
            ),
        ]
    );
    let o = &s.recent_sweeps(5).await.unwrap()[0];
    assert_eq!(
        (o.hosts, o.unreachable, o.pass, o.fail, o.error),
        (3, 1, 1, 1, 1)
    );
    let mut counts = s.latest_status_counts().await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("a1".into(), "fail".into(), 1),
            ("a1".into(), "pass".into(), 1),
            ("a1".into(), "waived".into(), 1),
            ("a2".into(), "error".into(), 1),
        ]
    );
    assert_eq!(s.result_history(None, 0).await.unwrap().len(), 4);
    let latest = s
        .latest_results("linux-baseline", &["ssh-root".into()])
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(
        (latest[0].agent_id.as_str(), latest[0].status.as_str()),
        ("a1", "fail")
    );
    // The next sweep writes beside the migrated one.
    s.create_sweep(
        "new",
        "linux-baseline",
        "",
        "admin",
        &[("a2".into(), "web-2".into())],
    )
    .await
    .unwrap();
    s.record_sweep_host("new", &hosts[1], &[results[3].1.clone()])
        .await
        .unwrap();
    assert_eq!(
        s.sweep_results("new", "a2").await.unwrap(),
        vec![results[3].1.clone()]
    );
}

fn result(rule: &str, status: &str, micros: u64) -> SweepResultRecord {
    SweepResultRecord {
        rule: rule.into(),
        status: status.into(),
        severity: "medium".into(),
        evidence: format!("{{\"rule\":\"{rule}\",\"note\":\"quote ' and ✓\"}}"),
        micros,
        waiver: None,
    }
}

/// What reports, the console and drift read back is what was written, on either database:
/// hosts with labels, every result, per-status counts, history and the latest facts.
async fn a_sweep_round_trips_with_counts_history_and_facts(db: TestDb) {
    let s = db.open().await;
    let targets = vec![
        ("a1".to_string(), "web-1".to_string()),
        ("a2".to_string(), "web-2".to_string()),
    ];
    s.create_sweep("sw1", "linux-baseline", "env=prod", "admin", &targets)
        .await
        .unwrap();
    let host = SweepHostRecord {
        agent_id: "a1".into(),
        hostname: "web-1".into(),
        status: "ok".into(),
        message: String::new(),
        collect_ms: 12,
        eval_micros: 345,
        labels: [("env".to_string(), "prod".to_string())].into(),
    };
    // More results than one insert statement carries.
    let mut results: Vec<SweepResultRecord> = (0..250)
        .map(|i| {
            result(
                &format!("r{i:03}"),
                ["pass", "fail", "error"][i % 3],
                i as u64,
            )
        })
        .collect();
    // Waived results keep their waiver, in whatever order they were written.
    for i in [1, 100, 248] {
        results[i].status = "waived".into();
        results[i].waiver = Some(format!("{{\"id\":\"w{i}\",\"was\":\"fail\"}}"));
    }
    s.record_sweep_host("sw1", &host, &results).await.unwrap();
    let down = SweepHostRecord {
        agent_id: "a2".into(),
        hostname: "web-2".into(),
        status: "unreachable".into(),
        message: "offline".into(),
        ..host.clone()
    };
    s.record_sweep_host("sw1", &down, &[]).await.unwrap();
    s.finish_sweep("sw1").await.unwrap();
    s.save_facts("a1", "sw1", 77, "{\"os\":\"debian\"}")
        .await
        .unwrap();
    s.save_facts("a1", "sw1", 78, "{\"os\":\"debian 12\"}")
        .await
        .unwrap();

    let (sweep, hosts, got) = s.sweep("sw1").await.unwrap().unwrap();
    assert_eq!(
        (
            sweep.pack.as_str(),
            sweep.selector.as_str(),
            sweep.hosts,
            sweep.interrupted
        ),
        ("linux-baseline", "env=prod", 2, false)
    );
    assert!(sweep.finished_at.is_some());
    assert_eq!(hosts, vec![host, down]);
    assert_eq!(got.len(), 250);
    assert_eq!(got[42], ("a1".to_string(), results[42].clone()));
    assert_eq!(s.sweep_results("sw1", "a1").await.unwrap(), results);
    assert!(s.sweep("nope").await.unwrap().is_none());

    let overview = s.recent_sweeps(10).await.unwrap();
    assert_eq!(overview.len(), 1);
    let o = &overview[0];
    assert_eq!(
        (o.hosts, o.unreachable, o.pass, o.fail, o.error),
        (2, 1, 84, 81, 82)
    );
    let mut counts = s.latest_status_counts().await.unwrap();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("a1".to_string(), "error".to_string(), 82),
            ("a1".to_string(), "fail".to_string(), 81),
            ("a1".to_string(), "pass".to_string(), 84),
            ("a1".to_string(), "waived".to_string(), 3),
        ]
    );
    let history = s.result_history(Some("a1"), 0).await.unwrap();
    assert_eq!(history.len(), 250);
    assert_eq!(history[0].hostname, "web-1");
    assert_eq!(history[100].waiver, results[100].waiver);
    assert!(s.result_history(Some("a2"), 0).await.unwrap().is_empty());
    assert_eq!(s.result_history(None, 0).await.unwrap().len(), 250);
    assert_eq!(
        s.latest_facts("a1").await.unwrap(),
        Some((78, "{\"os\":\"debian 12\"}".to_string()))
    );
}
