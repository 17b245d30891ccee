//! What decides whether a team trusts Rampart with root on its fleet: the audit trail loses
//! nothing under concurrency, work a crash interrupted is settled rather than left "running", and
//! operator credentials can be listed, revoked and expire.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use rampart_e2e::{Harness, WAIT, eventually};
use serde_json::Value;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts")
        .join(name)
        .display()
        .to_string()
}

fn audit_entries(h: &Harness) -> Vec<Value> {
    serde_json::from_str(&h.rampart_ok(&["audit", "ls", "--limit", "100000", "-o", "json"]))
        .unwrap()
}

#[test]
fn every_successful_call_is_audited_under_concurrency_and_the_chain_verifies() {
    let h = Harness::start();
    let token = h.join_token(&["env=prod"], 2, "10m");
    for name in ["web", "db"] {
        let a = h.enroll_ok(name, None, &token, &[]);
        h.run_agent(name, &a, &["--fact-root", &fixture("weak")]);
        h.wait_online(&[&a.id]);
    }
    let before = audit_entries(&h).len();

    // 64 mutating calls of four kinds at once, while sweeps run.
    let calls: Vec<(&str, Vec<String>)> = (0..64)
        .map(|i| {
            let args: Vec<String> = match i % 4 {
                0 => vec!["token".into(), "create".into(), "--uses".into(), "2".into()],
                1 => vec![
                    "admin".into(),
                    "token".into(),
                    "create".into(),
                    "--role".into(),
                    "viewer".into(),
                    "--name".into(),
                    format!("reader-{i}"),
                ],
                2 => vec![
                    "schedule".into(),
                    "add".into(),
                    "--cron".into(),
                    "0 3 * * *".into(),
                ],
                _ => vec!["sweep".into(), "--wait".into()],
            };
            let action = match i % 4 {
                0 => "TokenService/CreateJoinToken",
                1 => "TokenService/CreateOperatorToken",
                2 => "ComplianceService/AddSchedule",
                _ => "ComplianceService/Sweep",
            };
            (action, args)
        })
        .collect();
    let succeeded: Arc<Mutex<BTreeMap<String, usize>>> = Default::default();
    let h = Arc::new(h);
    std::thread::scope(|s| {
        for (action, args) in &calls {
            let (h, succeeded) = (h.clone(), succeeded.clone());
            s.spawn(move || {
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = h.rampart(&argv);
                if out.status.success() {
                    *succeeded
                        .lock()
                        .unwrap()
                        .entry(action.to_string())
                        .or_default() += 1;
                } else {
                    eprintln!("{action} failed: {}", String::from_utf8_lossy(&out.stderr));
                }
            });
        }
    });
    let succeeded = succeeded.lock().unwrap().clone();
    // Nothing is refused for lock contention: every call succeeds.
    assert_eq!(succeeded.values().sum::<usize>(), 64, "{succeeded:?}");

    let entries = audit_entries(&h);
    let new = &entries[before..];
    for (action, n) in &succeeded {
        let count = |result: &str| {
            new.iter()
                .filter(|e| e["action"] == action.as_str() && e["result"] == result)
                .count()
        };
        assert_eq!(count("started"), *n, "{action}: started entries");
        assert_eq!(count("ok"), *n, "{action}: outcome entries");
    }
    let out = h.rampart(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let log = h.with_proc("coordinator", |p| p.log_text());
    assert!(
        !log.contains("database is locked") && !log.contains("could not write"),
        "{log}"
    );
}

#[test]
fn a_sweep_cut_off_by_a_coordinator_crash_is_settled_as_interrupted() {
    let h = Harness::start();
    let token = h.join_token(&[], 2, "10m");
    let fast = h.enroll_ok("fast", None, &token, &[]);
    h.run_agent("fast", &fast, &["--fact-root", &fixture("hardened")]);
    // The silent host keeps its session (long heartbeats) but never answers: it is stopped.
    let silent = h.enroll_ok("silent", None, &token, &[]);
    h.run_agent(
        "silent",
        &silent,
        &[
            "--fact-root",
            &fixture("hardened"),
            "--heartbeat-interval",
            "120s",
        ],
    );
    h.wait_online(&[&fast.id, &silent.id]);
    h.with_proc("silent", |p| p.signal(Signal::SIGSTOP));

    let sweep_id = h
        .rampart_ok(&["sweep", "--timeout", "5m"])
        .trim()
        .to_string();
    eventually(WAIT, "the fast host to report", || {
        let out = h.rampart(&["sweep", "show", &sweep_id, "-o", "json"]);
        let r: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        match r["hosts"].as_array().map(Vec::len) {
            Some(1) => Ok(()),
            other => Err(format!("{other:?} host(s) reported")),
        }
    });
    h.with_proc("coordinator", |p| p.kill());
    h.start_coordinator();

    let out = h.rampart(&[
        "sweep",
        "show",
        &sweep_id,
        "-o",
        "json",
        "--fail-on",
        "critical",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(5),
        "--fail-on fails an interrupted sweep: {stderr}"
    );
    assert!(stderr.contains("was interrupted"), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["interrupted"], true, "{r}");
    let hosts = r["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "no host is silently absent: {r}");
    let by_id = |id: &str| hosts.iter().find(|x| x["agent_id"] == id).unwrap();
    assert_eq!(by_id(&fast.id)["status"], "ok");
    let lost = by_id(&silent.id);
    assert_eq!(lost["status"], "unreachable");
    assert!(
        lost["message"].as_str().unwrap().starts_with("interrupted"),
        "{lost}"
    );
    assert!(lost["results"].as_array().unwrap().is_empty(), "never pass");
    assert_eq!(r["summary"]["unreachable"], 1, "{r}");
    let log = h.with_proc("coordinator", |p| p.log_text());
    assert!(log.contains(&sweep_id) && log.contains("settled"), "{log}");
    h.with_proc("silent", |p| p.signal(Signal::SIGCONT));
}

#[test]
fn operator_tokens_are_listed_revoked_and_expire() {
    let h = Harness::start();
    let viewer = h
        .rampart_ok(&[
            "admin",
            "token",
            "create",
            "--role",
            "viewer",
            "--name",
            "dashboard",
        ])
        .trim()
        .to_string();
    let short = h
        .rampart_ok(&[
            "admin", "token", "create", "--role", "viewer", "--name", "brief", "--ttl", "2s",
        ])
        .trim()
        .to_string();
    assert!(h.rampart_as(Some(&viewer), &["whoami"]).status.success());
    assert!(h.rampart_as(Some(&short), &["whoami"]).status.success());

    let list: Vec<Value> =
        serde_json::from_str(&h.rampart_ok(&["admin", "token", "ls", "-o", "json"])).unwrap();
    let listed = |name: &str| list.iter().find(|t| t["name"] == name).unwrap().clone();
    assert_eq!(listed("dashboard")["role"], "viewer");
    assert!(listed("brief")["expires_unix_ms"].as_i64().is_some());
    assert!(listed("initial-admin")["expires_unix_ms"].is_null());
    let text = serde_json::to_string(&list).unwrap();
    assert!(
        !text.contains(&viewer) && !text.contains(&h.admin_token),
        "secrets are never listed"
    );
    // "Last used" shows up (written off the caller's path).
    eventually(WAIT, "last use recorded", || {
        let list: Vec<Value> =
            serde_json::from_str(&h.rampart_ok(&["admin", "token", "ls", "-o", "json"])).unwrap();
        let t = list.iter().find(|t| t["name"] == "dashboard").unwrap();
        t["last_used_unix_ms"]
            .as_i64()
            .map(drop)
            .ok_or_else(|| format!("{t}"))
    });
    // A viewer cannot list or revoke tokens.
    let out = h.rampart_as(Some(&viewer), &["admin", "token", "ls"]);
    assert_eq!(out.status.code(), Some(1));

    let out = h.rampart_ok(&["admin", "token", "revoke", "dashboard"]);
    assert!(out.contains("revoked"), "{out}");
    let out = h.rampart_as(Some(&viewer), &["whoami"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("revoked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The last admin token stays.
    let out = h.rampart(&["admin", "token", "revoke", "initial-admin"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("last live admin"));

    std::thread::sleep(Duration::from_millis(2100));
    let out = h.rampart_as(Some(&short), &["whoami"]);
    assert!(!out.status.success(), "expired token refused");

    let audit = audit_entries(&h);
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "TokenService/RevokeOperatorToken" && e["result"] == "ok")
    );
}

#[test]
fn enrolment_is_rate_limited_and_refusals_are_summarised_in_the_audit_trail() {
    let h = Harness::start();
    let config = h.dir.path().join("limits.toml");
    std::fs::write(&config, "enroll_per_source_per_minute = 5\n").unwrap();
    h.with_proc("coordinator", |p| p.kill());
    h.start_coordinator_with(&["--config", config.to_str().unwrap()]);
    let before = audit_entries(&h).len();

    let fp = h.ca_fingerprint.clone();
    let mut outcomes = Vec::new();
    for i in 0..12 {
        let out = h.enroll(&format!("guess{i}"), None, "rpj_guessed", &fp, &[]);
        assert!(!out.status.success());
        outcomes.push(String::from_utf8_lossy(&out.stderr).to_string());
    }
    let unknown = outcomes.iter().filter(|e| e.contains("unknown")).count();
    let limited = outcomes
        .iter()
        .filter(|e| e.contains("too many enrolment attempts"))
        .count();
    assert_eq!((unknown, limited), (5, 7), "{outcomes:#?}");
    // A real token is refused too while the source is over its limit.
    let token = h.join_token(&[], 1, "10m");
    let out = h.enroll("real", None, &token, &fp, &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("too many"));

    // One entry per reason so far; the rest are summarised when the window ends (here: at
    // shutdown).
    let refusals = |entries: &[Value]| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["action"] == "AgentService/Enroll")
            .map(|e| e["result"].as_str().unwrap().to_string())
            .collect()
    };
    let now = refusals(&audit_entries(&h)[before..]);
    assert_eq!(now.len(), 2, "{now:#?}");
    h.with_proc("coordinator", |p| {
        p.signal(Signal::SIGTERM);
        p.wait_exit(WAIT);
    });
    h.start_coordinator();
    let after = refusals(&audit_entries(&h)[before..]);
    assert_eq!(after.len(), 4, "{after:#?}");
    assert!(
        after
            .iter()
            .any(|r| r.starts_with("4 more refused attempt(s)") && r.contains("unknown")),
        "{after:#?}"
    );
    assert!(
        after
            .iter()
            .any(|r| r.starts_with("7 more refused attempt(s)") && r.contains("too many")),
        "{after:#?}"
    );
}

#[test]
fn agent_certificates_renew_over_the_session_and_an_expired_one_says_to_enrol_again() {
    let h = Harness::start();
    let config = h.dir.path().join("short-certs.toml");
    std::fs::write(&config, "agent_cert_lifetime = \"12s\"\n").unwrap();
    h.with_proc("coordinator", |p| p.kill());
    h.start_coordinator_with(&["--config", config.to_str().unwrap()]);

    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    let read = |f: &str| std::fs::read_to_string(a.state_dir.join(f)).unwrap();
    let (cert1, key1) = (read("cert.pem"), read("key.pem"));
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);
    let expiry = || -> i64 {
        let v: Value =
            serde_json::from_str(&h.rampart_ok(&["agents", "show", &a.id, "-o", "json"])).unwrap();
        v["cert_expires_unix_ms"].as_i64().unwrap_or(0)
    };
    let expires1 = expiry();
    assert!(expires1 > 0);

    // At two thirds (about 8 s) the agent renews: a new key made on the host, a new certificate.
    eventually(
        Duration::from_secs(30),
        "the certificate to be renewed",
        || {
            if read("cert.pem") != cert1 {
                Ok(())
            } else {
                Err("still the first certificate".into())
            }
        },
    );
    assert_ne!(read("key.pem"), key1, "renewal makes a new key");
    assert!(
        expiry() > expires1,
        "the coordinator records the new expiry"
    );
    let audit = audit_entries(&h);
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "AgentService/RenewCertificate" && e["result"] == "ok"),
        "renewal is audited"
    );
    // A restarted agent connects with the renewed certificate, no re-enrolment.
    h.with_proc("agent", |p| p.kill());
    h.wait_state(&a.id, "offline", WAIT);
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);

    // Off past its certificate's lifetime (no renewal while stopped): refused, with the fix.
    h.with_proc("agent", |p| {
        p.signal(Signal::SIGTERM);
        p.wait_exit(WAIT);
    });
    let expires = expiry();
    let wait_ms = expires - rampart_common::time::now_ms() + 500;
    std::thread::sleep(Duration::from_millis(wait_ms.max(0) as u64));
    h.run_agent("agent", &a, &[]);
    let status = h.with_proc("agent", |p| p.wait_exit(WAIT));
    assert_eq!(status.code(), Some(3));
    let log = h.with_proc("agent", |p| p.log_text());
    assert!(
        log.contains("expired") && log.contains("enrol it again"),
        "{log}"
    );
}

