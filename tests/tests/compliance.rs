//! End-to-end compliance: agents with their own fact roots, a sweep over all of them.

use std::path::Path;

use rampart_e2e::{Harness, WAIT, copy_tree};
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
        "--wait",
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
    let out = h.rampart(&["sweep", "--wait", "--selector", "name=hardened"]);
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

    // Stored reports render in every format; the findings agree with the JSON report.
    let sweep_id = report["sweep_id"].as_str().unwrap();
    let findings =
        report["summary"]["fail"].as_u64().unwrap() + report["summary"]["error"].as_u64().unwrap();
    let sarif: Value =
        serde_json::from_str(&h.rampart_ok(&["sweep", "show", sweep_id, "-o", "sarif"])).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"].as_array().unwrap().len() as u64,
        findings
    );
    assert_eq!(
        sarif["runs"][0]["invocations"][0]["executionSuccessful"], false,
        "the unreachable host makes the run incomplete"
    );
    let oscal: Value =
        serde_json::from_str(&h.rampart_ok(&["sweep", "show", sweep_id, "-o", "oscal"])).unwrap();
    let items = &oscal["assessment-results"]["results"][0]["local-definitions"]["inventory-items"];
    assert_eq!(items.as_array().unwrap().len(), 3, "{oscal}");
    let junit = h.rampart_ok(&["sweep", "show", sweep_id, "-o", "junit"]);
    assert_eq!(junit.matches("<testsuite ").count(), 3, "{junit}");
    assert_eq!(
        junit.matches("<failure ").count() as u64,
        report["summary"]["fail"].as_u64().unwrap()
    );
    let md = h.rampart_ok(&["sweep", "show", sweep_id, "-o", "markdown"]);
    assert!(
        md.contains(&format!("## Findings ({findings})")) && md.contains("## Not checked (1)"),
        "{md}"
    );
    let out = h.rampart(&["sweep", "show", sweep_id, "--fail-on", "critical"]);
    assert_eq!(out.status.code(), Some(5), "show honours --fail-on too");

    // Without --wait the sweep runs on the coordinator: the command prints its id at once.
    let started = h.rampart_ok(&["sweep", "--selector", "name=weak"]);
    let id = started.trim();
    assert!(id.starts_with("sweep-"), "{started}");
    let shown: Value = rampart_e2e::eventually(WAIT, "the background sweep to finish", || {
        let v: Value =
            serde_json::from_str(&h.rampart_ok(&["sweep", "show", id, "-o", "json"])).unwrap();
        if v["hosts"].as_array().unwrap().len() == 1 {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    });
    assert_eq!(shown["hosts"][0]["agent_id"], ids["weak"].as_str());
    let out = h.rampart(&["sweep", "-o", "junit"]);
    assert_eq!(out.status.code(), Some(2), "a report format needs --wait");
    assert!(String::from_utf8_lossy(&out.stderr).contains("-o needs --wait"));

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

#[test]
fn drift_shows_what_flipped_when_a_host_file_changes_and_history_keeps_every_sweep() {
    let h = Harness::start();
    let root = h.dir.path().join("root");
    copy_tree(&fixtures().join("hardened"), &root);
    let token = h.join_token(&[], 1, "10m");
    let a = h.enroll_ok("agent", None, &token, &[]);
    h.run_agent("agent", &a, &["--fact-root", root.to_str().unwrap()]);
    h.wait_online(&[&a.id]);

    h.rampart_ok(&["sweep", "--wait"]);
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
    h.rampart_ok(&["sweep", "--wait"]);

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
        serde_json::from_str(&h.rampart_ok(&["sweep", "--wait", "--stored", "-o", "json"]))
            .unwrap();
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

/// The remediation loop on a host whose fact root is a copy of the weak fixture: dry run (nothing
/// changes) → apply (fixed) → a new sweep passes → rollback (restored) → a new sweep fails again.
/// A second host's agent forbids remediation in its config.
#[test]
fn remediation_dry_run_apply_resweep_rollback() {
    let h = Harness::start();
    let token = h.join_token(&[], 2, "10m");
    let mut ids = std::collections::BTreeMap::new();
    for name in ["open", "locked"] {
        let root = h.dir.path().join(format!("root-{name}"));
        copy_tree(&fixtures().join("weak"), &root);
        let config = h.dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, format!("remediation = {}\n", name == "open")).unwrap();
        let a = h.enroll_ok(name, None, &token, &[&format!("name={name}")]);
        h.run_agent(
            name,
            &a,
            &[
                "--fact-root",
                root.to_str().unwrap(),
                "--config",
                config.to_str().unwrap(),
            ],
        );
        ids.insert(name, a.id);
    }
    h.wait_online(&ids.values().map(String::as_str).collect::<Vec<_>>());
    let root = h.dir.path().join("root-open");
    let ip_forward = root.join("proc/sys/net/ipv4/ip_forward");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let host = |run: &Value, name: &str| {
        run["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["agent_id"] == ids[name].as_str())
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {run}"))
    };
    let verdict = |rule: &str| {
        let report: Value = serde_json::from_str(&h.rampart_ok(&[
            "sweep",
            "--wait",
            "--selector",
            "name=open",
            "-o",
            "json",
        ]))
        .unwrap();
        result(&report["hosts"][0], rule)["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(verdict("sysctl-ip-forward"), "fail");

    // Dry run: each host's plan; the locked agent refuses; nothing changes.
    let out = h.rampart(&["remediate", "--rule", "sysctl-ip-forward", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "a refusing host is not a success"
    );
    let dry: Value = serde_json::from_slice(&out.stdout).unwrap();
    let open = host(&dry, "open");
    assert_eq!(open["status"], "planned", "{open}");
    assert_eq!(open["before"], "fail");
    assert!(
        open["changes"][0]
            .as_str()
            .unwrap()
            .contains("net.ipv4.ip_forward: 1 → 0"),
        "{open}"
    );
    let locked = host(&dry, "locked");
    assert_eq!(locked["status"], "failed");
    assert!(
        locked["message"]
            .as_str()
            .unwrap()
            .contains("disabled by this agent's config"),
        "{locked}"
    );
    assert_eq!(read(&ip_forward).trim(), "1", "a dry run changes nothing");
    assert!(!root.join("etc/sysctl.d/99-rampart.conf").exists());

    // Applying needs the operator role.
    let viewer = h
        .rampart_ok(&["admin", "token", "create", "--role", "viewer"])
        .trim()
        .to_string();
    let out = h.rampart_as(
        Some(&viewer),
        &["remediate", "--rule", "sysctl-ip-forward", "--apply"],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("permission denied"),
        "{out:?}"
    );
    assert_eq!(read(&ip_forward).trim(), "1");

    // Apply three kinds of action: fixed, checked again by the coordinator.
    let mut runs = std::collections::BTreeMap::new();
    for rule in [
        "sysctl-ip-forward",
        "sshd-permit-root-login",
        "service-avahi-disabled",
    ] {
        let applied: Value = serde_json::from_str(&h.rampart_ok(&[
            "remediate",
            "--rule",
            rule,
            "--selector",
            "name=open",
            "--apply",
            "-o",
            "json",
        ]))
        .unwrap();
        let open = host(&applied, "open");
        assert_eq!(
            (
                open["status"].as_str(),
                open["before"].as_str(),
                open["after"].as_str()
            ),
            (Some("fixed"), Some("fail"), Some("pass")),
            "{rule}: {open}"
        );
        runs.insert(rule, applied["run_id"].as_str().unwrap().to_string());
    }
    assert_eq!(read(&ip_forward).trim(), "0");
    assert!(read(&root.join("etc/sysctl.d/99-rampart.conf")).contains("net.ipv4.ip_forward = 0"));
    assert!(read(&root.join("etc/ssh/sshd_config")).contains("\npermitrootlogin no\n"));
    assert!(
        !root
            .join("etc/systemd/system/multi-user.target.wants/avahi-daemon.service")
            .exists()
    );
    // The locked host was left alone.
    assert_eq!(
        read(
            &h.dir
                .path()
                .join("root-locked/proc/sys/net/ipv4/ip_forward")
        )
        .trim(),
        "1"
    );

    // A new sweep agrees.
    for rule in runs.keys() {
        assert_eq!(verdict(rule), "pass", "{rule} after remediation");
    }

    // Roll the sysctl run back: restored, and failing again.
    let back: Value = serde_json::from_str(&h.rampart_ok(&[
        "remediate",
        "rollback",
        &runs["sysctl-ip-forward"],
        "-o",
        "json",
    ]))
    .unwrap();
    let open = host(&back, "open");
    assert_eq!(
        (open["status"].as_str(), open["after"].as_str()),
        (Some("restored"), Some("fail")),
        "{open}"
    );
    assert_eq!(read(&ip_forward).trim(), "1");
    assert!(
        !root.join("etc/sysctl.d/99-rampart.conf").exists(),
        "a file the run created is removed"
    );
    assert_eq!(verdict("sysctl-ip-forward"), "fail");
    assert_eq!(
        verdict("sshd-permit-root-login"),
        "pass",
        "other runs are untouched"
    );
    let out = h.rampart(&["remediate", "rollback", &runs["sysctl-ip-forward"]]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no host left to roll back"),
        "{out:?}"
    );

    // A dry run has nothing to roll back; runs are audited.
    let dry_id = dry["run_id"].as_str().unwrap();
    let out = h.rampart(&["remediate", "rollback", dry_id]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was a dry run"),
        "{out:?}"
    );
    let audit = h.rampart_ok(&["audit", "ls", "-o", "json"]);
    assert!(
        audit.contains("ComplianceService/Remediate")
            && audit.contains("ComplianceService/RollbackRemediation")
    );
    let out = h.rampart(&["remediate"]);
    assert_eq!(out.status.code(), Some(2), "no rule named");
}

#[test]
fn reports_carry_host_labels_and_group_by_scores_each_group() {
    let h = Harness::start();
    let token = h.join_token(&[], 3, "10m");
    let mut ids = Vec::new();
    for (name, root, env) in [
        ("p1", "hardened", "prod"),
        ("p2", "weak", "prod"),
        ("s1", "weak", "staging"),
    ] {
        let a = h.enroll_ok(name, None, &token, &[&format!("env={env}"), "team=ops"]);
        h.run_agent(
            name,
            &a,
            &["--fact-root", fixtures().join(root).to_str().unwrap()],
        );
        ids.push(a.id);
    }
    h.wait_online(&ids.iter().map(String::as_str).collect::<Vec<_>>());

    let out = h.rampart_ok(&["sweep", "--wait", "-o", "json", "--group-by", "env"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    for host in report["hosts"].as_array().unwrap() {
        assert_eq!(host["labels"]["team"], "ops", "{host}");
    }
    let groups = report["groups"]["groups"].as_array().unwrap();
    let prod = groups.iter().find(|g| g["value"] == "prod").unwrap();
    let staging = groups.iter().find(|g| g["value"] == "staging").unwrap();
    assert_eq!(
        (prod["hosts"].as_u64(), staging["hosts"].as_u64()),
        (Some(2), Some(1))
    );
    // prod has the hardened host: it scores better than staging (weak only).
    assert!(prod["score"].as_f64().unwrap() > staging["score"].as_f64().unwrap());

    let sweep_id = report["sweep_id"].as_str().unwrap().to_string();
    let table = h.rampart_ok(&["sweep", "show", &sweep_id, "--group-by", "env"]);
    assert!(
        table.contains("env=prod,team=ops") && table.contains("ENV"),
        "{table}"
    );
    for format in ["junit", "sarif", "oscal", "markdown"] {
        let text = h.rampart_ok(&["sweep", "show", &sweep_id, "-o", format]);
        assert!(text.contains("staging"), "{format} names the labels");
    }
    let status: Value = serde_json::from_str(&h.rampart_ok(&[
        "compliance",
        "status",
        "-o",
        "json",
        "--group-by",
        "env",
    ]))
    .unwrap();
    assert_eq!(
        status["groups"]["groups"].as_array().unwrap().len(),
        2,
        "{status}"
    );
    assert!(status["hosts"][0]["labels"]["env"].is_string());

    let out = h.rampart(&["sweep", "--wait", "-o", "sarif", "--group-by", "env"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--group-by works with"));

    // Grouped by the NIST SP 800-53 controls the checks cite: weak hosts leave AC-6(2) (root
    // login over SSH) not satisfied; every check is counted under each control it cites.
    let by_control: Value = serde_json::from_str(&h.rampart_ok(&[
        "sweep",
        "show",
        &sweep_id,
        "-o",
        "json",
        "--framework",
        "nist-800-53",
    ]))
    .unwrap();
    let controls = by_control["framework"]["controls"].as_array().unwrap();
    let ac6 = controls.iter().find(|c| c["control"] == "AC-6(2)").unwrap();
    assert_eq!(ac6["state"], "not-satisfied", "{ac6}");
    assert!(
        ac6["checks"]
            .as_array()
            .unwrap()
            .contains(&"sshd-permit-root-login".into())
    );
    assert_eq!(ac6["fail"].as_u64(), Some(2), "two weak hosts");
    assert!(controls.len() > 10, "{controls:?}");
    let table = h.rampart_ok(&["sweep", "show", &sweep_id, "--framework", "cis"]);
    assert!(table.contains("CIS") && table.contains("5.1.20"), "{table}");
    let out = h.rampart(&[
        "sweep",
        "show",
        &sweep_id,
        "-o",
        "oscal",
        "--framework",
        "cis",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// `rampart packs test` and `packs lint` on the built-in pack's folder, as a pack author runs
/// them: the shipped cases pass, a wrong expectation is shown as a diff with the evidence and
/// fails the command, and a folder that is not a pack is refused with the reason.
#[test]
fn pack_authors_test_and_lint_a_pack_folder_with_the_cli() {
    let rampart = &rampart_e2e::binaries().rampart;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(rampart)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let builtin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/packs/linux-baseline");
    let (code, out, err) = run(&["packs", "test", builtin.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("ok    hardened (52 checks)") && out.contains("2 passed, 0 failed"),
        "{out}"
    );
    let (code, out, _) = run(&["packs", "lint", builtin.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("no problems"), "{out}");

    // A copy whose weak case expects sshd-permit-root-login to pass.
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("p");
    std::fs::create_dir_all(&pack).unwrap();
    copy_tree(&builtin, &pack);
    for case in ["hardened", "weak"] {
        // The copy's trees are two levels further from the fixtures: point at them absolutely.
        let toml = pack.join("tests").join(case).join("case.toml");
        let text = std::fs::read_to_string(&toml).unwrap().replace(
            "../../../../../tests/fixtures",
            fixtures().parent().unwrap().to_str().unwrap(),
        );
        std::fs::write(&toml, text).unwrap();
    }
    let expected = pack.join("tests/weak/expected.toml");
    let text = std::fs::read_to_string(&expected).unwrap();
    std::fs::write(
        &expected,
        text.replace(
            r#""sshd-permit-root-login" = "fail""#,
            r#""sshd-permit-root-login" = "pass""#,
        ),
    )
    .unwrap();
    let (code, out, _) = run(&["packs", "test", pack.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("sshd-permit-root-login"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("expected pass")
            && line.contains("got fail")
            && line.contains(r#""permitrootlogin":"yes""#),
        "{line}"
    );
    assert!(out.contains("FAIL  weak: 1 of 52 checks differ"), "{out}");
    // --update takes the pack's verdicts; the case passes again.
    run(&["packs", "test", pack.to_str().unwrap(), "--update"]);
    let (code, _, _) = run(&["packs", "test", pack.to_str().unwrap(), "--case", "weak"]);
    assert_eq!(code, Some(0));

    let (code, _, err) = run(&["packs", "test", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no pack.toml"), "{err}");
}

/// The CIS packs on agents whose fact roots are the Debian 12 and Ubuntu 24.04 fixture trees: a
/// pack judges the hosts of its distribution check by check, gives every check of another
/// distribution's host `not_applicable` with one reason shown as the host's message, groups its
/// results by CIS Controls v8 safeguards, and names the controls in its OSCAL findings.
#[test]
fn cis_packs_judge_their_distribution_and_say_why_they_skip_others() {
    let h = Harness::start();
    let token = h.join_token(&["fleet=cis"], 4, "10m");
    let mut ids = std::collections::BTreeMap::new();
    for root in [
        "debian-12-hardened",
        "debian-12-weak",
        "ubuntu-24.04-hardened",
        "rhel-9-weak",
    ] {
        let a = h.enroll_ok(root, None, &token, &[]);
        h.run_agent(
            root,
            &a,
            &["--fact-root", fixtures().join(root).to_str().unwrap()],
        );
        ids.insert(root, a.id);
    }
    h.wait_online(&ids.values().map(String::as_str).collect::<Vec<_>>());
    let report: Value = serde_json::from_str(&h.rampart_ok(&[
        "sweep",
        "--wait",
        "--pack",
        "cis-debian-12",
        "--selector",
        "fleet=cis",
        "-o",
        "json",
    ]))
    .unwrap();
    let host = |root: &str| {
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["agent_id"] == ids[root].as_str())
            .unwrap_or_else(|| panic!("{root} missing from {report}"))
            .clone()
    };
    let hardened = host("debian-12-hardened");
    let weak = host("debian-12-weak");
    assert_eq!(hardened["results"].as_array().unwrap().len(), 206);
    for (rule, good, bad) in [
        ("sshd-permit-root-login", "pass", "fail"),
        ("nftables-default-deny", "pass", "not_applicable"),
        ("ufw-enabled", "not_applicable", "fail"),
        ("pam-unix-no-nullok", "pass", "fail"),
        ("sudo-use-pty", "pass", "fail"),
        ("service-avahi", "pass", "fail"),
        ("net-ip-forwarding", "pass", "fail"),
    ] {
        assert_eq!(result(&hardened, rule)["status"], good, "{rule}");
        assert_eq!(result(&weak, rule)["status"], bad, "{rule}");
    }
    let ubuntu = host("ubuntu-24.04-hardened");
    assert_eq!(ubuntu["status"], "ok");
    assert!(
        ubuntu["message"]
            .as_str()
            .unwrap()
            .contains("pack cis-debian-12 is written for debian 12; this host is ubuntu 24.04"),
        "{}",
        ubuntu["message"]
    );
    assert!(
        ubuntu["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "not_applicable"),
        "no page of failures for another distribution"
    );
    let sweep_id = report["sweep_id"].as_str().unwrap().to_string();

    // Grouped by CIS Controls v8 safeguard: 4.8 (unneeded services) is not satisfied because of
    // the weak host.
    let grouped: Value = serde_json::from_str(&h.rampart_ok(&[
        "sweep",
        "show",
        &sweep_id,
        "-o",
        "json",
        "--framework",
        "cis-controls",
    ]))
    .unwrap();
    let controls = grouped["framework"]["controls"].as_array().unwrap();
    let s48 = controls.iter().find(|c| c["control"] == "4.8").unwrap();
    assert_eq!(s48["state"], "not-satisfied", "{s48}");
    assert!(
        s48["checks"]
            .as_array()
            .unwrap()
            .contains(&"service-avahi".into())
    );

    // OSCAL findings name the controls their check cites.
    let oscal: Value =
        serde_json::from_str(&h.rampart_ok(&["sweep", "show", &sweep_id, "-o", "oscal"])).unwrap();
    let findings = oscal["assessment-results"]["results"][0]["findings"]
        .as_array()
        .unwrap();
    let root_login = findings
        .iter()
        .find(|f| f["target"]["target-id"] == "sshd-permit-root-login")
        .unwrap();
    let props = root_login["props"].to_string();
    assert!(
        props.contains("\"nist-800-53-control\"")
            && props.contains("ac-6.2")
            && props.contains("\"cis-benchmark-recommendation\"")
            && props.contains("5.1.20"),
        "{props}"
    );

    // The Ubuntu pack judges the Ubuntu host (ufw there, so the nftables checks step aside).
    let report: Value = serde_json::from_str(&h.rampart_ok(&[
        "sweep",
        "--wait",
        "--pack",
        "cis-ubuntu-24.04",
        "--selector",
        "fleet=cis",
        "-o",
        "json",
    ]))
    .unwrap();
    let ubuntu = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["agent_id"] == ids["ubuntu-24.04-hardened"].as_str())
        .unwrap();
    assert_eq!(result(ubuntu, "ufw-enabled")["status"], "pass");
    assert_eq!(
        result(ubuntu, "nftables-default-deny")["status"],
        "not_applicable"
    );
    assert_eq!(result(ubuntu, "apport-disabled")["status"], "pass");

    // The RHEL pack on the RHEL host: its packages come from the tree's rpm database (read by
    // the agent with `rpm --dbpath`), its settings from dnf, crypto-policies and authselect.
    let report: Value = serde_json::from_str(&h.rampart_ok(&[
        "sweep",
        "--wait",
        "--pack",
        "cis-rhel-9",
        "--selector",
        "fleet=cis",
        "-o",
        "json",
    ]))
    .unwrap();
    let hosts = report["hosts"].as_array().unwrap();
    let rhel = hosts
        .iter()
        .find(|x| x["agent_id"] == ids["rhel-9-weak"].as_str())
        .unwrap();
    assert_eq!(rhel["results"].as_array().unwrap().len(), 165);
    for (rule, status) in [
        ("absent-web-server", "fail"),
        ("selinux-no-setroubleshoot", "fail"),
        ("dnf-gpgcheck", "fail"),
        ("crypto-policy-not-legacy", "fail"),
        ("authselect-with-faillock", "fail"),
        ("sudo-installed", "pass"),
        ("chrony-configured", "not_applicable"),
    ] {
        assert_eq!(result(rhel, rule)["status"], status, "{rule}: {rhel}");
    }
    assert_eq!(
        result(rhel, "absent-web-server")["evidence"]["installed"],
        serde_json::json!(["httpd"])
    );
    let debian = hosts
        .iter()
        .find(|x| x["agent_id"] == ids["debian-12-hardened"].as_str())
        .unwrap();
    assert!(
        debian["message"].as_str().unwrap().contains(
            "pack cis-rhel-9 is written for rhel 9, rocky 9, almalinux 9; this host is debian 12"
        ),
        "{}",
        debian["message"]
    );
}
