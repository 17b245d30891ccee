use std::time::Duration;

use rampart_proto::v1::{
    CpuFault, DiskFill, InjectFault, MemoryFault, ProcessKill, ProcessPause, ProcessTarget,
    fault_spec, process_target,
};

use super::*;

fn faults(dir: &std::path::Path, policy: FaultPolicy) -> Faults {
    Faults::new(policy, dir, Vec::new())
}

fn inject(id: &str, kind: fault_spec::Kind, ms: u32) -> InjectFault {
    InjectFault {
        fault_id: id.into(),
        spec: Some(FaultSpec { kind: Some(kind) }),
        duration_ms: ms,
    }
}

fn by_pid(pid: u32) -> Option<ProcessTarget> {
    Some(ProcessTarget {
        by: Some(process_target::By::Pid(pid)),
    })
}

/// A `sleep` child this test owns (killed and reaped on drop).
struct Child(std::process::Child);

impl Child {
    fn sleep() -> Self {
        Self(
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap(),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn state(&self) -> char {
        process::read(self.pid() as i32).map_or('?', |p| p.state)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time of this process's threads whose name starts with `prefix` (scheduler nanoseconds):
/// other tests run in this process too.
fn worker_cpu(prefix: &str) -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_fault_holds_its_measured_share_and_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let f = faults(dir.path(), FaultPolicy::default());
    let started = std::time::Instant::now();
    let st = f
        .inject(inject(
            "cpu-1",
            fault_spec::Kind::Cpu(CpuFault {
                workers: 1,
                load_percent: 50,
                cpus: vec![],
            }),
            1500,
        ))
        .await;
    assert_eq!(st.state, "active", "{st:?}");
    assert!(
        dir.path().join("faults/cpu-1.json").exists(),
        "journaled while active"
    );
    // The worker thread's own CPU time, 1.2 s in.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let used = worker_cpu("rampart-cpu");
    let wall = started.elapsed();
    // Ended by its own timer: reverted, journal entry gone.
    let mut events = f.take_events();
    let ended = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (ended.state.as_str(), ended.reverted_by.as_str()),
        ("reverted", "duration")
    );
    assert!(!dir.path().join("faults/cpu-1.json").exists());
    let share = used.as_secs_f64() / wall.as_secs_f64();
    assert!(
        (0.35..=0.65).contains(&share),
        "CPU share {share:.2} for a 50% fault over {wall:?}"
    );
    // The same id again answers with what happened; it is not applied twice.
    let again = f
        .inject(inject(
            "cpu-1",
            fault_spec::Kind::Cpu(CpuFault {
                workers: 1,
                load_percent: 50,
                cpus: vec![],
            }),
            1000,
        ))
        .await;
    assert_eq!(again.state, "reverted");
    assert!(f.state().active.is_empty());
}

#[tokio::test]
async fn policy_refusals_are_clear_and_nothing_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let policy = FaultPolicy {
        allowed_kinds: Some(vec!["cpu".into()]),
        max_duration: Duration::from_secs(60),
        ..FaultPolicy::default()
    };
    let f = faults(dir.path(), policy);
    let st = f
        .inject(inject(
            "m-1",
            fault_spec::Kind::Memory(MemoryFault {
                bytes: 1 << 20,
                ramp_ms: 0,
            }),
            1000,
        ))
        .await;
    assert_eq!(st.state, "refused");
    assert!(
        st.detail
            .contains("memory is not allowed by this agent's config"),
        "{st:?}"
    );
    let st = f
        .inject(inject(
            "c-1",
            fault_spec::Kind::Cpu(CpuFault {
                workers: 1,
                load_percent: 10,
                cpus: vec![],
            }),
            3_600_000,
        ))
        .await;
    assert!(
        st.detail.contains("longer than this agent allows"),
        "{st:?}"
    );
    let st = f
        .inject(InjectFault {
            fault_id: "x-1".into(),
            spec: None,
            duration_ms: 1000,
        })
        .await;
    assert!(st.detail.contains("unknown fault kind"), "{st:?}");
    // Network kinds on a host without nftables are refused, not silently skipped.
    let f = faults(dir.path(), FaultPolicy::default());
    let st = f
        .inject(inject(
            "n-1",
            fault_spec::Kind::Dns(Default::default()),
            1000,
        ))
        .await;
    assert_eq!(st.state, "refused");
    assert!(st.detail.contains("no nftables"), "{st:?}");
    assert!(
        !dir.path().join("faults").exists()
            || std::fs::read_dir(dir.path().join("faults"))
                .unwrap()
                .count()
                == 0
    );
}

#[tokio::test]
async fn pause_stops_and_revert_continues_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let f = faults(dir.path(), FaultPolicy::default());
    let child = Child::sleep();
    let st = f
        .inject(inject(
            "p-1",
            fault_spec::Kind::ProcessPause(ProcessPause {
                target: by_pid(child.pid()),
                count: 0,
            }),
            60_000,
        ))
        .await;
    assert_eq!(st.state, "active", "{st:?}");
    assert_eq!(child.state(), 'T');
    let back = f.revert("p-1", "request").await.unwrap();
    assert_eq!(back.state, "reverted", "{back:?}");
    assert_ne!(child.state(), 'T');
    assert!(f.revert("nope", "request").await.is_none());
}

