//! Rules, validation, assessment with evidence, imports and exports, on small models.

use std::collections::HashMap;

use rampart_proto::v1::Assessment;

use super::evidence::{Evidence, Host, Listener, ResultRef, RunRef};
use super::model::{Control, Index, Model};
use super::{assess, diagram, diff, import, otm, parse_model, rules, write};

const DAY: i64 = 24 * 3600 * 1000;
/// 2026-12-01T00:00:00Z
const NOW: i64 = 1_796_083_200_000;

/// Assets and boundaries the rule cases share.
const BASE: &str = "kind: ThreatModel
name: t
assets:
  - {id: secret, name: S, confidentiality: critical, integrity: critical, availability: critical}
  - {id: conf, name: C, confidentiality: high, integrity: low, availability: low}
  - {id: integ, name: I, confidentiality: low, integrity: high, availability: low}
  - {id: plain, name: P, confidentiality: low, integrity: low, availability: medium}
boundaries:
  - {id: inet, name: Internet, kind: internet}
  - {id: dmz, name: DMZ}
  - {id: core, name: Core, parent: dmz}
  - {id: other, name: Other}
";

fn model(body: &str) -> Model {
    let text = format!("{BASE}{body}");
    parse_model("case.yaml", &text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

fn found(body: &str) -> Vec<String> {
    let m = model(body);
    rules::find(&Index::new(&m))
        .iter()
        .map(|f| f.risk_id())
        .collect()
}

/// (rule, element, a model where it fires on element, one just short of it).
fn cases() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    vec![
        (
            "unencrypted-sensitive-flow",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, audit_log: true}
  - {id: b, name: B, type: process, boundary: core, audit_log: true}
flows:
  - {id: f, from: a, to: b, encrypted: false, authenticated: true, carries: [conf]}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, audit_log: true}
  - {id: b, name: B, type: process, boundary: dmz, audit_log: true}
flows:
  - {id: f, from: a, to: b, encrypted: false, authenticated: true, carries: [conf]}
",
        ),
        (
            "plaintext-credentials-flow",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: a, to: b, encrypted: false, authenticated: true}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: a, to: b, encrypted: true, authenticated: true}
",
        ),
        (
            "unencrypted-untrusted-flow",
            "f",
            "actors:
  - {id: u, name: U, boundary: inet}
components:
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: u, to: b, encrypted: false, authenticated: true}
",
            "actors:
  - {id: u, name: U, boundary: inet}
components:
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: u, to: b, encrypted: true, authenticated: true}
",
        ),
        (
            "integrity-flow-unencrypted",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, audit_log: true}
  - {id: b, name: B, type: process, boundary: other, audit_log: true}
flows:
  - {id: f, from: a, to: b, encrypted: false, authenticated: false, carries: [integ]}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, audit_log: true}
  - {id: b, name: B, type: process, boundary: other, audit_log: true}
flows:
  - {id: f, from: a, to: b, encrypted: false, authenticated: false, carries: [plain]}
",
        ),
        (
            "unauthenticated-sensitive-flow",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz, handles: [conf]}
flows:
  - {id: f, from: a, to: b, encrypted: true, authenticated: false}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz, handles: [plain]}
flows:
  - {id: f, from: a, to: b, encrypted: true, authenticated: false}
",
        ),
        (
            "unauthenticated-actor-access",
            "f",
            "actors:
  - {id: u, name: U, boundary: dmz}
components:
  - {id: b, name: B, type: process, boundary: dmz, handles: [integ], audit_log: true}
flows:
  - {id: f, from: u, to: b, encrypted: true, authenticated: false}
",
            "actors:
  - {id: u, name: U, boundary: dmz}
components:
  - {id: b, name: B, type: process, boundary: dmz, handles: [integ], audit_log: true}
flows:
  - {id: f, from: u, to: b, encrypted: true, authenticated: true}
",
        ),
        (
            "unauthenticated-datastore-access",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: d, name: D, type: datastore, boundary: dmz}
flows:
  - {id: f, from: a, to: d, encrypted: true, authenticated: false}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: d, name: D, type: process, boundary: dmz}
flows:
  - {id: f, from: a, to: d, encrypted: true, authenticated: false}
",
        ),
        (
            "unauthenticated-queue-producer",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: q, name: Q, type: queue, boundary: dmz}
