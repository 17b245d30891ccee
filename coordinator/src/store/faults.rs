//! Faults as the agents last reported them.

use rampart_proto::v1::FaultStatus;
use sqlx::Row;

use super::{Result, Store};
use rampart_common::time::now_ms;

/// A fault and the agent it runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRecord {
    pub agent_id: String,
    pub hostname: String,
    pub status: FaultStatus,
    pub requested_by: String,
}

impl Store {
    /// Records a fault's state. `requested_by` is kept from the first report when empty.
    pub async fn upsert_fault(
        &self,
        agent_id: &str,
        hostname: &str,
        f: &FaultStatus,
        requested_by: &str,
    ) -> Result<()> {
        if f.fault_id.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO faults (fault_id, agent_id, hostname, kind, state, detail, started_at, ends_at, reverted_at, reverted_by, requested_by, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT(fault_id) DO UPDATE SET state = excluded.state, detail = excluded.detail,
               started_at = CASE WHEN excluded.started_at > 0 THEN excluded.started_at ELSE faults.started_at END,
               ends_at = CASE WHEN excluded.ends_at > 0 THEN excluded.ends_at ELSE faults.ends_at END,
               reverted_at = excluded.reverted_at, reverted_by = excluded.reverted_by,
               requested_by = CASE WHEN excluded.requested_by != '' THEN excluded.requested_by ELSE faults.requested_by END,
               updated_at = excluded.updated_at",
        )
        .bind(&f.fault_id)
        .bind(agent_id)
        .bind(hostname)
        .bind(&f.kind)
        .bind(&f.state)
        .bind(&f.detail)
        .bind(f.started_unix_ms)
        .bind(f.ends_unix_ms)
        .bind(f.reverted_unix_ms)
        .bind(&f.reverted_by)
        .bind(requested_by)
        .bind(now_ms())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Faults, newest first; only active ones if asked.
    pub async fn faults(&self, active_only: bool) -> Result<Vec<FaultRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM faults WHERE ($1 = 0 OR state = 'active') ORDER BY started_at DESC, fault_id",
        )
        .bind(super::flag(active_only))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FaultRecord {
                    agent_id: r.try_get("agent_id")?,
                    hostname: r.try_get("hostname")?,
                    requested_by: r.try_get("requested_by")?,
                    status: FaultStatus {
                        fault_id: r.try_get("fault_id")?,
                        kind: r.try_get("kind")?,
                        state: r.try_get("state")?,
                        detail: r.try_get("detail")?,
                        started_unix_ms: r.try_get("started_at")?,
                        ends_unix_ms: r.try_get("ends_at")?,
                        reverted_unix_ms: r.try_get("reverted_at")?,
                        reverted_by: r.try_get("reverted_by")?,
                    },
                })
            })
            .collect()
    }

    /// The agent a fault runs on.
    pub async fn fault_agent(&self, fault_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT agent_id FROM faults WHERE fault_id = $1")
            .bind(fault_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("agent_id")).transpose()?)
    }
}
