//! End-to-end waivers: an operator accepts failing checks on some hosts, with a reason, until a
//! date; sweeps report them `waived` (never pass), `--fail-on` ignores them, and from expiry or
//! removal on the failure counts again. Every change is audited.

use std::path::Path;
use std::time::{Duration, Instant};

use rampart_e2e::Harness;
use serde_json::Value;

fn weak_root() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/hosts/weak")
        .display()
        .to_string()
}

/// A host of a report, by agent id.
fn host<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["agent_id"] == id)
        .unwrap_or_else(|| panic!("no host {id} in {report}"))
}

fn status<'a>(host: &'a Value, rule: &str) -> &'a str {
    host["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == rule)
        .and_then(|r| r["status"].as_str())
        .unwrap_or_else(|| panic!("no {rule} in {host}"))
}

fn sweep(h: &Harness, extra: &[&str]) -> (Value, Option<i32>) {
    let mut args = vec!["sweep", "--wait", "-o", "json"];
    args.extend_from_slice(extra);
    let out = h.rampart(&args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "sweep output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code())
}

/// RFC 3339 for now + `secs`.
fn in_secs(secs: u64) -> String {
    let t = std::time::SystemTime::now() + Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[test]
fn waived_failures_are_reported_as_such_do_not_trip_fail_on_and_count_again_when_the_waiver_ends() {
    let h = Harness::start();
    let token = h.join_token(&[], 2, "10m");
    let mut ids = Vec::new();
    for env in ["lab", "prod"] {
        let a = h.enroll_ok(env, None, &token, &[&format!("env={env}")]);
        h.run_agent(env, &a, &["--fact-root", &weak_root()]);
        ids.push(a.id);
    }
    h.wait_online(&ids.iter().map(String::as_str).collect::<Vec<_>>());
    let (lab_id, prod_id) = (ids[0].as_str(), ids[1].as_str());

    // Bad input is refused with the reason, before anything is stored.
    let days_30 = in_secs(30 * 86_400);
    let refused = [
        (
            vec![
                "--rule",
                "no-such-check",
                "--reason",
                "ticket",
                "--expires",
                &days_30,
            ],
            "no loaded pack has a check",
        ),
        (
            vec![
                "--rule",
                "sysctl-ip-forward",
                "--reason",
                "ticket",
                "--expires",
                "2001-01-01",
            ],
            "not in the future",
        ),
        (
            vec![
                "--rule",
                "sysctl-ip-forward",
                "--reason",
                "ticket",
                "--expires",
                "soon",
            ],
            "invalid expiry",
        ),
        (
            vec![
                "--rule",
                "sysctl-ip-forward",
                "--reason",
                "",
                "--expires",
                &days_30,
            ],
            "--reason",
        ),
        (
            vec![
                "--rule",
                "sysctl-ip-forward",
                "--pack",
                "nope",
                "--reason",
                "ticket",
                "--expires",
                &days_30,
            ],
            "no pack",
        ),
    ];
    for (args, says) in refused {
        let mut full = vec!["waiver", "add"];
        full.extend(args.iter().copied());
        let out = h.rampart(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{args:?} was accepted");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let viewer = h
        .rampart_ok(&["admin", "token", "create", "--role", "viewer"])
        .trim()
        .to_string();
    let out = h.rampart_as(
        Some(&viewer),
        &[
            "waiver",
            "add",
            "--rule",
            "sysctl-ip-forward",
            "--reason",
            "ticket",
            "--expires",
            &days_30,
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));

    // Before any waiver: which critical checks fail on the weak hosts.
    let (before, _) = sweep(&h, &[]);
    let lab = host(&before, lab_id);
    let critical: Vec<String> = lab["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["severity"] == "critical" && r["status"] == "fail")
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !critical.is_empty(),
        "the weak fixture fails critical checks"
    );
    assert_eq!(status(lab, "sysctl-ip-forward"), "fail");

    // Waive every critical failure on the lab host for 30 days, and sysctl-ip-forward
    // everywhere for a few seconds.
    let mut lab_waivers = Vec::new();
    for rule in &critical {
        let id = h
            .rampart_ok(&[
                "waiver",
                "add",
                "--rule",
                rule,
                "--selector",
                "env=lab",
                "--reason",
                "lab host rebuilt nightly; ticket OPS-42",
                "--expires",
                &days_30,
            ])
            .trim()
            .to_string();
        lab_waivers.push(id);
    }
    let short_expiry = Instant::now() + Duration::from_secs(8);
    let short = h
        .rampart_ok(&[
            "waiver",
            "add",
            "--rule",
            "sysctl-ip-forward",
            "--pack",
            "linux-baseline",
            "--reason",
            "router trial",
            "--expires",
            &in_secs(8),
        ])
        .trim()
        .to_string();
    let listed: Value =
        serde_json::from_str(&h.rampart_ok(&["waiver", "ls", "-o", "json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), critical.len() + 1);

    // Waived on lab, failing on prod; the waiver travels with the result.
    let (during, _) = sweep(&h, &[]);
    let lab = host(&during, lab_id);
    let prod = host(&during, prod_id);
    for rule in &critical {
        assert_eq!(status(lab, rule), "waived", "{rule} on lab");
        assert_eq!(status(prod, rule), "fail", "{rule} on prod");
    }
    assert_eq!(status(lab, "sysctl-ip-forward"), "waived");
    assert_eq!(status(prod, "sysctl-ip-forward"), "waived");
    let r = lab["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == critical[0].as_str())
        .unwrap();
    assert_eq!(
        r["waiver"]["reason"],
        "lab host rebuilt nightly; ticket OPS-42"
    );
    assert_eq!(r["waiver"]["was"], "fail");
    assert_eq!(
        r["evidence"],
        host(&before, lab_id)["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["rule"] == critical[0].as_str())
            .unwrap()["evidence"],
        "the evidence is kept"
    );
    assert_eq!(
        during["summary"]["waived"].as_u64(),
        Some(critical.len() as u64 + 2)
    );
    assert_eq!(
        during["summary"]["pass"], before["summary"]["pass"],
        "a waiver never makes a pass"
    );
    let during_id = during["sweep_id"].as_str().unwrap().to_string();

    // --fail-on critical: lab's critical failures are all waived, prod's are not.
    let (_, code) = sweep(&h, &["--selector", "env=lab", "--fail-on", "critical"]);
    assert_eq!(code, Some(0), "waived failures do not trip --fail-on");
    let (_, code) = sweep(&h, &["--selector", "env=prod", "--fail-on", "critical"]);
    assert_eq!(code, Some(5));

    // Every report format says which results were waived, why and until when.
    for format in ["table", "junit", "sarif", "oscal", "markdown"] {
        let text = h.rampart_ok(&["sweep", "show", &during_id, "-o", format]);
        assert!(text.contains("ticket OPS-42"), "{format}: {text}");
        assert!(text.contains(&lab_waivers[0]), "{format} names the waiver");
    }

    // The short waiver ends: status counts sysctl-ip-forward as failing again at once, and the
    // next sweep fails it.
    let waived_in_status = |h: &Harness| -> u64 {
        let s: Value =
            serde_json::from_str(&h.rampart_ok(&["compliance", "status", "-o", "json"])).unwrap();
        s["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["agent_id"] == lab_id)
            .and_then(|x| x["waived"].as_u64())
            .unwrap_or(0)
    };
    let lab_status_before = waived_in_status(&h);
    assert_eq!(lab_status_before, critical.len() as u64 + 1);
    std::thread::sleep(
        short_expiry.saturating_duration_since(Instant::now()) + Duration::from_secs(1),
    );
    assert_eq!(
        waived_in_status(&h),
        critical.len() as u64,
        "the expired waiver lapsed"
    );
    let table = h.rampart_ok(&["waiver", "ls"]);
    let short_line = table.lines().find(|l| l.contains(&short)).unwrap();
    assert!(short_line.contains("expired"), "{table}");
    let (after, _) = sweep(&h, &[]);
    assert_eq!(status(host(&after, lab_id), "sysctl-ip-forward"), "fail");
    assert_eq!(status(host(&after, lab_id), &critical[0]), "waived");

    // Removing a waiver: the failure counts again; the old report still shows what was waived.
    h.rampart_ok(&["waiver", "rm", &lab_waivers[0]]);
    let out = h.rampart(&["waiver", "rm", &lab_waivers[0]]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no waiver"));
    let (removed, _) = sweep(&h, &[]);
    assert_eq!(status(host(&removed, lab_id), &critical[0]), "fail");
    let old: Value =
        serde_json::from_str(&h.rampart_ok(&["sweep", "show", &during_id, "-o", "json"])).unwrap();
    assert_eq!(status(host(&old, lab_id), &critical[0]), "waived");

    // Audited: who added and removed which waiver; the refused viewer too.
    let audit: Value = serde_json::from_str(&h.rampart_ok(&["audit", "ls", "-o", "json"])).unwrap();
    let entries = audit.as_array().unwrap();
    let of = |action: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .collect::<Vec<_>>()
    };
    let added = of("ComplianceService/AddWaiver");
    assert!(
        added.len() > critical.len() + 1,
        "every add, refused ones too"
    );
    assert!(
        added
            .iter()
            .any(|e| e["arguments"].as_str().unwrap().contains("ticket OPS-42"))
    );
    assert!(
        added
            .iter()
            .any(|e| e["result"].as_str().unwrap().contains("PermissionDenied"))
    );
    // Each call is written when it starts and with its outcome.
    let removed: Vec<&str> = of("ComplianceService/RemoveWaiver")
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 4, "{removed:?}");
    assert_eq!(removed.iter().filter(|r| **r == "ok").count(), 1);
    assert!(
        removed.iter().any(|r| r.starts_with("NotFound")),
        "{removed:?}"
    );
}
