//! `ChaosService`: inject faults on selected agents, list them, revert them, and the emergency
//! stop. Agents are the source of truth for their faults; the coordinator records what they
//! answer and what they report on their own (durations ending, lease reverts, start-up recovery).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rampart_common::labels::Selector;
use rampart_proto::v1::chaos_service_server::ChaosService;
use rampart_proto::v1::{
    AgentFaults, EmergencyStopRequest, FaultsResponse, InjectFault, InjectFaultRequest,
    ListFaultsRequest, RevertAll, RevertFault, RevertFaultsRequest, command, command_result,
};
use tonic::{Request, Response, Status};

use super::auth::{audited, authorize};
use super::{AppState, store_status};
use crate::store::{AgentRecord, AgentState, Role};

/// How long an agent gets to answer a fault command. Applying is quick; a revert may wait for
/// processes to continue or threads to stop.
const AGENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Agents commanded at once.
const CONCURRENCY: usize = 256;

#[derive(Debug, Clone)]
pub struct ChaosApi {
    state: Arc<AppState>,
}

impl ChaosApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// Sends `kind(agent)` to every agent at once and gathers one answer (or error) per agent,
/// recording every fault state they report.
async fn fan_out(
    state: &AppState,
    agents: Vec<AgentRecord>,
    requested_by: &str,
    kind: impl Fn(&AgentRecord) -> command::Kind,
) -> FaultsResponse {
    let calls = agents.into_iter().map(|a| {
        let k = kind(&a);
        async move {
            let mut out = AgentFaults {
                agent_id: a.id.clone(),
                hostname: a.hostname.clone(),
                ..Default::default()
            };
            if a.state != AgentState::Online || !state.fleet.reachable(&a.id) {
                out.error = format!(
                    "agent is {}: not reached (an agent reverts its faults itself when its lease runs out)",
                    a.state.as_str()
                );
                return out;
            }
            let start = Instant::now();
            match state.fleet.call(&a.id, k, AGENT_TIMEOUT).await {
                Ok(r) => {
                    out.latency_micros = start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    match r.outcome {
                        Some(command_result::Outcome::Faults(report)) => out.faults = report.faults,
                        Some(command_result::Outcome::Error(e)) => out.error = e,
                        _ => out.error = "the agent answered with something else (is it older than the coordinator?)".into(),
                    }
                }
                Err(e) => out.error = e.to_string(),
            }
            out
        }
    });
    let mut answers: Vec<AgentFaults> = futures::stream::iter(calls)
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for a in &answers {
        for f in &a.faults {
            if let Err(err) = state
                .store
                .upsert_fault(&a.agent_id, &a.hostname, f, requested_by)
                .await
            {
                tracing::warn!(%err, agent = %a.agent_id, "could not record a fault");
            }
        }
    }
    answers.sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    FaultsResponse { agents: answers }
}

async fn selected(state: &AppState, selector: &str) -> Result<Vec<AgentRecord>, Status> {
    let selector = Selector::parse(selector).map_err(Status::invalid_argument)?;
    Ok(state
        .store
        .agents()
        .await
        .map_err(store_status)?
        .into_iter()
        .filter(|a| a.state != AgentState::Revoked && selector.matches(&a.labels))
        .collect())
}

