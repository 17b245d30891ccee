//! `AgentService`: enrolment (join token + CSR → certificate) and the per-agent session stream.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rampart_common::labels;
use rampart_common::time::now_ms;
use rampart_proto::v1::agent_service_server::AgentService;
use rampart_proto::v1::{
    AgentMessage, CertificateRenewed, CoordinatorMessage, EnrollRequest, EnrollResponse, Hello,
    Welcome, agent_message, coordinator_message,
};
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use super::enroll_guard::Limited;
use super::{AppState, client_input_status, store_status};
use crate::fleet::SessionHandle;
use crate::store::{AgentRecord, AgentState, CertMatch, HostInfo, TokenRefusal};

/// How long a new session may take to say `Hello`.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat interval assumed when an agent does not state one (the agent's own default).
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Bounds on the interval an agent may ask for: faster would be a load, slower hides outages.
const MIN_HEARTBEAT: Duration = Duration::from_millis(200);
const MAX_HEARTBEAT: Duration = Duration::from_secs(300);
/// An agent is declared offline after this many missed heartbeats.
const MISSED_HEARTBEATS: u32 = 3;
/// Enrolment input limits.
const MAX_HOSTNAME: usize = 253;
const MAX_LABELS: usize = 64;

#[derive(Debug, Clone)]
pub struct AgentApi {
    state: Arc<AppState>,
}

impl AgentApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

impl AgentApi {
    /// A refused enrolment: logged, and audited at once the first time in a window for this
    /// source and reason; repeats are summarised later (see `enroll_guard`).
    async fn refused(
        &self,
        source: &str,
        peer: &str,
        hostname: &str,
        msg: &str,
        now: std::time::Instant,
    ) {
        warn!(%hostname, %peer, reason = msg, "enrolment refused");
        if self.state.enroll_guard.refused(source, msg, now) {
            let _ = self
                .state
                .store
                .append_audit(
                    "anonymous agent",
                    "AgentService/Enroll",
                    &format!("hostname={hostname} peer={peer}"),
                    msg,
                )
                .await;
        }
    }
}

/// Writes the summaries of refused enrolments whose window has ended (all of them with
/// `flush_all`, at shutdown).
pub async fn write_refusal_summaries(state: &AppState, flush_all: bool) {
    for s in state
        .enroll_guard
        .due_summaries(std::time::Instant::now(), flush_all)
    {
        if let Err(err) = state
            .store
            .append_audit(
                "anonymous agent",
                "AgentService/Enroll",
                &format!("source={}", s.source),
                &format!(
                    "{} more refused attempt(s) within {:?} of the first: {}",
                    s.suppressed,
                    super::enroll_guard::SUMMARY_WINDOW,
                    s.reason
                ),
            )
            .await
        {
            tracing::error!(%err, "could not write a refusal summary to the audit trail");
        }
    }
}

