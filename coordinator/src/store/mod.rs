//! Persistence: an embedded SQLite database in the data dir (sqlx, migrations in
//! `coordinator/migrations`). The only place in Rampart with SQL. It stores records; it does not
//! decide policy (who may do what, when an agent is offline): callers do.

mod agents;
mod audit;
mod chaos;
mod faults;
mod remediation;
mod runs;
mod schedules;
mod sweeps;
mod threats;
mod tokens;

pub use agents::{AgentRecord, AgentState, CertMatch, HostInfo};
pub use audit::{AUDIT_GENESIS, AuditEntry, AuditVerification};
pub use chaos::{INTERRUPTED_RUN, UnsettledFault};
pub use faults::FaultRecord;
pub use remediation::{RemediationHostRecord, RemediationRunRecord};
pub use runs::{INTERRUPTED_HOST, Settled};
pub use schedules::ScheduleRecord;
pub use sweeps::{
    ResultHistoryRow, SweepHostRecord, SweepOverview, SweepRecord, SweepResultRecord,
};
pub use threats::{LatestResult, LatestRun, ThreatModelRecord};
pub use tokens::{
    AcceptedJoin, OperatorToken, OperatorTokenInfo, RevokeRefusal, TokenRefusal, hash_secret,
};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rampart_common::labels::Labels;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use tokio::sync::Mutex;

/// A connection waits this long for SQLite's lock (a WAL checkpoint, another process such as an
/// operator's `sqlite3` shell) before giving up. Rampart's own writers never contend: they share
/// one connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Readers run side by side (WAL lets them read while the writer writes).
const READERS: u32 = 4;
/// How long a write may wait for the writer connection. Writes queue there instead of failing
/// with "database is locked"; a minute covers a 1,000-host sweep's results landing at once.
const WRITER_WAIT: Duration = Duration::from_secs(120);

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

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Read-only work: several connections.
    pool: SqlitePool,
    /// Every write goes through this pool of exactly one connection, so writers queue in
    /// Rampart instead of racing for SQLite's lock (a deferred transaction that reads and then
    /// writes fails at once with SQLITE_BUSY_SNAPSHOT, whatever the busy timeout says).
    writer: SqlitePool,
    /// File holding the newest audit entry's seq and hash, so deleting the newest rows shows too.
    audit_head: PathBuf,
    /// Serialises audit appends so each sees the previous hash.
    audit_lock: std::sync::Arc<Mutex<()>>,
    /// Bumped whenever an experiment run or game day changes (its row, faults or timeline), so
    /// live views wake up instead of polling.
    run_changes: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
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

impl Store {
    /// Opens (creating if needed) `dir/rampart.db` and applies pending migrations.
    pub async fn open(dir: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(dir.join("rampart.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITER_WAIT)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self {
            pool,
            writer,
            audit_head: dir.join("audit.head"),
            audit_lock: Default::default(),
            run_changes: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
        })
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
pub(crate) mod testing {
    use super::Store;

    /// A store in a fresh temporary data dir.
    pub async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        (dir, s)
    }
}
