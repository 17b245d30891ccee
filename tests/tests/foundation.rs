//! End-to-end tests of the foundation: enrolment, sessions, restarts, refusals, operator auth,
//! the audit trail, and bad input. Each starts the real binaries.

use std::time::Duration;

use nix::sys::signal::Signal;
use rampart_e2e::{Harness, WAIT};
use serde_json::Value;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn three_agents_in_their_own_hosts_enrol_and_come_online_with_labels() {
    let Some(h) = Harness::start_with_hosts(3) else {
        return;
    };
    let token = h.join_token(&["env=prod"], 3, "10m");
    let hosts = h.network.as_ref().unwrap().hosts.clone();
    let mut ids = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let role = format!("role=r{i}");
        let a = h.enroll_ok(&format!("agent{i}"), Some(&host.netns), &token, &[&role]);
        h.run_agent(&format!("agent{i}"), &a, &[]);
        ids.push(a.id);
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    h.wait_online(&refs);

    let agents = h.agents();
    assert_eq!(agents.len(), 3);
    for (i, id) in ids.iter().enumerate() {
        let a = agents
            .iter()
            .find(|a| a["id"] == *id.as_str())
            .expect("listed");
        assert_eq!(a["labels"]["env"], "prod", "token label: {a}");
        assert_eq!(
            a["labels"]["role"],
            Value::from(format!("r{i}")),
            "enrol label: {a}"
        );
        assert!(a["hostname"].as_str().is_some_and(|s| !s.is_empty()));
        // Each session really comes from its own namespace host.
        let addr = a["address"].as_str().unwrap();
        assert!(
            addr.starts_with(&format!("{}:", hosts[i].ip)),
            "{addr} vs {}",
            hosts[i].ip
        );
    }
    let selected: Vec<Value> = serde_json::from_str(&h.rampart_ok(&[
        "agents",
        "ls",
        "--selector",
        "env=prod,role=r1",
        "-o",
        "json",
    ]))
    .unwrap();
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0]["id"], ids[1].as_str());

    // Operators can reach each agent through its session.
    let out = h.rampart_ok(&["agents", "ping", &ids[2]]);
    assert!(out.contains("round trip"), "{out}");
}