fn new_agent_id() -> String {
    format!("agent-{}", hex::encode(rand::random::<[u8; 8]>()))
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<EnrollResponse>, Status> {
        let peer_addr = request.remote_addr();
        let peer = peer_addr.map(|a| a.to_string()).unwrap_or_default();
        let source = peer_addr
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unknown".into());
        let now = std::time::Instant::now();
        if let Err(limited) = self
            .state
            .enroll_guard
            .admit(peer_addr.map(|a| a.ip()), now)
        {
            let msg = match limited {
                Limited::Source => format!(
                    "too many enrolment attempts from {source}; wait a minute and try again"
                ),
                Limited::Total => {
                    "too many enrolment attempts at once; wait a minute and try again".to_string()
                }
            };
            self.refused(&source, &peer, "", &msg, now).await;
            return Err(Status::resource_exhausted(msg));
        }
        let req = request.into_inner();
        if req.hostname.is_empty() || req.hostname.len() > MAX_HOSTNAME {
            return Err(Status::invalid_argument(
                "hostname must be 1 to 253 characters",
            ));
        }
        if req.labels.len() > MAX_LABELS {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_LABELS} labels"
            )));
        }
        for (k, v) in &req.labels {
            labels::validate(k, v).map_err(Status::invalid_argument)?;
        }
        let state = &self.state;
        let join = state
            .store
            .use_join_token(&req.token)
            .await
            .map_err(store_status)?;
        let join = match join {
            Ok(j) => j,
            Err(refusal) => {
                let msg = match refusal {
                    TokenRefusal::Unknown => {
                        "join token is unknown to this coordinator; create one with `rampart token create`"
                    }
                    TokenRefusal::Expired => {
                        "join token has expired; create a new one with `rampart token create`"
                    }
                    TokenRefusal::UsedUp => {
                        "join token has no uses left; create a new one with `rampart token create --uses N`"
                    }
                };
                self.refused(&source, &peer, &req.hostname, msg, now).await;
                return Err(Status::unauthenticated(msg));
            }
        };
        let agent_id = new_agent_id();
        let cert_pem = state
            .ca
            .sign_agent(&req.csr_pem, &agent_id, state.agent_cert_lifetime)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let cert_der =
            rampart_common::tls::certs_from_pem(cert_pem.as_bytes(), "issued certificate")
                .map_err(|e| Status::internal(e.to_string()))?;
        let mut all_labels = req.labels.into_iter().collect::<labels::Labels>();
        all_labels.extend(join.labels);
        let record = AgentRecord {
            id: agent_id.clone(),
            hostname: req.hostname.clone(),
            labels: all_labels.clone(),
            state: AgentState::Offline,
            os: String::new(),
            kernel: String::new(),
            arch: String::new(),
            version: String::new(),
            capabilities: Vec::new(),
            address: peer.clone(),
            cert_fingerprint: rampart_common::tls::fingerprint(&cert_der[0]),
            prev_fingerprint: None,
            cert_expires_at: crate::pki::expiry_ms_of(&cert_der[0]),
            enrolled_at: now_ms(),
            last_seen: 0,
        };
        // Fails closed: no certificate leaves without its audit entry.
        let summary = format!(
            "hostname={} peer={peer} agent={agent_id} labels={all_labels:?}",
            req.hostname
        );
        if let Err(err) = state
            .store
            .append_audit(
                &format!("join token {}", join.token_id),
                "AgentService/Enroll",
                &summary,
                "ok",
            )
            .await
        {
            tracing::error!(%err, "audit trail cannot be written; refusing the enrolment");
            return Err(Status::unavailable(format!(
                "enrolment refused: its audit entry cannot be written ({err})"
            )));
        }
        state
            .store
            .insert_agent(&record)
            .await
            .map_err(store_status)?;
        info!(agent = %agent_id, hostname = %req.hostname, %peer, "agent enrolled");
        Ok(Response::new(EnrollResponse {
            agent_id,
            certificate_pem: cert_pem,
            ca_pem: state.ca.cert_pem().to_string(),
            labels: all_labels.into_iter().collect(),
        }))
    }

    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let certs = request.peer_certs().ok_or_else(|| {
            Status::unauthenticated("sessions need a client certificate: enrol the agent first")
        })?;
        let leaf = certs
            .first()
            .ok_or_else(|| Status::unauthenticated("no client certificate presented"))?;
        let cert_id = crate::pki::agent_id_of(leaf)
            .ok_or_else(|| Status::unauthenticated("the client certificate carries no agent id"))?;
        let fingerprint = rampart_common::tls::fingerprint(leaf);
        let mut inbound = request.into_inner();

        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no Hello within 10 s"))?
            .map_err(client_input_status)?;
        let hello = match first.and_then(|m| m.body) {
            Some(agent_message::Body::Hello(h)) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of a session must be Hello",
                ));
            }
        };
        if hello.agent_id != cert_id {
            warn!(cert = %cert_id, hello = %hello.agent_id, %peer, "session refused: identity mismatch");
            return Err(Status::permission_denied(format!(
                "certificate identity {cert_id} does not match the agent id {:?} in Hello",
                hello.agent_id
            )));
        }
        let state = self.state.clone();
        let record = state
            .store
            .agent(&cert_id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| {
                Status::permission_denied(format!(
                    "agent {cert_id} is not enrolled here; enrol it again"
                ))
            })?;
        if record.state == AgentState::Revoked {
            warn!(agent = %cert_id, %peer, "session refused: agent revoked");
            return Err(Status::permission_denied(format!(
                "agent {cert_id} has been revoked; enrol it again with a new token"
            )));
        }
        let presented = record.cert_match(&fingerprint);
        if presented == CertMatch::Neither {
            return Err(Status::permission_denied(format!(
                "agent {cert_id} presented a certificate that is not the one issued to it"
            )));
        }
        if record.prev_fingerprint.is_some() {
            if presented == CertMatch::Previous {
                warn!(agent = %cert_id, "the agent still uses its certificate from before the last renewal; keeping that one");
            }
            state
                .store
                .settle_agent_cert(&cert_id, presented, crate::pki::expiry_ms_of(leaf))
                .await
                .map_err(store_status)?;
        }
        for (k, v) in &hello.labels {
            labels::validate(k, v).map_err(Status::invalid_argument)?;
        }

        let interval = match hello.heartbeat_interval_ms {
            0 => DEFAULT_HEARTBEAT,
            ms => Duration::from_millis(u64::from(ms)).clamp(MIN_HEARTBEAT, MAX_HEARTBEAT),
        };
        let info = host_info(&hello, peer.clone());
        let (handle, rx) = state.fleet.open(&cert_id, &state.shutdown);
        state
            .store
            .agent_online(&cert_id, &info)
            .await
            .map_err(store_status)?;
        info!(agent = %cert_id, hostname = %info.hostname, %peer, "agent online");
        crate::web::metrics::global().sessions_opened.inc();
        let welcome = CoordinatorMessage {
            body: Some(coordinator_message::Body::Welcome(Welcome {
                agent_id: cert_id.clone(),
                server_time_unix_ms: now_ms(),
            })),
        };
        // The queue is empty at this point, so this cannot fail for lack of room.
        handle.try_send(welcome);
        for f in &hello.faults {
            warn!(agent = %cert_id, fault = %f.fault_id, state = %f.state, detail = %f.detail, "fault reported at session start");
            if let Err(err) = state
                .store
                .upsert_fault(&cert_id, &info.hostname, f, "")
                .await
            {
                warn!(%err, agent = %cert_id, "could not record a fault");
            }
        }
        // Faults of runs that ended while this agent was away (or the coordinator was down).
        let chaos = state.chaos.clone();
        let reconcile_id = cert_id.clone();
        tokio::spawn(async move { chaos.reconcile_agent(&reconcile_id).await });
        tokio::spawn(serve_session(
            state,
            cert_id,
            info.hostname,
            handle,
            inbound,
            interval,
        ));
        Ok(Response::new(Box::pin(
            ReceiverStream::new(rx).map(|m| m.map(|b| *b)),
        )))
    }
}

