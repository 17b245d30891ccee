//! The live fleet: which agents have a session right now, sending commands down those sessions
//! and matching their results. Persistent agent records live in the store; this module keeps only
//! what exists while a session is open.

pub mod heartbeats;
pub mod relay;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_common::time::now_ms;
use rampart_proto::v1::{Command, CommandResult, CoordinatorMessage, coordinator_message};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Outbound messages queued per session before senders wait: commands are small and rare.
pub const SESSION_QUEUE: usize = 64;

/// What a session's queue carries. Boxed: the queue allocates its slots 32 at a time when it is
/// created, and a slot of the bare message (208 bytes) made that 6.5 KiB for every agent.
pub type Outbound = Result<Box<CoordinatorMessage>, tonic::Status>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FleetError {
    #[error("agent {0} has no open session (it is offline); check `rampart agents show {0}`")]
    NotConnected(String),
    #[error("agent {0} did not answer command {1} within {2:?}")]
    Timeout(String, String, Duration),
    #[error("agent {0} closed its session before answering")]
    SessionClosed(String),
    #[error("cannot reach the coordinator holding the agent's session: {0}")]
    Relay(String),
}

/// The coordinator's end of one agent session.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    /// Distinguishes a session from the one that replaced it.
    pub session_id: u64,
    tx: mpsc::Sender<Outbound>,
    /// Cancelled to end the session (revocation, replacement, shutdown).
    pub cancel: CancellationToken,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<CommandResult>>>>,
}

impl SessionHandle {
    /// Ends the session with `status` sent to the agent as the stream's final error.
    pub fn close(&self, status: tonic::Status) {
        let _ = self.tx.try_send(Err(status));
        self.cancel.cancel();
    }

    /// Queues a message without waiting; false when the queue is full or the session is gone.
    pub fn try_send(&self, msg: CoordinatorMessage) -> bool {
        self.tx.try_send(Ok(Box::new(msg))).is_ok()
    }

    /// Hands a result from the agent to whoever waits for it. Unknown ids (late answers after a
    /// timeout) are dropped.
    pub fn complete(&self, result: CommandResult) -> bool {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&result.command_id);
        waiter.map(|w| w.send(result).is_ok()).unwrap_or(false)
    }
}

/// Registry of open sessions.
#[derive(Debug, Default)]
pub struct Fleet {
    sessions: Mutex<HashMap<String, SessionHandle>>,
    /// The latest host-metrics sample of each agent streaming them (only while an experiment
    /// watches it), with when it arrived.
    metrics: Mutex<HashMap<String, (std::time::Instant, rampart_proto::v1::HostMetrics)>>,
    /// How many runs watch each agent's metrics: its stream stops when the last one is done.
    metric_watchers: Mutex<HashMap<String, usize>>,
    next_session: AtomicU64,
    next_command: AtomicU64,
    /// Heartbeats waiting to be written to the store.
    pub heartbeats: heartbeats::Heartbeats,
    /// How many sessions the open-files limit leaves room for (0: not known).
    capacity: AtomicUsize,
    /// Set once the near-the-limit warning was logged; cleared when sessions fall back.
    near_limit: AtomicBool,
    /// Reaches agents whose sessions other coordinators hold (PostgreSQL deployments).
    relay: std::sync::OnceLock<Arc<relay::Relay>>,
}

impl Fleet {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Routes commands for agents without a session here through `relay`.
    pub fn set_relay(&self, relay: Arc<relay::Relay>) {
        let _ = self.relay.set(relay);
    }

    /// The relay to other coordinators, when there are any.
    pub fn relay(&self) -> Option<&Arc<relay::Relay>> {
        self.relay.get()
    }

    /// Whether a command to an online agent can be tried: its session is here, or another
    /// coordinator may hold it.
    pub fn reachable(&self, agent_id: &str) -> bool {
        self.relay.get().is_some() || self.get(agent_id).is_some()
    }

