//! Coordinators sharing one database: who is alive, which coordinator holds which agent's
//! session, and the commands one coordinator relays to an agent whose session another holds.
//! What a dead coordinator left running is settled through [`Store::settle_interrupted`],
//! [`Store::settle_interrupted_runs`] and [`Store::offline_orphans`]: each touches only what no
//! live coordinator owns.

use rampart_common::time::now_ms;
use sqlx::Row;

use super::{Result, Store};

/// A row of `coordinators`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorRecord {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    /// Where agents reach it (host:port as it listens).
    pub address: String,
    pub started_at: i64,
    pub last_seen: i64,
}

/// A relayed command as its holder claims it.
#[derive(Debug, Clone)]
pub struct RelayedCommand {
    pub id: String,
    pub agent_id: String,
    pub origin: String,
    /// A protobuf-encoded `Command`.
    pub command: Vec<u8>,
}

/// How a relayed command ended, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayAnswer {
    /// A protobuf-encoded `CommandResult`.
    Result(Vec<u8>),
    /// The holder could not get an answer: a kind (`not_connected`, `timeout`, `closed`) and a
    /// message.
    Failed(String, String),
}

/// The SQL condition "no live coordinator owns this row" for a table (or alias) with a
/// `coordinator_id` column.
pub(super) fn orphaned(table: &str) -> String {
    format!(
        "({table}.coordinator_id IS NULL OR {table}.coordinator_id NOT IN (SELECT id FROM coordinators))"
    )
}

fn record(r: &sqlx::any::AnyRow) -> Result<CoordinatorRecord> {
    Ok(CoordinatorRecord {
        id: r.try_get("id")?,
        hostname: r.try_get("hostname")?,
        pid: r.try_get("pid")?,
        address: r.try_get("address")?,
        started_at: r.try_get("started_at")?,
        last_seen: r.try_get("last_seen")?,
    })
}

impl Store {
    /// This process's coordinator id, once [`Store::register_coordinator`] set it. Sweeps, runs
    /// and agent sessions are recorded under it.
    pub fn coordinator_id(&self) -> Option<&str> {
        self.coordinator_id.get().map(String::as_str)
    }

    /// Records `fingerprint` as the deployment's CA if none is recorded yet, and returns the
    /// recorded one.
    pub async fn deployment_ca(&self, fingerprint: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO deployment (id, ca_fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(fingerprint)
        .execute(&self.writer)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT ca_fingerprint FROM deployment WHERE id = 1")
                .fetch_one(&self.writer)
                .await?,
        )
    }

