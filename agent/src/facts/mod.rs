//! Compliance fact collectors, one file per kind of fact. Every collector reads below a root
//! directory (`/` in production, a fixture tree in tests): with another root, nothing is read from
//! the real host and no host command is run. A collector that fails reports an error for its part;
//! the others still deliver.
//!
//! Collectors only read. They must not change the host (that is `remediate/`'s job).

mod accounts;
mod audit;
mod banners;
mod boot;
mod conf;
mod coredump;
mod cron_access;
mod files;
mod firewall;
mod logging;
mod login_defs;
mod mac;
mod modules;
mod mounts;
mod os;
mod packages;
mod pam;
mod processes;
mod redhat;
pub(crate) mod root;
mod shell;
mod sockets;
mod sshd;
mod sudoers;
mod sysctl;
mod timesync;
mod units;
pub mod walk;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rampart_proto::v1::{CollectorError, CollectorTiming, FactReport, Truncation};

/// Most entries a report keeps per collector. Far above real hosts (a busy server has a few
/// thousand packages and processes), low enough that a report stays well inside the 4 MiB
/// message limit; beyond them the collector is marked truncated instead of breaking the session.
pub const LIMITS: [(&str, usize); 8] = [
    ("packages", 30_000),
    ("accounts", 20_000),
    ("groups", 20_000),
    ("sockets", 20_000),
    ("processes", 10_000),
    ("units", 10_000),
    ("sysctl", 20_000),
    ("mounts", 5_000),
];

/// Encoded size of each collector's part of a report, to say which one made it too large.
pub fn sizes(r: &FactReport) -> Vec<(&'static str, usize)> {
    use prost::Message;
    fn sum<T: Message>(items: &[T]) -> usize {
        items.iter().map(|i| i.encoded_len() + 3).sum()
    }
    vec![
        ("os", r.os.as_ref().map_or(0, Message::encoded_len)),
        ("packages", sum(&r.packages)),
        ("accounts", sum(&r.accounts) + sum(&r.groups)),
        ("sockets", sum(&r.sockets)),
        ("processes", sum(&r.processes)),
        ("units", sum(&r.units)),
        ("sshd", r.sshd.as_ref().map_or(0, Message::encoded_len)),
        (
            "sysctl",
            r.sysctl.iter().map(|(k, v)| k.len() + v.len() + 6).sum(),
        ),
        (
            "kernel_modules",
            r.kernel_modules.as_ref().map_or(0, Message::encoded_len),
        ),
        ("mounts", sum(&r.mounts)),
        ("files", sum(&r.files)),
        ("pam", r.pam.as_ref().map_or(0, Message::encoded_len)),
        (
            "login_defs",
            r.login_defs.as_ref().map_or(0, Message::encoded_len),
        ),
        ("sudo", r.sudo.as_ref().map_or(0, Message::encoded_len)),
        ("cron_access", sum(&r.cron_access)),
        ("audit", r.audit.as_ref().map_or(0, Message::encoded_len)),
        (
            "logging",
            r.logging.as_ref().map_or(0, Message::encoded_len),
        ),
        (
            "time_sync",
            r.time_sync.as_ref().map_or(0, Message::encoded_len),
        ),
        ("mac", r.mac.as_ref().map_or(0, Message::encoded_len)),
        ("boot", r.boot.as_ref().map_or(0, Message::encoded_len)),
        (
            "core_dumps",
            r.core_dumps.as_ref().map_or(0, Message::encoded_len),
        ),
        (
            "firewall",
            r.firewall.as_ref().map_or(0, Message::encoded_len),
        ),
        ("banners", sum(&r.banners)),
        (
            "file_walk",
            r.file_walk.as_ref().map_or(0, Message::encoded_len),
        ),
        ("shell", r.shell.as_ref().map_or(0, Message::encoded_len)),
        ("redhat", r.redhat.as_ref().map_or(0, Message::encoded_len)),
    ]
}

