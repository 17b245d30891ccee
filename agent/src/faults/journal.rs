//! The fault journal: one file per fault under `<state_dir>/faults/`, written and fsynced before
//! the fault is applied and removed only once its revert was verified. Whatever it still lists at
//! start-up is reverted before the agent does anything else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How to undo a fault with nothing but this record (after a crash, or from `recover`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "undo", rename_all = "snake_case")]
pub enum Undo {
    /// Nothing on the host outlives the agent's process (CPU and memory load), or nothing can be
    /// undone (killed processes).
    Nothing { note: String },
    /// Chains in Rampart's nftables table `inet rampart`.
    NftChains { chains: Vec<String> },
    /// Rampart's root qdisc on an interface; the previous one was the kernel default.
    Qdisc {
        interface: String,
        previous_kind: String,
        /// The previous root could not be recreated exactly (forced): the default comes back.
        forced: bool,
    },
    /// Stopped processes to continue: (pid, start time in clock ticks, to never signal a reused
    /// pid).
    Continue { pids: Vec<(i32, u64)> },
    /// A file Rampart created.
    RemoveFile { path: String },
    /// Several of the above, undone last first (e.g. latency: nft redirect and a proxy).
    All { parts: Vec<Undo> },
}

/// One journaled fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub fault_id: String,
    pub kind: String,
    /// The spec as JSON, for the record.
    pub spec: String,
    pub started_unix_ms: i64,
    pub ends_unix_ms: i64,
    pub undo: Undo,
}

#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("faults"),
        }
    }

    fn path(&self, fault_id: &str) -> PathBuf {
        self.dir.join(format!("{fault_id}.json"))
    }

    /// Records a fault durably (fsync of the file and its folder).
    pub fn write(&self, r: &Record) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            format!(
                "cannot create the fault journal {}: {e}",
                self.dir.display()
            )
        })?;
        let bytes = serde_json::to_vec_pretty(r).expect("record serialises");
        crate::state::write_durably(&self.path(&r.fault_id), &bytes, 0o600)
            .map_err(|e| format!("cannot write the fault journal: {e}"))
    }

    /// Forgets a fault whose revert was verified.
    pub fn remove(&self, fault_id: &str) -> Result<(), String> {
        match std::fs::remove_file(self.path(fault_id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot update the fault journal: {e}")),
        }
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Every record still in the journal; unreadable files are reported, not skipped.
    pub fn load(&self) -> (Vec<Record>, Vec<String>) {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return (records, errors);
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        for p in paths {
            match std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()))
            {
                Ok(r) => records.push(r),
                Err(e) => errors.push(format!("journal entry {} is unreadable: {e}", p.display())),
            }
        }
        (records, errors)
    }
}
