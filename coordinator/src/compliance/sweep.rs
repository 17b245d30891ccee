//! Sweeps: select agents by labels, collect their facts, evaluate a pack, store every result and
//! the latest facts, and report each host as it finishes. A host that is offline, or does not
//! answer in time, is reported `unreachable`: never passing, never left out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rampart_common::labels::Selector;
use rampart_common::time::format_ms;
use rampart_proto::v1::{GetSweepResponse, HostResult, RuleVerdict, SweepSummary};

use super::pack::{Pack, RuleResult, Status};
use super::waiver::{self, ActiveWaivers};
use crate::fleet::Fleet;
use crate::store::{
    AgentRecord, AgentState, Store, StoreError, StoredHost, SweepHostRecord, SweepRecord,
    SweepResultRecord,
};

/// Hosts asked for facts at the same time.
const CONCURRENCY: usize = 64;

/// Most hosts stored in one transaction.
const WRITE_BATCH: usize = 256;

/// What to sweep.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub id: String,
    pub selector: Selector,
    pub selector_text: String,
    pub pack: Arc<Pack>,
    /// Per-host wait for facts.
    pub timeout: Duration,
    /// Time each check on its own (slower).
    pub profile: bool,
    /// Evaluate each host's stored facts instead of asking the agents (e.g. after a pack changed).
    pub stored_facts: bool,
    pub actor: String,
}

fn unreachable(agent: &AgentRecord, message: String) -> HostResult {
    HostResult {
        agent_id: agent.id.clone(),
        hostname: agent.hostname.clone(),
        status: "unreachable".into(),
        message,
        results: Vec::new(),
        collect_ms: 0,
        eval_micros: 0,
        labels: agent.labels.clone().into_iter().collect(),
    }
}

/// Facts to evaluate for one host.
struct HostFacts {
    json: serde_json::Value,
    collected_at: i64,
    collect_ms: u32,
    /// Collector errors, or where stored facts came from.
    message: String,
    /// Whether they are new (to be stored as the host's latest).
    fresh: bool,
}

/// Asks the agent for facts, or reads its stored ones; `Err` says why the host is unreachable.
async fn host_facts(
    store: &Store,
    fleet: &Fleet,
    plan: &SweepPlan,
    agent: &AgentRecord,
) -> Result<HostFacts, String> {
    if plan.stored_facts {
        let (collected_at, text) = store
            .latest_facts(&agent.id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "no stored facts: this host was never swept".to_string())?;
        let json =
            serde_json::from_str(&text).map_err(|e| format!("stored facts are unreadable: {e}"))?;
        let message = format!("stored facts collected {}", format_ms(collected_at));
        return Ok(HostFacts {
            json,
            collected_at,
            collect_ms: 0,
            message,
            fresh: false,
        });
    }
    let start = Instant::now();
    let report = super::facts::collect_facts(fleet, agent, plan.timeout).await?;
    let message = report
        .errors
        .iter()
        .map(|e| format!("collector {} failed: {}", e.collector, e.message))
        .chain(report.truncated.iter().map(|t| {
            format!(
                "collector {} truncated: {} of {} entries kept",
                t.collector, t.kept, t.total
            )
        }))
        .collect::<Vec<_>>()
        .join("; ");
    Ok(HostFacts {
        json: serde_json::to_value(&report).unwrap_or_default(),
        collected_at: report.collected_unix_ms,
        collect_ms: start.elapsed().as_millis().min(u128::from(u32::MAX)) as u32,
        message,
        fresh: true,
    })
}

/// What a report says about collectors cut to keep it bounded, if any were.
fn truncation_note(facts: &serde_json::Value) -> Option<String> {
    let cut = facts["truncated"].as_array().filter(|t| !t.is_empty())?;
    let parts: Vec<String> = cut
        .iter()
        .map(|t| {
            format!(
                "{} ({} of {} kept)",
                t["collector"].as_str().unwrap_or("?"),
                t["kept"],
                t["total"]
            )
        })
        .collect();
    Some(format!(
        "the host's facts were truncated ({}): a pass cannot be trusted",
        parts.join(", ")
    ))
}

