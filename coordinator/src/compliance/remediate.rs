//! Remediation runs: for one rule of a pack, check each selected host, have its agent plan (dry
//! run) or apply the rule's action, then collect facts again and re-evaluate to tell `fixed` from
//! `not_fixed`. Rollbacks ask the agents that changed something to restore their backups, and
//! re-evaluate. Every host outcome is stored; unreachable hosts are reported, never skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rampart_proto::v1::{
    HostRemediation, Remediate, RemediateSummary, RemediationAction, RemediationOutcome,
    RollbackRemediation, command, command_result,
};

use super::facts::collect_facts;
use super::pack::{Pack, Status};
use crate::fleet::Fleet;
use crate::store::{AgentRecord, RemediationHostRecord, RemediationRunRecord, Store, StoreError};

/// Hosts remediated at the same time.
const CONCURRENCY: usize = 32;

/// What a run does.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub run: RemediationRunRecord,
    pub pack: Arc<Pack>,
    pub action: RemediationAction,
    pub timeout: Duration,
}

/// Collects the host's facts and evaluates the run's rule.
async fn rule_status(
    fleet: &Fleet,
    agent: &AgentRecord,
    pack: &Arc<Pack>,
    rule: &str,
    timeout: Duration,
) -> Result<Status, String> {
    let facts = collect_facts(fleet, agent, timeout).await?;
    let json = serde_json::to_value(&facts).unwrap_or_default();
    let pack = pack.clone();
    let rule = rule.to_string();
    tokio::task::spawn_blocking(move || {
        pack.evaluate(&json)
            .into_iter()
            .find(|r| r.rule == rule)
            .map(|r| r.status)
            .ok_or_else(|| format!("the pack has no rule {rule}"))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Sends a remediation command and reads its outcome.
async fn agent_remediation(
    fleet: &Fleet,
    agent: &AgentRecord,
    kind: command::Kind,
    timeout: Duration,
) -> Result<RemediationOutcome, String> {
    match fleet
        .call(&agent.id, kind, timeout)
        .await
        .map_err(|e| e.to_string())?
        .outcome
    {
        Some(command_result::Outcome::Remediation(o)) => Ok(o),
        Some(command_result::Outcome::Error(e)) => Err(e),
        _ => {
            Err("the agent answered with something else (is it older than the coordinator?)".into())
        }
    }
}

fn host_record(agent: &AgentRecord, status: &str) -> RemediationHostRecord {
    RemediationHostRecord {
        agent_id: agent.id.clone(),
        hostname: agent.hostname.clone(),
        status: status.into(),
        before: String::new(),
        after: String::new(),
        changes: Vec::new(),
        message: String::new(),
        applied: false,
        rolled_back_at: None,
    }
}

async fn remediate_host(
    fleet: &Fleet,
    plan: &RunPlan,
    agent: AgentRecord,
) -> RemediationHostRecord {
    let rule = &plan.run.rule;
    let mut rec = host_record(&agent, "unreachable");
    let before = match rule_status(fleet, &agent, &plan.pack, rule, plan.timeout).await {
        Ok(s) => s,
        Err(e) => {
            rec.message = e;
            return rec;
        }
    };
    rec.before = before.name().into();
    if matches!(before, Status::Pass | Status::NotApplicable) {
        rec.status = "compliant".into();
        rec.message = if before == Status::Pass {
            format!("{rule} already passes: nothing to do")
        } else {
            format!("{rule} does not apply to this host: nothing to do")
        };
        return rec;
    }
    let kind = command::Kind::Remediate(Remediate {
        run_id: plan.run.id.clone(),
        rule: rule.clone(),
        action: Some(plan.action.clone()),
        apply: plan.run.apply,
    });
    let outcome = match agent_remediation(fleet, &agent, kind, plan.timeout).await {
        Ok(o) => o,
        Err(e) => {
            rec.status = "failed".into();
            rec.message = e;
            return rec;
        }
    };
    rec.changes = outcome.changes;
    rec.applied = outcome.applied;
    if !plan.run.apply {
        rec.status = "planned".into();
        return rec;
    }
    match rule_status(fleet, &agent, &plan.pack, rule, plan.timeout).await {
        Ok(after) => {
            rec.after = after.name().into();
            rec.status = if after == Status::Pass {
                "fixed"
            } else {
                "not_fixed"
            }
            .into();
            if !rec.applied && after != Status::Pass {
                rec.message = "the agent found nothing it is allowed to change".into();
            }
        }
        Err(e) => {
            rec.status = "not_fixed".into();
            rec.message = format!("changed, but could not be re-checked: {e}");
        }
    }
    rec
}

pub fn to_event(h: &RemediationHostRecord) -> HostRemediation {
    HostRemediation {
        agent_id: h.agent_id.clone(),
        hostname: h.hostname.clone(),
        status: h.status.clone(),
        before: h.before.clone(),
        after: h.after.clone(),
        changes: h.changes.clone(),
        message: h.message.clone(),
    }
}

fn summarise(run_id: &str, hosts: &[RemediationHostRecord], started: Instant) -> RemediateSummary {
    let mut statuses = BTreeMap::new();
    for h in hosts {
        *statuses.entry(h.status.clone()).or_insert(0u32) += 1;
    }
    RemediateSummary {
        run_id: run_id.into(),
        hosts: hosts.len() as u32,
        statuses: statuses.into_iter().collect(),
        duration_ms: started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32,
    }
}

/// Runs a remediation over `agents`, calling `on_host` as each host finishes; stores everything.
pub async fn run(
    store: &Store,
    fleet: &Fleet,
    plan: &RunPlan,
    agents: Vec<AgentRecord>,
    mut on_host: impl FnMut(&RemediationHostRecord),
) -> Result<RemediateSummary, StoreError> {
    let started = Instant::now();
    let targets: Vec<(String, String)> = agents
        .iter()
        .map(|a| (a.id.clone(), a.hostname.clone()))
        .collect();
    store.insert_remediation_run(&plan.run, &targets).await?;
    let mut pending =
        futures::stream::iter(agents.into_iter().map(|a| remediate_host(fleet, plan, a)))
            .buffer_unordered(CONCURRENCY);
    let mut done = Vec::new();
    while let Some(host) = pending.next().await {
        store.record_remediation_host(&plan.run.id, &host).await?;
        on_host(&host);
        done.push(host);
    }
    store.finish_remediation_run(&plan.run.id).await?;
    Ok(summarise(&plan.run.id, &done, started))
}

async fn rollback_host(
    fleet: &Fleet,
    pack: &Arc<Pack>,
    run: &RemediationRunRecord,
    agent: AgentRecord,
    timeout: Duration,
) -> RemediationHostRecord {
    let mut rec = host_record(&agent, "unreachable");
    let kind = command::Kind::RollbackRemediation(RollbackRemediation {
        run_id: run.id.clone(),
    });
    if let Err(e) = collect_facts(fleet, &agent, timeout).await.map(drop) {
        rec.message = e;
        return rec;
    }
    match agent_remediation(fleet, &agent, kind, timeout).await {
        Ok(o) => {
            rec.status = "restored".into();
            rec.changes = o.changes;
            rec.applied = o.applied;
        }
        Err(e) => {
            rec.status = "failed".into();
            rec.message = e;
            return rec;
        }
    }
    match rule_status(fleet, &agent, pack, &run.rule, timeout).await {
        Ok(after) => rec.after = after.name().into(),
        Err(e) => rec.message = format!("restored, but could not be re-checked: {e}"),
    }
    rec
}

/// Rolls back a run on every host it changed (`hosts`: the agents, current records).
pub async fn rollback(
    store: &Store,
    fleet: &Fleet,
    pack: &Arc<Pack>,
    run: &RemediationRunRecord,
    hosts: Vec<AgentRecord>,
    timeout: Duration,
    mut on_host: impl FnMut(&RemediationHostRecord),
) -> Result<RemediateSummary, StoreError> {
    let started = Instant::now();
    let mut pending = futures::stream::iter(
        hosts
            .into_iter()
            .map(|a| rollback_host(fleet, pack, run, a, timeout)),
    )
    .buffer_unordered(CONCURRENCY);
    let mut done = Vec::new();
    while let Some(host) = pending.next().await {
        if host.status == "restored" {
            store.mark_rolled_back(&run.id, &host.agent_id).await?;
        }
        on_host(&host);
        done.push(host);
    }
    Ok(summarise(&run.id, &done, started))
}
