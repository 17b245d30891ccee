//! Asking an agent for its facts, for sweeps and remediation runs alike.

use std::time::Duration;

use rampart_common::time::format_ms;
use rampart_proto::v1::{CollectFacts, FactReport, command, command_result};

use crate::fleet::Fleet;
use crate::store::{AgentRecord, AgentState};

/// Asks an online agent for its facts; `Err` says why the host is unreachable.
pub async fn collect_facts(
    fleet: &Fleet,
    agent: &AgentRecord,
    timeout: Duration,
) -> Result<FactReport, String> {
    if agent.state != AgentState::Online || !fleet.reachable(&agent.id) {
        return Err(format!(
            "agent is {} (last seen {})",
            agent.state.as_str(),
            format_ms(agent.last_seen)
        ));
    }
    let kind = command::Kind::CollectFacts(CollectFacts {
        file_paths: Vec::new(),
    });
    match fleet
        .call(&agent.id, kind, timeout)
        .await
        .map_err(|e| e.to_string())?
        .outcome
    {
        Some(command_result::Outcome::Facts(f)) => Ok(f),
        Some(command_result::Outcome::Error(e)) => {
            Err(format!("the agent could not collect facts: {e}"))
        }
        _ => Err("the agent answered with something other than facts".into()),
    }
}
