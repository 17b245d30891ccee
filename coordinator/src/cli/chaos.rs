//! `rampart fault …` and `rampart stop`: inject faults, list them, revert them, stop everything.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use rampart_common::time::format_ms;
use rampart_proto::v1::{
    CpuFault, Direction, DiskFill, DnsFault, EmergencyStopRequest, FaultSpec, FaultsResponse,
    InjectFaultRequest, ListFaultsRequest, MemoryFault, NetworkBandwidth, NetworkLatency,
    NetworkLoss, NetworkMatch, NetworkPartition, ProcessKill, ProcessPause, ProcessTarget,
    RevertFaultsRequest, fault_spec, process_target,
};

use super::output::print_table;
use super::units::{parse_bytes, parse_rate, signal_number};
use super::{Client, Output, rpc, usage};

#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// Inject a fault on every selected online agent (each gets its own fault id, printed on
    /// stdout). Each agent checks it against its own policy first.
    Inject(Box<InjectArgs>),
    /// Faults as the agents last reported them.
    Ls {
        /// Only active faults.
        #[arg(long)]
        active: bool,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
    /// Revert one fault now, or --all faults on the selected agents.
    Revert {
        /// Fault id (from `fault inject` or `fault ls`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        fault_id: Option<String>,
        #[arg(long)]
        all: bool,
        /// With --all: only agents with these labels.
        #[arg(long, default_value = "", requires = "all")]
        selector: String,
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: Output,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Kind {
    Cpu,
    Memory,
    NetworkPartition,
    NetworkLoss,
    NetworkBandwidth,
    NetworkLatency,
    Dns,
    ProcessKill,
    ProcessPause,
    DiskFill,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DirectionArg {
    In,
    Out,
    Both,
}

#[derive(Debug, Args)]
pub struct InjectArgs {
    /// Only agents with all these labels: k=v,k2=v2.
    #[arg(long, default_value = "")]
    selector: String,
    #[arg(long, value_enum)]
    kind: Kind,
    /// How long the fault lasts; the agent reverts it by itself when it ends.
    #[arg(long, value_parser = rampart_common::time::parse_duration)]
    duration: Duration,
    /// cpu: worker threads.
    #[arg(long, default_value_t = 1, help_heading = "cpu")]
    workers: u32,
    /// cpu: load per worker, 1–100 %.
    #[arg(long, default_value_t = 100, help_heading = "cpu")]
    load: u32,
    /// cpu: pin workers to these CPUs, e.g. 0,1.
    #[arg(long, value_delimiter = ',', help_heading = "cpu")]
    cpus: Vec<u32>,
    /// memory / disk-fill: size, e.g. 512MiB, 2GB, 1048576.
    #[arg(long, value_parser = parse_bytes, help_heading = "memory, disk-fill")]
    bytes: Option<u64>,
    /// memory: reach the size gradually over this time.
    #[arg(long, value_parser = rampart_common::time::parse_duration, help_heading = "memory")]
    ramp: Option<Duration>,
    /// network: remote address or CIDR; repeatable.
    #[arg(long = "cidr", help_heading = "network")]
    cidrs: Vec<String>,
    /// network: TCP/UDP port (either end); repeatable. Latency without netem: destination port.
    #[arg(long = "port", help_heading = "network")]
    ports: Vec<u32>,
    /// network: direction of the traffic [default: out for network-loss, as tc netem drops
    /// egress packets, so a ping round trip loses about --percent; both for the others]. With
    /// `both`, a loss of N % applies per direction: a round trip then fails 1-(1-N/100)² of the
    /// time (51 % for 30).
    #[arg(long, value_enum, help_heading = "network")]
    direction: Option<DirectionArg>,
    /// network-loss: share of packets dropped, 1–100; disk-fill: fill the filesystem to this %.
    #[arg(long, help_heading = "network")]
    percent: Option<u32>,
    /// network-bandwidth / network-latency: interface.
    #[arg(long, help_heading = "network")]
    interface: Option<String>,
    /// network-bandwidth: rate, e.g. 1mbit, 500kbit, 8000 (bit/s).
    #[arg(long, value_parser = parse_rate, help_heading = "network")]
    rate: Option<u64>,
    /// network-bandwidth: replace a root qdisc that cannot be restored exactly.
    #[arg(long, help_heading = "network")]
    force: bool,
    /// network-latency: added delay.
    #[arg(long, value_parser = rampart_common::time::parse_duration, help_heading = "network")]
    delay: Option<Duration>,
    /// network-latency: jitter (± this much).
    #[arg(long, value_parser = rampart_common::time::parse_duration, help_heading = "network")]
    jitter: Option<Duration>,
    /// process: target by pid.
    #[arg(long, help_heading = "process")]
    pid: Option<u32>,
    /// process: target by exact name.
    #[arg(long, help_heading = "process")]
    name: Option<String>,
    /// process: target by a regular expression over the command line.
    #[arg(long, help_heading = "process")]
    cmdline: Option<String>,
    /// process: target a systemd unit's processes.
    #[arg(long, help_heading = "process")]
    unit: Option<String>,
    /// process-kill: signal name or number (default KILL).
    #[arg(long, default_value = "KILL", help_heading = "process")]
    signal: String,
    /// process: how many matches, oldest first (0: all).
    #[arg(long, default_value_t = 0, help_heading = "process")]
    count: u32,
    /// process-kill: kill matches again this often until the fault ends.
    #[arg(long, value_parser = rampart_common::time::parse_duration, help_heading = "process")]
    repeat: Option<Duration>,
    /// disk-fill: a folder on the filesystem to fill.
    #[arg(long, help_heading = "disk-fill")]
    path: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t)]
    output: Output,
}

/// `InjectArgs` alone, so that an experiment file's `fault:` mapping (whose fields are exactly
/// the `fault inject` flags) is read by the same parser and checks as the command line.
#[derive(Debug, clap::Parser)]
#[command(no_binary_name = true, disable_help_flag = true)]
struct FaultFlags {
    #[command(flatten)]
    inject: InjectArgs,
}

/// Flags of `fault inject` that an experiment sets elsewhere (targets by its scope, duration per
/// step) or that mean nothing there.
const NOT_FAULT_FIELDS: &[&str] = &["selector", "duration", "output"];

/// The field names an experiment's `fault:` mapping accepts.
pub fn fault_fields() -> Vec<String> {
    use clap::CommandFactory;
    FaultFlags::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .filter(|l| !NOT_FAULT_FIELDS.contains(&l.as_str()))
        .collect()
}

/// Reads a fault from `--flag value` pairs (an experiment step), with the same defaults and
/// checks as `rampart fault inject`. Returns the spec and its kind name.
pub fn fault_from_flags(
    flags: &[(String, Vec<String>)],
    duration: Duration,
) -> Result<(FaultSpec, String), String> {
    use clap::Parser;
    let mut argv = vec![
        "--duration".to_string(),
        format!("{}ms", duration.as_millis().max(1)),
    ];
    for (name, values) in flags {
        for v in values {
            argv.push(format!("--{name}"));
            argv.push(v.clone());
        }
        if values.is_empty() {
            argv.push(format!("--{name}"));
        }
    }
    let parsed = FaultFlags::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        first
            .trim_start_matches("error: ")
            .replace("'--", "`")
            .replace("' ", "` ")
            .replace("'", "`")
    })?;
    let spec = parsed
        .inject
        .spec()
        .map_err(|e| e.to_string().replace("--", ""))?;
    Ok((spec, parsed.inject.kind_name()))
}

