//! End to end: a threat model applied to a real coordinator, its residual risk following what two
//! real agents report — a host tree whose sshd drifts and is remediated, experiment runs that pass
//! and fail, a port opened in a namespace host that no flow explains.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rampart_e2e::chaos::{file, run_json, show, wait_finished};
use rampart_e2e::netns::spawn_in;
use rampart_e2e::{Harness, WAIT, copy_tree, eventually};
use serde_json::Value;

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hosts")
}

const MODEL: &str = "kind: ThreatModel
name: shop
assets:
  - {id: orders, name: Orders, confidentiality: critical, integrity: high, availability: high}
boundaries:
  - {id: inet, name: Internet, kind: internet}
  - {id: dmz, name: DMZ}
  - {id: core, name: Core, parent: dmz}
actors:
  - {id: customer, name: Customer, boundary: inet}
components:
  - {id: web, name: Web shop, type: process, boundary: dmz, selector: role=web, handles: [orders], audit_log: true, instances: 2}
  - {id: db, name: Orders DB, type: datastore, boundary: core, selector: role=db, handles: [orders], audit_log: true, instances: 2}
flows:
  - {id: customer-web, from: customer, to: web, protocol: https, port: 443, encrypted: true, authenticated: true}
  - {id: web-db, from: web, to: db, protocol: postgres, port: 5432, encrypted: true, authenticated: true, carries: [orders]}
threats:
  - {id: T-web-flood, title: The shop is flooded, stride: denial_of_service, elements: [web]}
  - {id: T-db-outage, title: The orders database stops, stride: denial_of_service, elements: [db]}
mitigations:
  - id: M-db-host
    title: The database host is hardened (no root logins) and its disks are encrypted by the platform
    mitigates: [rule:datastore-unencrypted-at-rest@db]
    controls: [{pack: linux-baseline, rule: sshd-permit-root-login}]
  - id: M-db-failover
    title: The service rides out load on the database host
    mitigates: [T-db-outage]
    experiments: [db-resilience]
  - id: M-cdn
    title: A CDN absorbs floods
    mitigates: [T-web-flood]
    manual: {evidence: CDN contract, expires: 2099-01-01}
";

const AT_REST: &str = "rule:datastore-unencrypted-at-rest@db";

fn assessment(h: &Harness) -> Value {
    run_json(h, &["threats", "ls", "--detail", "-o", "json"])
}

fn risk(a: &Value, id: &str) -> Value {
    a["risks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no risk {id} in {a:#}"))
}

fn severity(r: &Value, which: &str) -> usize {
    let s = r[which]["severity"].as_str().unwrap();
    ["note", "low", "medium", "high", "critical"]
        .iter()
        .position(|x| *x == s)
        .unwrap()
}

