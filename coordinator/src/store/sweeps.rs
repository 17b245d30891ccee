//! Compliance sweeps: the sweep, each host's outcome, every result, the latest facts per agent,
//! and the result history that status and drift read.

use rampart_common::time::now_ms;
use sqlx::Row;
use sqlx::any::AnyRow;

use rampart_common::labels::Labels;

use super::{Result, Store, StoreError, labels_json, parse_json};

/// One host's outcome in a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepHostRecord {
    pub agent_id: String,
    pub hostname: String,
    /// "ok" or "unreachable".
    pub status: String,
    pub message: String,
    pub collect_ms: u32,
    pub eval_micros: u32,
    /// The host's labels when it was swept.
    pub labels: Labels,
}

/// One host's outcome with its results and, when it sent new ones, its facts (collected at,
/// JSON) to keep as its latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHost {
    pub host: SweepHostRecord,
    pub results: Vec<SweepResultRecord>,
    pub facts: Option<(i64, String)>,
}

/// One check's result on one host in a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepResultRecord {
    pub rule: String,
    pub status: String,
    pub severity: String,
    /// JSON text.
    pub evidence: String,
    pub micros: u64,
    /// With status `waived`: the waiver applied, as JSON (see `compliance::waiver`).
    pub waiver: Option<String>,
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
    /// The coordinator stopped before the sweep finished; it was settled at the next start.
    pub interrupted: bool,
}

/// A stored result with its sweep's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultHistoryRow {
    pub sweep_id: String,
    pub time: i64,
    pub agent_id: String,
    pub hostname: String,
    pub rule: String,
    pub status: String,
    pub severity: String,
    pub evidence: String,
    /// With status `waived`: the waiver applied, as JSON.
    pub waiver: Option<String>,
}

/// One sweep in a list: who ran it, when, and its counts.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOverview {
    pub id: String,
    pub pack: String,
    pub selector: String,
    pub actor: String,
    pub started_at: i64,
    /// None while it runs.
    pub finished_at: Option<i64>,
    pub hosts: u64,
    pub unreachable: u64,
    pub pass: u64,
    pub fail: u64,
    pub error: u64,
}

impl SweepOverview {
    /// Passing share of the pass/fail/error verdicts, in percent; None without verdicts.
    pub fn score(&self) -> Option<f64> {
        let n = self.pass + self.fail + self.error;
        (n > 0).then(|| self.pass as f64 * 100.0 / n as f64)
    }
}