fn millis(d: Duration) -> u32 {
    d.as_millis().min(u128::from(u32::MAX)) as u32
}

impl InjectArgs {
    fn target(&self) -> Result<ProcessTarget, anyhow::Error> {
        use process_target::By;
        let by = match (&self.pid, &self.name, &self.cmdline, &self.unit) {
            (Some(p), None, None, None) => By::Pid(*p),
            (None, Some(n), None, None) => By::Name(n.clone()),
            (None, None, Some(r), None) => By::CmdlineRegex(r.clone()),
            (None, None, None, Some(u)) => By::Unit(u.clone()),
            _ => {
                return Err(usage(
                    "name exactly one target: --pid, --name, --cmdline or --unit",
                ));
            }
        };
        Ok(ProcessTarget { by: Some(by) })
    }

    fn network_match(&self) -> NetworkMatch {
        NetworkMatch {
            cidrs: self.cidrs.clone(),
            ports: self.ports.clone(),
            direction: match self.direction.unwrap_or(match self.kind {
                Kind::NetworkLoss => DirectionArg::Out,
                _ => DirectionArg::Both,
            }) {
                DirectionArg::In => Direction::In,
                DirectionArg::Out => Direction::Out,
                DirectionArg::Both => Direction::Both,
            } as i32,
        }
    }

