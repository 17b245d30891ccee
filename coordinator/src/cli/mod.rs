//! `rampart` command line: `serve`, `dev`, and the operator commands, which are gRPC clients like
//! any other (they find the coordinator from --coordinator / RAMPART_ADDR, their token from
//! --token / RAMPART_TOKEN and the CA from --ca / RAMPART_CA).

pub mod chaos;
mod compliance;
mod dev;
mod docs;
mod experiment;
mod experiment_view;
mod migrate;
mod output;
mod packs;
mod remediate;
mod sweep;
mod threats;
mod threats_view;
mod tokens;
mod units;
mod waiver;

pub use units::{parse_bytes, parse_rate};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rampart_common::logging::{self, LogFormat};
use rampart_common::time::format_ms;
use rampart_common::{labels, tls};
use rampart_proto::v1::audit_service_client::AuditServiceClient;
use rampart_proto::v1::chaos_service_client::ChaosServiceClient;
use rampart_proto::v1::compliance_service_client::ComplianceServiceClient;
use rampart_proto::v1::experiment_service_client::ExperimentServiceClient;
use rampart_proto::v1::fleet_service_client::FleetServiceClient;
use rampart_proto::v1::token_service_client::TokenServiceClient;
use rampart_proto::v1::{
    CollectFactsRequest, GetAgentRequest, ListAgentsRequest, ListAuditRequest, ListPacksRequest,
    PingAgentRequest, RevokeAgentRequest, VerifyAuditRequest, WhoAmIRequest,
};
use tokio_util::sync::CancellationToken;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::config::{DEFAULT_LISTEN, FileConfig};
use crate::server::{self, Settings};
use crate::store::Role;
use output::{agent_json, agent_state, print_table};
use tokens::{AdminCommand, TokenCommand};

/// Exit status for usage and configuration errors (nothing was started).
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the audit trail fails verification.
pub const EXIT_AUDIT_BROKEN: i32 = 4;
/// Exit status of `sweep --fail-on` when a finding at or above the severity exists (or a host
/// could not be checked).
pub const EXIT_FINDINGS: i32 = 5;
/// Exit status of `remediate` when a host was not fixed (or restored), failed, or could not be
/// reached.
pub const EXIT_NOT_FIXED: i32 = 6;

/// Rampart: threat modeling, continuous compliance and chaos engineering for a fleet of Linux
/// hosts, where each practice proves the others.
#[derive(Debug, Parser)]
#[command(name = "rampart", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub remote: Remote,
    #[command(subcommand)]
    pub command: Command,
}