/// Cuts every list of `report` to its limit in [`LIMITS`], recording what was cut.
pub fn bound(report: &mut FactReport) {
    fn cut<T>(list: &mut Vec<T>, limit: usize, name: &str, out: &mut Vec<Truncation>) {
        if list.len() > limit {
            out.push(Truncation {
                collector: name.into(),
                kept: limit as u64,
                total: list.len() as u64,
            });
            list.truncate(limit);
        }
    }
    let limit = |name: &str| {
        LIMITS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| *l)
            .unwrap_or(usize::MAX)
    };
    let mut t = Vec::new();
    cut(&mut report.packages, limit("packages"), "packages", &mut t);
    cut(&mut report.accounts, limit("accounts"), "accounts", &mut t);
    cut(&mut report.groups, limit("groups"), "accounts", &mut t);
    cut(&mut report.sockets, limit("sockets"), "sockets", &mut t);
    cut(
        &mut report.processes,
        limit("processes"),
        "processes",
        &mut t,
    );
    cut(&mut report.units, limit("units"), "units", &mut t);
    cut(&mut report.mounts, limit("mounts"), "mounts", &mut t);
    if report.sysctl.len() > limit("sysctl") {
        let total = report.sysctl.len();
        let mut keys: Vec<String> = report.sysctl.keys().cloned().collect();
        keys.sort();
        for k in keys.split_off(limit("sysctl")) {
            report.sysctl.remove(&k);
        }
        t.push(Truncation {
            collector: "sysctl".into(),
            kept: limit("sysctl") as u64,
            total: total as u64,
        });
    }
    report.truncated = t;
}

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

    /// `path` (absolute, as on the host) below the root, every symbolic link on the way resolved
    /// inside the root (an absolute link means that path under the root; see `root.rs`). The
    /// last component is followed too. Fails on a link loop.
    pub fn path(&self, path: impl AsRef<Path>) -> std::io::Result<PathBuf> {
        root::resolve(&self.root, path.as_ref(), root::Last::Follow)
    }

    /// Like [`FactSource::path`], but a link in the last component is kept (for its metadata).
    pub fn path_nofollow(&self, path: impl AsRef<Path>) -> std::io::Result<PathBuf> {
        root::resolve(&self.root, path.as_ref(), root::Last::NoFollow)
    }

    /// Lists a directory below the root: the host paths (as on the host, not below the root) of
    /// its entries, sorted. A missing directory is an empty list.
    pub fn list(&self, dir: &str) -> Vec<String> {
        let Ok(entries) = self.path(dir).and_then(std::fs::read_dir) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .flatten()
            .map(|e| {
                format!(
                    "{}/{}",
                    dir.trim_end_matches('/'),
                    e.file_name().to_string_lossy()
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Whether tools may read the root's own files where no parser is built in (`rpm --dbpath`
    /// on the root's rpm database): below a fact root always, since they read only the tree; on
    /// the real root only where host commands may run.
    pub fn tree_tools_allowed(&self) -> bool {
        self.run_commands || self.root != Path::new("/")
    }

    /// Whether commands of the real host may be run.
    pub fn commands_allowed(&self) -> bool {
        self.run_commands && self.root == Path::new("/")
    }

    /// Reads a text file below the root (links resolved inside it).
    pub fn read(&self, path: impl AsRef<Path>) -> std::io::Result<String> {
        String::from_utf8(self.read_bytes(path)?)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Reads a file below the root (links resolved inside it).
    pub fn read_bytes(&self, path: impl AsRef<Path>) -> std::io::Result<Vec<u8>> {
        root::read(&self.root, path.as_ref())
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

/// Runs the first of `programs` that exists with `args`; its standard output when it succeeds.
/// Only for the real host (callers check [`FactSource::commands_allowed`]).
fn run_command(programs: &[&str], args: &[&str]) -> Option<String> {
    let program = programs.iter().find(|p| Path::new(p).exists())?;
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The name of `uid` among `accounts`, or the number when it has none.
fn owner_name(accounts: &[rampart_proto::v1::Account], uid: u32) -> String {
    accounts
        .iter()
        .find(|a| a.uid == uid)
        .map(|a| a.name.clone())
        .unwrap_or_else(|| uid.to_string())
}

/// The name of `gid` among `groups`, or the number when it has none.
fn group_name(groups: &[rampart_proto::v1::Group], gid: u32) -> String {
    groups
        .iter()
        .find(|g| g.gid == gid)
        .map(|g| g.name.clone())
        .unwrap_or_else(|| gid.to_string())
}

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
    run("pam", &mut report, &|r| {
        pam::collect(source).map(|v| r.pam = Some(v))
    });
    run("login_defs", &mut report, &|r| {
        login_defs::collect(source).map(|v| r.login_defs = Some(v))
    });
    run("sudo", &mut report, &|r| {
        sudoers::collect(source).map(|v| r.sudo = Some(v))
    });
    run("cron_access", &mut report, &|r| {
        cron_access::collect(source, &r.accounts, &r.groups).map(|v| r.cron_access = v)
    });
    run("audit", &mut report, &|r| {
        audit::collect(source).map(|v| r.audit = Some(v))
    });
    run("logging", &mut report, &|r| {
        logging::collect(source).map(|v| r.logging = Some(v))
    });
    run("time_sync", &mut report, &|r| {
        timesync::collect(source).map(|v| r.time_sync = Some(v))
    });
    run("mac", &mut report, &|r| {
        mac::collect(source).map(|v| r.mac = Some(v))
    });
    run("boot", &mut report, &|r| {
        boot::collect(source).map(|v| r.boot = Some(v))
    });
    run("core_dumps", &mut report, &|r| {
        coredump::collect(source).map(|v| r.core_dumps = Some(v))
    });
    run("firewall", &mut report, &|r| {
        firewall::collect(source).map(|v| r.firewall = Some(v))
    });
    run("banners", &mut report, &|r| {
        banners::collect(source).map(|v| r.banners = v)
    });
    run("file_walk", &mut report, &|r| {
        walk::collect(source, &r.mounts, &r.accounts, &r.groups).map(|v| r.file_walk = Some(v))
    });
    run("shell", &mut report, &|r| {
        shell::collect(source).map(|v| r.shell = Some(v))
    });
    run("redhat", &mut report, &|r| {
        redhat::collect(source).map(|v| r.redhat = Some(v))
    });
    bound(&mut report);
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
        assert_eq!(r.timings.len(), 26);
    }

    #[test]
    fn links_in_a_fixture_never_reach_the_real_host() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        // As when a host's filesystem is mounted into a container at /host: absolute links.
        testing::write(
            r,
            "srv/accounts",
            "alice:x:1000:1000::/home/alice:/bin/sh\n",
        );
        testing::symlink(r, "etc/passwd", "/srv/accounts");
        testing::write(r, "proc/1/mounts", "tmpfs /fixture-only tmpfs rw 0 0\n");
        testing::symlink(r, "proc/self", "/proc/1");
        testing::symlink(
            r,
            "etc/group",
            "../../../../../../../../../etc/group.fixture",
        );
        testing::write(r, "etc/group.fixture", "staff:x:50:alice\n");
        testing::symlink(r, "etc/ssh", "/srv/ssh");
        testing::write(r, "srv/ssh/sshd_config", "Include /etc/ssh/conf.d/*.conf\n");
        testing::write(r, "srv/ssh/conf.d/a.conf", "PermitRootLogin no\n");
        let report = collect(
            &FactSource::fixture(r),
            &[
                "/etc/passwd".to_string(),
                "/etc/ssh/sshd_config".to_string(),
            ],
        );
        let names: Vec<&str> = report.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["alice"], "{:?}", report.errors);
        assert!(report.groups.iter().all(|g| g.name == "staff"));
        let mounts: Vec<&str> = report
            .mounts
            .iter()
            .map(|m| m.mount_point.as_str())
            .collect();
        assert_eq!(mounts, ["/fixture-only"]);
        let sshd = report.sshd.as_ref().unwrap();
        assert_eq!(
            sshd.files,
            ["/etc/ssh/sshd_config", "/etc/ssh/conf.d/a.conf"]
        );
        assert_eq!(sshd.settings["permitrootlogin"], "no");
        // File metadata: the link itself is reported, and the folder link is followed in the root.
        assert_eq!(
            report
                .files
                .iter()
                .find(|f| f.path == "/etc/passwd")
                .unwrap()
                .kind,
            "symlink"
        );
        let cfg = report
            .files
            .iter()
            .find(|f| f.path == "/etc/ssh/sshd_config")
            .unwrap();
        assert!(cfg.exists && cfg.kind == "file", "{cfg:?}");
        // A self-referencing link is an error for its collector, not the host's file.
        let looped = tempfile::tempdir().unwrap();
        testing::symlink(looped.path(), "etc/passwd", "/etc/passwd");
        let report = collect(&FactSource::fixture(looped.path()), &[]);
        assert!(report.accounts.is_empty());
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.collector == "accounts" && e.message.contains("symbolic links")),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn huge_hosts_are_truncated_visibly_and_oversized_results_become_errors() {
        use rampart_proto::v1::{Account, CommandResult, Process, command_result};
        // 120,000 accounts in /etc/passwd: the report keeps 20,000 and says so.
        let dir = tempfile::tempdir().unwrap();
        let passwd: String = (0..120_000)
            .map(|i| format!("user{i}:x:{}:100::/home/user{i}:/bin/sh\n", 10_000 + i))
            .collect();
        testing::write(dir.path(), "etc/passwd", &passwd);
        let r = collect(&FactSource::fixture(dir.path()), &[]);
        assert_eq!(r.accounts.len(), 20_000);
        assert_eq!(
            r.truncated,
            [Truncation {
                collector: "accounts".into(),
                kept: 20_000,
                total: 120_000
            }]
        );
        let ok = crate::session::bounded(CommandResult {
            command_id: "c1".into(),
            outcome: Some(command_result::Outcome::Facts(r)),
        });
        assert!(matches!(
            ok.outcome,
            Some(command_result::Outcome::Facts(_))
        ));

        // Still too large after the limits: an error naming the size and the collector.
        let big = FactReport {
            processes: (0..2_000)
                .map(|pid| Process {
                    pid,
                    cmdline: "x".repeat(4096),
                    ..Default::default()
                })
                .collect(),
            accounts: vec![Account::default(); 10],
            ..Default::default()
        };
        let r = crate::session::bounded(CommandResult {
            command_id: "c2".into(),
            outcome: Some(command_result::Outcome::Facts(big)),
        });
        let Some(command_result::Outcome::Error(e)) = r.outcome else {
            panic!("{r:?}")
        };
        assert!(
            e.contains("over the") && e.contains("largest collectors: processes"),
            "{e}"
        );
        assert_eq!(r.command_id, "c2");
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
