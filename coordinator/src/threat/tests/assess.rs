//! Assessments: mitigations proven or not by evidence, expiry, OWASP defaults, reality checks,
//! diffs.

use super::{DAY, FLOW_RISK, LINKED, NOW, evidence, model, risk};
use crate::threat::evidence::Listener;
use crate::threat::{assess, diff};

#[test]
fn a_mitigation_counts_only_when_all_its_evidence_holds_on_every_selected_host() {
    let m = model(LINKED);
    let all_pass = [
        ("w1", "pass", DAY),
        ("w2", "pass", DAY),
        ("d1", "pass", DAY),
    ];
    let a = assess::assess(&m, &evidence(&all_pass, Some(("passed", DAY))));
    let r = risk(&a, FLOW_RISK);
    assert_eq!(r.status, "mitigated", "{:#?}", r.reasons);
    let inherent = assess::severity_of(r.inherent.as_ref());
    let residual = assess::severity_of(r.residual.as_ref());
    assert!(residual < inherent, "{inherent} → {residual}");
    assert_eq!(
        r.mitigations[0].controls[0].hosts.len(),
        3,
        "web and db hosts, not the batch host"
    );

    // One host fails: unproven, the residual is the inherent risk, and the reason names the host.
    let one_fails = [
        ("w1", "pass", DAY),
        ("w2", "fail", DAY),
        ("d1", "pass", DAY),
    ];
    let a = assess::assess(&m, &evidence(&one_fails, Some(("passed", DAY))));
    let r = risk(&a, FLOW_RISK);
    assert_eq!(r.status, "unproven");
    assert_eq!(assess::severity_of(r.residual.as_ref()), inherent);
    assert!(
        r.reasons
            .iter()
            .any(|l| l.contains("fail on w2.example (sweep S-w2")),
        "{:#?}",
        r.reasons
    );

    // A host without a result, a stale result, a failed or stale experiment: each unproven.
    let missing = [("w1", "pass", DAY), ("d1", "pass", DAY)];
    let stale = [
        ("w1", "pass", DAY),
        ("w2", "pass", 8 * DAY),
        ("d1", "pass", DAY),
    ];
    for (ev, why) in [
        (
            evidence(&missing, Some(("passed", DAY))),
            "no result on w2.example",
        ),
        (
            evidence(&stale, Some(("passed", DAY))),
            "stale on w2.example",
        ),
        (
            evidence(&all_pass, Some(("failed", DAY))),
            "experiment db-failover last failed",
        ),
        (evidence(&all_pass, Some(("passed", 9 * DAY))), "(stale)"),
        (evidence(&all_pass, None), "never finished a run"),
    ] {
        let a = assess::assess(&m, &ev);
        let r = risk(&a, FLOW_RISK);
        assert_eq!(r.status, "unproven", "{why}");
        assert!(
            r.reasons.iter().any(|l| l.contains(why)),
            "{why}: {:#?}",
            r.reasons
        );
    }
}

#[test]
fn acceptance_and_manual_evidence_expire() {
    let m = model(LINKED);
    let a = assess::assess(&m, &evidence(&[], None));
    // Accepted until 2026-11-30; NOW is 2026-12-01: it counts again.
    let r = risk(&a, "rule:plaintext-credentials-flow@web-db");
    assert_eq!(r.status, "unmitigated");
    assert!(
        r.reasons
            .iter()
            .any(|l| l.contains("acceptance expired on 2026-11-30"))
    );
    let mut ev = evidence(&[], None);
    ev.now_ms = NOW - 2 * DAY;
    let a = assess::assess(&m, &ev);
    assert_eq!(
        risk(&a, "rule:plaintext-credentials-flow@web-db").status,
        "accepted"
    );

    let manual = model(
        "components:
  - {id: d, name: D, type: datastore, boundary: dmz, internet_facing: true}
mitigations:
  - {id: M, title: Firewall, mitigates: [rule:internet-facing-datastore@d], manual: {evidence: audit, expires: 2026-12-01}}
",
    );
    let mut ev = evidence(&[], None);
    assert_eq!(
        risk(
            &assess::assess(&manual, &ev),
            "rule:internet-facing-datastore@d"
        )
        .status,
        "mitigated"
    );
    ev.now_ms = NOW + DAY;
    assert_eq!(
        risk(
            &assess::assess(&manual, &ev),
            "rule:internet-facing-datastore@d"
        )
        .status,
        "unproven"
    );
}

