//! Sweep reports for people and machines: JSON (the full record), JUnit XML (CI test
//! dashboards), SARIF 2.1.0 (code-scanning dashboards), OSCAL assessment-results JSON (auditors)
//! and Markdown (tickets, pull requests). Every renderer takes the same [`SweepReport`] and
//! reports unreachable hosts as such, never as passing.
//!
//! Renderers only format: no I/O, no RPC.

mod junit;
mod markdown;
mod oscal;
mod sarif;

use rampart_proto::v1::{CheckInfo, HostResult, SweepSummary};

pub use junit::junit;
pub use markdown::markdown;
pub use oscal::oscal;
pub use sarif::sarif;

/// Everything a report needs about one sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepReport<'a> {
    pub sweep_id: &'a str,
    pub pack: &'a str,
    pub pack_version: &'a str,
    pub started_unix_ms: i64,
    pub finished_unix_ms: i64,
    /// Hosts sorted as they should be shown.
    pub hosts: &'a [HostResult],
    pub summary: &'a SweepSummary,
    /// The pack's checks (titles, rationale, references); may be empty when the pack is gone.
    pub checks: &'a [CheckInfo],
    /// Whether per-check times were measured (then JSON includes them).
    pub profiled: bool,
    /// The coordinator stopped before the sweep finished (hosts that never reported are listed
    /// as unreachable).
    pub interrupted: bool,
}

impl SweepReport<'_> {
    pub fn check(&self, rule: &str) -> Option<&CheckInfo> {
        self.checks.iter().find(|c| c.id == rule)
    }
}

/// RFC 3339 in UTC with milliseconds, as SARIF and OSCAL want.
pub fn rfc3339(unix_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A result's evidence as JSON (an unparsable one is kept as text).
pub fn evidence(json: &str) -> serde_json::Value {
    serde_json::from_str(json).unwrap_or_else(|_| serde_json::Value::String(json.to_string()))
}

/// The JSON report: per host its status and every result with its evidence (and time, when
/// profiled), plus the summary.
pub fn json(r: &SweepReport) -> serde_json::Value {
    let hosts: Vec<_> = r
        .hosts
        .iter()
        .map(|h| {
            let results: Vec<_> = h
                .results
                .iter()
                .map(|v| {
                    let mut o = serde_json::json!({
                        "rule": v.rule,
                        "title": v.title,
                        "status": v.status,
                        "severity": v.severity,
                        "evidence": evidence(&v.evidence_json),
                    });
                    if r.profiled {
                        o["micros"] = v.micros.into();
                    }
                    o
                })
                .collect();
            serde_json::json!({
                "agent_id": h.agent_id,
                "hostname": h.hostname,
                "status": h.status,
                "message": h.message,
                "collect_ms": h.collect_ms,
                "eval_micros": h.eval_micros,
                "results": results,
            })
        })
        .collect();
    serde_json::json!({
        "sweep_id": r.sweep_id,
        "pack": r.pack,
        "interrupted": r.interrupted,
        "hosts": hosts,
        "summary": r.summary,
    })
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A small sweep: one host with a pass, a fail, an error and an n/a; one unreachable host.
    use rampart_proto::v1::{CheckInfo, HostResult, RuleVerdict, SweepSummary};

    fn verdict(rule: &str, status: &str, severity: &str, evidence: &str) -> RuleVerdict {
        RuleVerdict {
            rule: rule.into(),
            title: format!("title of {rule} <&>"),
            status: status.into(),
            severity: severity.into(),
            evidence_json: evidence.into(),
            micros: 120,
        }
    }

    pub fn hosts() -> Vec<HostResult> {
        vec![
            HostResult {
                agent_id: "agent-1".into(),
                hostname: "web-1".into(),
                status: "ok".into(),
                message: String::new(),
                results: vec![
                    verdict(
                        "sshd-permit-root-login",
                        "fail",
                        "high",
                        r#"{"permitrootlogin":"yes"}"#,
                    ),
                    verdict(
                        "sysctl-ip-forward",
                        "pass",
                        "medium",
                        r#"{"values":{"net.ipv4.ip_forward":"0"}}"#,
                    ),
                    verdict(
                        "sshd-max-auth-tries",
                        "error",
                        "medium",
                        r#"{"error":"missing fact \"x\""}"#,
                    ),
                    verdict(
                        "tmp-nodev",
                        "not_applicable",
                        "medium",
                        r#"{"reason":"no /tmp mount"}"#,
                    ),
                ],
                collect_ms: 25,
                eval_micros: 3600,
            },
            HostResult {
                agent_id: "agent-2".into(),
                hostname: "db-1".into(),
                status: "unreachable".into(),
                message: "agent is offline (last seen 2026-11-30 10:00:00 UTC)".into(),
                results: vec![],
                collect_ms: 0,
                eval_micros: 0,
            },
        ]
    }

    pub fn summary() -> SweepSummary {
        SweepSummary {
            sweep_id: "sweep-abc".into(),
            hosts: 2,
            unreachable: 1,
            pass: 1,
            fail: 1,
            error: 1,
            not_applicable: 1,
            duration_ms: 40,
        }
    }

    pub fn checks() -> Vec<CheckInfo> {
        [
            "sshd-permit-root-login",
            "sysctl-ip-forward",
            "sshd-max-auth-tries",
            "tmp-nodev",
        ]
        .into_iter()
        .map(|id| CheckInfo {
            id: id.into(),
            title: format!("title of {id} <&>"),
            severity: "high".into(),
            rationale: "why it matters".into(),
            remediation: "what to do".into(),
            cis: vec!["5.1.20".into()],
            nist: vec!["AC-6(2)".into()],
            action: String::new(),
        })
        .collect()
    }

    /// A draft-07 validator that also checks formats (date-time, uri, …).
    pub fn validator(schema: &serde_json::Value) -> jsonschema::Validator {
        jsonschema::draft7::options()
            .should_validate_formats(true)
            .build(schema)
            .unwrap()
    }

    /// Every way `doc` breaks the schema, with where.
    pub fn schema_errors(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
        v.iter_errors(doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect()
    }

    /// Calls `f` with a report over the fixture.
    pub fn with_report<T>(f: impl FnOnce(&super::SweepReport) -> T) -> T {
        let (hosts, summary, checks) = (hosts(), summary(), checks());
        f(&super::SweepReport {
            sweep_id: "sweep-abc",
            pack: "linux-baseline",
            pack_version: "1.0.0",
            started_unix_ms: 1_796_000_000_000,
            finished_unix_ms: 1_796_000_000_040,
            hosts: &hosts,
            summary: &summary,
            checks: &checks,
            profiled: false,
            interrupted: false,
        })
    }
}
