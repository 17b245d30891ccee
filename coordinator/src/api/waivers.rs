//! The waiver calls of `ComplianceService`: add (operator, audited), list (viewer), remove
//! (operator, audited).

use std::sync::Arc;

use rampart_common::time::now_ms;
use rampart_proto::v1::{AddWaiverRequest, ListWaiversResponse, RemoveWaiverResponse, Waiver};
use tonic::{Request, Response, Status};

use super::auth::{audited, authorize};
use super::{AppState, store_status};
use crate::compliance::waiver;
use crate::store::{Role, WaiverRecord};

/// Most waivers a deployment keeps: each sweep matches every result against them.
const MAX_WAIVERS: usize = 10_000;

pub async fn add(
    state: &Arc<AppState>,
    request: Request<AddWaiverRequest>,
) -> Result<Response<Waiver>, Status> {
    let req = request.get_ref().clone();
    let summary = format!(
        "rule={:?} pack={:?} selector={:?} expires={} reason={:?}",
        req.rule,
        req.pack,
        req.selector,
        rampart_common::time::format_ms(req.expires_unix_ms),
        req.reason
    );
    let st = state.clone();
    audited(
        state,
        request.metadata(),
        Role::Operator,
        "ComplianceService/AddWaiver",
        summary,
        |who| async move {
            let now = now_ms();
            waiver::validate(&req.rule, &req.selector, &req.reason, req.expires_unix_ms, now)
                .map_err(Status::invalid_argument)?;
            known_rule(&st, &req.pack, &req.rule)?;
            if st.store.waivers().await.map_err(store_status)?.len() >= MAX_WAIVERS {
                return Err(Status::resource_exhausted(format!(
                    "{MAX_WAIVERS} waivers are stored: remove expired ones (`rampart waiver ls`, `rampart waiver rm ID`)"
                )));
            }
            let rec = WaiverRecord {
                id: format!("waiver-{}", hex::encode(rand::random::<[u8; 4]>())),
                rule: req.rule.trim().to_string(),
                pack: req.pack.trim().to_string(),
                selector: req.selector.trim().to_string(),
                reason: req.reason.trim().to_string(),
                expires_at: req.expires_unix_ms,
                created_by: who.actor(),
                created_at: now,
            };
            st.store.insert_waiver(&rec).await.map_err(store_status)?;
            Ok(Response::new(waiver::to_proto(&rec)))
        },
    )
    .await
}

/// A waiver must name a check some loaded pack has (that pack, when one is named): a typo would
/// otherwise waive nothing, silently.
fn known_rule(state: &AppState, pack: &str, rule: &str) -> Result<(), Status> {
    let rule = rule.trim();
    let pack = pack.trim();
    if !pack.is_empty() {
        let p = state.packs.get(pack).ok_or_else(|| {
            Status::not_found(format!("no pack {pack:?}; `rampart packs ls` lists them"))
        })?;
        if !p.checks.iter().any(|c| c.id == rule) {
            return Err(Status::not_found(format!(
                "pack {pack} has no check {rule:?}; `rampart packs show {pack}` lists them"
            )));
        }
        return Ok(());
    }
    if state
        .packs
        .packs
        .values()
        .any(|p| p.checks.iter().any(|c| c.id == rule))
    {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "no loaded pack has a check {rule:?}; `rampart packs show NAME` lists a pack's checks"
        )))
    }
}

pub async fn list(
    state: &Arc<AppState>,
    request: Request<rampart_proto::v1::ListWaiversRequest>,
) -> Result<Response<ListWaiversResponse>, Status> {
    authorize(
        state,
        request.metadata(),
        Role::Viewer,
        "ComplianceService/ListWaivers",
    )
    .await?;
    let waivers = state
        .store
        .waivers()
        .await
        .map_err(store_status)?
        .iter()
        .map(waiver::to_proto)
        .collect();
    Ok(Response::new(ListWaiversResponse { waivers }))
}

pub async fn remove(
    state: &Arc<AppState>,
    request: Request<rampart_proto::v1::RemoveWaiverRequest>,
) -> Result<Response<RemoveWaiverResponse>, Status> {
    let id = request.get_ref().id.clone();
    let st = state.clone();
    audited(
        state,
        request.metadata(),
        Role::Operator,
        "ComplianceService/RemoveWaiver",
        format!("id={id}"),
        |_| async move {
            if st.store.delete_waiver(&id).await.map_err(store_status)? {
                Ok(Response::new(RemoveWaiverResponse {}))
            } else {
                Err(Status::not_found(format!(
                    "no waiver {id:?}; see `rampart waiver ls`"
                )))
            }
        },
    )
    .await
}
