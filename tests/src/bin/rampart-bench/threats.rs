//! Threat-model benchmarks:
//!
//! - a generated model of 500 components and 2,000 flows (with threats and mitigations citing
//!   checks and experiments): read and checked, rules run, every risk rated and resolved against
//!   the evidence of 1,000 hosts, in process; then applied through a real coordinator (the
//!   `rampart threats apply` round trip, CLI included) and its server-side assessment time;
//! - the findings and time of Rampart and OWASP pytm on the same three-element model, in one
//!   run (pytm installed from PyPI into a throw-away virtual environment).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use rampart_coordinator::threat::evidence::{Evidence, Host, ResultRef, RunRef};
use rampart_coordinator::threat::model::{Control, Index};
use rampart_coordinator::threat::{assess, parse_model, rules, write};
use rampart_e2e::Harness;

use super::{median, percentile};

/// A model of `components` components and `flows` flows over 10 boundaries and 20 assets, with
/// 100 hand-written threats and mitigations for them and for the first 100 rule findings.
pub fn generated(components: usize, flows: usize) -> String {
    let mut s = String::from("kind: ThreatModel\nname: generated\nassets:\n");
    let ratings = ["low", "medium", "high", "critical"];
    for i in 0..20 {
        let _ = writeln!(
            s,
            "  - {{id: a{i}, name: Asset {i}, confidentiality: {}, integrity: {}, availability: {}}}",
            ratings[i % 4],
            ratings[(i / 4) % 4],
            ratings[(i / 2) % 4]
        );
    }
    s.push_str("boundaries:\n  - {id: z0, name: Internet, kind: internet}\n");
    for z in 1..10 {
        let parent = if z > 5 {
            format!(", parent: z{}", z - 5)
        } else {
            String::new()
        };
        let _ = writeln!(s, "  - {{id: z{z}, name: Zone {z}{parent}}}");
    }
    s.push_str("components:\n");
    let kinds = [
        "process",
        "process",
        "process",
        "datastore",
        "process",
        "queue",
        "datastore",
        "process",
        "external",
        "process",
    ];
    for i in 0..components {
        let kind = kinds[i % kinds.len()];
        let boundary = if kind == "external" {
            String::new()
        } else {
            format!(", boundary: z{}", 1 + i % 9)
        };
        let _ = writeln!(
            s,
            "  - {{id: c{i}, name: Component {i}, type: {kind}{boundary}, selector: svc=c{}, handles: [a{}, a{}], internet_facing: {}, audit_log: {}, instances: {}}}",
            i % 100,
            i % 20,
            (i * 7) % 20,
            i % 13 == 0,
            i % 3 != 0,
            1 + i % 3
        );
    }
    s.push_str("actors:\n");
    for i in 0..10 {
        let _ = writeln!(
            s,
            "  - {{id: u{i}, name: User {i}, boundary: z{}}}",
            if i < 5 { 0 } else { i - 4 }
        );
    }
    s.push_str("flows:\n");
    for i in 0..flows {
        let from = if i % 50 == 0 {
            format!("u{}", (i / 50) % 10)
        } else {
            format!("c{}", i % components)
        };
        let mut to = (i * 7 + 3) % components;
        if format!("c{to}") == from {
            to = (to + 1) % components;
        }
        let _ = writeln!(
            s,
            "  - {{id: f{i}, from: {from}, to: c{to}, protocol: tcp, port: {}, encrypted: {}, authenticated: {}, admin: {}, carries: [a{}]}}",
            1000 + i % 50,
            i % 3 != 0,
            i % 4 != 0,
            i % 97 == 0,
            i % 20
        );
    }
    s.push_str("threats:\n");
    for i in 0..100 {
        let _ = writeln!(
            s,
            "  - {{id: T{i}, title: Threat {i}, stride: tampering, elements: [c{}], likelihood: {{motive: {}}}}}",
            (i * 5) % components,
            i % 10
        );
    }
    s
}

