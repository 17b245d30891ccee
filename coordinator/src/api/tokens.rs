//! `TokenService`: join tokens for agents, bearer tokens for operators. Secrets are returned once
//! and stored only as hashes; audit entries never contain them.

use std::sync::Arc;
use std::time::Duration;

use rampart_common::labels;
use rampart_common::time::now_ms;
use rampart_proto::v1::token_service_server::TokenService;
use rampart_proto::v1::{
    CreateJoinTokenRequest, CreateJoinTokenResponse, CreateOperatorTokenRequest,
    CreateOperatorTokenResponse, ListOperatorTokensRequest, ListOperatorTokensResponse,
    OperatorTokenInfo, RevokeOperatorTokenRequest, WhoAmIRequest, WhoAmIResponse,
};
use tonic::{Request, Response, Status};

use super::auth::{audited, authenticate, authorize};
use super::{AppState, store_status};
use crate::store::{RevokeRefusal, Role};

fn token_info(t: crate::store::OperatorTokenInfo) -> OperatorTokenInfo {
    OperatorTokenInfo {
        token_id: t.id,
        name: t.name,
        role: role_to_proto(t.role),
        created_unix_ms: t.created_at,
        last_used_unix_ms: t.last_used_at.unwrap_or(0),
        expires_unix_ms: t.expires_at.unwrap_or(0),
        revoked_unix_ms: t.revoked_at.unwrap_or(0),
    }
}

/// Join tokens live an hour unless asked otherwise: long enough to roll out a batch of hosts.
pub const DEFAULT_JOIN_TTL: Duration = Duration::from_secs(3600);
/// A join token may not outlive a month: it is a credential lying around in scripts.
const MAX_JOIN_TTL: Duration = Duration::from_secs(31 * 86_400);
/// Upper bound on a join token's uses.
const MAX_JOIN_USES: u32 = 100_000;

/// A fresh random secret with a recognisable prefix (so secret scanners can find leaks).
pub fn new_secret(prefix: &str) -> (String, String) {
    let id = hex::encode(rand::random::<[u8; 6]>());
    let secret = format!("{prefix}_{}", hex::encode(rand::random::<[u8; 32]>()));
    (id, secret)
}

pub fn role_from_proto(r: i32) -> Option<Role> {
    use rampart_proto::v1::Role as P;
    match P::try_from(r).ok()? {
        P::Viewer => Some(Role::Viewer),
        P::Operator => Some(Role::Operator),
        P::Admin => Some(Role::Admin),
        P::Unspecified => None,
    }
}

pub fn role_to_proto(r: Role) -> i32 {
    use rampart_proto::v1::Role as P;
    (match r {
        Role::Viewer => P::Viewer,
        Role::Operator => P::Operator,
        Role::Admin => P::Admin,
    }) as i32
}

#[derive(Debug, Clone)]
pub struct TokenApi {
    state: Arc<AppState>,
}

impl TokenApi {
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

#[tonic::async_trait]
impl TokenService for TokenApi {
    async fn create_join_token(
        &self,
        request: Request<CreateJoinTokenRequest>,
    ) -> Result<Response<CreateJoinTokenResponse>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        let summary = format!(
            "labels={:?} ttl_seconds={} uses={}",
            req.labels, req.ttl_seconds, req.uses
        );
        audited(
            &self.state,
            request.metadata(),
            Role::Admin,
            "TokenService/CreateJoinToken",
            summary,
            |who| async move {
                for (k, v) in &req.labels {
                    labels::validate(k, v).map_err(Status::invalid_argument)?;
                }
                let ttl = match req.ttl_seconds {
                    0 => DEFAULT_JOIN_TTL,
                    s => Duration::from_secs(s),
                };
                if ttl > MAX_JOIN_TTL {
                    return Err(Status::invalid_argument(
                        "a join token may be valid for at most 31 days",
                    ));
                }
                let uses = req.uses.max(1);
                if uses > MAX_JOIN_USES {
                    return Err(Status::invalid_argument(format!(
                        "a join token allows at most {MAX_JOIN_USES} uses"
                    )));
                }
                let (id, secret) = new_secret("rpj");
                let expires = now_ms() + ttl.as_millis() as i64;
                let labels = req.labels.into_iter().collect();
                state
                    .store
                    .insert_join_token(&id, &secret, &labels, expires, uses, &who.actor())
                    .await
                    .map_err(store_status)?;
                Ok(Response::new(CreateJoinTokenResponse {
                    token: secret,
                    token_id: id,
                    expires_unix_ms: expires,
                    uses,
                }))
            },
        )
        .await
    }