/// A TCP service the experiment's hypothesis probes on `addr` (retrying while a previous one
/// on the same address closes); setting the returned flag closes it.
fn service(addr: &str) -> Arc<AtomicBool> {
    let listener = eventually(WAIT, "the service's address to be free", || {
        TcpListener::bind(addr).map_err(|e| e.to_string())
    });
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        while !s.load(Ordering::SeqCst) {
            let _ = listener.accept();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    stop
}

#[test]
fn residual_risk_follows_sweeps_remediation_experiments_and_open_ports() {
    let Some(h) = Harness::start_with_hosts(1) else {
        return;
    };
    let host = h.network.as_ref().unwrap().hosts[0].clone();
    let token = h.join_token(&[], 2, "10m");
    // web: a namespace host, facts from its real /proc (its own sockets).
    let web = h.enroll_ok("web", Some(&host.netns), &token, &["role=web"]);
    h.run_agent("web", &web, &[]);
    // db: a hardened host tree; remediation allowed.
    let root = h.dir.path().join("db-root");
    copy_tree(&fixtures().join("hardened"), &root);
    let config = h.dir.path().join("db.toml");
    std::fs::write(&config, "remediation = true\n").unwrap();
    let db = h.enroll_ok("db", None, &token, &["role=db"]);
    h.run_agent(
        "db",
        &db,
        &[
            "--fact-root",
            root.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    h.wait_online(&[&web.id, &db.id]);

    let service_addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let stop_service = service(&service_addr);
    let experiment = file(
        &h,
        "db-resilience.yaml",
        &format!(
            "kind: Experiment\nname: db-resilience\nscope: {{selector: role=db}}\nhypothesis:\n  - name: service-up\n    tcp: {{address: \"{service_addr}\"}}\n    interval: 200ms\n    tolerance: 1\nmethod:\n  - fault: {{kind: cpu, load: 10}}\n    duration: 1s\nabort:\n  max_duration: 1m\n"
        ),
    );
    let run = |path: &Path| {
        h.rampart_ok(&["experiment", "run", path.to_str().unwrap()])
            .trim()
            .to_string()
    };
    let passed = wait_finished(&h, &run(&experiment));
    assert_eq!(passed["verdict"], "passed", "{passed:#}");

    // A model file with an error is refused with its place, and nothing is applied.
    let bad = file(
        &h,
        "bad.yaml",
        &MODEL.replace("parent: dmz", "parent: nowhere"),
    );
    let out = h.rampart(&["threats", "apply", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml:8:36: unknown boundary \"nowhere\""),
        "{err}"
    );
    let out = h.rampart(&["threats", "ls"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no threat model has been applied"));

    h.rampart_ok(&["sweep", "--wait"]);
    let model = file(&h, "shop.yaml", MODEL);
    let out = h.rampart_ok(&["threats", "apply", model.to_str().unwrap()]);
    assert!(out.contains("applied"), "{out}");

    // Everything proven: the control passes on the db host (and only it is asked), the
    // experiment's latest run passed.
    let a = assessment(&h);
    assert_eq!(a["version"], 1);
    let r = risk(&a, AT_REST);
    assert_eq!(r["status"], "mitigated", "{r:#}");
    let hosts: Vec<&str> = r["mitigations"][0]["controls"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, vec![db.id.as_str()]);
    let mitigated_residual = severity(&r, "residual");
    assert!(mitigated_residual < severity(&r, "inherent"), "{r:#}");
    assert_eq!(risk(&a, "T-db-outage")["status"], "mitigated");
    assert_eq!(risk(&a, "T-web-flood")["status"], "mitigated");
    assert_eq!(a["unmodeled_hosts"], serde_json::json!([]));

    // Someone re-enables root login on the db host: the next sweep fails the control, the
    // residual risk rises to the inherent one and `threats show` names the host and sweep.
    let dropin = root.join("etc/ssh/sshd_config.d/00-cis.conf");
    let text = std::fs::read_to_string(&dropin).unwrap();
    let broken: String = text
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("permitrootlogin"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(broken, text, "the fixture's drop-in sets PermitRootLogin");
    std::fs::write(&dropin, broken).unwrap();
    let sweep: Value =
        serde_json::from_str(&h.rampart_ok(&["sweep", "--wait", "-o", "json"])).unwrap();
    let r = risk(&assessment(&h), AT_REST);
    assert_eq!(r["status"], "unproven", "{r:#}");
    assert_eq!(severity(&r, "residual"), severity(&r, "inherent"));
    assert!(severity(&r, "residual") > mitigated_residual);
    let why = h.rampart_ok(&["threats", "show", AT_REST]);
    assert!(why.contains("M-db-host unproven"), "{why}");
    assert!(
        why.contains(&format!("sweep {}", sweep["sweep_id"].as_str().unwrap())),
        "{why}"
    );
    assert!(why.contains("fail"), "{why}");

    // Remediate and sweep again: the control passes, the risk falls back.
    h.rampart_ok(&[
        "remediate",
        "--rule",
        "sshd-permit-root-login",
        "--selector",
        "role=db",
        "--apply",
    ]);
    h.rampart_ok(&["sweep", "--wait"]);
    let r = risk(&assessment(&h), AT_REST);
    assert_eq!(r["status"], "mitigated", "{r:#}");
    assert_eq!(severity(&r, "residual"), mitigated_residual);

    // An experiment run that fails turns its mitigation unproven.
    let long = file(
        &h,
        "db-resilience-long.yaml",
        &std::fs::read_to_string(&experiment)
            .unwrap()
            .replace("duration: 1s", "duration: 30s"),
    );
    let id = run(&long);
    eventually(WAIT, "the run's fault to be active", || {
        let r = show(&h, &id);
        if r["faults"][0]["state"] == "active" {
            Ok(())
        } else {
            Err(r.to_string())
        }
    });
    stop_service.store(true, Ordering::SeqCst);
    // The run halts and reverts; the service comes back, so it sees the hypothesis recover.
    eventually(WAIT, "the run to halt", || {
        let r = show(&h, &id);
        if r["faults"][0]["state"] == "reverted" {
            Ok(())
        } else {
            Err(r.to_string())
        }
    });
    let stop_again = service(&service_addr);
    let failed = wait_finished(&h, &id);
    stop_again.store(true, Ordering::SeqCst);
    assert_eq!(failed["verdict"], "failed", "{failed:#}");
    let r = risk(&assessment(&h), "T-db-outage");
    assert_eq!(r["status"], "unproven", "{r:#}");
    let why = h.rampart_ok(&["threats", "show", "T-db-outage"]);
    assert!(why.contains(&format!("run {id} failed")), "{why}");

    // A port opened on the web host that no flow explains is an unmodeled exposure; the one the
    // model's https flow explains is not.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let server = spawn_in(&host.netns, move || {
        let a = TcpListener::bind("0.0.0.0:443").unwrap();
        let b = TcpListener::bind("0.0.0.0:8443").unwrap();
        ready_tx.send(()).unwrap();
        let _ = rx.recv();
        drop((a, b));
    });
    ready_rx.recv().unwrap();
    h.rampart_ok(&["sweep", "--wait"]);
    let a = assessment(&h);
    let exposed: Vec<(String, u64)> = a["unmodeled_exposures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["agent_id"].as_str().unwrap().to_string(),
                e["port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(exposed.contains(&(web.id.clone(), 8443)), "{exposed:?}");
    assert!(!exposed.iter().any(|(_, p)| *p == 443), "{exposed:?}");
    tx.send(()).unwrap();
    server.join().unwrap();

    // Reading needs a viewer token; applying needs an operator; a dry run is a viewer's.
    let viewer = h
        .rampart_ok(&[
            "admin", "token", "create", "--name", "reader", "--role", "viewer",
        ])
        .trim()
        .to_string();
    let out = h.rampart_as(
        Some(&viewer),
        &["threats", "apply", model.to_str().unwrap()],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("operator"));
    let out = h.rampart_as(
        Some(&viewer),
        &["threats", "apply", "--dry-run", model.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = h.rampart_as(Some(&viewer), &["threats", "ls", "-o", "sarif"]);
    assert!(out.status.success());
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");

    // CI gate: the applied model against a file that exposes the database.
    let worse = file(
        &h,
        "worse.yaml",
        &MODEL.replace(
            "selector: role=db,",
            "selector: role=db, internet_facing: true,",
        ),
    );
    let out = h.rampart(&["threats", "diff", "--applied", worse.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rule:internet-facing-datastore@db"));
    let out = h.rampart(&["threats", "diff", "--applied", model.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));

    // A second version keeps the first; reports and diagrams come from the applied model.
    h.rampart_ok(&["threats", "apply", worse.to_str().unwrap()]);
    let v1 = run_json(&h, &["threats", "ls", "--version", "1", "-o", "json"]);
    assert_eq!(v1["version"], 1);
    assert_eq!(assessment(&h)["version"], 2);
    let html = h.rampart_ok(&["threats", "report", "-o", "html"]);
    assert!(html.contains("<svg") && html.contains("rule:internet-facing-datastore@db"));
    assert!(!html.contains("<script"));
    let svg = h.rampart_ok(&["threats", "diagram", "-o", "svg"]);
    assert!(svg.starts_with("<svg") && svg.contains("data-id=\"core\""));

    // Eight operators apply at once: eight new versions, none lost or shared.
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut cmd = h.rampart_command(&["threats", "apply", model.to_str().unwrap()]);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut versions: Vec<u32> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let v = text.rsplit("as version ").next().unwrap();
            v.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (3..=10).collect::<Vec<u32>>());

    // The coordinator is SIGKILLed while an apply is on its way: after a restart the model in
    // force is a whole version (the last one, or the new one), and the audit chain verifies.
    let mut racing = h.rampart_command(&["threats", "apply", worse.to_str().unwrap()]);
    racing
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut racing = racing.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    h.with_proc("coordinator", |p| p.kill());
    let _ = racing.wait();
    h.start_coordinator();
    let after = assessment(&h);
    let version = after["version"].as_u64().unwrap();
    assert!(version == 10 || version == 11, "{version}");
    assert_eq!(after["model"], "shop");
    h.rampart_ok(&["audit", "verify"]);

    // Every apply is audited, refused ones included.
    let audit = h.rampart_ok(&["audit", "ls", "--limit", "1000"]);
    let applies = audit
        .lines()
        .filter(|l| l.contains("ThreatService/ApplyModel"))
        .count();
    // Started and ok for each of the 10 applies, and the viewer's refusal (the invalid file was
    // refused by the CLI before it dialled; dry runs change nothing and are not audited); the
    // killed one left 0 to 2 entries, and a version only after its `started` entry.
    let racing_entries = applies
        .checked_sub(21)
        .unwrap_or_else(|| panic!("entries missing: {audit}"));
    assert!(racing_entries <= 2, "{audit}");
    if version == 11 {
        assert!(
            racing_entries >= 1,
            "a version without its audit entry: {audit}"
        );
    }
}
