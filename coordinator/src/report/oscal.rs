//! OSCAL assessment-results (JSON), for auditors. One result per sweep: each host is an
//! inventory item, each check evaluated on a host an observation with its evidence, and each
//! decided check (pass, fail, error) a finding whose target is the check with state `satisfied`
//! or `not-satisfied`; a waived one stays `not-satisfied`, with the waiver in its remarks. An unreachable host is a `not-satisfied` finding of its own. The controls
//! reviewed are the NIST SP 800-53 controls the pack's checks cite; each finding names the NIST
//! controls, CIS Controls v8 safeguards and CIS recommendations its check cites as props. UUIDs are name-based (v5), so
//! rendering the same sweep twice gives the same document.

use serde_json::{Value, json};
use uuid::Uuid;

use super::SweepReport;

/// The OSCAL version whose schema the document follows.
pub const OSCAL_VERSION: &str = "1.0.4";

fn id(parts: &[&str]) -> String {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("rampart:{}", parts.join(":")).as_bytes(),
    )
    .to_string()
}

/// NIST SP 800-53 control ids as OSCAL catalogs spell them: "AC-6(2)" → "ac-6.2".
pub fn control_id(nist: &str) -> String {
    nist.trim()
        .to_ascii_lowercase()
        .replace('(', ".")
        .replace([')', ' '], "")
}

