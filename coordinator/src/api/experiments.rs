//! `ExperimentService`: start experiments and game days, follow them, abort them, approve a game
//! day's gate, add notes. The engine lives in `crate::chaos`; this file checks roles, audits and
//! maps its errors to statuses.

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_proto::v1::experiment_service_server::ExperimentService;
use rampart_proto::v1::{
    AbortRunRequest, ApproveGameDayRequest, GetRunRequest, ListRunsRequest, ListRunsResponse,
    NoteGameDayRequest, Run, StartExperimentRequest, StartGameDayRequest,
};
use tonic::{Request, Response, Status};

use super::auth::{audited, authorize};
use super::{AppState, store_status};
use crate::chaos::{ChaosError, gameday, run, spec, targets};
use crate::fleet::relay::PeerMessage;
use crate::store::Role;

/// Runs listed when the caller gives no limit, and the most it may ask for.
const DEFAULT_LIST: u32 = 50;
const MAX_LIST: u32 = 1000;
/// A note is a line or two, not a document.
const MAX_NOTE: usize = 2000;

#[derive(Debug, Clone)]
pub struct ExperimentApi {
    state: Arc<AppState>,
}

impl ExperimentApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    /// A run as stored, with live probe summaries while it is going.
    async fn current(&self, id: &str, after_seq: i64) -> Result<Run, Status> {
        let mut run = self
            .state
            .store
            .run(id, after_seq)
            .await
            .map_err(store_status)?
            .ok_or_else(|| chaos_status(ChaosError::NotFound(id.to_string())))?;
        if let Some(c) = self.state.chaos.control(id) {
            let live = c
                .live_probes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if !live.is_empty() {
                run.probes = live;
            }
        }
        for child in &mut run.children {
            if let Some(c) = self.state.chaos.control(&child.id) {
                child.probes = c
                    .live_probes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
            }
        }
        Ok(run)
    }
}

