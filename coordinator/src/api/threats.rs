//! `ThreatService`: apply a threat model (operator, audited; dry runs for viewers) and read its
//! assessment with the latest evidence (viewer). The model logic lives in `crate::threat`.

use std::sync::Arc;

use rampart_proto::v1::threat_service_server::ThreatService;
use rampart_proto::v1::{ApplyModelRequest, ApplyModelResponse, Assessment, GetAssessmentRequest};
use tonic::{Request, Response, Status};

use super::auth::{audited, authorize};
use super::{AppState, store_status};
use crate::store::Role;
use crate::threat;

#[derive(Debug, Clone)]
pub struct ThreatApi {
    state: Arc<AppState>,
}

impl ThreatApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    async fn applied(&self, version: Option<u32>) -> Result<Option<Assessment>, Status> {
        let Some(rec) = self
            .state
            .store
            .threat_model(version)
            .await
            .map_err(store_status)?
        else {
            return Ok(None);
        };
        threat::assess_stored(&self.state.store, &rec)
            .await
            .map(Some)
            .map_err(store_status)
    }
}

#[tonic::async_trait]
impl ThreatService for ThreatApi {
    async fn apply_model(
        &self,
        request: Request<ApplyModelRequest>,
    ) -> Result<Response<ApplyModelResponse>, Status> {
        let req = request.get_ref();
        let file = if req.file_name.is_empty() {
            "model.yaml".to_string()
        } else {
            req.file_name.clone()
        };
        let check = || {
            threat::parse_model(&file, &req.yaml).map_err(|errs| {
                Status::invalid_argument(format!(
                    "{errs}\n{} problem(s); the model was not applied",
                    errs.0.len()
                ))
            })
        };
        if req.dry_run {
            authorize(
                &self.state,
                request.metadata(),
                Role::Viewer,
                "ThreatService/ApplyModel",
            )
            .await?;
            let model = check()?;
            let assessment = threat::assess_now(&self.state.store, &model)
                .await
                .map_err(store_status)?;
            let previous = self.applied(None).await?;
            return Ok(Response::new(ApplyModelResponse {
                version: 0,
                assessment: Some(assessment),
                previous,
            }));
        }
        let arguments = format!("file={file} bytes={}", req.yaml.len());
        audited(
            &self.state,
            request.metadata(),
            Role::Operator,
            "ThreatService/ApplyModel",
            arguments,
            |who| async move {
                let model = check()?;
                let previous = self.applied(None).await?;
                let version = self
                    .state
                    .store
                    .insert_threat_model(&model.name, &req.yaml, &who.actor())
                    .await
                    .map_err(store_status)?;
                tracing::info!(version, model = %model.name, actor = %who.actor(), "threat model applied");
                let assessment = self.applied(Some(version)).await?;
                Ok(Response::new(ApplyModelResponse {
                    version,
                    assessment,
                    previous,
                }))
            },
        )
        .await
    }

    async fn get_assessment(
        &self,
        request: Request<GetAssessmentRequest>,
    ) -> Result<Response<Assessment>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "ThreatService/GetAssessment",
        )
        .await?;
        let version = request.get_ref().version;
        let version = (version > 0).then_some(version);
        match self.applied(version).await? {
            Some(a) => Ok(Response::new(a)),
            None => Err(Status::not_found(match version {
                Some(v) => format!("threat model version {v} does not exist"),
                None => "no threat model has been applied; run `rampart threats apply FILE`".into(),
            })),
        }
    }
}