#[tokio::test]
async fn protected_processes_are_never_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let f = faults(dir.path(), FaultPolicy::default());
    for pid in [1, std::process::id()] {
        let st = f
            .inject(inject(
                &format!("k-{pid}"),
                fault_spec::Kind::ProcessKill(ProcessKill {
                    target: by_pid(pid),
                    signal: 0,
                    count: 0,
                    repeat_interval_ms: 0,
                }),
                1000,
            ))
            .await;
        assert_eq!(st.state, "failed", "{st:?}");
        assert!(st.detail.contains("protected"), "{st:?}");
    }
    let child = Child::sleep();
    let policy = FaultPolicy {
        protected: vec!["sleep".into()],
        ..FaultPolicy::default()
    };
    let f = faults(dir.path(), policy);
    let st = f
        .inject(inject(
            "k-sleep",
            fault_spec::Kind::ProcessKill(ProcessKill {
                target: Some(ProcessTarget {
                    by: Some(process_target::By::Name("sleep".into())),
                }),
                signal: 0,
                count: 0,
                repeat_interval_ms: 0,
            }),
            1000,
        ))
        .await;
    assert!(st.detail.contains("protected"), "{st:?}");
    assert!(
        matches!(child.state(), 'S' | 'R'),
        "untouched: {}",
        child.state()
    );
}

#[tokio::test]
async fn kill_sends_the_signal_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let f = faults(dir.path(), FaultPolicy::default());
    let mut child = Child::sleep();
    let st = f
        .inject(inject(
            "k-1",
            fault_spec::Kind::ProcessKill(ProcessKill {
                target: by_pid(child.pid()),
                signal: 15,
                count: 0,
                repeat_interval_ms: 0,
            }),
            1000,
        ))
        .await;
    assert_eq!(st.state, "active", "{st:?}");
    assert!(st.detail.contains("SIGTERM"), "{st:?}");
    let status = child.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15));
}

#[tokio::test]
async fn disk_fill_takes_space_and_gives_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    let f = faults(dir.path(), FaultPolicy::default());
    let (_, free_before) = disk::space(target.path()).unwrap();
    let st = f
        .inject(inject(
            "d-1",
            fault_spec::Kind::DiskFill(DiskFill {
                path: target.path().to_string_lossy().into(),
                percent: 0,
                bytes: 64 << 20,
            }),
            60_000,
        ))
        .await;
    assert_eq!(st.state, "active", "{st:?}");
    let file = target.path().join(".rampart-fill-d-1");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 64 << 20);
    let (_, free_during) = disk::space(target.path()).unwrap();
    assert!(
        free_before - free_during.min(free_before) >= 60 << 20,
        "{free_before} → {free_during}"
    );
    let back = f.revert("d-1", "request").await.unwrap();
    assert_eq!(back.state, "reverted", "{back:?}");
    assert!(!file.exists());
}

