//! Coordinators sharing one PostgreSQL database reach each other's agents through it. A command
//! for an agent whose session another coordinator holds is written to `relayed_commands`; the
//! holder, woken by a notification on its own channel (and polling in case one is missed), runs
//! it on the session and writes the result back; the origin, woken the same way, reads it and
//! deletes the row. Results are stored by the origin alone, as for its own agents.
//!
//! The same connection carries what is not a command: the emergency stop and run aborts and
//! approvals for runs another coordinator runs ([`PeerMessage`] on one channel all listen to),
//! and host-metric samples of agents whose metric stream another coordinator's run watches.
//!
//! Channels: `rampart_cmd_<id>` (a command id for holder `<id>`), `rampart_res_<id>` (an
//! answered command id for origin `<id>`), `rampart_met_<id>` (a metric sample for `<id>`) and
//! `rampart_peers` (a [`PeerMessage`] for everyone).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use rampart_common::time::now_ms;
use rampart_proto::v1::{Command, CommandResult, HostMetrics, command};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Fleet, FleetError};
use crate::store::{RelayAnswer, Store};

/// A coordinator not seen for this long is dead: it holds no sessions, its runs are settled.
pub const LEASE: Duration = Duration::from_secs(15);
/// How often a coordinator says it is alive and looks for dead ones.
pub const BEAT: Duration = Duration::from_secs(3);
/// How often the holder looks for commands and the origin for answers when no notification came
/// (one lost while the listening connection was being re-established).
const POLL: Duration = Duration::from_secs(2);
/// Metric samples waiting to be forwarded before new ones are dropped.
const METRIC_QUEUE: usize = 1024;
/// The channel every coordinator listens to.
const PEERS: &str = "rampart_peers";

/// A message for every coordinator of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum PeerMessage {
    /// The emergency stop: halt every run.
    Halt { reason: String, actor: String },
    /// Halt this run or game day if it runs here.
    Abort {
        run: String,
        reason: String,
        actor: String,
    },
    /// Open this game day's approval gate if it runs here.
    Approve { run: String, actor: String },
    /// Close this agent's session if it is here (it was revoked).
    Disconnect { agent: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    message: PeerMessage,
}

#[derive(Debug, Serialize, Deserialize)]
struct MetricSample {
    agent: String,
    /// Protobuf-encoded `HostMetrics`, hex.
    sample: String,
}

/// This coordinator's end of the relay.
#[derive(Debug)]
pub struct Relay {
    store: Store,
    me: String,
    next: AtomicU64,
    /// Origins waiting for an answer, by command id.
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
    /// Agents held here whose metric samples go to other coordinators.
    forward: Mutex<HashMap<String, HashSet<String>>>,
    metrics_tx: mpsc::Sender<(String, String)>,
    metrics_rx: Mutex<Option<mpsc::Receiver<(String, String)>>>,
    peers_tx: mpsc::UnboundedSender<PeerMessage>,
    peers_rx: Mutex<Option<mpsc::UnboundedReceiver<PeerMessage>>>,
    /// Wakes the task that claims relayed commands (a burst of notifications claims once).
    commands_waiting: Notify,
}

fn failed(kind: &str, e: &FleetError) -> RelayAnswer {
    RelayAnswer::Failed(kind.into(), e.to_string())
}

impl Relay {
    pub fn new(store: Store, me: String) -> Arc<Self> {
        let (metrics_tx, metrics_rx) = mpsc::channel(METRIC_QUEUE);
        let (peers_tx, peers_rx) = mpsc::unbounded_channel();
        Arc::new(Self {
            store,
            me,
            next: AtomicU64::new(0),
            waiting: Default::default(),
            forward: Default::default(),
            metrics_tx,
            metrics_rx: Mutex::new(Some(metrics_rx)),
            peers_tx,
            peers_rx: Mutex::new(Some(peers_rx)),
            commands_waiting: Notify::new(),
        })
    }

    /// This coordinator's id.
    pub fn id(&self) -> &str {
        &self.me
    }

