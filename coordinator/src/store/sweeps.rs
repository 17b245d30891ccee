//! Compliance sweeps: the sweep, each host's outcome, every result, the latest facts per agent,
//! and the result history that status and drift read.

use rampart_common::time::now_ms;
use serde_json::value::RawValue;
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

/// The statuses a host's row counts (`n_pass`, ...): each with its column.
const COUNTED: [(&str, &str); 5] = [
    ("pass", "n_pass"),
    ("fail", "n_fail"),
    ("error", "n_error"),
    ("not_applicable", "n_not_applicable"),
    ("waived", "n_waived"),
];

/// One result as a host's `results` array keeps it; evidence and waiver are the JSON written.
#[derive(serde::Serialize)]
struct KeptOut<'a> {
    rule: &'a str,
    status: &'a str,
    severity: &'a str,
    micros: u64,
    evidence: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiver: Option<&'a RawValue>,
}

#[derive(serde::Deserialize)]
struct KeptIn<'a> {
    rule: String,
    status: String,
    severity: String,
    micros: u64,
    #[serde(borrow)]
    evidence: &'a RawValue,
    #[serde(borrow, default)]
    waiver: Option<&'a RawValue>,
}

/// JSON text as written; text that is not JSON is kept as a JSON string, so nothing is lost.
fn raw_json(text: &str) -> std::borrow::Cow<'_, RawValue> {
    match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => std::borrow::Cow::Borrowed(raw),
        Err(_) => std::borrow::Cow::Owned(
            RawValue::from_string(serde_json::Value::from(text).to_string())
                .expect("a JSON string is JSON"),
        ),
    }
}

/// A host's results as its row keeps them (ordered by rule), and its count of each status.
fn encode_results(results: &[SweepResultRecord]) -> (String, [i64; COUNTED.len()]) {
    let mut ordered: Vec<&SweepResultRecord> = results.iter().collect();
    ordered.sort_by(|a, b| a.rule.cmp(&b.rule));
    let mut counts = [0i64; COUNTED.len()];
    let mut out = Vec::with_capacity(results.iter().map(|r| r.evidence.len() + 96).sum());
    out.push(b'[');
    for (i, r) in ordered.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if let Some(n) = COUNTED.iter().position(|(s, _)| *s == r.status) {
            counts[n] += 1;
        }
        let evidence = raw_json(&r.evidence);
        let waiver = r.waiver.as_deref().map(raw_json);
        let kept = KeptOut {
            rule: &r.rule,
            status: &r.status,
            severity: &r.severity,
            micros: r.micros,
            evidence: &evidence,
            waiver: waiver.as_deref(),
        };
        serde_json::to_writer(&mut out, &kept).expect("writing to memory cannot fail");
    }
    out.push(b']');
    (
        String::from_utf8(out).expect("serde_json writes UTF-8"),
        counts,
    )
}

