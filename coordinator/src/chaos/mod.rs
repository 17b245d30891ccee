//! Chaos experiments and game days: reading their files (`spec`), the probes that watch the
//! steady state (`probes`), the run engine that injects, watches, halts and reverts (`run`), and
//! game days that run experiments in stages with approval gates (`gameday`).
//!
//! Owns: the runs going on in this coordinator, their abort and approval switches, and settling
//! the faults of runs a previous coordinator process left behind. Must not: touch a fault another
//! run (or an operator) injected — reverts go by fault id, never "revert everything" — or keep a
//! fault going without a duration the agent enforces itself.

pub mod gameday;
pub mod probes;
pub mod run;
pub mod spec;
pub mod targets;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_proto::v1::{ProbeSummary, RevertFault, RunFault, command, command_result};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::fleet::Fleet;
use crate::store::{Store, StoreError};

/// How long an agent gets to answer an inject or revert command from a run.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("{0}")]
    Invalid(#[from] spec::SpecErrors),
    #[error("no online agent matches {0:?}; see `rampart agents ls`")]
    NoTargets(String),
    #[error("no run or game day {0:?}; see `rampart experiment ls`")]
    NotFound(String),
    #[error("{0}")]
    State(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The switches of one run in progress.
#[derive(Debug, Default)]
pub struct Control {
    /// Cancelled to halt the run (abort, emergency stop, the game day's abort, shutdown).
    pub cancel: CancellationToken,
    /// Why it was halted, and by whom.
    reason: Mutex<Option<(String, String)>>,
    /// The game day this run belongs to: its abort reason applies when the run has none.
    parent: Option<Arc<Control>>,
    /// A game day's approval gate.
    approved: Notify,
    waiting: std::sync::atomic::AtomicBool,
    /// Probe summaries as they stand now (the store has them only at events).
    pub live_probes: Mutex<Vec<ProbeSummary>>,
}

impl Control {
    /// Why the run was halted and by whom, if it was.
    pub fn reason(&self) -> Option<(String, String)> {
        let own = self
            .reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        own.or_else(|| self.parent.as_ref().and_then(|p| p.reason()))
    }

    fn halt(&self, reason: &str, actor: &str) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some((reason.to_string(), actor.to_string()));
        }
        drop(r);
        self.cancel.cancel();
    }

    /// Waits at an approval gate until approved (true) or halted (false).
    pub async fn wait_for_approval(&self) -> bool {
        self.waiting
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let approved = tokio::select! {
            _ = self.approved.notified() => true,
            _ = self.cancel.cancelled() => false,
        };
        self.waiting
            .store(false, std::sync::atomic::Ordering::SeqCst);
        approved
    }
}

/// Runs in progress on this coordinator.
#[derive(Debug)]
pub struct Chaos {
    pub store: Store,
    pub fleet: Arc<Fleet>,
    active: Mutex<HashMap<String, Arc<Control>>>,
    /// Runs are halted when the coordinator shuts down.
    shutdown: CancellationToken,
}

impl Chaos {
    pub fn new(store: Store, fleet: Arc<Fleet>, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            store,
            fleet,
            active: Mutex::new(HashMap::new()),
            shutdown,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Control>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a run; a game day's experiments halt with it.
    fn register(&self, id: &str, parent: Option<Arc<Control>>) -> Arc<Control> {
        let cancel = match &parent {
            Some(p) => p.cancel.child_token(),
            None => self.shutdown.child_token(),
        };
        let control = Arc::new(Control {
            cancel,
            parent,
            ..Default::default()
        });
        self.lock().insert(id.to_string(), control.clone());
        control
    }

    fn unregister(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The switches of a run in progress.
    pub fn control(&self, id: &str) -> Option<Arc<Control>> {
        self.lock().get(id).cloned()
    }

    /// Halts a run or game day in progress; false when it is not running here.
    pub fn abort(&self, id: &str, reason: &str, actor: &str) -> bool {
        match self.control(id) {
            Some(c) => {
                c.halt(reason, actor);
                true
            }
            None => false,
        }
    }

    /// Halts every run in progress (the emergency stop); returns how many.
    pub fn abort_all(&self, reason: &str, actor: &str) -> usize {
        let all: Vec<Arc<Control>> = self.lock().values().cloned().collect();
        for c in &all {
            c.halt(reason, actor);
        }
        all.len()
    }

    /// Opens a game day's approval gate.
    pub fn approve(&self, id: &str) -> Result<(), ChaosError> {
        let c = self
            .control(id)
            .ok_or_else(|| ChaosError::State(format!("game day {id} is not running")))?;
        if !c.waiting.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ChaosError::State(format!(
                "game day {id} is not waiting for approval"
            )));
        }
        c.approved.notify_one();
        Ok(())
    }

