//! SARIF 2.1.0, the format code-scanning dashboards import. Each check of the pack is a rule
//! (with its rationale, remediation and CIS/NIST references as tags); each failed or errored check
//! on a host is a result located at that host (a logical location, since there is no source
//! file); a waived one is reported too, with an accepted external suppression carrying the
//! waiver's reason (dashboards show it as dismissed, not fixed). Unreachable hosts are tool execution notifications at level `error`, and make the
//! invocation unsuccessful.

use serde_json::{Value, json};

use super::SweepReport;

/// SARIF levels from Rampart severities; `security-severity` is the 0–10 score GitHub code
/// scanning reads to rank security results.
fn level(severity: &str) -> (&'static str, &'static str) {
    match severity {
        "critical" => ("error", "9.5"),
        "high" => ("error", "8.0"),
        "medium" => ("warning", "5.5"),
        _ => ("note", "3.0"),
    }
}

pub fn sarif(r: &SweepReport) -> Value {
    // Rules: the pack's checks, or (pack unknown) the rules that appear in the results.
    let mut rule_ids: Vec<String> = r.checks.iter().map(|c| c.id.clone()).collect();
    for h in r.hosts {
        for v in &h.results {
            if !rule_ids.contains(&v.rule) {
                rule_ids.push(v.rule.clone());
            }
        }
    }
    let rules: Vec<Value> = rule_ids
        .iter()
        .map(|id| {
            let c = r.check(id);
            let severity = c.map(|c| c.severity.as_str()).unwrap_or("medium");
            let (lvl, score) = level(severity);
            let mut tags = vec!["security".to_string(), "compliance".to_string()];
            if let Some(c) = c {
                tags.extend(c.cis.iter().map(|x| format!("CIS-{x}")));
                tags.extend(c.cis_controls.iter().map(|x| format!("CIS-Controls-v8-{x}")));
                tags.extend(c.nist.iter().map(|x| format!("NIST-800-53-{x}")));
            }
            json!({
                "id": id,
                "name": id,
                "shortDescription": {"text": c.map(|c| c.title.as_str()).unwrap_or(id)},
                "fullDescription": {"text": c.map(|c| c.rationale.as_str()).filter(|t| !t.is_empty()).unwrap_or(id)},
                "help": {"text": c.map(|c| c.remediation.as_str()).filter(|t| !t.is_empty()).unwrap_or("See the pack's documentation.")},
                "defaultConfiguration": {"level": lvl},
                "properties": {"tags": tags, "security-severity": score, "severity": severity},
            })
        })
        .collect();
    let mut results = Vec::new();
    let mut notifications = Vec::new();
    for h in r.hosts {
        if h.status != "ok" {
            notifications.push(json!({
                "level": "error",
                "message": {"text": format!("host {} ({}) was not checked: {}", h.hostname, h.agent_id, h.message)},
                "descriptor": {"id": "host-unreachable"},
                "locations": [{"logicalLocations": [{"name": h.hostname, "fullyQualifiedName": h.agent_id, "kind": "resource"}]}],
                "properties": {"labels": h.labels},
            }));
            continue;
        }
        for v in h.results.iter().filter(|v| {
            matches!(
                v.status.as_str(),
                "fail" | "error" | crate::compliance::waiver::WAIVED
            )
        }) {
            // A waived result is what it was (fail or error), suppressed.
            let status = v
                .waiver
                .as_ref()
                .map(|w| w.was.as_str())
                .filter(|w| !w.is_empty());
            let status = status.unwrap_or(&v.status);
            let index = rule_ids.iter().position(|id| id == &v.rule).unwrap_or(0);
            let (lvl, _) = level(&v.severity);
            let title = if v.title.is_empty() {
                &v.rule
            } else {
                &v.title
            };
            let what = if status == "error" {
                "could not be checked"
            } else {
                "fails"
            };
            let mut result = json!({
                "ruleId": v.rule,
                "ruleIndex": index,
                "kind": "fail",
                "level": if status == "error" { "error" } else { lvl },
                "message": {"text": format!("{}: {title} — {what}. Evidence: {}", h.hostname, v.evidence_json)},
                "locations": [{"logicalLocations": [{"name": h.hostname, "fullyQualifiedName": h.agent_id, "kind": "resource"}]}],
                "partialFingerprints": {"rampartHostRule/v1": format!("{}/{}", h.agent_id, v.rule)},
                "properties": {"agent_id": h.agent_id, "labels": h.labels, "status": v.status, "severity": v.severity, "evidence": super::evidence(&v.evidence_json)},
            });
            if let Some(w) = &v.waiver {
                result["suppressions"] = json!([{
                    "kind": "external",
                    "status": "accepted",
                    "justification": super::waiver_text(w),
                    "properties": super::waiver_json(w),
                }]);
            }
            results.push(result);
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "Rampart",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
                "properties": {"pack": r.pack, "packVersion": r.pack_version},
            }},
            "automationDetails": {"id": format!("rampart/{}/{}", r.pack, r.sweep_id)},
            "invocations": [{
                "executionSuccessful": notifications.is_empty(),
                "startTimeUtc": super::rfc3339(r.started_unix_ms),
                "endTimeUtc": super::rfc3339(r.finished_unix_ms),
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
            "properties": {"sweep_id": r.sweep_id, "hosts": r.summary.hosts, "unreachable": r.summary.unreachable},
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official OASIS SARIF 2.1.0 schema (see tests/schemas/README.md).
    const SCHEMA: &str = include_str!("../../tests/schemas/sarif-schema-2.1.0.json");

    #[test]
    fn sarif_validates_against_the_official_schema() {
        let doc = super::super::fixture::with_report(sarif);
        // The published schema's `language` patterns (on `run` and `toolComponent`) have a stray
        // `]` and are not valid regular expressions, so a strict validator refuses the schema
        // itself. Rampart never writes `language`; those patterns get the form the spec's text
        // describes, and nothing else changes.
        const BROKEN: &str = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
        assert_eq!(SCHEMA.matches(BROKEN).count(), 2);
        let schema: Value =
            serde_json::from_str(&SCHEMA.replace(BROKEN, r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#))
                .unwrap();
        let validator = super::super::fixture::validator(&schema);
        let errors = super::super::fixture::schema_errors(&validator, &doc);
        assert!(errors.is_empty(), "{errors:#?}");

        // The schema check must be able to fail: a result without a message is invalid.
        let mut broken = doc.clone();
        broken["runs"][0]["results"][0]
            .as_object_mut()
            .unwrap()
            .remove("message");
        assert!(!validator.is_valid(&broken));

        let run = &doc["runs"][0];
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 3, "one fail, one error and one waived fail");
        assert_eq!(results[0]["level"], "error");
        assert!(results[0].get("suppressions").is_none());
        let waived = &results[2];
        assert_eq!(waived["ruleId"], "sysctl-rp-filter");
        assert_eq!(waived["suppressions"][0]["status"], "accepted");
        assert!(
            waived["suppressions"][0]["justification"]
                .as_str()
                .unwrap()
                .contains("ticket NET-7")
        );
        assert_eq!(run["invocations"][0]["executionSuccessful"], false);
        assert_eq!(
            run["invocations"][0]["toolExecutionNotifications"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let i = results[0]["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], results[0]["ruleId"]);
        assert!(
            rules[i]["properties"]["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("CIS-5.1.20"))
        );
    }
}
