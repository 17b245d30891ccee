//! End-to-end chaos runs over time: runs side by side that never touch each other's faults, the
//! emergency stop halting them all, a coordinator killed mid-run, and a game day with its gate,
//! notes and abort. Every outcome is checked on the hosts (nftables state as before).

use std::time::Duration;

use rampart_e2e::chaos::{
    file, gated_game_day, one_host, run_json, show, table_exists, wait_finished,
};
use rampart_e2e::netns::network_state;
use rampart_e2e::{Harness, WAIT, eventually};

#[test]
fn a_coordinator_killed_mid_run_aborts_it_and_reverts_its_faults_when_back() {
    let Some((h, host, _, before)) = one_host(&[]) else {
        return;
    };
    let x = file(
        &h,
        "long.yaml",
        &format!(
            "kind: Experiment\nname: long-partition\nscope: {{selector: \"\"}}\nhypothesis:\n  - name: coordinator-up\n    tcp: {{address: \"{}\"}}\nmethod:\n  - fault: {{kind: network-partition, port: 18080}}\n    duration: 10m\nabort:\n  max_duration: 15m\n",
            h.addr
        ),
    );
    let id = h
        .rampart_ok(&["experiment", "run", x.to_str().unwrap()])
        .trim()
        .to_string();
    eventually(WAIT, "the partition to be applied", || {
        if table_exists(&host.netns) {
            Ok(())
        } else {
            Err("no table yet".to_string())
        }
    });
    h.with_proc("coordinator", |p| p.kill());
    assert!(
        table_exists(&host.netns),
        "the fault outlives the coordinator (its lease protects the host later)"
    );
    h.start_coordinator();
    eventually(WAIT, "the run to be aborted and its fault reverted", || {
        let r = show(&h, &id);
        if r["verdict"] == "aborted"
            && r["faults"][0]["state"] == "reverted"
            && !table_exists(&host.netns)
        {
            Ok(())
        } else {
            Err(r.to_string())
        }
    });
    let r = show(&h, &id);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("coordinator stopped"),
        "{r:#}"
    );
    assert_eq!(network_state(&host.netns), before);
    assert_eq!(
        h.sql("SELECT COUNT(*) FROM chaos_run_faults WHERE settled = 0"),
        Some(0)
    );
}

