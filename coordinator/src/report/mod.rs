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

/// A host's labels as `k=v,k2=v2` (sorted), for formats without a map type.
pub fn labels_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Per-group scores of a report's hosts by the value of `label` (hosts without it form the group
/// `(none)`): hosts, unreachable hosts, check counts and pass / (pass + fail + error) in percent.
pub fn groups(hosts: &[HostResult], label: &str) -> Vec<GroupScore> {
    group_scores(
        hosts.iter().map(|h| {
            let count = |st: &str| h.results.iter().filter(|v| v.status == st).count() as u32;
            HostCounts {
                labels: &h.labels,
                reachable: h.status == "ok",
                pass: count("pass"),
                fail: count("fail"),
                error: count("error"),
            }
        }),
        label,
    )
}

/// Hosts' latest scores summed per value of `label`.
pub fn score_groups(scores: &[rampart_proto::v1::HostScore], label: &str) -> Vec<GroupScore> {
    group_scores(
        scores.iter().map(|h| HostCounts {
            labels: &h.labels,
            reachable: true,
            pass: h.pass,
            fail: h.fail,
            error: h.error,
        }),
        label,
    )
}

/// One host's counts, as [`group_scores`] sums them.
#[derive(Debug, Clone, Copy)]
pub struct HostCounts<'a> {
    pub labels: &'a std::collections::BTreeMap<String, String>,
    pub reachable: bool,
    pub pass: u32,
    pub fail: u32,
    pub error: u32,
}

/// Sums hosts' counts per value of `label`; see [`groups`].
pub fn group_scores<'a>(
    hosts: impl IntoIterator<Item = HostCounts<'a>>,
    label: &str,
) -> Vec<GroupScore> {
    let mut by: std::collections::BTreeMap<String, GroupScore> = Default::default();
    for h in hosts {
        let value = h
            .labels
            .get(label)
            .cloned()
            .unwrap_or_else(|| "(none)".into());
        let g = by.entry(value.clone()).or_insert_with(|| GroupScore {
            value,
            ..Default::default()
        });
        g.hosts += 1;
        g.unreachable += u32::from(!h.reachable);
        g.pass += h.pass;
        g.fail += h.fail;
        g.error += h.error;
    }
    by.into_values()
        .map(|mut g| {
            let applied = g.pass + g.fail + g.error;
            g.score = if applied == 0 {
                100.0
            } else {
                f64::from(g.pass) * 100.0 / f64::from(applied)
            };
            g
        })
        .collect()
}

/// One group of [`groups`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GroupScore {
    pub value: String,
    pub hosts: u32,
    pub unreachable: u32,
    pub pass: u32,
    pub fail: u32,
    pub error: u32,
    pub score: f64,
}

/// A control framework the checks' references cite, for `--framework`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Framework {
    /// NIST SP 800-53 rev. 5 controls (e.g. AC-6(2)).
    #[value(name = "nist-800-53")]
    Nist80053,
    /// CIS benchmark recommendations (e.g. 5.1.20).
    Cis,
    /// CIS Critical Security Controls v8 safeguards (e.g. 4.8).
    #[value(name = "cis-controls")]
    CisControls,
}

impl Framework {
    pub fn name(self) -> &'static str {
        match self {
            Framework::Nist80053 => "nist-800-53",
            Framework::Cis => "cis",
            Framework::CisControls => "cis-controls",
        }
    }

    fn cited(self, c: &CheckInfo) -> &[String] {
        match self {
            Framework::Nist80053 => &c.nist,
            Framework::Cis => &c.cis,
            Framework::CisControls => &c.cis_controls,
        }
    }
}

/// One control of a framework as a sweep's results show it: the checks citing it and their
/// verdicts over every checked host.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ControlScore {
    pub control: String,
    pub checks: Vec<String>,
    pub pass: u32,
    pub fail: u32,
    pub error: u32,
    pub waived: u32,
    pub not_applicable: u32,
    /// `not-satisfied` (a citing check failed or errored somewhere), `waived` (only accepted
    /// failures), `satisfied`, or `not-applicable`.
    pub state: &'static str,
}

/// Results grouped by the controls of `framework` that their checks cite (a check citing three
/// controls counts under each); checks citing none of them are grouped under `(none)`.
pub fn framework_scores(
    hosts: &[HostResult],
    checks: &[CheckInfo],
    framework: Framework,
) -> Vec<ControlScore> {
    let mut by: std::collections::BTreeMap<String, ControlScore> = Default::default();
    for v in hosts.iter().flat_map(|h| h.results.iter()) {
        let cited: Vec<String> = checks
            .iter()
            .find(|c| c.id == v.rule)
            .map(|c| framework.cited(c).to_vec())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| vec!["(none)".to_string()]);
        for control in cited {
            let g = by.entry(control.clone()).or_insert_with(|| ControlScore {
                control,
                ..Default::default()
            });
            if !g.checks.contains(&v.rule) {
                g.checks.push(v.rule.clone());
            }
            match v.status.as_str() {
                "pass" => g.pass += 1,
                "fail" => g.fail += 1,
                "error" => g.error += 1,
                crate::compliance::waiver::WAIVED => g.waived += 1,
                _ => g.not_applicable += 1,
            }
        }
    }
    by.into_values()
        .map(|mut g| {
            g.checks.sort();
            g.state = if g.fail + g.error > 0 {
                "not-satisfied"
            } else if g.waived > 0 {
                "waived"
            } else if g.pass > 0 {
                "satisfied"
            } else {
                "not-applicable"
            };
            g
        })
        .collect()
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

