//! The audit trail: entries chained by sha256, the newest one also recorded in a head file so that
//! deleting the newest rows shows too.

use rampart_common::time::now_ms;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Result, Store, StoreError, WriteLock};

/// Hash that the first audit entry chains to.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: i64,
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub arguments: String,
    pub result: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Result of checking the audit chain.
#[derive(Debug, Clone, Default)]
pub struct AuditVerification {
    pub entries: u64,
    pub problems: Vec<String>,
}

fn audit_hash(
    prev: &str,
    seq: i64,
    time: i64,
    actor: &str,
    action: &str,
    arguments: &str,
    result: &str,
) -> String {
    // JSON array: unambiguous field boundaries.
    let canonical =
        serde_json::json!([prev, seq, time, actor, action, arguments, result]).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn audit_from_row(r: &AnyRow) -> Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        time: r.try_get("time")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        arguments: r.try_get("arguments")?,
        result: r.try_get("result")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl Store {
    /// Appends an entry chained to the newest one.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        arguments: &str,
        result: &str,
    ) -> Result<AuditEntry> {
        let _guard = self.audit_lock.lock().await;
        let mut tx = self.begin_locked(WriteLock::Audit).await?;
        let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let (prev_seq, prev_hash) = match last {
            Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?),
            None => (0, AUDIT_GENESIS.to_string()),
        };
        let seq = prev_seq + 1;
        let time = now_ms();
        let hash = audit_hash(&prev_hash, seq, time, actor, action, arguments, result);
        sqlx::query("INSERT INTO audit (seq, time, actor, action, arguments, result, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(seq)
            .bind(time)
            .bind(actor)
            .bind(action)
            .bind(arguments)
            .bind(result)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(seq)
        .bind(&hash)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Some(file) = &self.audit_head_file {
            std::fs::write(file, format!("{seq} {hash}\n")).map_err(|source| StoreError::Io {
                path: file.clone(),
                source,
            })?;
        }
        Ok(AuditEntry {
            seq,
            time,
            actor: actor.into(),
            action: action.into(),
            arguments: arguments.into(),
            result: result.into(),
            prev_hash,
            hash,
        })
    }

    /// How many entries the trail holds.
    pub async fn audit_len(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The newest `limit` entries, oldest first.
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM audit ORDER BY seq DESC LIMIT $1) AS newest ORDER BY seq",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    /// Walks the whole chain: every entry must hash to its stored hash, chain to its predecessor,
    /// follow it without a gap, and the newest must match the head file.
    pub async fn verify_audit(&self) -> Result<AuditVerification> {
        let rows = sqlx::query("SELECT * FROM audit ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        let mut v = AuditVerification::default();
        let mut prev_hash = AUDIT_GENESIS.to_string();
        let mut prev_seq = 0i64;
        for row in &rows {
            let e = audit_from_row(row)?;
            v.entries += 1;
            if e.seq != prev_seq + 1 {
                v.problems.push(format!(
                    "entries {} to {} are missing (deleted)",
                    prev_seq + 1,
                    e.seq - 1
                ));
            }
            if e.prev_hash != prev_hash {
                v.problems.push(format!("entry {}: does not chain to the entry before it (an entry was deleted or edited)", e.seq));
            }
            let expect = audit_hash(
                &e.prev_hash,
                e.seq,
                e.time,
                &e.actor,
                &e.action,
                &e.arguments,
                &e.result,
            );
            if expect != e.hash {
                v.problems.push(format!(
                    "entry {}: content does not match its hash (edited)",
                    e.seq
                ));
            }
            prev_hash = e.hash;
            prev_seq = e.seq;
        }
        let newest = format!("{prev_seq} {prev_hash}");
        match &self.audit_head_file {
            Some(file) => match std::fs::read_to_string(file) {
                Ok(head) => {
                    let head = head.trim();
                    if head != newest {
                        v.problems.push(format!(
                            "newest entry is {prev_seq} but the head file records {:?} (newest entries deleted or edited)",
                            head.split(' ').next().unwrap_or("")
                        ));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && rows.is_empty() => {}
                Err(e) => v
                    .problems
                    .push(format!("cannot read {}: {e}", file.display())),
            },
            None => {
                let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                    .fetch_optional(&self.pool)
                    .await?;
                let head = match head {
                    Some(r) => Some((r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?)),
                    None => None,
                };
                match head {
                    None if rows.is_empty() => {}
                    None => v.problems.push(
                        "the audit head row is missing (newest entries deleted or edited)".into(),
                    ),
                    Some((seq, hash)) if format!("{seq} {hash}") != newest => {
                        v.problems.push(format!(
                            "newest entry is {prev_seq} but the audit head records {seq} (newest entries deleted or edited)"
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Backend;
    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(
        audit_chain_detects_edits_and_deletions,
        deleting_the_newest_entries_shows,
        concurrent_appends_keep_one_unbroken_chain,
    );

    async fn audit_chain_detects_edits_and_deletions(db: TestDb) {
        let s = db.open().await;
        for i in 0..5 {
            s.append_audit(
                "admin",
                "TokenService/CreateJoinToken",
                &format!("uses={i}"),
                "ok",
            )
            .await
            .unwrap();
        }
        let v = s.verify_audit().await.unwrap();
        assert_eq!((v.entries, v.problems.len()), (5, 0), "{:?}", v.problems);

        sqlx::query("UPDATE audit SET arguments = 'uses=99' WHERE seq = 2")
            .execute(&s.writer)
            .await
            .unwrap();
        let v = s.verify_audit().await.unwrap();
        assert_eq!(
            v.problems,
            ["entry 2: content does not match its hash (edited)"]
        );

        sqlx::query("UPDATE audit SET arguments = 'uses=1' WHERE seq = 2")
            .execute(&s.writer)
            .await
            .unwrap();
        sqlx::query("DELETE FROM audit WHERE seq = 3")
            .execute(&s.writer)
            .await
            .unwrap();
        let v = s.verify_audit().await.unwrap();
        assert!(
            v.problems.iter().any(|p| p.contains("3 to 3 are missing")),
            "{:?}",
            v.problems
        );
    }

    async fn deleting_the_newest_entries_shows(db: TestDb) {
        let s = db.open().await;
        s.append_audit("a", "x", "", "ok").await.unwrap();
        s.append_audit("a", "y", "", "ok").await.unwrap();
        sqlx::query("DELETE FROM audit WHERE seq = 2")
            .execute(&s.writer)
            .await
            .unwrap();
        let v = s.verify_audit().await.unwrap();
        let head = match s.backend() {
            Backend::Sqlite => "head file",
            Backend::Postgres => "audit head",
        };
        assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
        assert!(v.problems[0].contains(head), "{:?}", v.problems);
        assert!(
            v.problems[0].starts_with("newest entry is 1"),
            "{:?}",
            v.problems
        );
    }

    /// Many operators at once, through two handles on the same database (with PostgreSQL: as
    /// two coordinators would): every entry is kept, numbered without a gap, in one chain.
    async fn concurrent_appends_keep_one_unbroken_chain(db: TestDb) {
        let first = db.open().await;
        let second = match first.backend() {
            // Two coordinators share one PostgreSQL; SQLite has one coordinator per data dir.
            Backend::Postgres => db.open().await,
            Backend::Sqlite => first.clone(),
        };
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            tasks.push(tokio::spawn(async move {
                s.append_audit(&format!("op-{i}"), "x", "", "ok").await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let v = first.verify_audit().await.unwrap();
        assert_eq!((v.entries, v.problems.len()), (200, 0), "{:?}", v.problems);
        let actors: std::collections::BTreeSet<String> = first
            .audit(500)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.actor)
            .collect();
        assert_eq!(actors.len(), 200);
    }
}
