//! Coordinators sharing one database: each has a row in `coordinators` that it renews every
//! [`BEAT`]; one whose row is older than [`LEASE`] is dead. Every coordinator looks for dead
//! ones: of several looking at once one removes the row, and what no live coordinator owns is
//! then settled as at a restart — its agents marked offline (they reconnect to another
//! coordinator), its sweeps and remediation runs interrupted with every silent host
//! `unreachable`, its experiment runs aborted and their faults reverted.
//!
//! SQLite belongs to one coordinator: a second one started on the same data dir while the first
//! runs is refused.

use std::sync::Arc;

use rampart_common::time::now_ms;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::AppState;
use crate::fleet::relay::{PeerMessage, Relay};
use crate::store::{Backend, CoordinatorRecord, Store, StoreError};

pub use crate::fleet::relay::{BEAT, LEASE};

/// Relayed commands older than this are removed (their origin died before reading them).
const RELAYED_KEPT_MS: i64 = 10 * 60 * 1000;
/// Beats between looks for work no coordinator owns when none died meanwhile (a coordinator
/// that stopped cleanly removed its row without settling what it left).
const SETTLE_EVERY: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "another coordinator (pid {pid} on {hostname}, listening on {address}) uses the SQLite database in this data dir; \
         stop it first, or put several coordinators on PostgreSQL (database_url)"
    )]
    SqliteInUse {
        pid: i64,
        hostname: String,
        address: String,
    },
    #[error(
        "the database belongs to a deployment whose CA is {recorded}, and this data dir's CA is {ours}: \
         coordinators sharing a database share one CA; copy ca.pem and ca.key from a data dir of that deployment"
    )]
    OtherCa { recorded: String, ours: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// Whether a coordinator row recorded on this host names a process that still runs (and is not
/// this one: an earlier coordinator of the same process, as tests start them, is gone).
fn still_running(rec: &CoordinatorRecord, host: &str) -> bool {
    if rec.hostname != host {
        return true;
    }
    let me = i64::from(std::process::id());
    if rec.pid == me {
        return false;
    }
    let Ok(pid) = i32::try_from(rec.pid) else {
        return false;
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Registers this coordinator and returns its id. Refuses a CA other than the deployment's. On
/// SQLite, refuses when another coordinator still runs on the database and forgets the rows of
/// earlier ones; on PostgreSQL, removes the rows of coordinators that are dead already: stale
/// ones, and this coordinator's previous process (same host and address, process gone).
pub async fn join(store: &Store, address: &str, ca_fingerprint: &str) -> Result<String, JoinError> {
    let recorded = store.deployment_ca(ca_fingerprint).await?;
    if recorded != ca_fingerprint {
        return Err(JoinError::OtherCa {
            recorded,
            ours: ca_fingerprint.to_string(),
        });
    }
    let now = now_ms();
    let host = hostname();
    let cutoff = now - LEASE.as_millis() as i64;
    match store.backend() {
        Backend::Sqlite => {
            for c in store.coordinators().await? {
                if c.last_seen >= cutoff && still_running(&c, &host) {
                    return Err(JoinError::SqliteInUse {
                        pid: c.pid,
                        hostname: c.hostname,
                        address: c.address,
                    });
                }
                store.deregister_coordinator(&c.id).await?;
            }
        }
        Backend::Postgres => {
            let mut dead = store.reap_coordinators(cutoff).await?;
            // This coordinator's previous process (a restart: same host and address, its
            // process gone) is dead now, not only once its row goes stale.
            for c in store.coordinators().await? {
                if c.hostname == host && c.address == address && !still_running(&c, &host) {
                    store.deregister_coordinator(&c.id).await?;
                    dead.push(c.id);
                }
            }
            if !dead.is_empty() {
                warn!(coordinators = ?dead, "coordinators that stopped answering are removed; their work is settled");
            }
        }
    }
    let id = format!("c{}", hex::encode(rand::random::<[u8; 6]>()));
    store
        .register_coordinator(&CoordinatorRecord {
            id: id.clone(),
            hostname: host,
            pid: i64::from(std::process::id()),
            address: address.to_string(),
            started_at: now,
            last_seen: now,
        })
        .await?;
    info!(coordinator = %id, database = store.backend().as_str(), "coordinator registered");
    Ok(id)
}

/// Removes this coordinator's row as it stops: what it leaves unfinished is settled by the next
/// coordinator to look (or by itself at its next start).
pub async fn leave(store: &Store) {
    if let Some(id) = store.coordinator_id()
        && let Err(err) = store.deregister_coordinator(id).await
    {
        warn!(%err, "could not remove this coordinator's row; the others take it for dead after {LEASE:?}");
    }
}

/// Settles what no live coordinator owns. Returns whether experiment runs were aborted (their
/// faults then need reverting).
pub async fn settle_orphans(store: &Store) -> Result<bool, StoreError> {
    let settled = store.settle_interrupted().await?;
    if settled != Default::default() {
        warn!(
            sweeps = ?settled.sweeps,
            remediation_runs = ?settled.remediation_runs,
            hosts_never_reported = settled.hosts,
            "settled work that a stopped coordinator did not finish"
        );
    }
    let aborted = store.settle_interrupted_runs().await?;
    if !aborted.is_empty() {
        warn!(
            runs = ?aborted,
            "experiment runs and game days that a stopped coordinator did not finish are aborted; their faults are reverted"
        );
    }
    let went_offline = store.offline_orphans().await?;
    if went_offline > 0 {
        info!(
            agents = went_offline,
            "agents of a stopped coordinator marked offline until they reconnect"
        );
    }
    Ok(!aborted.is_empty())
}

/// Renews this coordinator's row, settles dead coordinators' work (PostgreSQL), and acts on
/// messages from the other coordinators, until `shutdown`.
pub fn spawn(
    state: Arc<AppState>,
    relay: Option<Arc<Relay>>,
    address: String,
    shutdown: CancellationToken,
) {
    if let Some(mut messages) = relay.as_ref().and_then(|r| r.take_peer_messages()) {
        let state = state.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    _ = stop.cancelled() => break,
                    m = messages.recv() => match m { Some(m) => m, None => break },
                };
                on_message(&state, message);
            }
        });
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(BEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beats: u64 = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            beats += 1;
            if let Err(err) = beat(&state, &address, beats).await {
                warn!(%err, "could not renew this coordinator's row or settle dead coordinators; retrying");
            }
        }
    });
}