flows:
  - {id: f, from: a, to: q, encrypted: true, authenticated: false}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: q, name: Q, type: queue, boundary: dmz}
flows:
  - {id: f, from: a, to: q, encrypted: true, authenticated: true}
",
        ),
        (
            "datastore-reached-from-outside",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: other}
  - {id: d, name: D, type: datastore, boundary: dmz}
flows:
  - {id: f, from: a, to: d, encrypted: true, authenticated: true}
",
            "components:
  - {id: a, name: A, type: process, boundary: core}
  - {id: d, name: D, type: datastore, boundary: dmz}
flows:
  - {id: f, from: a, to: d, encrypted: true, authenticated: true}
",
        ),
        (
            "actor-reaches-datastore",
            "f",
            "actors:
  - {id: u, name: U, boundary: dmz}
components:
  - {id: d, name: D, type: datastore, boundary: dmz}
flows:
  - {id: f, from: u, to: d, encrypted: true, authenticated: true}
",
            "actors:
  - {id: u, name: U, boundary: dmz}
components:
  - {id: d, name: D, type: datastore, boundary: dmz}
flows:
  - {id: f, from: u, to: d, encrypted: true, authenticated: true, admin: true}
",
        ),
        (
            "admin-interface-across-boundary",
            "f",
            "actors:
  - {id: u, name: U, boundary: other}
components:
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: u, to: b, encrypted: true, authenticated: true, admin: true}
",
            "actors:
  - {id: u, name: U, boundary: core}
components:
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: u, to: b, encrypted: true, authenticated: true, admin: true}
",
        ),
        (
            "admin-flow-unauthenticated",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: a, to: b, encrypted: true, authenticated: false, admin: true}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: a, to: b, encrypted: true, authenticated: false, admin: false}
",
        ),
        (
            "legacy-cleartext-protocol",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: a, to: b, protocol: FTP, encrypted: true, authenticated: true}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: a, to: b, protocol: sftp, encrypted: true, authenticated: true}
",
        ),
        (
            "untrusted-reaches-inner-zone",
            "f",
            "actors:
  - {id: u, name: U, boundary: inet}
components:
  - {id: b, name: B, type: process, boundary: core}
flows:
  - {id: f, from: u, to: b, encrypted: true, authenticated: true}
",
            "actors:
  - {id: u, name: U, boundary: inet}
components:
  - {id: b, name: B, type: process, boundary: dmz}
flows:
  - {id: f, from: u, to: b, encrypted: true, authenticated: true}
",
        ),
        (
            "sensitive-data-to-external",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: x, name: X, type: external}
flows:
  - {id: f, from: a, to: x, encrypted: true, authenticated: true, carries: [conf]}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: x, name: X, type: external}
flows:
  - {id: f, from: a, to: x, encrypted: true, authenticated: true, carries: [plain]}
",
        ),
        (
            "critical-external-dependency",
            "f",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [secret], instances: 2, audit_log: true, selector: role=a}
  - {id: x, name: X, type: external}
flows:
  - {id: f, from: a, to: x, encrypted: true, authenticated: true}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [plain], instances: 2, audit_log: true, selector: role=a}
  - {id: x, name: X, type: external}
flows:
  - {id: f, from: a, to: x, encrypted: true, authenticated: true}
",
        ),
        (
            "datastore-unencrypted-at-rest",
            "d",
            "components:
  - {id: d, name: D, type: datastore, boundary: dmz, handles: [secret], selector: role=d, audit_log: true, instances: 3}
",
            "components:
  - {id: d, name: D, type: datastore, boundary: dmz, handles: [secret], selector: role=d, audit_log: true, instances: 3, encrypted_at_rest: true}
",
        ),
        (
            "queue-unencrypted-sensitive",
            "q",
            "components:
  - {id: q, name: Q, type: queue, boundary: dmz, handles: [conf]}
",
            "components:
  - {id: q, name: Q, type: queue, boundary: dmz, handles: [conf], encrypted_at_rest: true}
",
        ),
        (
            "internet-facing-datastore",
            "d",
            "components:
  - {id: d, name: D, type: datastore, boundary: dmz, internet_facing: true}
",
            "components:
  - {id: d, name: D, type: datastore, boundary: dmz}
",
        ),
        (
            "internet-facing-no-availability-mitigation",
            "a",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, internet_facing: true, handles: [plain]}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, internet_facing: true, handles: [plain]}
