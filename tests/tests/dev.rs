//! `rampart dev`, the README's first command: a coordinator and a local agent from one binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rampart_e2e::https::{Https, request};
use rampart_e2e::{WAIT, binaries, eventually};
use serde_json::Value;

/// Ends `rampart dev` by its pid if the test fails half-way.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.0 as i32);
        if kill(pid, None).is_ok() {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}

#[test]
fn rampart_dev_runs_a_coordinator_and_an_agent_and_stops_both_on_sigterm() {
    let bins = binaries();
    let mut dev = Command::new(&bins.rampart)
        .args(["dev", "--heartbeat-interval", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = dev.stdout.take().unwrap();
    let _guard = KillOnDrop(dev.id());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut env = Vec::new();
    let mut state_dir = String::new();
    let mut login_link = String::new();
    while env.len() < 3 || state_dir.is_empty() {
        let line = rx
            .recv_timeout(WAIT)
            .expect("rampart dev prints its export lines");
        if let Some(link) = line.trim().strip_prefix("log in once with: ") {
            login_link = link.to_string();
        }
        if let Some(kv) = line.trim().strip_prefix("export ") {
            let (k, v) = kv.split_once('=').unwrap();
            env.push((k.to_string(), v.to_string()));
        }
        if let Some(rest) = line.strip_prefix("State: ") {
            state_dir = rest.split(' ').next().unwrap().to_string();
        }
    }
    let agents = eventually(WAIT, "the local agent online", || {
        let out = Command::new(&bins.rampart)
            .args(["agents", "ls", "-o", "json"])
            .envs(env.iter().cloned())
            .output()
            .unwrap();
        let agents: Vec<Value> = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        match agents.first() {
            Some(a) if a["state"] == "online" => Ok(agents),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0]["labels"]["env"], "dev");
    // Rampart's own threat model is applied, its risks assessed from this fleet.
    let out = Command::new(&bins.rampart)
        .args(["threats", "ls", "-o", "json"])
        .envs(env.iter().cloned())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (model["model"].as_str(), model["version"].as_u64()),
        (Some("rampart"), Some(1))
    );
    assert!(model["risks"].as_array().unwrap().len() >= 5, "{model:#}");

    // The web console is on, and the link it printed logs in once.
    let (addr, path) = login_link
        .strip_prefix("https://")
        .and_then(|rest| rest.split_once('/'))
        .expect("rampart dev prints a console login link");
    let ca = env
        .iter()
        .find(|(k, _)| k == "RAMPART_CA")
        .unwrap()
        .1
        .clone();
    let client = Https::new(addr.parse().unwrap(), &std::fs::read(ca).unwrap()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses: Vec<(u16, bool)> = rt.block_on(async {
        let mut out = vec![];
        for _ in 0..2 {
            let mut c = client.connect().await.unwrap();
            let resp = c
                .send_request(request("GET", &format!("/{path}"), addr, None, "").unwrap())
                .await
                .unwrap();
            out.push((
                resp.status().as_u16(),
                resp.headers().contains_key("set-cookie"),
            ));
        }
        out
    });
    assert_eq!(statuses, [(200, true), (401, false)], "the link works once");

    kill(Pid::from_raw(dev.id() as i32), Signal::SIGTERM).unwrap();
    let status = eventually(Duration::from_secs(20), "rampart dev to stop", || {
        dev.try_wait().unwrap().ok_or("running".to_string())
    });
    assert!(status.success(), "{status:?}");
    assert!(
        !std::path::Path::new(&state_dir).exists(),
        "the temporary state dir {state_dir} is removed"
    );
}
