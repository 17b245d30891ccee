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
        self.applied_as(version, &summary()).await
    }

    async fn applied_as(
        &self,
        version: Option<u32>,
        view: &GetAssessmentRequest,
    ) -> Result<Option<Assessment>, Status> {
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
            .map(|a| Some(shape(a, view)))
            .map_err(store_status)
    }
}

/// The view ApplyModel answers with: no factors, no per-host evidence, no file text.
fn summary() -> GetAssessmentRequest {
    GetAssessmentRequest::default()
}

/// Room left in a message for everything but the risks.
const RISK_BUDGET: usize = rampart_proto::MAX_MESSAGE_BYTES - 512 * 1024;

/// Cuts an assessment down to what the caller asked for, and to the message bound.
pub fn shape(mut a: Assessment, view: &GetAssessmentRequest) -> Assessment {
    use prost::Message;
    a.risks_total = u32::try_from(a.risks.len()).unwrap_or(u32::MAX);
    if let Some(min) = threat::risk::Severity::parse(&view.min_severity) {
        a.risks
            .retain(|r| threat::assess::severity_of(r.residual.as_ref()) >= min);
    }
    if !view.risk_ids.is_empty() {
        a.risks.retain(|r| view.risk_ids.contains(&r.id));
    }
    if !view.detail {
        for r in &mut a.risks {
            for rating in [&mut r.inherent, &mut r.residual].into_iter().flatten() {
                rating.factors.clear();
            }
            for m in &mut r.mitigations {
                for c in &mut m.controls {
                    c.hosts.clear();
                }
            }
        }
    }
    if !view.include_yaml {
        a.yaml.clear();
    }
    let budget = RISK_BUDGET.saturating_sub(a.yaml.len());
    let mut used = 0;
    let keep = a
        .risks
        .iter()
        .take_while(|r| {
            used += r.encoded_len() + 8;
            used <= budget
        })
        .count();
    a.risks_omitted = u32::try_from(a.risks.len() - keep).unwrap_or(u32::MAX);
    a.risks.truncate(keep);
    a
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
                assessment: Some(shape(assessment, &summary())),
                previous_version: previous.as_ref().map(|p| p.version).unwrap_or(0),
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
                let previous = self
                    .state
                    .store
                    .threat_model(None)
                    .await
                    .map_err(store_status)?
                    .map(|r| r.version)
                    .unwrap_or(0);
                let actor = who.actor();
                let version = self
                    .state
                    .store
                    .insert_threat_model(&model.name, &req.yaml, &actor)
                    .await
                    .map_err(store_status)?;
                tracing::info!(version, model = %model.name, %actor, "threat model applied");
                // The model just checked is the one stored: assess it without reading it back.
                let mut a = threat::assess_now(&self.state.store, &model)
                    .await
                    .map_err(store_status)?;
                a.version = version;
                a.applied_at_unix_ms = a.evaluated_at_unix_ms;
                a.applied_by = actor;
                Ok(Response::new(ApplyModelResponse {
                    version,
                    assessment: Some(shape(a, &summary())),
                    previous: None,
                    previous_version: previous,
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
        let view = request.get_ref();
        if !view.min_severity.is_empty()
            && threat::risk::Severity::parse(&view.min_severity).is_none()
        {
            return Err(Status::invalid_argument(format!(
                "min_severity must be one of {}, not {:?}",
                threat::risk::Severity::NAMES.join(", "),
                view.min_severity
            )));
        }
        let version = (view.version > 0).then_some(view.version);
        match self.applied_as(version, view).await? {
            Some(a) => Ok(Response::new(a)),
            None => Err(Status::not_found(match version {
                Some(v) => format!("threat model version {v} does not exist"),
                None => "no threat model has been applied; run `rampart threats apply FILE`".into(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use rampart_proto::v1::{Factor, Rating, Risk};

    use super::*;

    fn big(n: usize) -> Assessment {
        let rating = |severity: &str| Rating {
            severity: severity.into(),
            factors: (0..16)
                .map(|i| Factor {
                    name: format!("factor-{i}"),
                    value: 5,
                    source: "default".into(),
                })
                .collect(),
            ..Rating::default()
        };
        Assessment {
            yaml: "x".repeat(100_000),
            risks: (0..n)
                .map(|i| Risk {
                    id: format!("rule:r@e{i}"),
                    reasons: vec!["a reason that takes some room in the message".repeat(8)],
                    inherent: Some(rating(if i < 10 { "critical" } else { "low" })),
                    residual: Some(rating(if i < 10 { "critical" } else { "low" })),
                    ..Risk::default()
                })
                .collect(),
            ..Assessment::default()
        }
    }

    /// Ten times the risks a large model has still fits one answer: the lowest are left out and
    /// counted, never silently.
    #[test]
    fn answers_stay_within_the_message_bound_and_say_what_they_left_out() {
        let a = big(30_000);
        assert!(a.encoded_len() > rampart_proto::MAX_MESSAGE_BYTES);
        let detail = GetAssessmentRequest {
            detail: true,
            include_yaml: true,
            ..Default::default()
        };
        let shaped = shape(a.clone(), &detail);
        assert!(shaped.encoded_len() <= rampart_proto::MAX_MESSAGE_BYTES);
        assert!(shaped.risks_omitted > 0);
        assert_eq!(shaped.risks.len() + shaped.risks_omitted as usize, 30_000);
        assert_eq!(shaped.risks_total, 30_000);
        assert_eq!(
            shaped.risks[0].id, "rule:r@e0",
            "the highest risks are kept"
        );
        assert_eq!(shaped.yaml.len(), 100_000);

        // Without detail: no factors, no file text; a filter by severity.
        let summary = shape(
            a,
            &GetAssessmentRequest {
                min_severity: "high".into(),
                ..Default::default()
            },
        );
        assert_eq!(summary.risks.len(), 10);
        assert_eq!(summary.risks_omitted, 0);
        assert!(summary.yaml.is_empty());
        assert!(
            summary.risks[0]
                .inherent
                .as_ref()
                .unwrap()
                .factors
                .is_empty()
        );
    }
}
