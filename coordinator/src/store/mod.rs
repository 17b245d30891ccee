//! Persistence: an embedded SQLite database in the data dir (sqlx, migrations in
//! `coordinator/migrations`). The only place in Rampart with SQL. It stores records; it does not
//! decide policy (who may do what, when an agent is offline): callers do.

mod agents;
mod audit;
mod chaos;
mod coordinators;
mod faults;
mod migrate;
mod remediation;
mod runs;
mod schedules;
mod sweeps;
mod threats;
mod tokens;
mod waivers;

pub use agents::{AgentRecord, AgentState, CertMatch, HostInfo};
pub use audit::{AUDIT_GENESIS, AuditEntry, AuditVerification};
pub use chaos::{INTERRUPTED_RUN, UnsettledFault};
pub use coordinators::{CoordinatorRecord, RelayAnswer, RelayedCommand};
pub use faults::FaultRecord;
pub use migrate::{CopyProgress, CopyReport};
pub use remediation::{RemediationHostRecord, RemediationRunRecord};
pub use runs::{INTERRUPTED_HOST, Settled};
pub use schedules::ScheduleRecord;
pub use sweeps::{
    ResultHistoryRow, StoredHost, SweepHostRecord, SweepOverview, SweepRecord, SweepResultRecord,
};
pub use threats::{LatestResult, LatestRun, ThreatModelRecord};
pub use tokens::{
    AcceptedJoin, OperatorToken, OperatorTokenInfo, RevokeRefusal, TokenRefusal, hash_secret,
};
pub use waivers::WaiverRecord;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rampart_common::labels::Labels;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Connection, Executor};
use tokio::sync::Mutex;

/// A connection waits this long for SQLite's lock (a WAL checkpoint, another process such as an
/// operator's `sqlite3` shell) before giving up. Rampart's own writers never contend: they share
/// one connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Readers run side by side (WAL lets them read while the writer writes).
const READERS: u32 = 4;
/// Each reader's page cache, in KiB (SQLite's default is about 2 MiB a connection). Readers find
/// rows by index and the operating system caches the file. With 10,000 agents the coordinator
/// was 13 MiB smaller with 256 KiB in one side-by-side run, within the noise in another (see
/// BENCHMARKS.md, "Results kept per host").
const READER_CACHE_KIB: u32 = 256;
/// How long a write may wait for the writer connection. Writes queue there instead of failing
/// with "database is locked"; a minute covers a 1,000-host sweep's results landing at once.
const WRITER_WAIT: Duration = Duration::from_secs(120);
/// PostgreSQL connections per coordinator: its server runs writers side by side, and several
/// coordinators share one server, whose default limit is 100 connections.
const PG_CONNECTIONS: u32 = 16;
/// How long the first connection to PostgreSQL may take before start-up gives up and says so.
const PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration failed: {0}; the database may belong to a newer Rampart")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("{0}")]
    Config(String),
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

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `rampart.db` in the data dir: the embedded default.
    Sqlite,
    /// A server that several coordinators can share.
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// What a locked write transaction serialises against (see [`Store::begin_locked`]); the
/// numbers are PostgreSQL advisory lock keys, fixed so every coordinator uses the same ones.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WriteLock {
    Audit = 0x5241_0001,
    OperatorTokens = 0x5241_0002,
    Settle = 0x5241_0003,
}

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Read-only work: several connections.
    pool: AnyPool,
    /// Every write goes through this pool. With SQLite it holds exactly one connection, so
    /// writers queue in Rampart instead of racing for SQLite's lock (a deferred transaction that
    /// reads and then writes fails at once with SQLITE_BUSY_SNAPSHOT, whatever the busy timeout
    /// says); with PostgreSQL it is the same pool as `pool`.
    writer: AnyPool,
    /// SQLite only: a file holding the newest audit entry's seq and hash, so deleting the newest
    /// rows shows even to someone who edits the database file (the `audit_head` row is inside
    /// it). PostgreSQL has no shared data dir and relies on the row.
    audit_head_file: Option<PathBuf>,
    /// Serialises audit appends so each sees the previous hash.
    audit_lock: std::sync::Arc<Mutex<()>>,
    /// Bumped whenever an experiment run or game day changes (its row, faults or timeline), so
    /// live views wake up instead of polling.
    run_changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    /// This coordinator's id in `coordinators`, once registered (see
    /// [`Store::register_coordinator`]).
    coordinator_id: std::sync::Arc<std::sync::OnceLock<String>>,
    /// PostgreSQL only: the URL, for the connection that listens for notifications.
    database_url: Option<std::sync::Arc<rampart_common::Secret>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Placeholders for a multi-row insert whose rows are the statement's only parameters:
