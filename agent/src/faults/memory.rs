//! Memory pressure: a thread allocates the requested bytes (gradually over the ramp time), writes
//! to every page so it is resident, and holds it until the fault is reverted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_proto::v1::MemoryFault;

use super::Running;

const CHUNK: usize = 16 << 20;
const PAGE: usize = 4096;
/// Memory left to the host no matter what is asked.
const KEEP_AVAILABLE: u64 = 256 << 20;

fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

pub struct MemoryLoad {
    stop: Arc<AtomicBool>,
    held: Arc<AtomicU64>,
    worker: Option<JoinHandle<()>>,
}

pub fn start(spec: &MemoryFault) -> Result<(MemoryLoad, String), String> {
    if spec.bytes == 0 {
        return Err("a memory fault needs a size".into());
    }
    if let Some(avail) = mem_available()
        && spec.bytes + KEEP_AVAILABLE > avail
    {
        return Err(format!(
            "{} bytes would leave less than {} MiB of this host's {} MiB available memory",
            spec.bytes,
            KEEP_AVAILABLE >> 20,
            avail >> 20
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicU64::new(0));
    let (total, ramp) = (spec.bytes, Duration::from_millis(u64::from(spec.ramp_ms)));
    let (s, h) = (stop.clone(), held.clone());
    let worker = std::thread::Builder::new()
        .name("rampart-memory".into())
        .spawn(move || {
            let start = Instant::now();
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            let mut allocated = 0u64;
            while allocated < total && !s.load(Ordering::Relaxed) {
                // Ramp: allocate only what the elapsed share of the ramp allows.
                let allowed = if ramp.is_zero() {
                    total
                } else {
                    (total as f64 * (start.elapsed().as_secs_f64() / ramp.as_secs_f64()).min(1.0))
                        as u64
                };
                if allocated >= allowed {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                let size = (CHUNK as u64).min(total - allocated) as usize;
                let mut chunk = vec![0u8; size];
                for i in (0..size).step_by(PAGE) {
                    chunk[i] = 1;
                }
                allocated += size as u64;
                h.store(allocated, Ordering::Relaxed);
                chunks.push(chunk);
            }
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(chunks);
            h.store(0, Ordering::Relaxed);
        })
        .map_err(|e| format!("cannot start the memory worker: {e}"))?;
    let detail = format!(
        "{} bytes ({} MiB) allocated and touched{}",
        spec.bytes,
        spec.bytes >> 20,
        if spec.ramp_ms > 0 {
            format!(", ramped over {} ms", spec.ramp_ms)
        } else {
            String::new()
        }
    );
    Ok((
        MemoryLoad {
            stop,
            held,
            worker: Some(worker),
        },
        detail,
    ))
}

impl Running for MemoryLoad {
    fn stop(&mut self) -> Result<String, String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(w) = self.worker.take() {
            w.join()
                .map_err(|_| "the memory worker panicked".to_string())?;
        }
        match self.held.load(Ordering::Relaxed) {
            0 => Ok("memory released".into()),
            n => Err(format!("{n} bytes still held")),
        }
    }
}