#[test]
fn agents_reconnect_after_the_coordinator_is_killed_and_records_survive() {
    let Some(h) = Harness::start_with_hosts(2) else {
        return;
    };
    let token = h.join_token(&["tier=db"], 2, "10m");
    let hosts = h.network.as_ref().unwrap().hosts.clone();
    let a0 = h.enroll_ok("agent0", Some(&hosts[0].netns), &token, &[]);
    let a1 = h.enroll_ok("agent1", Some(&hosts[1].netns), &token, &[]);
    h.run_agent("agent0", &a0, &[]);
    h.run_agent("agent1", &a1, &[]);
    h.wait_online(&[&a0.id, &a1.id]);
    let before = h.agents();

    h.with_proc("coordinator", |p| p.kill());
    // While it is down, the CLI says it cannot reach it.
    let out = h.rampart(&["agents", "ls"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot reach the coordinator"),
        "{}",
        stderr(&out)
    );

    h.start_coordinator();
    h.wait_online(&[&a0.id, &a1.id]);
    let after = h.agents();
    for id in [&a0.id, &a1.id] {
        let b = before.iter().find(|a| a["id"] == id.as_str()).unwrap();
        let a = after.iter().find(|a| a["id"] == id.as_str()).unwrap();
        assert_eq!(a["labels"], b["labels"]);
        assert_eq!(a["enrolled"], b["enrolled"]);
        assert_eq!(a["hostname"], b["hostname"]);
    }
    // The agents did not restart: the same processes reconnected.
    for name in ["agent0", "agent1"] {
        assert!(h.with_proc(name, |p| p.try_exit()).is_none());
    }
}

#[test]
fn bad_expired_and_used_up_tokens_and_a_wrong_fingerprint_are_refused_with_their_reason() {
    let h = Harness::start();
    let fp = h.ca_fingerprint.clone();

    let out = h.enroll("unknown", None, "rpj_not-a-real-token", &fp, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("join token is unknown"),
        "{}",
        stderr(&out)
    );

    let expiring = h.join_token(&[], 1, "1s");
    std::thread::sleep(Duration::from_millis(1500));
    let out = h.enroll("expired", None, &expiring, &fp, &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("join token has expired"),
        "{}",
        stderr(&out)
    );

    let once = h.join_token(&[], 1, "10m");
    h.enroll_ok("first", None, &once, &[]);
    let out = h.enroll("second", None, &once, &fp, &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("no uses left"), "{}", stderr(&out));

    let good = h.join_token(&[], 1, "10m");
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let out = h.enroll("pinned", None, &good, &wrong, &[]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("CA fingerprint mismatch") && err.contains(&fp),
        "{err}"
    );
    assert!(
        !h.dir.path().join("pinned/agent.json").exists(),
        "nothing stored after a refusal"
    );
    // The token was not spent by the refused attempt.
    h.enroll_ok("pinned-ok", None, &good, &[]);

    let out = h.enroll("malformed", None, &good, "sha256:xyz", &[]);
    assert!(
        stderr(&out).contains("malformed CA fingerprint"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_revoked_agent_is_cut_off_at_once_and_refused_afterwards() {
    let h = Harness::start();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);

    let out = h.rampart_ok(&["agents", "revoke", &a.id]);
    assert!(out.contains("session was closed"), "{out}");
    let status = h.with_proc("agent", |p| p.wait_exit(WAIT));
    assert_eq!(
        status.code(),
        Some(3),
        "the agent stops: retrying cannot help"
    );
    assert!(
        h.with_proc("agent", |p| p.log_text())
            .contains("has been revoked")
    );
    assert_eq!(h.agent_state(&a.id).as_deref(), Some("revoked"));

    // Its certificate no longer opens a session.
    h.run_agent("agent-again", &a, &[]);
    let status = h.with_proc("agent-again", |p| p.wait_exit(WAIT));
    assert_eq!(status.code(), Some(3));
    assert!(
        h.with_proc("agent-again", |p| p.log_text())
            .contains("revoked")
    );
    assert_eq!(h.agent_state(&a.id).as_deref(), Some("revoked"));
}

#[test]
fn operator_calls_need_a_token_and_the_right_role() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start();
    let mode = std::fs::metadata(h.data_dir.join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the initial admin token is private to the coordinator's user"
    );
    let out = h.rampart_as(None, &["agents", "ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not authenticated"),
        "{}",
        stderr(&out)
    );

    let out = h.rampart_as(Some("rpo_wrong"), &["agents", "ls"]);
    assert!(
        stderr(&out).contains("unknown, expired or revoked"),
        "{}",
        stderr(&out)
    );

    let viewer = h
        .rampart_ok(&[
            "admin", "token", "create", "--role", "viewer", "--name", "auditor",
        ])
        .trim()
        .to_string();
    let out = h.rampart_as(Some(&viewer), &["agents", "ls", "-o", "json"]);
    assert!(out.status.success(), "viewers may read: {}", stderr(&out));
    let out = h.rampart_as(Some(&viewer), &["token", "create"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("permission denied") && stderr(&out).contains("admin role"),
        "{}",
        stderr(&out)
    );
    let out = h.rampart_as(
        Some(&viewer),
        &["admin", "token", "create", "--role", "admin"],
    );
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    let who =
        String::from_utf8_lossy(&h.rampart_as(Some(&viewer), &["whoami"]).stdout).into_owned();
    assert!(who.contains("auditor") && who.contains("viewer"), "{who}");

    // The refused attempt is in the audit trail, with who tried; the token itself is not.
    let audit = h.rampart_ok(&["audit", "ls", "-o", "json"]);
    let entries: Vec<Value> = serde_json::from_str(&audit).unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["actor"].as_str().unwrap().contains("auditor")
                && e["action"] == "TokenService/CreateJoinToken"
                && e["result"].as_str().unwrap().contains("PermissionDenied")),
        "{audit}"
    );
    assert!(!audit.contains(&viewer) && !audit.contains(&h.admin_token));
    let log = h.with_proc("coordinator", |p| p.log_text());
    assert!(
        !log.contains(&viewer) && !log.contains(&h.admin_token),
        "tokens must not be logged"
    );
}

#[test]
fn audit_verify_passes_on_a_real_log_and_fails_after_a_row_is_edited() {
    let h = Harness::start();
    let token = h.join_token(&["env=test"], 1, "10m");
    h.enroll_ok("agent", None, &token, &[]);
    h.rampart_ok(&[
        "admin", "token", "create", "--role", "operator", "--name", "ci",
    ]);
    let out = h.rampart_ok(&["audit", "verify"]);
    // Join token and operator token: a `started` and an outcome entry each; the enrolment: one.
    assert!(out.contains("intact: 5 entries"), "{out}");

    h.sql("UPDATE audit SET actor = 'someone else' WHERE seq = 2");
    let out = h.rampart(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(4));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("BROKEN")
            && text.contains("entry 2: content does not match its hash (edited)"),
        "{text}"
    );
}

