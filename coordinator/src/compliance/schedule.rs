//! Scheduled sweeps (cron patterns, parsed by croner, in UTC). The scheduler checks every second
//! for due schedules and starts their sweeps.
//!
//! Missed runs: when the coordinator was down at a schedule's time, the schedule runs **once** as
//! soon as the coordinator is back (not once per missed slot), then follows its pattern again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use rampart_common::labels::Selector;
use rampart_common::time::now_ms;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Packs;
use super::sweep::{self, SweepPlan};
use crate::fleet::Fleet;
use crate::store::{ScheduleRecord, Store};

/// How often the scheduler looks for due schedules.
const TICK: Duration = Duration::from_secs(1);
/// Per-host wait for facts in scheduled sweeps.
const SCHEDULED_TIMEOUT: Duration = Duration::from_secs(30);

/// Parses a cron pattern: five fields (minute granularity) or six (seconds first), or an alias
/// such as `@hourly`.
pub fn parse(pattern: &str) -> Result<Cron, String> {
    pattern
        .parse::<Cron>()
        .map_err(|e| format!("invalid cron pattern {pattern:?}: {e}"))
}

/// The first time strictly after `after_ms` that the pattern matches, in Unix ms.
pub fn next_after(cron: &Cron, after_ms: i64) -> Option<i64> {
    let after: DateTime<Utc> = Utc.timestamp_millis_opt(after_ms).single()?;
    cron.find_next_occurrence(&after, false)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Whether a schedule is due at `now`; missed slots collapse into this one run.
pub fn is_due(s: &ScheduleRecord, now: i64) -> bool {
    s.next_run_at <= now
}

/// Schedules whose sweep is still running: a schedule never overlaps itself.
pub type Running = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

/// Starts every due schedule's sweep; returns the ids started. A schedule whose previous sweep is
/// still running skips this slot.
pub async fn run_due(
    store: &Store,
    fleet: &Arc<Fleet>,
    packs: &Arc<Packs>,
    running: &Running,
    now: i64,
) -> Vec<String> {
    let schedules = match store.schedules().await {
        Ok(s) => s,
        Err(err) => {
            warn!(%err, "cannot read schedules");
            return Vec::new();
        }
    };
    let mut started = Vec::new();
    for s in schedules.into_iter().filter(|s| is_due(s, now)) {
        let next = parse(&s.cron)
            .ok()
            .and_then(|c| next_after(&c, now))
            .unwrap_or(i64::MAX);
        if running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&s.id)
        {
            warn!(schedule = %s.id, "previous scheduled sweep still running; skipping this slot");
            let (last, sweep) = (
                s.last_run_at.unwrap_or(now),
                s.last_sweep.clone().unwrap_or_default(),
            );
            if let Err(err) = store
                .claim_schedule_slot(&s.id, s.next_run_at, last, &sweep, next)
                .await
            {
                warn!(%err, schedule = %s.id, "cannot record the skipped slot");
            }
            continue;
        }
        let sweep_id = format!("sweep-{}", hex::encode(rand::random::<[u8; 6]>()));
        // Claimed first: a crash mid-sweep must not make the schedule fire in a loop, and another
        // coordinator on the same database must not run this slot too.
        match store
            .claim_schedule_slot(&s.id, s.next_run_at, now, &sweep_id, next)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                debug!(schedule = %s.id, "slot already claimed by another coordinator");
                continue;
            }
            Err(err) => {
                warn!(%err, schedule = %s.id, "cannot record the schedule's run; skipping it");
                continue;
            }
        }
        let (Some(pack), Ok(selector)) = (packs.get(&s.pack), Selector::parse(&s.selector)) else {
            warn!(schedule = %s.id, pack = %s.pack, "schedule names a pack that is not loaded or a bad selector; skipped");
            continue;
        };
        let plan = SweepPlan {
            id: sweep_id,
            selector,
            selector_text: s.selector.clone(),
            pack,
            timeout: SCHEDULED_TIMEOUT,
            profile: false,
            stored_facts: false,
            actor: format!("schedule {}", s.id),
        };
        let (store, fleet, running) = (store.clone(), fleet.clone(), running.clone());
        info!(schedule = %s.id, sweep = %plan.id, "scheduled sweep starting");
        started.push(s.id.clone());
        running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(s.id.clone());
        tokio::spawn(async move {
            let outcome = match sweep::select(&store, &plan.selector).await {
                Ok(agents) => sweep::run(&store, &fleet, &plan, agents, |_| {}).await,
                Err(err) => Err(err),
            };
            match outcome {
                Ok(summary) => {
                    info!(sweep = %plan.id, hosts = summary.hosts, fail = summary.fail, unreachable = summary.unreachable, "scheduled sweep done")
                }
                Err(err) => warn!(%err, sweep = %plan.id, "scheduled sweep failed"),
            }
            running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&s.id);
        });
    }
    started
}

