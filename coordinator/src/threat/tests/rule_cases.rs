//! Every rule on a model that triggers it and one that just misses it; validation errors.

use super::{BASE, found};
use crate::threat::{parse_model, rules};

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
    assert!(rules::all().count() >= 25, "{} rules", rules::all().count());
    for r in rules::all() {
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
    for r in rules::all() {
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
    let doc = include_str!("../../../../docs/threat-rules.md");
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
