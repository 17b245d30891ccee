//! A real Prometheus server (Debian's `prometheus` package) for the tests that scrape or query
//! one, and a plain-HTTP GET to talk to it and to the coordinator's `/metrics`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::Harness;
use crate::chaos::{file, free_port};

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// Whether `path` (Prometheus or promtool) is here; under `CI=true` it must be (`.ci/run`
/// installs it), outside CI the test says why it skips.
pub fn available(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI=true: .ci/run installs Debian's prometheus package ({path})"
    );
    eprintln!("skipped: {path} is not installed (apt-get install prometheus)");
    false
}

/// A running Prometheus server, killed (it is ours, by its pid) when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Prometheus on loopback with `config` (YAML), its data and log in the test's dir.
pub fn start(h: &Harness, config: &str) -> Server {
    let port = free_port();
    let config = file(h, "prometheus.yml", config);
    let data = h.dir.path().join("prometheus-data");
    let log = std::fs::File::create(h.dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(PROMETHEUS)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", data.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    Server { child, port }
}

/// GET over plain HTTP/1.0 on loopback; the whole response (status line, headers, body).
pub fn get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.read_to_string(&mut body).map_err(|e| e.to_string())?;
    Ok(body)
}

/// The body of an HTTP response.
pub fn body(response: &str) -> &str {
    response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("")
}
