//! Rules, validation, assessment with evidence, imports and exports, on small models.

mod assess;
mod formats;
mod rule_cases;

use std::collections::HashMap;

use rampart_proto::v1::Assessment;

use super::evidence::{Evidence, Host, ResultRef, RunRef};
use super::model::Index;
use super::model::{Control, Model};
use super::{parse_model, rules};

pub(super) const DAY: i64 = 24 * 3600 * 1000;
/// 2026-12-01T00:00:00Z
pub(super) const NOW: i64 = 1_796_083_200_000;

/// Assets and boundaries the rule cases share.
pub(super) const BASE: &str = "kind: ThreatModel
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

pub(super) fn model(body: &str) -> Model {
    let text = format!("{BASE}{body}");
    parse_model("case.yaml", &text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

pub(super) fn found(body: &str) -> Vec<String> {
    let m = model(body);
    rules::find(&Index::new(&m))
        .iter()
        .map(|f| f.risk_id())
        .collect()
}

/// The web/db model with one mitigation that cites a check and an experiment.
pub(super) const LINKED: &str = "components:
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

pub(super) fn evidence(results: &[(&str, &str, i64)], run: Option<(&str, i64)>) -> Evidence {
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

pub(super) fn risk<'a>(a: &'a Assessment, id: &str) -> &'a rampart_proto::v1::Risk {
    a.risks
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no {id}"))
}

pub(super) const FLOW_RISK: &str = "rule:unencrypted-sensitive-flow@web-db";