/// `(?, ?), (?, ?)` on SQLite, `($1, $2), ($3, $4)` on PostgreSQL. sqlx looks up the name of every
/// SQLite parameter it binds, and SQLite finds a name by scanning the statement's list of names,
/// so numbered parameters cost n² comparisons per statement; anonymous ones have no names.
fn row_placeholders(backend: Backend, rows: usize, cols: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    let _ = write!(out, "${}", r * cols + c + 1);
                }
            }
        }
        out.push(')');
    }
    out
}

/// Parameters per multi-row statement: rows per statement are this divided by the columns each
/// row binds. (Lists of `$n` placeholders bind in n² on SQLite, see [`row_placeholders`]: a
/// profile of a 1,000-host sweep writing 7,000-parameter statements spent a fifth of its CPU
/// there.)
const STATEMENT_PARAMS: usize = 400;

/// Rows of `columns` parameters each that one statement takes.
fn rows_per_statement(columns: usize) -> usize {
    (STATEMENT_PARAMS / columns).max(1)
}

/// Placeholders `$first, …` for `n` values of an `IN (…)` list.
fn list_placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Flags are stored as 0/1 integers in both databases.
fn flag(b: bool) -> i64 {
    i64::from(b)
}

fn get_flag(r: &sqlx::any::AnyRow, column: &str) -> Result<bool> {
    use sqlx::Row;
    Ok(r.try_get::<i64, _>(column)? != 0)
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

/// The database URL with any password replaced, for logs and messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = u
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("password") {
                        "***".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "(unparsable URL)".into(),
    }
}

impl Store {
    /// Opens (creating if needed) `dir/rampart.db` and applies pending migrations.
    pub async fn open(dir: &Path) -> Result<Self> {
        Self::connect(dir, None).await
    }

    /// Opens the store a coordinator is configured with: PostgreSQL when `database_url` is
    /// given, else SQLite in `dir`; applies pending migrations either way.
    pub async fn connect(dir: &Path, database_url: Option<&str>) -> Result<Self> {
        sqlx::any::install_default_drivers();
        match database_url {
            Some(url) => Self::open_postgres(url).await,
            None => Self::open_sqlite(dir).await,
        }
    }