async fn beat(state: &Arc<AppState>, address: &str, beats: u64) -> Result<(), StoreError> {
    let store = &state.store;
    let Some(me) = store.coordinator_id().map(str::to_string) else {
        return Ok(());
    };
    let now = now_ms();
    if !store.coordinator_alive(&me, now).await? {
        error!(
            coordinator = %me,
            "the other coordinators took this one for dead (it did not renew its row for {LEASE:?}) and settled its work; registering again"
        );
        store
            .register_coordinator(&CoordinatorRecord {
                id: me.clone(),
                hostname: hostname(),
                pid: i64::from(std::process::id()),
                address: address.to_string(),
                started_at: now,
                last_seen: now,
            })
            .await?;
        store.hold_agents(&state.fleet.held()).await?;
    }
    if store.backend() != Backend::Postgres {
        return Ok(());
    }
    let dead = store
        .reap_coordinators(now - LEASE.as_millis() as i64)
        .await?;
    if !dead.is_empty() {
        warn!(coordinators = ?dead, "coordinators stopped answering; settling their work");
    }
    if (!dead.is_empty() || beats.is_multiple_of(SETTLE_EVERY)) && settle_orphans(store).await? {
        revert_orphaned_faults(state).await?;
    }
    if beats.is_multiple_of(20) {
        store.purge_relayed(now - RELAYED_KEPT_MS).await?;
    }
    Ok(())
}