    /// The spec, or a usage error naming what is missing.
    pub fn spec(&self) -> Result<FaultSpec, anyhow::Error> {
        use fault_spec::Kind as K;
        let need = |what: &str| usage(format!("--kind {} needs {what}", self.kind_name()));
        let range = |flag: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(usage(format!("--{flag} must be {lo} to {hi}, not {v}")))
            }
        };
        match self.kind {
            Kind::Cpu => {
                range("load", self.load, 1, 100)?;
                range("workers", self.workers, 1, 1024)?;
            }
            Kind::NetworkLoss => range("percent", self.percent.unwrap_or(1), 1, 100)?,
            Kind::DiskFill => {
                if let Some(p) = self.percent {
                    range("percent", p, 1, 99)?;
                }
            }
            _ => {}
        }
        let kind = match self.kind {
            Kind::Cpu => K::Cpu(CpuFault {
                workers: self.workers,
                load_percent: self.load,
                cpus: self.cpus.clone(),
            }),
            Kind::Memory => K::Memory(MemoryFault {
                bytes: self.bytes.ok_or_else(|| need("--bytes"))?,
                ramp_ms: self.ramp.map(millis).unwrap_or(0),
            }),
            Kind::NetworkPartition => K::NetworkPartition(NetworkPartition {
                r#match: Some(self.network_match()),
            }),
            Kind::NetworkLoss => K::NetworkLoss(NetworkLoss {
                r#match: Some(self.network_match()),
                percent: self.percent.ok_or_else(|| need("--percent"))?,
            }),
            Kind::NetworkBandwidth => K::NetworkBandwidth(NetworkBandwidth {
                interface: self.interface.clone().ok_or_else(|| need("--interface"))?,
                rate_bits_per_sec: self.rate.ok_or_else(|| need("--rate"))?,
                force: self.force,
            }),
            Kind::NetworkLatency => K::NetworkLatency(NetworkLatency {
                interface: self.interface.clone().unwrap_or_default(),
                delay_ms: self.delay.map(millis).ok_or_else(|| need("--delay"))?,
                jitter_ms: self.jitter.map(millis).unwrap_or(0),
                ports: self.ports.clone(),
            }),
            Kind::Dns => K::Dns(DnsFault {}),
            Kind::ProcessKill => K::ProcessKill(ProcessKill {
                target: Some(self.target()?),
                signal: signal_number(&self.signal).map_err(usage)?,
                count: self.count,
                repeat_interval_ms: self.repeat.map(millis).unwrap_or(0),
            }),
            Kind::ProcessPause => K::ProcessPause(ProcessPause {
                target: Some(self.target()?),
                count: self.count,
            }),
            Kind::DiskFill => K::DiskFill(DiskFill {
                path: self.path.clone().ok_or_else(|| need("--path"))?,
                percent: self.percent.unwrap_or(0),
                bytes: self.bytes.unwrap_or(0),
            }),
        };
        Ok(FaultSpec { kind: Some(kind) })
    }

    fn kind_name(&self) -> String {
        self.kind
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }

    pub fn check(&self) -> anyhow::Result<()> {
        rampart_common::labels::Selector::parse(&self.selector).map_err(usage)?;
        if self.duration.is_zero() {
            return Err(usage("--duration must be more than 0"));
        }
        self.spec().map(drop)
    }
}

fn print_faults(r: &FaultsResponse, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&r.agents)?),
        Output::Table => {
            let mut rows = Vec::new();
            for a in &r.agents {
                if !a.error.is_empty() {
                    rows.push(vec![
                        a.hostname.clone(),
                        a.agent_id.clone(),
                        "-".into(),
                        "-".into(),
                        "ERROR".into(),
                        "-".into(),
                        "-".into(),
                        a.error.clone(),
                    ]);
                }
                for f in &a.faults {
                    let ends = if f.state == "active" {
                        format_ms(f.ends_unix_ms)
                    } else if f.reverted_unix_ms > 0 {
                        format!("{} ({})", format_ms(f.reverted_unix_ms), f.reverted_by)
                    } else {
                        "-".into()
                    };
                    rows.push(vec![
                        a.hostname.clone(),
                        a.agent_id.clone(),
                        f.fault_id.clone(),
                        f.kind.clone(),
                        f.state.clone(),
                        if f.started_unix_ms > 0 {
                            format_ms(f.started_unix_ms)
                        } else {
                            "-".into()
                        },
                        ends,
                        f.detail.clone(),
                    ]);
                }
            }
            print_table(
                &[
                    "HOST",
                    "AGENT",
                    "FAULT",
                    "KIND",
                    "STATE",
                    "STARTED",
                    "ENDS/ENDED",
                    "DETAIL",
                ],
                &rows,
            );
        }
    }
    Ok(())
}