    /// The agents with a session here.
    pub fn held(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Sets how many sessions the open-files limit leaves room for; [`Fleet::open`] warns from 90 %.
    pub fn set_capacity(&self, sessions: usize) {
        self.capacity.store(sessions, Ordering::Relaxed);
    }

    /// Logs a warning when open sessions reach 90 % of what the open-files limit allows, once
    /// until they fall below 80 % again.
    fn check_capacity(&self, open: usize) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        if capacity == 0 {
            return;
        }
        if open * 10 >= capacity * 9 {
            if !self.near_limit.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    sessions = open,
                    room_for = capacity,
                    "agent sessions are near what the open-files limit allows; beyond it new sessions are refused: raise LimitNOFILE or spread agents over more coordinators"
                );
            }
        } else if open * 10 < capacity * 8 {
            self.near_limit.store(false, Ordering::Relaxed);
        }
    }

    /// Registers a new session for `agent_id`, closing any previous one (an agent has at most one).
    /// Returns the handle and the receiver feeding the outbound stream.
    pub fn open(
        &self,
        agent_id: &str,
        parent: &CancellationToken,
    ) -> (SessionHandle, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        let handle = SessionHandle {
            session_id: self.next_session.fetch_add(1, Ordering::Relaxed) + 1,
            tx,
            cancel: parent.child_token(),
            pending: Default::default(),
        };
        let (old, open) = {
            let mut map = self.lock();
            let old = map.insert(agent_id.to_string(), handle.clone());
            (old, map.len())
        };
        self.check_capacity(open);
        if let Some(old) = old {
            old.close(tonic::Status::aborted(
                "replaced by a newer session of the same agent",
            ));
        }
        (handle, rx)
    }

    /// Forgets the session if it is still the current one for the agent.
    pub fn remove(&self, agent_id: &str, session_id: u64) -> bool {
        let mut map = self.lock();
        if map.get(agent_id).map(|h| h.session_id) == Some(session_id) {
            map.remove(agent_id);
            let open = map.len();
            drop(map);
            self.check_capacity(open);
            true
        } else {
            false
        }
    }

    /// The open session of an agent.
    pub fn get(&self, agent_id: &str) -> Option<SessionHandle> {
        self.lock().get(agent_id).cloned()
    }

    /// Closes an agent's session; true if one was open.
    pub fn disconnect(&self, agent_id: &str, status: tonic::Status) -> bool {
        match self.lock().remove(agent_id) {
            Some(h) => {
                h.close(status);
                true
            }
            None => false,
        }
    }

    /// Keeps an agent's latest metrics sample, and sends it on to other coordinators whose runs
    /// watch the agent.
    pub fn record_metrics(&self, agent_id: &str, m: rampart_proto::v1::HostMetrics) {
        if let Some(relay) = self.relay.get() {
            relay.forward_metrics(agent_id, &m);
        }
        self.record_metrics_here(agent_id, m);
    }

    /// Keeps an agent's latest metrics sample.
    pub fn record_metrics_here(&self, agent_id: &str, m: rampart_proto::v1::HostMetrics) {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(agent_id.to_string(), (std::time::Instant::now(), m));
    }

    /// An agent's latest metrics sample and when it arrived.
    pub fn metrics(
        &self,
        agent_id: &str,
    ) -> Option<(std::time::Instant, rampart_proto::v1::HostMetrics)> {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent_id)
            .cloned()
    }

    /// One more run watches an agent's metrics.
    pub fn watch_metrics(&self, agent_id: &str) {
        *self
            .metric_watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(agent_id.to_string())
            .or_default() += 1;
    }

    /// One run stops watching; returns how many still do.
    pub fn unwatch_metrics(&self, agent_id: &str) -> usize {
        let mut w = self
            .metric_watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let left = w.get(agent_id).copied().unwrap_or(0).saturating_sub(1);
        if left == 0 {
            w.remove(agent_id);
        } else {
            w.insert(agent_id.to_string(), left);
        }
        left
    }

    /// Forgets an agent's metrics (its stream ended).
    pub fn forget_metrics(&self, agent_id: &str) {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(agent_id);
    }

    /// How many sessions are open.
    pub fn connected(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a command to an agent and waits for its result (at most `timeout`, which is also the
    /// command's deadline). An agent whose session another coordinator holds is reached through
    /// the relay.
    pub async fn call(
        &self,
        agent_id: &str,
        kind: rampart_proto::v1::command::Kind,
        timeout: Duration,
    ) -> Result<CommandResult, FleetError> {
        match (self.get(agent_id), self.relay.get()) {
            (Some(handle), _) => self.call_session(&handle, agent_id, kind, timeout).await,
            (None, Some(relay)) => {
                let kind_label = crate::web::metrics::command_kind(&kind);
                let started = std::time::Instant::now();
                let result = relay.call(agent_id, kind, timeout).await;
                crate::web::metrics::global().command(
                    &kind_label,
                    result_label(&result),
                    started.elapsed(),
                );
                result
            }
            (None, None) => Err(FleetError::NotConnected(agent_id.to_string())),
        }
    }

    /// Sends a command to an agent whose session is on this coordinator.
    pub async fn call_here(
        &self,
        agent_id: &str,
        kind: rampart_proto::v1::command::Kind,
        timeout: Duration,
    ) -> Result<CommandResult, FleetError> {
        let handle = self
            .get(agent_id)
            .ok_or_else(|| FleetError::NotConnected(agent_id.to_string()))?;
        self.call_session(&handle, agent_id, kind, timeout).await
    }

    async fn call_session(
        &self,
        handle: &SessionHandle,
        agent_id: &str,
        kind: rampart_proto::v1::command::Kind,
        timeout: Duration,
    ) -> Result<CommandResult, FleetError> {
        let id = format!(
            "cmd-{}",
            self.next_command.fetch_add(1, Ordering::Relaxed) + 1
        );
        let kind_label = crate::web::metrics::command_kind(&kind);
        let started = std::time::Instant::now();
        let (done_tx, done_rx) = oneshot::channel();
        handle
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), done_tx);
        let command = Command {
            id: id.clone(),
            deadline_unix_ms: now_ms() + timeout.as_millis() as i64,
            kind: Some(kind),
        };
        let msg = CoordinatorMessage {
            body: Some(coordinator_message::Body::Command(command)),
        };
        let outcome = tokio::time::timeout(timeout, async {
            handle
                .tx
                .send(Ok(Box::new(msg)))
                .await
                .map_err(|_| FleetError::SessionClosed(agent_id.to_string()))?;
            // A session that ends (heartbeats lost, agent gone, replaced) answers its waiters
            // at once, rather than at their timeouts.
            tokio::select! {
                biased;
                r = done_rx => r.map_err(|_| FleetError::SessionClosed(agent_id.to_string())),
                _ = handle.cancel.cancelled() => Err(FleetError::SessionClosed(agent_id.to_string())),
            }
        })
        .await;
        handle
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let result = match outcome {
            Ok(r) => r,
            Err(_) => Err(FleetError::Timeout(agent_id.to_string(), id, timeout)),
        };
        crate::web::metrics::global().command(
            &kind_label,
            result_label(&result),
            started.elapsed(),
        );
        result
    }
}

