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

    /// Claims the slot of a schedule that was due at `due`: records that it started `sweep_id` at
    /// `at` and is due next at `next_run_at`. Only one claim per slot succeeds (the update
    /// requires the due time read), so coordinators sharing a database run each slot once;
    /// false when another already claimed it.
    pub async fn claim_schedule_slot(
        &self,
        id: &str,
        due: i64,
        at: i64,
        sweep_id: &str,
        next_run_at: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE schedules SET last_run_at = $1, last_sweep = $2, next_run_at = $3 WHERE id = $4 AND next_run_at = $5",
        )
        .bind(at)
        .bind(sweep_id)
        .bind(next_run_at)
        .bind(id)
        .bind(due)
        .execute(&self.writer)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{TestDb, on_both_backends};
    use crate::store::{RemediationHostRecord, RemediationRunRecord};
    use rampart_proto::v1::FaultStatus;

    on_both_backends!(schedules_remediation_runs_and_faults_round_trip);

    /// Schedules, remediation runs and faults read back as written, on either database.
    async fn schedules_remediation_runs_and_faults_round_trip(db: TestDb) {
        let s = db.open().await;
        let sched = ScheduleRecord {
            id: "sch1".into(),
            cron: "0 3 * * *".into(),
            selector: "env=prod".into(),
            pack: "linux-baseline".into(),
            created_by: "admin".into(),
            created_at: 10,
            last_run_at: None,
            last_sweep: None,
            next_run_at: 1_000,
        };
        s.insert_schedule(&sched).await.unwrap();
        assert!(
            s.claim_schedule_slot("sch1", 1_000, 1_000, "sw9", 2_000)
                .await
                .unwrap()
        );
        assert!(
            !s.claim_schedule_slot("sch1", 1_000, 1_001, "sw10", 2_000)
                .await
                .unwrap(),
            "a slot is claimed once"
        );
        let got = s.schedules().await.unwrap();
        assert_eq!(
            got,
            vec![ScheduleRecord {
                last_run_at: Some(1_000),
                last_sweep: Some("sw9".into()),
                next_run_at: 2_000,
                ..sched
            }]
        );
        assert!(s.delete_schedule("sch1").await.unwrap());
        assert!(!s.delete_schedule("sch1").await.unwrap());

        let run = RemediationRunRecord {
            id: "rem1".into(),
            rule: "sshd-permit-root-login".into(),
            pack: "linux-baseline".into(),
            selector: String::new(),
            apply: true,
            actor: "admin".into(),
            created_at: 5,
        };
        s.insert_remediation_run(&run, &[("a1".into(), "web-1".into())])
            .await
            .unwrap();
        let host = RemediationHostRecord {
            agent_id: "a1".into(),
            hostname: "web-1".into(),
            status: "fixed".into(),
            before: "fail".into(),
            after: "pass".into(),
            changes: vec!["/etc/ssh/sshd_config: PermitRootLogin no".into()],
            message: String::new(),
            applied: true,
            rolled_back_at: None,
        };
        s.record_remediation_host("rem1", &host).await.unwrap();
        s.finish_remediation_run("rem1").await.unwrap();
        let (got_run, hosts) = s.remediation_run("rem1").await.unwrap().unwrap();
        assert_eq!((got_run, hosts.clone()), (run, vec![host]));
        s.mark_rolled_back("rem1", "a1").await.unwrap();
        let (_, hosts) = s.remediation_run("rem1").await.unwrap().unwrap();
        assert!(hosts[0].rolled_back_at.is_some() && hosts[0].applied);

        let fault = FaultStatus {
            fault_id: "f1".into(),
            kind: "cpu".into(),
            state: "active".into(),
            detail: "2 workers".into(),
            started_unix_ms: 100,
            ends_unix_ms: 200,
            ..Default::default()
        };
        s.upsert_fault("a1", "web-1", &fault, "op").await.unwrap();
        assert_eq!(s.faults(true).await.unwrap().len(), 1);
        // A later report without start/end or requester keeps what the first one said.
        let reverted = FaultStatus {
            state: "reverted".into(),
            started_unix_ms: 0,
            ends_unix_ms: 0,
            reverted_unix_ms: 150,
            reverted_by: "ttl".into(),
            ..fault.clone()
        };
        s.upsert_fault("a1", "web-1", &reverted, "").await.unwrap();
        assert!(s.faults(true).await.unwrap().is_empty());
        let all = s.faults(false).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].requested_by, "op");
        assert_eq!(
            (
                all[0].status.started_unix_ms,
                all[0].status.ends_unix_ms,
                all[0].status.state.as_str()
            ),
            (100, 200, "reverted")
        );
        assert_eq!(s.fault_agent("f1").await.unwrap().as_deref(), Some("a1"));
    }
}
