//! The agent's session: dial out over mTLS, say `Hello`, heartbeat, answer commands; reconnect
//! with jittered exponential backoff when the coordinator goes away; stop on cancellation.

use std::time::{Duration, Instant};

use rampart_common::labels::Labels;
use rampart_common::time::now_ms;
use rampart_common::tls;
use rampart_proto::v1::agent_service_client::AgentServiceClient;
use rampart_proto::v1::{
    AgentMessage, CommandResult, Heartbeat, Hello, agent_message, command, command_result,
    coordinator_message,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::AgentError;
pub use crate::executor::{Executor, bounded};
use crate::renewal;
use crate::state::Enrolment;

/// First reconnect delay; doubles per failure up to the configured ceiling.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// How long to wait for `Welcome` after `Hello`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Outbound messages buffered towards the coordinator.
const OUTBOUND_QUEUE: usize = 32;

/// How the agent runs its session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// One coordinator address, or several separated by commas.
    pub coordinator: String,
    pub heartbeat_interval: Duration,
    pub reconnect_max: Duration,
    /// Labels from the config file, sent in `Hello`.
    pub labels: Labels,
    /// Where compliance facts are read.
    pub facts: crate::facts::FactSource,
    /// Remediation: below the same root, backups in the state dir, possibly forbidden.
    pub remediation: crate::remediate::Remediator,
    /// Fault injection, with its journal and the agent's own policy.
    pub faults: crate::faults::Faults,
    /// Where a renewed certificate is saved; without it the agent does not renew.
    pub state: Option<crate::state::StateDir>,
    /// Which programs command probes may run (none by default).
    pub probes: crate::probes::ProbePolicy,
}

/// Exponential backoff with jitter: each delay is drawn from the upper half of the current step,
/// so a fleet that lost its coordinator does not reconnect in lock-step.
#[derive(Debug, Clone)]
pub struct Backoff {
    step: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(max: Duration) -> Self {
        Self {
            step: INITIAL_BACKOFF.min(max),
            max,
        }
    }

    pub fn reset(&mut self) {
        self.step = INITIAL_BACKOFF.min(self.max);
    }

    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// The coordinators an agent may hold its session with: it starts at one picked at random (so
/// a fleet spreads over them) and moves to the next each time a session is lost or refused for
/// now; the backoff between attempts is the same jittered one as with a single coordinator.
#[derive(Debug, Clone)]
pub struct Coordinators {
    list: Vec<String>,
    current: usize,
}

impl Coordinators {
    /// From a setting of one address or several separated by commas (validated at load).
    pub fn new(setting: &str) -> Self {
        let list = tls::coordinator_list(setting).unwrap_or_else(|_| vec![setting.to_string()]);
        let current = rand::random_range(0..list.len());
        Self { list, current }
    }

    pub fn current(&self) -> &str {
        &self.list[self.current]
    }

    /// Moves to the next coordinator and returns it.
    pub fn advance(&mut self) -> &str {
        self.current = (self.current + 1) % self.list.len();
        self.current()
    }