threats:
  - {id: T-flood, title: Flood, stride: denial_of_service, elements: [a]}
",
        ),
        (
            "single-instance-critical-availability",
            "a",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [secret], audit_log: true, selector: role=a}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [secret], audit_log: true, selector: role=a, instances: 2}
",
        ),
        (
            "no-audit-trail-high-integrity",
            "a",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [integ]}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [integ], audit_log: true}
",
        ),
        (
            "internet-facing-privileged",
            "a",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, internet_facing: true, privileged: true}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, internet_facing: false, privileged: true}
",
        ),
        (
            "shared-hosts-across-boundaries",
            "a",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, selector: role=web}
  - {id: b, name: B, type: process, boundary: core, selector: role=web}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, selector: role=web}
  - {id: b, name: B, type: process, boundary: dmz, selector: role=web}
",
        ),
        (
            "external-handles-critical-data",
            "x",
            "components:
  - {id: x, name: X, type: external, handles: [secret]}
",
            "components:
  - {id: x, name: X, type: external, handles: [conf]}
",
        ),
        (
            "datastore-shared-across-boundaries",
            "d",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: core}
  - {id: d, name: D, type: datastore, boundary: dmz}
flows:
  - {id: f1, from: a, to: d, encrypted: true, authenticated: true}
  - {id: f2, from: b, to: d, encrypted: true, authenticated: true}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz}
  - {id: b, name: B, type: process, boundary: dmz}
  - {id: d, name: D, type: datastore, boundary: dmz}
flows:
  - {id: f1, from: a, to: d, encrypted: true, authenticated: true}
  - {id: f2, from: b, to: d, encrypted: true, authenticated: true}
",
        ),
        (
            "sensitive-component-without-hosts",
            "a",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [secret], audit_log: true, instances: 2}
",
            "components:
  - {id: a, name: A, type: process, boundary: dmz, handles: [secret], audit_log: true, instances: 2, selector: role=a}
",
        ),
    ]
}

#[test]
fn every_rule_fires_on_its_case_and_not_on_the_near_miss() {
    let cases = cases();
    assert!(rules::RULES.len() >= 25, "{} rules", rules::RULES.len());
    for r in rules::RULES {
        assert!(
            cases.iter().any(|c| c.0 == r.id),
            "rule {} has no test case",
            r.id
        );
    }
    for (rule, element, fires, misses) in cases {
        let want = rules::risk_id(rule, element);
        let got = found(fires);
        assert!(
            got.contains(&want),
            "{rule} should fire on {element}; found {got:?}"
        );
        let got = found(misses);
        assert!(
            !got.iter()
                .any(|id| id.starts_with(&format!("rule:{rule}@"))),
            "{rule} should not fire; found {got:?}"
        );
    }
}

#[test]
fn rules_are_documented_and_the_docs_are_current() {
    for r in rules::RULES {
        assert!(
            !r.condition.is_empty() && !r.rationale.is_empty() && !r.references.is_empty(),
            "{}",
            r.id
        );
        assert!(
            r.references
                .iter()
                .all(|x| x.starts_with("CWE-") || x.starts_with("CAPEC-")),
            "{}",
            r.id
        );
    }
    let doc = include_str!("../../../docs/threat-rules.md");
    assert!(
        doc == rules::markdown(),
        "docs/threat-rules.md is stale: run `rampart threats rules > docs/threat-rules.md`"
    );
}

/// A three-element model gives a handful of precise findings, not dozens of generic ones.
#[test]
fn a_small_model_gets_few_findings() {
    let got = found(
        "actors:
  - {id: user, name: User, boundary: inet}
components:
  - {id: web, name: Web, type: process, boundary: dmz, internet_facing: true, handles: [conf, plain], audit_log: true, selector: role=web}
  - {id: db, name: DB, type: datastore, boundary: core, handles: [conf], selector: role=db}
flows:
  - {id: user-web, from: user, to: web, protocol: https, port: 443, encrypted: true, authenticated: true, carries: [conf]}
  - {id: web-db, from: web, to: db, protocol: postgres, port: 5432, encrypted: false, authenticated: true, carries: [conf]}
",
    );
    assert_eq!(
        got,
        vec![
            "rule:unencrypted-sensitive-flow@web-db",
            "rule:plaintext-credentials-flow@web-db",
            "rule:internet-facing-no-availability-mitigation@web",
        ],
        "{got:?}"
    );
}