#[test]
fn a_game_day_waits_at_its_gate_takes_notes_and_aborts_everything() {
    let Some((h, host, _, before)) = one_host(&["role=db"]) else {
        return;
    };
    let plan = gated_game_day(&h, "q4-resilience", true);
    let id = h
        .rampart_ok(&["gameday", "run", plan.to_str().unwrap()])
        .trim()
        .to_string();
    let status = |h: &Harness| run_json(h, &["gameday", "status", &id, "-o", "json"]);
    eventually(WAIT, "the game day to wait at its gate", || {
        let s = status(&h);
        if s["state"] == "waiting_approval" {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    });
    let s = status(&h);
    assert_eq!(s["stage"], "go/no-go");
    assert_eq!(s["children"].as_array().unwrap().len(), 1);
    assert_eq!(s["children"][0]["verdict"], "passed", "{s:#}");
    assert_eq!(s["children"][0]["file"], "warm.yaml");
    assert!(
        s["children"][0]["spec"]
            .as_str()
            .unwrap()
            .starts_with("kind: Experiment")
    );
    assert_eq!(s["file"], plan.to_str().unwrap());
    // It keeps waiting: nothing of the next stage runs.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(status(&h)["state"], "waiting_approval");
    assert!(!table_exists(&host.netns));
    // A viewer may watch and note, but not approve.
    let viewer = h
        .rampart_ok(&[
            "admin", "token", "create", "--name", "watcher", "--role", "viewer",
        ])
        .trim()
        .to_string();
    let out = h.rampart_as(Some(&viewer), &["gameday", "approve", &id]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("operator"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    h.rampart_as(
        Some(&viewer),
        &["gameday", "note", &id, "DBA on call confirmed"],
    );
    h.rampart_ok(&["gameday", "approve", &id]);
    eventually(WAIT, "the database stage to partition the host", || {
        if table_exists(&host.netns) {
            Ok(())
        } else {
            Err(status(&h).to_string())
        }
    });
    assert_eq!(status(&h)["stage"], "database");
    let out = h.rampart(&["gameday", "abort", &id, "--reason", "pager went off"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = status(&h);
    assert_eq!(s["verdict"], "aborted", "{s:#}");
    assert!(s["reason"].as_str().unwrap().contains("pager went off"));
    assert_eq!(s["children"][1]["verdict"], "aborted", "{s:#}");
    assert!(
        !table_exists(&host.netns),
        "the abort reverted the partition"
    );
    assert_eq!(network_state(&host.netns), before);
    let timeline = s["timeline"].as_array().unwrap();
    let note = timeline
        .iter()
        .find(|e| e["kind"] == "note")
        .expect("the note is on the timeline");
    assert_eq!(note["detail"], "DBA on call confirmed");
    assert!(
        note["actor"].as_str().unwrap().starts_with("watcher"),
        "{note}"
    );
    assert!(timeline.iter().any(
        |e| e["kind"] == "approval" && e["detail"].as_str().unwrap().starts_with("approved by")
    ));
    let report = h.rampart_ok(&["gameday", "report", &id]);
    assert!(
        report.contains("# Game day `q4-resilience` — aborted"),
        "{report}"
    );
    assert!(report.contains("DBA on call confirmed"), "{report}");
    assert!(report.contains("| warm-up | warm.yaml |"), "{report}");
}

#[test]
fn runs_side_by_side_never_touch_each_others_faults_and_the_emergency_stop_halts_them_all() {
    let Some((h, host, _, before)) = one_host(&[]) else {
        return;
    };
    let spec = |name: &str, port: u16| {
        format!(
            "kind: Experiment\nname: {name}\nscope: {{selector: \"\"}}\nhypothesis:\n  - name: coordinator-up\n    tcp: {{address: \"{}\"}}\n  - name: memory-known\n    metric: {{name: memory_percent, below: 101}}\n    interval: 300ms\nmethod:\n  - fault: {{kind: network-partition, port: {port}}}\n    duration: 10m\nabort:\n  max_duration: 15m\n",
            h.addr
        )
    };
    let first = file(&h, "first.yaml", &spec("first", 18080));
    let second = file(&h, "second.yaml", &spec("second", 18081));
    // Started at the same moment, from two operators' terminals.
    let (one, two) = std::thread::scope(|s| {
        let a = s.spawn(|| h.rampart_ok(&["experiment", "run", first.to_str().unwrap()]));
        let b = s.spawn(|| h.rampart_ok(&["experiment", "run", second.to_str().unwrap()]));
        (
            a.join().unwrap().trim().to_string(),
            b.join().unwrap().trim().to_string(),
        )
    });
    let ruleset = || {
        let o = std::process::Command::new("ip")
            .args(["netns", "exec", &host.netns, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    eventually(WAIT, "both partitions applied", || {
        let r = ruleset();
        if r.contains("18080") && r.contains("18081") {
            Ok(())
        } else {
            Err(r)
        }
    });
    // Aborting one run reverts its fault only.
    let out = h.rampart(&["experiment", "abort", &one, "--reason", "wrong window"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r1 = show(&h, &one);
    assert_eq!(r1["verdict"], "aborted", "{r1:#}");
    assert!(r1["reason"].as_str().unwrap().contains("wrong window"));
    assert_eq!(r1["faults"][0]["state"], "reverted");
    let rules = ruleset();
    assert!(
        !rules.contains("18080") && rules.contains("18081"),
        "{rules}"
    );
    // Both runs watched the host's metrics; the first one's end must not stop the second's
    // stream (a sample older than 3 s would be a miss and halt it).
    std::thread::sleep(Duration::from_secs(4));
    let r2 = show(&h, &two);
    assert_eq!(r2["state"], "running", "{r2:#}");
    assert_eq!(r2["faults"][0]["state"], "active", "{r2:#}");
    let metric = r2["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "metric")
        .unwrap()
        .clone();
    assert_eq!(metric["misses"], 0, "{metric}");
    assert!(metric["checks"].as_u64().unwrap() >= 10, "{metric}");
    // A finished run cannot be aborted again.
    let out = h.rampart(&["experiment", "abort", &one]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
    // The emergency stop halts the other run, which ends aborted with its fault reverted.
    h.rampart_ok(&["stop"]);
    let r2 = wait_finished(&h, &two);
    assert_eq!(r2["verdict"], "aborted", "{r2:#}");
    assert!(
        r2["reason"].as_str().unwrap().contains("emergency stop"),
        "{r2:#}"
    );
    assert_eq!(r2["faults"][0]["state"], "reverted", "{r2:#}");
    assert!(!table_exists(&host.netns));
    assert_eq!(network_state(&host.netns), before);
    assert_eq!(
        h.sql("SELECT COUNT(*) FROM chaos_run_faults WHERE settled = 0"),
        Some(0)
    );
}

#[test]
fn a_fault_whose_agent_stops_answering_is_reported_unconfirmed_then_reverted_when_it_is_back() {
    let Some((h, host, a, before)) = one_host(&[]) else {
        return;
    };
    let x = file(
        &h,
        "x.yaml",
        &format!(
            "kind: Experiment\nname: frozen\nscope: {{selector: \"\"}}\nhypothesis:\n  - name: coordinator-up\n    tcp: {{address: \"{}\"}}\nmethod:\n  - fault: {{kind: network-partition, port: 18080}}\n    duration: 10m\nabort:\n  max_duration: 15m\n",
            h.addr
        ),
    );
    let id = h
        .rampart_ok(&["experiment", "run", x.to_str().unwrap()])
        .trim()
        .to_string();
    eventually(WAIT, "the partition applied", || {
        if table_exists(&host.netns) {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    // The agent freezes (SIGSTOP): it answers nothing, and its session times out.
    h.with_proc("agent", |p| p.signal(nix::sys::signal::Signal::SIGSTOP));
    h.wait_state(&a.id, "offline", WAIT);
    let out = h.rampart(&["experiment", "abort", &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not confirmed reverted"), "{err}");
    let r = show(&h, &id);
    assert_eq!(r["verdict"], "aborted", "{r:#}");
    assert_eq!(
        r["faults"][0]["state"], "unknown",
        "never reported reverted unless confirmed: {r:#}"
    );
    assert!(table_exists(&host.netns), "nothing reached the host");
    assert_eq!(
        h.sql("SELECT COUNT(*) FROM chaos_run_faults WHERE settled = 0"),
        Some(1)
    );
    // Back: at its next session the coordinator reverts the run's fault and records it.
    h.with_proc("agent", |p| p.signal(nix::sys::signal::Signal::SIGCONT));
    eventually(WAIT, "the fault reverted once the agent is back", || {
        let r = show(&h, &id);
        if r["faults"][0]["state"] == "reverted" && !table_exists(&host.netns) {
            Ok(())
        } else {
            Err(r["faults"].to_string())
        }
    });
    assert_eq!(network_state(&host.netns), before);
    assert_eq!(
        h.sql("SELECT COUNT(*) FROM chaos_run_faults WHERE settled = 0"),
        Some(0)
    );
    let r = show(&h, &id);
    let timeline = r["timeline"].as_array().unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e["kind"] == "revert"
                && e["detail"].as_str().unwrap().contains("NOT confirmed")),
        "{r:#}"
    );
}
