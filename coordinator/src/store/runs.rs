//! What sweeps and remediation runs selected, and settling the ones a stopped coordinator left
//! unfinished: each is marked interrupted, and every selected host that never reported is stored
//! as unreachable with the reason, so no host is silently absent and none counts as passing.

use rampart_common::time::now_ms;
use sqlx::{Any, Transaction};

use super::{Result, Store};

/// The message stored for a host whose outcome a stopped coordinator never received.
pub const INTERRUPTED_HOST: &str =
    "interrupted: the coordinator stopped before this host reported; run it again";

/// What start-up settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settled {
    pub sweeps: Vec<String>,
    pub remediation_runs: Vec<String>,
    /// Hosts recorded as never having answered, over all of them.
    pub hosts: u64,
}

pub(super) async fn insert_targets(
    tx: &mut Transaction<'_, Any>,
    backend: super::Backend,
    run_id: &str,
    targets: &[(String, String)],
) -> Result<()> {
    for chunk in targets.chunks(super::rows_per_statement(3)) {
        let sql = format!(
            "INSERT INTO run_targets (run_id, agent_id, hostname) VALUES {}",
            super::row_placeholders(backend, chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for (agent, host) in chunk {
            q = q.bind(run_id).bind(agent).bind(host);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Settles every sweep and remediation run still marked running that no live coordinator
    /// owns: at start-up (the previous process of this coordinator), and after another
    /// coordinator sharing the database died.
    pub async fn settle_interrupted(&self) -> Result<Settled> {
        use super::coordinators::orphaned;
        let now = now_ms();
        let mut tx = self.begin_locked(super::WriteLock::Settle).await?;
        let sweeps: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT id FROM sweeps WHERE finished_at IS NULL AND {} ORDER BY id",
            orphaned("sweeps")
        ))
        .fetch_all(&mut *tx)
        .await?;
        let runs: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT id FROM remediation_runs WHERE finished_at IS NULL AND {} ORDER BY id",
            orphaned("remediation_runs")
        ))
        .fetch_all(&mut *tx)
        .await?;
        let mut hosts = sqlx::query(&format!(
            "INSERT INTO sweep_hosts (sweep_id, agent_id, hostname, status, message, collect_ms, eval_micros, labels)
             SELECT t.run_id, t.agent_id, t.hostname, 'unreachable', $1, 0, 0,
                    COALESCE((SELECT a.labels FROM agents a WHERE a.id = t.agent_id), '{{}}')
             FROM run_targets t JOIN sweeps s ON s.id = t.run_id
             WHERE s.finished_at IS NULL AND {}
               AND NOT EXISTS (SELECT 1 FROM sweep_hosts h WHERE h.sweep_id = t.run_id AND h.agent_id = t.agent_id)",
            orphaned("s")
        ))
        .bind(INTERRUPTED_HOST)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        hosts += sqlx::query(&format!(
            "INSERT INTO remediation_hosts (run_id, agent_id, hostname, status, before_status, after_status, changes, message, applied)
             SELECT t.run_id, t.agent_id, t.hostname, 'unreachable', '', '', '[]', $1, 0
             FROM run_targets t JOIN remediation_runs r ON r.id = t.run_id
             WHERE r.finished_at IS NULL AND {}
               AND NOT EXISTS (SELECT 1 FROM remediation_hosts h WHERE h.run_id = t.run_id AND h.agent_id = t.agent_id)",
            orphaned("r")
        ))
        .bind(INTERRUPTED_HOST)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(&format!(
            "UPDATE sweeps SET finished_at = $1, interrupted = 1 WHERE finished_at IS NULL AND {}",
            orphaned("sweeps")
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE remediation_runs SET finished_at = $1, interrupted = 1 WHERE finished_at IS NULL AND {}",
            orphaned("remediation_runs")
        ))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Settled {
            sweeps,
            remediation_runs: runs,
            hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(unfinished_runs_are_settled_with_every_silent_host);

    use crate::store::{RemediationRunRecord, SweepHostRecord};

    async fn unfinished_runs_are_settled_with_every_silent_host(db: TestDb) {
        let s = db.open().await;
        let targets: Vec<(String, String)> = (1..=3)
            .map(|i| (format!("agent-{i}"), format!("web-{i}")))
            .collect();
        s.create_sweep("sweep-a", "p", "", "op", &targets)
            .await
            .unwrap();
        s.create_sweep("sweep-done", "p", "", "op", &targets[..1])
            .await
            .unwrap();
        let ok = |agent: &str| SweepHostRecord {
            agent_id: agent.into(),
            hostname: "h".into(),
            status: "ok".into(),
            message: String::new(),
            collect_ms: 1,
            eval_micros: 1,
            labels: Default::default(),
        };
        s.record_sweep_host("sweep-a", &ok("agent-2"), &[])
            .await
            .unwrap();
        s.record_sweep_host("sweep-done", &ok("agent-1"), &[])
            .await
            .unwrap();
        s.finish_sweep("sweep-done").await.unwrap();
        let run = RemediationRunRecord {
            id: "rem-a".into(),
            rule: "r".into(),
            pack: "p".into(),
            selector: String::new(),
            apply: true,
            actor: "op".into(),
            created_at: 1,
        };
        s.insert_remediation_run(&run, &targets[..2]).await.unwrap();

        let settled = s.settle_interrupted().await.unwrap();
        assert_eq!(settled.sweeps, ["sweep-a"]);
        assert_eq!(settled.remediation_runs, ["rem-a"]);
        assert_eq!(settled.hosts, 2 + 2);

        let (sweep, hosts, _) = s.sweep("sweep-a").await.unwrap().unwrap();
        assert!(sweep.interrupted && sweep.finished_at.is_some());
        let statuses: Vec<(&str, &str)> = hosts
            .iter()
            .map(|h| (h.agent_id.as_str(), h.status.as_str()))
            .collect();
        assert_eq!(
            statuses,
            [
                ("agent-2", "ok"),
                ("agent-1", "unreachable"),
                ("agent-3", "unreachable")
            ]
        );
        assert!(hosts[1].message.starts_with("interrupted"));
        let (done, _, _) = s.sweep("sweep-done").await.unwrap().unwrap();
        assert!(!done.interrupted);
        let (_, rem_hosts) = s.remediation_run("rem-a").await.unwrap().unwrap();
        assert_eq!(rem_hosts.len(), 2);
        assert!(rem_hosts.iter().all(|h| h.status == "unreachable"));
        // Settling again finds nothing.
        assert_eq!(s.settle_interrupted().await.unwrap(), Default::default());
    }
}