fn errors(body: &str) -> Vec<String> {
    match parse_model("bad.yaml", &format!("{BASE}{body}")) {
        Ok(_) => Vec::new(),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn validation_lists_every_error_with_its_place() {
    let errs = errors(
        "components:
  - {id: a, name: A, type: process, boundary: nowhere, handles: [gold]}
  - {id: a, name: A2, type: robot}
flows:
  - {id: f, from: a, to: ghost}
mitigations:
  - {id: M1, title: Nothing, mitigates: [], manual: {evidence: x, expires: 2027-01-01}}
  - {id: M2, title: Wrong, mitigates: [rule:legacy-cleartext-protocol@f], manual: {evidence: x, expires: 2027-13-01}}
  - {id: M3, title: Ghost, mitigates: [T-none], experiments: [e]}
",
    );
    let mut want = vec![
        "bad.yaml:14:47: unknown boundary \"nowhere\"",
        "bad.yaml:14:66: unknown asset \"gold\"",
        "bad.yaml:15:10: duplicate id \"a\" (already a component)",
        "bad.yaml:15:29: `type` must be one of process, datastore, queue, external, not \"robot\"",
        "bad.yaml:17:26: unknown component or actor \"ghost\"",
        "bad.yaml:19:5: mitigation M1 mitigates nothing",
        "bad.yaml:20:106: `expires` must be a date (YYYY-MM-DD), not \"2027-13-01\"",
        "bad.yaml:21:40: unknown threat \"T-none\" (a threat id, or rule:RULE@ELEMENT)",
    ];
    let mut errs = errs;
    errs.sort();
    want.sort();
    assert_eq!(errs, want);
}

#[test]
fn boundary_cycles_and_findings_that_do_not_exist_are_errors() {
    let errs = errors(
        "  - {id: x, name: X, parent: y}
  - {id: y, name: Y, parent: x}
",
    );
    assert!(
        errs.iter().any(|e| e.contains("boundary cycle: x → y → x")),
        "{errs:#?}"
    );
    let errs = errors(
        "components:
  - {id: a, name: A, type: process, boundary: dmz}
mitigations:
  - {id: M, title: T, mitigates: [rule:internet-facing-datastore@a], manual: {evidence: x, expires: 2030-01-01}}
",
    );
    assert_eq!(
        errs,
        vec!["bad.yaml:16:35: rule internet-facing-datastore finds nothing on a"]
    );
    let errs = errors(
        "exclusions:
  - {rule: no-such-rule, element: nobody, justification: because}
",
    );
    assert_eq!(errs.len(), 2, "{errs:#?}");
}

#[test]
fn unknown_fields_bad_factors_and_oversized_files_are_refused() {
    let errs = errors(
        "components:
  - {id: a, name: A, type: process, colour: blue}
threats:
  - {id: T, title: T, stride: sneaking, elements: [a], likelihood: {motive: 12, luck: 3}}
",
    );
    assert!(
        errs.iter().any(|e| e.contains("unknown field `colour`")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("`stride` must be one of")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("`motive` must be from 0 to 9, not 12")),
        "{errs:#?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("unknown field `luck`")),
        "{errs:#?}"
    );
    let huge = format!("{BASE}description: \"{}\"\n", "x".repeat(3 * 1024 * 1024));
    let e = parse_model("huge.yaml", &huge).unwrap_err();
    assert!(e.to_string().contains("at most 2097152"), "{e}");
}

/// The web/db model with one mitigation that cites a check and an experiment.
const LINKED: &str = "components:
  - {id: web, name: Web, type: process, boundary: dmz, handles: [conf], audit_log: true, selector: role=web}
  - {id: db, name: DB, type: datastore, boundary: core, handles: [conf], audit_log: true, selector: role=db}
flows:
  - {id: web-db, from: web, to: db, protocol: postgres, port: 5432, encrypted: false, authenticated: true, carries: [conf]}
mitigations:
  - id: M-tls
    title: TLS to the database
    mitigates: [rule:unencrypted-sensitive-flow@web-db]
    controls: [{pack: p, rule: db-tls}]
    experiments: [db-failover]
accepted:
  - {threat: rule:plaintext-credentials-flow@web-db, reason: later, expires: 2026-11-30}
";

fn host(id: &str, role: &str) -> Host {
    Host {
        agent_id: id.into(),
        hostname: format!("{id}.example"),
        labels: [("role".to_string(), role.to_string())].into(),
    }
}

fn evidence(results: &[(&str, &str, i64)], run: Option<(&str, i64)>) -> Evidence {
    let mut per_host = HashMap::new();
    for (agent, status, age) in results {
        per_host.insert(
            agent.to_string(),
            ResultRef {
                status: status.to_string(),
                sweep_id: format!("S-{agent}"),
                at: NOW - age,
            },
        );
    }
    Evidence {
        now_ms: NOW,
        hosts: vec![
            host("w1", "web"),
            host("w2", "web"),
            host("d1", "db"),
            host("x1", "batch"),
        ],
        results: [(
            Control {
                pack: "p".into(),
                rule: "db-tls".into(),
            },
            per_host,
        )]
        .into(),
        runs: run
            .map(|(verdict, age)| {
                (
                    "db-failover".to_string(),
                    RunRef {
                        id: "R-1".into(),
                        verdict: verdict.into(),
                        at: NOW - age,
                    },
                )
            })
            .into_iter()
            .collect(),
        listeners: HashMap::new(),
    }
}

fn risk<'a>(a: &'a Assessment, id: &str) -> &'a rampart_proto::v1::Risk {
    a.risks
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

const FLOW_RISK: &str = "rule:unencrypted-sensitive-flow@web-db";

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

#[test]
fn the_example_models_rampart_and_links_real_checks() {
    let text = include_str!("../../../examples/threat-model.yaml");
    let m = parse_model("threat-model.yaml", text).unwrap();
    assert_eq!(m.name, "rampart");
    let pack = crate::compliance::Packs::builtin()
        .get("linux-baseline")
        .unwrap();
    let checks: Vec<String> = pack.checks.iter().map(|c| c.id.clone()).collect();
    for mit in &m.mitigations {
        for c in &mit.controls {
            assert_eq!(c.pack, "linux-baseline");
            assert!(
                checks.contains(&c.rule),
                "{} is not a linux-baseline check",
                c.rule
            );
        }
        for e in &mit.experiments {
            let path = format!(
                "{}/../examples/experiments/{e}.yaml",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path}"));
            let exp = crate::chaos::spec::experiment(&path, &text).unwrap();
            assert_eq!(&exp.name, e);
        }
    }
}

#[test]
fn yaml_writer_round_trips() {
    let m = model(LINKED);
    let text = write::yaml(&m, "header line\nsecond");
    assert!(text.starts_with("# header line\n# second\n"));
    assert_eq!(parse_model("again.yaml", &text).unwrap(), m);
    let example = parse_model("x", include_str!("../../../examples/threat-model.yaml")).unwrap();
    assert_eq!(
        parse_model("x", &write::yaml(&example, "")).unwrap(),
        example
    );
}

/// The official OTM 0.2.0 schema (see tests/schemas/README.md).
const OTM_SCHEMA: &str = include_str!("../../tests/schemas/otm-0.2.0.schema.json");

#[test]
fn otm_export_validates_against_the_schema_and_round_trips() {
    let schema: serde_json::Value = serde_json::from_str(OTM_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let example = parse_model("x", include_str!("../../../examples/threat-model.yaml")).unwrap();
    for m in [example, model(LINKED)] {
        let doc = otm::export(&m);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}");
        let (back, notes) = otm::import(&doc.to_string()).unwrap();
        assert_eq!(back, m, "notes: {notes:?}");
    }
}

#[test]
fn otm_from_another_tool_imports_what_it_can() {
    let doc = serde_json::json!({
        "otmVersion": "0.2.0",
        "project": {"name": "Shop", "id": "shop"},
        "assets": [{"id": "a-1", "name": "Orders", "risk": {"confidentiality": 80, "integrity": 60, "availability": 30}}],
        "trustZones": [
            {"id": "tz internet", "name": "Internet", "risk": {"trustRating": 0}},
            {"id": "tz-app", "name": "App", "risk": {"trustRating": 70}}
        ],
        "components": [
            {"id": "c-1", "name": "Web shop", "type": "web-service", "parent": {"trustZone": "tz-app"},
             "threats": [{"threat": "th-1", "state": "exposed", "mitigations": [{"mitigation": "m-1", "state": "required"}]}]},
            {"id": "c-2", "name": "Orders DB", "type": "postgresql-database", "parent": {"trustZone": "tz-app"}, "assets": {"stored": ["a-1"]}},
            {"id": "c-3", "name": "Browser", "type": "actor", "parent": {"trustZone": "tz internet"}}
        ],
        "dataflows": [{"id": "df-1", "name": "orders", "source": "c-1", "destination": "c-2", "assets": ["a-1"]}],
        "threats": [{"id": "th-1", "name": "SQL injection", "categories": ["Tampering"], "risk": {"likelihood": 100, "impact": 50}}],
        "mitigations": [{"id": "m-1", "name": "Prepared statements", "riskReduction": 90}]
    });
    let (m, notes) = otm::import(&doc.to_string()).unwrap();
    assert_eq!(
        m.boundaries
            .iter()
            .map(|b| (b.id.as_str(), b.kind.as_str()))
            .collect::<Vec<_>>(),
        vec![("internet", "internet"), ("tz-app", "network")]
    );
    assert_eq!(m.components[1].kind, super::model::ComponentType::Datastore);
    assert_eq!(m.actors[0].boundary.as_deref(), Some("internet"));
    assert_eq!(m.threats[0].stride, super::model::Stride::Tampering);
    assert_eq!(m.threats[0].factors.0[0], Some(9));
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Prepared statements") && n.contains("no Rampart evidence")),
        "{notes:?}"
    );
    // What is written reads back as a valid model.
    parse_model("imported", &write::yaml(&m, "")).unwrap();
}