    /// Called when an agent's session opens: reverts the faults of finished runs that the agent
    /// never confirmed (the coordinator stopped mid-run, or the agent was unreachable at the halt).
    pub async fn reconcile_agent(&self, agent_id: &str) {
        let open = match self.store.unsettled_run_faults(agent_id).await {
            Ok(o) => o,
            Err(err) => {
                warn!(%err, agent = %agent_id, "could not read faults of ended runs");
                return;
            }
        };
        for f in open {
            let answer = self
                .fleet
                .call(
                    agent_id,
                    command::Kind::RevertFault(RevertFault {
                        fault_id: f.fault_id.clone(),
                    }),
                    AGENT_TIMEOUT,
                )
                .await;
            let (state, detail) = match answer.map(|r| r.outcome) {
                Ok(Some(command_result::Outcome::Faults(rep))) => match rep.faults.first() {
                    Some(st) => (st.state.clone(), st.detail.clone()),
                    None => ("unknown".into(), "empty answer".into()),
                },
                // The agent does not hold it: never applied, or reverted and forgotten.
                Ok(Some(command_result::Outcome::Error(e))) if e.starts_with("no fault") => {
                    ("reverted".into(), format!("not on the agent: {e}"))
                }
                Ok(other) => ("unknown".into(), format!("unexpected answer {other:?}")),
                Err(e) => {
                    warn!(%e, agent = %agent_id, fault = %f.fault_id, "could not revert a fault of an ended run; will retry at its next session");
                    continue;
                }
            };
            let settled = state != "active" && state != "unknown";
            let rf = RunFault {
                agent_id: f.agent_id.clone(),
                hostname: f.hostname.clone(),
                fault_id: f.fault_id.clone(),
                state: state.clone(),
                detail: detail.clone(),
                ..Default::default()
            };
            if let Err(err) = self.store.update_run_fault_state(&rf, settled).await {
                warn!(%err, "could not record a revert");
            }
            let _ = self
                .store
                .add_run_event(
                    &f.run_id,
                    "revert",
                    &f.hostname,
                    &format!(
                        "{} {state} after the coordinator restarted: {detail}",
                        f.fault_id
                    ),
                    "coordinator",
                )
                .await;
            info!(agent = %agent_id, fault = %f.fault_id, %state, "fault of an ended run settled");
        }
    }
}

/// A fault command's answer as (state, detail).
pub(crate) fn fault_answer(
    answer: Result<rampart_proto::v1::CommandResult, crate::fleet::FleetError>,
) -> (String, String) {
    match answer {
        Ok(r) => match r.outcome {
            Some(command_result::Outcome::Faults(rep)) => match rep.faults.into_iter().next() {
                Some(st) => (st.state, st.detail),
                None => ("unknown".into(), "the agent answered with no fault".into()),
            },
            Some(command_result::Outcome::Error(e)) => ("unknown".into(), e),
            _ => (
                "unknown".into(),
                "the agent answered with something else".into(),
            ),
        },
        Err(e) => ("unknown".into(), e.to_string()),
    }
}

/// A run's fault as the fault table records it (so `rampart fault ls` shows it too).
pub(crate) fn fault_status(f: &RunFault) -> rampart_proto::v1::FaultStatus {
    rampart_proto::v1::FaultStatus {
        fault_id: f.fault_id.clone(),
        kind: f.kind.clone(),
        state: f.state.clone(),
        detail: f.detail.clone(),
        started_unix_ms: if f.state == "active" {
            rampart_common::time::now_ms()
        } else {
            0
        },
        ..Default::default()
    }
}
