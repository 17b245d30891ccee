//! Prometheus metrics (the `prometheus-client` crate, text exposition format). Two kinds:
//!
//! - events counted where they happen, in one process-wide set ([`global`]): agent sessions
//!   opened, commands and their latency, sweeps and their duration, fault state changes,
//!   experiment verdicts and halt latency;
//! - state read from the store at each scrape ([`scrape`]): agents by state, active faults by
//!   kind, audit entries, the compliance score per group label, and the process itself.
//!
//! Names and units follow Prometheus conventions (`_seconds`, `_bytes`, `_total`). Hosts are
//! never a label: a fleet of 10,000 agents gives the same number of series as one of ten.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use rampart_common::metrics::command_kind;
use rampart_common::metrics::{Labels, counter, gauge, labels, process, to_prometheus_text};

use crate::store::{AgentState, Store};

/// Counters and histograms fed by the code paths they measure.
pub struct Events {
    pub sessions_opened: Counter,
    pub commands: Family<Labels, Counter>,
    pub command_seconds: Family<Labels, Histogram>,
    pub sweeps: Counter,
    pub sweep_seconds: Histogram,
    pub sweep_results: Family<Labels, Counter>,
    pub pack_evaluations: Family<Labels, Counter>,
    pub fault_transitions: Family<Labels, Counter>,
    pub experiment_runs: Family<Labels, Counter>,
    pub halt_latency_seconds: Histogram,
    registry: Registry,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Events {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("rampart");
        let e = Events {
            sessions_opened: Counter::default(),
            commands: Family::default(),
            command_seconds: Family::new_with_constructor(latency_histogram),
            sweeps: Counter::default(),
            sweep_seconds: Histogram::new(exponential_buckets(0.1, 2.0, 14)),
            sweep_results: Family::default(),
            pack_evaluations: Family::default(),
            fault_transitions: Family::default(),
            experiment_runs: Family::default(),
            halt_latency_seconds: latency_histogram(),
            registry: Registry::default(),
        };
        registry.register(
            "agent_sessions_opened",
            "Agent sessions opened (a reconnect opens a new one)",
            e.sessions_opened.clone(),
        );
        registry.register(
            "agent_commands",
            "Commands sent to agents, by kind and outcome (ok, error, timeout, closed)",
            e.commands.clone(),
        );
        registry.register(
            "agent_command_duration_seconds",
            "Time from sending a command to an agent to its result, by kind",
            e.command_seconds.clone(),
        );
        registry.register("sweeps", "Compliance sweeps finished", e.sweeps.clone());
        registry.register(
            "sweep_duration_seconds",
            "Duration of compliance sweeps",
            e.sweep_seconds.clone(),
        );
        registry.register(
            "sweep_results",
            "Check results of sweeps, by status and severity",
            e.sweep_results.clone(),
        );
        registry.register(
            "pack_evaluations",
            "Pack evaluations of one host's facts, by pack and evaluator (compiled; interpreted: the pack is not compiled; fallback: the compiled program failed or left a verdict undefined and the interpreter redid it)",
            e.pack_evaluations.clone(),
        );
        registry.register(
            "fault_transitions",
            "Faults reported by agents entering a state (active, reverted, revert_failed, ...), by kind",
            e.fault_transitions.clone(),
        );
        registry.register(
            "experiment_runs",
            "Experiment runs finished, by verdict",
            e.experiment_runs.clone(),
        );
        registry.register(
            "experiment_halt_latency_seconds",
            "Time from the probe result that broke an experiment's hypothesis to its last revert confirmation",
            e.halt_latency_seconds.clone(),
        );
        Events { registry, ..e }
    }

    /// A command's outcome and latency.
    pub fn command(&self, kind: &str, outcome: &str, took: Duration) {
        self.commands
            .get_or_create(&labels(&[("kind", kind), ("outcome", outcome)]))
            .inc();
        self.command_seconds
            .get_or_create(&labels(&[("kind", kind)]))
            .observe(took.as_secs_f64());
    }

    pub fn fault(&self, kind: &str, state: &str) {
        self.fault_transitions
            .get_or_create(&labels(&[("kind", kind), ("state", state)]))
            .inc();
    }

    pub fn experiment(&self, verdict: &str, halt_latency_ms: i64) {
        self.experiment_runs
            .get_or_create(&labels(&[("verdict", verdict)]))
            .inc();
        if halt_latency_ms >= 0 {
            self.halt_latency_seconds
                .observe(halt_latency_ms as f64 / 1000.0);
        }
    }

