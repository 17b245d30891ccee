//! Operator authentication (bearer tokens) and authorisation (roles), and the audit wrapper every
//! mutating call goes through. Tokens are compared by hash and never logged.

use std::future::Future;

use tonic::Status;
use tonic::metadata::MetadataMap;

use super::{AppState, store_status};
use crate::store::Role;

/// A token's "last used" time is written at most this often (ms), not on every call.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

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
        .ok_or_else(|| Status::unauthenticated("operator token is unknown, expired or revoked"))?;
    let now = rampart_common::time::now_ms();
    if token
        .last_used_at
        .is_none_or(|at| now - at >= LAST_USED_GRANULARITY_MS)
    {
        // Best effort and off the caller's path: "last used" is a hint for clean-ups.
        let store = state.store.clone();
        let id = token.id.clone();
        tokio::spawn(async move {
            if let Err(err) = store.touch_operator_token(&id, now).await {
                tracing::warn!(%err, token = %id, "could not record the token's last use");
            }
        });
    }
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

/// What an audit entry written before the action says in its result column.
pub const AUDIT_STARTED: &str = "started";

/// Runs a mutating call: authorise, write a `started` audit entry (who, what, arguments summary),
/// run `body`, then write the outcome entry. Fails closed: when the `started` entry cannot be
/// written the action is not carried out and the caller gets UNAVAILABLE. Refused attempts are
/// audited with one entry (the refusal).
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
    let refused = |actor: String, status: Status| {
        let arguments = &arguments;
        async move {
            let outcome = format!("{:?}: {}", status.code(), status.message());
            if let Err(err) = state
                .store
                .append_audit(&actor, action, arguments, &outcome)
                .await
            {
                tracing::error!(%err, action, "could not write the audit entry of a refused call");
            }
            Err(status)
        }
    };
    let principal = match authenticate(state, metadata).await {
        Ok(p) => p,
        Err(status) => return refused("unauthenticated caller".to_string(), status).await,
    };
    let actor = principal.actor();
    if let Err(status) = principal.require(need, action) {
        return refused(actor, status).await;
    }
    if let Err(err) = state
        .store
        .append_audit(&actor, action, &arguments, AUDIT_STARTED)
        .await
    {
        tracing::error!(%err, action, "audit trail cannot be written; refusing the call");
        return Err(Status::unavailable(format!(
            "{action} was not carried out: its audit entry cannot be written ({err}); check the coordinator's data dir"
        )));
    }
    let result = body(principal).await;
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(s) => format!("{:?}: {}", s.code(), s.message()),
    };
    // The action has happened: its outcome is written even if the caller has gone away, and a
    // failure here leaves the `started` entry as the record that it ran.
    if let Err(err) = state
        .store
        .append_audit(&actor, action, &arguments, &outcome)
        .await
    {
        tracing::error!(%err, action, "could not write the outcome audit entry");
    }
    result
}