fn host_info(hello: &Hello, address: String) -> HostInfo {
    HostInfo {
        hostname: hello.hostname.clone(),
        os: hello.os.clone(),
        kernel: hello.kernel.clone(),
        arch: hello.arch.clone(),
        version: hello.version.clone(),
        labels: hello.labels.clone().into_iter().collect(),
        capabilities: hello.capabilities.clone(),
        address,
    }
}

/// Signs a renewal CSR from an agent's live session (so its identity is already proven), records
/// the new certificate, and audits it. The new key never left the host.
async fn renew(state: &AppState, agent_id: &str, csr_pem: &str) -> CertificateRenewed {
    let refused = |error: String| {
        warn!(agent = %agent_id, %error, "certificate renewal refused");
        CertificateRenewed {
            certificate_pem: String::new(),
            error,
        }
    };
    let pem = match state
        .ca
        .sign_agent(csr_pem, agent_id, state.agent_cert_lifetime)
    {
        Ok(p) => p,
        Err(e) => return refused(e.to_string()),
    };
    let Ok(der) = rampart_common::tls::certs_from_pem(pem.as_bytes(), "renewed certificate") else {
        return refused("the coordinator could not read the certificate it signed".into());
    };
    let fingerprint = rampart_common::tls::fingerprint(&der[0]);
    let expires = crate::pki::expiry_ms_of(&der[0]).unwrap_or(0);
    // Audited before the certificate is recorded or sent: fails closed.
    if let Err(err) = state
        .store
        .append_audit(
            &format!("agent {agent_id}"),
            "AgentService/RenewCertificate",
            &format!("fingerprint={fingerprint} expires_unix_ms={expires}"),
            "ok",
        )
        .await
    {
        return refused(format!("its audit entry cannot be written ({err})"));
    }
    if let Err(err) = state
        .store
        .renew_agent_cert(agent_id, &fingerprint, expires)
        .await
    {
        return refused(format!("the coordinator could not record it ({err})"));
    }
    info!(agent = %agent_id, expires_unix_ms = expires, "agent certificate renewed");
    CertificateRenewed {
        certificate_pem: pem,
        error: String::new(),
    }
}

