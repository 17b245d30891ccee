//! Compliance fact collectors, one file per kind of fact. Every collector reads below a root
//! directory (`/` in production, a fixture tree in tests): with another root, nothing is read from
//! the real host and no host command is run. A collector that fails reports an error for its part;
//! the others still deliver.
//!
//! Collectors only read. They must not change the host (that is `remediate/`'s job).

mod accounts;
mod files;
mod modules;
mod mounts;
mod os;
mod packages;
mod processes;
mod sockets;
mod sshd;
mod sysctl;
mod units;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rampart_proto::v1::{CollectorError, CollectorTiming, FactReport};

/// Where and how facts are collected.
#[derive(Debug, Clone)]
pub struct FactSource {
    /// Everything is read below this directory.
    pub root: PathBuf,
    /// Whether host commands (`sshd -T`, `systemctl`, `rpm`) may run: only on the real root, and
    /// only if the agent's config allows it.
    pub run_commands: bool,
}

impl FactSource {
    /// Reads the real host.
    pub fn host() -> Self {
        Self {
            root: PathBuf::from("/"),
            run_commands: true,
        }
    }

    /// Reads a fixture tree; never touches the real host.
    pub fn fixture(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            run_commands: false,
        }
    }

    /// `path` (absolute, as on the host) below the root.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let rel = path.as_ref().strip_prefix("/").unwrap_or(path.as_ref());
        self.root.join(rel)
    }

    /// Whether commands of the real host may be run.
    pub fn commands_allowed(&self) -> bool {
        self.run_commands && self.root == Path::new("/")
    }

    /// Reads a text file below the root.
    pub fn read(&self, path: impl AsRef<Path>) -> std::io::Result<String> {
        std::fs::read_to_string(self.path(path))
    }

    /// Reads a file that may be missing: `Ok(None)` then.
    pub fn read_optional(&self, path: impl AsRef<Path>) -> std::io::Result<Option<String>> {
        match self.read(path) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What went wrong in one collector.
pub type CollectResult<T> = Result<T, String>;

fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Runs every collector and assembles the report.
pub fn collect(source: &FactSource, file_paths: &[String]) -> FactReport {
    let mut report = FactReport {
        collected_unix_ms: rampart_common::time::now_ms(),
        fact_root: source.root.display().to_string(),
        ..Default::default()
    };
    let run =
        |name: &str, report: &mut FactReport, f: &dyn Fn(&mut FactReport) -> CollectResult<()>| {
            let start = Instant::now();
            if let Err(message) = f(report) {
                report.errors.push(CollectorError {
                    collector: name.to_string(),
                    message,
                });
            }
            let micros = start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
            report.timings.push(CollectorTiming {
                collector: name.to_string(),
                micros,
            });
        };
    run("os", &mut report, &|r| {
        os::collect(source).map(|v| r.os = Some(v))
    });
    run("packages", &mut report, &|r| {
        packages::collect(source).map(|v| r.packages = v)
    });
    run("accounts", &mut report, &|r| {
        accounts::collect(source).map(|(a, g)| {
            r.accounts = a;
            r.groups = g;
        })
    });
    run("processes", &mut report, &|r| {
        processes::collect(source, &r.accounts).map(|v| r.processes = v)
    });
    run("sockets", &mut report, &|r| {
        sockets::collect(source, &r.processes).map(|v| r.sockets = v)
    });
    run("units", &mut report, &|r| {
        units::collect(source).map(|v| r.units = v)
    });
    run("sshd", &mut report, &|r| {
        sshd::collect(source).map(|v| r.sshd = Some(v))
    });
    run("sysctl", &mut report, &|r| {
        sysctl::collect(source).map(|v| r.sysctl = v)
    });
    run("kernel_modules", &mut report, &|r| {
        modules::collect(source).map(|v| r.kernel_modules = Some(v))
    });
    run("mounts", &mut report, &|r| {
        mounts::collect(source).map(|v| r.mounts = v)
    });
    run("files", &mut report, &|r| {
        files::collect(source, file_paths, &r.accounts, &r.groups).map(|v| r.files = v)
    });
    report
}

#[cfg(test)]
pub(crate) mod testing {
    //! Builds fixture trees for collector tests.
    use std::path::Path;

    pub fn write(root: &Path, path: &str, contents: &str) {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    pub fn symlink(root: &Path, path: &str, target: &str) {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_collector_does_not_lose_the_others() {
        let dir = tempfile::tempdir().unwrap();
        testing::write(
            dir.path(),
            "etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\n",
        );
        // passwd is a directory: the accounts collector fails, the rest still report.
        std::fs::create_dir_all(dir.path().join("etc/passwd")).unwrap();
        let r = collect(&FactSource::fixture(dir.path()), &[]);
        assert_eq!(r.os.as_ref().unwrap().id, "debian");
        assert!(
            r.errors.iter().any(|e| e.collector == "accounts"),
            "{:?}",
            r.errors
        );
        assert_eq!(r.timings.len(), 11);
    }

    #[test]
    fn collecting_this_host_works() {
        let r = collect(&FactSource::host(), &["/etc/passwd".to_string()]);
        assert!(r.os.as_ref().is_some_and(|o| !o.kernel.is_empty()));
        assert!(r.accounts.iter().any(|a| a.uid == 0));
        assert!(r.processes.iter().any(|p| p.pid == std::process::id()));
        assert_eq!(r.files[0].path, "/etc/passwd");
        assert!(r.files[0].exists);
    }
}