    /// Records this coordinator as alive and makes `rec.id` the id its work is recorded under.
    pub async fn register_coordinator(&self, rec: &CoordinatorRecord) -> Result<()> {
        let _ = self.coordinator_id.set(rec.id.clone());
        sqlx::query(
            "INSERT INTO coordinators (id, hostname, pid, address, started_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&rec.id)
        .bind(&rec.hostname)
        .bind(rec.pid)
        .bind(&rec.address)
        .bind(rec.started_at)
        .bind(rec.last_seen)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Says this coordinator is alive at `at`. False when its row is gone: the others took it
    /// for dead (it stalled past the lease) and settled its work.
    pub async fn coordinator_alive(&self, id: &str, at: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE coordinators SET last_seen = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes a coordinator's row (it stops cleanly).
    pub async fn deregister_coordinator(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM coordinators WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Every coordinator that has a row, oldest first.
    pub async fn coordinators(&self) -> Result<Vec<CoordinatorRecord>> {
        let rows = sqlx::query("SELECT * FROM coordinators ORDER BY started_at, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record).collect()
    }

    /// Removes the rows of coordinators last seen before `cutoff` and returns their ids. Of
    /// several coordinators reaping at once each dead one is returned to exactly one of them.
    pub async fn reap_coordinators(&self, cutoff: i64) -> Result<Vec<String>> {
        let stale: Vec<String> =
            sqlx::query_scalar("SELECT id FROM coordinators WHERE last_seen < $1 ORDER BY id")
                .bind(cutoff)
                .fetch_all(&self.pool)
                .await?;
        let mut reaped = Vec::new();
        for id in stale {
            let r = sqlx::query("DELETE FROM coordinators WHERE id = $1 AND last_seen < $2")
                .bind(&id)
                .bind(cutoff)
                .execute(&self.writer)
                .await?;
            if r.rows_affected() == 1 {
                reaped.push(id);
            }
        }
        Ok(reaped)
    }

    /// Which live coordinator (seen at `cutoff` or later) holds the session of an online agent.
    pub async fn agent_holder(&self, agent_id: &str, cutoff: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT a.coordinator_id FROM agents a JOIN coordinators c ON c.id = a.coordinator_id
             WHERE a.id = $1 AND a.state = 'online' AND c.last_seen >= $2",
        )
        .bind(agent_id)
        .bind(cutoff)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Marks offline every online agent whose session no live coordinator holds (at start-up,
    /// and after a coordinator died). Returns how many.
    pub async fn offline_orphans(&self) -> Result<u64> {
        let sql = format!(
            "UPDATE agents SET state = 'offline' WHERE state = 'online' AND {}",
            orphaned("agents")
        );
        Ok(sqlx::query(&sql)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }

    /// Records this coordinator as holding `ids` again (after the others took it for dead and
    /// marked its agents offline while their sessions went on).
    pub async fn hold_agents(&self, ids: &[String]) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        for chunk in ids.chunks(super::rows_per_statement(1)) {
            let sql = format!(
                "UPDATE agents SET state = 'online', coordinator_id = $1 WHERE state != 'revoked' AND id IN ({})",
                super::list_placeholders(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(self.coordinator_id());
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Which live coordinator (seen at `cutoff` or later) runs an unfinished experiment run or
    /// game day.
    pub async fn run_holder(&self, run_id: &str, cutoff: i64) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT r.coordinator_id FROM chaos_runs r JOIN coordinators c ON c.id = r.coordinator_id
             WHERE r.id = $1 AND r.state != 'finished' AND c.last_seen >= $2",
        )
        .bind(run_id)
        .bind(cutoff)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Queues a command for `holder` to run on `agent_id`'s session.
    pub async fn relay_command(
        &self,
        id: &str,
        agent_id: &str,
        holder: &str,
        origin: &str,
        command: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO relayed_commands (id, agent_id, holder, origin, command, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(agent_id)
        .bind(holder)
        .bind(origin)
        .bind(command.to_vec())
        .bind(now_ms())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Claims every unclaimed command queued for `holder`; each is returned to one claim only.
    pub async fn claim_relayed(&self, holder: &str) -> Result<Vec<RelayedCommand>> {
        let rows = sqlx::query(
            "UPDATE relayed_commands SET claimed_at = $1 WHERE holder = $2 AND claimed_at IS NULL
             RETURNING id, agent_id, origin, command",
        )
        .bind(now_ms())
        .bind(holder)
        .fetch_all(&self.writer)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RelayedCommand {
                    id: r.try_get("id")?,
                    agent_id: r.try_get("agent_id")?,
                    origin: r.try_get("origin")?,
                    command: r.try_get("command")?,
                })
            })
            .collect()
    }

    /// Writes how a relayed command ended.
    pub async fn answer_relayed(&self, id: &str, answer: &RelayAnswer) -> Result<()> {
        let (result, kind, error) = match answer {
            RelayAnswer::Result(b) => (Some(b.clone()), None, None),
            RelayAnswer::Failed(k, e) => (None, Some(k.as_str()), Some(e.as_str())),
        };
        sqlx::query(
            "UPDATE relayed_commands SET done_at = $1, result = $2, error_kind = $3, error = $4 WHERE id = $5",
        )
        .bind(now_ms())
        .bind(result)
        .bind(kind)
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The answer to a relayed command, once there is one.
    pub async fn relayed_answer(&self, id: &str) -> Result<Option<RelayAnswer>> {
        let row = sqlx::query(
            "SELECT result, error_kind, error FROM relayed_commands WHERE id = $1 AND done_at IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let result: Option<Vec<u8>> = r.try_get("result")?;
        Ok(Some(match result {
            Some(b) => RelayAnswer::Result(b),
            None => RelayAnswer::Failed(
                r.try_get::<Option<String>, _>("error_kind")?
                    .unwrap_or_default(),
                r.try_get::<Option<String>, _>("error")?.unwrap_or_default(),
            ),
        }))
    }

    /// Forgets a relayed command (answered, or given up on).
    pub async fn drop_relayed(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM relayed_commands WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Forgets relayed commands created before `before` (their origin died or gave up).
    pub async fn purge_relayed(&self, before: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM relayed_commands WHERE created_at < $1")
                .bind(before)
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    /// Sends a PostgreSQL notification (`pg_notify`); nothing on SQLite, where one coordinator
    /// holds the database.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(payload)
                .execute(&self.writer)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HostInfo;
    use crate::store::testing::{TestDb, agent_record, on_both_backends};

    on_both_backends!(
        a_dead_coordinator_is_reaped_once_and_only_its_work_is_settled,
        relayed_commands_are_claimed_once_and_answered
    );

    fn coordinator(id: &str, last_seen: i64) -> CoordinatorRecord {
        CoordinatorRecord {
            id: id.into(),
            hostname: "h".into(),
            pid: 1,
            address: "127.0.0.1:1".into(),
            started_at: last_seen,
            last_seen,
        }
    }

    async fn a_dead_coordinator_is_reaped_once_and_only_its_work_is_settled(db: TestDb) {
        let live = db.open().await;
        let dead = db.open().await;
        let now = now_ms();
        dead.register_coordinator(&coordinator("c-dead", now - 60_000))
            .await
            .unwrap();
        live.register_coordinator(&coordinator("c-live", now))
            .await
            .unwrap();
        for (store, agent) in [(&dead, "agent-d"), (&live, "agent-l")] {
            store.insert_agent(&agent_record(agent)).await.unwrap();
            store
                .agent_online(agent, &HostInfo::default())
                .await
                .unwrap();
        }
        let targets = [("agent-d".to_string(), "h".to_string())];
        dead.create_sweep("sweep-dead", "p", "", "op", &targets)
            .await
            .unwrap();
        live.create_sweep("sweep-live", "p", "", "op", &targets)
            .await
            .unwrap();
        let run = |id: &str| rampart_proto::v1::Run {
            id: id.into(),
            kind: "experiment".into(),
            state: "running".into(),
            ..Default::default()
        };
        dead.insert_run(&run("run-dead")).await.unwrap();
        live.insert_run(&run("run-live")).await.unwrap();
        assert_eq!(
            live.run_holder("run-live", now - 15_000).await.unwrap(),
            Some("c-live".into())
        );
        assert_eq!(
            live.agent_holder("agent-d", now - 15_000).await.unwrap(),
            None,
            "a stale holder holds nothing"
        );
        assert_eq!(
            live.agent_holder("agent-l", now - 15_000).await.unwrap(),
            Some("c-live".into())
        );
        // Nothing is settled while the dead coordinator still has its row.
        assert_eq!(live.offline_orphans().await.unwrap(), 0);
        assert_eq!(live.settle_interrupted().await.unwrap(), Default::default());
        assert!(live.settle_interrupted_runs().await.unwrap().is_empty());

        let (a, b) = tokio::join!(
            live.reap_coordinators(now - 15_000),
            dead.reap_coordinators(now - 15_000)
        );
        let mut reaped = a.unwrap();
        reaped.extend(b.unwrap());
        assert_eq!(reaped, ["c-dead"], "reaped exactly once");
        assert_eq!(live.offline_orphans().await.unwrap(), 1);
        let settled = live.settle_interrupted().await.unwrap();
        assert_eq!(settled.sweeps, ["sweep-dead"]);
        assert_eq!(settled.hosts, 1);
        // The dead coordinator's experiment is aborted; the live one's goes on.
        assert_eq!(live.settle_interrupted_runs().await.unwrap(), ["run-dead"]);
        assert_eq!(
            live.run("run-live", 0).await.unwrap().unwrap().state,
            "running"
        );
        assert_eq!(
            live.agent("agent-l").await.unwrap().unwrap().state,
            crate::store::AgentState::Online
        );
        assert!(
            live.sweep("sweep-live")
                .await
                .unwrap()
                .unwrap()
                .0
                .finished_at
                .is_none(),
            "a live coordinator's sweep goes on"
        );
        assert!(!dead.coordinator_alive("c-dead", now).await.unwrap());
        assert!(live.coordinator_alive("c-live", now).await.unwrap());
        assert_eq!(
            live.coordinators()
                .await
                .unwrap()
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            ["c-live"]
        );
    }

    async fn relayed_commands_are_claimed_once_and_answered(db: TestDb) {
        let s = db.open().await;
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        s.relay_command("r1", "agent-1", "c-b", "c-a", &big)
            .await
            .unwrap();
        s.relay_command("r2", "agent-2", "c-other", "c-a", b"x")
            .await
            .unwrap();
        let (first, second) = tokio::join!(s.claim_relayed("c-b"), s.claim_relayed("c-b"));
        let mut claimed = first.unwrap();
        claimed.extend(second.unwrap());
        assert_eq!(claimed.len(), 1, "claimed once");
        assert_eq!(
            (claimed[0].id.as_str(), claimed[0].origin.as_str()),
            ("r1", "c-a")
        );
        assert_eq!(claimed[0].command, big, "bytes intact");
        assert_eq!(s.relayed_answer("r1").await.unwrap(), None);
        s.answer_relayed("r1", &RelayAnswer::Result(vec![1, 2, 3]))
            .await
            .unwrap();
        assert_eq!(
            s.relayed_answer("r1").await.unwrap(),
            Some(RelayAnswer::Result(vec![1, 2, 3]))
        );
        let failed = RelayAnswer::Failed("timeout".into(), "no answer".into());
        s.answer_relayed("r2", &failed).await.unwrap();
        assert_eq!(s.relayed_answer("r2").await.unwrap(), Some(failed));
        s.drop_relayed("r1").await.unwrap();
        assert_eq!(s.relayed_answer("r1").await.unwrap(), None);
        assert_eq!(s.purge_relayed(now_ms() + 1).await.unwrap(), 1);
    }
}
