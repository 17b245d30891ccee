//! Fault injection on this host, and the guarantee that every fault is put back.
//!
//! Lifecycle of `InjectFault`: the agent's own policy (its config) → the kind's parameters and
//! this host's capabilities → a journal entry, fsynced, saying how to undo it → apply → `active`
//! with exactly what was applied. It is reverted at the end of its duration (the agent's own
//! timer), on `RevertFault`/`RevertAll`, at agent shutdown, or when the coordinator has been
//! unreachable for longer than the lease; `reverted` is reported only after checking (chains
//! gone, qdisc back, processes running, file removed), otherwise `revert_failed` with the reason
//! and the journal entry stays. At start-up, whatever the journal still lists is reverted before
//! anything else (`recover_journal`).
//!
//! One file per kind; `journal.rs` is the crash-safe record, `policy.rs` the agent's own limits.
//! Must not touch: anything without a journal entry written first.

mod cpu;
mod disk;
pub mod journal;
mod latency;
mod memory;
mod network;
pub mod policy;
mod process;
mod qdisc;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_common::time::now_ms;
use rampart_proto::v1::{FaultSpec, FaultStatus, InjectFault, NetworkMatch, fault_spec};
use tokio::sync::mpsc;

use journal::{Journal, Record, Undo};
pub use policy::FaultPolicy;

/// Ended faults remembered for `ListFaults` and repeated ids.
const REMEMBERED: usize = 256;
/// How long a revert request waits for a revert of the same fault already under way (a process
/// that must continue, threads that must stop: seconds at most).
const REVERT_WAIT: Duration = Duration::from_secs(30);

/// Something a fault keeps running inside the agent (CPU workers, memory, a repeat killer, a
/// proxy); stopping it is the first half of a revert.
pub(crate) trait Running: Send {
    fn stop(&mut self) -> Result<String, String>;
}

