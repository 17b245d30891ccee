//! The agent's own small set of Prometheus metrics, served only when its config sets
//! `metrics_listen` (off by default): whether its session is up, sessions opened, commands by
//! kind and outcome with their duration, faults active by kind, and the process's figures.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rampart_common::metrics::{Labels, gauge, labels, process, to_prometheus_text};

/// Counters fed by the session and the command executor.
pub struct Events {
    pub connected: Gauge,
    pub sessions_opened: Counter,
    commands: Family<Labels, Counter>,
    command_seconds: Family<Labels, Histogram>,
    registry: Registry,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("rampart_agent");
        let connected = Gauge::default();
        let sessions_opened = Counter::default();
        let commands: Family<Labels, Counter> = Family::default();
        let command_seconds: Family<Labels, Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
        registry.register(
            "connected",
            "1 while the session with the coordinator is open",
            connected.clone(),
        );
        registry.register(
            "sessions_opened",
            "Sessions opened with the coordinator",
            sessions_opened.clone(),
        );
        registry.register(
            "commands",
            "Commands executed, by kind and outcome (ok, error)",
            commands.clone(),
        );
        registry.register(
            "command_duration_seconds",
            "Time to execute a command, by kind",
            command_seconds.clone(),
        );
        Events {
            connected,
            sessions_opened,
            commands,
            command_seconds,
            registry,
        }
    }

    pub fn command(&self, kind: &str, ok: bool, took: Duration) {
        let outcome = if ok { "ok" } else { "error" };
        self.commands
            .get_or_create(&labels(&[("kind", kind), ("outcome", outcome)]))
            .inc();
        self.command_seconds
            .get_or_create(&labels(&[("kind", kind)]))
            .observe(took.as_secs_f64());
    }
}

/// The process-wide agent metrics.
pub fn global() -> &'static Events {
    static EVENTS: OnceLock<Events> = OnceLock::new();
    EVENTS.get_or_init(Events::new)
}

/// One scrape: active faults by kind, the process, then the event metrics.
pub fn render(faults: &crate::faults::Faults) -> Result<String, String> {
    let mut out = String::new();
    let mut by_kind: std::collections::BTreeMap<String, f64> = Default::default();
    for f in faults.list().into_iter().filter(|f| f.state == "active") {
        *by_kind.entry(f.kind).or_default() += 1.0;
    }
    let rows: Vec<(Labels, f64)> = by_kind
        .into_iter()
        .map(|(k, n)| (labels(&[("kind", &k)]), n))
        .collect();
    gauge(
        &mut out,
        "rampart_agent_faults_active",
        "Faults active on this host now, by kind",
        &rows,
    );
    process(&mut out);
    let mut events = String::new();
    encode(&mut events, &global().registry).map_err(|e| e.to_string())?;
    out.push_str(&to_prometheus_text(&events));
    Ok(out)
}