    pub fn sweep(&self, took: Duration) {
        self.sweeps.inc();
        self.sweep_seconds.observe(took.as_secs_f64());
    }

    pub fn pack_evaluation(&self, pack: &str, evaluator: &str) {
        self.pack_evaluations
            .get_or_create(&labels(&[("pack", pack), ("evaluator", evaluator)]))
            .inc();
    }

    pub fn sweep_result(&self, status: &str, severity: &str) {
        self.sweep_results
            .get_or_create(&labels(&[("status", status), ("severity", severity)]))
            .inc();
    }
}

/// The process-wide event metrics.
pub fn global() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(Events::new)
}

/// Passing checks over applicable ones (pass, fail, error) in each host's latest checked sweep,
/// pooled per value of `group_label` (hosts without it: `none`), or over every host (`all`).
async fn scores_by_group(
    store: &Store,
    agents: &[crate::store::AgentRecord],
    group_label: Option<&str>,
) -> Result<Vec<(String, f64)>, crate::store::StoreError> {
    let labels_of: std::collections::HashMap<&str, &rampart_common::labels::Labels> =
        agents.iter().map(|a| (a.id.as_str(), &a.labels)).collect();
    let mut groups: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for (agent, status, n) in store.latest_status_counts().await? {
        let group = match group_label {
            None => "all".to_string(),
            Some(label) => labels_of
                .get(agent.as_str())
                .and_then(|l| l.get(label).cloned())
                .unwrap_or_else(|| "none".into()),
        };
        let g = groups.entry(group).or_default();
        match status.as_str() {
            "pass" => {
                g.0 += n;
                g.1 += n;
            }
            "fail" | "error" => g.1 += n,
            _ => {}
        }
    }
    Ok(groups
        .into_iter()
        .map(|(g, (pass, applied))| {
            let ratio = if applied == 0 {
                1.0
            } else {
                pass as f64 / applied as f64
            };
            (g, ratio)
        })
        .collect())
}

/// Everything, as one scrape: the event metrics, then the state read from the store now.
pub async fn scrape(
    store: &Store,
    group_label: Option<&str>,
) -> Result<String, crate::store::StoreError> {
    let mut out = String::new();
    let agents = store.agents().await?;
    let mut rows = Vec::new();
    for state in [AgentState::Online, AgentState::Offline, AgentState::Revoked] {
        let n = agents.iter().filter(|a| a.state == state).count();
        rows.push((labels(&[("state", state.as_str())]), n as f64));
    }
    gauge(
        &mut out,
        "rampart_agents",
        "Enrolled agents by state",
        &rows,
    );

    let mut by_kind: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for f in store.faults(true).await? {
        *by_kind.entry(f.status.kind).or_default() += 1.0;
    }
    let rows: Vec<(Labels, f64)> = by_kind
        .into_iter()
        .map(|(k, n)| (labels(&[("kind", &k)]), n))
        .collect();
    gauge(
        &mut out,
        "rampart_faults_active",
        "Faults active on agents now, by kind",
        &rows,
    );

    counter(
        &mut out,
        "rampart_audit_entries",
        "Entries in the audit trail",
        store.audit_len().await? as f64,
    );

    let scores = scores_by_group(store, &agents, group_label).await?;
    let rows: Vec<(Labels, f64)> = scores
        .into_iter()
        .map(|(group, score)| (labels(&[("group", &group)]), score))
        .collect();
    gauge(
        &mut out,
        "rampart_compliance_score_ratio",
        "Share of passing checks in each host's latest sweep, per value of the group label (all: every host)",
        &rows,
    );
    process(&mut out);
    let mut events = String::new();
    encode(&mut events, &global().registry).map_err(|e| crate::store::StoreError::Corrupt {
        what: "metrics",
        detail: e.to_string(),
    })?;
    out.push_str(&to_prometheus_text(&events));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_kinds_are_snake_case_variant_names() {
        use rampart_proto::v1::{CollectFacts, Ping, command::Kind};
        assert_eq!(
            command_kind(&Kind::CollectFacts(CollectFacts::default())),
            "collect_facts"
        );
        assert_eq!(command_kind(&Kind::Ping(Ping::default())), "ping");
    }
}
