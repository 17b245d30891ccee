//! Simulated agents for benchmarks: the agent library's own enrolment and session code, one mTLS
//! connection each, many in one process (this machine allows 20,000 open files per process).

use std::path::Path;
use std::time::{Duration, Instant};

use rampart_agent::enroll::{EnrollOptions, enroll};
use rampart_agent::session::{self, SessionConfig};
use rampart_agent::state::StateDir;
use tokio_util::sync::CancellationToken;

use crate::{Harness, eventually};

/// Simulated agents running until dropped.
pub struct SimFleet {
    pub runtime: tokio::runtime::Runtime,
    pub cancel: CancellationToken,
    /// Time to enrol them all (16 at a time).
    pub enrol_time: Duration,
    /// Time from the first session to all online.
    pub connect_time: Duration,
}

impl SimFleet {
    /// Stops every session.
    pub fn stop(self) {
        self.cancel.cancel();
        self.runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

/// Enrols `agents` simulated agents with `labels`, runs their sessions with `faults` as their
/// policy, and waits until all are online.
pub fn start(
    h: &Harness,
    agents: usize,
    labels: &[&str],
    faults: rampart_agent::faults::FaultPolicy,
) -> anyhow::Result<SimFleet> {
    let token = h.join_token(labels, agents as u32, "1h");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cancel = CancellationToken::new();
    let dir = h.dir.path().join("sim");
    let url = h.url();
    let fingerprint = h.ca_fingerprint.clone();
    let started = Instant::now();
    let enrolments = runtime.block_on(async {
        use futures::StreamExt;
        futures::stream::iter(0..agents)
            .map(|i| {
                enroll(EnrollOptions {
                    coordinator: url.clone(),
                    token: rampart_common::Secret::new(token.clone()),
                    ca_fingerprint: fingerprint.clone(),
                    state: StateDir::new(dir.join(format!("a{i}"))),
                    labels: Default::default(),
                    force: false,
                })
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
    });
    let enrolments = enrolments.into_iter().collect::<Result<Vec<_>, _>>()?;
    let enrol_time = started.elapsed();
    let started = Instant::now();
    let fixture = rampart_agent::facts::FactSource::fixture(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/hosts/weak"),
    );
    for e in enrolments {
        let config = SessionConfig {
            coordinator: url.clone(),
            heartbeat_interval: Duration::from_secs(10),
            reconnect_max: Duration::from_secs(30),
            labels: Default::default(),
            // Simulated hosts read a fixture tree: the sweep measures the coordinator, not this
            // machine's /proc a thousand times over.
            facts: fixture.clone(),
            // Simulated hosts never change their (shared) fixture tree.
            remediation: rampart_agent::remediate::Remediator {
                source: fixture.clone(),
                state_dir: h.dir.path().join("simulated-agents"),
                enabled: false,
            },
            faults: rampart_agent::faults::Faults::new(
                faults.clone(),
                &h.dir.path().join("simulated-agents"),
                Vec::new(),
            ),
            // Certificates last 30 days: a bench never reaches renewal.
            state: None,
            probes: Default::default(),
        };
        runtime.spawn(session::run(e, config, cancel.clone()));
    }
    eventually(
        Duration::from_secs(300),
        "all simulated agents online",
        || {
            let online = h.agents().iter().filter(|a| a["state"] == "online").count();
            if online == agents {
                Ok(())
            } else {
                Err(format!("{online}/{agents} online"))
            }
        },
    );
    let connect_time = started.elapsed();
    Ok(SimFleet {
        runtime,
        cancel,
        enrol_time,
        connect_time,
    })
}