    /// Every coordinator's socket addresses (those that resolve now).
    pub async fn resolve(&self) -> Vec<std::net::SocketAddr> {
        let mut addrs = Vec::new();
        for c in &self.list {
            if let Ok(t) = tls::Target::parse(c)
                && let Ok(found) = tokio::net::lookup_host(t.authority).await
            {
                addrs.extend(found);
            }
        }
        addrs
    }
}

/// Why a session ended.
#[derive(Debug)]
enum Ended {
    /// Cancellation: the agent is shutting down.
    Shutdown,
    /// The coordinator went away or the connection failed; try again.
    Lost(String),
}

/// Runs sessions until `cancel` fires. Returns an error only when the coordinator refuses this
/// agent for good (revoked, unknown identity): retrying would not help.
pub async fn run(
    mut enrolment: Enrolment,
    config: SessionConfig,
    cancel: CancellationToken,
) -> Result<(), AgentError> {
    let faults = config.faults.clone();
    // Before anything else: put back whatever a previous run left (its journal).
    for st in faults.recover_journal().await {
        warn!(fault = %st.fault_id, state = %st.state, detail = %st.detail, "fault from a previous run");
    }
    let mut events = faults.take_events();
    let lease = tokio::spawn(faults.clone().watch_lease(cancel.child_token()));
    let mut pending = Vec::new();
    let mut backoff = Backoff::new(config.reconnect_max);
    let mut coordinators = Coordinators::new(&config.coordinator);
    let mut executor = Executor::new(
        config.facts.clone(),
        config.remediation.clone(),
        faults.clone(),
    );
    let outcome = loop {
        let started = Instant::now();
        // Rebuilt each time: a renewal may have replaced the certificate.
        if let Some(v) = renewal::validity(&enrolment.cert_pem)
            && v.not_after_ms <= now_ms()
        {
            break Err(AgentError::CertificateExpired(
                rampart_common::time::format_ms(v.not_after_ms),
            ));
        }
        let tls_config = match tls::client_config(
            enrolment.ca_pem.as_bytes(),
            Some((enrolment.cert_pem.as_bytes(), enrolment.key_pem.as_bytes())),
        ) {
            Ok(c) => c,
            Err(e) => break Err(e.into()),
        };
        let mut link = Link {
            coordinators: &coordinators,
            events: &mut events,
            pending: &mut pending,
        };
        let ended = tokio::select! {
            _ = cancel.cancelled() => Ok(Ended::Shutdown),
            r = session_once(&mut enrolment, &config, tls_config, &mut executor, &cancel, &mut backoff, &mut link) => r,
        };
        faults.session_down();
        crate::metrics::global().connected.set(0);
        match ended {
            Err(e) => break Err(e),
            Ok(Ended::Shutdown) => {
                info!("session closed: shutting down");
                break Ok(());
            }
            Ok(Ended::Lost(reason)) => {
                let delay = backoff.next_delay();
                let lost = coordinators.current().to_string();
                let next = coordinators.advance();
                warn!(%reason, coordinator = %lost, retry_in = ?delay, next = %next, after = ?started.elapsed(), "no session with the coordinator");
                tokio::select! {
                    _ = cancel.cancelled() => break Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    };
    // Whatever ends the agent, its faults end first.
    for st in faults.revert_all("shutdown").await {
        info!(fault = %st.fault_id, state = %st.state, "fault reverted at shutdown");
    }
    lease.abort();
    outcome
}

/// The way to the coordinator: which one to dial, and fault state changes on their way to it
/// (new ones arrive on `events`; those that could not be sent wait in `pending` and go with the
/// next `Hello`).
struct Link<'a> {
    coordinators: &'a Coordinators,
    events: &'a mut mpsc::UnboundedReceiver<rampart_proto::v1::FaultStatus>,
    pending: &'a mut Vec<rampart_proto::v1::FaultStatus>,
}

fn hello(
    enrolment: &Enrolment,
    config: &SessionConfig,
    faults: Vec<rampart_proto::v1::FaultStatus>,
) -> AgentMessage {
    let host = crate::host::describe();
    let mut labels = enrolment.identity.labels.clone();
    labels.extend(config.labels.clone());
    AgentMessage {
        body: Some(agent_message::Body::Hello(Hello {
            agent_id: enrolment.identity.agent_id.clone(),
            capabilities: crate::host::capabilities(&host.kernel),
            hostname: host.hostname,
            os: host.os,
            kernel: host.kernel,
            arch: host.arch,
            version: env!("CARGO_PKG_VERSION").to_string(),
            labels: labels.into_iter().collect(),
            heartbeat_interval_ms: config
                .heartbeat_interval
                .as_millis()
                .min(u128::from(u32::MAX)) as u32,
            faults,
        })),
    }
}

/// Whether a status from the coordinator means "this agent is not welcome" rather than "try later".
fn is_refusal(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated
    )
}

/// Sends a heartbeat every `interval` until the session's stream closes.
async fn heartbeat(tx: mpsc::Sender<AgentMessage>, interval: Duration) {
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1u64.. {
        ticker.tick().await;
        let hb = AgentMessage {
            body: Some(agent_message::Body::Heartbeat(Heartbeat { seq })),
        };
        if tx.send(hb).await.is_err() {
            return;
        }
    }
}

/// Ends a task when the session that started it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn session_once(
    enrolment: &mut Enrolment,
    config: &SessionConfig,
    tls_config: std::sync::Arc<tls::ClientConfig>,
    executor: &mut Executor,
    cancel: &CancellationToken,
    backoff: &mut Backoff,
    link: &mut Link<'_>,
) -> Result<Ended, AgentError> {
    let coordinators = link.coordinators;
    let channel = match tls::dial(coordinators.current(), tls_config).await {
        Ok(c) => c,
        Err(e) => return Ok(Ended::Lost(e.to_string())),
    };
    // What the agent sends is gzip-compressed (fact reports shrink several times over); the
    // coordinator's small commands are not.
    let mut client = AgentServiceClient::new(channel)
        .max_decoding_message_size(rampart_proto::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(rampart_proto::MAX_MESSAGE_BYTES)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    // The queue is empty, so this cannot fail.
    while let Ok(e) = link.events.try_recv() {
        link.pending.push(e);
    }
    let _ = tx.try_send(hello(enrolment, config, link.pending.clone()));
    let mut inbound = match client.session(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(s) if is_refusal(&s) => {
            return Err(AgentError::SessionRefused(s.message().to_string()));
        }
        Err(s) => return Ok(Ended::Lost(format!("session refused: {}", s.message()))),
    };
    let welcome = match tokio::time::timeout(WELCOME_TIMEOUT, inbound.message()).await {
        Err(_) => return Ok(Ended::Lost("no Welcome from the coordinator".into())),
        Ok(Err(s)) if is_refusal(&s) => {
            return Err(AgentError::SessionRefused(s.message().to_string()));
        }
        Ok(Err(s)) => return Ok(Ended::Lost(s.message().to_string())),
        Ok(Ok(None)) => return Ok(Ended::Lost("the coordinator closed the session".into())),
        Ok(Ok(Some(m))) => m,
    };
    match welcome.body {
        Some(coordinator_message::Body::Welcome(w)) => {
            let skew_ms = (w.server_time_unix_ms - now_ms()).abs();
            if skew_ms > 60_000 {
                warn!(
                    skew_ms,
                    "this host's clock differs from the coordinator's by more than a minute"
                );
            }
            info!(agent = %w.agent_id, coordinator = %coordinators.current(), "session open");
            crate::metrics::global().sessions_opened.inc();
            crate::metrics::global().connected.set(1);
            link.pending.clear();
            // Network faults never cut this session, nor the way to the other coordinators:
            // they exclude where it goes.
            executor.faults.session_up(coordinators.resolve().await);
        }
        _ => {
            return Ok(Ended::Lost(
                "the coordinator did not start with Welcome".into(),
            ));
        }
    }
    backoff.reset();

    // Heartbeats have a task of their own: no command the loop runs (a remediation, a fault's
    // setup) can silence them long enough for the coordinator to drop the session.
    let _heartbeat = AbortOnDrop(tokio::spawn(heartbeat(
        tx.clone(),
        config.heartbeat_interval,
    )));
    let mut renewal = renewal::Renewal::new(&enrolment.cert_pem, config.state.is_some());
    // Host metrics, sampled only while a coordinator asked for them.
    let mut metrics: Option<crate::probes::metrics::Stream> = None;
    loop {
        tokio::select! {
            _ = async { metrics.as_mut().map(|m| m.interval.tick()).expect("guarded").await }, if metrics.is_some() => {
                let Some(m) = metrics.as_mut() else { continue };
                if Instant::now() >= m.until {
                    debug!("metric stream ended");
                    metrics = None;
                    continue;
                }
                let sample = AgentMessage { body: Some(agent_message::Body::Metrics(m.sampler.sample())) };
                if tx.send(sample).await.is_err() {
                    return Ok(Ended::Lost("session stream closed".into()));
                }
            }
            _ = renewal.due() => {
                match renewal.request(&enrolment.identity.agent_id) {
                    Ok(msg) => {
                        if tx.send(msg).await.is_err() {
                            return Ok(Ended::Lost("session stream closed".into()));
                        }
                    }
                    Err(e) => warn!(%e, "could not create a key for certificate renewal"),
                }
            }
            _ = cancel.cancelled() => {
                // Dropping the sender ends our half of the stream: the coordinator sees a clean close.
                drop(tx);
                return Ok(Ended::Shutdown);
            }
            Some(ev) = link.events.recv() => {
                let out = AgentMessage { body: Some(agent_message::Body::Fault(ev.clone())) };
                if tx.send(out).await.is_err() {
                    link.pending.push(ev);
                    return Ok(Ended::Lost("session stream closed".into()));
                }
            }
            msg = inbound.message() => match msg {
                Ok(Some(m)) => match m.body {
                    Some(coordinator_message::Body::Command(cmd)) if matches!(cmd.kind, Some(command::Kind::RunProbe(_))) => {
                        // Probes run beside other commands: a slow one must not delay a revert.
                        let Some(command::Kind::RunProbe(probe)) = cmd.kind else { continue };
                        let (tx, policy) = (tx.clone(), config.probes.clone());
                        tokio::spawn(async move {
                            let outcome = match crate::executor::expired(cmd.deadline_unix_ms) {
                                Some(expired) => expired,
                                None => command_result::Outcome::Probe(crate::probes::run(probe, &policy).await),
                            };
                            let result = CommandResult { command_id: cmd.id, outcome: Some(outcome) };
                            let _ = tx.send(AgentMessage { body: Some(agent_message::Body::Result(result)) }).await;
                        });
                    }
                    Some(coordinator_message::Body::Command(cmd)) if matches!(cmd.kind, Some(command::Kind::StreamMetrics(_))) => {
                        let Some(command::Kind::StreamMetrics(req)) = cmd.kind else { continue };
                        let outcome = match crate::probes::metrics::Stream::start(&req, metrics.take()) {
                            Some(mut m) => {
                                let first = m.sampler.sample();
                                metrics = Some(m);
                                command_result::Outcome::Metrics(first)
                            }
                            None => {
                                metrics = None;
                                command_result::Outcome::Metrics(Default::default())
                            }
                        };
                        let out = AgentMessage { body: Some(agent_message::Body::Result(CommandResult { command_id: cmd.id, outcome: Some(outcome) })) };
                        if tx.send(out).await.is_err() {
                            return Ok(Ended::Lost("session stream closed".into()));
                        }
                    }
                    Some(coordinator_message::Body::Command(cmd)) if matches!(cmd.kind, Some(command::Kind::CollectFacts(_))) => {
                        // The first collection walks the disk for seconds: it runs beside the loop
                        // so heartbeats, reverts and the emergency stop never wait for it.
                        let (tx, collector) = (tx.clone(), executor.fact_collector());
                        tokio::spawn(async move {
                            let result = collector.run(cmd).await;
                            let _ = tx.send(AgentMessage { body: Some(agent_message::Body::Result(result)) }).await;
                        });
                    }
                    Some(coordinator_message::Body::Command(cmd)) => {
                        let result = executor.execute(cmd).await;
                        let out = AgentMessage { body: Some(agent_message::Body::Result(result)) };
                        if tx.send(out).await.is_err() {
                            return Ok(Ended::Lost("session stream closed".into()));
                        }
                    }
                    Some(coordinator_message::Body::Renewed(r)) => {
                        if let Some(state) = &config.state {
                            renewal.received(r, state, enrolment);
                        }
                    }
                    _ => {}
                },
                Ok(None) => return Ok(Ended::Lost("the coordinator closed the session".into())),
                Err(s) if is_refusal(&s) => return Err(AgentError::SessionRefused(s.message().to_string())),
                Err(s) => return Ok(Ended::Lost(s.message().to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinators_rotate_from_a_random_start() {
        let mut starts = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut c = Coordinators::new("https://a:1, https://b:2,https://c:3");
            let first = c.current().to_string();
            starts.insert(first.clone());
            let order: Vec<String> = (0..3).map(|_| c.advance().to_string()).collect();
            assert_eq!(order[2], first, "back to the first after a full cycle");
            let mut seen = order.clone();
            seen.sort();
            assert_eq!(seen, ["https://a:1", "https://b:2", "https://c:3"]);
        }
        assert_eq!(starts.len(), 3, "agents spread over every coordinator");
        let mut one = Coordinators::new("https://only:7443");
        assert_eq!(one.advance(), "https://only:7443");
        assert!(tls::coordinator_list("https://a:1,ftp://b:2").is_err());
        assert!(tls::coordinator_list(" , ").is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(30));
        let mut last_step = Duration::ZERO;
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(30));
            last_step = last_step.max(d);
        }
        assert!(last_step >= Duration::from_secs(15), "{last_step:?}");
        b.reset();
        assert!(b.next_delay() <= INITIAL_BACKOFF);
    }
}
