//! Helpers for the chaos tests: a tiny HTTP service, experiment files, reading runs through the
//! CLI, and looking at a namespace host's nftables state.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::netns::{Host, network_state};
use crate::{AgentHandle, Harness, WAIT, eventually};

/// An HTTP server answering every request with `body()` (200), one thread per connection.
pub fn http_server(listener: TcpListener, body: impl Fn() -> String + Send + Sync + 'static) {
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                if s.read(&mut buf).unwrap_or(0) == 0 {
                    return;
                }
                let b = body();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                    b.len()
                );
            });
        }
    });
}

pub fn connects(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Writes an experiment file in the test's dir.
pub fn file(h: &Harness, name: &str, text: &str) -> PathBuf {
    let p = h.dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub fn run_json(h: &Harness, args: &[&str]) -> Value {
    let out = h.rampart(args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn show(h: &Harness, id: &str) -> Value {
    run_json(h, &["experiment", "show", id, "-o", "json"])
}

pub fn active_faults(h: &Harness) -> usize {
    let v: Value =
        serde_json::from_str(&h.rampart_ok(&["fault", "ls", "--active", "-o", "json"])).unwrap();
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["faults"].as_array().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
}

pub fn table_exists(netns: &str) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", netns, "nft", "list", "table", "inet", "rampart",
        ])
        .output()
        .unwrap()
        .status
        .success()
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A coordinator and one namespace host running an agent enrolled with `labels`, online, and
/// the host's nftables and qdisc state before anything happened; None when namespaces are not
/// available outside CI.
pub fn one_host(labels: &[&str]) -> Option<(Harness, Host, AgentHandle, String)> {
    let h = Harness::start_with_hosts(1)?;
    let host = h.network.as_ref()?.hosts[0].clone();
    let before = network_state(&host.netns);
    let token = h.join_token(labels, 1, "10m");
    let a = h.enroll_ok("agent", Some(&host.netns), &token, &[]);
    h.run_agent("agent", &a, &[]);
    h.wait_online(&[&a.id]);
    Some((h, host, a, before))
}

/// Waits until run `id` is finished and returns it.
pub fn wait_finished(h: &Harness, id: &str) -> Value {
    eventually(WAIT, &format!("run {id} to finish"), || {
        let r = show(h, id);
        if r["state"] == "finished" {
            Ok(())
        } else {
            Err(r.to_string())
        }
    });
    show(h, id)
}

/// Writes a game day `name` as `day/plan.yaml`: a 1 s CPU warm-up on the `role=db` hosts, an
/// approval gate, then a 10-minute partition of port 5432 on them (a stage marked `parallel`
/// when asked); each experiment's hypothesis is that the coordinator accepts connections.
/// Returns the plan's path.
pub fn gated_game_day(h: &Harness, name: &str, parallel: bool) -> PathBuf {
    std::fs::create_dir_all(h.dir.path().join("day")).expect("day dir");
    let hypothesis = format!(
        "hypothesis:\n  - name: coordinator-up\n    tcp: {{address: \"{}\"}}\n",
        h.addr
    );
    file(
        h,
        "day/warm.yaml",
        &format!(
            "kind: Experiment\nname: warm-up\nscope: {{selector: role=db}}\n{hypothesis}method:\n  - fault: {{kind: cpu, load: 20}}\n    duration: 1s\n"
        ),
    );
    file(
        h,
        "day/db.yaml",
        &format!(
            "kind: Experiment\nname: db-partition\nscope: {{selector: role=db}}\n{hypothesis}method:\n  - fault: {{kind: network-partition, port: 5432}}\n    duration: 10m\nabort:\n  max_duration: 15m\n"
        ),
    );
    let parallel = if parallel { "    parallel: true\n" } else { "" };
    file(
        h,
        "day/plan.yaml",
        &format!(
            "kind: GameDay\nname: {name}\nstages:\n  - name: warm-up\n    experiments: [warm.yaml]\n  - name: go/no-go\n    gate: approval\n  - name: database\n{parallel}    experiments: [db.yaml]\n"
        ),
    )
}