/// Gets one host's facts and evaluates the pack over them. Returns the host result and, when
/// new facts arrived, their collection time and JSON text to store.
async fn sweep_host(
    store: &Store,
    fleet: &Fleet,
    plan: &SweepPlan,
    waivers: &ActiveWaivers,
    agent: AgentRecord,
) -> (HostResult, Option<(i64, String)>) {
    let facts = match host_facts(store, fleet, plan, &agent).await {
        Ok(f) => f,
        Err(message) => return (unreachable(&agent, message), None),
    };
    let pack = plan.pack.clone();
    let facts_for_eval = facts.json.clone();
    let profile = plan.profile;
    // Evaluation is CPU work: keep it off the async workers.
    let (results, eval_micros): (Vec<RuleResult>, u32) = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let results = if profile {
            pack.evaluate_profiled(&facts_for_eval)
        } else {
            pack.evaluate(&facts_for_eval)
        };
        (
            results,
            start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
        )
    })
    .await
    .unwrap_or_default();
    let truncated = truncation_note(&facts.json);
    // A host the pack is not written for: every check is not applicable; say why once.
    let mut message = facts.message.clone();
    if let Some(reason) = plan.pack.off_target(&facts.json) {
        message = if message.is_empty() {
            reason
        } else {
            format!("{reason}; {message}")
        };
    }
    let results = results
        .into_iter()
        .map(|r| {
            let (status, evidence) = match &truncated {
                // A pass on incomplete facts cannot be trusted; a failure found in them stands.
                Some(note) if r.status == Status::Pass => (
                    Status::Error,
                    serde_json::json!({"error": note, "evidence": r.evidence}),
                ),
                _ => (r.status, r.evidence),
            };
            let r = RuleResult {
                status,
                evidence,
                ..r
            };
            let title = plan
                .pack
                .checks
                .iter()
                .find(|c| c.id == r.rule)
                .map(|c| c.title.clone())
                .unwrap_or_default();
            let applied = waivers.apply(&r.rule, r.status.name(), &agent.labels);
            RuleVerdict {
                status: if applied.is_some() {
                    waiver::WAIVED.into()
                } else {
                    r.status.name().into()
                },
                waiver: applied.map(|a| waiver::applied_to_proto(&a)),
                rule: r.rule,
                title,
                severity: r.severity.name().into(),
                evidence_json: r.evidence.to_string(),
                micros: r.micros,
            }
        })
        .collect();
    let to_store = facts
        .fresh
        .then(|| (facts.collected_at, facts.json.to_string()));
    let host = HostResult {
        agent_id: agent.id,
        hostname: agent.hostname,
        status: "ok".into(),
        message,
        results,
        collect_ms: facts.collect_ms,
        eval_micros,
        labels: agent.labels.into_iter().collect(),
    };
    (host, to_store)
}

/// The agents a sweep covers: every non-revoked agent the selector matches, offline ones too
/// (they are reported unreachable).
pub async fn select(store: &Store, selector: &Selector) -> Result<Vec<AgentRecord>, StoreError> {
    Ok(store
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.state != AgentState::Revoked && selector.matches(&a.labels))
        .collect())
}

/// Runs a sweep over `agents` (see [`select`]), calling `on_host` for each host as it finishes,
/// and stores everything.
pub async fn run(
    store: &Store,
    fleet: &Fleet,
    plan: &SweepPlan,
    agents: Vec<AgentRecord>,
    on_host: impl FnMut(&HostResult),
) -> Result<SweepSummary, StoreError> {
    record_start(store, plan, &agents).await?;
    run_recorded(store, fleet, plan, agents, on_host).await
}

/// Stores the sweep and the hosts it selected, so it can be read before any host reports.
pub async fn record_start(
    store: &Store,
    plan: &SweepPlan,
    agents: &[AgentRecord],
) -> Result<(), StoreError> {
    store
        .create_sweep(
            &plan.id,
            &plan.pack.name,
            &plan.selector_text,
            &plan.actor,
            &agents
                .iter()
                .map(|a| (a.id.clone(), a.hostname.clone()))
                .collect::<Vec<_>>(),
        )
        .await
}