    /// Messages from other coordinators, for the caller to act on; taken once.
    pub fn take_peer_messages(&self) -> Option<mpsc::UnboundedReceiver<PeerMessage>> {
        self.peers_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Tells every other coordinator.
    pub async fn broadcast(&self, message: PeerMessage) -> Result<(), crate::store::StoreError> {
        let envelope = Envelope {
            from: self.me.clone(),
            message,
        };
        let payload = serde_json::to_string(&envelope).unwrap_or_default();
        self.store.notify(PEERS, &payload).await
    }

    /// Whether another live coordinator holds the agent's session.
    pub async fn held_elsewhere(&self, agent_id: &str) -> bool {
        let cutoff = now_ms() - LEASE.as_millis() as i64;
        matches!(self.store.agent_holder(agent_id, cutoff).await, Ok(Some(h)) if h != self.me)
    }

    /// Runs `kind` on an agent whose session another live coordinator holds.
    pub async fn call(
        &self,
        agent_id: &str,
        kind: command::Kind,
        timeout: Duration,
    ) -> Result<CommandResult, FleetError> {
        let not_connected = || FleetError::NotConnected(agent_id.to_string());
        let relay_err = |e: crate::store::StoreError| FleetError::Relay(e.to_string());
        let cutoff = now_ms() - LEASE.as_millis() as i64;
        let holder = match self.store.agent_holder(agent_id, cutoff).await {
            Ok(Some(h)) if h != self.me => h,
            Ok(_) => return Err(not_connected()),
            Err(e) => return Err(relay_err(e)),
        };
        let id = format!(
            "{}-{}",
            self.me,
            self.next.fetch_add(1, Ordering::Relaxed) + 1
        );
        let command = Command {
            id: id.clone(),
            deadline_unix_ms: now_ms() + timeout.as_millis() as i64,
            kind: Some(kind),
        };
        let woken = Arc::new(Notify::new());
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone(), woken.clone());
        let outcome = tokio::time::timeout(timeout, async {
            self.store
                .relay_command(&id, agent_id, &holder, &self.me, &command.encode_to_vec())
                .await
                .map_err(relay_err)?;
            self.store
                .notify(&format!("rampart_cmd_{holder}"), &id)
                .await
                .map_err(relay_err)?;
            loop {
                tokio::select! {
                    _ = woken.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                if let Some(answer) = self.store.relayed_answer(&id).await.map_err(relay_err)? {
                    return Ok(answer);
                }
            }
        })
        .await;
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        if let Err(err) = self.store.drop_relayed(&id).await {
            debug!(%err, command = %id, "relayed command left for the purge");
        }
        match outcome {
            Err(_) => Err(FleetError::Timeout(agent_id.to_string(), id, timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(RelayAnswer::Result(bytes))) => CommandResult::decode(bytes.as_slice())
                .map_err(|e| FleetError::Relay(format!("undecodable relayed result: {e}"))),
            Ok(Ok(RelayAnswer::Failed(kind, message))) => Err(match kind.as_str() {
                "not_connected" => not_connected(),
                "timeout" => FleetError::Timeout(agent_id.to_string(), id, timeout),
                "closed" => FleetError::SessionClosed(agent_id.to_string()),
                _ => FleetError::Relay(message),
            }),
        }
    }

    /// Sends a sample of an agent held here to the coordinators whose runs watch it.
    pub fn forward_metrics(&self, agent_id: &str, sample: &HostMetrics) {
        let origins: Vec<String> = match self
            .forward
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent_id)
        {
            Some(o) => o.iter().cloned().collect(),
            None => return,
        };
        let payload = serde_json::to_string(&MetricSample {
            agent: agent_id.to_string(),
            sample: hex::encode(sample.encode_to_vec()),
        })
        .unwrap_or_default();
        for origin in origins {
            if self
                .metrics_tx
                .try_send((format!("rampart_met_{origin}"), payload.clone()))
                .is_err()
            {
                debug!(agent = %agent_id, "metric sample for another coordinator dropped (queue full)");
            }
        }
    }

    /// Runs commands relayed to this coordinator on its sessions and wakes origins waiting here,
    /// until `shutdown`. Needs the PostgreSQL URL for a listening connection of its own.
    pub async fn run(self: Arc<Self>, fleet: Arc<Fleet>, url: String, shutdown: CancellationToken) {
        if let Some(mut rx) = self
            .metrics_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let store = self.store.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    let (channel, payload) = tokio::select! {
                        _ = stop.cancelled() => break,
                        m = rx.recv() => match m { Some(m) => m, None => break },
                    };
                    if let Err(err) = store.notify(&channel, &payload).await {
                        debug!(%err, "metric sample not forwarded");
                    }
                }
            });
        }
        {
            let relay = self.clone();
            let fleet = fleet.clone();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut poll = tokio::time::interval(POLL);
                poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = relay.commands_waiting.notified() => {}
                        _ = poll.tick() => {}
                    }
                    relay.claim(&fleet).await;
                }
            });
        }
        let channels = [
            format!("rampart_cmd_{}", self.me),
            format!("rampart_res_{}", self.me),
            format!("rampart_met_{}", self.me),
            PEERS.to_string(),
        ];
        let mut listener: Option<PgListener> = None;
        loop {
            if listener.is_none() {
                match PgListener::connect(&url).await {
                    Ok(mut l) => {
                        let names: Vec<&str> = channels.iter().map(String::as_str).collect();
                        match l.listen_all(names).await {
                            Ok(()) => listener = Some(l),
                            Err(err) => warn!(%err, "cannot listen for other coordinators"),
                        }
                    }
                    Err(err) => {
                        warn!(%err, "cannot open the connection that listens for other coordinators; retrying")
                    }
                }
                // Whatever was sent while no one listened.
                self.commands_waiting.notify_one();
            }
            let received = async {
                match listener.as_mut() {
                    Some(l) => l.recv().await.map(Some),
                    None => {
                        tokio::time::sleep(POLL).await;
                        Ok(None)
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                n = received => match n {
                    Ok(Some(n)) => self.received(&fleet, n.channel(), n.payload()),
                    Ok(None) => {}
                    Err(err) => {
                        warn!(%err, "lost the connection that listens for other coordinators; reconnecting");
                        listener = None;
                    }
                },
            }
        }
    }

    fn received(&self, fleet: &Fleet, channel: &str, payload: &str) {
        if channel.starts_with("rampart_cmd_") {
            self.commands_waiting.notify_one();
        } else if channel.starts_with("rampart_res_") {
            if let Some(w) = self
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(payload)
            {
                w.notify_one();
            }
        } else if channel.starts_with("rampart_met_") {
            let Ok(m) = serde_json::from_str::<MetricSample>(payload) else {
                return;
            };
            let sample = hex::decode(&m.sample)
                .ok()
                .and_then(|b| HostMetrics::decode(b.as_slice()).ok());
            if let Some(sample) = sample {
                fleet.record_metrics_here(&m.agent, sample);
            }
        } else if channel == PEERS {
            match serde_json::from_str::<Envelope>(payload) {
                Ok(e) if e.from != self.me => {
                    let _ = self.peers_tx.send(e.message);
                }
                Ok(_) => {}
                Err(err) => warn!(%err, "unreadable message from another coordinator"),
            }
        }
    }

    /// Claims the commands queued for this coordinator and starts each on its session.
    async fn claim(self: &Arc<Self>, fleet: &Arc<Fleet>) {
        let claimed = match self.store.claim_relayed(&self.me).await {
            Ok(c) => c,
            Err(err) => {
                warn!(%err, "cannot read commands relayed by other coordinators");
                return;
            }
        };
        for c in claimed {
            let relay = self.clone();
            let fleet = fleet.clone();
            tokio::spawn(async move {
                let answer = relay
                    .run_relayed(&fleet, &c.agent_id, &c.origin, &c.command)
                    .await;
                if let Err(err) = relay.store.answer_relayed(&c.id, &answer).await {
                    warn!(%err, command = %c.id, "cannot store the answer to a relayed command");
                    return;
                }
                if let Err(err) = relay
                    .store
                    .notify(&format!("rampart_res_{}", c.origin), &c.id)
                    .await
                {
                    debug!(%err, "origin not notified; it polls");
                }
            });
        }
    }

    async fn run_relayed(
        &self,
        fleet: &Fleet,
        agent_id: &str,
        origin: &str,
        command: &[u8],
    ) -> RelayAnswer {
        let Ok(Command {
            deadline_unix_ms,
            kind: Some(kind),
            ..
        }) = Command::decode(command)
        else {
            return RelayAnswer::Failed("invalid".into(), "undecodable relayed command".into());
        };
        let left = deadline_unix_ms - now_ms();
        if left <= 0 {
            return RelayAnswer::Failed("timeout".into(), "the command's deadline passed".into());
        }
        if let command::Kind::StreamMetrics(s) = &kind {
            let mut forward = self.forward.lock().unwrap_or_else(|p| p.into_inner());
            let origins = forward.entry(agent_id.to_string()).or_default();
            if s.duration_ms > 0 {
                origins.insert(origin.to_string());
            } else {
                origins.remove(origin);
                if origins.is_empty() {
                    forward.remove(agent_id);
                }
            }
        }
        match fleet
            .call_here(agent_id, kind, Duration::from_millis(left as u64))
            .await
        {
            Ok(r) => RelayAnswer::Result(r.encode_to_vec()),
            Err(e @ FleetError::NotConnected(_)) => failed("not_connected", &e),
            Err(e @ FleetError::Timeout(..)) => failed("timeout", &e),
            Err(e @ FleetError::SessionClosed(_)) => failed("closed", &e),
            Err(e @ FleetError::Relay(_)) => failed("relay", &e),
        }
    }
}