/// A command's outcome as the metrics label it.
fn result_label(result: &Result<CommandResult, FleetError>) -> &'static str {
    match result {
        Ok(r)
            if matches!(
                r.outcome,
                Some(rampart_proto::v1::command_result::Outcome::Error(_))
            ) =>
        {
            "error"
        }
        Ok(_) => "ok",
        Err(FleetError::Timeout(..)) => "timeout",
        Err(_) => "closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_proto::v1::{Ping, Pong, command, command_result};

    #[tokio::test]
    async fn call_matches_results_by_id() {
        let fleet = Fleet::new();
        let root = CancellationToken::new();
        let (handle, mut rx) = fleet.open("a1", &root);
        let agent = tokio::spawn(async move {
            let msg = rx.recv().await.unwrap().unwrap();
            let Some(coordinator_message::Body::Command(cmd)) = msg.body else {
                panic!("not a command")
            };
            let Some(command::Kind::Ping(p)) = cmd.kind else {
                panic!("not a ping")
            };
            assert!(cmd.deadline_unix_ms > now_ms());
            handle.complete(CommandResult {
                command_id: cmd.id,
                outcome: Some(command_result::Outcome::Pong(Pong { payload: p.payload })),
            });
        });
        let r = fleet
            .call(
                "a1",
                command::Kind::Ping(Ping {
                    payload: "x".into(),
                }),
                Duration::from_secs(2),
            )
            .await
            .unwrap();
        assert_eq!(
            r.outcome,
            Some(command_result::Outcome::Pong(Pong {
                payload: "x".into()
            }))
        );
        agent.await.unwrap();
    }

    #[tokio::test]
    async fn unanswered_and_missing_sessions_fail_clearly() {
        let fleet = Fleet::new();
        let root = CancellationToken::new();
        let err = fleet
            .call(
                "nobody",
                command::Kind::Ping(Ping::default()),
                Duration::from_millis(50),
            )
            .await
            .unwrap_err();
        assert_eq!(err, FleetError::NotConnected("nobody".into()));
        let (_h, _rx) = fleet.open("a1", &root);
        let err = fleet
            .call(
                "a1",
                command::Kind::Ping(Ping::default()),
                Duration::from_millis(50),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, FleetError::Timeout(..)));
    }

    #[tokio::test]
    async fn a_session_that_ends_answers_its_waiters_at_once() {
        let fleet = std::sync::Arc::new(Fleet::new());
        let root = CancellationToken::new();
        let (handle, mut rx) = fleet.open("a1", &root);
        let f = fleet.clone();
        let waiter = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = f
                .call(
                    "a1",
                    command::Kind::Ping(Ping::default()),
                    Duration::from_secs(60),
                )
                .await;
            (r, started.elapsed())
        });
        // The command went out; the session then ends without an answer (heartbeats lost).
        assert!(rx.recv().await.is_some());
        handle.cancel.cancel();
        let (r, took) = waiter.await.unwrap();
        assert_eq!(r.unwrap_err(), FleetError::SessionClosed("a1".into()));
        assert!(took < Duration::from_secs(30), "waited {took:?}");
    }

    #[test]
    fn a_metric_stream_stops_only_when_its_last_watcher_is_done() {
        let fleet = Fleet::new();
        fleet.watch_metrics("a1");
        fleet.watch_metrics("a1");
        fleet.watch_metrics("a2");
        assert_eq!(
            fleet.unwatch_metrics("a1"),
            1,
            "another run still watches a1"
        );
        assert_eq!(fleet.unwatch_metrics("a1"), 0);
        assert_eq!(fleet.unwatch_metrics("a1"), 0, "never below zero");
        assert_eq!(fleet.unwatch_metrics("a2"), 0);
    }

    #[tokio::test]
    async fn a_new_session_replaces_the_old() {
        let fleet = Fleet::new();
        let root = CancellationToken::new();
        let (old, _rx1) = fleet.open("a1", &root);
        let (new, _rx2) = fleet.open("a1", &root);
        assert!(old.cancel.is_cancelled());
        assert!(!fleet.remove("a1", old.session_id));
        assert_eq!(fleet.connected(), 1);
        assert!(fleet.remove("a1", new.session_id));
    }
}