/// The scheduler loop; ends with `cancel`.
pub async fn run(store: Store, fleet: Arc<Fleet>, packs: Arc<Packs>, cancel: CancellationToken) {
    let running = Running::default();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        run_due(&store, &fleet, &packs, &running, now_ms()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_next_times() {
        let every_6h = parse("0 */6 * * *").unwrap();
        // 2026-11-30T09:10:00Z → 12:00:00Z.
        let t = Utc
            .with_ymd_and_hms(2026, 11, 30, 9, 10, 0)
            .unwrap()
            .timestamp_millis();
        let next = next_after(&every_6h, t).unwrap();
        assert_eq!(
            next,
            Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert!(
            next_after(&every_6h, next).unwrap() > next,
            "strictly after"
        );
        assert!(
            parse("every tuesday")
                .unwrap_err()
                .contains("invalid cron pattern")
        );
        assert!(parse("* * * * * *").is_ok(), "seconds are allowed");
    }

    #[tokio::test]
    async fn a_missed_schedule_runs_once_then_follows_its_pattern() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let day = 86_400_000;
        let now = now_ms();
        let rec = ScheduleRecord {
            id: "s1".into(),
            cron: "0 0 * * *".into(),
            selector: String::new(),
            pack: "linux-baseline".into(),
            created_by: "test".into(),
            created_at: now - 3 * day,
            last_run_at: None,
            last_sweep: None,
            // Due three days ago: the coordinator was down for three daily runs.
            next_run_at: now - 3 * day,
        };
        store.insert_schedule(&rec).await.unwrap();
        let (fleet, packs, running) =
            (Fleet::new(), Arc::new(Packs::builtin()), Running::default());
        assert_eq!(run_due(&store, &fleet, &packs, &running, now).await, ["s1"]);
        assert!(
            run_due(&store, &fleet, &packs, &running, now + 1)
                .await
                .is_empty(),
            "one catch-up run, not three"
        );
        let s = &store.schedules().await.unwrap()[0];
        assert_eq!(s.last_run_at, Some(now));
        assert!(
            s.next_run_at > now && s.next_run_at <= now + day,
            "next midnight"
        );
        assert!(s.last_sweep.is_some());

        // While its sweep runs, a due schedule skips its slot instead of overlapping itself.
        while !running.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        running.lock().unwrap().insert("s1".into());
        let due_again = s.next_run_at;
        assert!(
            run_due(&store, &fleet, &packs, &running, due_again)
                .await
                .is_empty()
        );
        assert!(store.schedules().await.unwrap()[0].next_run_at > due_again);
    }

    use crate::store::testing::{TestDb, on_both_backends};

    on_both_backends!(coordinators_sharing_a_database_run_a_slot_once);

    /// Two coordinators (two stores on one database, each with its own scheduler state) see the
    /// same due schedule at the same moment, twenty times over: each slot runs exactly once.
    async fn coordinators_sharing_a_database_run_a_slot_once(db: TestDb) {
        let (a, b) = (db.open().await, db.open().await);
        let now = now_ms();
        a.insert_schedule(&ScheduleRecord {
            id: "every-second".into(),
            cron: "* * * * * *".into(),
            selector: "none=here".into(),
            pack: "linux-baseline".into(),
            created_by: "test".into(),
            created_at: now,
            last_run_at: None,
            last_sweep: None,
            next_run_at: now,
        })
        .await
        .unwrap();
        let (fleet, packs) = (Fleet::new(), Arc::new(Packs::builtin()));
        let (running_a, running_b) = (Running::default(), Running::default());
        let mut runs = 0;
        for slot in 0..20 {
            let due = a.schedules().await.unwrap()[0].next_run_at;
            let (ra, rb) = tokio::join!(
                run_due(&a, &fleet, &packs, &running_a, due),
                run_due(&b, &fleet, &packs, &running_b, due),
            );
            assert_eq!(ra.len() + rb.len(), 1, "slot {slot} ran {ra:?} {rb:?}");
            runs += 1;
            // Let the (empty) sweeps finish so neither side skips a slot as overlapping.
            while !running_a.lock().unwrap().is_empty() || !running_b.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let sweeps = a.recent_sweeps(100).await.unwrap().len();
        assert_eq!(runs, 20);
        assert_eq!(sweeps, 20, "one stored sweep per slot");
    }
}