/// Adds mitigations (for every hand-written threat and the first 100 findings) to a model.
fn with_mitigations(text: &str) -> anyhow::Result<String> {
    let mut m = parse_model("generated.yaml", text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let found: Vec<String> = rules::find(&Index::new(&m))
        .iter()
        .take(100)
        .map(|f| f.risk_id())
        .collect();
    let mut mits = Vec::new();
    for (i, risk) in m
        .threats
        .iter()
        .map(|t| t.id.clone())
        .chain(found)
        .enumerate()
    {
        mits.push(rampart_coordinator::threat::model::Mitigation {
            id: format!("M{i}"),
            title: format!("Mitigation {i}"),
            mitigates: vec![risk],
            controls: vec![Control {
                pack: "linux-baseline".into(),
                rule: format!("check-{}", i % 20),
            }],
            experiments: vec![format!("exp-{}", i % 10)],
            manual: None,
            effect: Default::default(),
        });
    }
    m.mitigations = mits;
    Ok(write::yaml(&m, "generated by rampart-bench threats"))
}

/// 1,000 hosts (10 per selector), every control's latest result (1 in 50 failing), and a
/// passing run of each experiment.
fn evidence(now_ms: i64) -> Evidence {
    let hosts: Vec<Host> = (0..1000)
        .map(|i| Host {
            agent_id: format!("agent-{i}"),
            hostname: format!("host-{i}"),
            labels: [("svc".to_string(), format!("c{}", i % 100))].into(),
        })
        .collect();
    let mut results = HashMap::new();
    for r in 0..20 {
        let per: HashMap<String, ResultRef> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                (
                    h.agent_id.clone(),
                    ResultRef {
                        status: if i % 50 == r {
                            "fail".into()
                        } else {
                            "pass".into()
                        },
                        sweep_id: "sweep-1".into(),
                        at: now_ms - 3_600_000,
                    },
                )
            })
            .collect();
        results.insert(
            Control {
                pack: "linux-baseline".into(),
                rule: format!("check-{r}"),
            },
            per,
        );
    }
    let runs = (0..10)
        .map(|i| {
            (
                format!("exp-{i}"),
                RunRef {
                    id: format!("run-{i}"),
                    verdict: "passed".into(),
                    at: now_ms - 3_600_000,
                },
            )
        })
        .collect();
    Evidence {
        now_ms,
        hosts,
        results,
        runs,
        listeners: HashMap::new(),
    }
}