/// Sends `message` to the coordinator running `run` when another live coordinator runs it;
/// false when none does (the run is not running anywhere).
async fn forward(
    state: &AppState,
    run: &str,
    message: impl FnOnce() -> PeerMessage,
) -> Result<bool, Status> {
    let Some(relay) = state.fleet.relay() else {
        return Ok(false);
    };
    let cutoff = rampart_common::time::now_ms() - crate::peers::LEASE.as_millis() as i64;
    match state
        .store
        .run_holder(run, cutoff)
        .await
        .map_err(store_status)?
    {
        Some(holder) if holder != relay.id() => {
            relay.broadcast(message()).await.map_err(store_status)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn chaos_status(e: ChaosError) -> Status {
    match e {
        ChaosError::Invalid(errs) => Status::invalid_argument(errs.to_string()),
        ChaosError::NoTargets(_) | ChaosError::State(_) => {
            Status::failed_precondition(e.to_string())
        }
        ChaosError::NotFound(_) => Status::not_found(e.to_string()),
        ChaosError::Store(err) => store_status(err),
    }
}

fn file_name(name: &str, default: &str) -> String {
    if name.is_empty() {
        default.to_string()
    } else {
        name.to_string()
    }
}

#[tonic::async_trait]
impl ExperimentService for ExperimentApi {
    async fn start_experiment(
        &self,
        request: Request<StartExperimentRequest>,
    ) -> Result<Response<Run>, Status> {
        let req = request.get_ref().clone();
        let file = file_name(&req.file_name, "experiment.yaml");
        if req.preview {
            let who = authorize(
                &self.state,
                request.metadata(),
                Role::Viewer,
                "ExperimentService/StartExperiment",
            )
            .await?;
            let e = spec::experiment(&file, &req.yaml).map_err(|e| chaos_status(e.into()))?;
            let agents = self.state.store.agents().await.map_err(store_status)?;
            let targets = targets::pick_targets(agents, &e).map_err(chaos_status)?;
            let mut r = targets::new_run(&e, &req.yaml, &who.actor(), &targets);
            r.id = String::new();
            r.state = "preview".into();
            r.preview = true;
            return Ok(Response::new(r));
        }
        let state = self.state.clone();
        let parsed = spec::experiment(&file, &req.yaml);
        let name = parsed.as_ref().map(|e| e.name.clone()).unwrap_or_default();
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ExperimentService/StartExperiment",
            format!("file={file:?} name={name:?}"),
            |who| async move {
                let e = parsed.map_err(|e| chaos_status(e.into()))?;
                let agents = state.store.agents().await.map_err(store_status)?;
                let targets = targets::pick_targets(agents, &e).map_err(chaos_status)?;
                let mut r = targets::new_run(&e, &req.yaml, &who.actor(), &targets);
                r.file = file;
                let (snapshot, _) = run::launch(&state.chaos, e, r, None)
                    .await
                    .map_err(chaos_status)?;
                Ok(Response::new(snapshot))
            },
        )
        .await
    }

    async fn list_runs(
        &self,
        request: Request<ListRunsRequest>,
    ) -> Result<Response<ListRunsResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ExperimentService/ListRuns",
        )
        .await?;
        let req = request.get_ref();
        if !["", "experiment", "gameday"].contains(&req.kind.as_str()) {
            return Err(Status::invalid_argument(
                "kind is experiment, gameday or empty",
            ));
        }
        let limit = match req.limit {
            0 => DEFAULT_LIST,
            n => n.min(MAX_LIST),
        };
        let runs = self
            .state
            .store
            .runs(&req.kind, limit)
            .await
            .map_err(store_status)?;
        Ok(Response::new(ListRunsResponse { runs }))
    }

    async fn get_run(&self, request: Request<GetRunRequest>) -> Result<Response<Run>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ExperimentService/GetRun",
        )
        .await?;
        let req = request.get_ref();
        Ok(Response::new(self.current(&req.id, req.after_seq).await?))
    }

    async fn abort_run(&self, request: Request<AbortRunRequest>) -> Result<Response<Run>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        let api = self.clone();
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ExperimentService/AbortRun",
            format!("id={:?} reason={:?}", req.id, req.reason),
            |who| async move {
                let reason = if req.reason.trim().is_empty() {
                    format!("aborted by {}", who.name)
                } else {
                    format!("aborted by {}: {}", who.name, req.reason.trim())
                };
                let here = state.chaos.abort(&req.id, &reason, &who.actor());
                let elsewhere = !here
                    && forward(&state, &req.id, || PeerMessage::Abort {
                        run: req.id.clone(),
                        reason: reason.clone(),
                        actor: who.actor(),
                    })
                    .await?;
                if !here && !elsewhere {
                    let run = api.current(&req.id, i64::MAX).await?;
                    return Err(Status::failed_precondition(format!(
                        "{} is not running (it is {}{})",
                        run.id,
                        run.state,
                        if run.verdict.is_empty() {
                            String::new()
                        } else {
                            format!(", {}", run.verdict)
                        }
                    )));
                }
                if req.id.starts_with("gd-") {
                    run::event(&state.chaos, &req.id, "abort", "", &reason, &who.actor()).await;
                }
                Ok(Response::new(api.current(&req.id, i64::MAX).await?))
            },
        )
        .await
    }

    async fn start_game_day(
        &self,
        request: Request<StartGameDayRequest>,
    ) -> Result<Response<Run>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        let file = file_name(&req.file_name, "gameday.yaml");
        let files: BTreeMap<String, String> = req.experiments.clone().into_iter().collect();
        let parsed = spec::gameday(&file, &req.yaml, &files);
        let name = parsed.as_ref().map(|d| d.name.clone()).unwrap_or_default();
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ExperimentService/StartGameDay",
            format!(
                "file={file:?} name={name:?} experiments={:?}",
                files.keys().collect::<Vec<_>>()
            ),
            |who| async move {
                let day = parsed.map_err(|e| chaos_status(e.into()))?;
                let run = gameday::start(&state.chaos, day, &file, &req.yaml, &who.actor())
                    .await
                    .map_err(chaos_status)?;
                Ok(Response::new(run))
            },
        )
        .await
    }

    async fn approve_game_day(
        &self,
        request: Request<ApproveGameDayRequest>,
    ) -> Result<Response<Run>, Status> {
        let id = request.get_ref().id.clone();
        let state = self.state.clone();
        let api = self.clone();
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ExperimentService/ApproveGameDay",
            format!("id={id:?}"),
            |who| async move {
                if let Err(err) = state.chaos.approve(&id) {
                    let approve = || PeerMessage::Approve {
                        run: id.clone(),
                        actor: who.actor(),
                    };
                    if !forward(&state, &id, approve).await? {
                        return Err(chaos_status(err));
                    }
                }
                run::event(
                    &state.chaos,
                    &id,
                    "approval",
                    "",
                    &format!("approved by {}", who.name),
                    &who.actor(),
                )
                .await;
                Ok(Response::new(api.current(&id, i64::MAX).await?))
            },
        )
        .await
    }

    async fn note_game_day(
        &self,
        request: Request<NoteGameDayRequest>,
    ) -> Result<Response<Run>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        let api = self.clone();
        audited(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ExperimentService/NoteGameDay",
            format!("id={:?} chars={}", req.id, req.text.chars().count()),
            |who| async move {
                let text = req.text.trim();
                if text.is_empty() || text.len() > MAX_NOTE {
                    return Err(Status::invalid_argument(format!(
                        "a note is 1 to {MAX_NOTE} bytes"
                    )));
                }
                // Notes go on any run's timeline that exists, finished or not (post-mortems).
                api.current(&req.id, i64::MAX).await?;
                run::event(&state.chaos, &req.id, "note", "", text, &who.actor()).await;
                Ok(Response::new(api.current(&req.id, i64::MAX).await?))
            },
        )
        .await
    }
}