/// [`run`] for a sweep [`record_start`] has stored.
pub async fn run_recorded(
    store: &Store,
    fleet: &Fleet,
    plan: &SweepPlan,
    agents: Vec<AgentRecord>,
    mut on_host: impl FnMut(&HostResult),
) -> Result<SweepSummary, StoreError> {
    let started = Instant::now();
    let mut summary = SweepSummary {
        sweep_id: plan.id.clone(),
        hosts: agents.len() as u32,
        ..Default::default()
    };
    let waivers =
        ActiveWaivers::load(store, &plan.pack.name, rampart_common::time::now_ms()).await?;
    // Hosts are swept and stored side by side: hosts that finished while a batch was being
    // written are written together (one transaction for many hosts keeps a sweep of thousands
    // from waiting on the database), and the hosts in flight go on meanwhile.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel(2 * WRITE_BATCH);
    let waivers = &waivers;
    let sweeping = async move {
        let mut hosts = futures::stream::iter(
            agents
                .into_iter()
                .map(|a| sweep_host(store, fleet, plan, waivers, a)),
        )
        .buffer_unordered(CONCURRENCY);
        while let Some(done) = hosts.next().await {
            if done_tx.send(done).await.is_err() {
                break; // storing failed; the sweep ends with its error
            }
        }
    };
    let storing = async {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while done_rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
            store
                .record_sweep_hosts(&plan.id, &to_store(&batch))
                .await?;
            for (host, _) in batch.drain(..) {
                if host.status != "ok" {
                    summary.unreachable += 1;
                }
                for r in &host.results {
                    count(&mut summary, &r.status);
                    crate::web::metrics::global().sweep_result(&r.status, &r.severity);
                }
                on_host(&host);
            }
        }
        Ok::<(), StoreError>(())
    };
    let ((), stored) = tokio::join!(sweeping, storing);
    stored?;
    store.finish_sweep(&plan.id).await?;
    summary.duration_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
    crate::web::metrics::global().sweep(started.elapsed());
    Ok(summary)
}

/// The rows of finished hosts (and their new facts) as the store writes them.
fn to_store(batch: &[(HostResult, Option<(i64, String)>)]) -> Vec<StoredHost> {
    batch
        .iter()
        .map(|(host, facts)| StoredHost {
            host: SweepHostRecord {
                agent_id: host.agent_id.clone(),
                hostname: host.hostname.clone(),
                status: host.status.clone(),
                message: host.message.clone(),
                collect_ms: host.collect_ms,
                eval_micros: host.eval_micros,
                labels: host.labels.clone().into_iter().collect(),
            },
            results: host
                .results
                .iter()
                .map(|r| SweepResultRecord {
                    rule: r.rule.clone(),
                    status: r.status.clone(),
                    severity: r.severity.clone(),
                    evidence: r.evidence_json.clone(),
                    micros: r.micros,
                    waiver: r.waiver.as_ref().map(waiver::applied_json),
                })
                .collect(),
            facts: facts.clone(),
        })
        .collect()
}

/// Counts one result in a sweep's summary.
fn count(summary: &mut SweepSummary, status: &str) {
    match status {
        "pass" => summary.pass += 1,
        "fail" => summary.fail += 1,
        "error" => summary.error += 1,
        waiver::WAIVED => summary.waived += 1,
        _ => summary.not_applicable += 1,
    }
}

