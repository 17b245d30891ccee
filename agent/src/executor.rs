//! Running the coordinator's commands: each kind to its module (facts, remediation, faults,
//! probes), results bounded in size, and recent results remembered so that a command re-sent
//! with the same id is answered without running twice.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use rampart_common::time::now_ms;
use rampart_proto::v1::{Command, CommandResult, Pong, command, command_result};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

/// Results remembered so that a re-sent command id gets the same answer without running twice.
const REMEMBERED_RESULTS: usize = 256;

/// Runs commands, remembering recent results so a repeated id is answered, not re-run.
#[derive(Debug)]
pub struct Executor {
    recent: VecDeque<CommandResult>,
    facts: FactCollector,
    remediation: crate::remediate::Remediator,
    pub(crate) faults: crate::faults::Faults,
}

/// The error a command whose deadline (`deadline_unix_ms`, 0 for none) passed before it arrived
/// gets instead of running.
pub(crate) fn expired(deadline_unix_ms: i64) -> Option<command_result::Outcome> {
    (deadline_unix_ms > 0 && now_ms() > deadline_unix_ms).then(|| {
        command_result::Outcome::Error(
            "the command's deadline passed before the agent received it".into(),
        )
    })
}

/// Collects facts for one command at a time, apart from the session loop: the first collection
/// walks the filesystem for seconds, and heartbeats, reverts and the emergency stop must not queue
/// behind it.
#[derive(Debug, Clone)]
pub struct FactCollector {
    source: crate::facts::FactSource,
    /// One collection at a time: a second request waits rather than walking the disk twice.
    gate: Arc<Semaphore>,
}

impl FactCollector {
    /// Runs a `CollectFacts` command to its bounded result.
    pub async fn run(self, cmd: Command) -> CommandResult {
        let started = Instant::now();
        let outcome = match (expired(cmd.deadline_unix_ms), cmd.kind) {
            (Some(expired), _) => expired,
            (None, Some(command::Kind::CollectFacts(req))) => self.outcome(req).await,
            (None, _) => command_result::Outcome::Error("not a fact collection".into()),
        };
        let ok = !matches!(outcome, command_result::Outcome::Error(_));
        crate::metrics::global().command("collect_facts", ok, started.elapsed());
        bounded(CommandResult {
            command_id: cmd.id,
            outcome: Some(outcome),
        })
    }

    async fn outcome(&self, req: rampart_proto::v1::CollectFacts) -> command_result::Outcome {
        let _turn = self.gate.clone().acquire_owned().await;
        let source = self.source.clone();
        match tokio::task::spawn_blocking(move || crate::facts::collect(&source, &req.file_paths))
            .await
        {
            Ok(report) => command_result::Outcome::Facts(report),
            Err(e) => command_result::Outcome::Error(format!("fact collection failed: {e}")),
        }
    }
}

impl Executor {
    /// A handle that collects facts outside the session loop.
    pub fn fact_collector(&self) -> FactCollector {
        self.facts.clone()
    }

    pub fn new(
        facts: crate::facts::FactSource,
        remediation: crate::remediate::Remediator,
        faults: crate::faults::Faults,
    ) -> Self {
        Self {
            recent: VecDeque::new(),
            facts: FactCollector {
                source: facts,
                gate: Arc::new(Semaphore::new(1)),
            },
            remediation,
            faults,
        }
    }

    pub async fn execute(&mut self, cmd: Command) -> CommandResult {
        let kind = cmd
            .kind
            .as_ref()
            .map(rampart_common::metrics::command_kind)
            .unwrap_or_else(|| "none".into());
        let started = Instant::now();
        let result = self.execute_inner(cmd).await;
        let ok = !matches!(result.outcome, Some(command_result::Outcome::Error(_)));
        crate::metrics::global().command(&kind, ok, started.elapsed());
        result
    }