/// Reverts, on every online agent, the faults of runs that ended without their revert being
/// confirmed (their coordinator died). Agents that come back later are reconciled when their
/// session opens.
async fn revert_orphaned_faults(state: &Arc<AppState>) -> Result<(), StoreError> {
    for agent in state.store.agents_with_unsettled_run_faults().await? {
        let chaos = state.chaos.clone();
        tokio::spawn(async move { chaos.reconcile_agent(&agent).await });
    }
    Ok(())
}

fn on_message(state: &AppState, message: PeerMessage) {
    match message {
        PeerMessage::Halt { reason, actor } => {
            let halted = state.chaos.abort_all(&reason, &actor);
            warn!(by = %actor, runs = halted, "emergency stop from another coordinator");
        }
        PeerMessage::Abort { run, reason, actor } => {
            if state.chaos.abort(&run, &reason, &actor) {
                info!(%run, by = %actor, "run aborted from another coordinator");
            }
        }
        PeerMessage::Approve { run, actor } => {
            if state.chaos.approve(&run).is_ok() {
                info!(%run, by = %actor, "game day approved from another coordinator");
            }
        }
        PeerMessage::Disconnect { agent } => {
            if state.fleet.disconnect(
                &agent,
                tonic::Status::permission_denied(format!("agent {agent} has been revoked")),
            ) {
                warn!(%agent, "revoked agent's session closed (revoked on another coordinator)");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::TestDb;

    #[tokio::test]
    async fn a_second_coordinator_on_one_sqlite_database_is_refused() {
        let db = TestDb::sqlite().await;
        let store = db.open().await;
        let now = now_ms();
        // A coordinator of another process on this host that still runs (pid 1 always does).
        store
            .register_coordinator(&CoordinatorRecord {
                id: "c-other".into(),
                hostname: hostname(),
                pid: 1,
                address: "127.0.0.1:7443".into(),
                started_at: now,
                last_seen: now,
            })
            .await
            .unwrap();
        let err = join(&store, "127.0.0.1:7444", "sha256:aa")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("pid 1") && err.contains("PostgreSQL"), "{err}");
        // Once its row is stale (it stopped without removing it), the next start goes ahead.
        store
            .coordinator_alive("c-other", now - 60_000)
            .await
            .unwrap();
        let fresh = db.open().await;
        let id = join(&fresh, "127.0.0.1:7444", "sha256:aa").await.unwrap();
        let left: Vec<String> = fresh
            .coordinators()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(left, [id]);
    }

    #[tokio::test]
    async fn a_coordinator_with_another_ca_is_refused() {
        let db = TestDb::sqlite().await;
        let store = db.open().await;
        join(&store, "127.0.0.1:7443", "sha256:aa").await.unwrap();
        leave(&store).await;
        let err = join(&db.open().await, "127.0.0.1:7443", "sha256:bb")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sha256:aa") && err.contains("sha256:bb") && err.contains("ca.key"),
            "{err}"
        );
    }

    /// On PostgreSQL a restarted coordinator settles its previous process's work at once: same
    /// host and address, process gone. Another coordinator's fresh row is left alone.
    #[tokio::test]
    async fn a_restart_on_postgres_takes_its_previous_process_for_dead_at_once() {
        let Some(db) = TestDb::postgres().await else {
            return;
        };
        let store = db.open().await;
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = i64::from(child.id());
        child.wait().unwrap();
        let now = now_ms();
        for (id, address) in [
            ("c-previous", "127.0.0.1:7443"),
            ("c-other", "127.0.0.1:7450"),
        ] {
            store
                .register_coordinator(&CoordinatorRecord {
                    id: id.into(),
                    hostname: hostname(),
                    pid: gone,
                    address: address.into(),
                    started_at: now,
                    last_seen: now,
                })
                .await
                .unwrap();
        }
        let fresh = db.open().await;
        let me = join(&fresh, "127.0.0.1:7443", "sha256:aa").await.unwrap();
        let mut left: Vec<String> = fresh
            .coordinators()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        left.sort();
        let mut want = vec!["c-other".to_string(), me];
        want.sort();
        assert_eq!(left, want);
    }
}
