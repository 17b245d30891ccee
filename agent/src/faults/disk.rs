//! Disk fill: a Rampart-owned file (`.rampart-fill-<fault id>`) under the given folder, allocated
//! with fallocate until the filesystem is N % full or by N bytes. Reverting removes the file and
//! checks it is gone.

use std::path::Path;

use nix::sys::statvfs::statvfs;
use rampart_proto::v1::DiskFill;

/// Space always left free, so the host keeps working.
const KEEP_FREE: u64 = 64 << 20;

pub fn file_name(fault_id: &str) -> String {
    let id: String = fault_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(".rampart-fill-{id}")
}

/// (total, free) bytes of the filesystem holding `path`.
pub fn space(path: &Path) -> Result<(u64, u64), String> {
    let s = statvfs(path)
        .map_err(|e| format!("cannot read the filesystem of {}: {e}", path.display()))?;
    let frag = s.fragment_size() as u64;
    Ok((s.blocks() as u64 * frag, s.blocks_available() as u64 * frag))
}

/// How many bytes to allocate, and the file's path.
pub fn plan(fault_id: &str, spec: &DiskFill) -> Result<(String, u64), String> {
    let dir = Path::new(&spec.path);
    if !dir.is_absolute() || !dir.is_dir() {
        return Err(format!(
            "{:?} is not an existing absolute folder",
            spec.path
        ));
    }
    let (total, free) = space(dir)?;
    let bytes = match (spec.percent, spec.bytes) {
        (0, 0) | (1.., 1..) => return Err("give either a percentage or a number of bytes".into()),
        (p, 0) => {
            if p > 99 {
                return Err("percent must be between 1 and 99".into());
            }
            let used = total - free;
            let want = total / 100 * u64::from(p);
            if want <= used {
                return Err(format!(
                    "the filesystem is already {}% full",
                    used * 100 / total.max(1)
                ));
            }
            want - used
        }
        (0, b) => b,
    };
    if bytes + KEEP_FREE > free {
        return Err(format!(
            "{bytes} bytes would leave less than {} MiB free ({} MiB free now)",
            KEEP_FREE >> 20,
            free >> 20
        ));
    }
    Ok((
        dir.join(file_name(fault_id)).to_string_lossy().into_owned(),
        bytes,
    ))
}

pub fn fill(path: &str, bytes: u64) -> Result<String, String> {
    use std::os::fd::AsFd;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| format!("cannot create {path}: {e}"))?;
    let allocated = nix::fcntl::fallocate(
        f.as_fd(),
        nix::fcntl::FallocateFlags::empty(),
        0,
        bytes as i64,
    );
    if let Err(e) = allocated {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(format!("cannot allocate {bytes} bytes in {path}: {e}"));
    }
    f.sync_all().map_err(|e| format!("{path}: {e}"))?;
    Ok(format!(
        "{path}: {bytes} bytes ({} MiB) allocated",
        bytes >> 20
    ))
}

pub fn remove(path: &str) -> Result<String, String> {
    if !Path::new(path)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".rampart-fill-"))
    {
        return Err(format!("{path} is not a Rampart fill file; not removed"));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {path}: {e}")),
    }
    if Path::new(path).exists() {
        return Err(format!("{path} is still there"));
    }
    Ok(format!("removed {path}"))
}