#[test]
fn hosts_with_oversized_facts_answer_at_once_and_keep_their_session() {
    let h = Harness::start();
    // 120,000 accounts (about 6 MB of passwd): kept bounded, marked truncated.
    let many = h.dir.path().join("many-accounts");
    rampart_e2e::copy_tree(Path::new(&fixture("hardened")), &many);
    let mut passwd = std::fs::read_to_string(many.join("etc/passwd")).unwrap();
    let total = passwd.lines().filter(|l| !l.trim().is_empty()).count() + 120_000;
    for i in 0..120_000 {
        passwd.push_str(&format!(
            "user{i}:x:{}:100:Generated user {i}:/home/user{i}:/usr/sbin/nologin\n",
            10_000 + i
        ));
    }
    std::fs::write(many.join("etc/passwd"), passwd).unwrap();
    // 1,500 processes with 4 KiB command lines: over the message limit even when bounded.
    let huge = h.dir.path().join("huge-processes");
    rampart_e2e::copy_tree(Path::new(&fixture("hardened")), &huge);
    for pid in 1000..2500 {
        let dir = huge.join(format!("proc/{pid}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("status"), "Name:\tworker\nUid:\t0\t0\t0\t0\n").unwrap();
        std::fs::write(
            dir.join("cmdline"),
            format!("/usr/bin/worker\0{}\0", "a".repeat(4090)),
        )
        .unwrap();
    }

    let token = h.join_token(&[], 2, "10m");
    let a = h.enroll_ok("many", None, &token, &[]);
    h.run_agent("many", &a, &["--fact-root", many.to_str().unwrap()]);
    let b = h.enroll_ok("huge", None, &token, &[]);
    h.run_agent("huge", &b, &["--fact-root", huge.to_str().unwrap()]);
    h.wait_online(&[&a.id, &b.id]);

    let started = std::time::Instant::now();
    let out = h.rampart(&["sweep", "--wait", "--timeout", "60s", "-o", "json"]);
    let took = started.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("sweep of the oversized hosts took {took:?}");
    assert!(
        took < Duration::from_secs(30),
        "no host waited for the timeout: {took:?}"
    );
    let host = |id: &str| {
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["agent_id"] == id)
            .unwrap()
            .clone()
    };
    let many_host = host(&a.id);
    assert_eq!(many_host["status"], "ok", "{many_host}");
    assert!(
        many_host["message"].as_str().unwrap().contains(&format!(
            "accounts truncated: 20000 of {total} entries kept"
        )),
        "{}",
        many_host["message"]
    );
    let uid0 = many_host["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "accounts-only-root-uid0")
        .unwrap();
    assert_eq!(
        uid0["status"], "error",
        "a pass on truncated facts is not trusted: {uid0}"
    );

    let huge_host = host(&b.id);
    assert_eq!(huge_host["status"], "unreachable");
    let msg = huge_host["message"].as_str().unwrap();
    assert!(
        msg.contains("message limit") && msg.contains("largest collectors: processes"),
        "{msg}"
    );
    // Both sessions are intact.
    for id in [&a.id, &b.id] {
        h.rampart_ok(&["agents", "ping", id]);
        assert_eq!(h.agent_state(id).as_deref(), Some("online"));
    }
}

#[test]
fn a_call_whose_audit_entry_cannot_be_written_is_not_carried_out() {
    let h = Harness::start();
    let count_tokens = |h: &Harness| h.sql("SELECT COUNT(*) FROM join_tokens").unwrap_or(0);
    h.join_token(&[], 1, "10m");
    assert_eq!(count_tokens(&h), 1);

    // The audit table stops accepting rows (as a full disk or a broken database would).
    h.sql(
        "CREATE TRIGGER audit_broken BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit storage failed'); END",
    );
    let out = h.rampart(&["token", "create"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("was not carried out") && err.contains("audit entry cannot be written"),
        "{err}"
    );
    assert_eq!(
        count_tokens(&h),
        1,
        "no token was created without its audit entry"
    );
    let out = h.rampart(&[
        "admin", "token", "create", "--role", "viewer", "--name", "x",
    ]);
    assert!(!out.status.success());
    let list: Vec<Value> =
        serde_json::from_str(&h.rampart_ok(&["admin", "token", "ls", "-o", "json"])).unwrap();
    assert_eq!(list.len(), 1, "only the initial admin token: {list:?}");
}
