//! Persistence: an embedded SQLite database in the data dir (sqlx, migrations in
//! `coordinator/migrations`). The only place in Rampart with SQL. It stores records; it does not
//! decide policy (who may do what, when an agent is offline): callers do.

mod faults;
mod remediation;

pub use faults::FaultRecord;
pub use remediation::{RemediationHostRecord, RemediationRunRecord, SweepRecord};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rampart_common::labels::Labels;
use rampart_common::time::now_ms;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use tokio::sync::Mutex;

/// A writer waits this long for SQLite's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Hash that the first audit entry chains to.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration failed: {0}; the data dir may belong to a newer Rampart")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Operator roles, weakest first: each includes the rights of those before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: expected viewer, operator or admin"
            )),
        }
    }
}

/// Agent life-cycle state as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Online,
    Offline,
    Revoked,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Online => "online",
            AgentState::Offline => "offline",
            AgentState::Revoked => "revoked",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        match s {
            "online" => Ok(Self::Online),
            "offline" => Ok(Self::Offline),
            "revoked" => Ok(Self::Revoked),
            other => Err(StoreError::Corrupt {
                what: "agent state",
                detail: other.to_string(),
            }),
        }
    }
}

/// What the coordinator knows of an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub id: String,
    pub hostname: String,
    pub labels: Labels,
    pub state: AgentState,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub version: String,
    pub capabilities: Vec<String>,
    /// Remote address of the latest session.
    pub address: String,
    /// Fingerprint of the certificate issued at enrolment; a session must present exactly it.
    pub cert_fingerprint: String,
    pub enrolled_at: i64,
    pub last_seen: i64,
}

/// What a session's `Hello` tells about the host.
#[derive(Debug, Clone, Default)]
pub struct HostInfo {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub version: String,
    pub labels: Labels,
    pub capabilities: Vec<String>,
    pub address: String,
}

/// Why a join token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    Unknown,
    Expired,
    UsedUp,
}

/// A join token that was accepted (one use consumed).
#[derive(Debug, Clone)]
pub struct AcceptedJoin {
    pub token_id: String,
    pub labels: Labels,
}

/// A valid operator token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorToken {
    pub id: String,
    pub name: String,
    pub role: Role,
}

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
}

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
}

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