/// Inserts results (agent id, result) in multi-row statements; `with_waiver` adds the waiver
/// column, which only waived results carry.
async fn insert_results(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: super::Backend,
    sweep_id: &str,
    rows: &[(&str, &SweepResultRecord)],
    with_waiver: bool,
) -> Result<()> {
    let columns = if with_waiver { 8 } else { 7 };
    for chunk in rows.chunks(super::rows_per_statement(columns)) {
        let sql = format!(
            "INSERT INTO sweep_results (sweep_id, agent_id, rule, status, severity, evidence, micros{}) VALUES {}",
            if with_waiver { ", waiver" } else { "" },
            super::row_placeholders(backend, chunk.len(), columns)
        );
        let mut q = sqlx::query(&sql);
        for (agent_id, r) in chunk {
            q = q
                .bind(sweep_id)
                .bind(*agent_id)
                .bind(&r.rule)
                .bind(&r.status)
                .bind(&r.severity)
                .bind(&r.evidence)
                .bind(r.micros as i64);
            if with_waiver {
                q = q.bind(r.waiver.as_deref());
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Records a sweep as started over `targets` (agent id, hostname), in one transaction.
    pub async fn create_sweep(
        &self,
        id: &str,
        pack: &str,
        selector: &str,
        actor: &str,
        targets: &[(String, String)],
    ) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "INSERT INTO sweeps (id, pack, selector, actor, started_at, hosts, coordinator_id) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(pack)
        .bind(selector)
        .bind(actor)
        .bind(now_ms())
        .bind(targets.len() as i64)
        .bind(self.coordinator_id())
        .execute(&mut *tx)
        .await?;
        super::runs::insert_targets(&mut tx, self.backend, id, targets).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn finish_sweep(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE sweeps SET finished_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records one host's outcome and every result, in one transaction.
    pub async fn record_sweep_host(
        &self,
        sweep_id: &str,
        host: &SweepHostRecord,
        results: &[SweepResultRecord],
    ) -> Result<()> {
        self.record_sweep_hosts(
            sweep_id,
            &[StoredHost {
                host: host.clone(),
                results: results.to_vec(),
                facts: None,
            }],
        )
        .await
    }

    /// Stores hosts of a sweep with their results and, for hosts that sent new ones, their facts
    /// as the latest: all in one transaction (a sweep of thousands of hosts writes in batches).
    pub async fn record_sweep_hosts(&self, sweep_id: &str, hosts: &[StoredHost]) -> Result<()> {
        if hosts.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin().await?;
        for chunk in hosts.chunks(super::rows_per_statement(8)) {
            let sql = format!(
                "INSERT INTO sweep_hosts (sweep_id, agent_id, hostname, status, message, collect_ms, eval_micros, labels) VALUES {}",
                super::row_placeholders(self.backend, chunk.len(), 8)
            );
            let mut q = sqlx::query(&sql);
            for h in chunk {
                let host = &h.host;
                q = q
                    .bind(sweep_id)
                    .bind(&host.agent_id)
                    .bind(&host.hostname)
                    .bind(&host.status)
                    .bind(&host.message)
                    .bind(i64::from(host.collect_ms))
                    .bind(i64::from(host.eval_micros))
                    .bind(labels_json(&host.labels));
            }
            q.execute(&mut *tx).await?;
        }
        // Waived results carry their waiver; the rest (nearly all) are written without the column.
        let (waived, plain): (Vec<_>, Vec<_>) = hosts
            .iter()
            .flat_map(|h| h.results.iter().map(|r| (h.host.agent_id.as_str(), r)))
            .partition(|(_, r)| r.waiver.is_some());
        insert_results(&mut tx, self.backend, sweep_id, &plain, false).await?;
        insert_results(&mut tx, self.backend, sweep_id, &waived, true).await?;
        let facts: Vec<(&str, i64, &str)> = hosts
            .iter()
            .filter_map(|h| {
                h.facts
                    .as_ref()
                    .map(|(at, json)| (h.host.agent_id.as_str(), *at, json.as_str()))
            })
            .collect();
        for chunk in facts.chunks(super::rows_per_statement(4)) {
            let sql = format!(
                "INSERT INTO facts (agent_id, collected_at, sweep_id, json) VALUES {}
                 ON CONFLICT(agent_id) DO UPDATE SET collected_at = excluded.collected_at, sweep_id = excluded.sweep_id, json = excluded.json",
                super::row_placeholders(self.backend, chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for (agent_id, at, json) in chunk {
                q = q.bind(*agent_id).bind(*at).bind(sweep_id).bind(*json);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Keeps an agent's latest facts (JSON form), replacing older ones.
    pub async fn save_facts(
        &self,
        agent_id: &str,
        sweep_id: &str,
        collected_at: i64,
        json: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO facts (agent_id, collected_at, sweep_id, json) VALUES ($1, $2, $3, $4)
             ON CONFLICT(agent_id) DO UPDATE SET collected_at = excluded.collected_at, sweep_id = excluded.sweep_id, json = excluded.json",
        )
        .bind(agent_id)
        .bind(collected_at)
        .bind(sweep_id)
        .bind(json)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// An agent's latest stored facts: (collected at, JSON).
    pub async fn latest_facts(&self, agent_id: &str) -> Result<Option<(i64, String)>> {
        let row = sqlx::query("SELECT collected_at, json FROM facts WHERE agent_id = $1")
            .bind(agent_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("collected_at")?, r.try_get("json")?)))
            .transpose()
    }

    /// Results of one sweep for one agent, as stored.
    pub async fn sweep_results(
        &self,
        sweep_id: &str,
        agent_id: &str,
    ) -> Result<Vec<SweepResultRecord>> {
        let rows = sqlx::query("SELECT rule, status, severity, evidence, micros, waiver FROM sweep_results WHERE sweep_id = $1 AND agent_id = $2 ORDER BY rule")
            .bind(sweep_id)
            .bind(agent_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SweepResultRecord {
                    rule: r.try_get("rule")?,
                    status: r.try_get("status")?,
                    severity: r.try_get("severity")?,
                    evidence: r.try_get("evidence")?,
                    micros: r.try_get::<i64, _>("micros")? as u64,
                    waiver: r.try_get("waiver")?,
                })
            })
            .collect()
    }

    /// Per host, the count of each status in its latest checked sweep: (agent id, status, count).
    /// A handful of rows per host, whatever the history holds.
    pub async fn latest_status_counts(&self) -> Result<Vec<(String, String, u64)>> {
        let rows = sqlx::query(
            "WITH ranked AS (
                 SELECT h.agent_id, h.sweep_id,
                   ROW_NUMBER() OVER (PARTITION BY h.agent_id ORDER BY s.started_at DESC, s.id DESC) AS n
                 FROM sweep_hosts h JOIN sweeps s ON s.id = h.sweep_id
                 WHERE h.status = 'ok'
             ),
             latest AS (SELECT agent_id, sweep_id FROM ranked WHERE n = 1)
             SELECT l.agent_id, r.status, COUNT(*) AS n
             FROM latest l JOIN sweep_results r ON r.sweep_id = l.sweep_id AND r.agent_id = l.agent_id
             GROUP BY l.agent_id, r.status",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("agent_id")?,
                    r.try_get("status")?,
                    u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// The newest `limit` sweeps, newest first, each with its count of results per status and
    /// of hosts that reported and did not: what a list of sweeps and a score-over-time chart
    /// need, without reading any evidence.
    pub async fn recent_sweeps(&self, limit: u32) -> Result<Vec<SweepOverview>> {
        let rows = sqlx::query(
            "WITH recent AS (SELECT * FROM sweeps ORDER BY started_at DESC, id DESC LIMIT $1)
             SELECT s.id, s.pack, s.selector, s.actor, s.started_at, s.finished_at,
               (SELECT COUNT(*) FROM sweep_hosts h WHERE h.sweep_id = s.id) AS hosts,
               (SELECT COUNT(*) FROM sweep_hosts h WHERE h.sweep_id = s.id AND h.status != 'ok') AS unreachable,
               (SELECT COUNT(*) FROM sweep_results r WHERE r.sweep_id = s.id AND r.status = 'pass') AS pass,
               (SELECT COUNT(*) FROM sweep_results r WHERE r.sweep_id = s.id AND r.status = 'fail') AS fail,
               (SELECT COUNT(*) FROM sweep_results r WHERE r.sweep_id = s.id AND r.status = 'error') AS error
             FROM recent s ORDER BY s.started_at DESC, s.id DESC",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let count = |r: &AnyRow, c: &str| -> Result<u64> {
            Ok(u64::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
        };
        rows.iter()
            .map(|r| {
                Ok(SweepOverview {
                    id: r.try_get("id")?,
                    pack: r.try_get("pack")?,
                    selector: r.try_get("selector")?,
                    actor: r.try_get("actor")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    hosts: count(r, "hosts")?,
                    unreachable: count(r, "unreachable")?,
                    pass: count(r, "pass")?,
                    fail: count(r, "fail")?,
                    error: count(r, "error")?,
                })
            })
            .collect()
    }

    /// Every stored result since `since` (Unix ms), with its sweep's time and the host's name,
    /// ordered by agent, rule and time; only hosts that were checked (not unreachable).
    pub async fn result_history(
        &self,
        agent_id: Option<&str>,
        since: i64,
    ) -> Result<Vec<ResultHistoryRow>> {
        let rows = sqlx::query(
            "SELECT s.id AS sweep_id, s.started_at, r.agent_id, h.hostname, r.rule, r.status, r.severity, r.evidence, r.waiver
             FROM sweep_results r
             JOIN sweeps s ON s.id = r.sweep_id
             JOIN sweep_hosts h ON h.sweep_id = r.sweep_id AND h.agent_id = r.agent_id
             WHERE s.started_at >= $1 AND ($2 IS NULL OR r.agent_id = $3)
             ORDER BY r.agent_id, r.rule, s.started_at, s.id",
        )
        .bind(since)
        .bind(agent_id)
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ResultHistoryRow {
                    sweep_id: r.try_get("sweep_id")?,
                    time: r.try_get("started_at")?,
                    agent_id: r.try_get("agent_id")?,
                    hostname: r.try_get("hostname")?,
                    rule: r.try_get("rule")?,
                    status: r.try_get("status")?,
                    severity: r.try_get("severity")?,
                    evidence: r.try_get("evidence")?,
                    waiver: r.try_get("waiver")?,
                })
            })
            .collect()
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
        let Some(r) = sqlx::query("SELECT * FROM sweeps WHERE id = $1")
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
            interrupted: super::get_flag(&r, "interrupted")?,
        };
        let hosts = sqlx::query(
            "SELECT * FROM sweep_hosts WHERE sweep_id = $1 ORDER BY hostname, agent_id",
        )
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
                eval_micros: u32::try_from(r.try_get::<i64, _>("eval_micros")?).unwrap_or(0),
                labels: parse_json("sweep host labels", &r.try_get::<String, _>("labels")?)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let results = sqlx::query("SELECT agent_id, rule, status, severity, evidence, micros, waiver FROM sweep_results WHERE sweep_id = $1 ORDER BY agent_id, rule")
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
                        waiver: r.try_get("waiver")?,
                    },
                ))
            })
            .collect::<std::result::Result<Vec<_>, StoreError>>()?;
        Ok(Some((sweep, hosts, results)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(a_sweep_round_trips_with_counts_history_and_facts);

    fn result(rule: &str, status: &str, micros: u64) -> SweepResultRecord {
        SweepResultRecord {
            rule: rule.into(),
            status: status.into(),
            severity: "medium".into(),
            evidence: format!("{{\"rule\":\"{rule}\",\"note\":\"quote ' and ✓\"}}"),
            micros,
            waiver: None,
        }
    }

    /// What reports, the console and drift read back is what was written, on either database:
    /// hosts with labels, every result, per-status counts, history and the latest facts.
    async fn a_sweep_round_trips_with_counts_history_and_facts(db: TestDb) {
        let s = db.open().await;
        let targets = vec![
            ("a1".to_string(), "web-1".to_string()),
            ("a2".to_string(), "web-2".to_string()),
        ];
        s.create_sweep("sw1", "linux-baseline", "env=prod", "admin", &targets)
            .await
            .unwrap();
        let host = SweepHostRecord {
            agent_id: "a1".into(),
            hostname: "web-1".into(),
            status: "ok".into(),
            message: String::new(),
            collect_ms: 12,
            eval_micros: 345,
            labels: [("env".to_string(), "prod".to_string())].into(),
        };
        // More results than one insert statement carries.
        let mut results: Vec<SweepResultRecord> = (0..250)
            .map(|i| {
                result(
                    &format!("r{i:03}"),
                    ["pass", "fail", "error"][i % 3],
                    i as u64,
                )
            })
            .collect();
        // Waived results keep their waiver, in whatever order they were written.
        for i in [1, 100, 248] {
            results[i].status = "waived".into();
            results[i].waiver = Some(format!("{{\"id\":\"w{i}\",\"was\":\"fail\"}}"));
        }
        s.record_sweep_host("sw1", &host, &results).await.unwrap();
        let down = SweepHostRecord {
            agent_id: "a2".into(),
            hostname: "web-2".into(),
            status: "unreachable".into(),
            message: "offline".into(),
            ..host.clone()
        };
        s.record_sweep_host("sw1", &down, &[]).await.unwrap();
        s.finish_sweep("sw1").await.unwrap();
        s.save_facts("a1", "sw1", 77, "{\"os\":\"debian\"}")
            .await
            .unwrap();
        s.save_facts("a1", "sw1", 78, "{\"os\":\"debian 12\"}")
            .await
            .unwrap();

        let (sweep, hosts, got) = s.sweep("sw1").await.unwrap().unwrap();
        assert_eq!(
            (
                sweep.pack.as_str(),
                sweep.selector.as_str(),
                sweep.hosts,
                sweep.interrupted
            ),
            ("linux-baseline", "env=prod", 2, false)
        );
        assert!(sweep.finished_at.is_some());
        assert_eq!(hosts, vec![host, down]);
        assert_eq!(got.len(), 250);
        assert_eq!(got[42], ("a1".to_string(), results[42].clone()));
        assert_eq!(s.sweep_results("sw1", "a1").await.unwrap(), results);
        assert!(s.sweep("nope").await.unwrap().is_none());

        let overview = s.recent_sweeps(10).await.unwrap();
        assert_eq!(overview.len(), 1);
        let o = &overview[0];
        assert_eq!(
            (o.hosts, o.unreachable, o.pass, o.fail, o.error),
            (2, 1, 84, 81, 82)
        );
        let mut counts = s.latest_status_counts().await.unwrap();
        counts.sort();
        assert_eq!(
            counts,
            vec![
                ("a1".to_string(), "error".to_string(), 82),
                ("a1".to_string(), "fail".to_string(), 81),
                ("a1".to_string(), "pass".to_string(), 84),
                ("a1".to_string(), "waived".to_string(), 3),
            ]
        );
        let history = s.result_history(Some("a1"), 0).await.unwrap();
        assert_eq!(history.len(), 250);
        assert_eq!(history[0].hostname, "web-1");
        assert_eq!(history[100].waiver, results[100].waiver);
        assert!(s.result_history(Some("a2"), 0).await.unwrap().is_empty());
        assert_eq!(s.result_history(None, 0).await.unwrap().len(), 250);
        assert_eq!(
            s.latest_facts("a1").await.unwrap(),
            Some((78, "{\"os\":\"debian 12\"}".to_string()))
        );
    }
}