/// A stored sweep as the API reports it: every host that reported so far with its results (titles
/// from the pack, when it is still loaded), and a summary counted from them.
pub fn stored_report(
    sweep: SweepRecord,
    hosts: Vec<SweepHostRecord>,
    results: Vec<(String, SweepResultRecord)>,
    pack: Option<&Pack>,
) -> GetSweepResponse {
    let title = |rule: &str| {
        pack.and_then(|p| p.checks.iter().find(|c| c.id == rule))
            .map(|c| c.title.clone())
            .unwrap_or_default()
    };
    let mut by_agent: std::collections::HashMap<String, Vec<RuleVerdict>> =
        std::collections::HashMap::new();
    let mut summary = SweepSummary {
        sweep_id: sweep.id.clone(),
        hosts: sweep.hosts,
        duration_ms: sweep
            .finished_at
            .map(|f| (f - sweep.started_at).clamp(0, i64::from(u32::MAX)) as u32)
            .unwrap_or(0),
        ..Default::default()
    };
    for (agent, r) in results {
        count(&mut summary, &r.status);
        by_agent.entry(agent).or_default().push(RuleVerdict {
            waiver: waiver::stored_to_proto(r.waiver.as_deref()),
            title: title(&r.rule),
            rule: r.rule,
            status: r.status,
            severity: r.severity,
            evidence_json: r.evidence,
            micros: r.micros,
        });
    }
    let hosts: Vec<HostResult> = hosts
        .into_iter()
        .map(|h| {
            if h.status != "ok" {
                summary.unreachable += 1;
            }
            HostResult {
                results: by_agent.remove(&h.agent_id).unwrap_or_default(),
                agent_id: h.agent_id,
                hostname: h.hostname,
                status: h.status,
                message: h.message,
                collect_ms: h.collect_ms,
                eval_micros: h.eval_micros,
                labels: h.labels.into_iter().collect(),
            }
        })
        .collect();
    GetSweepResponse {
        sweep_id: sweep.id,
        pack: sweep.pack,
        selector: sweep.selector,
        actor: sweep.actor,
        started_unix_ms: sweep.started_at,
        finished_unix_ms: sweep.finished_at.unwrap_or(0),
        selected: sweep.hosts,
        hosts,
        summary: Some(summary),
        interrupted: sweep.interrupted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{TestDb, agent_record, on_both_backends};

    on_both_backends!(
        every_host_of_a_sweep_larger_than_its_write_batches_is_stored_and_reported_once
    );

    /// Hosts are stored while others are still being swept: over several write batches, every
    /// host and every verdict is stored once and reported once, none lost, none twice.
    async fn every_host_of_a_sweep_larger_than_its_write_batches_is_stored_and_reported_once(
        db: TestDb,
    ) {
        let store = db.open().await;
        let pack = super::super::Packs::builtin()
            .get("linux-baseline")
            .unwrap();
        let facts = super::super::pack::tests::fixture_facts("weak", &[], 1000).to_string();
        let hosts = 3 * WRITE_BATCH + 17;
        for i in 0..hosts {
            let id = format!("h{i:04}");
            store.insert_agent(&agent_record(&id)).await.unwrap();
            store.save_facts(&id, "", 1, &facts).await.unwrap();
        }
        let plan = SweepPlan {
            id: "sweep-batches".into(),
            selector: Selector::default(),
            selector_text: String::new(),
            pack: pack.clone(),
            timeout: Duration::from_secs(5),
            profile: false,
            stored_facts: true,
            actor: "test".into(),
        };
        let agents = select(&store, &plan.selector).await.unwrap();
        assert_eq!(agents.len(), hosts);
        let mut reported = std::collections::BTreeMap::<String, usize>::new();
        let summary = run(&store, &Fleet::new(), &plan, agents, |h| {
            assert_eq!(h.status, "ok", "{}", h.message);
            *reported.entry(h.agent_id.clone()).or_default() += 1;
        })
        .await
        .unwrap();

        assert_eq!(reported.len(), hosts);
        assert!(reported.values().all(|&n| n == 1), "a host reported twice");
        let verdicts = hosts * pack.checks.len();
        let counted = summary.pass + summary.fail + summary.error + summary.not_applicable;
        assert_eq!(counted as usize, verdicts);
        assert_eq!(summary.unreachable, 0);
        let (sweep, stored_hosts, stored_verdicts) =
            store.sweep("sweep-batches").await.unwrap().unwrap();
        assert!(sweep.finished_at.is_some());
        assert_eq!(stored_hosts.len(), hosts);
        assert_eq!(stored_verdicts.len(), verdicts);
        let distinct: std::collections::BTreeSet<(&str, &str)> = stored_verdicts
            .iter()
            .map(|(agent, r)| (agent.as_str(), r.rule.as_str()))
            .collect();
        assert_eq!(distinct.len(), verdicts);
    }
}
