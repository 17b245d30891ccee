//! The coordinator on PostgreSQL (Debian's server, started by `.ci/run`): a fleet served from
//! it, kept across a SIGKILL, and an installation moved to it from SQLite by `rampart migrate`.

use std::path::Path;

use nix::sys::signal::Signal;
use rampart_e2e::postgres::PgDatabase;
use rampart_e2e::{AgentHandle, Harness, WAIT, eventually};
use serde_json::Value;

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts")
        .join(name)
        .display()
        .to_string()
}

/// Enrols and starts two agents, one on the hardened fixture host and one on the weak one.
fn two_agents(h: &Harness) -> (AgentHandle, AgentHandle) {
    let token = h.join_token(&["env=prod"], 2, "10m");
    let hardened = h.enroll_ok("hardened", None, &token, &["name=hardened"]);
    h.run_agent(
        "hardened",
        &hardened,
        &["--fact-root", &fixture("hardened")],
    );
    let weak = h.enroll_ok("weak", None, &token, &["name=weak"]);
    h.run_agent("weak", &weak, &["--fact-root", &fixture("weak")]);
    h.wait_online(&[&hardened.id, &weak.id]);
    (hardened, weak)
}

fn sweep_json(h: &Harness) -> Value {
    serde_json::from_str(&h.rampart_ok(&["sweep", "--wait", "-o", "json"])).unwrap()
}

fn host_status<'a>(report: &'a Value, agent: &str) -> &'a str {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["agent_id"] == agent)
        .and_then(|x| x["status"].as_str())
        .unwrap_or_else(|| panic!("no host {agent} in {report}"))
}

fn audit_entries(h: &Harness) -> u64 {
    let out = h.rampart_ok(&["audit", "verify"]);
    out.split("intact: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("audit verify: {out}"))
}

#[test]
fn a_coordinator_on_postgres_serves_a_fleet_and_keeps_it_across_a_sigkill() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let h = Harness::start_on_postgres(&db);
    let (hardened, weak) = two_agents(&h);
    let report = sweep_json(&h);
    assert_eq!(report["summary"]["unreachable"], 0, "{report}");
    assert_eq!(host_status(&report, &hardened.id), "ok");
    assert_eq!(host_status(&report, &weak.id), "ok");
    assert!(report["summary"]["fail"].as_u64().unwrap() > 0, "{report}");

    // The data is in PostgreSQL, not in a file of the data dir.
    assert!(!h.data_dir.join("rampart.db").exists());
    assert_eq!(db.scalar("SELECT COUNT(*) FROM agents"), Some(2));
    let results = db
        .scalar("SELECT CAST(SUM(n_pass + n_fail + n_error + n_not_applicable + n_waived) AS BIGINT) FROM sweep_hosts")
        .unwrap();
    assert!(results > 50, "{results} results stored");

    // A sweep cut off by a SIGKILL is settled at the next start: every selected host has its
    // result or is `unreachable`, never neither; the audit chain is intact and kept.
    let entries = audit_entries(&h);
    let id = h.rampart_ok(&["sweep"]).trim().to_string();
    h.with_proc("coordinator", |p| {
        p.signal(Signal::SIGKILL);
        p.wait_exit(WAIT);
    });
    h.start_coordinator();
    h.wait_online(&[&hardened.id, &weak.id]);
    let shown: Value =
        serde_json::from_str(&h.rampart_ok(&["sweep", "show", &id, "-o", "json"])).unwrap();
    let hosts = shown["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "no host left out: {shown}");
    for host in hosts {
        let status = host["status"].as_str().unwrap();
        assert!(status == "ok" || status == "unreachable", "{host}");
    }
    // The sweep's own entries (started, and the outcome when it got that far) follow on.
    assert!(audit_entries(&h) > entries);
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM sweeps WHERE finished_at IS NULL"),
        Some(0)
    );

    // Still usable after the restart.
    let report = sweep_json(&h);
    assert_eq!(host_status(&report, &weak.id), "ok");
}

#[test]
fn rampart_migrate_moves_a_data_dir_to_postgres_and_the_fleet_carries_on() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let h = Harness::start();
    let (hardened, weak) = two_agents(&h);
    let before = sweep_json(&h);
    let operator = h
        .rampart_ok(&[
            "admin", "token", "create", "--role", "operator", "--name", "ci",
        ])
        .trim()
        .to_string();
    let entries = audit_entries(&h);

    // Stop the coordinator, move its data, start it on PostgreSQL with the same data dir (CA).
    h.with_proc("coordinator", |p| {
        p.signal(Signal::SIGTERM);
        p.wait_exit(WAIT);
    });
    let out = h
        .rampart_command(&["migrate", "--from-sqlite", h.data_dir.to_str().unwrap()])
        .env("RAMPART_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("the audit trail ({entries} entries) verifies")),
        "{stdout}"
    );
    assert!(
        stderr.contains("sweep_hosts:"),
        "progress per table: {stderr}"
    );
    assert!(
        !stderr.contains("rampart_ci@"),
        "no password shown: {stderr}"
    );

    h.use_database(&db.url);
    h.start_coordinator();
    // The agents' certificates, the operator tokens, the history and the audit chain moved.
    h.wait_online(&[&hardened.id, &weak.id]);
    assert_eq!(audit_entries(&h), entries);
    let stored: Value = serde_json::from_str(&h.rampart_ok(&[
        "sweep",
        "show",
        before["sweep_id"].as_str().unwrap(),
        "-o",
        "json",
    ]))
    .unwrap();
    for count in ["pass", "fail", "error", "unreachable"] {
        assert_eq!(
            stored["summary"][count], before["summary"][count],
            "{count}: {stored}"
        );
    }
    assert_eq!(stored["hosts"].as_array().unwrap().len(), 2);
    let out = h.rampart_as(Some(&operator), &["agents", "ls"]);
    assert!(out.status.success(), "the operator token still works");
    let after = sweep_json(&h);
    assert_eq!(after["summary"]["unreachable"], 0);

    // A second migration into the now-used database is refused, and says why.
    let out = h
        .rampart_command(&["migrate", "--from-sqlite", h.data_dir.to_str().unwrap()])
        .env("RAMPART_DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already holds data"), "{stderr}");
    eventually(WAIT, "the audit trail still intact", || {
        let n = audit_entries(&h);
        if n > entries {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    });
}
