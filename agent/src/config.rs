//! The agent's config file (TOML). Command-line flags win over it. Every error is reported at
//! once, with file and line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart_common::config::{self, ConfigErrors};
use rampart_common::labels::{self, Labels};
use rampart_common::logging::LogFormat;

/// Where the agent keeps its key, certificate and journal by default.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/rampart-agent";
/// Heartbeat period: the coordinator declares the agent offline after 3 missed, i.e. 30 s.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Reconnect backoff ceiling: an outage of the coordinator costs at most this after it is back.
pub const DEFAULT_RECONNECT_MAX: Duration = Duration::from_secs(30);
/// Bounds that keep a typo from flooding the coordinator or hiding an outage.
const MIN_HEARTBEAT: Duration = Duration::from_millis(200);
const MAX_HEARTBEAT: Duration = Duration::from_secs(300);

/// What the config file may set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    /// Coordinator address, if it differs from the one enrolled with (e.g. moved behind a VIP);
    /// several, separated by commas, when coordinators share the fleet.
    pub coordinator: Option<String>,
    pub state_dir: Option<PathBuf>,
    /// Extra labels sent in every `Hello`.
    pub labels: Labels,
    pub heartbeat_interval: Option<Duration>,
    pub reconnect_max: Option<Duration>,
    pub log_format: Option<LogFormat>,
    /// Directory compliance facts are read below (default `/`); anything else is a fixture tree.
    pub fact_root: Option<PathBuf>,
    /// Whether fact collection may run host commands (`sshd -T`, `systemctl`, `rpm`) on the real
    /// root; default true.
    pub fact_commands: Option<bool>,
    /// Whether the coordinator may remediate this host (default true); false refuses every
    /// remediation, dry runs included.
    pub remediation: Option<bool>,
    /// The `[faults]` section: this host's own limits on fault injection.
    pub faults: crate::faults::FaultPolicy,
    /// The `[probes]` section: which programs command probes may run.
    pub probes: crate::probes::ProbePolicy,
    /// Where to serve this agent's own Prometheus metrics (plain HTTP); off when absent.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        config::load(path, |s| {
            let coordinator = s.string("coordinator");
            if let Some(c) = &coordinator
                && let Err(e) = rampart_common::tls::coordinator_list(c)
            {
                s.error("coordinator", e);
            }
            let state_dir = s.string("state_dir").map(PathBuf::from);
            let labels = s.string_map("labels").unwrap_or_default();
            for (k, v) in &labels {
                if let Err(e) = labels::validate(k, v) {
                    s.error("labels", e);
                }
            }
            let heartbeat_interval = s.duration("heartbeat_interval");
            if let Some(h) = heartbeat_interval
                && !(MIN_HEARTBEAT..=MAX_HEARTBEAT).contains(&h)
            {
                s.error("heartbeat_interval", "must be between 200ms and 5m");
            }
            let reconnect_max = s.duration("reconnect_max");
            if reconnect_max.is_some_and(|r| r < Duration::from_millis(100)) {
                s.error("reconnect_max", "must be at least 100ms");
            }
            let log_format = s.parsed("log_format", "text or json");
            let fact_root = s.string("fact_root").map(PathBuf::from);
            if fact_root.as_ref().is_some_and(|r| !r.is_absolute()) {
                s.error("fact_root", "must be an absolute path");
            }
            let fact_commands = s.bool("fact_commands");
            let remediation = s.bool("remediation");
            let faults = s.section("faults", read_fault_policy).unwrap_or_default();
            let probes = s.section("probes", read_probe_policy).unwrap_or_default();
            let metrics_listen =
                s.parsed("metrics_listen", "a socket address such as 127.0.0.1:9478");
            FileConfig {
                metrics_listen,
                coordinator,
                state_dir,
                labels,
                heartbeat_interval,
                reconnect_max,
                log_format,
                fact_root,
                fact_commands,
                remediation,
                faults,
                probes,
            }
        })
    }
}

/// Reads `[probes]`: `commands`, absolute paths of the programs command probes may run.
fn read_probe_policy(s: &mut config::Section<'_, '_>) -> crate::probes::ProbePolicy {
    let commands = s.string_list("commands").unwrap_or_default();
    for c in &commands {
        if !Path::new(c).is_absolute() {
            s.error(
                "commands",
                format!("{c:?} must be an absolute path (command probes run no shell and search no PATH)"),
            );
        }
    }
    crate::probes::ProbePolicy { commands }
}

/// Reads `[faults]`: every field optional, defaults from [`crate::faults::policy`].
fn read_fault_policy(s: &mut config::Section<'_, '_>) -> crate::faults::FaultPolicy {
    use crate::faults::policy::KINDS;
    let mut p = crate::faults::FaultPolicy::default();
    if let Some(e) = s.bool("enabled") {
        p.enabled = e;
    }
    if let Some(kinds) = s.string_list("allowed_kinds") {
        for k in &kinds {
            if !KINDS.contains(&k.as_str()) {
                s.error(
                    "allowed_kinds",
                    format!("unknown kind {k:?}; kinds: {}", KINDS.join(", ")),
                );
            }
        }
        p.allowed_kinds = Some(kinds);
    }
    if let Some(d) = s.duration("max_duration") {
        if d.is_zero() {
            s.error("max_duration", "must be more than 0");
        }
        p.max_duration = d;
    }
    if let Some(names) = s.string_list("protected_processes") {
        p.protected = names;
    }
    if let Some(ifaces) = s.string_list("allowed_interfaces") {
        p.allowed_interfaces = Some(ifaces);
    }
    if let Some(l) = s.duration("lease") {
        if l < Duration::from_secs(1) {
            s.error("lease", "must be at least 1s");
        }
        p.lease = l;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_in_deploy_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent.toml");
        let c = FileConfig::load(&path).unwrap();
        assert_eq!(c.heartbeat_interval, Some(DEFAULT_HEARTBEAT));
    }

    #[test]
    fn every_error_is_listed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.toml");
        std::fs::write(&p, "coordinator = \"ftp://x\"\nheartbeat_interval = \"1ms\"\nlog_format = 3\n[labels]\n\"bad key\" = \"x\"\n").unwrap();
        let errs = FileConfig::load(&p).unwrap_err();
        assert_eq!(errs.0.len(), 4, "{errs}");
        std::fs::write(
            &p,
            "[faults]\nallowed_kinds = [\"cpu\", \"teleport\"]\nlease = \"10ms\"\nspeed = 3\n",
        )
        .unwrap();
        let errs = FileConfig::load(&p).unwrap_err().to_string();
        assert!(
            errs.contains("a.toml:2:") && errs.contains("unknown kind \"teleport\""),
            "{errs}"
        );
        assert!(
            errs.contains("`faults.lease`: must be at least 1s"),
            "{errs}"
        );
        assert!(errs.contains("unknown field `faults.speed`"), "{errs}");
        std::fs::write(&p, "[probes]\ncommands = [\"check-shop\"]\n").unwrap();
        let errs = FileConfig::load(&p).unwrap_err().to_string();
        assert!(errs.contains("must be an absolute path"), "{errs}");
        std::fs::write(&p, "[probes]\ncommands = [\"/usr/local/bin/check-shop\"]\n").unwrap();
        assert_eq!(
            FileConfig::load(&p).unwrap().probes.commands,
            vec!["/usr/local/bin/check-shop".to_string()]
        );
        assert!(errs.to_string().contains("a.toml:2:"), "{errs}");
    }
}
