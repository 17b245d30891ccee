//! End-to-end harness: starts the real `rampart` and `rampart-agent` binaries, a coordinator in a
//! temporary data dir and agents either on loopback or each in its own network-namespace "host"
//! (a veth pair on a bridge, addresses in 198.18.0.0/15). It waits with [`eventually`] instead of
//! sleeping, and when a test fails it prints every process's command line and log.
//!
//! Everything it creates is named `rpt-<pid>-…` / `rp[bv]<pid hex>…` and removed on drop; at start
//! it removes what earlier, killed runs left behind. Processes are ended only by their own pid.

pub mod browser;
pub mod chaos;
pub mod https;
pub mod netns;
pub mod postgres;
pub mod prometheus;
pub mod sim;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

pub use netns::Network;

/// How long `eventually` waits by default: generous for a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(30);
/// Heartbeat used by test agents, so offline detection takes ~1.5 s instead of 30 s.
pub const TEST_HEARTBEAT: &str = "500ms";

/// Polls `check` until it returns `Ok`, or panics with its last error after `timeout`.
pub fn eventually<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    let mut last = String::from("never checked");
    while start.elapsed() < timeout {
        match check() {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}: {last}");
}

/// Paths of the binaries under test.
#[derive(Debug)]
pub struct Binaries {
    pub rampart: PathBuf,
    pub agent: PathBuf,
}

/// Builds (once per test process) and locates the binaries, in the profile the tests run in;
/// `RAMPART_BINARIES=DIR` uses those in DIR instead, unbuilt.
pub fn binaries() -> &'static Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| {
        // Binaries built elsewhere (e.g. an older commit's, to compare a bench before and after).
        if let Some(dir) = std::env::var_os("RAMPART_BINARIES") {
            let dir = PathBuf::from(dir);
            return Binaries {
                rampart: dir.join("rampart"),
                agent: dir.join("rampart-agent"),
            };
        }
        let exe = std::env::current_exe().expect("test executable path");
        // Tests run from target/<profile>/deps, bench binaries from target/<profile>.
        let mut profile_dir = exe.parent().expect("executable dir").to_path_buf();
        if profile_dir.file_name().is_some_and(|n| n == "deps") {
            profile_dir.pop();
        }
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        // Under `cargo test` CARGO names the cargo that runs us; run directly (a bench binary),
        // the rustup proxy on PATH picks the project's toolchain.
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.args(["build", "--quiet"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if release {
            // The benchmarks measure the binaries as shipped: only their own dependencies.
            cmd.args([
                "--release",
                "-p",
                "rampart-coordinator",
                "-p",
                "rampart-agent",
                "--bins",
            ]);
        } else {
            // Under `cargo test --workspace` (CI, the README): the same packages and targets, so
            // the same features, so the binaries reuse every library the tests were built with
            // instead of rebuilding them all with another feature set (minutes on 2 cores).
            cmd.args(["--workspace", "--bins", "--tests"]);
        }
        if let Some(target_dir) = profile_dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target_dir);
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "building the binaries failed");
        Binaries {
            rampart: profile_dir.join("rampart"),
            agent: profile_dir.join("rampart-agent"),
        }
    })
}

/// Whether namespace tests can run here; under `CI=true` they must, so this panics instead.
/// Copies a fixture tree (files, folders and symbolic links as links), so a test can change it.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&e.path(), &dest);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), dest).unwrap();
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

pub fn netns_available() -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("not running as root")
    } else if Command::new("ip")
        .arg("-V")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        Some("the `ip` tool (iproute2) is missing")
    } else {
        None
    };
    match reason {
        None => true,
        Some(r) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("network-namespace tests cannot be skipped under CI=true: {r}")
        }
        Some(r) => {
            eprintln!("SKIPPED: network-namespace test needs root and iproute2: {r}");
            false
        }
    }
}

