//! `rampart migrate`: moves an installation's data from its SQLite data dir to PostgreSQL.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use rampart_common::Secret;

use crate::store::{CopyProgress, Store, redact_url};

/// Progress lines at most this often, so a copy of millions of rows does not flood the terminal.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The data dir whose rampart.db to copy (stop its coordinator first). The CA files stay
    /// there: every coordinator of the deployment needs a copy of them.
    #[arg(long, value_name = "DIR")]
    from_sqlite: PathBuf,
    /// The PostgreSQL database to copy into; it must hold no Rampart data yet.
    #[arg(
        long,
        value_name = "URL",
        env = "RAMPART_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Secret,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<i32> {
    rampart_common::logging::init(rampart_common::logging::LogFormat::Text, "warn");
    crate::config::check_database_url(args.database_url.expose()).map_err(super::usage)?;
    let db = args.from_sqlite.join("rampart.db");
    if !db.is_file() {
        bail!(
            "{} does not exist: --from-sqlite takes the coordinator's data dir",
            db.display()
        );
    }
    let target_name = redact_url(args.database_url.expose());
    let source = Store::open(&args.from_sqlite)
        .await
        .with_context(|| format!("cannot open {}", db.display()))?;
    let target = Store::connect(&args.from_sqlite, Some(args.database_url.expose()))
        .await
        .with_context(|| format!("cannot open {target_name}"))?;
    eprintln!("copying {} into {target_name}", db.display());
    let started = Instant::now();
    let mut last = Instant::now();
    let report = source
        .copy_to(&target, |CopyProgress::Rows { table, rows, total }| {
            if rows == total || last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                eprintln!("  {table}: {rows} of {total} rows");
            }
        })
        .await?;
    let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "copied {rows} rows in {} tables in {:.1}s; the audit trail ({} entries) verifies in PostgreSQL",
        report.tables.len(),
        started.elapsed().as_secs_f64(),
        report.audit_entries
    )?;
    writeln!(
        out,
        "next: rampart serve --data-dir {} --database-url … (the data dir keeps the CA)",
        args.from_sqlite.display()
    )?;
    source.close().await;
    target.close().await;
    Ok(0)
}