#[tokio::test]
async fn the_journal_is_replayed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let child = Child::sleep();
    // A previous run paused a process and filled a file, then died.
    let journal = Journal::new(dir.path());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.pid() as i32),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let start = process::read(child.pid() as i32).unwrap().start;
    journal
        .write(&Record {
            fault_id: "p-old".into(),
            kind: "process-pause".into(),
            spec: "{}".into(),
            started_unix_ms: 1,
            ends_unix_ms: 2,
            undo: Undo::Continue {
                pids: vec![(child.pid() as i32, start)],
            },
        })
        .unwrap();
    let fill = dir.path().join(".rampart-fill-d-old");
    std::fs::write(&fill, b"x").unwrap();
    journal
        .write(&Record {
            fault_id: "d-old".into(),
            kind: "disk-fill".into(),
            spec: "{}".into(),
            started_unix_ms: 1,
            ends_unix_ms: 2,
            undo: Undo::RemoveFile {
                path: fill.to_string_lossy().into(),
            },
        })
        .unwrap();
    let f = faults(dir.path(), FaultPolicy::default());
    let recovered = f.recover_journal().await;
    assert_eq!(recovered.len(), 2);
    assert!(
        recovered
            .iter()
            .all(|s| s.state == "reverted" && s.reverted_by == "startup"),
        "{recovered:?}"
    );
    assert_ne!(child.state(), 'T');
    assert!(!fill.exists());
    assert!(
        journal.load().0.is_empty(),
        "verified reverts leave the journal"
    );
    // They are reported with the next Hello.
    let mut events = f.take_events();
    assert_eq!(events.try_recv().unwrap().fault_id, "d-old");
}

#[tokio::test]
async fn a_revert_that_cannot_be_verified_is_revert_failed_and_stays_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::new(dir.path());
    // A "fill file" that is not Rampart's: recovery refuses to delete it and says so.
    let foreign = dir.path().join("precious.db");
    std::fs::write(&foreign, b"data").unwrap();
    journal
        .write(&Record {
            fault_id: "d-bad".into(),
            kind: "disk-fill".into(),
            spec: "{}".into(),
            started_unix_ms: 1,
            ends_unix_ms: 2,
            undo: Undo::RemoveFile {
                path: foreign.to_string_lossy().into(),
            },
        })
        .unwrap();
    let out = recover_records(&journal, "startup");
    assert_eq!(out[0].state, "revert_failed", "{out:?}");
    assert!(out[0].detail.contains("not a Rampart fill file"), "{out:?}");
    assert!(foreign.exists());
    assert_eq!(journal.load().0.len(), 1, "kept for the next attempt");
}

#[tokio::test]
async fn memory_is_held_then_released() {
    let dir = tempfile::tempdir().unwrap();
    let f = faults(dir.path(), FaultPolicy::default());
    let rss = || {
        std::fs::read_to_string("/proc/self/statm")
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 4096
    };
    let before = rss();
    let st = f
        .inject(inject(
            "m-1",
            fault_spec::Kind::Memory(MemoryFault {
                bytes: 64 << 20,
                ramp_ms: 0,
            }),
            60_000,
        ))
        .await;
    assert_eq!(st.state, "active", "{st:?}");
    let grown = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if rss() >= before + (60 << 20) {
                return rss();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("resident memory grows by the amount");
    let back = f.revert("m-1", "request").await.unwrap();
    assert_eq!(back.state, "reverted", "{back:?}");
    assert!(rss() < grown - (32 << 20), "released");
}

#[tokio::test]
async fn a_revert_asked_while_another_is_under_way_gets_its_outcome() {
    // The coordinator confirms a step's end while the fault's own timer reverts it: both must
    // learn `reverted`, neither "no such fault".
    let dir = tempfile::tempdir().unwrap();
    let f = faults(dir.path(), FaultPolicy::default());
    let st = f
        .inject(inject(
            "c-1",
            fault_spec::Kind::Cpu(CpuFault {
                workers: 1,
                load_percent: 10,
                cpus: vec![],
            }),
            60_000,
        ))
        .await;
    assert_eq!(st.state, "active", "{st:?}");
    let (first, second) = tokio::join!(f.revert("c-1", "duration"), f.revert("c-1", "request"));
    let (first, second) = (first.expect("first"), second.expect("second"));
    assert_eq!(first.state, "reverted", "{first:?}");
    assert_eq!(second.state, "reverted", "{second:?}");
    assert_eq!(
        second.reverted_by, "duration",
        "one revert happened, and it is reported"
    );
    assert!(
        f.revert("c-2", "request").await.is_none(),
        "unknown ids stay unknown"
    );
}
