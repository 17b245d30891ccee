//! Path resolution inside a fact root, with the semantics of `openat2(RESOLVE_IN_ROOT)`: the root
//! is `/` for every path and every symbolic link met on the way, so an absolute link means "that
//! path under the root", `..` never climbs above it, and link loops end in `ELOOP`. A host
//! filesystem mounted at `/host` (or a fixture tree) is then read as that host sees itself, and
//! nothing of the real machine leaks in through a link such as `etc/mtab -> /proc/self/mounts`.
//!
//! Reading a file goes through `openat2` itself where the kernel has it (Linux 5.6+), so the
//! kernel does the walk atomically; the userspace walk here serves directories, metadata and
//! kernels without `openat2`. With the root `/`, paths are used as they are.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// Symbolic links followed in one resolution before giving up, as Linux's own limit (`MAXSYMLINKS`).
const MAX_LINKS: u32 = 40;

/// Whether resolution follows a symbolic link in the last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Last {
    /// Follow it (reading a file's contents, listing a directory).
    Follow,
    /// Keep the link itself (its metadata, replacing it).
    NoFollow,
}

/// `path` (as on the host) resolved below `root`; see the module docs. Missing components are
/// kept as named (opening the result then fails with `NotFound`); a link loop is `ELOOP`.
pub fn resolve(root: &Path, path: &Path, last: Last) -> io::Result<PathBuf> {
    if root == Path::new("/") {
        return Ok(Path::new("/").join(path));
    }
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_front(&mut pending, path);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0u32;
    // Once a component is missing, the rest cannot be links: it is resolved by name only.
    let mut missing = false;
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            done.pop();
            continue;
        }
        let here = joined(root, &done).join(&name);
        if missing {
            done.push(name);
            continue;
        }
        let follow = !pending.is_empty() || last == Last::Follow;
        match std::fs::symlink_metadata(&here) {
            Ok(md) if md.file_type().is_symlink() && follow => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(Errno::ELOOP as i32));
                }
                let target = std::fs::read_link(&here)?;
                if target.is_absolute() {
                    done.clear();
                }
                push_front(&mut pending, &target);
            }
            Ok(_) => done.push(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing = true;
                done.push(name);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(joined(root, &done))
}

/// Queues the components of `path` before whatever is pending (a link's target replaces the link).
fn push_front(pending: &mut VecDeque<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    for p in parts.into_iter().rev() {
        pending.push_front(p);
    }
}