fn prop(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

pub fn oscal(r: &SweepReport) -> Value {
    let sweep = r.sweep_id;
    let mut controls: Vec<String> = r
        .checks
        .iter()
        .flat_map(|c| c.nist.iter().map(|n| control_id(n)))
        .collect();
    controls.sort();
    controls.dedup();
    let control_selection = if controls.is_empty() {
        json!({"include-all": {}})
    } else {
        json!({"include-controls": controls.iter().map(|c| json!({"control-id": c})).collect::<Vec<_>>()})
    };
    let collected = super::rfc3339(r.finished_unix_ms.max(r.started_unix_ms));
    let mut items = Vec::new();
    let mut observations = Vec::new();
    let mut findings = Vec::new();
    for h in r.hosts {
        let host_uuid = id(&["host", sweep, &h.agent_id]);
        // Labels as `label` props ("env=prod"): OSCAL prop names are tokens, label keys may
        // hold '/'.
        let mut props = vec![prop("fqdn", &h.hostname), prop("asset-id", &h.agent_id)];
        props.extend(
            h.labels
                .iter()
                .map(|(k, v)| prop("label", &format!("{k}={v}"))),
        );
        items.push(json!({
            "uuid": host_uuid,
            "description": format!("Host {} (Rampart agent {})", h.hostname, h.agent_id),
            "props": props,
        }));
        let subject = json!([{"subject-uuid": host_uuid, "type": "inventory-item"}]);
        if h.status != "ok" {
            let obs = id(&["unreachable", sweep, &h.agent_id]);
            observations.push(json!({
                "uuid": obs,
                "title": format!("{} was not checked", h.hostname),
                "description": format!("The host did not report its facts: {}", if h.message.is_empty() { "no answer" } else { &h.message }),
                "methods": ["TEST"],
                "subjects": subject,
                "collected": collected,
            }));
            findings.push(json!({
                "uuid": id(&["finding-unreachable", sweep, &h.agent_id]),
                "title": format!("{} was not assessed", h.hostname),
                "description": "An unreachable host is never counted as compliant.",
                "target": {"type": "objective-id", "target-id": "rampart-host-assessed", "status": {"state": "not-satisfied", "reason": "fail"}},
                "related-observations": [{"observation-uuid": obs}],
            }));
            continue;
        }
        for v in &h.results {
            let obs = id(&["observation", sweep, &h.agent_id, &v.rule]);
            let title = if v.title.is_empty() {
                v.rule.clone()
            } else {
                v.title.clone()
            };
            observations.push(json!({
                "uuid": obs,
                "title": format!("{}: {title}", h.hostname),
                "description": format!("Check {} of pack {} on {}: {}.", v.rule, r.pack, h.hostname, v.status),
                "props": [prop("rule", &v.rule), prop("status", &v.status), prop("severity", &v.severity)],
                "methods": ["TEST"],
                "subjects": subject.clone(),
                "relevant-evidence": [{"description": v.evidence_json.clone()}],
                "collected": collected,
            }));
            let state = match v.status.as_str() {
                "pass" => "satisfied",
                "fail" | "error" | crate::compliance::waiver::WAIVED => "not-satisfied",
                _ => continue,
            };
            let reason = if v.status != "pass" && v.status != "fail" {
                "other"
            } else if state == "satisfied" {
                "pass"
            } else {
                "fail"
            };
            let description = r
                .check(&v.rule)
                .map(|c| format!("{} Remediation: {}", c.rationale, c.remediation))
                .unwrap_or_else(|| format!("Check {} {}.", v.rule, v.status));
            // The controls the check cites, so each finding names what it is evidence for.
            let mut props = vec![prop("severity", &v.severity)];
            if let Some(c) = r.check(&v.rule) {
                props.extend(
                    c.nist
                        .iter()
                        .map(|n| prop("nist-800-53-control", &control_id(n))),
                );
                props.extend(
                    c.cis_controls
                        .iter()
                        .map(|n| prop("cis-controls-v8-safeguard", n)),
                );
                props.extend(
                    c.cis
                        .iter()
                        .map(|n| prop("cis-benchmark-recommendation", n)),
                );
            }
            let mut finding = json!({
                "uuid": id(&["finding", sweep, &h.agent_id, &v.rule]),
                "title": format!("{}: {title}", h.hostname),
                "description": description,
                "props": props,
                "target": {"type": "objective-id", "target-id": v.rule, "status": {"state": state, "reason": reason}},
                "related-observations": [{"observation-uuid": obs}],
            });
            // Still not satisfied: the waiver accepts the deviation, it does not remove it.
            if let Some(w) = &v.waiver {
                finding["props"]
                    .as_array_mut()
                    .expect("props is an array")
                    .push(prop("waiver", &w.id));
                finding["remarks"] = super::waiver_text(w).into();
            }
            findings.push(finding);
        }
    }
    let mut result = json!({
        "uuid": id(&["result", sweep]),
        "title": format!("Rampart sweep {sweep}"),
        "description": format!(
            "Pack {} {} over {} host(s): {} pass, {} fail, {} error, {} not applicable, {} unreachable.",
            r.pack, r.pack_version, r.summary.hosts, r.summary.pass, r.summary.fail, r.summary.error,
            r.summary.not_applicable, r.summary.unreachable
        ),
        "start": super::rfc3339(r.started_unix_ms),
        "end": super::rfc3339(r.finished_unix_ms.max(r.started_unix_ms)),
        "reviewed-controls": {"control-selections": [control_selection]},
    });
    if !items.is_empty() {
        result["local-definitions"] = json!({"inventory-items": items});
    }
    if !observations.is_empty() {
        result["observations"] = observations.into();
    }
    if !findings.is_empty() {
        result["findings"] = findings.into();
    }
    json!({
        "assessment-results": {
            "uuid": id(&["assessment-results", sweep]),
            "metadata": {
                "title": format!("Rampart compliance sweep {sweep} ({})", r.pack),
                "last-modified": super::rfc3339(r.finished_unix_ms.max(r.started_unix_ms)),
                "version": sweep,
                "oscal-version": OSCAL_VERSION,
            },
            "import-ap": {"href": format!("#rampart-pack-{}", r.pack)},
            "results": [result],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = include_str!("../../tests/schemas/oscal-assessment-results-subset.json");

    #[test]
    fn oscal_validates_against_the_assessment_results_schema() {
        let doc = super::super::fixture::with_report(oscal);
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let validator = super::super::fixture::validator(&schema);
        let errors = super::super::fixture::schema_errors(&validator, &doc);
        assert!(errors.is_empty(), "{errors:#?}");
        // The check can fail: a finding whose state is not an OSCAL state is rejected.
        let mut broken = doc.clone();
        broken["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] =
            "passed".into();
        assert!(!validator.is_valid(&broken));

        let result = &doc["assessment-results"]["results"][0];
        let findings = result["findings"].as_array().unwrap();
        // pass, fail, error, waived on web-1 and the unreachable db-1; n/a is an observation only.
        assert_eq!(findings.len(), 5);
        let state = |target: &str| {
            findings
                .iter()
                .find(|f| f["target"]["target-id"] == target)
                .map(|f| f["target"]["status"]["state"].as_str().unwrap().to_string())
        };
        assert_eq!(
            state("sshd-permit-root-login").as_deref(),
            Some("not-satisfied")
        );
        assert_eq!(state("sysctl-ip-forward").as_deref(), Some("satisfied"));
        assert_eq!(
            state("rampart-host-assessed").as_deref(),
            Some("not-satisfied")
        );
        assert_eq!(state("sysctl-rp-filter").as_deref(), Some("not-satisfied"));
        let waived = findings
            .iter()
            .find(|f| f["target"]["target-id"] == "sysctl-rp-filter")
            .unwrap();
        assert!(waived["remarks"].as_str().unwrap().contains("ticket NET-7"));
        // Each finding names the controls its check cites.
        let props: Vec<(String, String)> = waived["props"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().into(),
                    p["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        for (name, value) in [
            ("nist-800-53-control", "ac-6.2"),
            ("cis-controls-v8-safeguard", "5.4"),
            ("cis-benchmark-recommendation", "5.1.20"),
        ] {
            assert!(props.contains(&(name.into(), value.into())), "{props:?}");
        }
        assert_eq!(result["observations"].as_array().unwrap().len(), 6);
        assert_eq!(
            result["reviewed-controls"]["control-selections"][0]["include-controls"][0]["control-id"],
            "ac-6.2"
        );
        // Same sweep, same document.
        assert_eq!(doc, super::super::fixture::with_report(oscal));
    }
}
