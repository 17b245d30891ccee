//! Host metrics for `metric` probes: CPU, memory, load and network errors, sampled only while a
//! coordinator streams them (an idle agent reads none of this).

use std::time::{Duration, Instant};

use rampart_common::time::now_ms;
use rampart_proto::v1::HostMetrics;
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// The metric names an experiment may watch, as they appear in its file.
pub const NAMES: &[&str] = &["cpu_percent", "memory_percent", "load1", "network_errors"];

/// The value of metric `name` in a sample.
pub fn value(m: &HostMetrics, name: &str) -> Option<f64> {
    match name {
        "cpu_percent" => Some(m.cpu_percent),
        "memory_percent" => Some(m.memory_percent),
        "load1" => Some(m.load1),
        "network_errors" => Some(m.network_errors as f64),
        _ => None,
    }
}

/// Reads samples; CPU use is measured between two samples, network errors from the first one.
#[derive(Debug)]
pub struct Sampler {
    system: System,
    net_errors_at_start: u64,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Self {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing().with_cpu_usage())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        Self {
            system,
            net_errors_at_start: network_errors(
                &std::fs::read_to_string("/proc/net/dev").unwrap_or_default(),
            ),
        }
    }

    pub fn sample(&mut self) -> HostMetrics {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let total = self.system.total_memory().max(1) as f64;
        let used = total - self.system.available_memory() as f64;
        let errors = network_errors(&std::fs::read_to_string("/proc/net/dev").unwrap_or_default());
        HostMetrics {
            at_unix_ms: now_ms(),
            cpu_percent: f64::from(self.system.global_cpu_usage()),
            memory_percent: 100.0 * used / total,
            load1: System::load_average().one,
            network_errors: errors.saturating_sub(self.net_errors_at_start),
        }
    }
}

/// Shortest interval between metric samples: a typo must not turn the agent into a busy loop.
const MIN_METRICS_INTERVAL: Duration = Duration::from_millis(200);
/// Longest a metric stream may run without being asked again.
const MAX_METRICS_DURATION: Duration = Duration::from_secs(6 * 3600);

/// A metric stream the coordinator asked for; it ends by itself at `until`.
pub struct Stream {
    pub sampler: Sampler,
    every: Duration,
    pub interval: tokio::time::Interval,
    pub until: Instant,
}

impl Stream {
    /// The stream a request asks for, merged with the one running (several runs may watch the
    /// same host: the faster interval and the later end win); None when the request stops it
    /// (duration 0).
    pub fn start(req: &rampart_proto::v1::StreamMetrics, running: Option<Self>) -> Option<Self> {
        if req.duration_ms == 0 {
            return None;
        }
        let mut every = Duration::from_millis(u64::from(req.interval_ms)).max(MIN_METRICS_INTERVAL);
        let mut until = Instant::now()
            + Duration::from_millis(u64::from(req.duration_ms)).min(MAX_METRICS_DURATION);
        let sampler = match running {
            Some(r) => {
                every = every.min(r.every);
                until = until.max(r.until);
                r.sampler
            }
            None => Sampler::new(),
        };
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Some(Self {
            sampler,
            every,
            interval,
            until,
        })
    }
}

/// Sum of receive/transmit errors and drops over every interface but loopback, from the text of
/// `/proc/net/dev`.
pub fn network_errors(proc_net_dev: &str) -> u64 {
    proc_net_dev
        .lines()
        .skip(2)
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| name.trim() != "lo")
        .map(|(_, fields)| {
            let f: Vec<u64> = fields
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            // rx: bytes packets errs drop …(8 fields); tx: bytes packets errs drop …
            [2usize, 3, 10, 11]
                .iter()
                .map(|&i| f.get(i).copied().unwrap_or(0))
                .sum::<u64>()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_errors_sum_errors_and_drops_except_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 1 7 7 0 0 0 0 100 1 7 7 0 0 0 0\n  eth0: 5000 50 2 3 0 0 0 0 4000 40 4 5 0 0 0 0\n";
        assert_eq!(network_errors(text), 14);
    }

    #[tokio::test]
    async fn metric_streams_merge_and_stop() {
        use rampart_proto::v1::StreamMetrics;
        let ask = |interval_ms, duration_ms| StreamMetrics {
            interval_ms,
            duration_ms,
        };
        let first = Stream::start(&ask(1000, 60_000), None).unwrap();
        let first_until = first.until;
        // A second run with a faster interval and a shorter life: faster wins, later end wins.
        let merged = Stream::start(&ask(300, 10_000), Some(first)).unwrap();
        assert_eq!(merged.every, Duration::from_millis(300));
        assert_eq!(merged.until, first_until);
        // Intervals are bounded below, lives above.
        let tiny = Stream::start(&ask(1, u32::MAX), None).unwrap();
        assert_eq!(tiny.every, MIN_METRICS_INTERVAL);
        assert!(tiny.until <= Instant::now() + MAX_METRICS_DURATION);
        assert!(Stream::start(&ask(300, 0), Some(merged)).is_none());
    }

    #[test]
    fn samples_are_in_range() {
        let mut s = Sampler::new();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let m = s.sample();
        assert!((0.0..=100.0).contains(&m.cpu_percent), "{m:?}");
        assert!(m.memory_percent > 0.0 && m.memory_percent <= 100.0, "{m:?}");
        assert_eq!(value(&m, "memory_percent"), Some(m.memory_percent));
        assert_eq!(value(&m, "disk_percent"), None);
    }
}
