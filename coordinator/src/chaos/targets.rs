//! Which agents a run targets, and the run record it starts with.

use rampart_common::labels::Selector;
use rampart_common::time::now_ms;
use rampart_proto::v1::{Run, RunTarget};

use super::ChaosError;
use super::spec::Experiment;
use crate::store::{AgentRecord, AgentState};

/// Picks the run's targets: online agents the selector matches, at most `max_targets` or
/// `max_percent` of them (at least one), chosen at random, sorted by hostname.
pub fn pick_targets(
    agents: Vec<AgentRecord>,
    e: &Experiment,
) -> Result<Vec<AgentRecord>, ChaosError> {
    let selector = Selector::parse(&e.selector).map_err(ChaosError::State)?;
    let mut matching: Vec<AgentRecord> = agents
        .into_iter()
        .filter(|a| a.state == AgentState::Online && selector.matches(&a.labels))
        .collect();
    if matching.is_empty() {
        return Err(ChaosError::NoTargets(e.selector.clone()));
    }
    let n = matching.len();
    let keep = match (e.max_targets, e.max_percent) {
        (Some(m), _) => (m as usize).min(n),
        (None, Some(p)) => (n * p as usize / 100).max(1),
        (None, None) => n,
    };
    use rand::seq::SliceRandom;
    matching.shuffle(&mut rand::rng());
    matching.truncate(keep);
    matching.sort_by(|a, b| (&a.hostname, &a.id).cmp(&(&b.hostname, &b.id)));
    Ok(matching)
}

/// A new run record for an experiment (not yet stored).
pub fn new_run(e: &Experiment, yaml: &str, actor: &str, targets: &[AgentRecord]) -> Run {
    Run {
        id: format!("run-{}", hex::encode(rand::random::<[u8; 6]>())),
        kind: "experiment".into(),
        name: e.name.clone(),
        state: "running".into(),
        created_by: actor.into(),
        started_unix_ms: now_ms(),
        recovery_ms: -1,
        halt_latency_ms: -1,
        targets: targets
            .iter()
            .map(|a| RunTarget {
                agent_id: a.id.clone(),
                hostname: a.hostname.clone(),
            })
            .collect(),
        plan: e.plan(),
        spec: yaml.into(),
        ..Default::default()
    }
}
