//! Moving an installation from SQLite to PostgreSQL: every table copied row for row in one
//! PostgreSQL transaction (a copy cut off half-way leaves the target empty, ready for another
//! try), identity counters moved past the copied rows, and the audit chain checked on both sides.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Backend, Result, Store, StoreError};

/// Rows read and written per statement: 500 rows of the widest table (18 columns) stay below
/// PostgreSQL's 65,535 parameters a statement.
const BATCH: i64 = 500;

/// Tables other tables reference: copied first so every reference finds its row.
const PARENTS: &[&str] = &["sweeps", "remediation_runs"];

/// What a copy moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// (table, rows), in the order they were copied.
    pub tables: Vec<(String, u64)>,
    /// Audit entries in the target after the copy, its chain verified.
    pub audit_entries: u64,
}

/// What the copy is doing, for a progress line.
#[derive(Debug, Clone, Copy)]
pub enum CopyProgress<'a> {
    /// `rows` of `total` rows of `table` copied so far.
    Rows {
        table: &'a str,
        rows: u64,
        total: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Integer,
    Text,
    Real,
    Bytes,
}

impl Store {
    /// Copies everything this SQLite store holds into `target`, a PostgreSQL store with no data
    /// yet. Refuses when the source's audit chain does not verify (a broken chain would be
    /// carried over as if intact), when the target already holds data, or when the two are at
    /// different schema versions.
    pub async fn copy_to(
        &self,
        target: &Store,
        mut progress: impl FnMut(CopyProgress<'_>),
    ) -> Result<CopyReport> {
        let refuse = |msg: String| Err(StoreError::Config(msg));
        if self.backend != Backend::Sqlite || target.backend != Backend::Postgres {
            return refuse("a copy goes from a SQLite data dir to PostgreSQL".into());
        }
        let audit = self.verify_audit().await?;
        if !audit.problems.is_empty() {
            return refuse(format!(
                "the data dir's audit trail does not verify, so it is not copied: {}",
                audit.problems.join("; ")
            ));
        }
        let (from_version, to_version) =
            (self.schema_version().await?, target.schema_version().await?);
        if from_version != to_version {
            return refuse(format!(
                "schema versions differ (data dir {from_version}, PostgreSQL {to_version}): run the same Rampart version on both"
            ));
        }
        let mut tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table'
               AND name NOT LIKE 'sqlite_%' AND name != '_sqlx_migrations' ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        tables.sort_by_key(|t| !PARENTS.contains(&t.as_str()));
        let mut plan = Vec::new();
        for table in &tables {
            let columns = target_columns(&target.pool, table).await?;
            if columns.is_empty() {
                return refuse(format!("PostgreSQL has no table {table}"));
            }
            let existing: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&target.pool)
                .await?;
            if existing > 0 {
                return refuse(format!(
                    "PostgreSQL already holds data (table {table} has {existing} rows): copy into an empty database"
                ));
            }
            plan.push((table, columns));
        }
        // One read transaction: a consistent snapshot even if something writes meanwhile. A
        // failure below drops both transactions, which rolls them back.
        let mut src = self.writer.begin().await?;
        let mut dst = target.writer.begin().await?;
        let mut report = CopyReport::default();
        for (table, columns) in plan {
            let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&mut *src)
                .await?;
            let rows = copy_table(
                &mut src,
                &mut dst,
                table,
                &columns,
                total as u64,
                &mut progress,
            )
            .await?;
            report.tables.push((table.clone(), rows));
        }
        advance_identities(&mut dst).await?;
        dst.commit().await?;
        src.rollback().await?;
        let after = target.verify_audit().await?;
        if !after.problems.is_empty() {
            return refuse(format!(
                "the copied audit trail does not verify: {}",
                after.problems.join("; ")
            ));
        }
        report.audit_entries = after.entries;
        Ok(report)
    }

    /// The newest migration applied.
    async fn schema_version(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

/// The target table's columns and how to bind them (PostgreSQL's types decide: a NULL must
/// arrive with its column's type).
async fn target_columns(pool: &sqlx::AnyPool, table: &str) -> Result<Vec<(String, ColumnType)>> {
    let rows = sqlx::query(
        "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("name")?;
            let ty: String = r.try_get("type")?;
            let ty = match ty.as_str() {
                "bigint" | "integer" | "smallint" => ColumnType::Integer,
                "text" | "character varying" => ColumnType::Text,
                "double precision" | "real" => ColumnType::Real,
                "bytea" => ColumnType::Bytes,
                other => {
                    return Err(StoreError::Corrupt {
                        what: "PostgreSQL column type",
                        detail: format!("{table}.{name} is {other}"),
                    });
                }
            };
            Ok((name, ty))
        })
        .collect()
}

