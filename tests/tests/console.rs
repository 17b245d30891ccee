//! The web console in a real browser (Debian's Chromium over WebDriver) against a real
//! coordinator and an agent in a namespace host: log in, see the agent, start a sweep and see its
//! result, watch a game day's timeline update without reloading while a second person watches,
//! approve it, press the emergency stop as an operator and see the host's fault gone, be refused
//! as a viewer, read the threat model, log out. A screenshot of each page is saved under the
//! test's output directory.

use std::time::Duration;

use fantoccini::{Client, Locator};
use rampart_e2e::browser::{self, Driver, click, exists, screenshot, text, wait_text};
use rampart_e2e::chaos::{free_port, gated_game_day, table_exists};
use rampart_e2e::{Harness, WAIT};

async fn login(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    c.find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    click(c, "form.login button").await;
    wait_text(c, "h1", WAIT, "the fleet page after login", |t| {
        t == "Fleet"
    })
    .await;
}

fn token(h: &Harness, name: &str, role: &str) -> String {
    h.rampart_ok(&["admin", "token", "create", "--name", name, "--role", role])
        .trim()
        .to_string()
}

#[test]
fn the_console_in_a_real_browser() {
    if !browser::available() {
        return;
    }
    let t0 = std::time::Instant::now();
    let step = |what: &str| eprintln!("console test: {what} at {:.1}s", t0.elapsed().as_secs_f64());
    let Some(h) = Harness::start_with_hosts(1) else {
        return;
    };
    step("harness up");
    let web = format!("127.0.0.1:{}", free_port());
    h.with_proc("coordinator", |p| p.kill());
    step("coordinator killed");
    h.start_coordinator_with(&["--web-listen", &web]);
    step("coordinator restarted");
    let base = format!("https://{web}");
    let host = h.network.as_ref().unwrap().hosts[0].clone();
    let join = h.join_token(&["role=db", "env=test"], 1, "10m");
    let agent = h.enroll_ok("agent", Some(&host.netns), &join, &[]);
    step("enrolled");
    h.run_agent("agent", &agent, &[]);
    h.wait_online(&[&agent.id]);
    step("agent online");
    let operator = token(&h, "alice", "operator");
    let viewer = token(&h, "victor", "viewer");
    let plan = gated_game_day(&h, "console-day", false);
    let model =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/threat-model.yaml");
    h.rampart_ok(&["threats", "apply", model.to_str().unwrap()]);

    step("model applied");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let mut driver = Driver::start();
    rt.block_on(async {
        let op = driver.session().await;
        let watcher = driver.session().await;

        step("browsers up");
        // Not logged in: the login page; a wrong token is refused.
        op.goto(&format!("{base}/fleet")).await.unwrap();
        assert!(op.current_url().await.unwrap().path().starts_with("/login"));
        op.find(Locator::Css("#token")).await.unwrap().send_keys("rpo_wrong").await.unwrap();
        click(&op, "form.login button").await;
        wait_text(&op, ".error", WAIT, "the refusal", |t| t.contains("unknown")).await;
        screenshot(&op, &shots, "login-refused").await;

        // Fleet: the agent, online, with its labels.
        login(&op, &base, &operator).await;
        let row = wait_text(&op, "#agents tbody", WAIT, "the agent row", |t| t.contains(&agent.id)).await;
        assert!(row.contains("online") && row.contains("role=db"), "{row}");
        assert_eq!(text(&op, "#agents-online").await, "1");
        screenshot(&op, &shots, "fleet").await;
        op.goto(&format!("{base}/fleet?selector=role%3Dweb")).await.unwrap();
        assert_eq!(text(&op, "#agents-total").await, "0");

        step("fleet checked");
        // Compliance: start a sweep, see it finish with results.
        op.goto(&format!("{base}/compliance")).await.unwrap();
        click(&op, "form[action='/compliance/sweep'] button").await;
        wait_text(&op, "#sweep-state", WAIT, "the sweep to finish", |t| t.starts_with("Finished")).await;
        let pass: u32 = text(&op, "#sum-pass").await.parse().unwrap();
        assert!(pass > 0, "the sweep passed no check");
        assert!(text(&op, "#sweep-hosts").await.contains("ok"));
        screenshot(&op, &shots, "sweep").await;
        op.goto(&format!("{base}/compliance")).await.unwrap();
        assert!(text(&op, "#host-scores").await.contains('%'));
        screenshot(&op, &shots, "compliance").await;

        step("sweep checked");
        // A game day, started from the CLI, watched live by a viewer.
        let id = h.rampart_ok(&["gameday", "run", plan.to_str().unwrap()]).trim().to_string();
        login(&watcher, &base, &viewer).await;
        watcher.goto(&format!("{base}/experiments/{id}")).await.unwrap();
        wait_text(&watcher, "#run-state", WAIT, "the gate", |t| t == "waiting_approval").await;
        assert!(!exists(&watcher, "#approval button").await, "a viewer sees no approve button");
        // Marks this page load: if the page reloaded, the mark would be gone.
        watcher.execute("window.rampartMark = 42;", vec![]).await.unwrap();
        h.rampart_ok(&["gameday", "note", &id, "DBA on call confirmed"]);
        wait_text(&watcher, "#timeline", Duration::from_secs(10), "the note on the live timeline", |t| {
            t.contains("DBA on call confirmed")
        })
        .await;
        let mark = watcher.execute("return window.rampartMark;", vec![]).await.unwrap();
        assert_eq!(mark, serde_json::json!(42), "the page reloaded instead of updating");
        screenshot(&watcher, &shots, "gameday-waiting").await;

        step("live note seen");
        // The operator approves from the console; the watcher sees the next stage inject.
        op.goto(&format!("{base}/experiments/{id}")).await.unwrap();
        click(&op, "#approval button").await;
        wait_text(&watcher, "#run-faults", WAIT, "the partition to be active", |t| {
            t.contains("network-partition") && t.contains("active")
        })
        .await;
        assert_eq!(
            watcher.execute("return window.rampartMark;", vec![]).await.unwrap(),
            serde_json::json!(42)
        );
        assert!(table_exists(&host.netns), "the fault is on the host");
        screenshot(&watcher, &shots, "gameday-live").await;

        step("approved stage live");
        // Faults: the viewer sees them but no emergency stop, and a forged post is refused.
        watcher.goto(&format!("{base}/faults")).await.unwrap();
        assert!(text(&watcher, "#faults").await.contains("network-partition"));
        assert!(!exists(&watcher, "#emergency-stop").await);
        assert!(!exists(&watcher, "#faults button").await, "no revert buttons for a viewer");
        screenshot(&watcher, &shots, "faults-viewer").await;
        watcher
            .execute(
                "const f = document.createElement('form'); f.method = 'post'; f.action = '/faults/emergency-stop';
                 for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['confirm', 'yes']]) {
                   const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
                 }
                 document.body.appendChild(f); f.submit();",
                vec![],
            )
            .await
            .unwrap();
        wait_text(&watcher, ".error", WAIT, "the refusal", |t| t.contains("operator role")).await;
        assert!(table_exists(&host.netns), "a viewer's request changed nothing");
        screenshot(&watcher, &shots, "viewer-refused").await;

        step("viewer refused");
        // The operator reverts one fault from its row.
        h.rampart_ok(&["fault", "inject", "--kind", "cpu", "--load", "5", "--duration", "5m"]);
        op.goto(&format!("{base}/faults")).await.unwrap();
        let cpu_row = "//table[@id='faults']//tr[td[3][normalize-space()='cpu']]";
        op.find(Locator::XPath(&format!("{cpu_row}//button"))).await.unwrap().click().await.unwrap();
        let outcome = wait_text(&op, "#outcome", WAIT, "the revert's outcome", |t| !t.is_empty()).await;
        assert!(outcome.starts_with("Revert: 1 fault(s)"), "{outcome}");
        assert!(op.find(Locator::XPath(cpu_row)).await.is_err(), "the cpu fault is no longer active");
        screenshot(&op, &shots, "reverted").await;

        // The operator presses the emergency stop (with its confirmation).
        op.goto(&format!("{base}/faults")).await.unwrap();
        assert!(text(&op, "#faults").await.contains("network-partition"));
        screenshot(&op, &shots, "faults").await;
        click(&op, "#confirm-stop").await;
        click(&op, "#emergency-stop").await;
        let outcome = wait_text(&op, "#outcome", WAIT, "the stop's outcome", |t| !t.is_empty()).await;
        assert!(outcome.starts_with("Emergency stop"), "{outcome}");
        assert!(!table_exists(&host.netns), "the host's fault is reverted");
        assert!(!text(&op, "#faults").await.contains("network-partition"));
        screenshot(&op, &shots, "emergency-stop").await;
        op.goto(&format!("{base}/experiments/{id}")).await.unwrap();
        wait_text(&op, "#run-verdict", WAIT, "the game day to be aborted", |t| t == "aborted").await;
        op.goto(&format!("{base}/experiments")).await.unwrap();
        assert!(text(&op, "#runs").await.contains("console-day"));
        screenshot(&op, &shots, "experiments").await;

        step("emergency stop done");
        // The threat model: diagram, risks, one risk's evidence chain.
        op.goto(&format!("{base}/threats")).await.unwrap();
        assert!(exists(&op, ".diagram svg").await);
        assert!(exists(&op, "#risks tbody tr").await);
        screenshot(&op, &shots, "threats").await;
        click(&op, "#risks tbody tr a").await;
        wait_text(&op, "h2", WAIT, "the risk page", |t| t == "Because").await;
        screenshot(&op, &shots, "risk").await;

        step("threat pages seen");
        // Log out: the session is gone.
        click(&op, "form.logout button").await;
        wait_text(&op, "h1", WAIT, "the login page", |t| t == "Rampart").await;
        op.goto(&format!("{base}/faults")).await.unwrap();
        assert!(op.current_url().await.unwrap().path().starts_with("/login"));

        op.close().await.unwrap();
        watcher.close().await.unwrap();
    });
    step("browsers closed");
    drop(driver);
    step("driver stopped");
    // Every console action is in the audit trail with its actor.
    let audit = h.rampart_ok(&["audit", "ls", "--limit", "500", "-o", "json"]);
    for needle in [
        "console/Login",
        "ComplianceService/Sweep",
        "ExperimentService/ApproveGameDay",
        "ChaosService/EmergencyStop",
        "console/Logout",
    ] {
        assert!(audit.contains(needle), "{needle} not audited");
    }
    assert!(audit.contains("alice") && audit.contains("victor"));
    // The wrong token typed at the start, with the address it came from.
    assert!(
        audit.contains("unauthenticated caller from 127.0.0.1"),
        "{audit}"
    );
    eprintln!("screenshots in {}", shots.display());
}
