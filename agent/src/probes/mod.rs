//! Steady-state probes run from this host (HTTP, TCP, an allow-listed command) and the host
//! metrics streamed while an experiment runs. The coordinator uses the same HTTP and TCP code for
//! the probes it runs itself.
//!
//! Owns: running one probe once and reading host metrics. Must not: run a program the agent's
//! config does not list, keep anything running after the answer (probes are one-shot; the metric
//! stream has an end time the agent enforces).

pub mod http;
pub mod metrics;

use std::process::Stdio;
use std::time::{Duration, Instant};

use rampart_proto::v1::{CommandProbe, ProbeResult, RunProbe, TcpProbe, run_probe};

/// Used when a probe names no timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// No probe may take longer: a probe is a quick look, and a slow one delays the halt decision.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// A command probe's output kept for the detail line.
const OUTPUT_KEPT: usize = 512;

/// What this host lets a coordinator do with probes: the `[probes]` section of its config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbePolicy {
    /// Programs a command probe may run, by absolute path (argv[0] must equal one exactly).
    /// Empty by default: a coordinator must not be able to run arbitrary commands as root.
    pub commands: Vec<String>,
}

/// A probe's timeout: the one asked for, bounded.
pub fn timeout(ms: u32) -> Duration {
    match ms {
        0 => DEFAULT_TIMEOUT,
        ms => Duration::from_millis(u64::from(ms)).min(MAX_TIMEOUT),
    }
}

fn result(ok: bool, detail: impl Into<String>, started: Instant) -> ProbeResult {
    ProbeResult {
        ok,
        detail: detail.into(),
        latency_micros: started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32,
    }
}

/// Runs one probe and says whether the steady state held.
pub async fn run(probe: RunProbe, policy: &ProbePolicy) -> ProbeResult {
    match probe.kind {
        Some(run_probe::Kind::Http(h)) => http::probe(&h).await,
        Some(run_probe::Kind::Tcp(t)) => tcp(&t).await,
        Some(run_probe::Kind::Command(c)) => command(&c, policy).await,
        None => result(
            false,
            "unknown probe kind: this agent may be older than the coordinator",
            Instant::now(),
        ),
    }
}

/// Opens a TCP connection and closes it.
pub async fn tcp(p: &TcpProbe) -> ProbeResult {
    let started = Instant::now();
    match tokio::time::timeout(
        timeout(p.timeout_ms),
        tokio::net::TcpStream::connect(&p.address),
    )
    .await
    {
        Ok(Ok(_)) => result(
            true,
            format!("connected in {} ms", started.elapsed().as_millis()),
            started,
        ),
        Ok(Err(e)) => result(false, format!("{}: {e}", p.address), started),
        Err(_) => result(
            false,
            format!(
                "{}: no connection within {:?}",
                p.address,
                timeout(p.timeout_ms)
            ),
            started,
        ),
    }
}

/// Runs an allow-listed program without a shell; its exit code must match.
pub async fn command(p: &CommandProbe, policy: &ProbePolicy) -> ProbeResult {
    let started = Instant::now();
    let Some(program) = p.argv.first() else {
        return result(false, "a command probe needs an argv", started);
    };
    if !policy.commands.iter().any(|c| c == program) {
        return result(
            false,
            format!("refused: {program:?} is not in this agent's [probes] commands allow-list"),
            started,
        );
    }
    let child = tokio::process::Command::new(program)
        .args(&p.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return result(false, format!("could not start {program}: {e}"), started),
    };
    match tokio::time::timeout(timeout(p.timeout_ms), child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let code = out.status.code().unwrap_or(-1);
            let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if text.is_empty() {
                text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            }
            let mut cut = text.len().min(OUTPUT_KEPT);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            result(
                code == p.exit_code,
                format!("exit {code} (expected {}): {text}", p.exit_code),
                started,
            )
        }
        Ok(Err(e)) => result(false, format!("{program}: {e}"), started),
        // Dropping the child kills it (kill_on_drop).
        Err(_) => result(
            false,
            format!(
                "{program} did not finish within {:?}",
                timeout(p.timeout_ms)
            ),
            started,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_run_only_when_allow_listed() {
        let probe = CommandProbe {
            argv: vec!["/bin/true".into()],
            exit_code: 0,
            timeout_ms: 0,
        };
        let refused = command(&probe, &ProbePolicy::default()).await;
        assert!(!refused.ok);
        assert!(refused.detail.contains("allow-list"), "{}", refused.detail);
        let allowed = ProbePolicy {
            commands: vec!["/bin/true".into(), "/bin/sh".into()],
        };
        assert!(command(&probe, &allowed).await.ok);
        // Exact match only: a path that resolves to the same program is still refused.
        let sneaky = CommandProbe {
            argv: vec!["/bin/../bin/true".into()],
            ..probe.clone()
        };
        assert!(!command(&sneaky, &allowed).await.ok);
        let failing = CommandProbe {
            argv: vec!["/bin/sh".into(), "-c".into(), "echo broken; exit 3".into()],
            exit_code: 0,
            timeout_ms: 0,
        };
        let r = command(&failing, &allowed).await;
        assert!(!r.ok);
        assert!(
            r.detail.contains("exit 3") && r.detail.contains("broken"),
            "{}",
            r.detail
        );
        let slow = CommandProbe {
            argv: vec!["/bin/sh".into(), "-c".into(), "sleep 5".into()],
            exit_code: 0,
            timeout_ms: 100,
        };
        let r = command(&slow, &allowed).await;
        assert!(!r.ok && r.detail.contains("did not finish"), "{}", r.detail);
    }

    #[tokio::test]
    async fn tcp_connects_or_says_why_not() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let ok = tcp(&TcpProbe {
            address: addr.clone(),
            timeout_ms: 1000,
        })
        .await;
        assert!(ok.ok, "{}", ok.detail);
        drop(listener);
        let refused = tcp(&TcpProbe {
            address: addr,
            timeout_ms: 1000,
        })
        .await;
        assert!(!refused.ok);
        assert!(refused.detail.contains("refused"), "{}", refused.detail);
    }
}