/// A host's results from its row's `results` array.
pub(super) fn decode_results(json: &str) -> Result<Vec<SweepResultRecord>> {
    let kept: Vec<KeptIn<'_>> = serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        what: "sweep results",
        detail: e.to_string(),
    })?;
    Ok(kept
        .into_iter()
        .map(|k| SweepResultRecord {
            rule: k.rule,
            status: k.status,
            severity: k.severity,
            evidence: k.evidence.get().to_string(),
            micros: k.micros,
            waiver: k.waiver.map(|w| w.get().to_string()),
        })
        .collect())
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
        let encoded: Vec<_> = hosts.iter().map(|h| encode_results(&h.results)).collect();
        let mut tx = self.writer.begin().await?;
        const COLUMNS: usize = 9 + COUNTED.len();
        let counted: String = COUNTED.iter().map(|(_, c)| format!(", {c}")).collect();
        for (chunk, encoded) in hosts
            .chunks(super::rows_per_statement(COLUMNS))
            .zip(encoded.chunks(super::rows_per_statement(COLUMNS)))
        {
            let sql = format!(
                "INSERT INTO sweep_hosts (sweep_id, agent_id, hostname, status, message, collect_ms, eval_micros, labels, results{counted}) VALUES {}",
                super::row_placeholders(self.backend, chunk.len(), COLUMNS)
            );
            let mut q = sqlx::query(&sql);
            for (h, (results, counts)) in chunk.iter().zip(encoded) {
                let host = &h.host;
                q = q
                    .bind(sweep_id)
                    .bind(&host.agent_id)
                    .bind(&host.hostname)
                    .bind(&host.status)
                    .bind(&host.message)
                    .bind(i64::from(host.collect_ms))
                    .bind(i64::from(host.eval_micros))
                    .bind(labels_json(&host.labels))
                    .bind(results.as_str());
                for n in counts {
                    q = q.bind(*n);
                }
            }
            q.execute(&mut *tx).await?;
        }
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
        let row =
            sqlx::query("SELECT results FROM sweep_hosts WHERE sweep_id = $1 AND agent_id = $2")
                .bind(sweep_id)
                .bind(agent_id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some(r) => decode_results(&r.try_get::<String, _>("results")?),
            None => Ok(Vec::new()),
        }
    }

    /// Per host, the count of each status in its latest checked sweep: (agent id, status, count).
    /// A handful of rows per host, whatever the history holds.
    pub async fn latest_status_counts(&self) -> Result<Vec<(String, String, u64)>> {
        let counted: String = COUNTED.iter().map(|(_, c)| format!(", h.{c}")).collect();
        let rows = sqlx::query(&format!(
            "WITH ranked AS (
                 SELECT h.agent_id{counted},
                   ROW_NUMBER() OVER (PARTITION BY h.agent_id ORDER BY s.started_at DESC, s.id DESC) AS n
                 FROM sweep_hosts h JOIN sweeps s ON s.id = h.sweep_id
                 WHERE h.status = 'ok'
             )
             SELECT * FROM ranked WHERE n = 1"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut counts = Vec::new();
        for r in &rows {
            let agent: String = r.try_get("agent_id")?;
            for (status, column) in COUNTED {
                let n = u64::try_from(r.try_get::<i64, _>(column)?).unwrap_or(0);
                if n > 0 {
                    counts.push((agent.clone(), status.to_string(), n));
                }
            }
        }
        Ok(counts)
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
               (SELECT CAST(COALESCE(SUM(h.n_pass), 0) AS BIGINT) FROM sweep_hosts h WHERE h.sweep_id = s.id) AS pass,
               (SELECT CAST(COALESCE(SUM(h.n_fail), 0) AS BIGINT) FROM sweep_hosts h WHERE h.sweep_id = s.id) AS fail,
               (SELECT CAST(COALESCE(SUM(h.n_error), 0) AS BIGINT) FROM sweep_hosts h WHERE h.sweep_id = s.id) AS error
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
            "SELECT s.id AS sweep_id, s.started_at, h.agent_id, h.hostname, h.results
             FROM sweep_hosts h JOIN sweeps s ON s.id = h.sweep_id
             WHERE s.started_at >= $1 AND ($2 IS NULL OR h.agent_id = $3) AND h.results != '[]'",
        )
        .bind(since)
        .bind(agent_id)
        .bind(agent_id)
        .fetch_all(&self.pool)
        .await?;
        let mut history = Vec::new();
        for r in &rows {
            let (sweep_id, time, agent_id, hostname): (String, i64, String, String) = (
                r.try_get("sweep_id")?,
                r.try_get("started_at")?,
                r.try_get("agent_id")?,
                r.try_get("hostname")?,
            );
            for k in decode_results(&r.try_get::<String, _>("results")?)? {
                history.push(ResultHistoryRow {
                    sweep_id: sweep_id.clone(),
                    time,
                    agent_id: agent_id.clone(),
                    hostname: hostname.clone(),
                    rule: k.rule,
                    status: k.status,
                    severity: k.severity,
                    evidence: k.evidence,
                    waiver: k.waiver,
                });
            }
        }
        history.sort_by(|a, b| {
            (&a.agent_id, &a.rule, a.time, &a.sweep_id).cmp(&(
                &b.agent_id,
                &b.rule,
                b.time,
                &b.sweep_id,
            ))
        });
        Ok(history)
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
        let rows = sqlx::query(
            "SELECT * FROM sweep_hosts WHERE sweep_id = $1 ORDER BY hostname, agent_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut hosts = Vec::with_capacity(rows.len());
        let mut results = Vec::new();
        for r in &rows {
            let host = SweepHostRecord {
                agent_id: r.try_get("agent_id")?,
                hostname: r.try_get("hostname")?,
                status: r.try_get("status")?,
                message: r.try_get("message")?,
                collect_ms: u32::try_from(r.try_get::<i64, _>("collect_ms")?).unwrap_or(0),
                eval_micros: u32::try_from(r.try_get::<i64, _>("eval_micros")?).unwrap_or(0),
                labels: parse_json("sweep host labels", &r.try_get::<String, _>("labels")?)?,
            };
            for k in decode_results(&r.try_get::<String, _>("results")?)? {
                results.push((host.agent_id.clone(), k));
            }
            hosts.push(host);
        }
        // Per agent, each host's results already by rule.
        results.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Some((sweep, hosts, results)))
    }
}

#[cfg(test)]
#[path = "sweeps_tests.rs"]
mod tests;
