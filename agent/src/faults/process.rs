//! Process faults: kill (a signal to one, N or all matches, optionally repeated) and pause
//! (SIGSTOP now, SIGCONT on revert). Targets come from /proc: a pid, an exact name, a command-line
//! regular expression or a systemd unit. PID 1, the agent itself and the protected names are never
//! signalled. A pid is identified with its start time, so a reused pid is never signalled.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rampart_proto::v1::{ProcessTarget, process_target};

use super::policy::FaultPolicy;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub comm: String,
    /// Clock ticks since boot (field 22 of /proc/PID/stat).
    pub start: u64,
    /// Process state letter (field 3).
    pub state: char,
}

/// Reads one process, if it exists.
pub fn read(pid: i32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm is in parentheses and may hold spaces: split at the last ')'.
    let (head, tail) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_string();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    Some(Proc {
        pid,
        comm,
        state: fields.first()?.chars().next()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// Whether `pid` still is the process that started at `start`.
pub fn same(pid: i32, start: u64) -> Option<Proc> {
    read(pid).filter(|p| p.start == start)
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn in_unit(pid: i32, unit: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|c| {
            c.lines()
                .any(|l| l.trim_end().ends_with(&format!("/{unit}")))
        })
        .unwrap_or(false)
}

/// Describes a target for messages.
pub fn describe(t: &ProcessTarget) -> String {
    match &t.by {
        Some(process_target::By::Pid(p)) => format!("pid {p}"),
        Some(process_target::By::Name(n)) => format!("name {n:?}"),
        Some(process_target::By::CmdlineRegex(r)) => format!("command line /{r}/"),
        Some(process_target::By::Unit(u)) => format!("unit {u}"),
        None => "no target".into(),
    }
}

/// The processes `target` matches, oldest first, with protected ones left out. `Err` when the
/// target is invalid or only protected processes match.
pub fn resolve(
    target: &ProcessTarget,
    policy: &FaultPolicy,
    count: u32,
) -> Result<Vec<Proc>, String> {
    use process_target::By;
    let me = std::process::id() as i32;
    let protected = |p: &Proc| p.pid == 1 || p.pid == me || policy.is_protected(&p.comm);
    let regex = match &target.by {
        Some(By::CmdlineRegex(r)) => Some(
            regex_lite::Regex::new(r).map_err(|e| format!("invalid command-line pattern: {e}"))?,
        ),
        _ => None,
    };
    let mut found = Vec::new();
    let mut refused = Vec::new();
    let candidates: Vec<i32> = match &target.by {
        Some(By::Pid(p)) => vec![*p as i32],
        None => {
            return Err("a process fault needs a target: pid, name, cmdline regex or unit".into());
        }
        _ => std::fs::read_dir("/proc")
            .map_err(|e| format!("cannot list /proc: {e}"))?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
    };
    for pid in candidates {
        let Some(p) = read(pid) else { continue };
        let matches = match &target.by {
            Some(By::Pid(_)) => true,
            Some(By::Name(n)) => &p.comm == n,
            Some(By::CmdlineRegex(_)) => {
                let line = cmdline(pid);
                !line.is_empty() && regex.as_ref().is_some_and(|r| r.is_match(&line))
            }
            Some(By::Unit(u)) => in_unit(pid, u),
            None => false,
        };
        if !matches {
            continue;
        }
        if protected(&p) {
            refused.push(format!("{} ({})", p.pid, p.comm));
        } else {
            found.push(p);
        }
    }
    if found.is_empty() {
        return Err(if refused.is_empty() {
            format!("no process matches {}", describe(target))
        } else {
            format!(
                "every process matching {} is protected (PID 1, the agent itself, or the protected list): {}",
                describe(target),
                refused.join(", ")
            )
        });
    }
    found.sort_by_key(|p| (p.start, p.pid));
    if count > 0 {
        found.truncate(count as usize);
    }
    Ok(found)
}

pub fn signal(p: &Proc, sig: Signal) -> Result<(), String> {
    // Re-check identity right before signalling.
    if same(p.pid, p.start).is_none() {
        return Err(format!("pid {} exited", p.pid));
    }
    kill(Pid::from_raw(p.pid), sig).map_err(|e| format!("cannot signal pid {}: {e}", p.pid))
}

pub fn signal_from(number: i32) -> Result<Signal, String> {
    if number == 0 {
        return Ok(Signal::SIGKILL);
    }
    let s = Signal::try_from(number).map_err(|_| format!("{number} is not a signal"))?;
    if matches!(s, Signal::SIGSTOP | Signal::SIGCONT) {
        return Err("use a process-pause fault to stop and continue processes".into());
    }
    Ok(s)
}

/// Continues stopped processes (those still the same) and checks they run; `Err` lists those
/// still stopped.
pub fn continue_all(pids: &[(i32, u64)]) -> Result<String, String> {
    let mut resumed = Vec::new();
    let mut gone = Vec::new();
    for (pid, start) in pids {
        match same(*pid, *start) {
            Some(_) => {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
                resumed.push(*pid);
            }
            None => gone.push(*pid),
        }
    }
    // The state changes right after the signal; give the kernel a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let stopped: Vec<i32> = resumed
            .iter()
            .copied()
            .filter(|pid| read(*pid).is_some_and(|p| p.state == 'T'))
            .collect();
        if stopped.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "pid(s) {stopped:?} are still stopped after SIGCONT"
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut s = format!("continued pid(s) {resumed:?}");
    if !gone.is_empty() {
        s.push_str(&format!("; {gone:?} exited meanwhile"));
    }
    Ok(s)
}

/// Stops the processes and checks they are stopped.
pub fn stop_all(procs: &[Proc]) -> Result<(), String> {
    for p in procs {
        signal(p, Signal::SIGSTOP)?;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    for p in procs {
        while read(p.pid).is_some_and(|q| q.state != 'T') {
            if std::time::Instant::now() > deadline {
                return Err(format!("pid {} did not stop", p.pid));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    Ok(())
}

/// Kills matches again every interval until the fault ends.
pub struct Repeat {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    worker: Option<std::thread::JoinHandle<u32>>,
}

impl Repeat {
    pub fn start(
        target: ProcessTarget,
        policy: FaultPolicy,
        count: u32,
        sig: Signal,
        every: std::time::Duration,
    ) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let worker = std::thread::spawn(move || {
            let mut kills = 0;
            let mut next = std::time::Instant::now() + every;
            while !s.load(Ordering::Relaxed) {
                if std::time::Instant::now() >= next {
                    if let Ok(procs) = resolve(&target, &policy, count) {
                        kills += procs.iter().filter(|p| signal(p, sig).is_ok()).count() as u32;
                    }
                    next += every;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            kills
        });
        Self {
            stop,
            worker: Some(worker),
        }
    }
}

impl super::Running for Repeat {
    fn stop(&mut self) -> Result<String, String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let kills = self
            .worker
            .take()
            .map(|w| {
                w.join()
                    .map_err(|_| "the repeat killer panicked".to_string())
            })
            .transpose()?
            .unwrap_or(0);
        Ok(format!(
            "repeat killing stopped after {kills} more signal(s)"
        ))
    }
}
