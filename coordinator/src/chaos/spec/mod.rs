//! Experiment and game-day files (YAML): parsed with located nodes (marked-yaml, on the
//! maintained yaml-rust2), then read field by field so that every error is reported at once as
//! `file:line:col: message`. Nothing runs from a file with an error.
//!
//! `crate::yaml` holds the located-node helpers, `experiment.rs` reads experiments, `gameday.rs`
//! game-day plans; this file holds what they produce.

mod experiment;
mod gameday;
#[cfg(test)]
mod tests;

pub use experiment::experiment;
pub use gameday::gameday;

pub use crate::yaml::{SpecError, SpecErrors};

use std::time::Duration;

use rampart_proto::v1::{CommandProbe, FaultSpec, HttpProbe, TcpProbe};

pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(10 * 60);
/// Longest an experiment may run: faults are meant to be short.
pub const LONGEST_MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// How often a probe runs unless it says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Probes may not run more often than this (each is a request to a service, or a command to
/// every agent it runs from).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Files are small; a huge one is a mistake (or an attack on the parser).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Steps and probes per experiment, experiments per game day.
pub const MAX_ITEMS: usize = 100;
const LIMITS: crate::yaml::Limits = crate::yaml::Limits {
    max_bytes: MAX_FILE_BYTES,
    max_items: MAX_ITEMS,
};

/// Where a probe runs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Coordinator,
    /// The online agents a selector matches.
    Agents(String),
    /// Each of the run's targets.
    Targets,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Http(HttpProbe),
    Tcp(TcpProbe),
    /// A host metric of each target, streamed by its agent while the run is active.
    Metric {
        name: String,
        below: Option<f64>,
        above: Option<f64>,
    },
    /// A PromQL instant query; its single value must stay within the bounds.
    Prometheus {
        url: String,
        query: String,
        below: Option<f64>,
        above: Option<f64>,
    },
    Command(CommandProbe),
}

impl Check {
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Http(_) => "http",
            Check::Tcp(_) => "tcp",
            Check::Metric { .. } => "metric",
            Check::Prometheus { .. } => "prometheus",
            Check::Command(_) => "command",
        }
    }
}

/// One part of the steady-state hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub name: String,
    pub check: Check,
    pub from: Source,
    pub interval: Duration,
    /// Consecutive misses that make the hypothesis violated (1: the first miss).
    pub tolerance: u32,
}

/// One fault of the method.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub spec: FaultSpec,
    pub kind: String,
    pub at: Duration,
    pub duration: Duration,
    /// The fault's fields as written, for the plan.
    pub fields: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    pub selector: String,
    pub max_targets: Option<u32>,
    pub max_percent: Option<u32>,
    pub hypothesis: Vec<Probe>,
    pub method: Vec<Step>,
    pub max_duration: Duration,
}

impl Experiment {
    /// One line per step, for previews and reports.
    pub fn plan(&self) -> Vec<String> {
        self.method
            .iter()
            .map(|s| {
                format!(
                    "at {} for {}: {} {}",
                    humantime::format_duration(s.at),
                    humantime::format_duration(s.duration),
                    s.kind,
                    s.fields
                )
            })
            .collect()
    }

    /// When the last step ends.
    pub fn method_end(&self) -> Duration {
        self.method
            .iter()
            .map(|s| s.at + s.duration)
            .max()
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    /// Waits for `rampart gameday approve` before going on.
    pub approval: bool,
    pub parallel: bool,
    pub continue_on_failure: bool,
    /// Paths as written in the plan, and the experiments they hold.
    pub experiments: Vec<(String, Experiment)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GameDay {
    pub name: String,
    pub description: String,
    pub stages: Vec<Stage>,
    /// The text of each experiment file the plan names, by its path in the plan.
    pub files: std::collections::BTreeMap<String, String>,
}
