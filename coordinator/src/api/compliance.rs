//! `ComplianceService`: sweeps (streamed host by host) and the loaded packs.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use rampart_common::labels::Selector;
use rampart_proto::v1::compliance_service_server::ComplianceService;
use rampart_proto::v1::{
    AddScheduleRequest, DriftRequest, DriftResponse, HistoryRequest, HistoryResponse,
    ListPacksRequest, ListPacksResponse, ListSchedulesRequest, ListSchedulesResponse, PackInfo,
    RemoveScheduleRequest, RemoveScheduleResponse, Schedule, StatusRequest, StatusResponse,
    SweepEvent, SweepRequest, SweepStarted, sweep_event,
};
use rampart_proto::v1::{
    CheckInfo, GetSweepRequest, GetSweepResponse, RemediateEvent, RemediateRequest,
    RemediateStarted, RollbackRemediationRequest, remediate_event,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::auth::{audited, authorize};
use super::{AppState, requested_timeout, store_status};
use crate::compliance::pack::{CheckMeta, Pack};
use crate::compliance::sweep::{self, SweepPlan};
use crate::compliance::{history, remediate, schedule, waiver};
use crate::store::RemediationRunRecord;
use crate::store::Role;
use crate::store::ScheduleRecord;
use rampart_common::time::now_ms;

/// Per-host wait for facts when the caller names none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// The pack a sweep uses when none is named.
pub const DEFAULT_PACK: &str = "linux-baseline";

#[derive(Debug, Clone)]
pub struct ComplianceApi {
    state: Arc<AppState>,
}

impl ComplianceApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<SweepEvent, Status>> + Send>>;
type RemediateStream = Pin<Box<dyn Stream<Item = Result<RemediateEvent, Status>> + Send>>;

fn event(e: sweep_event::Event) -> Result<SweepEvent, Status> {
    Ok(SweepEvent { event: Some(e) })
}

#[tonic::async_trait]
impl ComplianceService for ComplianceApi {
    type SweepStream = EventStream;

    async fn sweep(
        &self,
        request: Request<SweepRequest>,
    ) -> Result<Response<Self::SweepStream>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        let summary = format!("selector={:?} pack={:?}", req.selector, req.pack);
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ComplianceService/Sweep",
            summary,
            |who| async move {
                let selector = Selector::parse(&req.selector).map_err(Status::invalid_argument)?;
                let pack = find_pack(&state, &req.pack)?;
                let timeout = requested_timeout(req.timeout_ms, DEFAULT_TIMEOUT, MAX_TIMEOUT);
                let plan = SweepPlan {
                    id: format!("sweep-{}", hex::encode(rand::random::<[u8; 6]>())),
                    selector,
                    selector_text: req.selector.clone(),
                    pack,
                    timeout,
                    profile: req.profile,
                    stored_facts: req.stored_facts,
                    actor: who.actor(),
                };
                let (tx, rx) = tokio::sync::mpsc::channel(256);
                let agents = sweep::select(&state.store, &plan.selector)
                    .await
                    .map_err(store_status)?;
                let hosts = agents.len() as u32;
                // Stored before it is announced: whoever got the id can read the sweep at once.
                sweep::record_start(&state.store, &plan, &agents)
                    .await
                    .map_err(store_status)?;
                let _ = tx
                    .send(event(sweep_event::Event::Started(SweepStarted {
                        sweep_id: plan.id.clone(),
                        pack: plan.pack.name.clone(),
                        hosts,
                    })))
                    .await;
                tokio::spawn(async move {
                    let host_tx = tx.clone();
                    let outcome =
                        sweep::run_recorded(&state.store, &state.fleet, &plan, agents, |host| {
                            // The caller may have gone away; the sweep still completes and is stored.
                            let _ = host_tx.try_send(event(sweep_event::Event::Host(host.clone())));
                        })
                        .await;
                    let last = match outcome {
                        Ok(summary) => event(sweep_event::Event::Summary(summary)),
                        Err(err) => Err(store_status(err)),
                    };
                    let _ = tx.send(last).await;
                });
                Ok(Response::new(
                    Box::pin(ReceiverStream::new(rx)) as EventStream
                ))
            },
        )
        .await
    }

    async fn list_packs(
        &self,
        request: Request<ListPacksRequest>,
    ) -> Result<Response<ListPacksResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ComplianceService/ListPacks",
        )
        .await?;
        let packs = self
            .state
            .packs
            .packs
            .values()
            .map(|p| PackInfo {
                name: p.name.clone(),
                version: p.version.clone(),
                description: p.description.clone(),
                checks: p.checks.len() as u32,
                check_info: p.checks.iter().map(check_info).collect(),
            })
            .collect();
        Ok(Response::new(ListPacksResponse {
            packs,
            errors: self.state.packs.errors.clone(),
        }))
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ComplianceService/Status",
        )
        .await?;
        let mut rows = self
            .state
            .store
            .result_history(None, 0)
            .await
            .map_err(store_status)?;
        let waivers = self.state.store.waivers().await.map_err(store_status)?;
        history::lapse_waivers(&mut rows, &waiver::active_ids(&waivers, now_ms()));
        let (mut hosts, rules) = history::status(&rows);
        let agents = self.state.store.agents().await.map_err(store_status)?;
        for h in &mut hosts {
            if let Some(a) = agents.iter().find(|a| a.id == h.agent_id) {
                h.labels = a.labels.clone();
            }
        }
        Ok(Response::new(StatusResponse { hosts, rules }))
    }

    async fn drift(
        &self,
        request: Request<DriftRequest>,
    ) -> Result<Response<DriftResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ComplianceService/Drift",
        )
        .await?;
        let since = request.get_ref().since_unix_ms;
        let rows = self
            .state
            .store
            .result_history(None, 0)
            .await
            .map_err(store_status)?;
        Ok(Response::new(DriftResponse {
            events: history::drift(&rows, since),
        }))
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ComplianceService/History",
        )
        .await?;
        let id = &request.get_ref().agent_id;
        if self
            .state
            .store
            .agent(id)
            .await
            .map_err(store_status)?
            .is_none()
        {
            return Err(Status::not_found(format!(
                "no agent {id:?}; list them with `rampart agents ls`"
            )));
        }
        let rows = self
            .state
            .store
            .result_history(Some(id), 0)
            .await
            .map_err(store_status)?;
        Ok(Response::new(HistoryResponse {
            sweeps: history::sweep_scores(&rows),
        }))
    }

    async fn add_schedule(
        &self,
        request: Request<AddScheduleRequest>,
    ) -> Result<Response<Schedule>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        let summary = format!(
            "cron={:?} selector={:?} pack={:?}",
            req.cron, req.selector, req.pack
        );
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ComplianceService/AddSchedule",
            summary,
            |who| async move {
                let cron = schedule::parse(&req.cron).map_err(Status::invalid_argument)?;
                Selector::parse(&req.selector).map_err(Status::invalid_argument)?;
                let pack = find_pack(&state, &req.pack)?.name.clone();
                let now = now_ms();
                let next = schedule::next_after(&cron, now).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "cron pattern {:?} never matches again",
                        req.cron
                    ))
                })?;
                let rec = ScheduleRecord {
                    id: format!("sched-{}", hex::encode(rand::random::<[u8; 4]>())),
                    cron: req.cron.trim().to_string(),
                    selector: req.selector.clone(),
                    pack,
                    created_by: who.actor(),
                    created_at: now,
                    last_run_at: None,
                    last_sweep: None,
                    next_run_at: next,
                };
                state
                    .store
                    .insert_schedule(&rec)
                    .await
                    .map_err(store_status)?;
                Ok(Response::new(schedule_to_proto(rec)))
            },
        )
        .await
    }

    async fn list_schedules(
        &self,
        request: Request<ListSchedulesRequest>,
    ) -> Result<Response<ListSchedulesResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ComplianceService/ListSchedules",
        )
        .await?;
        let schedules = self
            .state
            .store
            .schedules()
            .await
            .map_err(store_status)?
            .into_iter()
            .map(schedule_to_proto)
            .collect();
        Ok(Response::new(ListSchedulesResponse { schedules }))
    }

    async fn remove_schedule(
        &self,
        request: Request<RemoveScheduleRequest>,
    ) -> Result<Response<RemoveScheduleResponse>, Status> {
        let id = request.get_ref().id.clone();
        let state = self.state.clone();
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ComplianceService/RemoveSchedule",
            format!("id={id}"),
            |_| async move {
                if state
                    .store
                    .delete_schedule(&id)
                    .await
                    .map_err(store_status)?
                {
                    Ok(Response::new(RemoveScheduleResponse {}))
                } else {
                    Err(Status::not_found(format!(
                        "no schedule {id:?}; see `rampart schedule ls`"
                    )))
                }
            },
        )
        .await
    }

    async fn add_waiver(
        &self,
        request: Request<rampart_proto::v1::AddWaiverRequest>,
    ) -> Result<Response<rampart_proto::v1::Waiver>, Status> {
        super::waivers::add(&self.state, request).await
    }

    async fn list_waivers(
        &self,
        request: Request<rampart_proto::v1::ListWaiversRequest>,
    ) -> Result<Response<rampart_proto::v1::ListWaiversResponse>, Status> {
        super::waivers::list(&self.state, request).await
    }

    async fn remove_waiver(
        &self,
        request: Request<rampart_proto::v1::RemoveWaiverRequest>,
    ) -> Result<Response<rampart_proto::v1::RemoveWaiverResponse>, Status> {
        super::waivers::remove(&self.state, request).await
    }

    async fn get_sweep(
        &self,
        request: Request<GetSweepRequest>,
    ) -> Result<Response<GetSweepResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ComplianceService/GetSweep",
        )
        .await?;
        let id = &request.get_ref().sweep_id;
        let (sweep, hosts, results) = self
            .state
            .store
            .sweep(id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no sweep {id:?}; `rampart compliance history HOST` lists a host's sweeps"
                ))
            })?;
        let pack = self.state.packs.get(&sweep.pack);
        Ok(Response::new(sweep::stored_report(
            sweep,
            hosts,
            results,
            pack.as_deref(),
        )))
    }

    type RemediateStream = RemediateStream;

    async fn remediate(
        &self,
        request: Request<RemediateRequest>,
    ) -> Result<Response<Self::RemediateStream>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        // A dry run only reads the hosts; changing them needs the operator role.
        let role = if req.apply {
            Role::Operator
        } else {
            Role::Viewer
        };
        let summary = format!(
            "rule={:?} selector={:?} pack={:?} apply={}",
            req.rule, req.selector, req.pack, req.apply
        );
        audited(
            &self.state,
            request.metadata(),
            role,
            "ComplianceService/Remediate",
            summary,
            |who| async move {
                let selector = Selector::parse(&req.selector).map_err(Status::invalid_argument)?;
                let pack = find_pack(&state, &req.pack)?;
                let check = pack
                    .checks
                    .iter()
                    .find(|c| c.id == req.rule)
                    .ok_or_else(|| {
                        Status::not_found(format!(
                            "pack {} has no rule {:?}; `rampart packs show {}` lists them",
                            pack.name, req.rule, pack.name
                        ))
                    })?;
                let action = check
                    .action
                    .as_ref()
                    .ok_or_else(|| {
                        Status::failed_precondition(format!(
                            "rule {} has no remediation action; what to do by hand: {}",
                            check.id, check.remediation
                        ))
                    })
                    .and_then(|a| {
                        crate::compliance::action::parse_action(a)
                            .map_err(Status::failed_precondition)
                    })?;
                let agents = sweep::select(&state.store, &selector)
                    .await
                    .map_err(store_status)?;
                let plan = remediate::RunPlan {
                    run: RemediationRunRecord {
                        id: format!("rem-{}", hex::encode(rand::random::<[u8; 6]>())),
                        rule: check.id.clone(),
                        pack: pack.name.clone(),
                        selector: req.selector.clone(),
                        apply: req.apply,
                        actor: who.actor(),
                        created_at: now_ms(),
                    },
                    pack: pack.clone(),
                    action,
                    timeout: requested_timeout(req.timeout_ms, DEFAULT_TIMEOUT, MAX_TIMEOUT),
                };
                let (tx, rx) = tokio::sync::mpsc::channel(256);
                let _ = tx
                    .send(remediate_event(remediate_event::Event::Started(
                        RemediateStarted {
                            run_id: plan.run.id.clone(),
                            rule: plan.run.rule.clone(),
                            pack: pack.name.clone(),
                            apply: req.apply,
                            mode: "remediate".into(),
                            hosts: agents.len() as u32,
                        },
                    )))
                    .await;
                tokio::spawn(async move {
                    let host_tx = tx.clone();
                    let outcome = remediate::run(&state.store, &state.fleet, &plan, agents, |h| {
                        send_host(&host_tx, h)
                    })
                    .await;
                    send_summary(&tx, outcome).await;
                });
                Ok(Response::new(
                    Box::pin(ReceiverStream::new(rx)) as RemediateStream
                ))
            },
        )
        .await
    }

    type RollbackRemediationStream = RemediateStream;

    async fn rollback_remediation(
        &self,
        request: Request<RollbackRemediationRequest>,
    ) -> Result<Response<Self::RollbackRemediationStream>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ComplianceService/RollbackRemediation",
            format!("run={:?}", req.run_id),
            |_| async move {
                let (run, hosts) = state
                    .store
                    .remediation_run(&req.run_id)
                    .await
                    .map_err(store_status)?
                    .ok_or_else(|| {
                        Status::not_found(format!("no remediation run {:?}", req.run_id))
                    })?;
                if !run.apply {
                    return Err(Status::failed_precondition(format!(
                        "run {} was a dry run: nothing was changed, nothing to roll back",
                        run.id
                    )));
                }
                let pack = find_pack(&state, &run.pack)?;
                let changed: Vec<_> = hosts
                    .iter()
                    .filter(|h| h.applied && h.rolled_back_at.is_none())
                    .collect();
                if changed.is_empty() {
                    return Err(Status::failed_precondition(format!(
                        "run {} has no host left to roll back (nothing changed, or already rolled back)",
                        run.id
                    )));
                }
                let mut agents = Vec::new();
                for h in changed {
                    if let Some(a) = state.store.agent(&h.agent_id).await.map_err(store_status)? {
                        agents.push(a);
                    }
                }
                let timeout = requested_timeout(req.timeout_ms, DEFAULT_TIMEOUT, MAX_TIMEOUT);
                let (tx, rx) = tokio::sync::mpsc::channel(256);
                let _ = tx
                    .send(remediate_event(remediate_event::Event::Started(
                        RemediateStarted {
                            run_id: run.id.clone(),
                            rule: run.rule.clone(),
                            pack: run.pack.clone(),
                            apply: true,
                            mode: "rollback".into(),
                            hosts: agents.len() as u32,
                        },
                    )))
                    .await;
                tokio::spawn(async move {
                    let host_tx = tx.clone();
                    let outcome = remediate::rollback(
                        &state.store,
                        &state.fleet,
                        &pack,
                        &run,
                        agents,
                        timeout,
                        |h| send_host(&host_tx, h),
                    )
                    .await;
                    send_summary(&tx, outcome).await;
                });
                Ok(Response::new(
                    Box::pin(ReceiverStream::new(rx)) as RemediateStream
                ))
            },
        )
        .await
    }
}

