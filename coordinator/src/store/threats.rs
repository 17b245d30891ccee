//! Threat models (every applied version) and the evidence their mitigations read: the latest
//! result of a check on each host, the latest finished run of an experiment.

use rampart_common::time::now_ms;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Result, Store};

/// One applied version of the threat model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreatModelRecord {
    pub version: u32,
    pub name: String,
    pub yaml: String,
    pub applied_at: i64,
    pub applied_by: String,
}

/// A check's latest result on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestResult {
    pub agent_id: String,
    pub rule: String,
    pub status: String,
    pub sweep_id: String,
    pub at: i64,
}

/// An experiment's latest finished run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestRun {
    pub name: String,
    pub id: String,
    pub verdict: String,
    pub finished_at: i64,
}

/// Lists of rules and names are cut to what one statement binds cheaply.
const IN_CHUNK: usize = super::STATEMENT_PARAMS;

impl Store {
    /// Stores a model as the new version; returns its number.
    pub async fn insert_threat_model(&self, name: &str, yaml: &str, actor: &str) -> Result<u32> {
        let sha = hex::encode(Sha256::digest(yaml.as_bytes()));
        let row = sqlx::query(
            "INSERT INTO threat_models (name, yaml, sha256, applied_at, applied_by) VALUES ($1, $2, $3, $4, $5) RETURNING version",
        )
        .bind(name)
        .bind(yaml)
        .bind(sha)
        .bind(now_ms())
        .bind(actor)
        .fetch_one(&self.writer)
        .await?;
        Ok(u32::try_from(row.try_get::<i64, _>("version")?).unwrap_or(0))
    }