    async fn execute_inner(&mut self, cmd: Command) -> CommandResult {
        if let Some(done) = self.recent.iter().find(|r| r.command_id == cmd.id) {
            debug!(command = %cmd.id, "command seen before; answering with the recorded result");
            return done.clone();
        }
        let mut remember = true;
        let outcome = if let Some(expired) = expired(cmd.deadline_unix_ms) {
            expired
        } else {
            match cmd.kind {
                Some(command::Kind::Ping(p)) => {
                    command_result::Outcome::Pong(Pong { payload: p.payload })
                }
                Some(command::Kind::CollectFacts(req)) => {
                    // Read-only and possibly large: collected again if repeated, never kept.
                    remember = false;
                    self.fact_collector().outcome(req).await
                }
                Some(command::Kind::Remediate(req)) => {
                    let r = self.remediation.clone();
                    blocking(move || {
                        let action = req.action.unwrap_or_default();
                        r.remediate(&req.run_id, &req.rule, &action, req.apply)
                    })
                    .await
                }
                Some(command::Kind::RollbackRemediation(req)) => {
                    let r = self.remediation.clone();
                    blocking(move || r.rollback(&req.run_id)).await
                }
                Some(command::Kind::InjectFault(f)) => {
                    remember = false;
                    report(vec![self.faults.inject(f).await])
                }
                Some(command::Kind::RevertFault(r)) => {
                    remember = false;
                    match self.faults.revert(&r.fault_id, "request").await {
                        Some(st) => report(vec![st]),
                        None => command_result::Outcome::Error(format!(
                            "no fault {:?} on this agent",
                            r.fault_id
                        )),
                    }
                }
                Some(command::Kind::RevertAll(_)) => {
                    remember = false;
                    report(self.faults.revert_all("request").await)
                }
                Some(command::Kind::ListFaults(_)) => {
                    remember = false;
                    report(self.faults.list())
                }
                // Handled by the session loop (they run beside other commands).
                Some(command::Kind::RunProbe(_) | command::Kind::StreamMetrics(_)) => {
                    remember = false;
                    command_result::Outcome::Error("probes run only on a live session".into())
                }
                None => command_result::Outcome::Error(
                    "unknown command kind: this agent may be older than the coordinator".into(),
                ),
            }
        };
        let result = bounded(CommandResult {
            command_id: cmd.id,
            outcome: Some(outcome),
        });
        if remember {
            if self.recent.len() == REMEMBERED_RESULTS {
                self.recent.pop_front();
            }
            self.recent.push_back(result.clone());
        }
        result
    }
}

/// Room left in a message for the envelope around a result.
const ENVELOPE_BYTES: usize = 64 * 1024;

/// A result too large for one message would break the session (the stream fails with a protocol
/// error and the coordinator waits in vain): it becomes an error that says how large it was and,
/// for facts, which collectors are to blame, so the coordinator can say so at once.
pub fn bounded(result: CommandResult) -> CommandResult {
    use prost::Message;
    let limit = rampart_proto::MAX_MESSAGE_BYTES - ENVELOPE_BYTES;
    let size = result.encoded_len();
    if size <= limit {
        return result;
    }
    let blame = match &result.outcome {
        Some(command_result::Outcome::Facts(r)) => {
            let mut parts = crate::facts::sizes(r);
            parts.sort_by_key(|p| std::cmp::Reverse(p.1));
            let top: Vec<String> = parts
                .iter()
                .take(3)
                .map(|(name, bytes)| format!("{name} {bytes} B"))
                .collect();
            format!("; largest collectors: {}", top.join(", "))
        }
        _ => String::new(),
    };
    warn!(command = %result.command_id, size, limit, "result too large for one message");
    CommandResult {
        command_id: result.command_id,
        outcome: Some(command_result::Outcome::Error(format!(
            "the result is {size} bytes, over the {limit}-byte message limit{blame}"
        ))),
    }
}

fn report(faults: Vec<rampart_proto::v1::FaultStatus>) -> command_result::Outcome {
    command_result::Outcome::Faults(rampart_proto::v1::FaultReport { faults })
}

/// Runs a remediation step off the async thread and turns it into a command outcome.
async fn blocking(
    f: impl FnOnce() -> Result<rampart_proto::v1::RemediationOutcome, crate::remediate::RemediateError>
    + Send
    + 'static,
) -> command_result::Outcome {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(outcome)) => command_result::Outcome::Remediation(outcome),
        Ok(Err(e)) => command_result::Outcome::Error(e.to_string()),
        Err(e) => command_result::Outcome::Error(format!("remediation task failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_proto::v1::Ping;

    #[tokio::test]
    async fn repeated_command_ids_are_answered_once() {
        let source = crate::facts::FactSource::fixture("/nonexistent");
        let mut e = Executor::new(
            source.clone(),
            crate::remediate::Remediator {
                source,
                state_dir: "/nonexistent".into(),
                enabled: false,
            },
            crate::faults::Faults::new(
                crate::faults::FaultPolicy::default(),
                std::path::Path::new("/nonexistent"),
                Vec::new(),
            ),
        );
        let cmd = |id: &str, payload: &str| Command {
            id: id.into(),
            deadline_unix_ms: now_ms() + 10_000,
            kind: Some(command::Kind::Ping(Ping {
                payload: payload.into(),
            })),
        };
        let first = e.execute(cmd("c1", "a")).await;
        let again = e.execute(cmd("c1", "b")).await;
        assert_eq!(first, again);
        let late = e
            .execute(Command {
                deadline_unix_ms: 1,
                ..cmd("c2", "x")
            })
            .await;
        assert!(matches!(
            late.outcome,
            Some(command_result::Outcome::Error(_))
        ));
    }

    #[test]
    fn a_command_is_expired_only_past_a_deadline_it_has() {
        assert_eq!(expired(0), None, "0 is no deadline");
        assert_eq!(expired(now_ms() + 10_000), None);
        assert!(matches!(
            expired(1),
            Some(command_result::Outcome::Error(e)) if e.contains("deadline passed")
        ));
    }
}