    async fn create_operator_token(
        &self,
        request: Request<CreateOperatorTokenRequest>,
    ) -> Result<Response<CreateOperatorTokenResponse>, Status> {
        let req = request.get_ref().clone();
        let state = self.state.clone();
        let summary = format!(
            "role={} name={:?} ttl_seconds={}",
            req.role, req.name, req.ttl_seconds
        );
        audited(&self.state, request.metadata(), Role::Admin, "TokenService/CreateOperatorToken", summary, |_who| async move {
            let role = role_from_proto(req.role)
                .ok_or_else(|| Status::invalid_argument("role must be viewer, operator or admin"))?;
            let name = req.name.trim();
            if name.is_empty() || name.len() > 128 {
                return Err(Status::invalid_argument("name must be 1 to 128 characters; it identifies the holder in the audit log"));
            }
            let expires = (req.ttl_seconds > 0).then(|| now_ms() + (req.ttl_seconds as i64).saturating_mul(1000));
            let (id, secret) = new_secret("rpo");
            state.store.insert_operator_token(&id, &secret, name, role, expires).await.map_err(store_status)?;
            Ok(Response::new(CreateOperatorTokenResponse {
                token: secret,
                token_id: id,
                role: role_to_proto(role),
                expires_unix_ms: expires.unwrap_or(0),
            }))
        })
        .await
    }

    async fn list_operator_tokens(
        &self,
        request: Request<ListOperatorTokensRequest>,
    ) -> Result<Response<ListOperatorTokensResponse>, Status> {
        authorize(
            &self.state,
            request.metadata(),
            Role::Admin,
            "TokenService/ListOperatorTokens",
        )
        .await?;
        let tokens = self
            .state
            .store
            .operator_tokens()
            .await
            .map_err(store_status)?;
        Ok(Response::new(ListOperatorTokensResponse {
            tokens: tokens.into_iter().map(token_info).collect(),
        }))
    }

    async fn revoke_operator_token(
        &self,
        request: Request<RevokeOperatorTokenRequest>,
    ) -> Result<Response<OperatorTokenInfo>, Status> {
        let target = request.get_ref().token.trim().to_string();
        let state = self.state.clone();
        audited(
            &self.state,
            request.metadata(),
            Role::Admin,
            "TokenService/RevokeOperatorToken",
            format!("token={target:?}"),
            |_who| async move {
                if target.is_empty() {
                    return Err(Status::invalid_argument("name a token by its id or name"));
                }
                match state
                    .store
                    .revoke_operator_token(&target)
                    .await
                    .map_err(store_status)?
                {
                    Ok(t) => Ok(Response::new(token_info(t))),
                    Err(RevokeRefusal::Unknown) => Err(Status::not_found(format!(
                        "no operator token with id or name {target:?}; `rampart admin token ls` lists them"
                    ))),
                    Err(RevokeRefusal::Ambiguous(ids)) => Err(Status::failed_precondition(format!(
                        "{} live tokens are named {target:?} ({}); revoke one by its id",
                        ids.len(),
                        ids.join(", ")
                    ))),
                    Err(RevokeRefusal::LastAdmin) => Err(Status::failed_precondition(
                        "that is the last live admin token: create another admin token first, or nobody could manage tokens any more",
                    )),
                }
            },
        )
        .await
    }

    async fn who_am_i(
        &self,
        request: Request<WhoAmIRequest>,
    ) -> Result<Response<WhoAmIResponse>, Status> {
        let p = authenticate(&self.state, request.metadata()).await?;
        Ok(Response::new(WhoAmIResponse {
            name: p.name,
            role: role_to_proto(p.role),
            token_id: p.token_id,
        }))
    }
}