/// sha256 hex of a secret: tokens are looked up by it and never stored in clear.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
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

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// File holding the newest audit entry's seq and hash, so deleting the newest rows shows too.
    audit_head: PathBuf,
    /// Serialises audit appends so each sees the previous hash.
    audit_lock: std::sync::Arc<Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn labels_json(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn agent_from_row(r: &SqliteRow) -> Result<AgentRecord> {
    Ok(AgentRecord {
        id: r.try_get("id")?,
        hostname: r.try_get("hostname")?,
        labels: parse_json("agent labels", &r.try_get::<String, _>("labels")?)?,
        state: AgentState::parse(&r.try_get::<String, _>("state")?)?,
        os: r.try_get("os")?,
        kernel: r.try_get("kernel")?,
        arch: r.try_get("arch")?,
        version: r.try_get("version")?,
        capabilities: parse_json(
            "agent capabilities",
            &r.try_get::<String, _>("capabilities")?,
        )?,
        address: r.try_get("address")?,
        cert_fingerprint: r.try_get("cert_fingerprint")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen: r.try_get("last_seen")?,
    })
}

fn audit_from_row(r: &SqliteRow) -> Result<AuditEntry> {
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
    /// Opens (creating if needed) `dir/rampart.db` and applies pending migrations.
    pub async fn open(dir: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("rampart.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            audit_head: dir.join("audit.head"),
            audit_lock: Default::default(),
        })
    }

    /// Closes the pool, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- agents ----

    pub async fn insert_agent(&self, rec: &AgentRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO agents (id, hostname, labels, state, cert_fingerprint, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&rec.id)
        .bind(&rec.hostname)
        .bind(labels_json(&rec.labels))
        .bind(rec.state.as_str())
        .bind(&rec.cert_fingerprint)
        .bind(rec.enrolled_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn agent(&self, id: &str) -> Result<Option<AgentRecord>> {
        let row = sqlx::query("SELECT * FROM agents WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(agent_from_row).transpose()
    }

    pub async fn agents(&self) -> Result<Vec<AgentRecord>> {
        let rows = sqlx::query("SELECT * FROM agents ORDER BY hostname, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(agent_from_row).collect()
    }

    /// Records a session start: host facts from `Hello`, state online. Labels from `Hello` are
    /// merged over those recorded at enrolment.
    pub async fn agent_online(&self, id: &str, info: &HostInfo) -> Result<()> {
        let mut labels = self.agent(id).await?.map(|a| a.labels).unwrap_or_default();
        labels.extend(info.labels.clone());
        sqlx::query(
            "UPDATE agents SET hostname = ?, os = ?, kernel = ?, arch = ?, version = ?, labels = ?, capabilities = ?,
             address = ?, state = 'online', last_seen = ? WHERE id = ? AND state != 'revoked'",
        )
        .bind(&info.hostname)
        .bind(&info.os)
        .bind(&info.kernel)
        .bind(&info.arch)
        .bind(&info.version)
        .bind(labels_json(&labels))
        .bind(serde_json::to_string(&info.capabilities).unwrap_or_else(|_| "[]".into()))
        .bind(&info.address)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn touch_agent(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE agents SET last_seen = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks an agent offline unless it was revoked meanwhile.
    pub async fn agent_offline(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE agents SET state = 'offline' WHERE id = ? AND state = 'online'")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// At start-up nobody is connected yet.
    pub async fn all_offline(&self) -> Result<u64> {
        let r = sqlx::query("UPDATE agents SET state = 'offline' WHERE state = 'online'")
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Revokes an agent; returns false when no such agent exists.
    pub async fn revoke_agent(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE agents SET state = 'revoked', revoked_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    // ---- join tokens ----

    pub async fn insert_join_token(
        &self,
        id: &str,
        secret: &str,
        labels: &Labels,
        expires_at: i64,
        uses: u32,
        created_by: &str,
    ) -> Result<()> {
        sqlx::query("INSERT INTO join_tokens (id, hash, labels, expires_at, uses_left, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(hash_secret(secret))
            .bind(labels_json(labels))
            .bind(expires_at)
            .bind(i64::from(uses))
            .bind(created_by)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Consumes one use of a join token, atomically; or says why it cannot be used.
    pub async fn use_join_token(
        &self,
        secret: &str,
    ) -> Result<std::result::Result<AcceptedJoin, TokenRefusal>> {
        let hash = hash_secret(secret);
        let now = now_ms();
        let updated = sqlx::query(
            "UPDATE join_tokens SET uses_left = uses_left - 1 WHERE hash = ? AND uses_left > 0 AND expires_at > ?
             RETURNING id, labels",
        )
        .bind(&hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = updated {
            return Ok(Ok(AcceptedJoin {
                token_id: row.try_get("id")?,
                labels: parse_json("token labels", &row.try_get::<String, _>("labels")?)?,
            }));
        }
        let row = sqlx::query("SELECT expires_at, uses_left FROM join_tokens WHERE hash = ?")
            .bind(&hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(Err(match row {
            None => TokenRefusal::Unknown,
            Some(r) if r.try_get::<i64, _>("expires_at")? <= now => TokenRefusal::Expired,
            Some(_) => TokenRefusal::UsedUp,
        }))
    }

    // ---- operator tokens ----

    pub async fn insert_operator_token(
        &self,
        id: &str,
        secret: &str,
        name: &str,
        role: Role,
        expires_at: Option<i64>,
    ) -> Result<()> {
        sqlx::query("INSERT INTO operator_tokens (id, hash, name, role, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(id)
            .bind(hash_secret(secret))
            .bind(name)
            .bind(role.as_str())
            .bind(expires_at)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many operator tokens exist (none on a fresh data dir).
    pub async fn operator_token_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM operator_tokens")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// The operator token with this secret, if it exists and has not expired.
    pub async fn operator_token(&self, secret: &str) -> Result<Option<OperatorToken>> {
        let row = sqlx::query("SELECT id, name, role FROM operator_tokens WHERE hash = ? AND (expires_at IS NULL OR expires_at > ?)")
            .bind(hash_secret(secret))
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let role: String = r.try_get("role")?;
            Ok(OperatorToken {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                role: role.parse().map_err(|detail| StoreError::Corrupt {
                    what: "token role",
                    detail,
                })?,
            })
        })
        .transpose()
    }

    // ---- compliance ----

    pub async fn create_sweep(
        &self,
        id: &str,
        pack: &str,
        selector: &str,
        actor: &str,
        hosts: u32,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sweeps (id, pack, selector, actor, started_at, hosts) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(pack)
        .bind(selector)
        .bind(actor)
        .bind(now_ms())
        .bind(i64::from(hosts))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_sweep(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE sweeps SET finished_at = ? WHERE id = ?")
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO sweep_hosts (sweep_id, agent_id, hostname, status, message, collect_ms, eval_micros) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(sweep_id)
            .bind(&host.agent_id)
            .bind(&host.hostname)
            .bind(&host.status)
            .bind(&host.message)
            .bind(i64::from(host.collect_ms))
            .bind(i64::from(host.eval_micros))
            .execute(&mut *tx)
            .await?;
        // One statement per 100 results (7 parameters each stays far below SQLite's limit).
        for chunk in results.chunks(100) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO sweep_results (sweep_id, agent_id, rule, status, severity, evidence, micros) ",
            );
            q.push_values(chunk, |mut row, r| {
                row.push_bind(sweep_id)
                    .push_bind(&host.agent_id)
                    .push_bind(&r.rule)
                    .push_bind(&r.status)
                    .push_bind(&r.severity)
                    .push_bind(&r.evidence)
                    .push_bind(r.micros as i64);
            });
            q.build().execute(&mut *tx).await?;
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
            "INSERT INTO facts (agent_id, collected_at, sweep_id, json) VALUES (?, ?, ?, ?)
             ON CONFLICT(agent_id) DO UPDATE SET collected_at = excluded.collected_at, sweep_id = excluded.sweep_id, json = excluded.json",
        )
        .bind(agent_id)
        .bind(collected_at)
        .bind(sweep_id)
        .bind(json)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An agent's latest stored facts: (collected at, JSON).
    pub async fn latest_facts(&self, agent_id: &str) -> Result<Option<(i64, String)>> {
        let row = sqlx::query("SELECT collected_at, json FROM facts WHERE agent_id = ?")
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
        let rows = sqlx::query("SELECT rule, status, severity, evidence, micros FROM sweep_results WHERE sweep_id = ? AND agent_id = ? ORDER BY rule")
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
            "SELECT s.id AS sweep_id, s.started_at, r.agent_id, h.hostname, r.rule, r.status, r.severity, r.evidence
             FROM sweep_results r
             JOIN sweeps s ON s.id = r.sweep_id
             JOIN sweep_hosts h ON h.sweep_id = r.sweep_id AND h.agent_id = r.agent_id
             WHERE s.started_at >= ? AND (? IS NULL OR r.agent_id = ?)
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
                })
            })
            .collect()
    }

    // ---- schedules ----

    pub async fn insert_schedule(&self, s: &ScheduleRecord) -> Result<()> {
        sqlx::query("INSERT INTO schedules (id, cron, selector, pack, created_by, created_at, next_run_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&s.id)
            .bind(&s.cron)
            .bind(&s.selector)
            .bind(&s.pack)
            .bind(&s.created_by)
            .bind(s.created_at)
            .bind(s.next_run_at)
            .execute(&self.pool)
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
        Ok(sqlx::query("DELETE FROM schedules WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
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
            "UPDATE schedules SET last_run_at = ?, last_sweep = ?, next_run_at = ? WHERE id = ?",
        )
        .bind(at)
        .bind(sweep_id)
        .bind(next_run_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- audit ----

    /// Appends an entry chained to the newest one.
    pub async fn append_audit(
        &self,
        actor: &str,
        action: &str,
        arguments: &str,
        result: &str,
    ) -> Result<AuditEntry> {
        let _guard = self.audit_lock.lock().await;
        let mut tx = self.pool.begin().await?;
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
        sqlx::query("INSERT INTO audit (seq, time, actor, action, arguments, result, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
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
        tx.commit().await?;
        std::fs::write(&self.audit_head, format!("{seq} {hash}\n")).map_err(|source| {
            StoreError::Io {
                path: self.audit_head.clone(),
                source,
            }
        })?;
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

    /// The newest `limit` entries, oldest first.
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT * FROM audit ORDER BY seq DESC LIMIT ?) ORDER BY seq",
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
        match std::fs::read_to_string(&self.audit_head) {
            Ok(head) => {
                let head = head.trim();
                if head != format!("{prev_seq} {prev_hash}") {
                    v.problems.push(format!(
                        "newest entry is {prev_seq} but the head file records {:?} (newest entries deleted or edited)",
                        head.split(' ').next().unwrap_or("")
                    ));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rows.is_empty() => {}
            Err(e) => v
                .problems
                .push(format!("cannot read {}: {e}", self.audit_head.display())),
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn join_tokens_say_why_they_are_refused() {
        let (_d, s) = store().await;
        let labels: Labels = [("env".to_string(), "prod".to_string())].into();
        s.insert_join_token("t1", "secret1", &labels, now_ms() + 60_000, 2, "test")
            .await
            .unwrap();
        s.insert_join_token("t2", "secret2", &labels, now_ms() - 1, 1, "test")
            .await
            .unwrap();
        let ok = s.use_join_token("secret1").await.unwrap().unwrap();
        assert_eq!(ok.labels["env"], "prod");
        s.use_join_token("secret1").await.unwrap().unwrap();
        assert_eq!(
            s.use_join_token("secret1").await.unwrap().unwrap_err(),
            TokenRefusal::UsedUp
        );
        assert_eq!(
            s.use_join_token("secret2").await.unwrap().unwrap_err(),
            TokenRefusal::Expired
        );
        assert_eq!(
            s.use_join_token("nope").await.unwrap().unwrap_err(),
            TokenRefusal::Unknown
        );
    }

    #[tokio::test]
    async fn audit_chain_detects_edits_and_deletions() {
        let (_d, s) = store().await;
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
            .execute(&s.pool)
            .await
            .unwrap();
        let v = s.verify_audit().await.unwrap();
        assert_eq!(
            v.problems,
            ["entry 2: content does not match its hash (edited)"]
        );

        sqlx::query("UPDATE audit SET arguments = 'uses=1' WHERE seq = 2")
            .execute(&s.pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM audit WHERE seq = 3")
            .execute(&s.pool)
            .await
            .unwrap();
        let v = s.verify_audit().await.unwrap();
        assert!(
            v.problems.iter().any(|p| p.contains("3 to 3 are missing")),
            "{:?}",
            v.problems
        );

        let (_d2, s2) = store().await;
        s2.append_audit("a", "x", "", "ok").await.unwrap();
        s2.append_audit("a", "y", "", "ok").await.unwrap();
        sqlx::query("DELETE FROM audit WHERE seq = 2")
            .execute(&s2.pool)
            .await
            .unwrap();
        let v = s2.verify_audit().await.unwrap();
        assert!(
            v.problems.iter().any(|p| p.contains("head file")),
            "{:?}",
            v.problems
        );
    }

    #[tokio::test]
    async fn agents_persist_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        let rec = AgentRecord {
            id: "agent-1".into(),
            hostname: "web-1".into(),
            labels: [("env".to_string(), "prod".to_string())].into(),
            state: AgentState::Offline,
            os: String::new(),
            kernel: String::new(),
            arch: String::new(),
            version: String::new(),
            capabilities: vec![],
            address: String::new(),
            cert_fingerprint: "sha256:00".into(),
            enrolled_at: now_ms(),
            last_seen: 0,
        };
        s.insert_agent(&rec).await.unwrap();
        let info = HostInfo {
            hostname: "web-1".into(),
            labels: [("zone".to_string(), "a".to_string())].into(),
            ..Default::default()
        };
        s.agent_online("agent-1", &info).await.unwrap();
        s.close().await;
        let s = Store::open(dir.path()).await.unwrap();
        let got = s.agent("agent-1").await.unwrap().unwrap();
        assert_eq!(got.state, AgentState::Online);
        assert_eq!(got.labels.len(), 2);
        assert_eq!(s.all_offline().await.unwrap(), 1);
        assert!(s.revoke_agent("agent-1").await.unwrap());
        s.agent_online("agent-1", &info).await.unwrap();
        assert_eq!(
            s.agent("agent-1").await.unwrap().unwrap().state,
            AgentState::Revoked
        );
        assert!(!s.revoke_agent("agent-9").await.unwrap());
    }
}