/// A waiver as reports show it.
pub fn waiver_json(w: &rampart_proto::v1::Waiver) -> serde_json::Value {
    serde_json::json!({
        "id": w.id,
        "reason": w.reason,
        "expires": rfc3339(w.expires_unix_ms),
        "created_by": w.created_by,
        "selector": w.selector,
        "was": w.was,
    })
}

/// One line about a waiver: "waived until 2027-01-15 by alice: reason (waiver-…)".
pub fn waiver_text(w: &rampart_proto::v1::Waiver) -> String {
    format!(
        "waived ({} accepted) until {} by {}: {} ({})",
        if w.was.is_empty() { "fail" } else { &w.was },
        rfc3339(w.expires_unix_ms),
        w.created_by,
        w.reason,
        w.id
    )
}

/// The JSON report: per host its status and every result with its evidence (and time, when
/// profiled), plus the summary. As a value; [`JsonReport`] writes the same document without
/// building it.
pub fn json(r: &SweepReport) -> serde_json::Value {
    serde_json::to_value(JsonReport::new(r)).unwrap_or_default()
}

/// The JSON report (the full record), written as it is serialized: a sweep of 10,000 hosts has
/// 520,000 results, and building them as one `serde_json::Value` first took the CLI seconds.
/// Keys come in the order a `serde_json::Value` prints them (sorted), so both forms read the same.
#[derive(serde::Serialize)]
pub struct JsonReport<'a> {
    /// `--framework`: the controls the checks cite, with a state each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub framework: Option<serde_json::Value>,
    /// `--group-by`: scores per value of a label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<serde_json::Value>,
    hosts: JsonHosts<'a>,
    interrupted: bool,
    pack: &'a str,
    summary: serde_json::Value,
    sweep_id: &'a str,
}

impl<'a> JsonReport<'a> {
    pub fn new(r: &SweepReport<'a>) -> Self {
        Self {
            framework: None,
            groups: None,
            hosts: JsonHosts(r.hosts, r.profiled),
            interrupted: r.interrupted,
            pack: r.pack,
            summary: serde_json::to_value(r.summary).unwrap_or_default(),
            sweep_id: r.sweep_id,
        }
    }
}

struct JsonHosts<'a>(&'a [HostResult], bool);

impl serde::Serialize for JsonHosts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|h| JsonHost(h, self.1)))
    }
}

struct JsonHost<'a>(&'a HostResult, bool);

impl serde::Serialize for JsonHost<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (h, profiled) = (self.0, self.1);
        let mut m = s.serialize_map(Some(8))?;
        m.serialize_entry("agent_id", &h.agent_id)?;
        m.serialize_entry("collect_ms", &h.collect_ms)?;
        m.serialize_entry("eval_micros", &h.eval_micros)?;
        m.serialize_entry("hostname", &h.hostname)?;
        m.serialize_entry("labels", &h.labels)?;
        m.serialize_entry("message", &h.message)?;
        m.serialize_entry("results", &JsonVerdicts(&h.results, profiled))?;
        m.serialize_entry("status", &h.status)?;
        m.end()
    }
}

struct JsonVerdicts<'a>(&'a [rampart_proto::v1::RuleVerdict], bool);

impl serde::Serialize for JsonVerdicts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|v| JsonVerdict(v, self.1)))
    }
}

struct JsonVerdict<'a>(&'a rampart_proto::v1::RuleVerdict, bool);

impl serde::Serialize for JsonVerdict<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (v, profiled) = (self.0, self.1);
        let mut m = s.serialize_map(None)?;
        // One result's evidence at a time: parsed, written, dropped.
        m.serialize_entry("evidence", &evidence(&v.evidence_json))?;
        if profiled {
            m.serialize_entry("micros", &v.micros)?;
        }
        m.serialize_entry("rule", &v.rule)?;
        m.serialize_entry("severity", &v.severity)?;
        m.serialize_entry("status", &v.status)?;
        m.serialize_entry("title", &v.title)?;
        if let Some(w) = &v.waiver {
            m.serialize_entry("waiver", &waiver_json(w))?;
        }
        m.end()
    }
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
            waiver: None,
        }
    }

    /// A failure a waiver accepted.
    pub fn waived(rule: &str) -> RuleVerdict {
        RuleVerdict {
            waiver: Some(rampart_proto::v1::Waiver {
                id: "waiver-1234".into(),
                rule: rule.into(),
                pack: String::new(),
                selector: "env=prod".into(),
                reason: "router hosts forward <by design>; ticket NET-7".into(),
                expires_unix_ms: 1_800_000_000_000,
                created_by: "alice".into(),
                created_unix_ms: 1_795_000_000_000,
                was: "fail".into(),
            }),
            ..verdict(
                rule,
                "waived",
                "medium",
                r#"{"net.ipv4.conf.all.rp_filter":"0"}"#,
            )
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
                    waived("sysctl-rp-filter"),
                ],
                collect_ms: 25,
                eval_micros: 3600,
                labels: [("env", "prod"), ("team/owner", "web-ops")]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
            },
            HostResult {
                agent_id: "agent-2".into(),
                hostname: "db-1".into(),
                status: "unreachable".into(),
                message: "agent is offline (last seen 2026-11-30 10:00:00 UTC)".into(),
                results: vec![],
                collect_ms: 0,
                eval_micros: 0,
                labels: [("env".to_string(), "staging".to_string())].into(),
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
            waived: 1,
        }
    }

    pub fn checks() -> Vec<CheckInfo> {
        [
            "sshd-permit-root-login",
            "sysctl-ip-forward",
            "sshd-max-auth-tries",
            "tmp-nodev",
            "sysctl-rp-filter",
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
            cis_controls: vec!["5.4".into()],
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

#[cfg(test)]
mod tests;