#[test]
fn defaults_come_from_the_elements_and_threats_override_them() {
    let m = model(
        "actors:
  - {id: u, name: U, boundary: inet}
components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [secret], internet_facing: true, audit_log: true, instances: 2, selector: role=a}
flows:
  - {id: f, from: u, to: a, encrypted: true, authenticated: true}
threats:
  - {id: T1, title: Exposed, stride: information_disclosure, elements: [a]}
  - {id: T2, title: Insider, stride: information_disclosure, elements: [a], likelihood: {skill_level: 1, motive: 1, opportunity: 1, size: 1, ease_of_discovery: 1, ease_of_exploit: 1, awareness: 1, intrusion_detection: 1}, impact: {financial_damage: 9}}
  - {id: T-dos, title: Flood, stride: denial_of_service, elements: [a]}
",
    );
    let a = assess::assess(&m, &evidence(&[], None));
    let f = |r: &rampart_proto::v1::Risk, name: &str| {
        r.inherent
            .as_ref()
            .unwrap()
            .factors
            .iter()
            .find(|f| f.name == name)
            .cloned()
            .unwrap()
    };
    let t1 = risk(&a, "T1");
    // Internet-facing: anonymous internet users (9), no access needed (9); audited: detection 3.
    assert_eq!(f(t1, "size").value, 9);
    assert_eq!(f(t1, "opportunity").value, 9);
    assert_eq!(f(t1, "intrusion_detection").value, 3);
    // Critical confidentiality: all data disclosed (9); disclosure cannot corrupt data, so the
    // integrity factor stays unrated and out of the average.
    assert_eq!(f(t1, "loss_of_confidentiality").value, 9);
    assert_eq!(f(t1, "loss_of_integrity").source, "unset");
    assert_eq!(t1.inherent.as_ref().unwrap().impact, 9.0);
    assert_eq!(f(t1, "financial_damage").source, "unset");
    let t2 = risk(&a, "T2");
    assert_eq!(f(t2, "size").value, 1);
    assert_eq!(f(t2, "size").source, "threat");
    // A business factor given: impact is the business impact (9), likelihood 1 → medium.
    let r2 = t2.inherent.as_ref().unwrap();
    assert_eq!(
        (r2.likelihood, r2.impact, r2.severity.as_str()),
        (1.0, 9.0, "medium")
    );
    let dos = risk(&a, "T-dos");
    assert_eq!(f(dos, "loss_of_availability").value, 9);
}

#[test]
fn reality_check_finds_unexplained_ports_and_hosts_no_component_selects() {
    let m = model(LINKED);
    let mut ev = evidence(&[], None);
    let l = |port: u32, address: &str| Listener {
        protocol: "tcp".into(),
        address: address.into(),
        port,
        process: "svc".into(),
    };
    ev.listeners.insert(
        "d1".into(),
        vec![l(5432, "0.0.0.0"), l(6379, "0.0.0.0"), l(9999, "127.0.0.1")],
    );
    let a = assess::assess(&m, &ev);
    let exposed: Vec<(String, u32)> = a
        .unmodeled_exposures
        .iter()
        .map(|e| (e.hostname.clone(), e.port))
        .collect();
    assert_eq!(exposed, vec![("d1.example".to_string(), 6379)]);
    assert_eq!(a.unmodeled_exposures[0].components, vec!["db"]);
    let hosts: Vec<&str> = a
        .unmodeled_hosts
        .iter()
        .map(|h| h.agent_id.as_str())
        .collect();
    assert_eq!(hosts, vec!["x1"]);
}

#[test]
fn diff_gates_on_new_open_high_risks_only() {
    let base = "components:
  - {id: a, name: A, type: process, boundary: dmz, audit_log: true}
  - {id: d, name: D, type: datastore, boundary: dmz, handles: [secret], encrypted_at_rest: true, audit_log: true, instances: 2, selector: role=d}
flows:
  - {id: f, from: a, to: d, encrypted: true, authenticated: true}
";
    let old = assess::assess(&model(base), &evidence(&[], None));
    let worse = base.replace(
        "encrypted_at_rest: true",
        "encrypted_at_rest: false, internet_facing: true",
    );
    let new = assess::assess(&model(&worse), &evidence(&[], None));
    let d = diff::diff(&old, &new);
    assert!(
        d.iter()
            .any(|e| e.gate && e.id == "rule:internet-facing-datastore@d"),
        "{d:#?}"
    );
    // The same model again: no change, no gate.
    assert!(diff::diff(&new, &new).is_empty());
    // Removing the risk is not a gate.
    assert!(diff::diff(&new, &old).iter().all(|e| !e.gate));
}

/// Taking over a host through its admin interface reaches every asset on that host.
#[test]
fn elevation_through_an_admin_flow_reaches_the_assets_on_the_target_hosts() {
    let m = model(
        "actors:
  - {id: ops, name: Ops, boundary: other}
components:
  - {id: sshd, name: SSH, type: process, boundary: dmz, selector: role=db}
  - {id: db, name: DB, type: datastore, boundary: dmz, selector: role=db, handles: [secret], encrypted_at_rest: true, audit_log: true, instances: 2}
flows:
  - {id: ssh, from: ops, to: sshd, protocol: ssh, port: 22, encrypted: true, authenticated: true, admin: true}
",
    );
    let a = assess::assess(&m, &evidence(&[], None));
    let r = risk(&a, "rule:admin-interface-across-boundary@ssh");
    let inherent = r.inherent.as_ref().unwrap();
    assert_eq!(inherent.impact, 9.0, "{inherent:#?}");
    assert_eq!(inherent.impact_level, "high");
}