#[test]
fn threat_dragon_demo_imports_into_a_valid_model() {
    let text = include_str!("../../tests/data/threat-dragon-v2-demo.json");
    let (m, notes) = import::threat_dragon(text).unwrap();
    assert_eq!(m.name, "Demo Threat Model");
    // The demo has 4 stores, 2 processes, 1 actor; one store and two flows are out of scope.
    assert_eq!(m.components.len(), 5, "{:#?}", m.components);
    assert_eq!(m.actors.len(), 1);
    assert_eq!(m.flows.len(), 8);
    assert!(m.threats.len() >= 10, "{}", m.threats.len());
    assert!(notes.iter().any(|n| n.contains("out of scope")));
    assert!(notes.iter().any(|n| n.contains("trust-boundary curve")));
    // The browser is on a public network: it sits in an internet boundary.
    assert_eq!(m.actors[0].boundary.as_deref(), Some("internet"));
    let yaml = write::yaml(&m, "imported");
    let back = parse_model("imported.yaml", &yaml).unwrap();
    assert_eq!(back, m);
    assert!(import::threat_dragon("{\"version\": \"1.0\"}").is_err());
    assert!(import::threat_dragon("not json").is_err());
}

#[test]
fn diagrams_nest_boundaries_and_draw_every_flow() {
    let m = parse_model("x", include_str!("../../../examples/threat-model.yaml")).unwrap();
    let svg = diagram::svg(&m, None);
    // Well-formed XML, one group per boundary, node and flow.
    let mut reader = quick_xml::Reader::from_str(&svg);
    let mut rects: HashMap<String, (f64, f64, f64, f64)> = HashMap::new();
    let (mut boundary, mut nodes, mut flows) = (None::<String>, 0, 0);
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let attr = |name: &str| {
                    e.try_get_attribute(name)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().to_string())
                };
                match (e.name().as_ref(), attr("class").as_deref()) {
                    (b"g", Some("boundary")) => boundary = attr("data-id"),
                    (b"g", Some(c)) if c.starts_with("node") => nodes += 1,
                    (b"g", Some("flow")) => flows += 1,
                    (b"rect", _) => {
                        if let Some(id) = boundary.take() {
                            let n = |k: &str| attr(k).unwrap().parse::<f64>().unwrap();
                            rects.insert(id, (n("x"), n("y"), n("width"), n("height")));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    assert_eq!(rects.len(), m.boundaries.len());
    assert_eq!(nodes, m.components.len() + m.actors.len());
    assert_eq!(flows, m.flows.len());
    // A child boundary lies inside its parent.
    let (px, py, pw, ph) = rects["control"];
    let (cx, cy, cw, ch) = rects["coordinator-host"];
    assert!(cx > px && cy > py && cx + cw < px + pw && cy + ch < py + ph);
    let dot = diagram::dot(&m, None);
    assert!(dot.contains("subgraph \"cluster_control\""));
    assert!(dot.contains("\"operator\" -> \"coordinator\""));
}