/// The named pack (empty: the default one), or NOT_FOUND listing the loaded packs.
fn find_pack(state: &AppState, name: &str) -> Result<Arc<Pack>, Status> {
    let name = if name.is_empty() { DEFAULT_PACK } else { name };
    state.packs.get(name).ok_or_else(|| {
        let known: Vec<&String> = state.packs.packs.keys().collect();
        Status::not_found(format!("no pack {name:?}; loaded packs: {known:?}"))
    })
}

fn remediate_event(e: remediate_event::Event) -> Result<RemediateEvent, Status> {
    Ok(RemediateEvent { event: Some(e) })
}

type RemediateSender = tokio::sync::mpsc::Sender<Result<RemediateEvent, Status>>;

/// Streams one host's outcome; a caller that went away does not stop the run.
fn send_host(tx: &RemediateSender, h: &crate::store::RemediationHostRecord) {
    let _ = tx.try_send(remediate_event(remediate_event::Event::Host(
        remediate::to_event(h),
    )));
}

/// Ends the stream with the summary, or the storage error that cut the run short.
async fn send_summary(
    tx: &RemediateSender,
    outcome: Result<rampart_proto::v1::RemediateSummary, crate::store::StoreError>,
) {
    let _ = tx
        .send(match outcome {
            Ok(s) => remediate_event(remediate_event::Event::Summary(s)),
            Err(e) => Err(store_status(e)),
        })
        .await;
}

fn check_info(c: &CheckMeta) -> CheckInfo {
    CheckInfo {
        id: c.id.clone(),
        title: c.title.clone(),
        severity: c.severity.name().into(),
        rationale: c.rationale.clone(),
        remediation: c.remediation.clone(),
        cis: c.references.cis.clone(),
        nist: c.references.nist.clone(),
        cis_controls: c.references.cis_controls.clone(),
        action: c
            .action
            .as_ref()
            .and_then(|a| a["kind"].as_str())
            .unwrap_or_default()
            .to_string(),
    }
}

fn schedule_to_proto(s: ScheduleRecord) -> Schedule {
    Schedule {
        id: s.id,
        cron: s.cron,
        selector: s.selector,
        pack: s.pack,
        created_by: s.created_by,
        last_run_unix_ms: s.last_run_at.unwrap_or(0),
        last_sweep_id: s.last_sweep.unwrap_or_default(),
        next_run_unix_ms: s.next_run_at,
    }
}