/// Runs a tool, feeding `stdin`; `Err` has its stderr.
pub(crate) fn command(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("cannot feed {program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program} failed: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Undoes what a journal record says; blocking.
pub fn undo(u: &Undo) -> Result<String, String> {
    match u {
        Undo::Nothing { note } => Ok(note.clone()),
        Undo::NftChains { chains } => network::remove_chains(chains),
        Undo::Qdisc {
            interface,
            previous_kind,
            forced,
        } => qdisc::restore(interface, previous_kind, *forced),
        Undo::Continue { pids } => process::continue_all(pids),
        Undo::RemoveFile { path } => disk::remove(path),
        Undo::All { parts } => {
            let mut done = Vec::new();
            let mut failed = Vec::new();
            for p in parts.iter().rev() {
                match undo(p) {
                    Ok(s) => done.push(s),
                    Err(e) => failed.push(e),
                }
            }
            if failed.is_empty() {
                Ok(done.join("; "))
            } else {
                Err(failed.join("; "))
            }
        }
    }
}

struct Active {
    status: FaultStatus,
    undo: Undo,
    running: Option<Box<dyn Running>>,
    timer: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
struct State {
    active: HashMap<String, Active>,
    ended: VecDeque<FaultStatus>,
    /// Faults being reverted right now (no longer active, not yet ended): a second revert of the
    /// same id waits for the first one's outcome instead of answering "no such fault".
    reverting: std::collections::HashSet<String>,
    /// Where the coordinator session goes: always excluded from network faults.
    coordinator: Vec<SocketAddr>,
    /// Since when no session is open (None: connected, or never connected yet).
    down_since: Option<Instant>,
}

struct Inner {
    policy: FaultPolicy,
    journal: Journal,
    capabilities: Vec<String>,
    state: Mutex<State>,
    events: mpsc::UnboundedSender<FaultStatus>,
    /// Signalled when the session ends, to wake the lease watch.
    disconnected: tokio::sync::Notify,
    /// The receiving end, until the session takes it.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<FaultStatus>>>,
}

/// The agent's faults. Cheap to clone.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("policy", &self.inner.policy)
            .finish()
    }
}

fn status(fault_id: &str, kind: &str, state: &str, detail: String) -> FaultStatus {
    FaultStatus {
        fault_id: fault_id.into(),
        kind: kind.into(),
        state: state.into(),
        detail,
        started_unix_ms: now_ms(),
        ..Default::default()
    }
}

/// What applying produced.
type Applied = (Undo, Option<Box<dyn Running>>, String);

impl Faults {
    pub fn new(
        policy: FaultPolicy,
        state_dir: &std::path::Path,
        capabilities: Vec<String>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            inner: Arc::new(Inner {
                policy,
                journal: Journal::new(state_dir),
                capabilities,
                state: Mutex::new(State::default()),
                events: tx,
                disconnected: tokio::sync::Notify::new(),
                receiver: Mutex::new(Some(rx)),
            }),
        }
    }

    /// Fault state changes the agent reports on its own (a duration ended, the lease expired,
    /// the journal was recovered). The first caller gets them; later ones get a closed channel.
    pub fn take_events(&self) -> mpsc::UnboundedReceiver<FaultStatus> {
        self.inner
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session is open; network faults exclude `coordinator`.
    pub fn session_up(&self, coordinator: Vec<SocketAddr>) {
        let mut s = self.state();
        s.coordinator = coordinator;
        s.down_since = None;
    }

    /// The session ended; the lease starts.
    pub fn session_down(&self) {
        let mut s = self.state();
        if s.down_since.is_none() {
            s.down_since = Some(Instant::now());
        }
        self.inner.disconnected.notify_one();
    }

    fn remember(&self, st: FaultStatus) {
        let mut s = self.state();
        s.ended.retain(|e| e.fault_id != st.fault_id);
        if s.ended.len() == REMEMBERED {
            s.ended.pop_front();
        }
        s.ended.push_back(st);
    }

    /// Every fault known: active first, then those that ended, newest last.
    pub fn list(&self) -> Vec<FaultStatus> {
        let s = self.state();
        let mut out: Vec<FaultStatus> = s.active.values().map(|a| a.status.clone()).collect();
        out.sort_by_key(|f| f.started_unix_ms);
        out.extend(s.ended.iter().cloned());
        out
    }

    fn known(&self, fault_id: &str) -> Option<FaultStatus> {
        let s = self.state();
        s.active
            .get(fault_id)
            .map(|a| a.status.clone())
            .or_else(|| s.ended.iter().find(|e| e.fault_id == fault_id).cloned())
    }

    /// Applies a fault (see the module docs). The same id twice answers with its state.
    pub async fn inject(&self, cmd: InjectFault) -> FaultStatus {
        let id = cmd.fault_id.clone();
        if let Some(known) = self.known(&id) {
            return known;
        }
        let spec = cmd.spec.unwrap_or_default();
        let kind = policy::kind_name(&spec);
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return status(&id, kind, "refused", "invalid fault id".into());
        }
        let duration = Duration::from_millis(u64::from(cmd.duration_ms));
        if let Err(why) = self
            .inner
            .policy
            .check(&spec, duration)
            .and_then(|()| self.capable(&spec))
        {
            let st = status(&id, kind, "refused", why);
            self.remember(st.clone());
            return st;
        }
        let started = now_ms();
        let record = Record {
            fault_id: id.clone(),
            kind: kind.into(),
            spec: serde_json::to_string(&spec).unwrap_or_default(),
            started_unix_ms: started,
            ends_unix_ms: started + duration.as_millis() as i64,
            undo: Undo::Nothing {
                note: String::new(),
            },
        };
        let coordinator = self.state().coordinator.clone();
        let this = self.clone();
        let applied = tokio::task::spawn_blocking(move || this.apply(&record, &spec, &coordinator))
            .await
            .unwrap_or_else(|e| Err(format!("applying failed: {e}")));
        match applied {
            Err(why) => {
                let st = status(&id, kind, "failed", why);
                self.remember(st.clone());
                st
            }
            Ok((undo, running, detail)) => {
                let mut st = status(&id, kind, "active", detail);
                st.started_unix_ms = started;
                st.ends_unix_ms = started + duration.as_millis() as i64;
                let this = self.clone();
                let timer_id = id.clone();
                let timer = tokio::spawn(async move {
                    tokio::time::sleep(duration).await;
                    this.revert_inner(&timer_id, "duration", false).await;
                });
                tracing::info!(fault = %id, kind, detail = %st.detail, "fault active");
                self.state().active.insert(
                    id,
                    Active {
                        status: st.clone(),
                        undo,
                        running,
                        timer: Some(timer.abort_handle()),
                    },
                );
                st
            }
        }
    }

    /// Whether this host can do it at all.
    fn capable(&self, spec: &FaultSpec) -> Result<(), String> {
        use fault_spec::Kind;
        let has = |c: &str| self.inner.capabilities.iter().any(|x| x == c);
        match &spec.kind {
            Some(Kind::NetworkPartition(_) | Kind::NetworkLoss(_) | Kind::Dns(_))
                if !has("nftables") =>
            {
                Err("this host has no nftables (the `nft` tool is missing)".into())
            }
            Some(Kind::NetworkBandwidth(_)) if !has("tc") => {
                Err("this host has no tc (iproute2 is missing)".into())
            }
            Some(Kind::NetworkLatency(l)) => {
                if has("netem") && has("tc") {
                    if l.interface.is_empty() {
                        return Err("latency with netem needs an interface".into());
                    }
                    Ok(())
                } else if !has("nftables") {
                    Err(
                        "this host has neither netem nor nftables: latency is not possible here"
                            .into(),
                    )
                } else if l.ports.is_empty() {
                    Err("this kernel has no netem qdisc: latency takes the userspace path, which needs destination TCP ports (--port)".into())
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn journal_with(&self, record: &Record, undo: &Undo) -> Result<(), String> {
        let mut r = record.clone();
        r.undo = undo.clone();
        self.inner.journal.write(&r)
    }

    /// Journals, then applies; on failure nothing is left behind (and the entry is removed).
    fn apply(
        &self,
        record: &Record,
        spec: &FaultSpec,
        coordinator: &[SocketAddr],
    ) -> Result<Applied, String> {
        let result = self.apply_kind(record, spec, coordinator);
        if result.is_err() {
            let _ = self.inner.journal.remove(&record.fault_id);
        }
        result
    }

    fn apply_kind(
        &self,
        record: &Record,
        spec: &FaultSpec,
        coordinator: &[SocketAddr],
    ) -> Result<Applied, String> {
        use fault_spec::Kind;
        let id = &record.fault_id;
        let in_process = |note: &str| Undo::Nothing { note: note.into() };
        let nft_fault = |m: &NetworkMatch, verdict: network::Verdict| -> Result<Applied, String> {
            let (script, chains, detail) = network::script(id, m, verdict, coordinator)?;
            self.journal_with(
                record,
                &Undo::NftChains {
                    chains: chains.clone(),
                },
            )?;
            if let Err(e) = network::apply(&script, &chains) {
                let _ = network::remove_chains(&chains);
                return Err(e);
            }
            Ok((Undo::NftChains { chains }, None, detail))
        };
        match spec.kind.as_ref().ok_or("no fault kind")? {
            Kind::Cpu(c) => {
                let undo = in_process("CPU workers run inside the agent: they end with it");
                self.journal_with(record, &undo)?;
                let (load, detail) = cpu::start(c)?;
                Ok((undo, Some(Box::new(load)), detail))
            }
            Kind::Memory(m) => {
                let undo =
                    in_process("the memory is held by the agent: it is freed when the agent ends");
                self.journal_with(record, &undo)?;
                let (load, detail) = memory::start(m)?;
                Ok((undo, Some(Box::new(load)), detail))
            }
            Kind::NetworkPartition(p) => nft_fault(
                &p.r#match.clone().unwrap_or_default(),
                network::Verdict::Drop,
            ),
            Kind::NetworkLoss(l) => {
                if !(1..=100).contains(&l.percent) {
                    return Err("loss percent must be between 1 and 100".into());
                }
                nft_fault(
                    &l.r#match.clone().unwrap_or_default(),
                    network::Verdict::Loss(l.percent),
                )
            }
            Kind::Dns(_) => nft_fault(
                &NetworkMatch {
                    ports: vec![53],
                    direction: rampart_proto::v1::Direction::Out as i32,
                    ..Default::default()
                },
                network::Verdict::Drop,
            ),
            Kind::NetworkBandwidth(b) => {
                if b.rate_bits_per_sec < 8_000 {
                    return Err("rate must be at least 8000 bit/s".into());
                }
                let (undo, detail) = qdisc::apply(
                    &b.interface,
                    &qdisc::Leaf::Rate(b.rate_bits_per_sec),
                    b.force,
                    coordinator,
                    |u| self.journal_with(record, u),
                )?;
                Ok((undo, None, detail))
            }
            Kind::NetworkLatency(l) => {
                if l.delay_ms == 0 || l.delay_ms > 60_000 || l.jitter_ms > l.delay_ms {
                    return Err("delay must be 1 ms to 60 s, jitter no more than the delay".into());
                }
                let has = |c: &str| self.inner.capabilities.iter().any(|x| x == c);
                if has("netem") && has("tc") {
                    let (undo, detail) = qdisc::apply(
                        &l.interface,
                        &qdisc::Leaf::Netem {
                            delay_ms: l.delay_ms,
                            jitter_ms: l.jitter_ms,
                        },
                        false,
                        coordinator,
                        |u| self.journal_with(record, u),
                    )?;
                    Ok((undo, None, detail))
                } else {
                    let (undo, proxy, detail) =
                        latency::start(id, l, coordinator, |u| self.journal_with(record, u))?;
                    Ok((undo, Some(Box::new(proxy)), detail))
                }
            }
            Kind::ProcessKill(k) => {
                let target = k.target.clone().unwrap_or_default();
                let signal = process::signal_from(k.signal)?;
                let procs = process::resolve(&target, &self.inner.policy, k.count)?;
                let undo = in_process("killed processes are not restarted by Rampart");
                self.journal_with(record, &undo)?;
                let mut sent = Vec::new();
                for p in &procs {
                    process::signal(p, signal)?;
                    sent.push(format!("{} ({})", p.pid, p.comm));
                }
                let mut detail = format!("sent {signal} to pid(s) {}", sent.join(", "));
                let running: Option<Box<dyn Running>> = if k.repeat_interval_ms > 0 {
                    detail.push_str(&format!(", again every {} ms", k.repeat_interval_ms));
                    Some(Box::new(process::Repeat::start(
                        target,
                        self.inner.policy.clone(),
                        k.count,
                        signal,
                        Duration::from_millis(u64::from(k.repeat_interval_ms)),
                    )))
                } else {
                    None
                };
                Ok((undo, running, detail))
            }
            Kind::ProcessPause(p) => {
                let target = p.target.clone().unwrap_or_default();
                let procs = process::resolve(&target, &self.inner.policy, p.count)?;
                let pids: Vec<(i32, u64)> = procs.iter().map(|p| (p.pid, p.start)).collect();
                let undo = Undo::Continue { pids: pids.clone() };
                self.journal_with(record, &undo)?;
                if let Err(e) = process::stop_all(&procs) {
                    let _ = process::continue_all(&pids);
                    return Err(e);
                }
                let names: Vec<String> = procs
                    .iter()
                    .map(|p| format!("{} ({})", p.pid, p.comm))
                    .collect();
                Ok((
                    undo,
                    None,
                    format!("stopped pid(s) {} with SIGSTOP", names.join(", ")),
                ))
            }
            Kind::DiskFill(d) => {
                let (path, bytes) = disk::plan(id, d)?;
                let undo = Undo::RemoveFile { path: path.clone() };
                self.journal_with(record, &undo)?;
                let detail = disk::fill(&path, bytes)?;
                Ok((undo, None, detail))
            }
        }
    }

    /// Reverts one fault now; `None` when the agent does not know it.
    pub async fn revert(&self, fault_id: &str, by: &str) -> Option<FaultStatus> {
        if let Some(s) = self.revert_inner(fault_id, by, true).await {
            return Some(s);
        }
        // Its own timer (or another request) may be reverting it this moment: wait for that.
        let give_up = Instant::now() + REVERT_WAIT;
        while self.state().reverting.contains(fault_id) && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.known(fault_id)
    }

    async fn revert_inner(
        &self,
        fault_id: &str,
        by: &str,
        stop_timer: bool,
    ) -> Option<FaultStatus> {
        let mut active = {
            let mut state = self.state();
            let active = state.active.remove(fault_id)?;
            state.reverting.insert(fault_id.to_string());
            active
        };
        if stop_timer && let Some(t) = active.timer.take() {
            t.abort();
        }
        let undo_spec = active.undo.clone();
        let mut running = active.running.take();
        let outcome = tokio::task::spawn_blocking(move || {
            let stopped = running.as_mut().map(|r| r.stop()).transpose()?;
            let undone = undo(&undo_spec)?;
            Ok::<String, String>(match stopped {
                Some(s) if !s.is_empty() => format!("{s}; {undone}"),
                _ => undone,
            })
        })
        .await
        .unwrap_or_else(|e| Err(format!("revert task failed: {e}")));
        let mut st = active.status;
        st.reverted_unix_ms = now_ms();
        st.reverted_by = by.into();
        match outcome {
            Ok(what) => {
                st.state = "reverted".into();
                st.detail = format!("{} | reverted: {what}", st.detail);
                if let Err(e) = self.inner.journal.remove(fault_id) {
                    tracing::warn!(fault = %fault_id, error = %e, "reverted, but the journal entry stays");
                }
                tracing::info!(fault = %fault_id, by, "fault reverted");
            }
            Err(why) => {
                st.state = "revert_failed".into();
                st.detail = format!("{} | revert failed: {why}", st.detail);
                tracing::error!(fault = %fault_id, by, reason = %why, "fault revert failed; the journal keeps it");
            }
        }
        self.remember(st.clone());
        self.state().reverting.remove(fault_id);
        let _ = self.inner.events.send(st.clone());
        Some(st)
    }

    /// Reverts every active fault.
    pub async fn revert_all(&self, by: &str) -> Vec<FaultStatus> {
        let ids: Vec<String> = self.state().active.keys().cloned().collect();
        let mut out = Vec::new();
        for id in ids {
            if let Some(s) = self.revert_inner(&id, by, true).await {
                out.push(s);
            }
        }
        out
    }

    /// Reverts whatever the journal still lists (a previous run crashed or was killed), before
    /// the agent does anything else. The outcomes are reported in the next `Hello`.
    pub async fn recover_journal(&self) -> Vec<FaultStatus> {
        let journal = self.inner.journal.clone();
        let outcomes = tokio::task::spawn_blocking(move || recover_records(&journal, "startup"))
            .await
            .unwrap_or_default();
        for st in &outcomes {
            self.remember(st.clone());
            let _ = self.inner.events.send(st.clone());
        }
        outcomes
    }

    /// Reverts everything when the coordinator has been unreachable longer than the lease. Sleeps
    /// while a session is open, so an idle agent does not wake for it.
    pub async fn watch_lease(self, cancel: tokio_util::sync::CancellationToken) {
        let lease = self.inner.policy.lease;
        let tick = (lease / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = self.inner.disconnected.notified() => {}
            }
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(tick) => {}
                }
                let (down, expired) = {
                    let s = self.state();
                    let down = s.down_since.is_some();
                    (
                        down,
                        !s.active.is_empty() && s.down_since.is_some_and(|t| t.elapsed() >= lease),
                    )
                };
                if expired {
                    tracing::warn!(
                        ?lease,
                        "coordinator unreachable for longer than the lease: reverting every fault"
                    );
                    self.revert_all("lease").await;
                }
                if !down {
                    break;
                }
            }
        }
    }
}

/// Undoes every journal record; blocking. Records that fail stay in the journal.
pub fn recover_records(journal: &Journal, by: &str) -> Vec<FaultStatus> {
    let (records, errors) = journal.load();
    let mut out = Vec::new();
    for e in errors {
        out.push(status("", "unknown", "revert_failed", e));
    }
    for r in records {
        let mut st = status(&r.fault_id, &r.kind, "reverted", String::new());
        st.started_unix_ms = r.started_unix_ms;
        st.ends_unix_ms = r.ends_unix_ms;
        st.reverted_unix_ms = now_ms();
        st.reverted_by = by.into();
        match undo(&r.undo) {
            Ok(what) => {
                st.detail = format!("found in the journal; reverted: {what}");
                let _ = journal.remove(&r.fault_id);
            }
            Err(why) => {
                st.state = "revert_failed".into();
                st.detail = format!("found in the journal; revert failed: {why}");
            }
        }
        out.push(st);
    }
    out
}

/// `rampart-agent recover --all`: the journal, then anything carrying Rampart's markers (the
/// `inet rampart` table, Rampart's root qdisc on any interface). Works with no coordinator.
pub fn recover_all(state_dir: &std::path::Path) -> (Vec<FaultStatus>, Vec<Result<String, String>>) {
    let statuses = recover_records(&Journal::new(state_dir), "recover");
    let mut markers = Vec::new();
    if command("nft", &["--version"], None).is_ok() {
        markers.push(network::remove_table());
    }
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for e in entries.flatten() {
            let dev = e.file_name().to_string_lossy().into_owned();
            if let Ok((_, handle)) = qdisc::root(&dev)
                && handle == qdisc::HANDLE
            {
                markers.push(
                    command("tc", &["qdisc", "del", "dev", &dev, "root"], None).map(|_| {
                        format!("{dev}: removed Rampart's root qdisc; the kernel default is back")
                    }),
                );
            }
        }
    }
    (statuses, markers)
}

#[cfg(test)]
mod tests;
