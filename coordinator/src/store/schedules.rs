//! Scheduled sweeps.

use sqlx::Row;

use super::{Result, Store};

/// A scheduled sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    pub id: String,
    pub cron: String,
    pub selector: String,
    pub pack: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_run_at: Option<i64>,
    pub last_sweep: Option<String>,
    pub next_run_at: i64,
}

impl Store {
    pub async fn insert_schedule(&self, s: &ScheduleRecord) -> Result<()> {
        sqlx::query("INSERT INTO schedules (id, cron, selector, pack, created_by, created_at, next_run_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&s.id)
            .bind(&s.cron)
            .bind(&s.selector)
            .bind(&s.pack)
            .bind(&s.created_by)
            .bind(s.created_at)
            .bind(s.next_run_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn schedules(&self) -> Result<Vec<ScheduleRecord>> {
        let rows = sqlx::query("SELECT * FROM schedules ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ScheduleRecord {
                    id: r.try_get("id")?,
                    cron: r.try_get("cron")?,
                    selector: r.try_get("selector")?,
                    pack: r.try_get("pack")?,
                    created_by: r.try_get("created_by")?,
                    created_at: r.try_get("created_at")?,
                    last_run_at: r.try_get("last_run_at")?,
                    last_sweep: r.try_get("last_sweep")?,
                    next_run_at: r.try_get("next_run_at")?,
                })
            })
            .collect()
    }

    /// Removes a schedule; false when there was none.
    pub async fn delete_schedule(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?
            .rows_affected()
            == 1)
    }

    /// Records that a schedule started a sweep, and when it is due next.
    pub async fn schedule_ran(
        &self,
        id: &str,
        at: i64,
        sweep_id: &str,
        next_run_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE schedules SET last_run_at = $1, last_sweep = $2, next_run_at = $3 WHERE id = $4",
        )
        .bind(at)
        .bind(sweep_id)
        .bind(next_run_at)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
