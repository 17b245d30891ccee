//! Remediation runs and stored sweep reports.

use sqlx::Row;

use super::{Result, Store, StoreError, SweepHostRecord, SweepResultRecord, parse_json};
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

/// A stored sweep's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRecord {
    pub id: String,
    pub pack: String,
    pub selector: String,
    pub actor: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// Hosts selected when it started.
    pub hosts: u32,
}

impl Store {
    pub async fn insert_remediation_run(&self, r: &RemediationRunRecord) -> Result<()> {
        sqlx::query("INSERT INTO remediation_runs (id, rule, pack, selector, apply, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&r.id)
            .bind(&r.rule)
            .bind(&r.pack)
            .bind(&r.selector)
            .bind(r.apply)
            .bind(&r.actor)
            .bind(r.created_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn record_remediation_host(
        &self,
        run_id: &str,
        h: &RemediationHostRecord,
    ) -> Result<()> {
        sqlx::query("INSERT INTO remediation_hosts (run_id, agent_id, hostname, status, before_status, after_status, changes, message, applied) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(run_id)
            .bind(&h.agent_id)
            .bind(&h.hostname)
            .bind(&h.status)
            .bind(&h.before)
            .bind(&h.after)
            .bind(serde_json::to_string(&h.changes).unwrap_or_default())
            .bind(&h.message)
            .bind(h.applied)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A run and its hosts.
    pub async fn remediation_run(
        &self,
        id: &str,
    ) -> Result<Option<(RemediationRunRecord, Vec<RemediationHostRecord>)>> {
        let Some(r) = sqlx::query("SELECT * FROM remediation_runs WHERE id = ?")
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
            apply: r.try_get("apply")?,
            actor: r.try_get("actor")?,
            created_at: r.try_get("created_at")?,
        };
        let rows = sqlx::query(
            "SELECT * FROM remediation_hosts WHERE run_id = ? ORDER BY hostname, agent_id",
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
                    applied: r.try_get("applied")?,
                    rolled_back_at: r.try_get("rolled_back_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((run, hosts)))
    }

    pub async fn mark_rolled_back(&self, run_id: &str, agent_id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE remediation_hosts SET rolled_back_at = ? WHERE run_id = ? AND agent_id = ?",
        )
        .bind(now_ms())
        .bind(run_id)
        .bind(agent_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A stored sweep, its hosts and every result (per agent), if it exists.
    #[allow(clippy::type_complexity)]
    pub async fn sweep(
        &self,
        id: &str,
    ) -> Result<
        Option<(
            SweepRecord,
            Vec<SweepHostRecord>,
            Vec<(String, SweepResultRecord)>,
        )>,
    > {
        let Some(r) = sqlx::query("SELECT * FROM sweeps WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let sweep = SweepRecord {
            id: r.try_get("id")?,
            pack: r.try_get("pack")?,
            selector: r.try_get("selector")?,
            actor: r.try_get("actor")?,
            started_at: r.try_get("started_at")?,
            finished_at: r.try_get("finished_at")?,
            hosts: u32::try_from(r.try_get::<i64, _>("hosts")?).unwrap_or(0),
        };
        let hosts =
            sqlx::query("SELECT * FROM sweep_hosts WHERE sweep_id = ? ORDER BY hostname, agent_id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(SweepHostRecord {
                        agent_id: r.try_get("agent_id")?,
                        hostname: r.try_get("hostname")?,
                        status: r.try_get("status")?,
                        message: r.try_get("message")?,
                        collect_ms: u32::try_from(r.try_get::<i64, _>("collect_ms")?).unwrap_or(0),
                        eval_micros: u32::try_from(r.try_get::<i64, _>("eval_micros")?)
                            .unwrap_or(0),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        let results = sqlx::query("SELECT agent_id, rule, status, severity, evidence, micros FROM sweep_results WHERE sweep_id = ? ORDER BY agent_id, rule")
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("agent_id")?,
                    SweepResultRecord {
                        rule: r.try_get("rule")?,
                        status: r.try_get("status")?,
                        severity: r.try_get("severity")?,
                        evidence: r.try_get("evidence")?,
                        micros: r.try_get::<i64, _>("micros")? as u64,
                    },
                ))
            })
            .collect::<std::result::Result<Vec<_>, StoreError>>()?;
        Ok(Some((sweep, hosts, results)))
    }
}
