//! `rampart-agent` command line: `enroll` once, then `run`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rampart_common::labels;
use rampart_common::logging::{self, LogFormat};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::AgentError;
use crate::config::{self, FileConfig};
use crate::enroll::{EnrollOptions, enroll};
use crate::facts::FactSource;
use crate::remediate::Remediator;
use crate::session::{self, SessionConfig};
use crate::state::StateDir;

/// Rampart agent: collects compliance facts and injects faults on this host when its coordinator
/// asks, within the limits of its own config.
#[derive(Debug, Parser)]
#[command(name = "rampart-agent", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrol this host with a coordinator (once): pins its CA, sends a CSR, stores the certificate.
    Enroll {
        /// Coordinator address, e.g. https://rampart.example.com:7443.
        #[arg(long)]
        coordinator: String,
        /// Join token from `rampart token create`. Prefer the environment variable: command
        /// lines are visible to every user of the host.
        #[arg(long, env = "RAMPART_JOIN_TOKEN", hide_env_values = true)]
        token: rampart_common::Secret,
        /// The coordinator CA's fingerprint, from `rampart ca fingerprint` (sha256:HEX).
        #[arg(long)]
        ca_fingerprint: String,
        /// Where the key, certificate and identity are kept.
        #[arg(long, default_value = config::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
        /// Label for this host, key=value; repeatable.
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Replace an existing enrolment in the state dir.
        #[arg(long)]
        force: bool,
        /// Log format: text or json.
        #[arg(long, default_value = "text")]
        log_format: LogFormat,
    },
    /// Run the agent: keep a session with the coordinator until SIGTERM or Ctrl-C.
    Run {
        /// Where enrolment stored the key and certificate [default: /var/lib/rampart-agent].
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Config file (TOML); see deploy/agent.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Coordinator address, overriding the one enrolled with; several, separated by commas,
        /// when coordinators share the fleet: the agent starts with one at random and moves to
        /// the next when its session is lost.
        #[arg(long, value_parser = parse_coordinators)]
        coordinator: Option<String>,
        /// Heartbeat period [default: 10s].
        #[arg(long, value_parser = rampart_common::time::parse_duration)]
        heartbeat_interval: Option<Duration>,
        /// Ceiling of the reconnect backoff [default: 30s].
        #[arg(long, value_parser = rampart_common::time::parse_duration)]
        reconnect_max: Option<Duration>,
        /// Extra label, key=value; repeatable (added to those from enrolment and the config).
        #[arg(long = "label", value_name = "KEY=VALUE")]
        labels: Vec<String>,
        /// Log format: text or json [default: text].
        #[arg(long)]
        log_format: Option<LogFormat>,
        /// Read compliance facts below this directory instead of `/` (a fixture tree: nothing is
        /// read from the real host and no host command runs).
        #[arg(long)]
        fact_root: Option<PathBuf>,
    },
    /// Revert every fault this agent's journal lists, and anything carrying Rampart's markers
    /// (the nftables table `inet rampart`, Rampart's root qdiscs). Needs no coordinator; run it
    /// while the agent is stopped. Exits 1 if something could not be reverted.
    Recover {
        /// Revert everything (required: there is no partial recovery).
        #[arg(long, required = true)]
        all: bool,
        #[arg(long, default_value = config::DEFAULT_STATE_DIR)]
        state_dir: PathBuf,
    },
}

/// Parses `args` (program name first), runs, and returns the process exit status.
pub fn main_with<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    // One thread is plenty for an agent and keeps its footprint small.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), AgentError> {
    match cli.command {
        Command::Enroll {
            coordinator,
            token,
            ca_fingerprint,
            state_dir,
            labels: label_args,
            force,
            log_format,
        } => {
            logging::init(log_format, "info");
            let labels = labels::parse_labels(&label_args).map_err(AgentError::Invalid)?;
            let e = enroll(EnrollOptions {
                coordinator,
                token,
                ca_fingerprint,
                state: StateDir::new(&state_dir),
                labels,
                force,
            })
            .await?;
            println!(
                "enrolled as {} (state in {})",
                e.identity.agent_id,
                state_dir.display()
            );
            Ok(())
        }
        Command::Recover { all: _, state_dir } => {
            logging::init(LogFormat::Text, "info");
            let (statuses, markers) =
                tokio::task::spawn_blocking(move || crate::faults::recover_all(&state_dir))
                    .await
                    .map_err(|e| AgentError::Invalid(format!("recovery failed: {e}")))?;
            let mut failed = 0;
            for st in &statuses {
                println!("{} {} {}: {}", st.fault_id, st.kind, st.state, st.detail);
                failed += usize::from(st.state != "reverted");
            }
            for m in &markers {
                match m {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        println!("FAILED: {e}");
                        failed += 1;
                    }
                }
            }
            if statuses.is_empty() {
                println!("the journal lists no fault");
            }
            if failed > 0 {
                return Err(AgentError::Recover(failed));
            }
            Ok(())
        }
        Command::Run {
            state_dir,
            config,
            coordinator,
            heartbeat_interval,
            reconnect_max,
            labels: label_args,
            log_format,
            fact_root,
        } => {
            let file = match &config {
                Some(path) => FileConfig::load(path)?,
                None => FileConfig::default(),
            };
            logging::init(log_format.or(file.log_format).unwrap_or_default(), "info");
            let state_dir = state_dir
                .or(file.state_dir)
                .unwrap_or_else(|| config::DEFAULT_STATE_DIR.into());
            let enrolment = StateDir::new(&state_dir).load()?;
            let faults = crate::faults::Faults::new(
                file.faults.clone(),
                &state_dir,
                crate::host::capabilities(&crate::host::describe().kernel),
            );
            let facts = FactSource {
                root: fact_root.or(file.fact_root).unwrap_or_else(|| "/".into()),
                run_commands: file.fact_commands.unwrap_or(true),
            };
            let mut labels = file.labels;
            labels.extend(labels::parse_labels(&label_args).map_err(AgentError::Invalid)?);
            let session = SessionConfig {
                coordinator: coordinator
                    .or(file.coordinator)
                    .unwrap_or_else(|| enrolment.identity.coordinator.clone()),
                heartbeat_interval: heartbeat_interval
                    .or(file.heartbeat_interval)
                    .unwrap_or(config::DEFAULT_HEARTBEAT),
                reconnect_max: reconnect_max
                    .or(file.reconnect_max)
                    .unwrap_or(config::DEFAULT_RECONNECT_MAX),
                labels,
                facts: facts.clone(),
                remediation: Remediator {
                    source: facts,
                    state_dir: state_dir.clone(),
                    enabled: file.remediation.unwrap_or(true),
                },
                faults,
                state: Some(StateDir::new(&state_dir)),
                probes: file.probes.clone(),
            };
            info!(agent = %enrolment.identity.agent_id, coordinator = %session.coordinator, "starting");
            let cancel = CancellationToken::new();
            rampart_common::signals::cancel_on_signals(cancel.clone());
            if let Some(addr) = file.metrics_listen {
                let faults = session.faults.clone();
                let render: rampart_common::metrics::Render = std::sync::Arc::new(move || {
                    let faults = faults.clone();
                    Box::pin(async move { crate::metrics::render(&faults) })
                });
                rampart_common::metrics::serve(addr, render, cancel.clone())
                    .await
                    .map_err(|e| {
                        AgentError::Invalid(format!("cannot serve metrics on {addr}: {e}"))
                    })?;
            }
            session::run(enrolment, session, cancel).await
        }
    }
}

fn parse_coordinators(s: &str) -> Result<String, String> {
    rampart_common::tls::coordinator_list(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}
