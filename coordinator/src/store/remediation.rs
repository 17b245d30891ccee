//! Remediation runs (dry runs too) and what each host did.

use sqlx::Row;

use super::{Result, Store, parse_json};
use rampart_common::time::now_ms;

/// A remediation run (a dry run or an applied one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationRunRecord {
    pub id: String,
    pub rule: String,
    pub pack: String,
    pub selector: String,
    pub apply: bool,
    pub actor: String,
    pub created_at: i64,
}

/// What one host did in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationHostRecord {
    pub agent_id: String,
    pub hostname: String,
    pub status: String,
    pub before: String,
    pub after: String,
    pub changes: Vec<String>,
    pub message: String,
    /// Whether the agent changed the host (it then holds backups).
    pub applied: bool,
    pub rolled_back_at: Option<i64>,
}

impl Store {
    /// Records a run as started over `targets` (agent id, hostname), in one transaction.
    pub async fn insert_remediation_run(
        &self,
        r: &RemediationRunRecord,
        targets: &[(String, String)],
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("INSERT INTO remediation_runs (id, rule, pack, selector, apply, actor, created_at, coordinator_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&r.id)
            .bind(&r.rule)
            .bind(&r.pack)
            .bind(&r.selector)
            .bind(super::flag(r.apply))
            .bind(&r.actor)
            .bind(r.created_at)
            .bind(self.coordinator_id())
            .execute(&mut *tx)
            .await?;
        super::runs::insert_targets(&mut tx, self.backend, &r.id, targets).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a run finished: every host's outcome is stored.
    pub async fn finish_remediation_run(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE remediation_runs SET finished_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn record_remediation_host(
        &self,
        run_id: &str,
        h: &RemediationHostRecord,
    ) -> Result<()> {
        sqlx::query("INSERT INTO remediation_hosts (run_id, agent_id, hostname, status, before_status, after_status, changes, message, applied) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(run_id)
            .bind(&h.agent_id)
            .bind(&h.hostname)
            .bind(&h.status)
            .bind(&h.before)
            .bind(&h.after)
            .bind(serde_json::to_string(&h.changes).unwrap_or_default())
            .bind(&h.message)
            .bind(super::flag(h.applied))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// A run and its hosts.
    pub async fn remediation_run(
        &self,
        id: &str,
    ) -> Result<Option<(RemediationRunRecord, Vec<RemediationHostRecord>)>> {
        let Some(r) = sqlx::query("SELECT * FROM remediation_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let run = RemediationRunRecord {
            id: r.try_get("id")?,
            rule: r.try_get("rule")?,
            pack: r.try_get("pack")?,
            selector: r.try_get("selector")?,
            apply: super::get_flag(&r, "apply")?,
            actor: r.try_get("actor")?,
            created_at: r.try_get("created_at")?,
        };
        let rows = sqlx::query(
            "SELECT * FROM remediation_hosts WHERE run_id = $1 ORDER BY hostname, agent_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let hosts = rows
            .iter()
            .map(|r| {
                Ok(RemediationHostRecord {
                    agent_id: r.try_get("agent_id")?,
                    hostname: r.try_get("hostname")?,
                    status: r.try_get("status")?,
                    before: r.try_get("before_status")?,
                    after: r.try_get("after_status")?,
                    changes: parse_json(
                        "remediation changes",
                        &r.try_get::<String, _>("changes")?,
                    )?,
                    message: r.try_get("message")?,
                    applied: super::get_flag(r, "applied")?,
                    rolled_back_at: r.try_get("rolled_back_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((run, hosts)))
    }

    pub async fn mark_rolled_back(&self, run_id: &str, agent_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE remediation_hosts SET rolled_back_at = $1 WHERE run_id = $2 AND agent_id = $3",
        )
        .bind(now_ms())
        .bind(run_id)
        .bind(agent_id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
