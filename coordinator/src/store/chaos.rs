//! Experiment runs and game days: the run rows, their timelines and the faults each run injected.

use rampart_common::time::now_ms;
use rampart_proto::v1::{Run, RunFault, TimelineEvent};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError};

/// Why runs that were going when the coordinator stopped end `aborted`.
pub const INTERRUPTED_RUN: &str =
    "the coordinator stopped during the run; its faults are reverted as their agents reconnect";

/// A fault of a finished run that no agent has yet confirmed reverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsettledFault {
    pub run_id: String,
    pub fault_id: String,
    pub agent_id: String,
    pub hostname: String,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn run_from(r: &AnyRow) -> Result<Run> {
    Ok(Run {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        name: r.try_get("name")?,
        state: r.try_get("state")?,
        verdict: r.try_get("verdict")?,
        reason: r.try_get("reason")?,
        created_by: r.try_get("created_by")?,
        started_unix_ms: r.try_get("started_at")?,
        finished_unix_ms: r.try_get("finished_at")?,
        recovery_ms: r.try_get("recovery_ms")?,
        halt_latency_ms: r.try_get("halt_latency_ms")?,
        gameday_id: r.try_get("gameday_id")?,
        stage: r.try_get("stage")?,
        spec: r.try_get("spec")?,
        file: r.try_get("file")?,
        plan: parse(&r.try_get::<String, _>("plan")?, "run plan")?,
        targets: parse(&r.try_get::<String, _>("targets")?, "run targets")?,
        probes: parse(&r.try_get::<String, _>("probes")?, "run probes")?,
        ..Default::default()
    })
}

impl Store {
    /// Records a new run (or game day).
    pub async fn insert_run(&self, run: &Run) -> Result<()> {
        sqlx::query(
            "INSERT INTO chaos_runs (id, kind, name, state, verdict, reason, created_by, started_at, finished_at,
               recovery_ms, halt_latency_ms, gameday_id, stage, spec, plan, targets, probes, file, coordinator_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(&run.id)
        .bind(&run.kind)
        .bind(&run.name)
        .bind(&run.state)
        .bind(&run.verdict)
        .bind(&run.reason)
        .bind(&run.created_by)
        .bind(run.started_unix_ms)
        .bind(run.finished_unix_ms)
        .bind(run.recovery_ms)
        .bind(run.halt_latency_ms)
        .bind(&run.gameday_id)
        .bind(&run.stage)
        .bind(&run.spec)
        .bind(json(&run.plan))
        .bind(json(&run.targets))
        .bind(json(&run.probes))
        .bind(&run.file)
        .bind(self.coordinator_id())
        .execute(&self.writer)
        .await?;
        self.run_changed();
        Ok(())
    }

    /// Saves a run's changing fields (state, verdict, measures, targets, probe summaries).
    pub async fn update_run(&self, run: &Run) -> Result<()> {
        sqlx::query(
            "UPDATE chaos_runs SET state = $1, verdict = $2, reason = $3, finished_at = $4, recovery_ms = $5,
               halt_latency_ms = $6, stage = $7, targets = $8, probes = $9 WHERE id = $10",
        )
        .bind(&run.state)
        .bind(&run.verdict)
        .bind(&run.reason)
        .bind(run.finished_unix_ms)
        .bind(run.recovery_ms)
        .bind(run.halt_latency_ms)
        .bind(&run.stage)
        .bind(json(&run.targets))
        .bind(json(&run.probes))
        .bind(&run.id)
        .execute(&self.writer)
        .await?;
        self.run_changed();
        Ok(())
    }

    /// Appends to a run's timeline; returns the event as stored.
    pub async fn add_run_event(
        &self,
        run_id: &str,
        kind: &str,
        hostname: &str,
        detail: &str,
        actor: &str,
    ) -> Result<TimelineEvent> {
        let at = now_ms();
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO chaos_events (run_id, at, kind, hostname, detail, actor) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        )
        .bind(run_id)
        .bind(at)
        .bind(kind)
        .bind(hostname)
        .bind(detail)
        .bind(actor)
        .fetch_one(&self.writer)
        .await?;
        self.run_changed();
        Ok(TimelineEvent {
            seq,
            at_unix_ms: at,
            run_id: run_id.into(),
            kind: kind.into(),
            hostname: hostname.into(),
            detail: detail.into(),
            actor: actor.into(),
        })
    }