async fn copy_table(
    src: &mut Transaction<'static, Any>,
    dst: &mut Transaction<'static, Any>,
    table: &str,
    columns: &[(String, ColumnType)],
    total: u64,
    progress: &mut impl FnMut(CopyProgress<'_>),
) -> Result<u64> {
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let select = format!(
        "SELECT rowid AS rampart_rowid, {} FROM {table} WHERE rowid > $1 ORDER BY rowid LIMIT $2",
        names.join(", ")
    );
    let mut after = i64::MIN;
    let mut copied = 0u64;
    loop {
        let batch: Vec<AnyRow> = sqlx::query(&select)
            .bind(after)
            .bind(BATCH)
            .fetch_all(&mut **src)
            .await?;
        let Some(last) = batch.last() else { break };
        after = last.try_get("rampart_rowid")?;
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            names.join(", "),
            super::row_placeholders(super::Backend::Postgres, batch.len(), columns.len())
        );
        let mut q = sqlx::query(&insert);
        for row in &batch {
            for (name, ty) in columns {
                q = match ty {
                    ColumnType::Integer => q.bind(row.try_get::<Option<i64>, _>(name.as_str())?),
                    ColumnType::Text => q.bind(row.try_get::<Option<String>, _>(name.as_str())?),
                    ColumnType::Real => q.bind(row.try_get::<Option<f64>, _>(name.as_str())?),
                    ColumnType::Bytes => q.bind(row.try_get::<Option<Vec<u8>>, _>(name.as_str())?),
                };
            }
        }
        q.execute(&mut **dst).await?;
        copied += batch.len() as u64;
        progress(CopyProgress::Rows {
            table,
            rows: copied,
            total,
        });
    }
    Ok(copied)
}

