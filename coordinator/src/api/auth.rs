//! Operator authentication (bearer tokens) and authorisation (roles), and the audit wrapper every
//! mutating call goes through. Tokens are compared by hash and never logged.

use std::future::Future;

use tonic::Status;
use tonic::metadata::MetadataMap;

use super::{AppState, store_status};
use crate::store::Role;

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// How the caller appears in the audit log.
    pub fn actor(&self) -> String {
        format!(
            "{} (token {}, {})",
            self.name,
            self.token_id,
            self.role.as_str()
        )
    }
}

fn bearer(metadata: &MetadataMap) -> Result<&str, Status> {
    let value = metadata.get("authorization").ok_or_else(|| {
        Status::unauthenticated("no operator token: pass --token or set RAMPART_TOKEN (see `rampart admin token create`)")
    })?;
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization header is not valid text"))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Status::unauthenticated("the authorization header must be `Bearer <token>`"))
}

/// Identifies the caller from its bearer token.
pub async fn authenticate(state: &AppState, metadata: &MetadataMap) -> Result<Principal, Status> {
    let secret = bearer(metadata)?;
    let token = state
        .store
        .operator_token(secret)
        .await
        .map_err(store_status)?
        .ok_or_else(|| Status::unauthenticated("operator token is unknown or expired"))?;
    Ok(Principal {
        token_id: token.id,
        name: token.name,
        role: token.role,
    })
}

impl Principal {
    /// Refuses unless this caller's role is at least `need`.
    pub fn require(&self, need: Role, action: &str) -> Result<(), Status> {
        if self.role < need {
            return Err(Status::permission_denied(format!(
                "{action} needs the {} role; token {} has the {} role",
                need.as_str(),
                self.token_id,
                self.role.as_str()
            )));
        }
        Ok(())
    }
}

/// Checks the caller's token and that its role is at least `need` for `action`.
pub async fn authorize(
    state: &AppState,
    metadata: &MetadataMap,
    need: Role,
    action: &str,
) -> Result<Principal, Status> {
    let principal = authenticate(state, metadata).await?;
    principal.require(need, action)?;
    Ok(principal)
}

/// Runs a mutating call: authorise, run `body`, and write the audit entry (who, what, arguments
/// summary, result). Refused attempts are audited too.
pub async fn audited<T, F, Fut>(
    state: &AppState,
    metadata: &MetadataMap,
    need: Role,
    action: &str,
    arguments: String,
    body: F,
) -> Result<T, Status>
where
    F: FnOnce(Principal) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let (actor, result) = match authenticate(state, metadata).await {
        Err(status) => ("unauthenticated caller".to_string(), Err(status)),
        Ok(principal) => {
            let actor = principal.actor();
            match principal.require(need, action) {
                Err(status) => (actor, Err(status)),
                Ok(()) => (actor, body(principal).await),
            }
        }
    };
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(s) => format!("{:?}: {}", s.code(), s.message()),
    };
    if let Err(err) = state
        .store
        .append_audit(&actor, action, &arguments, &outcome)
        .await
    {
        tracing::error!(%err, action, "could not write the audit entry");
    }
    result
}