    /// Records (or updates) a fault of a run. `settled`: the agent confirmed it is not applied.
    pub async fn upsert_run_fault(&self, run_id: &str, f: &RunFault, settled: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO chaos_run_faults (fault_id, run_id, agent_id, hostname, kind, step, state, detail, settled)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT(fault_id) DO UPDATE SET state = excluded.state, detail = excluded.detail,
               settled = CASE WHEN excluded.settled > chaos_run_faults.settled THEN excluded.settled ELSE chaos_run_faults.settled END",
        )
        .bind(&f.fault_id)
        .bind(run_id)
        .bind(&f.agent_id)
        .bind(&f.hostname)
        .bind(&f.kind)
        .bind(i64::from(f.step))
        .bind(&f.state)
        .bind(&f.detail)
        .bind(super::flag(settled))
        .execute(&self.writer)
        .await?;
        self.run_changed();
        Ok(())
    }

    /// Updates the state of a fault already recorded (kind and step stay as they were).
    pub async fn update_run_fault_state(&self, f: &RunFault, settled: bool) -> Result<()> {
        sqlx::query(
            "UPDATE chaos_run_faults SET state = $1, detail = $2, settled = CASE WHEN $3 > settled THEN $3 ELSE settled END WHERE fault_id = $4",
        )
        .bind(&f.state)
        .bind(&f.detail)
        .bind(super::flag(settled))
        .bind(&f.fault_id)
        .execute(&self.writer)
        .await?;
        self.run_changed();
        Ok(())
    }

    /// A run with its faults and timeline events after `after_seq` (a game day: its own events
    /// and its experiments', and the experiments as children).
    pub async fn run(&self, id: &str, after_seq: i64) -> Result<Option<Run>> {
        let Some(row) = sqlx::query("SELECT * FROM chaos_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let mut run = run_from(&row)?;
        let faults = sqlx::query(
            "SELECT f.* FROM chaos_run_faults f JOIN chaos_runs r ON r.id = f.run_id
             WHERE r.id = $1 OR r.gameday_id = $1 ORDER BY f.step, f.hostname, f.fault_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for f in faults {
            run.faults.push(RunFault {
                agent_id: f.try_get("agent_id")?,
                hostname: f.try_get("hostname")?,
                fault_id: f.try_get("fault_id")?,
                kind: f.try_get("kind")?,
                step: f.try_get::<i64, _>("step")? as u32,
                state: f.try_get("state")?,
                detail: f.try_get("detail")?,
            });
        }
        let events = sqlx::query(
            "SELECT * FROM chaos_events WHERE seq > $2
               AND (run_id = $1 OR run_id IN (SELECT id FROM chaos_runs WHERE gameday_id = $1))
             ORDER BY seq",
        )
        .bind(id)
        .bind(after_seq)
        .fetch_all(&self.pool)
        .await?;
        for e in events {
            run.timeline.push(TimelineEvent {
                seq: e.try_get("seq")?,
                at_unix_ms: e.try_get("at")?,
                run_id: e.try_get("run_id")?,
                kind: e.try_get("kind")?,
                hostname: e.try_get("hostname")?,
                detail: e.try_get("detail")?,
                actor: e.try_get("actor")?,
            });
        }
        let children =
            sqlx::query("SELECT * FROM chaos_runs WHERE gameday_id = $1 ORDER BY started_at, id")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        for c in children {
            run.children.push(run_from(&c)?);
        }
        Ok(Some(run))
    }

    /// Runs and game days, newest first, without timelines.
    pub async fn runs(&self, kind: &str, limit: u32) -> Result<Vec<Run>> {
        let rows = sqlx::query(
            "SELECT * FROM chaos_runs WHERE ($1 = '' OR kind = $1) ORDER BY started_at DESC, id LIMIT $2",
        )
        .bind(kind)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from).collect()
    }

    /// Ends every run that a coordinator no longer alive left going (the previous process of
    /// this one, or another that died): `aborted`, with a timeline entry. Returns their ids.
    /// Their faults stay unsettled until the agents confirm.
    pub async fn settle_interrupted_runs(&self) -> Result<Vec<String>> {
        let now = now_ms();
        let mut tx = self.begin_locked(super::WriteLock::Settle).await?;
        let sql = format!(
            "SELECT id FROM chaos_runs WHERE state != 'finished' AND {} ORDER BY id",
            super::coordinators::orphaned("chaos_runs")
        );
        let ids: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&mut *tx).await?;
        for id in &ids {
            sqlx::query(
                "UPDATE chaos_runs SET state = 'finished', verdict = 'aborted', reason = $1, finished_at = $2 WHERE id = $3",
            )
            .bind(INTERRUPTED_RUN)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO chaos_events (run_id, at, kind, hostname, detail, actor) VALUES ($1, $2, 'abort', '', $3, 'coordinator')",
            )
            .bind(id)
            .bind(now)
            .bind(INTERRUPTED_RUN)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Agents holding faults of finished runs that no revert has been confirmed for.
    pub async fn agents_with_unsettled_run_faults(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT f.agent_id FROM chaos_run_faults f JOIN chaos_runs r ON r.id = f.run_id
             WHERE f.settled = 0 AND r.state = 'finished' ORDER BY f.agent_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Faults of finished runs on `agent_id` that no revert has been confirmed for.
    pub async fn unsettled_run_faults(&self, agent_id: &str) -> Result<Vec<UnsettledFault>> {
        let rows = sqlx::query(
            "SELECT f.* FROM chaos_run_faults f JOIN chaos_runs r ON r.id = f.run_id
             WHERE f.agent_id = $1 AND f.settled = 0 AND r.state = 'finished' ORDER BY f.fault_id",
        )
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UnsettledFault {
                    run_id: r.try_get("run_id")?,
                    fault_id: r.try_get("fault_id")?,
                    agent_id: r.try_get("agent_id")?,
                    hostname: r.try_get("hostname")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(interrupted_runs_end_aborted_and_keep_their_faults_to_revert);

    use super::*;

    async fn interrupted_runs_end_aborted_and_keep_their_faults_to_revert(db: TestDb) {
        let s = db.open().await;
        let run = Run {
            id: "run-1".into(),
            kind: "experiment".into(),
            name: "x".into(),
            state: "running".into(),
            created_by: "op".into(),
            started_unix_ms: 1,
            recovery_ms: -1,
            halt_latency_ms: -1,
            spec: "kind: Experiment".into(),
            file: "x.yaml".into(),
            plan: vec!["at 0s for 1m: cpu".into()],
            ..Default::default()
        };
        s.insert_run(&run).await.unwrap();
        let fault = |id: &str, state: &str| RunFault {
            agent_id: "a1".into(),
            hostname: "h1".into(),
            fault_id: id.into(),
            kind: "cpu".into(),
            step: 0,
            state: state.into(),
            detail: String::new(),
        };
        s.upsert_run_fault("run-1", &fault("f1", "pending"), false)
            .await
            .unwrap();
        s.upsert_run_fault("run-1", &fault("f2", "reverted"), true)
            .await
            .unwrap();
        // Running runs' faults are the engine's business, not the reconciler's.
        assert!(s.unsettled_run_faults("a1").await.unwrap().is_empty());
        s.add_run_event("run-1", "inject", "h1", "cpu", "")
            .await
            .unwrap();
        assert_eq!(s.settle_interrupted_runs().await.unwrap(), ["run-1"]);
        let got = s.run("run-1", 0).await.unwrap().unwrap();
        assert_eq!(
            (got.state.as_str(), got.verdict.as_str()),
            ("finished", "aborted")
        );
        assert_eq!(got.timeline.len(), 2);
        assert_eq!(got.plan, run.plan);
        assert_eq!(
            (got.file.as_str(), got.spec.as_str()),
            ("x.yaml", "kind: Experiment")
        );
        let open = s.unsettled_run_faults("a1").await.unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].fault_id, "f1");
        // Settling never goes back.
        s.upsert_run_fault("run-1", &fault("f1", "reverted"), true)
            .await
            .unwrap();
        s.upsert_run_fault("run-1", &fault("f1", "unknown"), false)
            .await
            .unwrap();
        assert!(s.unsettled_run_faults("a1").await.unwrap().is_empty());
        assert!(s.settle_interrupted_runs().await.unwrap().is_empty());
        let after = s.run("run-1", got.timeline[1].seq).await.unwrap().unwrap();
        assert!(after.timeline.is_empty());
    }
}