#[tonic::async_trait]
impl ChaosService for ChaosApi {
    async fn inject_fault(
        &self,
        request: Request<InjectFaultRequest>,
    ) -> Result<Response<FaultsResponse>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        let spec = req.spec.clone().unwrap_or_default();
        let summary = format!(
            "selector={:?} kind={} duration_ms={} spec={}",
            req.selector,
            spec.kind
                .as_ref()
                .map_or("none", |_| rampart_agent::faults::policy::kind_name(&spec)),
            req.duration_ms,
            serde_json::to_string(&spec).unwrap_or_default()
        );
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ChaosService/InjectFault",
            summary,
            |who| async move {
                if spec.kind.is_none() {
                    return Err(Status::invalid_argument("no fault kind given"));
                }
                if req.duration_ms == 0 {
                    return Err(Status::invalid_argument("a fault needs a duration"));
                }
                let agents: Vec<AgentRecord> = selected(&state, &req.selector)
                    .await?
                    .into_iter()
                    .filter(|a| a.state == AgentState::Online)
                    .collect();
                if agents.is_empty() {
                    return Err(Status::failed_precondition(format!(
                        "no online agent matches {:?}",
                        req.selector
                    )));
                }
                let actor = who.actor();
                Ok(Response::new(
                    fan_out(&state, agents, &actor, |_| {
                        command::Kind::InjectFault(InjectFault {
                            fault_id: format!("flt-{}", hex::encode(rand::random::<[u8; 6]>())),
                            spec: Some(spec.clone()),
                            duration_ms: req.duration_ms,
                        })
                    })
                    .await,
                ))
            },
        )
        .await
    }

    async fn list_faults(
        &self,
        request: Request<ListFaultsRequest>,
    ) -> Result<Response<FaultsResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ChaosService/ListFaults",
        )
        .await?;
        let records = self
            .state
            .store
            .faults(request.get_ref().active)
            .await
            .map_err(store_status)?;
        let mut agents: Vec<AgentFaults> = Vec::new();
        for r in records {
            match agents.iter_mut().find(|a| a.agent_id == r.agent_id) {
                Some(a) => a.faults.push(r.status),
                None => agents.push(AgentFaults {
                    agent_id: r.agent_id,
                    hostname: r.hostname,
                    faults: vec![r.status],
                    ..Default::default()
                }),
            }
        }
        Ok(Response::new(FaultsResponse { agents }))
    }

    async fn revert_faults(
        &self,
        request: Request<RevertFaultsRequest>,
    ) -> Result<Response<FaultsResponse>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ChaosService/RevertFaults",
            format!(
                "fault_id={:?} all={} selector={:?}",
                req.fault_id, req.all, req.selector
            ),
            |who| async move {
                let actor = who.actor();
                if !req.fault_id.is_empty() {
                    let agent_id = state
                        .store
                        .fault_agent(&req.fault_id)
                        .await
                        .map_err(store_status)?
                        .ok_or_else(|| {
                            Status::not_found(format!(
                                "no fault {:?}; see `rampart fault ls`",
                                req.fault_id
                            ))
                        })?;
                    let agent = state
                        .store
                        .agent(&agent_id)
                        .await
                        .map_err(store_status)?
                        .ok_or_else(|| {
                            Status::not_found(format!("the fault's agent {agent_id} is gone"))
                        })?;
                    let id = req.fault_id.clone();
                    return Ok(Response::new(
                        fan_out(&state, vec![agent], &actor, move |_| {
                            command::Kind::RevertFault(RevertFault {
                                fault_id: id.clone(),
                            })
                        })
                        .await,
                    ));
                }
                if !req.all {
                    return Err(Status::invalid_argument("name a fault id, or ask for all"));
                }
                let agents = selected(&state, &req.selector).await?;
                Ok(Response::new(
                    fan_out(&state, agents, &actor, |_| {
                        command::Kind::RevertAll(RevertAll {})
                    })
                    .await,
                ))
            },
        )
        .await
    }

    async fn emergency_stop(
        &self,
        request: Request<EmergencyStopRequest>,
    ) -> Result<Response<FaultsResponse>, Status> {
        let state = self.state.clone();
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ChaosService/EmergencyStop",
            "every fault on every agent".to_string(),
            |who| async move {
                tracing::warn!(by = %who.actor(), "emergency stop");
                // Runs halt too: they revert their own faults and end `aborted`.
                let halted = state
                    .chaos
                    .abort_all(&format!("emergency stop by {}", who.actor()), &who.actor());
                if halted > 0 {
                    tracing::warn!(
                        runs = halted,
                        "experiment runs halted by the emergency stop"
                    );
                }
                // Runs on the other coordinators halt too; their agents get the revert below.
                if let Some(relay) = state.fleet.relay() {
                    let halt = crate::fleet::relay::PeerMessage::Halt {
                        reason: format!("emergency stop by {}", who.actor()),
                        actor: who.actor(),
                    };
                    if let Err(err) = relay.broadcast(halt).await {
                        tracing::error!(%err, "could not tell the other coordinators to halt their runs");
                    }
                }
                let agents = selected(&state, "").await?;
                Ok(Response::new(
                    fan_out(&state, agents, &who.actor(), |_| {
                        command::Kind::RevertAll(RevertAll {})
                    })
                    .await,
                ))
            },
        )
        .await
    }
}