/// Moves every identity column's counter past the rows copied with explicit values, so the next
/// timeline event or threat model version continues the numbering instead of colliding.
async fn advance_identities(dst: &mut Transaction<'static, Any>) -> Result<()> {
    let rows = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .fetch_all(&mut **dst)
    .await?;
    for r in rows {
        let (table, column): (String, String) = (r.try_get("t")?, r.try_get("c")?);
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 0) + 1, false)::text FROM {table}"
        ))
        .execute(&mut **dst)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::testing::TestDb;
    use crate::store::{SweepHostRecord, SweepResultRecord};

    /// Everything moves (counted per table), the audit chain verifies in PostgreSQL, numbering
    /// continues after the copied rows, and a second copy into the same database is refused.
    #[tokio::test]
    async fn a_data_dir_moves_to_postgres_with_its_audit_chain() {
        let Some(pg) = TestDb::postgres().await else {
            return;
        };
        let sqlite = TestDb::sqlite().await;
        let src = sqlite.open().await;
        for i in 0..1_234 {
            src.append_audit("admin", "x", &format!("n={i}"), "ok")
                .await
                .unwrap();
        }
        let targets: Vec<(String, String)> = (0..700)
            .map(|i| (format!("agent-{i}"), format!("web-{i}")))
            .collect();
        src.create_sweep("s1", "linux-baseline", "", "admin", &targets)
            .await
            .unwrap();
        let results: Vec<SweepResultRecord> = (0..120)
            .map(|i| SweepResultRecord {
                rule: format!("rule-{i:03}"),
                status: if i == 7 { "waived" } else { "pass" }.into(),
                severity: "low".into(),
                evidence: "{\"k\":\"ünïcode ✓\"}".into(),
                micros: i,
                // A waived result keeps its waiver through the move.
                waiver: (i == 7).then(|| "{\"id\":\"waiver-1\",\"was\":\"fail\"}".into()),
            })
            .collect();
        let host = SweepHostRecord {
            agent_id: "agent-1".into(),
            hostname: "web-1".into(),
            status: "ok".into(),
            message: String::new(),
            collect_ms: 3,
            eval_micros: 40,
            labels: [("env".to_string(), "prod".to_string())].into(),
        };
        src.record_sweep_host("s1", &host, &results).await.unwrap();
        src.finish_sweep("s1").await.unwrap();
        src.insert_threat_model("m", "name: m", "admin")
            .await
            .unwrap();
        src.add_run_event("r1", "start", "", "", "admin")
            .await
            .unwrap();

        let dst = pg.open().await;
        let mut last_progress = Vec::new();
        let report = src
            .copy_to(&dst, |super::CopyProgress::Rows { table, rows, total }| {
                last_progress.push((table.to_string(), rows, total))
            })
            .await
            .unwrap();
        let count = |t: &str| report.tables.iter().find(|(n, _)| n == t).map(|(_, n)| *n);
        assert_eq!(count("audit"), Some(1_234));
        assert_eq!(count("run_targets"), Some(700));
        // The host's 120 results are kept in its row.
        assert_eq!(count("sweep_hosts"), Some(1));
        assert_eq!(count("audit_head"), Some(1));
        assert_eq!(report.audit_entries, 1_234);
        assert!(last_progress.contains(&("audit".to_string(), 1_234, 1_234)));

        let (sweep, hosts, got) = dst.sweep("s1").await.unwrap().unwrap();
        assert_eq!(sweep.hosts, 700);
        assert_eq!(hosts, vec![host]);
        assert_eq!(got.len(), 120);
        assert_eq!(got[7].1, results[7]);
        assert_eq!(
            got.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
            results
        );
        // Numbering continues: the next audit entry chains on, identities move past the copy.
        dst.append_audit("admin", "after", "", "ok").await.unwrap();
        assert_eq!(
            dst.verify_audit().await.unwrap().problems,
            Vec::<String>::new()
        );
        assert_eq!(
            dst.insert_threat_model("m", "name: m2", "a").await.unwrap(),
            2
        );
        assert_eq!(
            dst.add_run_event("r1", "x", "", "", "a").await.unwrap().seq,
            2
        );

        let again = src.copy_to(&dst, |_| {}).await.unwrap_err().to_string();
        assert!(again.contains("already holds data"), "{again}");
        src.close().await;
        dst.close().await;
    }

    /// A data dir whose audit trail was tampered with is not carried over as if intact.
    #[tokio::test]
    async fn a_broken_audit_chain_is_not_copied() {
        let Some(pg) = TestDb::postgres().await else {
            return;
        };
        let sqlite = TestDb::sqlite().await;
        let src = sqlite.open().await;
        for _ in 0..3 {
            src.append_audit("admin", "x", "", "ok").await.unwrap();
        }
        sqlx::query("UPDATE audit SET actor = 'someone' WHERE seq = 2")
            .execute(&src.writer)
            .await
            .unwrap();
        let dst = pg.open().await;
        let err = src.copy_to(&dst, |_| {}).await.unwrap_err().to_string();
        assert!(
            err.contains("does not verify") && err.contains("entry 2"),
            "{err}"
        );
        assert_eq!(dst.audit_len().await.unwrap(), 0);
        dst.close().await;
    }
}