#[test]
fn a_session_whose_certificate_does_not_match_its_hello_is_refused() {
    use rampart_common::tls;
    use rampart_proto::v1::agent_service_client::AgentServiceClient;
    use rampart_proto::v1::{AgentMessage, Hello, agent_message};

    let h = Harness::start();
    let token = h.join_token(&[], 2, "10m");
    let a = h.enroll_ok("a", None, &token, &[]);
    let b = h.enroll_ok("b", None, &token, &[]);
    let read = |f: &str| std::fs::read(a.state_dir.join(f)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let config =
            tls::client_config(&read("ca.pem"), Some((&read("cert.pem"), &read("key.pem"))))
                .unwrap();
        let channel = tls::dial(&h.url(), config).await.unwrap();
        let hello = AgentMessage {
            body: Some(agent_message::Body::Hello(Hello {
                agent_id: b.id.clone(),
                hostname: "x".into(),
                ..Default::default()
            })),
        };
        let stream = tokio_stream::iter(vec![hello]);
        let mut client = AgentServiceClient::new(channel);
        match client.session(stream).await {
            Err(s) => s,
            Ok(resp) => resp
                .into_inner()
                .message()
                .await
                .expect_err("the session must be refused"),
        }
    });
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(
        status.message().contains("does not match"),
        "{}",
        status.message()
    );
    assert_eq!(
        h.agent_state(&b.id).as_deref(),
        Some("offline"),
        "b was not impersonated"
    );
}

#[test]
fn an_agent_that_stops_heartbeating_goes_offline_and_comes_back() {
    let h = Harness::start();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);
    h.with_proc("agent", |p| p.signal(Signal::SIGSTOP));
    h.wait_state(&a.id, "offline", WAIT);
    h.with_proc("agent", |p| p.signal(Signal::SIGCONT));
    h.wait_online(&[&a.id]);
}