pub fn threats(components: usize, flows: usize, repeats: usize) -> anyhow::Result<()> {
    let text = with_mitigations(&generated(components, flows))?;
    let now = rampart_common::time::now_ms();
    let ev = evidence(now);
    let (mut parse_ms, mut assess_ms, mut total_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut risks = 0;
    for _ in 0..repeats {
        let start = Instant::now();
        let m = parse_model("generated.yaml", &text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let parsed = start.elapsed();
        let a = assess::assess(&m, &ev);
        let total = start.elapsed();
        risks = a.risks.len();
        parse_ms.push(parsed.as_secs_f64() * 1000.0);
        assess_ms.push((total - parsed).as_secs_f64() * 1000.0);
        total_ms.push(total.as_secs_f64() * 1000.0);
    }
    println!(
        "generated model: {components} components, {flows} flows, {} kB; {risks} risks; 1,000 hosts of evidence (median of {repeats}):",
        text.len() / 1000
    );
    println!("  read and check          {:.1} ms", median(parse_ms));
    println!("  rules, rating, evidence {:.1} ms", median(assess_ms));
    println!(
        "  total in process        {:.1} ms (p95 {:.1} ms)",
        median(total_ms.clone()),
        percentile(total_ms, 0.95)
    );

    // Through a real coordinator: `threats apply` (CLI, TLS, store, assessment, answer).
    let h = Harness::start();
    let file = h.dir.path().join("generated.yaml");
    std::fs::write(&file, &text)?;
    let (mut apply_ms, mut server_ms) = (Vec::new(), Vec::new());
    for _ in 0..repeats.min(20) {
        let start = Instant::now();
        let out = h.rampart(&["threats", "apply", file.to_str().unwrap(), "-o", "json"]);
        apply_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        if !out.status.success() {
            bail!("apply failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("apply -o json")?;
        server_ms.push(v["assessment"]["eval_micros"].as_f64().unwrap_or(f64::NAN) / 1000.0);
    }
    println!(
        "  `threats apply` round trip {:.1} ms (CLI start, TLS, store, assessment, answer); server-side assessment {:.1} ms (median of {})",
        median(apply_ms),
        median(server_ms),
        repeats.min(20)
    );
    Ok(())
}

/// The web shop model of the pytm comparison, in Rampart's form.
const SMALL: &str = "kind: ThreatModel
name: shop
assets:
  - {id: orders, name: Orders, confidentiality: high, integrity: high, availability: medium}
boundaries:
  - {id: internet, name: Internet, kind: internet}
  - {id: dmz, name: DMZ}
  - {id: core, name: Core, parent: dmz}
actors:
  - {id: customer, name: Customer, boundary: internet}
components:
  - {id: web, name: Web, type: process, boundary: dmz, internet_facing: true, handles: [orders]}
  - {id: db, name: DB, type: datastore, boundary: core, handles: [orders]}
flows:
  - {id: customer-web, from: customer, to: web, protocol: https, port: 443, encrypted: true, authenticated: true, carries: [orders]}
  - {id: web-db, from: web, to: db, protocol: postgres, port: 5432, encrypted: false, authenticated: true, carries: [orders]}
";

const PYTM: &str = r#"import time
t0 = time.perf_counter()
from pytm import TM, Server, Datastore, Dataflow, Boundary, Actor, Data, Classification
imported = time.perf_counter() - t0
times = []
for _ in range(REPEATS):
    t1 = time.perf_counter()
    tm = TM("shop")
    tm.description = "web shop: customer, web server, orders database"
    tm.isOrdered = True
    internet = Boundary("Internet"); dmz = Boundary("DMZ"); core = Boundary("Core"); core.inBoundary = dmz
    user = Actor("Customer"); user.inBoundary = internet
    web = Server("Web"); web.inBoundary = dmz
    db = Datastore("DB"); db.inBoundary = core; db.isEncrypted = False
    orders = Data("Orders", classification=Classification.SECRET)
    f1 = Dataflow(user, web, "customer-web"); f1.protocol = "HTTPS"; f1.dstPort = 443; f1.isEncrypted = True; f1.data = orders
    f2 = Dataflow(web, db, "web-db"); f2.protocol = "PostgreSQL"; f2.dstPort = 5432; f2.isEncrypted = False; f2.data = orders
    tm.resolve()
    times.append(time.perf_counter() - t1)
    findings = len(tm.findings)
    TM.reset()
times.sort()
print(findings, times[len(times) // 2] * 1000, imported * 1000)
"#;

pub fn versus_pytm(repeats: usize) -> anyhow::Result<()> {
    let mut times = Vec::new();
    let mut found = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let m = parse_model("shop.yaml", SMALL).map_err(|e| anyhow::anyhow!("{e}"))?;
        found = rules::find(&Index::new(&m))
            .iter()
            .map(|f| f.risk_id())
            .collect();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let venv = tempfile::tempdir()?;
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv.path())
        .status()?
        .success()
        && Command::new(venv.path().join("bin/pip"))
            .args(["install", "-q", "pytm==1.4.0"])
            .status()?
            .success();
    if !ok {
        bail!("could not install pytm from PyPI into a virtual environment");
    }
    let out = Command::new(venv.path().join("bin/python"))
        .arg("-c")
        .arg(PYTM.replace("REPEATS", &repeats.to_string()))
        .output()?;
    if !out.status.success() {
        bail!("pytm failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = line.split_whitespace().collect();
    println!(
        "the same 3-element model (customer → web → db, one unencrypted flow), median of {repeats}:"
    );
    println!(
        "  Rampart      {} findings in {:.3} ms ({})",
        found.len(),
        median(times),
        found.join(", ")
    );
    println!(
        "  pytm 1.4.0   {} findings in {:.3} ms (resolve only; importing pytm takes {:.0} ms more)",
        f.first().unwrap_or(&"?"),
        f.get(1)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN),
        f.get(2)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    );
    Ok(())
}
