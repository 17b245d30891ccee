//! Guards `Enroll`, the one call that needs no credential but a join token: rate limits per
//! source address and overall (token buckets), and refused attempts summarised in the audit trail
//! (the first refusal per source and reason is written at once; repeats within a window are
//! counted and written as one summary entry when the window ends), so guessing tokens neither
//! floods the trail nor goes unrecorded.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Enrolments one source address may attempt per minute (burst and sustained). A rollout behind
/// one NAT address enrols about this many hosts a minute; raise it in the config for more.
pub const DEFAULT_PER_SOURCE_PER_MINUTE: u32 = 60;
/// Enrolments the coordinator accepts per minute from everyone together: a 1,000-host rollout
/// takes well under a minute, while a flood of attempts cannot keep the CA busy.
pub const DEFAULT_TOTAL_PER_MINUTE: u32 = 3_000;
/// Repeated refusals of one source for one reason are folded into one entry per this window.
pub const SUMMARY_WINDOW: Duration = Duration::from_secs(60);
/// Source buckets kept at most; full (idle) ones are dropped first.
const MAX_SOURCES: usize = 10_000;

/// Limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollLimits {
    pub per_source_per_minute: u32,
    pub total_per_minute: u32,
}

impl Default for EnrollLimits {
    fn default() -> Self {
        Self {
            per_source_per_minute: DEFAULT_PER_SOURCE_PER_MINUTE,
            total_per_minute: DEFAULT_TOTAL_PER_MINUTE,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(per_minute: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(per_minute),
            last: now,
        }
    }

    /// Refills for the time passed, then takes one token if there is one.
    fn take(&mut self, per_minute: u32, now: Instant) -> bool {
        let cap = f64::from(per_minute);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * cap / 60.0).min(cap);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    Source,
    Total,
}

#[derive(Debug, Clone)]
struct Window {
    started: Instant,
    suppressed: u64,
}

/// A refusal summary ready to be written: `suppressed` more refusals of `source` for `reason`
/// after the one already written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub source: String,
    pub reason: String,
    pub suppressed: u64,
}

#[derive(Debug)]
pub struct EnrollGuard {
    limits: EnrollLimits,
    sources: Mutex<HashMap<IpAddr, Bucket>>,
    total: Mutex<Bucket>,
    refusals: Mutex<HashMap<(String, String), Window>>,
}

impl EnrollGuard {
    pub fn new(limits: EnrollLimits) -> Self {
        Self {
            limits,
            sources: Mutex::new(HashMap::new()),
            total: Mutex::new(Bucket::full(limits.total_per_minute, Instant::now())),
            refusals: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one attempt from the source's bucket and the overall one.
    pub fn admit(&self, source: Option<IpAddr>, now: Instant) -> Result<(), Limited> {
        if let Some(ip) = source {
            let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
            if sources.len() >= MAX_SOURCES && !sources.contains_key(&ip) {
                let per = self.limits.per_source_per_minute;
                sources.retain(|_, b| {
                    let mut probe = *b;
                    probe.take(per, now);
                    probe.tokens + 1.0 < f64::from(per)
                });
            }
            let bucket = sources
                .entry(ip)
                .or_insert_with(|| Bucket::full(self.limits.per_source_per_minute, now));
            if !bucket.take(self.limits.per_source_per_minute, now) {
                return Err(Limited::Source);
            }
        }
        let mut total = self.total.lock().unwrap_or_else(|p| p.into_inner());
        if !total.take(self.limits.total_per_minute, now) {
            return Err(Limited::Total);
        }
        Ok(())
    }

    /// Notes a refusal; true when it must be written to the audit trail now (the first of its
    /// source and reason in the window), false when it is only counted for the summary.
    pub fn refused(&self, source: &str, reason: &str, now: Instant) -> bool {
        let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        let key = (source.to_string(), reason.to_string());
        match refusals.get_mut(&key) {
            // Within the window, or past it with a summary not yet written: counted.
            Some(w)
                if w.suppressed > 0
                    || now.saturating_duration_since(w.started) < SUMMARY_WINDOW =>
            {
                w.suppressed += 1;
                false
            }
            _ => {
                refusals.insert(
                    key,
                    Window {
                        started: now,
                        suppressed: 0,
                    },
                );
                true
            }
        }
    }

    /// Summaries of every window that has ended (all of them with `flush_all`), removing them.
    pub fn due_summaries(&self, now: Instant, flush_all: bool) -> Vec<Summary> {
        let mut refusals = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        refusals.retain(|(source, reason), w| {
            let ended = flush_all || now.saturating_duration_since(w.started) >= SUMMARY_WINDOW;
            if ended && w.suppressed > 0 {
                out.push(Summary {
                    source: source.clone(),
                    reason: reason.clone(),
                    suppressed: w.suppressed,
                });
            }
            !ended
        });
        out.sort_by(|a, b| (&a.source, &a.reason).cmp(&(&b.source, &b.reason)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn each_source_gets_its_burst_then_its_rate() {
        let g = EnrollGuard::new(EnrollLimits {
            per_source_per_minute: 6,
            total_per_minute: 1000,
        });
        let t0 = Instant::now();
        for _ in 0..6 {
            assert_eq!(g.admit(ip("198.18.0.2"), t0), Ok(()));
        }
        assert_eq!(g.admit(ip("198.18.0.2"), t0), Err(Limited::Source));
        // Another source is not affected.
        assert_eq!(g.admit(ip("198.18.0.3"), t0), Ok(()));
        // 6 a minute: one more after 10 s.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(g.admit(ip("198.18.0.2"), later), Ok(()));
        assert_eq!(g.admit(ip("198.18.0.2"), later), Err(Limited::Source));
    }

    #[test]
    fn the_overall_limit_holds_across_sources() {
        let g = EnrollGuard::new(EnrollLimits {
            per_source_per_minute: 100,
            total_per_minute: 10,
        });
        let t0 = Instant::now();
        let admitted = (0..50)
            .filter(|i| g.admit(ip(&format!("198.18.1.{i}")), t0).is_ok())
            .count();
        assert_eq!(admitted, 10);
        assert_eq!(g.admit(ip("198.18.2.1"), t0), Err(Limited::Total));
    }

    #[test]
    fn repeated_refusals_become_one_entry_and_one_summary() {
        let g = EnrollGuard::new(EnrollLimits::default());
        let t0 = Instant::now();
        assert!(g.refused("198.18.0.9", "unknown token", t0));
        for i in 1..=99 {
            assert!(!g.refused("198.18.0.9", "unknown token", t0 + Duration::from_millis(i)));
        }
        // Another reason or source is written at once.
        assert!(g.refused("198.18.0.9", "rate limited", t0));
        assert!(g.refused("198.18.0.8", "unknown token", t0));
        assert!(
            g.due_summaries(t0 + Duration::from_secs(1), false)
                .is_empty()
        );
        let due = g.due_summaries(t0 + SUMMARY_WINDOW, false);
        assert_eq!(
            due,
            [Summary {
                source: "198.18.0.9".into(),
                reason: "unknown token".into(),
                suppressed: 99
            }]
        );
        // After the summary, the next refusal is written at once again.
        assert!(g.refused("198.18.0.9", "unknown token", t0 + SUMMARY_WINDOW));
        assert!(!g.refused("198.18.0.9", "unknown token", t0 + SUMMARY_WINDOW));
        assert_eq!(g.due_summaries(t0, true).len(), 1, "flush at shutdown");
    }
}
