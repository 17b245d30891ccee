//! The experiment run engine: pick and record targets → check the hypothesis (refuse to start if
//! it already fails) → inject each step at its offset → watch every probe → halt on a broken
//! tolerance, `max_duration`, an abort or the emergency stop, reverting every fault of the run and
//! waiting for each confirmation → check the hypothesis again and time the recovery → verdict.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rampart_common::labels::Selector;
use rampart_common::time::now_ms;
use rampart_proto::v1::{
    InjectFault, ProbeResult, ProbeSummary, RevertFault, Run, RunFault, command, command_result,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::probes::{Place, check};
use super::spec::{Experiment, Source};
use super::{AGENT_TIMEOUT, Chaos, ChaosError, Control, fault_answer, fault_status};
use crate::store::AgentState;

/// How long the hypothesis may take to hold again after the last revert before the run counts
/// as `failed` (the system did not recover).
pub const RECOVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// Agents commanded at once.
const CONCURRENCY: usize = 256;
/// Metric streams outlive the run's own deadline by this much, then stop by themselves.
const METRICS_GRACE: Duration = Duration::from_secs(30);

/// A probe at one place, with its running tally.
#[derive(Debug, Clone)]
struct Instance {
    probe: usize,
    place: Place,
    consecutive: u32,
}

/// Records the run and starts it; the handle yields the finished run.
pub async fn launch(
    chaos: &Arc<Chaos>,
    e: Experiment,
    mut run: Run,
    parent: Option<Arc<Control>>,
) -> Result<(Run, tokio::task::JoinHandle<Run>), ChaosError> {
    chaos.store.insert_run(&run).await?;
    let control = chaos.register(&run.id, parent);
    let names: Vec<&str> = run.targets.iter().map(|t| t.hostname.as_str()).collect();
    event(
        chaos,
        &run.id,
        "targets",
        "",
        &format!("{} target(s): {}", names.len(), names.join(", ")),
        "",
    )
    .await;
    run.state = "running".into();
    let snapshot = run.clone();
    let chaos = chaos.clone();
    let handle = tokio::spawn(async move {
        let id = run.id.clone();
        let mut engine = Engine {
            chaos: chaos.clone(),
            control,
            e,
            run,
            instances: Vec::new(),
            violation: None,
        };
        engine.execute().await;
        chaos.unregister(&id);
        engine.run
    });
    Ok((snapshot, handle))
}

/// Appends to a run's timeline; a timeline write that fails is logged, the run goes on (its
/// faults' safety does not depend on the timeline).
pub async fn event(chaos: &Chaos, run_id: &str, kind: &str, host: &str, detail: &str, actor: &str) {
    if let Err(err) = chaos
        .store
        .add_run_event(run_id, kind, host, detail, actor)
        .await
    {
        warn!(%err, run = %run_id, "could not record a timeline event");
    }
}

struct Engine {
    chaos: Arc<Chaos>,
    control: Arc<Control>,
    e: Experiment,
    run: Run,
    instances: Vec<Instance>,
    /// When the probe result that broke a tolerance arrived.
    violation: Option<Instant>,
}

impl Engine {
    async fn event(&self, kind: &str, host: &str, detail: &str) {
        event(&self.chaos, &self.run.id, kind, host, detail, "").await;
    }

    async fn save(&mut self) {
        self.run.probes = self
            .control
            .live_probes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Err(err) = self.chaos.store.update_run(&self.run).await {
            warn!(%err, run = %self.run.id, "could not save the run");
        }
    }

    /// Probe instances: each probe at each place it runs from.
    async fn instances(&mut self) -> Result<(), String> {
        let agents = self.chaos.store.agents().await.map_err(|e| e.to_string())?;
        let mut summaries = Vec::new();
        for (i, p) in self.e.hypothesis.iter().enumerate() {
            let places: Vec<Place> = match &p.from {
                Source::Coordinator => vec![Place::Coordinator],
                Source::Targets => self
                    .run
                    .targets
                    .iter()
                    .map(|t| Place::Agent {
                        id: t.agent_id.clone(),
                        hostname: t.hostname.clone(),
                    })
                    .collect(),
                Source::Agents(sel) => {
                    let sel = Selector::parse(sel)?;
                    agents
                        .iter()
                        .filter(|a| a.state == AgentState::Online && sel.matches(&a.labels))
                        .map(|a| Place::Agent {
                            id: a.id.clone(),
                            hostname: a.hostname.clone(),
                        })
                        .collect()
                }
            };
            if places.is_empty() {
                return Err(format!(
                    "probe {:?}: no online agent matches its `from` selector",
                    p.name
                ));
            }
            for place in places {
                summaries.push(ProbeSummary {
                    name: p.name.clone(),
                    kind: p.check.kind().into(),
                    source: place.label().into(),
                    ..Default::default()
                });
                self.instances.push(Instance {
                    probe: i,
                    place,
                    consecutive: 0,
                });
            }
        }
        *self
            .control
            .live_probes
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = summaries;
        Ok(())
    }

    /// Counts a result; returns true when it broke the probe's tolerance.
    fn tally(&mut self, idx: usize, r: &ProbeResult) -> (bool, bool) {
        let tolerance = self.e.hypothesis[self.instances[idx].probe].tolerance;
        let inst = &mut self.instances[idx];
        let mut summaries = self
            .control
            .live_probes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let s = &mut summaries[idx];
        let changed = s.checks == 0 || s.last_ok != r.ok;
        s.checks += 1;
        s.last_ok = r.ok;
        s.last_detail = r.detail.clone();
        if r.ok {
            inst.consecutive = 0;
        } else {
            s.misses += 1;
            inst.consecutive += 1;
            s.max_consecutive = s.max_consecutive.max(inst.consecutive);
        }
        (changed, inst.consecutive >= tolerance)
    }

    /// Every probe once, side by side; the first miss found, if any.
    async fn check_all(&mut self) -> Option<(usize, ProbeResult)> {
        let fleet = self.chaos.fleet.clone();
        let probes = self.e.hypothesis.clone();
        let results: Vec<(usize, ProbeResult)> =
            futures::stream::iter(self.instances.clone().into_iter().enumerate())
                .map(|(i, inst)| {
                    let fleet = fleet.clone();
                    let p = probes[inst.probe].clone();
                    async move { (i, check(&fleet, &p, &inst.place).await) }
                })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
        let mut first_miss = None;
        for (i, r) in results {
            self.tally(i, &r);
            if !r.ok && first_miss.is_none() {
                first_miss = Some((i, r));
            }
        }
        first_miss
    }

    fn describe(&self, idx: usize) -> String {
        let inst = &self.instances[idx];
        format!(
            "probe {:?} from {}",
            self.e.hypothesis[inst.probe].name,
            inst.place.label()
        )
    }

    async fn execute(&mut self) {
        let started = Instant::now();
        let deadline = started + self.e.max_duration;
        if let Err(e) = self.instances().await {
            return self.finish("error", &e).await;
        }
        let streams = self.metric_streams(true).await;
        if let Some((i, r)) = self.check_all().await {
            let why = format!(
                "the hypothesis does not hold before the experiment: {}: {}",
                self.describe(i),
                r.detail
            );
            self.event("hypothesis", "", &why).await;
            if streams {
                self.metric_streams(false).await;
            }
            return self.finish("not_started", &why).await;
        }
        self.event(
            "hypothesis",
            "",
            &format!(
                "holds before the experiment ({} probe(s))",
                self.instances.len()
            ),
        )
        .await;

        // Watchers: each probe instance checks at its interval and reports here.
        let (tx, mut rx) = mpsc::channel::<(usize, ProbeResult, Instant)>(1024);
        let watchers = self.control.cancel.child_token();
        for (i, inst) in self.instances.iter().enumerate() {
            let (tx, stop, fleet) = (tx.clone(), watchers.clone(), self.chaos.fleet.clone());
            let probe = self.e.hypothesis[inst.probe].clone();
            let place = inst.place.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(probe.interval) => {}
                    }
                    let r = tokio::select! {
                        _ = stop.cancelled() => break,
                        r = check(&fleet, &probe, &place) => r,
                    };
                    if tx.send((i, r, Instant::now())).await.is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);

        // The method: inject at `at`, confirm the revert at `at + duration`.
        let mut actions: Vec<(Duration, usize, bool)> = Vec::new();
        for (i, s) in self.e.method.iter().enumerate() {
            actions.push((s.at, i, true));
            actions.push((s.at + s.duration, i, false));
        }
        actions.sort_by_key(|a| (a.0, !a.2 as u8, a.1));
        let mut next = 0;
        let mut verdict = "passed";
        let mut reason = String::new();
        loop {
            let due = actions.get(next).map(|a| started + a.0);
            tokio::select! {
                biased;
                _ = self.control.cancel.cancelled() => {
                    let (why, actor) = self.control.reason().unwrap_or_else(|| ("the coordinator is shutting down".into(), "coordinator".into()));
                    event(&self.chaos, &self.run.id, "abort", "", &why, &actor).await;
                    verdict = "aborted";
                    reason = why;
                    break;
                }
                Some((i, r, at)) = rx.recv() => {
                    let (changed, broken) = self.tally(i, &r);
                    if changed {
                        let what = if r.ok { "holds" } else { "missed" };
                        let host = match &self.instances[i].place { Place::Agent { hostname, .. } => hostname.clone(), _ => String::new() };
                        self.event("probe", &host, &format!("{} {what}: {}", self.describe(i), r.detail)).await;
                        self.save().await;
                    }
                    if broken {
                        let why = format!(
                            "{} missed {} time(s) in a row (tolerance {}): {}",
                            self.describe(i),
                            self.instances[i].consecutive,
                            self.e.hypothesis[self.instances[i].probe].tolerance,
                            r.detail
                        );
                        self.violation = Some(at);
                        self.event("halt", "", &format!("hypothesis violated: {why}")).await;
                        verdict = "failed";
                        reason = why;
                        break;
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    reason = format!("max_duration ({}) passed", humantime::format_duration(self.e.max_duration));
                    self.event("halt", "", &reason).await;
                    verdict = "aborted";
                    break;
                }
                _ = async { tokio::time::sleep_until(due.expect("guarded").into()).await }, if due.is_some() => {
                    let (_, step, inject) = actions[next];
                    next += 1;
                    if inject {
                        if let Err(why) = self.inject(step).await {
                            self.event("halt", "", &why).await;
                            verdict = "error";
                            reason = why;
                            break;
                        }
                    } else {
                        self.revert(Some(step), "step ended").await;
                    }
                }
                else => break,
            }
            if next == actions.len() {
                // Every step injected and confirmed ended.
                break;
            }
        }
        watchers.cancel();
        drop(rx);
        let halted = verdict != "passed";
        let last_confirm = self
            .revert(None, if halted { "halt" } else { "end of the method" })
            .await;
        if let (Some(at), Some(done)) = (self.violation, last_confirm) {
            self.run.halt_latency_ms = done.saturating_duration_since(at).as_millis() as i64;
        }
        if verdict != "aborted" && verdict != "error" {
            let since = last_confirm.unwrap_or_else(Instant::now);
            match self.recover(since).await {
                Some(ms) => {
                    self.run.recovery_ms = ms;
                    self.event(
                        "recovered",
                        "",
                        &format!("the hypothesis holds again {ms} ms after the last revert"),
                    )
                    .await;
                }
                None => {
                    let why = format!(
                        "the hypothesis did not hold again within {} after the faults were reverted",
                        humantime::format_duration(RECOVERY_TIMEOUT)
                    );
                    self.event("recovered", "", &why).await;
                    if verdict == "passed" {
                        verdict = "failed";
                        reason = why;
                    }
                }
            }
        }
        if streams {
            self.metric_streams(false).await;
        }
        self.finish(verdict, &reason).await;
    }

    /// Starts (or stops) the targets' metric streams when a probe reads them; true if started.
    async fn metric_streams(&self, start: bool) -> bool {
        let lifetime = self.e.max_duration + RECOVERY_TIMEOUT + METRICS_GRACE;
        let agents: Vec<String> = self
            .run
            .targets
            .iter()
            .map(|t| t.agent_id.clone())
            .collect();
        super::probes::metric_streams(
            &self.chaos.fleet,
            &agents,
            &self.e.hypothesis,
            start.then_some(lifetime),
        )
        .await
    }

    /// Injects step `step` on every target; an error names the first target that did not apply it.
    async fn inject(&mut self, step: usize) -> Result<(), String> {
        let s = self.e.method[step].clone();
        let duration_ms = s.duration.as_millis().min(u128::from(u32::MAX)) as u32;
        let faults: Vec<RunFault> = self
            .run
            .targets
            .iter()
            .map(|t| RunFault {
                agent_id: t.agent_id.clone(),
                hostname: t.hostname.clone(),
                fault_id: format!(
                    "{}-s{step}-{}",
                    self.run.id,
                    hex::encode(rand::random::<[u8; 3]>())
                ),
                kind: s.kind.clone(),
                step: step as u32,
                state: "pending".into(),
                detail: String::new(),
            })
            .collect();
        // Recorded before the commands go out: a coordinator killed now still knows what to revert.
        for f in &faults {
            self.chaos
                .store
                .upsert_run_fault(&self.run.id, f, false)
                .await
                .map_err(|e| e.to_string())?;
        }
        let chaos = self.chaos.clone();
        let answers: Vec<RunFault> = futures::stream::iter(faults)
            .map(|mut f| {
                let chaos = chaos.clone();
                let spec = s.spec.clone();
                async move {
                    let cmd = command::Kind::InjectFault(InjectFault {
                        fault_id: f.fault_id.clone(),
                        spec: Some(spec),
                        duration_ms,
                    });
                    let (state, detail) =
                        fault_answer(chaos.fleet.call(&f.agent_id, cmd, AGENT_TIMEOUT).await);
                    f.state = state;
                    f.detail = detail;
                    f
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut failure = None;
        for f in &answers {
            let settled = matches!(f.state.as_str(), "refused" | "failed");
            if let Err(err) = self.chaos.store.update_run_fault_state(f, settled).await {
                warn!(%err, "could not record a fault");
            }
            self.event(
                "inject",
                &f.hostname,
                &format!("{} {} {}: {}", f.fault_id, s.kind, f.state, f.detail),
            )
            .await;
            if f.state != "active" && failure.is_none() {
                failure = Some(format!(
                    "step {} ({}) was not applied on {}: {} {}",
                    step + 1,
                    s.kind,
                    f.hostname,
                    f.state,
                    f.detail
                ));
            }
            if let Err(err) = self
                .chaos
                .store
                .upsert_fault(
                    &f.agent_id,
                    &f.hostname,
                    &fault_status(f),
                    &self.run.created_by,
                )
                .await
            {
                warn!(%err, "could not record a fault");
            }
        }
        self.run.faults.extend(answers);
        match failure {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// Reverts this run's faults that are not settled (of one step, or all) and waits for every
    /// confirmation; returns when the last one arrived.
    async fn revert(&mut self, step: Option<usize>, why: &str) -> Option<Instant> {
        let open: Vec<usize> = self
            .run
            .faults
            .iter()
            .enumerate()
            .filter(|(_, f)| step.is_none_or(|s| f.step as usize == s))
            .filter(|(_, f)| {
                matches!(
                    f.state.as_str(),
                    "active" | "pending" | "unknown" | "revert_failed"
                )
            })
            .map(|(i, _)| i)
            .collect();
        if open.is_empty() {
            return None;
        }
        let fleet = self.chaos.fleet.clone();
        let answers: Vec<(usize, String, String, Instant)> = futures::stream::iter(open)
            .map(|i| {
                let f = self.run.faults[i].clone();
                let fleet = fleet.clone();
                async move {
                    let cmd = command::Kind::RevertFault(RevertFault {
                        fault_id: f.fault_id.clone(),
                    });
                    let answer = fleet.call(&f.agent_id, cmd, AGENT_TIMEOUT).await;
                    let (state, detail) = match &answer {
                        Ok(r) => match &r.outcome {
                            Some(command_result::Outcome::Error(e))
                                if e.starts_with("no fault") =>
                            {
                                ("reverted".to_string(), format!("not on the agent: {e}"))
                            }
                            _ => fault_answer(answer),
                        },
                        Err(_) => fault_answer(answer),
                    };
                    (i, state, detail, Instant::now())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut last = None;
        for (i, state, detail, at) in answers {
            let f = &mut self.run.faults[i];
            f.state = state;
            f.detail = detail;
            let confirmed =
                f.state != "active" && f.state != "unknown" && f.state != "revert_failed";
            if confirmed {
                last = Some(last.map_or(at, |l: Instant| l.max(at)));
            }
            let f = f.clone();
            if let Err(err) = self.chaos.store.update_run_fault_state(&f, confirmed).await {
                warn!(%err, "could not record a revert");
            }
            if let Err(err) = self
                .chaos
                .store
                .upsert_fault(&f.agent_id, &f.hostname, &fault_status(&f), "")
                .await
            {
                warn!(%err, "could not record a fault");
            }
            let what = if confirmed {
                "confirmed"
            } else {
                "NOT confirmed"
            };
            self.event(
                "revert",
                &f.hostname,
                &format!("{} ({why}) {what}: {} {}", f.fault_id, f.state, f.detail),
            )
            .await;
        }
        last
    }

    /// Checks the hypothesis until it holds; the time since `since` in ms, or None on timeout.
    async fn recover(&mut self, since: Instant) -> Option<i64> {
        let every = self
            .e
            .hypothesis
            .iter()
            .map(|p| p.interval)
            .min()
            .unwrap_or(Duration::from_secs(1));
        let give_up = Instant::now() + RECOVERY_TIMEOUT;
        loop {
            if self.check_all().await.is_none() {
                return Some(since.elapsed().as_millis() as i64);
            }
            if Instant::now() >= give_up {
                return None;
            }
            tokio::select! {
                _ = self.control.cancel.cancelled() => return None,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    async fn finish(&mut self, verdict: &str, reason: &str) {
        self.run.state = "finished".into();
        self.run.verdict = verdict.into();
        self.run.reason = reason.into();
        self.run.finished_unix_ms = now_ms();
        self.save().await;
        let detail = if reason.is_empty() {
            verdict.to_string()
        } else {
            format!("{verdict}: {reason}")
        };
        self.event("verdict", "", &detail).await;
        info!(run = %self.run.id, name = %self.run.name, %verdict, %reason, "experiment finished");
        crate::web::metrics::global().experiment(verdict, self.run.halt_latency_ms);
    }
}
