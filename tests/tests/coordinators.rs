//! Two coordinators on one PostgreSQL database (Debian's server, started by `.ci/run`) sharing a
//! fleet of namespace hosts: commands selected on either reach agents held by both, a SIGKILLed
//! coordinator's agents move to the other and its unfinished sweep is settled, the emergency
//! stop reaches every agent, and a schedule runs once per slot.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rampart_e2e::netns::network_state;
use rampart_e2e::postgres::PgDatabase;
use rampart_e2e::{AgentHandle, Harness, WAIT, eventually};
use serde_json::Value;

const HOSTS: usize = 4;

fn json(out: std::process::Output, what: &str) -> Value {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Agents per coordinator (by listening address), from the database.
fn held_by(db: &PgDatabase, addr: SocketAddr) -> i64 {
    db.scalar(&format!(
        "SELECT COUNT(*) FROM agents a JOIN coordinators c ON c.id = a.coordinator_id
         WHERE a.state = 'online' AND c.address = '{addr}'"
    ))
    .unwrap_or(0)
}

fn hosts_ok(report: &Value) -> usize {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["status"] == "ok")
        .count()
}

/// Every agent's answer in a fault command's JSON, with no error.
fn confirmed(answers: &Value) -> usize {
    answers
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["error"] == "")
        .count()
}

