//! CPU load: worker threads that each hold a measured share of a CPU. Every worker compares the
//! CPU time its thread really got (CLOCK_THREAD_CPUTIME_ID) with the target share of the wall time
//! since it started, and spins only while it is behind: the load is measured and held, even when
//! other work competes for the CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::time::{ClockId, clock_gettime};
use rampart_proto::v1::CpuFault;

use super::Running;

/// Longest a worker lags before it stops trying to catch up (so a starved worker does not burst).
const MAX_DEBT: Duration = Duration::from_millis(200);

fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

pub struct CpuLoad {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

pub fn start(spec: &CpuFault) -> Result<(CpuLoad, String), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if spec.workers == 0 || spec.workers as usize > cpus * 4 {
        return Err(format!(
            "workers must be between 1 and {} on this host",
            cpus * 4
        ));
    }
    if !(1..=100).contains(&spec.load_percent) {
        return Err("load percent must be between 1 and 100".into());
    }
    if let Some(bad) = spec.cpus.iter().find(|c| **c as usize >= cpus) {
        return Err(format!("CPU {bad} does not exist here (0–{})", cpus - 1));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let share = f64::from(spec.load_percent) / 100.0;
    let mut workers = Vec::new();
    for i in 0..spec.workers as usize {
        let stop = stop.clone();
        let pin = (!spec.cpus.is_empty()).then(|| spec.cpus[i % spec.cpus.len()] as usize);
        let handle = std::thread::Builder::new()
            .name(format!("rampart-cpu-{i}"))
            .spawn(move || {
                if let Some(cpu) = pin {
                    let mut set = nix::sched::CpuSet::new();
                    if set.set(cpu).is_ok() {
                        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
                    }
                }
                let (mut wall0, cpu0) = (Instant::now(), thread_cpu());
                while !stop.load(Ordering::Relaxed) {
                    let want = wall0.elapsed().mul_f64(share);
                    let have = thread_cpu().saturating_sub(cpu0);
                    if want > have + MAX_DEBT {
                        // Starved by other work: forgive what is beyond MAX_DEBT.
                        wall0 += (want - have - MAX_DEBT).div_f64(share);
                        continue;
                    }
                    if have < want {
                        let until = Instant::now() + Duration::from_micros(500);
                        while Instant::now() < until {
                            std::hint::spin_loop();
                        }
                    } else {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            })
            .map_err(|e| format!("cannot start a CPU worker: {e}"))?;
        workers.push(handle);
    }
    let detail = format!(
        "{} worker thread(s) at {}% each{}",
        spec.workers,
        spec.load_percent,
        if spec.cpus.is_empty() {
            String::new()
        } else {
            format!(", pinned to CPU(s) {:?}", spec.cpus)
        }
    );
    Ok((CpuLoad { stop, workers }, detail))
}

impl Running for CpuLoad {
    fn stop(&mut self) -> Result<String, String> {
        self.stop.store(true, Ordering::Relaxed);
        let n = self.workers.len();
        for w in self.workers.drain(..) {
            w.join().map_err(|_| "a CPU worker panicked".to_string())?;
        }
        Ok(format!("{n} CPU worker(s) stopped"))
    }
}
