//! A PostgreSQL database of its own for one test, in the server `RAMPART_TEST_DATABASE_URL`
//! names (`.ci/run` starts one from Debian's package). Dropped, with its sessions, on drop.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server's URL; None (with a printed reason) outside CI when it is not set, a panic under
/// `CI=true`.
pub fn server_url() -> Option<String> {
    match std::env::var("RAMPART_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but RAMPART_TEST_DATABASE_URL is not set: .ci/run starts PostgreSQL and sets it"
        ),
        _ => {
            eprintln!("skipping: RAMPART_TEST_DATABASE_URL is not set (see .ci/postgres)");
            None
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// A fresh database; `url` is what a coordinator's `--database-url` takes.
pub struct PgDatabase {
    server: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    /// None when no server is configured outside CI (the test should return early).
    pub fn create() -> Option<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let server = server_url()?;
        let name = format!(
            "rampart_e2e_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        block_on(async {
            let mut c = PgConnection::connect(&server).await?;
            sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await?;
            sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .await?;
            c.close().await
        })
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let mut url = url::Url::parse(&server).expect("RAMPART_TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        Some(Self {
            server,
            name,
            url: url.into(),
        })
    }

    /// Runs `sql` in this database and returns the first column of the first row as an integer.
    pub fn scalar(&self, sql: &str) -> Option<i64> {
        block_on(async {
            let mut c = PgConnection::connect(&self.url).await?;
            let v: Option<i64> = sqlx::query_scalar(sql).fetch_optional(&mut c).await?;
            c.close().await?;
            Ok::<_, sqlx::Error>(v)
        })
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            block_on(async {
                let mut c = PgConnection::connect(&server).await?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await?;
                c.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