#[test]
fn a_long_fact_collection_leaves_heartbeats_and_other_commands_running() {
    let h = Harness::start();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    // Beats every 100 ms, so a session silent for 300 ms is dropped. The agent reads the real
    // root: its first collection walks the disks, for seconds on a machine with a few hundred
    // thousand files.
    let started = std::time::Instant::now();
    h.run_agent("agent", &a, &["--heartbeat-interval", "100ms"]);
    h.wait_online(&[&a.id]);
    eprintln!("agent online at {:?}", started.elapsed());
    // The report goes to a file: a pipe nobody reads while pinging could fill and stall it.
    let report_file = tempfile::NamedTempFile::new().unwrap();
    let mut sweep = h
        .rampart_command(&["sweep", "--wait", "-o", "json"])
        .stdout(report_file.reopen().unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Other commands are answered while the collection runs.
    let mut answered_meanwhile = 0;
    let status = loop {
        let out = h.rampart(&["agents", "ping", &a.id]);
        assert!(
            out.status.success(),
            "a ping during the collection: {}",
            stderr(&out)
        );
        if let Some(status) = sweep.try_wait().unwrap() {
            break status;
        }
        answered_meanwhile += 1;
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "sweep: {status:?}");
    eprintln!(
        "sweep done at {:?}, {answered_meanwhile} pings answered meanwhile",
        started.elapsed()
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(report_file.path()).unwrap()).unwrap();
    assert_eq!(report["summary"]["unreachable"], 0, "{}", report["summary"]);
    assert_eq!(report["hosts"][0]["agent_id"], a.id.as_str());
    assert!(answered_meanwhile >= 1, "no ping answered during the sweep");
    // The session held throughout: never marked offline, never reopened.
    let log = h.with_proc("coordinator", |p| p.log_text());
    assert!(!log.contains("marking offline"), "{log}");
    assert_eq!(log.matches("agent online").count(), 1, "{log}");
    // The collection was long enough to matter: the walk looked at many entries.
    let facts: Value =
        serde_json::from_str(&h.rampart_ok(&["facts", &a.id, "-o", "json"])).unwrap();
    let walked = facts["file_walk"]["walked"].as_u64().unwrap_or(0);
    assert!(
        walked >= 20_000,
        "this test needs a real root with many files; the walk saw {walked}"
    );
}

#[test]
fn sigterm_stops_an_agent_cleanly_and_it_shows_offline() {
    let h = Harness::start();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    // A long heartbeat: the offline state must come from the clean close, not from missed beats.
    h.run_agent("agent", &a, &["--heartbeat-interval", "60s"]);
    h.wait_online(&[&a.id]);
    h.with_proc("agent", |p| p.signal(Signal::SIGTERM));
    let status = h.with_proc("agent", |p| p.wait_exit(Duration::from_secs(10)));
    assert!(status.success(), "{status:?}");
    h.wait_state(&a.id, "offline", Duration::from_secs(10));

    // A command to it says it is offline; a command to an id that does not exist says so instead.
    let out = h.rampart(&["agents", "ping", &a.id]);
    assert!(
        stderr(&out).contains("unavailable") && stderr(&out).contains("no open session"),
        "{}",
        stderr(&out)
    );
    let out = h.rampart(&["agents", "ping", "agent-typo"]);
    assert!(
        stderr(&out).contains("not found: no agent \"agent-typo\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_malformed_config_lists_every_error_with_its_line_and_exits_2_before_binding() {
    let h = Harness::start();
    let cfg = h.dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "listen = \"not-an-address\"\nlog_format = \"xml\"\nunknown_key = 1\n",
    )
    .unwrap();
    let out = std::process::Command::new(&rampart_e2e::binaries().rampart)
        .args([
            "serve",
            "--config",
            cfg.to_str().unwrap(),
            "--data-dir",
            h.dir.path().join("d2").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for line in [1, 2, 3] {
        assert!(
            err.contains(&format!("bad.toml:{line}:")),
            "line {line} missing: {err}"
        );
    }
    assert!(!h.dir.path().join("d2").exists(), "nothing was created");

    let agent_cfg = h.dir.path().join("agent.toml");
    std::fs::write(
        &agent_cfg,
        "heartbeat_interval = \"forever\"\n[labels]\nenv = 3\n",
    )
    .unwrap();
    let out = std::process::Command::new(&rampart_e2e::binaries().agent)
        .args([
            "run",
            "--config",
            agent_cfg.to_str().unwrap(),
            "--state-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("agent.toml:1:") && err.contains("agent.toml:3:"),
        "{err}"
    );
}

#[test]
fn each_agent_reports_the_facts_of_its_own_fact_root() {
    let h = Harness::start();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hosts");
    let token = h.join_token(&[], 2, "10m");
    let mut ids = Vec::new();
    for name in ["hardened", "weak"] {
        let a = h.enroll_ok(name, None, &token, &[]);
        let root = fixtures.join(name);
        h.run_agent(name, &a, &["--fact-root", root.to_str().unwrap()]);
        ids.push(a.id);
    }
    h.wait_online(&[&ids[0], &ids[1]]);
    let facts = |id: &str| -> Value {
        serde_json::from_str(&h.rampart_ok(&["facts", id, "-o", "json"])).unwrap()
    };
    let hardened = facts(&ids[0]);
    let weak = facts(&ids[1]);
    assert_eq!(hardened["os"]["hostname"], "hardened-host");
    assert_eq!(weak["os"]["hostname"], "weak-host");
    // sshd: the Include'd drop-in wins over the main file on the hardened host.
    assert_eq!(hardened["sshd"]["settings"]["permitrootlogin"], "no");
    assert_eq!(hardened["sshd"]["matches"][0]["criteria"], "User backup");
    assert_eq!(weak["sshd"]["settings"]["permitrootlogin"], "yes");
    assert_eq!(hardened["sysctl"]["net.ipv4.ip_forward"], "0");
    assert_eq!(weak["sysctl"]["net.ipv4.ip_forward"], "1");
    let uid0 = |f: &Value| {
        f["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["uid"] == 0)
            .count()
    };
    assert_eq!((uid0(&hardened), uid0(&weak)), (1, 2));
    assert!(
        weak["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "telnetd")
    );
    // A fixture root has no processes: nothing leaked in from the real host.
    assert_eq!(
        hardened["processes"].as_array().map(Vec::len).unwrap_or(0),
        0
    );
    assert!(
        hardened["errors"]
            .as_array()
            .map(Vec::is_empty)
            .unwrap_or(true),
        "{}",
        hardened["errors"]
    );
    let table = h.rampart_ok(&["facts", &ids[1]]);
    assert!(
        table.contains("weak-host") && table.contains("listening sockets"),
        "{table}"
    );
}