fn joined(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// The most the agent reads of one file: configuration and package databases are far smaller;
/// anything larger is refused rather than held in memory.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a whole file below `root` (following links inside the root), through `openat2` where the
/// kernel has it. Only regular files are read, opened without blocking, so a FIFO or device at a
/// collected path cannot stall a collection; files over [`MAX_FILE_BYTES`] are refused.
pub fn read(root: &Path, path: &Path) -> io::Result<Vec<u8>> {
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    if root == Path::new("/") {
        return read_regular(open_plain(&Path::new("/").join(path), flags)?);
    }
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let dir = std::fs::File::open(root)?;
    let how = OpenHow::new()
        .flags(flags)
        .mode(Mode::empty())
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match nix::fcntl::openat2(&dir, rel, how) {
        Ok(fd) => read_regular(std::fs::File::from(fd)),
        // No openat2 (older kernel, or a seccomp filter): the userspace walk.
        Err(Errno::ENOSYS) | Err(Errno::EPERM) => {
            read_regular(open_plain(&resolve(root, path, Last::Follow)?, flags)?)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

fn open_plain(path: &Path, flags: OFlag) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((flags & !OFlag::O_RDONLY).bits())
        .open(path)
}

fn read_regular(f: std::fs::File) -> io::Result<Vec<u8>> {
    if !f.metadata()?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file; not read",
        ));
    }
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("larger than {MAX_FILE_BYTES} bytes; not read"),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/ssh")).unwrap();
        std::fs::create_dir_all(r.join("proc/self")).unwrap();
        std::fs::write(r.join("etc/real"), "inside\n").unwrap();
        std::fs::write(r.join("proc/self/mounts"), "fixture-mounts\n").unwrap();
        // An absolute link means the same path under the root, never the real host's.
        symlink("/etc/real", r.join("etc/abs")).unwrap();
        symlink("/proc/self/mounts", r.join("etc/mtab")).unwrap();
        // `..` chains stop at the root.
        symlink("../../../../../../etc/real", r.join("etc/ssh/dots")).unwrap();
        // A directory link pointing out of the tree, absolutely.
        symlink("/etc", r.join("etc/ssh/hostetc")).unwrap();
        // Loops.
        symlink("/etc/loop2", r.join("etc/loop1")).unwrap();
        symlink("loop1", r.join("etc/loop2")).unwrap();
        symlink("self", r.join("etc/self")).unwrap();
        dir
    }

    fn read_both(root: &Path, p: &str) -> (io::Result<Vec<u8>>, io::Result<Vec<u8>>) {
        let via_openat2 = read(root, Path::new(p));
        let via_walk = resolve(root, Path::new(p), Last::Follow).and_then(std::fs::read);
        (via_openat2, via_walk)
    }

    #[test]
    fn absolute_links_and_dot_dot_stay_inside_the_root() {
        let dir = tree();
        let root = dir.path();
        for p in [
            "/etc/abs",
            "/etc/ssh/dots",
            "/etc/ssh/hostetc/real",
            "/../../etc/real",
        ] {
            let (a, b) = read_both(root, p);
            assert_eq!(a.unwrap(), b"inside\n", "openat2 {p}");
            assert_eq!(b.unwrap(), b"inside\n", "walk {p}");
        }
        let (a, b) = read_both(root, "/etc/mtab");
        assert_eq!(a.unwrap(), b"fixture-mounts\n");
        assert_eq!(b.unwrap(), b"fixture-mounts\n");
        // The host's own /etc/passwd exists, but not below this root.
        let (a, b) = read_both(root, "/etc/ssh/hostetc/passwd");
        assert_eq!(a.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(b.unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn link_loops_end_in_eloop() {
        let dir = tree();
        for p in ["/etc/loop1", "/etc/self", "/etc/self/x"] {
            let (a, b) = read_both(dir.path(), p);
            assert_eq!(
                a.unwrap_err().raw_os_error(),
                Some(Errno::ELOOP as i32),
                "{p}"
            );
            assert_eq!(
                b.unwrap_err().raw_os_error(),
                Some(Errno::ELOOP as i32),
                "{p}"
            );
        }
    }

    #[test]
    fn no_follow_keeps_the_last_link_but_resolves_its_folder() {
        let dir = tree();
        let root = dir.path();
        let p = resolve(root, Path::new("/etc/ssh/hostetc/abs"), Last::NoFollow).unwrap();
        assert_eq!(p, root.join("etc/abs"));
        assert!(p.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(
            resolve(root, Path::new("/etc/abs"), Last::Follow).unwrap(),
            root.join("etc/real")
        );
        // Missing parts are kept by name.
        assert_eq!(
            resolve(root, Path::new("/etc/nope/../x/y"), Last::Follow).unwrap(),
            root.join("etc/x/y")
        );
    }

    #[test]
    fn fifos_and_oversized_files_are_refused_without_blocking() {
        let dir = tree();
        let root = dir.path();
        nix::unistd::mkfifo(&root.join("etc/pipe"), Mode::from_bits_truncate(0o644)).unwrap();
        symlink("/etc/pipe", root.join("etc/to-pipe")).unwrap();
        let big = std::fs::File::create(root.join("etc/big")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        std::fs::write(root.join("etc/edge"), vec![b'x'; 4096]).unwrap();
        // Opening a FIFO for reading would wait for a writer forever; each of these returns.
        for (r, p) in [
            (root, "/etc/pipe".to_string()),
            (root, "/etc/to-pipe".to_string()),
            (Path::new("/"), root.join("etc/pipe").display().to_string()),
        ] {
            let err = read(r, Path::new(&p)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{p}: {err}");
        }
        let err = read(root, Path::new("/etc/big")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{err}");
        assert_eq!(read(root, Path::new("/etc/edge")).unwrap().len(), 4096);
    }

    #[test]
    fn the_real_root_is_used_as_is() {
        assert_eq!(
            resolve(Path::new("/"), Path::new("/etc/passwd"), Last::Follow).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(
            !read(Path::new("/"), Path::new("/etc/passwd"))
                .unwrap()
                .is_empty()
        );
    }
}
