//! A real browser for the console tests: Debian's Chromium driven by its ChromeDriver over
//! WebDriver (fantoccini). The driver is ours and ended by its pid; every browser session is
//! closed through the driver, which ends that Chromium.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::{WAIT, eventually};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether Chromium and its driver are installed; under `CI=true` their absence fails the test
/// (`.ci/run` installs them), elsewhere the test is skipped with a message.
pub fn available() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI=true: .ci/run installs Debian's chromium and chromium-driver"
    );
    eprintln!(
        "skipped: {CHROMIUM} or {CHROMEDRIVER} is not installed (apt-get install chromium chromium-driver)"
    );
    false
}

/// A running ChromeDriver; sessions are opened with [`Driver::session`].
pub struct Driver {
    child: Child,
    port: u16,
    profiles: tempfile::TempDir,
    sessions: usize,
}

impl Driver {
    pub fn start() -> Self {
        let port = crate::chaos::free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        eventually(WAIT, "chromedriver to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        Self {
            child,
            port,
            profiles: tempfile::tempdir().expect("profile dir"),
            sessions: 0,
        }
    }

    /// A new headless Chromium with its own empty profile (its own cookies). The console's
    /// certificate comes from the coordinator's own CA, which this throw-away profile does not
    /// trust, so certificate errors are ignored here (and only here).
    pub async fn session(&mut self) -> Client {
        self.sessions += 1;
        let profile = self.profiles.path().join(format!("p{}", self.sessions));
        let caps = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--ignore-certificate-errors", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
            "acceptInsecureCerts": true,
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!("an object literal")
        };
        // ChromeDriver speaks plain HTTP on loopback: no TLS stack needed for it.
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a chromium session")
    }
}

/// The processes whose parent is `parent`, read from `/proc`.
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    // After "pid (comm) state": the parent's pid; comm may hold spaces.
                    let rest = &stat[stat.rfind(')')? + 1..];
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

impl Drop for Driver {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        // A test that failed half-way did not close its sessions: end the browsers this driver
        // started (its children, by pid) before the driver, or they would outlive the test.
        let browsers = children_of(self.child.id());
        for &b in &browsers {
            let _ = kill(nix::unistd::Pid::from_raw(b), Signal::SIGTERM);
        }
        for _ in 0..30 {
            if browsers
                .iter()
                .all(|b| !std::path::Path::new(&format!("/proc/{b}")).exists())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // Still the driver's children (so still ours): no longer asked.
        for b in children_of(self.child.id()) {
            let _ = kill(nix::unistd::Pid::from_raw(b), Signal::SIGKILL);
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Saves the page as `dir/name.png`.
pub async fn screenshot(c: &Client, dir: &Path, name: &str) -> PathBuf {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::create_dir_all(dir).expect("screenshot dir");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    path
}

/// The text of the first element `css` selects, or an empty string when there is none.
pub async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Whether `css` selects anything on the page.
pub async fn exists(c: &Client, css: &str) -> bool {
    c.find_all(Locator::Css(css))
        .await
        .map(|v| !v.is_empty())
        .unwrap_or(false)
}

/// Waits up to `timeout` for `css`'s text to satisfy `ok`; returns it.
pub async fn wait_text(
    c: &Client,
    css: &str,
    timeout: Duration,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    let until = std::time::Instant::now() + timeout;
    loop {
        let t = text(c, css).await;
        if ok(&t) {
            return t;
        }
        if std::time::Instant::now() > until {
            let source = c.source().await.unwrap_or_default();
            panic!("timed out waiting for {what} ({css}); last text {t:?}; page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the first element `css` selects, finding it again when a live update replaced it
/// between finding and clicking.
pub async fn click(c: &Client, css: &str) {
    let mut last = String::new();
    for _ in 0..20 {
        match c.find(Locator::Css(css)).await {
            Ok(e) => match e.click().await {
                Ok(()) => return,
                Err(err) => last = err.to_string(),
            },
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot click {css}: {last}");
}
