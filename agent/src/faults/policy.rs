//! The agent's own fault policy, from its config file: what the coordinator may ask for on this
//! host. It is checked before anything is journaled or changed.

use std::time::Duration;

use rampart_proto::v1::{FaultSpec, fault_spec};

/// Longest fault by default: long enough for a game day, short enough to be noticed.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(3600);
/// How long the coordinator may be unreachable before the agent reverts everything.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// Processes never targeted unless the config lists others instead.
pub const DEFAULT_PROTECTED: [&str; 4] = ["sshd", "systemd", "rampart-agent", "rampart"];

pub const KINDS: [&str; 10] = [
    "cpu",
    "memory",
    "network-partition",
    "network-loss",
    "network-bandwidth",
    "network-latency",
    "dns",
    "process-kill",
    "process-pause",
    "disk-fill",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultPolicy {
    /// False: every fault is refused.
    pub enabled: bool,
    /// Kinds allowed; `None`: all.
    pub allowed_kinds: Option<Vec<String>>,
    pub max_duration: Duration,
    /// Process names (comm) never signalled.
    pub protected: Vec<String>,
    /// Interfaces network faults may touch; `None`: any.
    pub allowed_interfaces: Option<Vec<String>>,
    pub lease: Duration,
}

impl Default for FaultPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_kinds: None,
            max_duration: DEFAULT_MAX_DURATION,
            protected: DEFAULT_PROTECTED.iter().map(|s| s.to_string()).collect(),
            allowed_interfaces: None,
            lease: DEFAULT_LEASE,
        }
    }
}

/// The kind's name as operators write it.
pub fn kind_name(spec: &FaultSpec) -> &'static str {
    use fault_spec::Kind;
    match spec.kind {
        Some(Kind::Cpu(_)) => "cpu",
        Some(Kind::Memory(_)) => "memory",
        Some(Kind::NetworkPartition(_)) => "network-partition",
        Some(Kind::NetworkLoss(_)) => "network-loss",
        Some(Kind::NetworkBandwidth(_)) => "network-bandwidth",
        Some(Kind::NetworkLatency(_)) => "network-latency",
        Some(Kind::Dns(_)) => "dns",
        Some(Kind::ProcessKill(_)) => "process-kill",
        Some(Kind::ProcessPause(_)) => "process-pause",
        Some(Kind::DiskFill(_)) => "disk-fill",
        None => "unknown",
    }
}

impl FaultPolicy {
    /// Whether this fault may run here; `Err` says why not.
    pub fn check(&self, spec: &FaultSpec, duration: Duration) -> Result<(), String> {
        use fault_spec::Kind;
        let kind = kind_name(spec);
        if !self.enabled {
            return Err("faults are disabled by this agent's config".into());
        }
        if spec.kind.is_none() {
            return Err("unknown fault kind: this agent may be older than the coordinator".into());
        }
        if let Some(allowed) = &self.allowed_kinds
            && !allowed.iter().any(|k| k == kind)
        {
            return Err(format!(
                "fault kind {kind} is not allowed by this agent's config (allowed: {})",
                allowed.join(", ")
            ));
        }
        if duration.is_zero() {
            return Err("a fault needs a duration".into());
        }
        if duration > self.max_duration {
            return Err(format!(
                "duration {} is longer than this agent allows ({})",
                humantime::format_duration(duration),
                humantime::format_duration(self.max_duration)
            ));
        }
        let interface = match &spec.kind {
            Some(Kind::NetworkBandwidth(b)) => Some(b.interface.as_str()),
            Some(Kind::NetworkLatency(l)) if !l.interface.is_empty() => Some(l.interface.as_str()),
            _ => None,
        };
        if let (Some(i), Some(allowed)) = (interface, &self.allowed_interfaces)
            && !allowed.iter().any(|a| a == i)
        {
            return Err(format!(
                "interface {i} is not allowed by this agent's config (allowed: {})",
                allowed.join(", ")
            ));
        }
        Ok(())
    }

    pub fn is_protected(&self, comm: &str) -> bool {
        self.protected.iter().any(|p| p == comm)
    }
}
