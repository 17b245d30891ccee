//! `AuditService`: reading and verifying the hash-chained audit trail.

use std::sync::Arc;

use rampart_proto::v1::audit_service_server::AuditService;
use rampart_proto::v1::{
    AuditEntry, ListAuditRequest, ListAuditResponse, VerifyAuditRequest, VerifyAuditResponse,
};
use tonic::{Request, Response, Status};

use super::auth::authorize;
use super::{AppState, store_status};
use crate::store::Role;

/// Entries returned when the caller names no limit.
const DEFAULT_LIMIT: u32 = 100;
/// Upper bound per call, to keep responses under the message size limit.
const MAX_LIMIT: u32 = 10_000;

#[derive(Debug, Clone)]
pub struct AuditApi {
    state: Arc<AppState>,
}

impl AuditApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit(
        &self,
        request: Request<ListAuditRequest>,
    ) -> Result<Response<ListAuditResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "AuditService/ListAudit",
        )
        .await?;
        let limit = match request.get_ref().limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let entries = self.state.store.audit(limit).await.map_err(store_status)?;
        let entries = entries
            .into_iter()
            .map(|e| AuditEntry {
                seq: e.seq,
                time_unix_ms: e.time,
                actor: e.actor,
                action: e.action,
                arguments: e.arguments,
                result: e.result,
                hash: e.hash,
            })
            .collect();
        Ok(Response::new(ListAuditResponse { entries }))
    }

    async fn verify_audit(
        &self,
        request: Request<VerifyAuditRequest>,
    ) -> Result<Response<VerifyAuditResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Viewer,
            "AuditService/VerifyAudit",
        )
        .await?;
        let v = self
            .state
            .store
            .verify_audit()
            .await
            .map_err(store_status)?;
        Ok(Response::new(VerifyAuditResponse {
            ok: v.problems.is_empty(),
            entries: v.entries,
            problems: v.problems,
        }))
    }
}