/// How operator commands reach the coordinator.
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Coordinator address, e.g. https://rampart.example.com:7443.
    #[arg(long, env = "RAMPART_ADDR", global = true)]
    pub coordinator: Option<String>,
    /// Operator bearer token (from `rampart admin token create`, or the data dir's admin.token).
    #[arg(long, env = "RAMPART_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<rampart_common::Secret>,
    /// The coordinator's CA certificate (DATA_DIR/ca.pem).
    #[arg(long, env = "RAMPART_CA", global = true)]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the coordinator.
    Serve {
        /// Data directory: CA, database, initial admin token [config: data_dir].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on [config: listen; default: 0.0.0.0:7443].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Config file (TOML); see deploy/coordinator.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log format: text or json [config: log_format; default: text].
        #[arg(long)]
        log_format: Option<LogFormat>,
        /// Folder of extra policy packs, one sub-folder each [config: packs_dir].
        #[arg(long)]
        packs_dir: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics (plain HTTP, no secrets)
        /// [config: metrics_listen; default: off].
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<SocketAddr>,
        /// Serve the web console at https://ADDR/ (operators log in with their tokens)
        /// [config: web_listen; default: off].
        #[arg(long, value_name = "ADDR")]
        web_listen: Option<SocketAddr>,
        /// Store in PostgreSQL, e.g. postgres://rampart:PASSWORD@db.example.com/rampart, shared
        /// by every coordinator of a deployment [config: database_url; default: SQLite in the
        /// data dir].
        #[arg(
            long,
            value_name = "URL",
            env = "RAMPART_DATABASE_URL",
            hide_env_values = true
        )]
        database_url: Option<rampart_common::Secret>,
    },
    /// A throw-away coordinator and a local agent, for trying Rampart out. Ctrl-C stops both.
    Dev(dev::DevArgs),
    /// Certificate authority.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Join tokens, for enrolling agents.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Operator tokens.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The fleet.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run a compliance sweep: collect facts from the selected agents, evaluate a pack, store and
    /// report the results. Needs the operator role. With --wait, progress goes to stderr and the
    /// report to stdout.
    Sweep(sweep::SweepArgs),
    /// Remediate one rule: a dry run by default (each host's planned change); --apply changes the
    /// hosts (operator role), checks them again and says fixed / not fixed. Exit status 6 when a
    /// host was not fixed, failed or could not be reached.
    Remediate(remediate::RemediateArgs),
    /// Policy packs.
    #[command(subcommand)]
    Packs(PacksCommand),
    /// Compliance results over time: status, drift, history.
    #[command(subcommand)]
    Compliance(ComplianceCommand),
    /// Scheduled sweeps.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Waivers: a failing check accepted on some hosts, with the reason, until a date.
    #[command(subcommand)]
    Waiver(waiver::WaiverCommand),
    /// Collect an agent's compliance facts now and print them. Needs the operator role.
    Facts {
        id: String,
        /// Also report the metadata of this file (absolute path); repeatable.
        #[arg(long = "file", value_name = "PATH")]
        files: Vec<String>,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show which operator token is in use and its role.
    Whoami,
    /// Print a shell completion script for `rampart` or `rampart-agent`, e.g.
    /// `rampart completions bash > /etc/bash_completion.d/rampart`.
    Completions(docs::CompletionsArgs),
    /// Write man pages (roff) for `rampart` or `rampart-agent` and each of its subcommands into a
    /// folder, e.g. `rampart man --out-dir /usr/local/share/man/man1`.
    Man(docs::ManArgs),
    /// Move an installation from its SQLite data dir to PostgreSQL, audit chain verified before
    /// and after. Stop the coordinator first; then serve with --database-url.
    Migrate(migrate::MigrateArgs),
    /// Fault injection: inject, list, revert. Needs the operator role (ls: viewer).
    #[command(subcommand)]
    Fault(chaos::FaultCommand),
    /// Chaos experiments: validate, run (halting when the steady state breaks), follow, abort,
    /// report.
    #[command(subcommand)]
    Experiment(experiment::ExperimentCommand),
    /// Game days: experiments in stages with approval gates and notes, followed by many people.
    #[command(subcommand)]
    Gameday(experiment::GameDayCommand),
    /// The emergency stop: every agent reverts every fault now, and every experiment run halts;
    /// one confirmation per agent. Exits 1 if an agent did not confirm. Needs the operator role.
    Stop {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// The threat model: validate and apply it, list and explain its risks (residual risk from
    /// the fleet's live evidence), diff, diagram, report, import and export.
    #[command(subcommand)]
    Threats(threats::ThreatsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a scheduled sweep. Times are UTC. If the coordinator is down when a run is due, the
    /// schedule runs once when it is back, then follows its pattern. Needs the operator role.
    Add {
        /// Cron pattern: five fields ("0 */6 * * *"), six with seconds first, or @hourly/@daily.
        #[arg(long)]
        cron: String,
        /// Only agents with all these labels: k=v,k2=v2.
        #[arg(long, default_value = "")]
        selector: String,
        /// Policy pack.
        #[arg(long, default_value = crate::api::compliance::DEFAULT_PACK)]
        pack: String,
    },
    /// List scheduled sweeps with their last and next runs.
    Ls {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Remove a scheduled sweep. Needs the operator role.
    Rm { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ComplianceCommand {
    /// Score per host (its latest checked sweep) and per rule.
    Status {
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
        /// Also score the hosts per value of this label (e.g. env, team).
        #[arg(long, value_name = "LABEL")]
        group_by: Option<String>,
    },
    /// Checks that flipped between pass and fail, when, and the evidence before and after.
    Drift {
        /// Only flips since then: a duration ago (24h, 7d) or a time (2026-11-30T08:00:00Z).
        #[arg(long)]
        since: Option<String>,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// One host's sweeps and scores, oldest first.
    History {
        /// Agent id.
        id: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Subcommand)]
pub enum PacksCommand {
    /// List the loaded packs, and those rejected with the reason.
    Ls,
    /// List a pack's checks: id, severity, remediation action, title.
    Show {
        name: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Test a pack folder on this machine: each `tests/<case>/` holds `case.toml` (`root`: the
    /// host tree, default `root/`; `[modes]` "/etc/shadow" = "0640", set before collecting since
    /// git keeps no modes; `[owner]` uid, user, group reported for every file, default root) and
    /// `expected.toml` ("<check id>" = "pass" | "fail" | "error" | "not_applicable", for every
    /// check). The tree's facts are collected as an agent with that fact root would; every
    /// verdict that differs is printed with its evidence. Exit status 1 when a case differs.
    Test {
        /// The pack folder (with pack.toml).
        dir: PathBuf,
        /// Only this case.
        #[arg(long)]
        case: Option<String>,
        /// Write each case's expected.toml from the pack's current verdicts (review the diff).
        #[arg(long)]
        update: bool,
    },
    /// Check a pack folder on this machine: it loads; every check has a title, rationale,
    /// remediation and CIS or NIST references; every check reaches a verdict on each test case;
    /// no `result` without `meta`; only facts agents report are read. Exit status 1 on a problem.
    Lint {
        /// The pack folder (with pack.toml).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Print the CA fingerprint (sha256:HEX) that agents pin with --ca-fingerprint.
    Fingerprint {
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List agents.
    Ls {
        /// Only agents with all these labels: k=v,k2=v2.
        #[arg(long, default_value = "")]
        selector: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Show one agent.
    Show {
        id: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Revoke an agent: its certificate stops working at once. Needs the admin role.
    Revoke { id: String },
    /// Send a ping down the agent's session and print the round trip. Needs the operator role.
    Ping {
        id: String,
        /// How long to wait.
        #[arg(long, default_value = "5s", value_parser = rampart_common::time::parse_duration)]
        timeout: Duration,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List the newest audit entries.
    Ls {
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Check the hash chain; exits 4 if an entry was edited or deleted.
    Verify,
}

/// A mistake in how the command was called (exit status 2): nothing was attempted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

fn usage(msg: impl Into<String>) -> anyhow::Error {
    Usage(msg.into()).into()
}

/// Checks what can be checked without the coordinator, so bad input is reported before dialing.
fn precheck(command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Token(TokenCommand::Create { labels: l, .. }) => {
            labels::parse_labels(l).map_err(usage)?;
        }
        Command::Agents(AgentsCommand::Ls { selector, .. }) => {
            labels::Selector::parse(selector).map_err(usage)?;
        }
        Command::Sweep(args) => args.check()?,
        Command::Fault(chaos::FaultCommand::Inject(args)) => args.check()?,
        Command::Remediate(args) => args.check()?,
        Command::Waiver(cmd) => cmd.check()?,
        Command::Experiment(_) | Command::Gameday(_) => experiment::precheck(command)?,
        Command::Threats(cmd) => cmd.precheck()?,
        _ => {}
    }
    Ok(())
}

/// Adds the bearer token to every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// A connection to the coordinator with the caller's token attached.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    bearer: Bearer,
}

impl Client {
    pub async fn connect(remote: &Remote) -> anyhow::Result<Self> {
        let addr = remote.coordinator.as_deref().ok_or_else(|| {
            usage(
                "no coordinator address: pass --coordinator https://HOST:PORT or set RAMPART_ADDR",
            )
        })?;
        let ca_path = remote
            .ca
            .as_ref()
            .ok_or_else(|| usage("no CA certificate: pass --ca FILE or set RAMPART_CA (the coordinator's DATA_DIR/ca.pem)"))?;
        let ca = std::fs::read(ca_path)
            .with_context(|| format!("cannot read the CA certificate {}", ca_path.display()))?;
        let channel = tls::dial(addr, tls::client_config(&ca, None)?).await?;
        let bearer = match &remote.token {
            Some(t) => Some(format!("Bearer {}", t.expose()).parse().map_err(|_| {
                anyhow!("the operator token contains characters that cannot be sent")
            })?),
            None => None,
        };
        Ok(Self {
            channel,
            bearer: Bearer(bearer),
        })
    }

    pub fn fleet(&self) -> FleetServiceClient<Authed> {
        FleetServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn tokens(&self) -> TokenServiceClient<Authed> {
        TokenServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn compliance(&self) -> ComplianceServiceClient<Authed> {
        ComplianceServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn chaos(&self) -> ChaosServiceClient<Authed> {
        ChaosServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub fn experiments(&self) -> ExperimentServiceClient<Authed> {
        ExperimentServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(rampart_proto::MAX_MESSAGE_BYTES)
    }

    pub fn audit(&self) -> AuditServiceClient<Authed> {
        AuditServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

/// A gRPC error as an operator should read it.
fn rpc(status: tonic::Status) -> anyhow::Error {
    let code = match status.code() {
        tonic::Code::Unauthenticated => "not authenticated",
        tonic::Code::PermissionDenied => "permission denied",
        tonic::Code::NotFound => "not found",
        tonic::Code::InvalidArgument => "invalid argument",
        tonic::Code::FailedPrecondition => "not possible",
        tonic::Code::Unavailable => "unavailable",
        tonic::Code::DeadlineExceeded => "timed out",
        _ => "failed",
    };
    anyhow!("{code}: {}", status.message())
}

/// Runs the parsed command line; returns the process exit status.
pub fn run(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async move {
        match dispatch(cli).await {
            Ok(code) => code,
            Err(e) => {
                if let Some(c) = e.downcast_ref::<rampart_common::config::ConfigErrors>() {
                    eprint!("error: {c}");
                    return EXIT_USAGE;
                }
                if e.downcast_ref::<Usage>().is_some() {
                    eprintln!("error: {e}");
                    return EXIT_USAGE;
                }
                eprintln!("error: {e:#}");
                1
            }
        }
    })
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let remote = cli.remote;
    match cli.command {
        Command::Serve {
            data_dir,
            listen,
            config,
            log_format,
            packs_dir,
            metrics_listen,
            web_listen,
            database_url,
        } => {
            let file = match &config {
                Some(p) => FileConfig::load(p)?,
                None => FileConfig::default(),
            };
            logging::init(log_format.or(file.log_format).unwrap_or_default(), "info");
            let data_dir = data_dir.or(file.data_dir).ok_or_else(|| {
                usage("no data dir: pass --data-dir DIR or set data_dir in the config file")
            })?;
            let listen = listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid constant"));
            let settings = Settings {
                data_dir,
                listen,
                server_names: file.server_names,
                packs_dir: packs_dir.or(file.packs_dir),
                enroll_limits: file.enroll_limits,
                agent_cert_lifetime: file
                    .agent_cert_lifetime
                    .unwrap_or(crate::pki::AGENT_VALIDITY),
                metrics_listen: metrics_listen.or(file.metrics_listen),
                metrics_group_label: file.metrics_group_label,
                web_listen: web_listen.or(file.web_listen),
                database_url: match database_url {
                    Some(url) => {
                        crate::config::check_database_url(url.expose()).map_err(usage)?;
                        Some(url)
                    }
                    None => file.database_url,
                },
            };
            let cancel = CancellationToken::new();
            let coordinator = server::start(&settings, cancel.clone()).await?;
            rampart_common::signals::cancel_on_signals(cancel);
            coordinator.wait().await?;
            Ok(0)
        }
        Command::Dev(args) => dev::run(args).await.map(|()| 0),
        Command::Completions(args) => docs::completions(&args).map(|()| 0),
        Command::Man(args) => docs::man(&args).map(|()| 0),
        Command::Migrate(args) => migrate::run(args).await,
        Command::Experiment(experiment::ExperimentCommand::Validate { file }) => {
            experiment::validate(&file)
        }
        Command::Threats(cmd) if cmd.is_local() => threats::local(cmd),
        Command::Packs(PacksCommand::Test { dir, case, update }) => {
            packs::test(&dir, update, case.as_deref())
        }
        Command::Packs(PacksCommand::Lint { dir }) => packs::lint(&dir),
        Command::Ca(CaCommand::Fingerprint { data_dir }) => {
            let path = data_dir.join("ca.pem");
            let pem = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read {}; has `rampart serve` run with this data dir?",
                    path.display()
                )
            })?;
            let certs = tls::certs_from_pem(&pem, &path.display().to_string())?;
            println!("{}", tls::fingerprint(&certs[0]));
            Ok(0)
        }
        command => {
            logging::init(LogFormat::Text, "warn");
            precheck(&command)?;
            let client = Client::connect(&remote).await?;
            operator(client, &remote, command).await
        }
    }
}

async fn operator(client: Client, remote: &Remote, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Token(cmd) => tokens::join(client, remote, cmd).await,
        Command::Admin(AdminCommand::Token(cmd)) => tokens::operator(client, cmd).await,
        Command::Whoami => {
            let r = client
                .tokens()
                .who_am_i(WhoAmIRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            let role = crate::api::tokens::role_from_proto(r.role)
                .map(Role::as_str)
                .unwrap_or("unknown");
            println!("{} (token {}, role {role})", r.name, r.token_id);
            Ok(0)
        }
        Command::Agents(cmd) => agents(client, cmd).await,
        Command::Sweep(args) => sweep::run(client, args).await,
        Command::Fault(cmd) => chaos::fault(client, cmd).await,
        Command::Stop { output } => chaos::stop(client, output).await,
        Command::Experiment(cmd) => experiment::experiment(client, cmd).await,
        Command::Gameday(cmd) => experiment::gameday(client, cmd).await,
        Command::Threats(cmd) => threats::remote(client, cmd).await,
        Command::Remediate(args) => remediate::run(client, args).await,
        Command::Compliance(cmd) => compliance::run(client, cmd).await,
        Command::Schedule(cmd) => compliance::schedule(client, cmd).await,
        Command::Waiver(cmd) => waiver::run(client, cmd).await,
        Command::Packs(PacksCommand::Show { name, output }) => {
            let r = client
                .compliance()
                .list_packs(ListPacksRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            let pack = r
                .packs
                .into_iter()
                .find(|p| p.name == name)
                .ok_or_else(|| {
                    anyhow!("not found: no pack {name:?}; `rampart packs ls` lists them")
                })?;
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&pack)?),
                Output::Table => {
                    println!("{} {}: {}\n", pack.name, pack.version, pack.description);
                    let rows: Vec<Vec<String>> = pack
                        .check_info
                        .iter()
                        .map(|c| {
                            vec![
                                c.id.clone(),
                                c.severity.clone(),
                                if c.action.is_empty() {
                                    "-".into()
                                } else {
                                    c.action.clone()
                                },
                                c.title.clone(),
                            ]
                        })
                        .collect();
                    print_table(&["RULE", "SEVERITY", "ACTION", "TITLE"], &rows);
                }
            }
            Ok(0)
        }
        Command::Packs(PacksCommand::Ls) => {
            let r = client
                .compliance()
                .list_packs(ListPacksRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            let rows = r
                .packs
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.version.clone(),
                        p.checks.to_string(),
                        p.description.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            print_table(&["NAME", "VERSION", "CHECKS", "DESCRIPTION"], &rows);
            for e in &r.errors {
                println!("rejected: {e}");
            }
            Ok(if r.errors.is_empty() { 0 } else { 1 })
        }
        Command::Facts { id, files, output } => {
            let report = client
                .fleet()
                .collect_facts(CollectFactsRequest {
                    id,
                    file_paths: files,
                    timeout_ms: 0,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                Output::Table => output::print_fact_summary(&report),
            }
            Ok(if report.errors.is_empty() { 0 } else { 1 })
        }
        Command::Audit(cmd) => audit(client, cmd).await,
        Command::Serve { .. }
        | Command::Dev(_)
        | Command::Ca(_)
        | Command::Completions(_)
        | Command::Migrate(_)
        | Command::Packs(PacksCommand::Test { .. } | PacksCommand::Lint { .. })
        | Command::Man(_) => {
            bail!("not an operator command")
        }
    }
}

async fn agents(client: Client, cmd: AgentsCommand) -> anyhow::Result<i32> {
    match cmd {
        AgentsCommand::Ls { selector, output } => {
            labels::Selector::parse(&selector).map_err(|e| anyhow!(e))?;
            let r = client
                .fleet()
                .list_agents(ListAgentsRequest { selector })
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &r.agents.iter().map(agent_json).collect::<Vec<_>>()
                    )?
                ),
                Output::Table => {
                    let rows = r
                        .agents
                        .iter()
                        .map(|a| {
                            vec![
                                a.id.clone(),
                                a.hostname.clone(),
                                agent_state(a.state).to_string(),
                                format_ms(a.last_seen_unix_ms),
                                a.labels
                                    .iter()
                                    .map(|(k, v)| format!("{k}={v}"))
                                    .collect::<Vec<_>>()
                                    .join(","),
                            ]
                        })
                        .collect::<Vec<_>>();
                    print_table(&["ID", "HOSTNAME", "STATE", "LAST SEEN", "LABELS"], &rows);
                }
            }
            Ok(0)
        }
        AgentsCommand::Show { id, output } => {
            let a = client
                .fleet()
                .get_agent(GetAgentRequest { id })
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&agent_json(&a))?),
                Output::Table => {
                    let labels = a
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",");
                    for (k, v) in [
                        ("id", a.id.clone()),
                        ("hostname", a.hostname.clone()),
                        ("state", agent_state(a.state).to_string()),
                        ("labels", labels),
                        ("os", a.os.clone()),
                        ("kernel", a.kernel.clone()),
                        ("arch", a.arch.clone()),
                        ("version", a.version.clone()),
                        ("capabilities", a.capabilities.join(",")),
                        ("address", a.address.clone()),
                        ("enrolled", format_ms(a.enrolled_unix_ms)),
                        (
                            "certificate expires",
                            if a.cert_expires_unix_ms == 0 {
                                "unknown".to_string()
                            } else {
                                format_ms(a.cert_expires_unix_ms)
                            },
                        ),
                        ("last seen", format_ms(a.last_seen_unix_ms)),
                    ] {
                        println!("{k:<13} {v}");
                    }
                }
            }
            Ok(0)
        }
        AgentsCommand::Revoke { id } => {
            let r = client
                .fleet()
                .revoke_agent(RevokeAgentRequest { id: id.clone() })
                .await
                .map_err(rpc)?
                .into_inner();
            let closed = if r.session_closed {
                "; its session was closed"
            } else {
                ""
            };
            println!("revoked {id}{closed}");
            Ok(0)
        }
        AgentsCommand::Ping { id, timeout } => {
            let r = client
                .fleet()
                .ping_agent(PingAgentRequest {
                    id: id.clone(),
                    timeout_ms: timeout.as_millis().min(u128::from(u32::MAX)) as u32,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            println!(
                "{id}: round trip {:.3} ms",
                f64::from(r.round_trip_us) / 1000.0
            );
            Ok(0)
        }
    }
}

async fn audit(client: Client, cmd: AuditCommand) -> anyhow::Result<i32> {
    match cmd {
        AuditCommand::Ls { limit, output } => {
            let r = client
                .audit()
                .list_audit(ListAuditRequest { limit })
                .await
                .map_err(rpc)?
                .into_inner();
            match output {
                Output::Json => {
                    let entries: Vec<_> = r
                        .entries
                        .iter()
                        .map(|e| {
                            serde_json::json!({
                                "seq": e.seq, "time": format_ms(e.time_unix_ms), "actor": e.actor, "action": e.action,
                                "arguments": e.arguments, "result": e.result, "hash": e.hash,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&entries)?);
                }
                Output::Table => {
                    let rows = r
                        .entries
                        .iter()
                        .map(|e| {
                            vec![
                                e.seq.to_string(),
                                format_ms(e.time_unix_ms),
                                e.actor.clone(),
                                e.action.clone(),
                                e.arguments.clone(),
                                e.result.clone(),
                            ]
                        })
                        .collect::<Vec<_>>();
                    print_table(
                        &["SEQ", "TIME", "ACTOR", "ACTION", "ARGUMENTS", "RESULT"],
                        &rows,
                    );
                }
            }
            Ok(0)
        }
        AuditCommand::Verify => {
            let r = client
                .audit()
                .verify_audit(VerifyAuditRequest {})
                .await
                .map_err(rpc)?
                .into_inner();
            if r.ok {
                println!("audit trail intact: {} entries verified", r.entries);
                Ok(0)
            } else {
                println!(
                    "audit trail BROKEN ({} entries, {} problems):",
                    r.entries,
                    r.problems.len()
                );
                for p in &r.problems {
                    println!("  {p}");
                }
                Ok(EXIT_AUDIT_BROKEN)
            }
        }
    }
}