pub async fn fault(client: Client, cmd: FaultCommand) -> anyhow::Result<i32> {
    let chaos = client.chaos();
    match cmd {
        FaultCommand::Inject(args) => {
            let r = chaos
                .clone()
                .inject_fault(InjectFaultRequest {
                    selector: args.selector.clone(),
                    spec: Some(args.spec()?),
                    duration_ms: millis(args.duration),
                })
                .await
                .map_err(rpc)?
                .into_inner();
            let mut failed = 0;
            for a in &r.agents {
                let ok = a.error.is_empty() && a.faults.iter().all(|f| f.state == "active");
                failed += usize::from(!ok);
            }
            match args.output {
                Output::Json => print_faults(&r, Output::Json)?,
                Output::Table => {
                    for a in &r.agents {
                        for f in a.faults.iter().filter(|f| f.state == "active") {
                            println!("{}", f.fault_id);
                        }
                        for f in a.faults.iter().filter(|f| f.state != "active") {
                            eprintln!(
                                "{} ({}): {} {}: {}",
                                a.hostname, a.agent_id, f.fault_id, f.state, f.detail
                            );
                        }
                        if !a.error.is_empty() {
                            eprintln!("{} ({}): {}", a.hostname, a.agent_id, a.error);
                        }
                        for f in a.faults.iter().filter(|f| f.state == "active") {
                            eprintln!(
                                "{} ({}): {} active until {}: {}",
                                a.hostname,
                                a.agent_id,
                                f.fault_id,
                                format_ms(f.ends_unix_ms),
                                f.detail
                            );
                        }
                    }
                }
            }
            if failed > 0 {
                eprintln!(
                    "error: {failed} of {} agent(s) did not apply the fault",
                    r.agents.len()
                );
                return Ok(1);
            }
            Ok(0)
        }
        FaultCommand::Ls { active, output } => {
            let r = chaos
                .clone()
                .list_faults(ListFaultsRequest { active })
                .await
                .map_err(rpc)?
                .into_inner();
            print_faults(&r, output)?;
            Ok(0)
        }
        FaultCommand::Revert {
            fault_id,
            all,
            selector,
            output,
        } => {
            let r = chaos
                .clone()
                .revert_faults(RevertFaultsRequest {
                    fault_id: fault_id.unwrap_or_default(),
                    all,
                    selector,
                })
                .await
                .map_err(rpc)?
                .into_inner();
            print_faults(&r, output)?;
            Ok(exit_for(&r))
        }
    }
}

/// 0 when every agent answered and every fault it named is reverted.
fn exit_for(r: &FaultsResponse) -> i32 {
    let clean = r
        .agents
        .iter()
        .all(|a| a.error.is_empty() && a.faults.iter().all(|f| f.state == "reverted"));
    if clean { 0 } else { 1 }
}

/// `rampart stop`: the emergency stop.
pub async fn stop(client: Client, output: Output) -> anyhow::Result<i32> {
    let r = client
        .chaos()
        .emergency_stop(EmergencyStopRequest {})
        .await
        .map_err(rpc)?
        .into_inner();
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&r.agents)?),
        Output::Table => {
            let rows: Vec<Vec<String>> = r
                .agents
                .iter()
                .map(|a| {
                    let reverted = a.faults.iter().filter(|f| f.state == "reverted").count();
                    let failed: Vec<String> = a
                        .faults
                        .iter()
                        .filter(|f| f.state != "reverted")
                        .map(|f| format!("{} {}: {}", f.fault_id, f.state, f.detail))
                        .collect();
                    vec![
                        a.hostname.clone(),
                        a.agent_id.clone(),
                        if a.error.is_empty() {
                            "confirmed".into()
                        } else {
                            "NOT CONFIRMED".into()
                        },
                        reverted.to_string(),
                        if a.error.is_empty() {
                            failed.join("; ")
                        } else {
                            a.error.clone()
                        },
                    ]
                })
                .collect();
            print_table(&["HOST", "AGENT", "STOP", "REVERTED", "PROBLEMS"], &rows);
        }
    }
    Ok(exit_for(&r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_fault_values_are_refused() {
        // Out-of-range values are refused before anything is sent (and in experiment files).
        let flags = |pairs: &[(&str, &str)]| -> Vec<(String, Vec<String>)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
                .collect()
        };
        let err = fault_from_flags(
            &flags(&[("kind", "cpu"), ("load", "500")]),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.contains("load must be 1 to 100, not 500"), "{err}");
        let err = fault_from_flags(
            &flags(&[("kind", "network-loss"), ("percent", "0")]),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(err.contains("percent must be 1 to 100"), "{err}");
        assert!(
            fault_from_flags(
                &flags(&[("kind", "cpu"), ("load", "100")]),
                Duration::from_secs(1)
            )
            .is_ok()
        );
    }
}
