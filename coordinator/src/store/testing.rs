//! Test databases: every store test runs once on SQLite and once on PostgreSQL.
//!
//! PostgreSQL comes from `RAMPART_TEST_DATABASE_URL` (`.ci/run` starts a cluster and sets it);
//! each test gets a schema of its own, dropped when the test ends. Without the variable the
//! PostgreSQL half is skipped with a printed reason, except under `CI=true`, where it fails.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::Store;

/// The PostgreSQL server tests use, if any; panics under `CI=true` without one.
pub fn postgres_url() -> Option<String> {
    match std::env::var("RAMPART_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but RAMPART_TEST_DATABASE_URL is not set: .ci/run starts PostgreSQL and sets it"
        ),
        _ => {
            eprintln!("skipping the PostgreSQL half: RAMPART_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// One database a store test runs on; [`TestDb::open`] opens it, again if need be (a restart).
pub struct TestDb {
    dir: tempfile::TempDir,
    postgres: Option<PgSchema>,
}

impl TestDb {
    pub async fn sqlite() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            postgres: None,
        }
    }

    /// None when no PostgreSQL server is configured (outside CI).
    pub async fn postgres() -> Option<Self> {
        let base = postgres_url()?;
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            postgres: Some(PgSchema::create(&base).await),
        })
    }

    /// Applies the migrations up to `version` only and runs `sql` there: a database as an older
    /// Rampart left it, for testing what the later migrations make of its data.
    pub async fn at_version(&self, version: i64, sql: &str) {
        use sqlx::Executor;
        let keep = |mut m: sqlx::migrate::Migrator| {
            m.migrations = m
                .migrations
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect::<Vec<_>>()
                .into();
            m
        };
        match &self.postgres {
            Some(p) => {
                let mut conn = PgConnection::connect(&p.url).await.unwrap();
                keep(sqlx::migrate!("./migrations/postgres"))
                    .run(&mut conn)
                    .await
                    .unwrap();
                conn.execute(sqlx::raw_sql(sql)).await.unwrap();
                conn.close().await.unwrap();
            }
            None => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.dir.path().join("rampart.db"))
                    .create_if_missing(true);
                let mut conn = sqlx::sqlite::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                keep(sqlx::migrate!("./migrations/sqlite"))
                    .run(&mut conn)
                    .await
                    .unwrap();
                conn.execute(sqlx::raw_sql(sql)).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }

    /// Opens the store (applying migrations the first time).
    pub async fn open(&self) -> Store {
        self.open_with("").await
    }

    /// Opens the store with extra URL parameters (`sslmode=require`) on PostgreSQL.
    pub async fn open_with(&self, params: &str) -> Store {
        let url = self.postgres.as_ref().map(|p| {
            let mut url = url::Url::parse(&p.url).unwrap();
            for (k, v) in url::form_urlencoded::parse(params.as_bytes()) {
                url.query_pairs_mut().append_pair(&k, &v);
            }
            url.to_string()
        });
        Store::connect(self.dir.path(), url.as_deref())
            .await
            .unwrap()
    }
}

/// A schema of its own in the test server, dropped on drop.
struct PgSchema {
    base: String,
    name: String,
    /// The base URL with the schema as the connections' search path.
    url: String,
}

impl PgSchema {
    async fn create(base: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "rampart_t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(base).await.unwrap();
        sqlx::raw_sql(&format!(
            "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        let mut url = url::Url::parse(base).unwrap();
        url.query_pairs_mut()
            .append_pair("options[search_path]", &name)
            .append_pair("application_name", &name);
        Self {
            base: base.into(),
            name,
            url: url.into(),
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime: a thread of its own may block on another.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let mut conn = PgConnection::connect(&base).await?;
                    // A test that failed half-way may leave a connection in a transaction:
                    // end the schema's other sessions rather than wait on their locks.
                    sqlx::raw_sql(&format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE datname = current_database() AND pid != pg_backend_pid()
                           AND application_name = '{name}';
                         SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .execute(&mut conn)
                    .await?;
                    conn.close().await
                })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// Runs each named `async fn(TestDb)` twice: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::store::testing::TestDb::sqlite().await).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = $crate::store::testing::TestDb::postgres().await {
                        super::$name(db).await
                    }
                }
            )+
        }
    };
}
pub(crate) use on_both_backends;

/// An enrolled, offline agent named `id` (host `id` too) with a certificate valid for an hour.
pub fn agent_record(id: &str) -> super::AgentRecord {
    let now = rampart_common::time::now_ms();
    super::AgentRecord {
        id: id.into(),
        hostname: id.into(),
        labels: Default::default(),
        state: super::AgentState::Offline,
        os: String::new(),
        kernel: String::new(),
        arch: String::new(),
        version: String::new(),
        capabilities: vec![],
        address: String::new(),
        cert_fingerprint: format!("sha256:{id}"),
        prev_fingerprint: None,
        cert_expires_at: Some(now + 3_600_000),
        enrolled_at: now,
        last_seen: 0,
    }
}
