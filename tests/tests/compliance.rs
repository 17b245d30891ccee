//! End-to-end compliance: agents with their own fact roots, a sweep over all of them.

use std::path::Path;

use rampart_e2e::{Harness, WAIT};
use serde_json::Value;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hosts")
}

fn result<'a>(host: &'a Value, rule: &str) -> &'a Value {
    host["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {host}"))
}

#[test]
fn a_sweep_gives_each_host_its_own_results_and_reports_unreachable_hosts() {
    let h = Harness::start();
    let token = h.join_token(&["env=prod"], 3, "10m");
    let mut ids = std::collections::BTreeMap::new();
    for (name, root) in [
        ("hardened", "hardened"),
        ("weak", "weak"),
        ("stopped", "hardened"),
    ] {
        let a = h.enroll_ok(name, None, &token, &[&format!("name={name}")]);
        h.run_agent(
            name,
            &a,
            &["--fact-root", fixtures().join(root).to_str().unwrap()],
        );
        ids.insert(name, a.id);
    }
    h.wait_online(&ids.values().map(String::as_str).collect::<Vec<_>>());
    h.with_proc("stopped", |p| p.kill());
    h.wait_state(&ids["stopped"], "offline", WAIT);

    let out = h.rampart(&[
        "sweep",
        "--selector",
        "env=prod",
        "-o",
        "json",
        "--fail-on",
        "high",
        "--profile",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(5),
        "findings at high or above: {stderr}"
    );
    assert!(
        stderr.contains("[3/3]") && stderr.contains("UNREACHABLE"),
        "progress is shown: {stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "no host is left out");
    let host = |name: &str| {
        hosts
            .iter()
            .find(|x| x["agent_id"] == ids[name].as_str())
            .unwrap()
    };

    let stopped = host("stopped");
    assert_eq!(stopped["status"], "unreachable");
    assert!(
        stopped["results"].as_array().unwrap().is_empty(),
        "an unreachable host has no passing results"
    );

    let (hardened, weak) = (host("hardened"), host("weak"));
    assert_eq!(
        (hardened["status"].as_str(), weak["status"].as_str()),
        (Some("ok"), Some("ok"))
    );
    assert!(hardened["hostname"].as_str().is_some_and(|n| !n.is_empty()));
    for rule in [
        "sshd-permit-root-login",
        "sysctl-ip-forward",
        "accounts-only-root-uid0",
        "fs-cramfs-disabled",
        "tmp-noexec",
    ] {
        assert_eq!(
            result(hardened, rule)["status"],
            "pass",
            "{rule} on hardened"
        );
    }
    for rule in [
        "sshd-permit-root-login",
        "sysctl-ip-forward",
        "accounts-only-root-uid0",
        "fs-cramfs-disabled",
        "service-telnet-absent",
    ] {
        assert_eq!(result(weak, rule)["status"], "fail", "{rule} on weak");
    }
    let r = result(weak, "accounts-only-root-uid0");
    assert_eq!(r["severity"], "critical");
    assert_eq!(r["evidence"]["uid0"], serde_json::json!(["root", "toor"]));
    assert!(
        r["micros"].as_u64().is_some_and(|m| m > 0),
        "a profiled sweep times each check: {r}"
    );
    assert!(weak["eval_micros"].as_u64().is_some_and(|m| m > 0));
    assert_eq!(report["summary"]["unreachable"], 1);

    // Without --fail-on the sweep itself succeeds; a selector narrows it.
    let out = h.rampart(&["sweep", "--selector", "name=hardened"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&ids["hardened"]) && !table.contains(&ids["weak"]),
        "{table}"
    );

    // A viewer may not sweep.
    let viewer = h
        .rampart_ok(&["admin", "token", "create", "--role", "viewer"])
        .trim()
        .to_string();
    let out = h.rampart_as(Some(&viewer), &["sweep"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));
}

#[test]
fn a_broken_pack_is_rejected_with_its_location_and_the_others_keep_working() {
    let h = Harness::start();
    h.with_proc("coordinator", |p| p.kill());
    let packs = h.dir.path().join("packs/broken");
    std::fs::create_dir_all(&packs).unwrap();
    std::fs::write(packs.join("pack.toml"), "name = \"broken\"\nversion = \"1\"\ndescription = \"x\"\npackage = \"rampart.pack.broken\"\n").unwrap();
    std::fs::write(
        packs.join("checks.rego"),
        "package rampart.pack.broken\n\nmeta[\"x\"] := {\n",
    )
    .unwrap();
    h.start_coordinator_with(&["--packs-dir", h.dir.path().join("packs").to_str().unwrap()]);
    let out = h.rampart(&["packs", "ls"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains("linux-baseline")
            && text.contains("rejected: pack broken")
            && text.contains("checks.rego:4:"),
        "{text}"
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn drift_shows_what_flipped_when_a_host_file_changes_and_history_keeps_every_sweep() {
    let h = Harness::start();
    let root = h.dir.path().join("root");
    copy_tree(&fixtures().join("hardened"), &root);
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    h.run_agent("agent", &a, &["--fact-root", root.to_str().unwrap()]);
    h.wait_online(&[&a.id]);

    h.rampart_ok(&["sweep"]);
    let drift: Value =
        serde_json::from_str(&h.rampart_ok(&["compliance", "drift", "-o", "json"])).unwrap();
    assert_eq!(
        drift,
        serde_json::json!([]),
        "one sweep: nothing to compare yet"
    );

    // Someone re-enables root login in the drop-in that wins.
    let dropin = root.join("etc/ssh/sshd_config.d/00-cis.conf");
    let text = std::fs::read_to_string(&dropin)
        .unwrap()
        .replace("PermitRootLogin no", "PermitRootLogin yes");
    std::fs::write(&dropin, text).unwrap();
    h.rampart_ok(&["sweep"]);

    let drift: Value = serde_json::from_str(&h.rampart_ok(&[
        "compliance",
        "drift",
        "--since",
        "1h",
        "-o",
        "json",
    ]))
    .unwrap();
    let events = drift.as_array().unwrap();
    assert_eq!(events.len(), 1, "{drift}");
    let e = &events[0];
    assert_eq!(
        (e["agent_id"].as_str(), e["rule"].as_str()),
        (Some(a.id.as_str()), Some("sshd-permit-root-login"))
    );
    assert_eq!(
        (e["from"].as_str(), e["to"].as_str()),
        (Some("pass"), Some("fail"))
    );
    assert_eq!(
        e["evidence_before"],
        serde_json::json!({"permitrootlogin": "no"})
    );
    assert_eq!(
        e["evidence_after"],
        serde_json::json!({"permitrootlogin": "yes"})
    );

    let history: Value =
        serde_json::from_str(&h.rampart_ok(&["compliance", "history", &a.id, "-o", "json"]))
            .unwrap();
    let sweeps = history.as_array().unwrap();
    assert_eq!(sweeps.len(), 2);
    assert!(
        sweeps[0]["fail"].as_u64() < sweeps[1]["fail"].as_u64(),
        "{history}"
    );

    let status: Value =
        serde_json::from_str(&h.rampart_ok(&["compliance", "status", "-o", "json"])).unwrap();
    let rule = status["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "sshd-permit-root-login")
        .unwrap();
    assert_eq!(
        (rule["pass"].as_u64(), rule["fail"].as_u64()),
        (Some(0), Some(1)),
        "{rule}"
    );
    assert_eq!(
        status["hosts"][0]["sweep_id"], sweeps[1]["sweep_id"],
        "status reads the latest sweep"
    );

    let out = h.rampart(&["compliance", "drift", "--since", "last tuesday"]);
    assert_eq!(out.status.code(), Some(2));

    // With the agent gone, its stored facts can still be evaluated, without contacting it.
    h.with_proc("agent", |p| p.kill());
    h.wait_state(&a.id, "offline", WAIT);
    let report: Value =
        serde_json::from_str(&h.rampart_ok(&["sweep", "--stored", "-o", "json"])).unwrap();
    let host = &report["hosts"][0];
    assert_eq!(host["status"], "ok", "{host}");
    assert!(
        host["message"].as_str().unwrap().contains("stored facts"),
        "{host}"
    );
    assert_eq!(result(host, "sshd-permit-root-login")["status"], "fail");
}

#[test]
fn a_scheduled_sweep_runs_by_itself_and_schedules_survive_a_restart() {
    let h = Harness::start();
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &["tier=web"]);
    h.run_agent(
        "agent",
        &a,
        &["--fact-root", fixtures().join("weak").to_str().unwrap()],
    );
    h.wait_online(&[&a.id]);

    let out = h.rampart(&["schedule", "add", "--cron", "every tuesday"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid cron pattern"),
        "{out:?}"
    );
    let daily = h
        .rampart_ok(&[
            "schedule",
            "add",
            "--cron",
            "0 3 * * *",
            "--selector",
            "tier=web",
        ])
        .trim()
        .to_string();
    h.with_proc("coordinator", |p| p.kill());
    h.start_coordinator();
    let listed: Value =
        serde_json::from_str(&h.rampart_ok(&["schedule", "ls", "-o", "json"])).unwrap();
    assert_eq!(listed[0]["id"], daily.as_str(), "persisted: {listed}");
    h.wait_online(&[&a.id]);

    let fast = h
        .rampart_ok(&["schedule", "add", "--cron", "*/2 * * * * *"])
        .trim()
        .to_string();
    let sweep_id = rampart_e2e::eventually(WAIT, "the scheduled sweep to run", || {
        let listed: Value =
            serde_json::from_str(&h.rampart_ok(&["schedule", "ls", "-o", "json"])).unwrap();
        let s = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == fast.as_str())
            .cloned()
            .unwrap();
        s["last_sweep_id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or(format!("{s}"))
    });
    let history: Value = rampart_e2e::eventually(WAIT, "its results to be stored", || {
        let v: Value =
            serde_json::from_str(&h.rampart_ok(&["compliance", "history", &a.id, "-o", "json"]))
                .unwrap();
        if v.as_array()
            .unwrap()
            .iter()
            .any(|s| s["sweep_id"] == sweep_id.as_str())
        {
            Ok(v)
        } else {
            Err(format!("{v}"))
        }
    });
    assert!(history[0]["fail"].as_u64().unwrap() > 0);
    let audit = h.rampart_ok(&["audit", "ls", "-o", "json"]);
    assert!(audit.contains("ComplianceService/AddSchedule"));
    h.rampart_ok(&["schedule", "rm", &fast]);
    h.rampart_ok(&["schedule", "rm", &daily]);
    let listed: Value =
        serde_json::from_str(&h.rampart_ok(&["schedule", "ls", "-o", "json"])).unwrap();
    assert_eq!(listed, serde_json::json!([]));
}
