//! Heartbeats are noted in memory and written to the store once a second in one transaction: a
//! fleet of 10,000 agents on a 10 s interval would otherwise cost a thousand single-row writes a
//! second. `last_seen` is at most one flush period late; being online is the session itself.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use rampart_common::time::now_ms;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::store::Store;

/// How often noted heartbeats are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Agents heard from since the last flush.
#[derive(Debug, Default)]
pub struct Heartbeats {
    pending: Mutex<HashSet<String>>,
}

impl Heartbeats {
    /// Notes a heartbeat from `agent_id`; cheap, never touches the store.
    pub fn note(&self, agent_id: &str) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !pending.contains(agent_id) {
            pending.insert(agent_id.to_string());
        }
    }

    /// How many agents wait for the next flush.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Writes what was noted; on a store error the agents are kept for the next attempt.
    pub async fn flush(&self, store: &Store) {
        let ids: Vec<String> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if ids.is_empty() {
            return;
        }
        if let Err(err) = store.touch_agents(&ids, now_ms()).await {
            warn!(%err, agents = ids.len(), "could not record heartbeats; retrying with the next batch");
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(ids);
        }
    }

    /// Flushes every [`FLUSH_EVERY`] until `shutdown` (the coordinator flushes once more after its
    /// sessions have ended, before it closes the store).
    pub async fn run(&self, store: Store, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.flush(&store).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(heartbeats_batched, heartbeats_kept_when_the_store_fails);

    async fn enrolled(store: &Store, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for i in 0..n {
            let id = format!("agent-{i}");
            store
                .insert_agent(&crate::store::testing::agent_record(&id))
                .await
                .unwrap();
            ids.push(id);
        }
        ids
    }

    async fn heartbeats_batched(db: TestDb) {
        let store = db.open().await;
        // More agents than one statement takes, so the chunking is exercised.
        let ids = enrolled(&store, 1203).await;
        let beats = Heartbeats::default();
        for id in &ids {
            beats.note(id);
            beats.note(id);
        }
        assert_eq!(beats.pending(), ids.len(), "each agent is noted once");
        let before = now_ms();
        beats.flush(&store).await;
        assert_eq!(beats.pending(), 0);
        let stale = store
            .agents()
            .await
            .unwrap()
            .into_iter()
            .filter(|a| a.last_seen < before)
            .count();
        assert_eq!(stale, 0, "every noted agent's last_seen was written");
    }

    async fn heartbeats_kept_when_the_store_fails(db: TestDb) {
        let store = db.open().await;
        let ids = enrolled(&store, 3).await;
        let beats = Heartbeats::default();
        for id in &ids {
            beats.note(id);
        }
        store.close().await;
        beats.flush(&store).await;
        assert_eq!(
            beats.pending(),
            3,
            "nothing noted is dropped on a failed write"
        );
    }
}