    /// One version, or the latest when `version` is None.
    pub async fn threat_model(&self, version: Option<u32>) -> Result<Option<ThreatModelRecord>> {
        let row = match version {
            Some(v) => {
                sqlx::query("SELECT * FROM threat_models WHERE version = $1")
                    .bind(i64::from(v))
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT * FROM threat_models ORDER BY version DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        row.map(|r| {
            Ok(ThreatModelRecord {
                version: u32::try_from(r.try_get::<i64, _>("version")?).unwrap_or(0),
                name: r.try_get("name")?,
                yaml: r.try_get("yaml")?,
                applied_at: r.try_get("applied_at")?,
                applied_by: r.try_get("applied_by")?,
            })
        })
        .transpose()
    }

    /// The latest result of each of `rules` (from sweeps of `pack`) on every host that has one:
    /// each host's latest sweep of the pack in which it was checked (a host unreachable in a later
    /// sweep keeps its earlier results).
    pub async fn latest_results(&self, pack: &str, rules: &[String]) -> Result<Vec<LatestResult>> {
        let wanted: std::collections::HashSet<&str> = rules.iter().map(String::as_str).collect();
        let rows = sqlx::query(
            "WITH ranked AS (
                 SELECT h.agent_id, h.results, s.id, s.started_at,
                   ROW_NUMBER() OVER (PARTITION BY h.agent_id ORDER BY s.started_at DESC, s.id DESC) AS n
                 FROM sweep_hosts h JOIN sweeps s ON s.id = h.sweep_id
                 WHERE s.pack = $1 AND h.status = 'ok'
             )
             SELECT agent_id, results, id, started_at FROM ranked WHERE n = 1",
        )
        .bind(pack)
        .fetch_all(&self.pool)
        .await?;
        let mut latest = Vec::new();
        for row in &rows {
            let (agent_id, sweep_id, at): (String, String, i64) = (
                row.try_get("agent_id")?,
                row.try_get("id")?,
                row.try_get("started_at")?,
            );
            for r in super::sweeps::decode_results(&row.try_get::<String, _>("results")?)? {
                if wanted.contains(r.rule.as_str()) {
                    latest.push(LatestResult {
                        agent_id: agent_id.clone(),
                        rule: r.rule,
                        status: r.status,
                        sweep_id: sweep_id.clone(),
                        at,
                    });
                }
            }
        }
        Ok(latest)
    }

    /// The latest finished run of each named experiment that has one.
    pub async fn latest_experiment_runs(&self, names: &[String]) -> Result<Vec<LatestRun>> {
        let mut latest = std::collections::HashMap::new();
        for chunk in names.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT name, id, verdict, finished_at FROM chaos_runs
                 WHERE kind = 'experiment' AND state = 'finished' AND name IN ({}) ORDER BY finished_at, started_at",
                super::list_placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for n in chunk {
                q = q.bind(n);
            }
            for row in q.fetch_all(&self.pool).await? {
                let r = LatestRun {
                    name: row.try_get("name")?,
                    id: row.try_get("id")?,
                    verdict: row.try_get("verdict")?,
                    finished_at: row.try_get("finished_at")?,
                };
                latest.insert(r.name.clone(), r);
            }
        }
        Ok(latest.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(latest_results_runs_and_status_counts);

    use super::super::{SweepHostRecord, SweepResultRecord};

    fn host(agent: &str, status: &str) -> SweepHostRecord {
        SweepHostRecord {
            agent_id: agent.into(),
            hostname: agent.into(),
            status: status.into(),
            message: String::new(),
            collect_ms: 0,
            eval_micros: 0,
            labels: Default::default(),
        }
    }

    fn result(rule: &str, status: &str) -> SweepResultRecord {
        SweepResultRecord {
            rule: rule.into(),
            status: status.into(),
            severity: "high".into(),
            evidence: "{}".into(),
            micros: 0,
            waiver: None,
        }
    }

    /// The evidence a mitigation reads: each check's latest result per host (an unreachable host
    /// in a later sweep keeps its earlier result), each experiment's latest finished run; and
    /// the latest checked sweep's status counts per host.
    async fn latest_results_runs_and_status_counts(db: TestDb) {
        let s = db.open().await;
        let both = [
            ("a".to_string(), "a".to_string()),
            ("b".to_string(), "b".to_string()),
        ];
        s.create_sweep("s1", "p", "", "t", &both).await.unwrap();
        s.record_sweep_host(
            "s1",
            &host("a", "ok"),
            &[result("r1", "fail"), result("r2", "pass")],
        )
        .await
        .unwrap();
        s.record_sweep_host("s1", &host("b", "ok"), &[result("r1", "pass")])
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        s.create_sweep("s2", "p", "", "t", &both).await.unwrap();
        s.record_sweep_host(
            "s2",
            &host("a", "ok"),
            &[result("r1", "pass"), result("r2", "pass")],
        )
        .await
        .unwrap();
        s.record_sweep_host("s2", &host("b", "unreachable"), &[])
            .await
            .unwrap();
        s.create_sweep("s3", "other-pack", "", "t", &both)
            .await
            .unwrap();
        s.record_sweep_host("s3", &host("b", "ok"), &[result("r1", "fail")])
            .await
            .unwrap();

        let mut latest = s.latest_results("p", &["r1".into()]).await.unwrap();
        latest.sort_by(|x, y| x.agent_id.cmp(&y.agent_id));
        let got: Vec<(&str, &str, &str)> = latest
            .iter()
            .map(|r| (r.agent_id.as_str(), r.status.as_str(), r.sweep_id.as_str()))
            .collect();
        assert_eq!(got, vec![("a", "pass", "s2"), ("b", "pass", "s1")]);

        let mut counts = s.latest_status_counts().await.unwrap();
        counts.sort();
        assert_eq!(
            counts,
            vec![
                ("a".into(), "pass".into(), 2),
                ("b".into(), "fail".into(), 1),
            ],
            "each host's latest checked sweep (b's is s3), whatever its pack"
        );

        let v1 = s
            .insert_threat_model("m", "kind: ThreatModel\nname: m\n", "me")
            .await
            .unwrap();
        let v2 = s
            .insert_threat_model("m", "kind: ThreatModel\nname: m2\n", "me")
            .await
            .unwrap();
        assert_eq!((v1, v2), (1, 2));
        assert_eq!(s.threat_model(None).await.unwrap().unwrap().version, 2);
        assert!(
            s.threat_model(Some(1))
                .await
                .unwrap()
                .unwrap()
                .yaml
                .contains("name: m\n")
        );
        assert!(s.threat_model(Some(3)).await.unwrap().is_none());
        assert!(
            s.latest_experiment_runs(&["nothing".into()])
                .await
                .unwrap()
                .is_empty()
        );
    }
}