/// Reads the agent's messages until the session ends, then marks the agent offline (unless a
/// newer session took over).
async fn serve_session(
    state: Arc<AppState>,
    agent_id: String,
    hostname: String,
    handle: SessionHandle,
    mut inbound: Streaming<AgentMessage>,
    interval: Duration,
) {
    let silence = interval * MISSED_HEARTBEATS;
    loop {
        let next = tokio::select! {
            _ = handle.cancel.cancelled() => break,
            next = tokio::time::timeout(silence, inbound.message()) => next,
        };
        match next {
            Err(_) => {
                warn!(agent = %agent_id, ?silence, "no heartbeat for {MISSED_HEARTBEATS} intervals; marking offline");
                handle.close(Status::deadline_exceeded(
                    "no heartbeat received; the coordinator closed the session",
                ));
                break;
            }
            Ok(Ok(Some(msg))) => match msg.body {
                Some(agent_message::Body::Heartbeat(_)) => state.fleet.heartbeats.note(&agent_id),
                Some(agent_message::Body::Result(result)) => {
                    if !handle.complete(result) {
                        debug!(agent = %agent_id, "result for a command nobody waits for (late or duplicate)");
                    }
                }
                Some(agent_message::Body::Fault(f)) => {
                    info!(agent = %agent_id, fault = %f.fault_id, state = %f.state, by = %f.reverted_by, "fault state changed");
                    crate::web::metrics::global().fault(&f.kind, &f.state);
                    if let Err(err) = state.store.upsert_fault(&agent_id, &hostname, &f, "").await {
                        warn!(%err, agent = %agent_id, "could not record a fault");
                    }
                }
                Some(agent_message::Body::Metrics(m)) => {
                    state.fleet.record_metrics(&agent_id, m);
                }
                Some(agent_message::Body::Renew(r)) => {
                    let answer = renew(&state, &agent_id, &r.csr_pem).await;
                    handle.try_send(CoordinatorMessage {
                        body: Some(coordinator_message::Body::Renewed(answer)),
                    });
                }
                Some(agent_message::Body::Hello(_)) | None => {
                    handle.close(Status::invalid_argument(
                        "Hello may only be sent once, as the first message",
                    ));
                    break;
                }
            },
            Ok(Ok(None)) => {
                debug!(agent = %agent_id, "agent closed its session");
                break;
            }
            Ok(Err(status)) => {
                let status = client_input_status(status);
                debug!(agent = %agent_id, %status, "session stream failed");
                handle.close(status);
                break;
            }
        }
    }
    // Whoever still waits for an answer on this session learns now that none will come.
    handle.cancel.cancel();
    if state.fleet.remove(&agent_id, handle.session_id) {
        if let Err(err) = state.store.agent_offline(&agent_id).await {
            warn!(%err, agent = %agent_id, "could not mark agent offline");
        }
        info!(agent = %agent_id, "agent offline");
    }
}
