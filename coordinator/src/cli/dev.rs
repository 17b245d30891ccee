//! `rampart dev`: a coordinator on localhost in a temporary data dir, one local agent enrolled
//! and running as a child process, and the `export` lines to point the CLI at them. Ctrl-C (or
//! SIGTERM) stops the agent, then the coordinator, and removes the temporary dir.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use rampart_common::logging::{self, LogFormat};
use rampart_common::time::now_ms;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::tokens::new_secret;
use crate::server::{self, ADMIN_TOKEN_FILE, Settings};

/// The agent gets this long to stop on SIGTERM before it is killed.
const AGENT_STOP_DEADLINE: Duration = Duration::from_secs(10);
/// The dev join token only needs to last until the local agent has enrolled.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Address for the coordinator; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Address for the web console (HTTPS); port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    web_listen: SocketAddr,
    /// Keep state here instead of a temporary dir (it then survives the run).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The local agent's heartbeat period.
    #[arg(long, default_value = "5s", value_parser = rampart_common::time::parse_duration)]
    heartbeat_interval: Duration,
}

/// The local agent runs as `rampart agent …`: the same binary, so `cargo run --bin rampart`
/// is enough to get both.
fn agent_command(args: &[&str]) -> anyhow::Result<Command> {
    let exe = std::env::current_exe().context("cannot find the rampart executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("agent")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    Ok(cmd)
}

async fn stop_child(child: &mut Child) {
    let Some(pid) = child.id() else { return };
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM) {
        warn!(%e, "could not signal the agent");
    }
    match tokio::time::timeout(AGENT_STOP_DEADLINE, child.wait()).await {
        Ok(Ok(status)) => info!(%status, "local agent stopped"),
        _ => {
            warn!("the local agent did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}

/// Rampart's own threat model (examples/threat-model.yaml), applied by `rampart dev`.
const OWN_MODEL: &str = include_str!("../../../examples/threat-model.yaml");

pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    logging::init(LogFormat::Text, "info");
    let temp = match &args.data_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("rampart-dev-")
                .tempdir()
                .context("cannot create a temporary dir")?,
        ),
    };
    let base = args.data_dir.clone().unwrap_or_else(|| {
        temp.as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default()
    });
    let data_dir = base.join("coordinator");
    let agent_dir = base.join("agent");

    let cancel = CancellationToken::new();
    rampart_common::signals::cancel_on_signals(cancel.clone());
    let coordinator = server::start(
        &Settings {
            data_dir: data_dir.clone(),
            listen: args.listen,
            server_names: vec![],
            packs_dir: None,
            enroll_limits: Default::default(),
            agent_cert_lifetime: crate::pki::AGENT_VALIDITY,
            metrics_listen: None,
            metrics_group_label: None,
            web_listen: Some(args.web_listen),
            database_url: None,
        },
        cancel.clone(),
    )
    .await?;
    let url = format!("https://{}", coordinator.addr);
    let admin_token = match &coordinator.initial_admin_token {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(data_dir.join(ADMIN_TOKEN_FILE))
            .context("cannot read the admin token of the existing data dir")?
            .trim()
            .to_string(),
    };

    if !agent_dir.join("agent.json").exists() {
        let (id, join) = new_secret("rpj");
        let labels = [("env".to_string(), "dev".to_string())].into();
        let expires = now_ms() + DEV_TOKEN_TTL.as_millis() as i64;
        coordinator
            .state
            .store
            .insert_join_token(&id, &join, &labels, expires, 1, "rampart dev")
            .await?;
        let dir = agent_dir.to_string_lossy().to_string();
        let status = agent_command(&[
            "enroll",
            "--coordinator",
            &url,
            "--ca-fingerprint",
            &coordinator.ca_fingerprint,
            "--state-dir",
            &dir,
        ])?
        .env("RAMPART_JOIN_TOKEN", &join)
        .status()
        .await
        .context("cannot start the local agent")?;
        if !status.success() {
            cancel.cancel();
            let _ = coordinator.wait().await;
            bail!("the local agent could not enrol ({status})");
        }
    }
    // Rampart's own threat model, so that `threats ls` has something true to say from the start.
    let store = &coordinator.state.store;
    if store.threat_model(None).await?.is_none() {
        let model = crate::threat::parse_model("examples/threat-model.yaml", OWN_MODEL)
            .map_err(|e| anyhow!("the embedded threat model is invalid: {e}"))?;
        store
            .insert_threat_model(&model.name, OWN_MODEL, "rampart dev")
            .await?;
    }
    let hb = humantime::format_duration(args.heartbeat_interval).to_string();
    let dir = agent_dir.to_string_lossy().to_string();
    let mut child = agent_command(&[
        "run",
        "--state-dir",
        &dir,
        "--heartbeat-interval",
        &hb,
        "--coordinator",
        &url,
    ])?
    .spawn()
    .context("cannot start the local agent")?;

    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "rampart".into());
    println!();
    println!("Rampart dev is running: a coordinator at {url} and one local agent.");
    println!("In another shell:");
    println!("  export RAMPART_ADDR={url}");
    println!("  export RAMPART_CA={}", data_dir.join("ca.pem").display());
    println!("  export RAMPART_TOKEN={admin_token}");
    println!("  {exe} agents ls");
    println!("  {exe} threats ls      # Rampart's own threat model, assessed from this fleet");
    if let Some((addr, console)) = &coordinator.web {
        println!(
            "Web console: https://{addr}/ (its certificate is from this coordinator's CA, {})",
            data_dir.join("ca.pem").display()
        );
        println!(
            "  log in once with: https://{addr}/login?code={}",
            console.sessions.login_code(&admin_token)
        );
    }
    println!(
        "State: {} ({}). Press Ctrl-C to stop.",
        base.display(),
        if temp.is_some() {
            "removed on exit"
        } else {
            "kept"
        }
    );
    println!();

    let exited = tokio::select! {
        _ = cancel.cancelled() => None,
        status = child.wait() => Some(status),
    };
    match exited {
        None => stop_child(&mut child).await,
        Some(status) => {
            cancel.cancel();
            let _ = coordinator.wait().await;
            return Err(anyhow!(
                "the local agent exited unexpectedly ({})",
                status.map(|s| s.to_string()).unwrap_or_default()
            ));
        }
    }
    coordinator.wait().await?;
    drop(temp);
    println!("stopped.");
    Ok(())
}