    async fn open_sqlite(dir: &Path) -> Result<Self> {
        let file = SqliteConnectOptions::new()
            .filename(dir.join("rampart.db"))
            .create_if_missing(true);
        let url = file.to_url_lossy();
        let options = AnyConnectOptions::from_url(&url)?;
        let pragmas = format!("PRAGMA busy_timeout = {};", BUSY_TIMEOUT.as_millis());
        // Statement journals (a multi-row insert keeps one in case it fails half-way) in memory
        // rather than in temp files: a 10,000-host sweep's result inserts spent a tenth of their
        // time writing them.
        let writer_pragmas =
            format!("PRAGMA journal_mode = WAL; PRAGMA temp_store = MEMORY; {pragmas}");
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITER_WAIT)
            .after_connect(move |conn, _| {
                let sql = writer_pragmas.clone();
                Box::pin(async move { conn.execute(sql.as_str()).await.map(|_| ()) })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let read_only = AnyConnectOptions::from_url(&file.read_only(true).to_url_lossy())?;
        let pool = AnyPoolOptions::new()
            .max_connections(READERS)
            .after_connect(move |conn, _| {
                let sql = format!("{pragmas} PRAGMA cache_size = -{READER_CACHE_KIB};");
                Box::pin(async move { conn.execute(sql.as_str()).await.map(|_| ()) })
            })
            .connect_with(read_only)
            .await?;
        Ok(Self::new(
            Backend::Sqlite,
            pool,
            writer,
            Some(dir.join("audit.head")),
        ))
    }

    async fn open_postgres(url: &str) -> Result<Self> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(StoreError::Config(format!(
                "database_url {} is not a PostgreSQL URL: expected postgres://user:password@host/database",
                redact_url(url)
            )));
        }
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("database_url {}: {e}", redact_url(url))))?;
        // One connection first: a server that is down or refuses the login is reported at once
        // (a pool would retry until its acquire timeout), naming the server but not the password.
        match tokio::time::timeout(PG_CONNECT_TIMEOUT, options.connect()).await {
            Ok(Ok(conn)) => conn.close().await?,
            Ok(Err(e)) => {
                return Err(StoreError::Config(format!(
                    "cannot connect to PostgreSQL at {}: {e}",
                    redact_url(url)
                )));
            }
            Err(_) => {
                return Err(StoreError::Config(format!(
                    "PostgreSQL at {} did not answer within {}s",
                    redact_url(url),
                    PG_CONNECT_TIMEOUT.as_secs()
                )));
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(PG_CONNECTIONS)
            .acquire_timeout(WRITER_WAIT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let mut store = Self::new(Backend::Postgres, pool.clone(), pool, None);
        store.database_url = Some(std::sync::Arc::new(rampart_common::Secret::new(url)));
        Ok(store)
    }

    fn new(
        backend: Backend,
        pool: AnyPool,
        writer: AnyPool,
        audit_head_file: Option<PathBuf>,
    ) -> Self {
        Self {
            backend,
            pool,
            writer,
            audit_head_file,
            audit_lock: Default::default(),
            run_changes: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
            coordinator_id: Default::default(),
            database_url: None,
        }
    }

    /// The PostgreSQL URL this store connected with (None on SQLite).
    pub fn database_url(&self) -> Option<&rampart_common::Secret> {
        self.database_url.as_deref()
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction that holds `lock` until it ends. SQLite's single writer
    /// connection already runs one write at a time; on PostgreSQL, where several connections
    /// and coordinators write at once, a transaction-scoped advisory lock serialises the writes
    /// that read before they write (the audit chain's head, the last admin token).
    pub(crate) async fn begin_locked(
        &self,
        lock: WriteLock,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.writer.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock as i64)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// Wakes when any experiment run or game day changes (see [`Store::run_changed`]).
    pub fn watch_runs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.run_changes.subscribe()
    }

    /// Tells live views that a run changed.
    pub(crate) fn run_changed(&self) {
        self.run_changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Closes the pools, flushing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_placeholders_are_anonymous_on_sqlite_and_numbered_on_postgresql() {
        assert_eq!(
            row_placeholders(Backend::Sqlite, 2, 3),
            "(?, ?, ?), (?, ?, ?)"
        );
        assert_eq!(
            row_placeholders(Backend::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(row_placeholders(Backend::Sqlite, 1, 1), "(?)");
    }

    /// A server that is not there, or a URL that is not PostgreSQL, is reported at once and
    /// clearly, without the password.
    #[tokio::test]
    async fn a_database_that_cannot_be_reached_is_reported_without_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("postgres://rampart:s3cret@127.0.0.1:{port}/rampart");
        let err = Store::connect(dir.path(), Some(&url))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot connect to PostgreSQL at postgres://rampart:***@127.0.0.1"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
        let err = Store::connect(dir.path(), Some("mysql://root:s3cret@db/x"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a PostgreSQL URL") && !err.contains("s3cret"),
            "{err}"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=s3cret&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require"
        );
    }

    /// `sslmode=require` gets a TLS session (rustls) from the test server, as the server sees it.
    #[tokio::test]
    async fn postgres_connections_use_tls_when_the_url_asks() {
        let Some(db) = testing::TestDb::postgres().await else {
            return;
        };
        let s = db.open_with("sslmode=require").await;
        let tls: Option<String> = sqlx::query_scalar(
            "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
        )
        .fetch_optional(&s.pool)
        .await
        .unwrap();
        assert!(tls.is_some_and(|v| v.starts_with("TLS")), "no TLS session");
        s.close().await;
    }
}