#[test]
fn two_coordinators_on_one_database_share_a_fleet() {
    let Some(db) = PgDatabase::create() else {
        return;
    };
    let Some(h) = Harness::start_with_hosts_on_postgres(HOSTS, &db) else {
        return;
    };
    let t0 = Instant::now();
    let step = |what: &str| eprintln!("[{:>6.1?}] {what}", t0.elapsed());
    let a = h.addr;
    let b = h.start_peer("coordinator-b");
    step("two coordinators up");
    let both = format!("https://{a},https://{b}");
    let token = h.join_token(&["env=prod"], HOSTS as u32, "10m");
    let hosts = h.network.as_ref().unwrap().hosts.clone();
    let agents: Vec<AgentHandle> = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            h.enroll_ok(
                &format!("agent-{i}"),
                Some(&host.netns),
                &token,
                &[&format!("name=h{i}")],
            )
        })
        .collect();
    let start =
        |i: usize| h.run_agent(&format!("agent-{i}"), &agents[i], &["--coordinator", &both]);
    (0..HOSTS).for_each(start);
    let ids: Vec<&str> = agents.iter().map(|x| x.id.as_str()).collect();
    h.wait_online(&ids);
    // Each agent picks a coordinator at random; restart one until both hold some.
    for attempt in 0.. {
        let (on_a, on_b) = (held_by(&db, a), held_by(&db, b));
        if on_a > 0 && on_b > 0 && on_a + on_b == HOSTS as i64 {
            break;
        }
        assert!(
            attempt < 40,
            "agents never spread: {on_a} on A, {on_b} on B"
        );
        if on_a + on_b == HOSTS as i64 {
            let i = attempt % HOSTS;
            h.with_proc(&format!("agent-{i}"), |p| {
                p.signal(Signal::SIGKILL);
                p.wait_exit(WAIT);
            });
            start(i);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    h.wait_online(&ids);
    step("agents spread over both");

    // A sweep selected on either coordinator checks every host, each stored once.
    for (name, addr) in [("A", a), ("B", b)] {
        let report = json(
            h.rampart_at(addr, &["sweep", "--wait", "-o", "json"]),
            &format!("sweep on {name}"),
        );
        assert_eq!(hosts_ok(&report), HOSTS, "sweep on {name}: {report}");
        let id = report["sweep_id"].as_str().unwrap();
        assert_eq!(
            db.scalar(&format!(
                "SELECT COUNT(*) FROM sweep_hosts WHERE sweep_id = '{id}'"
            )),
            Some(HOSTS as i64),
            "each host stored once"
        );
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM relayed_commands"),
        Some(0),
        "relayed commands are removed once answered"
    );

    step("sweeps from A and B");
    // A fault injected from B lands on every host, whichever coordinator holds it.
    let injected = json(
        h.rampart_at(
            b,
            &[
                "fault",
                "inject",
                "--kind",
                "network-partition",
                "--port",
                "18080",
                "--duration",
                "5m",
                "-o",
                "json",
            ],
        ),
        "fault inject on B",
    );
    assert_eq!(confirmed(&injected), HOSTS, "{injected}");
    for host in &hosts {
        assert!(
            network_state(&host.netns).contains("18080"),
            "partition rule on {}",
            host.netns
        );
    }
    // The emergency stop on A reverts them all.
    let stopped = json(h.rampart_at(a, &["stop", "-o", "json"]), "stop on A");
    assert_eq!(confirmed(&stopped), HOSTS, "{stopped}");
    for host in &hosts {
        assert!(
            !network_state(&host.netns).contains("18080"),
            "reverted on {}",
            host.netns
        );
    }

    step("fault from B, stop from A");

    // An experiment run on A with a fault and a metric probe on every host: the agents B holds
    // are injected, watched (their samples forwarded to A) and reverted through the relay.
    let experiment = h.dir.path().join("cpu-everywhere.yaml");
    std::fs::write(
        &experiment,
        "kind: Experiment\nname: cpu-everywhere\nscope:\n  selector: env=prod\nhypothesis:\n  - name: cpu-known\n    metric: {name: cpu_percent, below: 101}\n    interval: 300ms\nmethod:\n  - fault: {kind: cpu, load: 20, workers: 1}\n    duration: 2s\nabort:\n  max_duration: 1m\n",
    )
    .unwrap();
    let run = json(
        h.rampart_at(
            a,
            &[
                "experiment",
                "run",
                experiment.to_str().unwrap(),
                "--wait",
                "-o",
                "json",
            ],
        ),
        "experiment on A",
    );
    assert_eq!(run["verdict"], "passed", "{run:#}");
    assert_eq!(run["targets"].as_array().unwrap().len(), HOSTS, "{run:#}");
    let faults = run["faults"].as_array().unwrap();
    assert_eq!(faults.len(), HOSTS, "{run:#}");
    assert!(faults.iter().all(|f| f["state"] == "reverted"), "{run:#}");
    let metric = &run["probes"][0];
    assert!(
        metric["checks"].as_u64().unwrap() >= 2 && metric["misses"] == 0,
        "every host's samples reached A: {metric}"
    );
    step("experiment from A");
    // A schedule every 2 s while both coordinators run: one sweep per slot, never two.
    let schedule = h
        .rampart_ok(&["schedule", "add", "--cron", "*/2 * * * * *"])
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_secs(9));
    h.rampart_ok(&["schedule", "rm", &schedule]);
    let actor = format!("schedule {schedule}");
    let runs = db
        .scalar(&format!(
            "SELECT COUNT(*) FROM sweeps WHERE actor = '{actor}'"
        ))
        .unwrap();
    let slots = db
        .scalar(&format!(
            "SELECT COUNT(DISTINCT started_at / 2000) FROM sweeps WHERE actor = '{actor}'"
        ))
        .unwrap();
    assert!(runs >= 2, "the schedule ran: {runs} sweeps");
    assert_eq!(runs, slots, "one sweep per 2 s slot");

    step("schedule");
    // A sweep started on B, then B is SIGKILLed: its agents come back on A within the backoff
    // and A settles the sweep: every host has its result or is `unreachable`, never neither.
    let moved = held_by(&db, b);
    let cut = h
        .rampart_at(b, &["sweep"])
        .stdout
        .iter()
        .map(|&c| c as char)
        .collect::<String>()
        .trim()
        .to_string();
    assert!(cut.starts_with("sweep-"), "sweep id {cut:?}");
    let killed = Instant::now();
    h.with_proc("coordinator-b", |p| {
        p.signal(Signal::SIGKILL);
        p.wait_exit(WAIT);
    });
    eventually(WAIT, "B's agents online on A", || {
        let on_a = held_by(&db, a);
        if on_a == HOSTS as i64 {
            Ok(())
        } else {
            Err(format!("{on_a}/{HOSTS} on A"))
        }
    });
    let back = killed.elapsed();
    step("B killed, agents on A");
    assert!(
        back < Duration::from_secs(10),
        "{moved} agents moved in {back:?}; the agents' backoff is at most 1 s"
    );
    let shown = eventually(Duration::from_secs(45), "A to settle B's sweep", || {
        // Settled first, then read: read before the check, the report could predate the settling
        // that the check then sees (it did once: 0 of 4 hosts shown, all 4 stored a moment later).
        let unfinished = db.scalar(&format!(
            "SELECT COUNT(*) FROM sweeps WHERE id = '{cut}' AND finished_at IS NULL"
        ));
        let shown = json(
            h.rampart_at(a, &["sweep", "show", &cut, "-o", "json"]),
            "sweep show",
        );
        if unfinished == Some(0) {
            Ok(shown)
        } else {
            Err(format!("not settled yet: {shown}"))
        }
    });
    step("B's sweep settled");
    let hosts_shown = shown["hosts"].as_array().unwrap();
    assert_eq!(hosts_shown.len(), HOSTS, "no host left out: {shown}");
    for host in hosts_shown {
        let status = host["status"].as_str().unwrap();
        assert!(status == "ok" || status == "unreachable", "{host}");
    }
    assert_eq!(
        db.scalar("SELECT COUNT(*) FROM coordinators"),
        Some(1),
        "B's row is gone"
    );

    // The emergency stop still reaches every agent, now all on A.
    let stopped = json(
        h.rampart_at(a, &["stop", "-o", "json"]),
        "stop after B died",
    );
    assert_eq!(confirmed(&stopped), HOSTS, "{stopped}");
}