/// A process started by the harness; its output goes to a log file.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub cmdline: String,
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, sig: Signal) {
        let _ = kill(self.pid(), sig);
    }

    /// Exit status if it has exited.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let name = self.name.clone();
        eventually(timeout, &format!("{name} to exit"), || {
            self.try_exit().ok_or_else(|| "still running".into())
        })
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL by pid and reap.
    pub fn kill(&mut self) {
        if self.try_exit().is_none() {
            self.signal(Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An enrolled agent's state dir and where it runs.
#[derive(Debug, Clone)]
pub struct AgentHandle {
    pub id: String,
    pub state_dir: PathBuf,
    /// Namespace the agent runs in, if any.
    pub netns: Option<String>,
}

/// One test's world: a temp dir, a coordinator, agents, and optionally a namespace network.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub admin_token: String,
    pub ca_fingerprint: String,
    pub network: Option<Network>,
    /// PostgreSQL the coordinator stores in (`--database-url`); None: SQLite in the data dir.
    database_url: Mutex<Option<String>>,
    procs: Mutex<BTreeMap<String, Proc>>,
    dumped: Mutex<Vec<(String, String, String)>>,
}

fn free_port(ip: std::net::IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Harness {
    /// A coordinator on loopback.
    pub fn start() -> Self {
        Self::start_on(None, None)
    }

    /// A coordinator on loopback that stores in PostgreSQL.
    pub fn start_on_postgres(db: &postgres::PgDatabase) -> Self {
        Self::start_on(None, Some(db.url.clone()))
    }

    /// A coordinator on a bridge with `hosts` namespace hosts, or `None` when namespaces are not
    /// available outside CI (the test should return early).
    pub fn start_with_hosts(hosts: usize) -> Option<Self> {
        if !netns_available() {
            return None;
        }
        Some(Self::start_on(Some(Network::create(hosts)), None))
    }

    /// Namespace hosts and a coordinator that stores in PostgreSQL (see
    /// [`Harness::start_with_hosts`]).
    pub fn start_with_hosts_on_postgres(hosts: usize, db: &postgres::PgDatabase) -> Option<Self> {
        if !netns_available() {
            return None;
        }
        Some(Self::start_on(
            Some(Network::create(hosts)),
            Some(db.url.clone()),
        ))
    }

    /// Starts another coordinator of the same deployment under the process name `name`: the
    /// same database and CA (its `ca.pem` and `ca.key` copied into a data dir of its own), on
    /// the harness's address with a port of its own. Returns its address.
    pub fn start_peer(&self, name: &str) -> SocketAddr {
        let addr = SocketAddr::new(self.addr.ip(), free_port(self.addr.ip()));
        self.start_peer_at(name, addr);
        addr
    }

    /// Starts (or restarts) a peer coordinator on `addr` (see [`Harness::start_peer`]).
    pub fn start_peer_at(&self, name: &str, addr: SocketAddr) {
        use std::os::unix::fs::DirBuilderExt;
        let data_dir = self.dir.path().join(name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data_dir)
            .expect("peer data dir");
        for file in ["ca.pem", "ca.key"] {
            std::fs::copy(self.data_dir.join(file), data_dir.join(file)).expect("copy the CA");
        }
        let url = self
            .database_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .expect("peer coordinators share a PostgreSQL database");
        let args = [
            "serve".to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen".into(),
            addr.to_string(),
        ];
        self.spawn(
            name,
            None,
            &binaries().rampart,
            &args,
            &[("RAMPART_DATABASE_URL", url.as_str())],
        );
        eventually(WAIT, "the peer coordinator to listen", || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .map(drop)
                .map_err(|e| e.to_string())
        });
    }

    /// Runs `rampart` with the admin token against the coordinator at `addr` (a peer).
    pub fn rampart_at(&self, addr: SocketAddr, args: &[&str]) -> Output {
        let mut cmd = self.rampart_command(args);
        cmd.env("RAMPART_ADDR", format!("https://{addr}"));
        cmd.output().expect("run rampart")
    }

    fn start_on(network: Option<Network>, database_url: Option<String>) -> Self {
        // Build first, so a build failure is reported as such.
        binaries();
        let dir = tempfile::Builder::new()
            .prefix("rampart-e2e-")
            .tempdir()
            .expect("temp dir");
        let ip = network
            .as_ref()
            .map(|n| n.gateway.into())
            .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
        let addr = SocketAddr::new(ip, free_port(ip));
        let data_dir = dir.path().join("coordinator");
        let mut h = Harness {
            dir,
            addr,
            data_dir: data_dir.clone(),
            admin_token: String::new(),
            ca_fingerprint: String::new(),
            network,
            database_url: Mutex::new(database_url),
            procs: Mutex::new(BTreeMap::new()),
            dumped: Mutex::new(Vec::new()),
        };
        h.start_coordinator();
        // The coordinator writes its token before it listens, but a connection can succeed
        // before it listens (a TCP self-connect on an ephemeral port): wait for the file itself.
        let token_file = data_dir.join("admin.token");
        h.admin_token = eventually(WAIT, "the initial admin token", || {
            std::fs::read_to_string(&token_file)
                .map(|t| t.trim().to_string())
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    if t.is_empty() {
                        Err("empty".into())
                    } else {
                        Ok(t)
                    }
                })
        });
        let out = h.rampart(&[
            "ca",
            "fingerprint",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "ca fingerprint: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        h.ca_fingerprint = String::from_utf8_lossy(&out.stdout).trim().to_string();
        h
    }

    /// Starts (or restarts) the coordinator on the harness's address and data dir.
    pub fn start_coordinator(&self) {
        self.start_coordinator_with(&[]);
    }

    /// Like [`Harness::start_coordinator`], with extra `serve` arguments.
    pub fn start_coordinator_with(&self, extra: &[&str]) {
        let mut args = vec![
            "serve".to_string(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--listen".into(),
            self.addr.to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        // In the environment, as a deployment passes the password, so it is not on the
        // command line that a failed test prints.
        let url = self
            .database_url
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let env: Vec<(&str, &str)> = url
            .as_deref()
            .map(|u| ("RAMPART_DATABASE_URL", u))
            .into_iter()
            .collect();
        self.spawn("coordinator", None, &binaries().rampart, &args, &env);
        let addr = self.addr;
        eventually(WAIT, "the coordinator to listen", || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200))
                .map(drop)
                .map_err(|e| e.to_string())
        });
    }

    /// From the next (re)start on, the coordinator stores in this PostgreSQL database.
    pub fn use_database(&self, url: &str) {
        *self.database_url.lock().unwrap_or_else(|p| p.into_inner()) = Some(url.to_string());
    }

    /// The coordinator's address as agents and the CLI use it.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Spawns a process whose output goes to `<dir>/<name>.log`.
    pub fn spawn(
        &self,
        name: &str,
        netns: Option<&str>,
        program: &Path,
        args: &[String],
        env: &[(&str, &str)],
    ) {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(program);
                c
            }
            None => Command::new(program),
        };
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log"))
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let cmdline = format!(
            "{}{} {}",
            netns
                .map(|n| format!("ip netns exec {n} "))
                .unwrap_or_default(),
            program.display(),
            args.join(" ")
        );
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        let proc = Proc {
            name: name.to_string(),
            cmdline,
            log,
            child,
        };
        let old = self.procs.lock().unwrap().insert(name.to_string(), proc);
        if let Some(mut old) = old {
            old.kill();
            self.dumped.lock().unwrap().push((
                old.name.clone(),
                old.cmdline.clone(),
                old.log_text(),
            ));
        }
    }

    /// Runs `f` on the named process.
    pub fn with_proc<T>(&self, name: &str, f: impl FnOnce(&mut Proc) -> T) -> T {
        let mut procs = self.procs.lock().unwrap();
        let p = procs
            .get_mut(name)
            .unwrap_or_else(|| panic!("no process {name}"));
        f(p)
    }

    /// Runs `rampart` with the harness's address, CA and admin token.
    pub fn rampart(&self, args: &[&str]) -> Output {
        self.rampart_as(Some(&self.admin_token), args)
    }

    /// Runs `rampart` with a given token (or none).
    pub fn rampart_as(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = self.rampart_command_as(token, args);
        cmd.output().expect("run rampart")
    }

    /// `rampart` with the admin token, to start (spawn) rather than run to its end.
    pub fn rampart_command(&self, args: &[&str]) -> Command {
        self.rampart_command_as(Some(&self.admin_token), args)
    }

    fn rampart_command_as(&self, token: Option<&str>, args: &[&str]) -> Command {
        let mut cmd = Command::new(&binaries().rampart);
        cmd.args(args)
            .env("RAMPART_ADDR", self.url())
            .env("RAMPART_CA", self.data_dir.join("ca.pem"))
            .env_remove("RAMPART_TOKEN")
            .env_remove("RUST_LOG");
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            cmd.env("RAMPART_TOKEN", t);
        }
        cmd
    }

    /// Runs `rampart` and returns stdout, panicking with stderr when it fails.
    pub fn rampart_ok(&self, args: &[&str]) -> String {
        let out = self.rampart(args);
        assert!(
            out.status.success(),
            "rampart {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `rampart agents ls -o json` as parsed JSON.
    pub fn agents(&self) -> Vec<Value> {
        let out = self.rampart_ok(&["agents", "ls", "-o", "json"]);
        serde_json::from_str::<Value>(&out)
            .expect("agents JSON")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The state of one agent in `agents ls`.
    pub fn agent_state(&self, id: &str) -> Option<String> {
        self.agents()
            .into_iter()
            .find(|a| a["id"] == id)
            .and_then(|a| a["state"].as_str().map(str::to_string))
    }

    /// Creates a join token with `labels` and `uses`.
    pub fn join_token(&self, labels: &[&str], uses: u32, ttl: &str) -> String {
        let mut args = vec!["token", "create", "--ttl", ttl];
        let uses = uses.to_string();
        args.extend(["--uses", uses.as_str()]);
        for l in labels {
            args.extend(["--label", l]);
        }
        self.rampart_ok(&args).trim().to_string()
    }

    /// Runs `rampart-agent enroll` (in `netns` if given) and returns its output.
    pub fn enroll(
        &self,
        name: &str,
        netns: Option<&str>,
        token: &str,
        fingerprint: &str,
        labels: &[&str],
    ) -> Output {
        let state_dir = self.dir.path().join(name);
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&binaries().agent);
                c
            }
            None => Command::new(&binaries().agent),
        };
        cmd.args([
            "enroll",
            "--coordinator",
            &self.url(),
            "--ca-fingerprint",
            fingerprint,
            "--state-dir",
        ])
        .arg(&state_dir)
        .env("RAMPART_JOIN_TOKEN", token)
        .env_remove("RUST_LOG");
        for l in labels {
            cmd.args(["--label", l]);
        }
        cmd.output().expect("run rampart-agent enroll")
    }

    /// Enrols an agent (must succeed) and returns its handle.
    pub fn enroll_ok(
        &self,
        name: &str,
        netns: Option<&str>,
        token: &str,
        labels: &[&str],
    ) -> AgentHandle {
        let out = self.enroll(name, netns, token, &self.ca_fingerprint.clone(), labels);
        assert!(
            out.status.success(),
            "enroll {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let state_dir = self.dir.path().join(name);
        let identity: Value = serde_json::from_slice(
            &std::fs::read(state_dir.join("agent.json")).expect("agent.json"),
        )
        .expect("json");
        AgentHandle {
            id: identity["agent_id"].as_str().expect("agent_id").to_string(),
            state_dir,
            netns: netns.map(str::to_string),
        }
    }

    /// Starts `rampart-agent run` for an enrolled agent, under the process name `name`.
    pub fn run_agent(&self, name: &str, agent: &AgentHandle, extra: &[&str]) {
        let mut args = vec![
            "run".to_string(),
            "--state-dir".into(),
            agent.state_dir.display().to_string(),
            "--heartbeat-interval".into(),
            TEST_HEARTBEAT.into(),
            "--reconnect-max".into(),
            "1s".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        self.spawn(name, agent.netns.as_deref(), &binaries().agent, &args, &[]);
    }

    /// Runs `sql` on the coordinator's database from outside, as an operator with `sqlite3`
    /// would (to tamper with it, or to break it), and returns the first column of the first row
    /// as an integer when there is one.
    pub fn sql(&self, sql: &str) -> Option<i64> {
        let db = self.data_dir.join("rampart.db");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let pool = sqlx::SqlitePool::connect_with(
                sqlx::sqlite::SqliteConnectOptions::new().filename(&db),
            )
            .await
            .expect("open the coordinator's database");
            let row: Option<i64> = sqlx::query_scalar(sql)
                .fetch_optional(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            pool.close().await;
            row
        })
    }

    /// Waits until every id is `online`.
    pub fn wait_online(&self, ids: &[&str]) {
        for id in ids {
            self.wait_state(id, "online", WAIT);
        }
    }

    /// Waits until `agents ls` shows the agent in `state`.
    pub fn wait_state(&self, id: &str, state: &str, timeout: Duration) {
        eventually(timeout, &format!("{id} to be {state}"), || {
            match self.agent_state(id) {
                Some(s) if s == state => Ok(()),
                other => Err(format!("{id} is {other:?}")),
            }
        });
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let mut procs = std::mem::take(&mut *self.procs.lock().unwrap_or_else(|p| p.into_inner()));
        for p in procs.values_mut() {
            p.kill();
        }
        if std::thread::panicking() {
            eprintln!("==== rampart e2e: processes of the failed test ====");
            let dumped =
                std::mem::take(&mut *self.dumped.lock().unwrap_or_else(|p| p.into_inner()));
            for (name, cmdline, log) in dumped {
                eprintln!("---- {name} (replaced): {cmdline}\n{log}");
            }
            for p in procs.values() {
                eprintln!("---- {}: {}\n{}", p.name, p.cmdline, p.log_text());
            }
        }
    }
}
