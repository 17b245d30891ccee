//! `FleetService`: inventory, revocation and round-trip checks of agents, for operators.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_common::labels::Selector;
use rampart_proto::v1::fleet_service_server::FleetService;
use rampart_proto::v1::{
    Agent, CollectFacts, CollectFactsRequest, CommandResult, FactReport, GetAgentRequest,
    ListAgentsRequest, ListAgentsResponse, Ping, PingAgentRequest, PingAgentResponse,
    RevokeAgentRequest, RevokeAgentResponse, command, command_result,
};
use tonic::{Request, Response, Status};

use super::auth::{audited, authorize};
use super::{AppState, requested_timeout, store_status};
use crate::fleet::FleetError;
use crate::store::{AgentRecord, AgentState, Role};

/// How long `PingAgent` waits when the caller gives no timeout.
const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `CollectFacts` waits when the caller gives no timeout.
const DEFAULT_FACTS_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait a caller may ask of a command (`PingAgent`, `CollectFacts`).
const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct FleetApi {
    state: Arc<AppState>,
}

impl FleetApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

/// The wire form of an agent record.
pub fn agent_to_proto(a: AgentRecord) -> Agent {
    use rampart_proto::v1::AgentState as P;
    Agent {
        id: a.id,
        hostname: a.hostname,
        labels: a.labels.into_iter().collect(),
        state: match a.state {
            AgentState::Online => P::Online,
            AgentState::Offline => P::Offline,
            AgentState::Revoked => P::Revoked,
        } as i32,
        os: a.os,
        kernel: a.kernel,
        arch: a.arch,
        version: a.version,
        capabilities: a.capabilities,
        last_seen_unix_ms: a.last_seen,
        enrolled_unix_ms: a.enrolled_at,
        address: a.address,
        cert_expires_unix_ms: a.cert_expires_at.unwrap_or(0),
    }
}

impl FleetApi {
    /// Sends a command to an agent. An agent without a session is told apart from one that does
    /// not exist at all, so a typo in an id does not read as an outage.
    async fn command(
        &self,
        id: &str,
        kind: command::Kind,
        timeout: Duration,
    ) -> Result<CommandResult, Status> {
        match self.state.fleet.call(id, kind, timeout).await {
            Ok(r) => Ok(r),
            Err(err @ FleetError::NotConnected(_)) => {
                match self.state.store.agent(id).await.map_err(store_status)? {
                    None => Err(Status::not_found(format!(
                        "no agent {id:?}; list them with `rampart agents ls`"
                    ))),
                    Some(_) => Err(Status::unavailable(err.to_string())),
                }
            }
            Err(err @ FleetError::Timeout(..)) => Err(Status::deadline_exceeded(err.to_string())),
            Err(err @ (FleetError::SessionClosed(_) | FleetError::Relay(_))) => {
                Err(Status::unavailable(err.to_string()))
            }
        }
    }
}

#[tonic::async_trait]
impl FleetService for FleetApi {
    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "FleetService/ListAgents",
        )
        .await?;
        let selector =
            Selector::parse(&request.get_ref().selector).map_err(Status::invalid_argument)?;
        let agents = self.state.store.agents().await.map_err(store_status)?;
        let agents = agents
            .into_iter()
            .filter(|a| selector.matches(&a.labels))
            .map(agent_to_proto)
            .collect();
        Ok(Response::new(ListAgentsResponse { agents }))
    }

    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<Agent>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "FleetService/GetAgent",
        )
        .await?;
        let id = &request.get_ref().id;
        let agent = self.state.store.agent(id).await.map_err(store_status)?;
        agent
            .map(|a| Response::new(agent_to_proto(a)))
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no agent {id:?}; list them with `rampart agents ls`"
                ))
            })
    }

    async fn revoke_agent(
        &self,
        request: Request<RevokeAgentRequest>,
    ) -> Result<Response<RevokeAgentResponse>, Status> {
        let id = request.get_ref().id.clone();
        let state = self.state.clone();
        audited(&self.state, request.metadata(), Role::Admin, "FleetService/RevokeAgent", format!("id={id}"), |who| async move {
            if !state.store.revoke_agent(&id).await.map_err(store_status)? {
                return Err(Status::not_found(format!("no agent {id:?}; list them with `rampart agents ls`")));
            }
            let mut closed = state.fleet.disconnect(&id, Status::permission_denied(format!("agent {id} has been revoked")));
            if !closed && let Some(relay) = state.fleet.relay() {
                // Its session may be on another coordinator.
                let held = relay.held_elsewhere(&id).await;
                if held {
                    if let Err(err) = relay.broadcast(crate::fleet::relay::PeerMessage::Disconnect { agent: id.clone() }).await {
                        tracing::error!(%err, agent = %id, "could not ask the other coordinators to close the revoked agent's session");
                    }
                    closed = true;
                }
            }
            tracing::warn!(agent = %id, by = %who.name, session_closed = closed, "agent revoked");
            let agent = state.store.agent(&id).await.map_err(store_status)?.map(agent_to_proto);
            Ok(Response::new(RevokeAgentResponse { agent, session_closed: closed }))
        })
        .await
    }

    async fn ping_agent(
        &self,
        request: Request<PingAgentRequest>,
    ) -> Result<Response<PingAgentResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Operator,
            "FleetService/PingAgent",
        )
        .await?;
        let req = request.into_inner();
        let timeout = requested_timeout(req.timeout_ms, DEFAULT_PING_TIMEOUT, MAX_COMMAND_TIMEOUT);
        let payload = hex::encode(rand::random::<[u8; 8]>());
        let started = Instant::now();
        let kind = command::Kind::Ping(Ping {
            payload: payload.clone(),
        });
        let result = self.command(&req.id, kind, timeout).await?;
        let rtt = started.elapsed();
        match result.outcome {
            Some(command_result::Outcome::Pong(p)) if p.payload == payload => {
                Ok(Response::new(PingAgentResponse {
                    round_trip_us: rtt.as_micros().min(u128::from(u32::MAX)) as u32,
                }))
            }
            Some(command_result::Outcome::Error(e)) => Err(Status::aborted(format!(
                "agent {} failed the ping: {e}",
                req.id
            ))),
            _ => Err(Status::internal(format!(
                "agent {} answered the ping with something else",
                req.id
            ))),
        }
    }

    async fn collect_facts(
        &self,
        request: Request<CollectFactsRequest>,
    ) -> Result<Response<FactReport>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Operator,
            "FleetService/CollectFacts",
        )
        .await?;
        let req = request.into_inner();
        let timeout = requested_timeout(req.timeout_ms, DEFAULT_FACTS_TIMEOUT, MAX_COMMAND_TIMEOUT);
        let kind = command::Kind::CollectFacts(CollectFacts {
            file_paths: req.file_paths,
        });
        let result = self.command(&req.id, kind, timeout).await?;
        match result.outcome {
            Some(command_result::Outcome::Facts(report)) => Ok(Response::new(report)),
            Some(command_result::Outcome::Error(e)) => Err(Status::aborted(format!(
                "agent {} could not collect facts: {e}",
                req.id
            ))),
            _ => Err(Status::internal(format!(
                "agent {} answered with something other than facts",
                req.id
            ))),
        }
    }
}
