//! The console's rules, checked on its router against a real coordinator (its store, services
//! and audit trail): login and cookies, CSRF and cross-site refusals, roles, logout, revoked
//! tokens, escaping, downloads. The browser test (tests/tests/console.rs) drives it over HTTPS.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::session::{COOKIE, cookie_of};
use super::{CSP, Console, router};
use crate::api::tokens::new_secret;
use crate::server::{Coordinator, Settings, start};
use crate::store::{AgentRecord, Role};

struct Env {
    _dir: tempfile::TempDir,
    coordinator: Coordinator,
    console: Arc<Console>,
    admin: String,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = start(
        &Settings {
            data_dir: dir.path().join("c"),
            listen: "127.0.0.1:0".parse().unwrap(),
            server_names: vec![],
            packs_dir: None,
            enroll_limits: Default::default(),
            agent_cert_lifetime: crate::pki::AGENT_VALIDITY,
            metrics_listen: None,
            metrics_group_label: None,
            web_listen: None,
            database_url: None,
        },
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap();
    let admin = coordinator.initial_admin_token.clone().unwrap();
    let console = Console::new(coordinator.state.clone());
    Env {
        _dir: dir,
        coordinator,
        console,
        admin,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Env {
    async fn token(&self, role: Role) -> String {
        let (id, secret) = new_secret("rpo");
        self.coordinator
            .state
            .store
            .insert_operator_token(&id, &secret, role.as_str(), role, None)
            .await
            .unwrap();
        secret
    }

    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = router(self.console.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut b = Request::get(path);
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, format!("{COOKIE}={c}"));
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    async fn post(&self, path: &str, cookie: Option<&str>, form: &str) -> Answer {
        let mut b = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::HOST, "console.test")
            .header(header::ORIGIN, "https://console.test");
        if let Some(c) = cookie {
            b = b.header(header::COOKIE, format!("{COOKIE}={c}"));
        }
        self.send(b.body(Body::from(form.to_string())).unwrap())
            .await
    }

    /// Logs in; returns the session cookie and the page's CSRF token.
    async fn login(&self, token: &str) -> (String, String) {
        let a = self.post("/login", None, &format!("token={token}")).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let set = a.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        let cookie = set
            .split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .map(|(_, v)| v.to_string())
            .unwrap();
        let page = self.get("/fleet", Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::OK);
        (cookie, csrf_of(&page.body))
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        self.coordinator
            .state
            .store
            .audit(1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.result))
            .collect()
    }
}

fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    body[at..at + 64].to_string()
}

#[tokio::test]
async fn pages_need_a_session_and_login_sets_a_strict_cookie() {
    let e = env().await;
    let a = e.get("/fleet", None).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/login");
    let login = e.get("/login", None).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.headers[header::CONTENT_SECURITY_POLICY], CSP);
    assert!(!CSP.contains("unsafe-inline") && CSP.contains("script-src 'self'"));
    assert_eq!(login.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(login.headers.contains_key("server-timing"));

    let bad = e.post("/login", None, "token=rpo_nope").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(!bad.headers.contains_key(header::SET_COOKIE));

    let ok = e.post("/login", None, &format!("token={}", e.admin)).await;
    assert_eq!(ok.status, StatusCode::OK);
    let set = ok.headers[header::SET_COOKIE].to_str().unwrap();
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(set.contains(attr), "{attr} missing from {set}");
    }
    assert!(
        !set.contains(&e.admin),
        "the token itself must not be in the cookie"
    );
    let audit = e.audit_actions().await;
    assert!(audit.contains(&("console/Login".into(), "ok".into())));
    assert!(
        audit
            .iter()
            .any(|(a, r)| a == "console/Login" && r.starts_with("Unauthenticated"))
    );
    // Every page answers once logged in.
    let (cookie, _) = e.login(&e.admin).await;
    for path in [
        "/fleet",
        "/compliance",
        "/faults",
        "/experiments",
        "/threats",
    ] {
        let a = e.get(path, Some(&cookie)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert!(a.body.contains("Log out"), "{path}");
        assert_eq!(a.headers[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
    }
    assert_eq!(
        e.get("/nowhere", Some(&cookie)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        e.get("/assets/console.js", None).await.headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_the_same_site() {
    let e = env().await;
    let (cookie, csrf) = e.login(&e.admin).await;
    let stops = |a: &[(String, String)]| {
        a.iter()
            .filter(|(x, _)| x == "ChaosService/EmergencyStop")
            .count()
    };
    let no_csrf = e
        .post("/faults/emergency-stop", Some(&cookie), "confirm=yes")
        .await;
    assert_eq!(no_csrf.status, StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = e
        .post(
            "/faults/emergency-stop",
            Some(&cookie),
            &format!("confirm=yes&csrf={}", "0".repeat(64)),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{}", wrong.body);
    let cross = e
        .send(
            Request::post("/faults/emergency-stop")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, format!("{COOKIE}={cookie}"))
                .header(header::HOST, "console.test")
                .header(header::ORIGIN, "https://evil.test")
                .body(Body::from(format!("confirm=yes&csrf={csrf}")))
                .unwrap(),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    let unconfirmed = e
        .post(
            "/faults/emergency-stop",
            Some(&cookie),
            &format!("csrf={csrf}"),
        )
        .await;
    assert_eq!(unconfirmed.status, StatusCode::BAD_REQUEST);
    assert_eq!(stops(&e.audit_actions().await), 0, "nothing ran");

    let ok = e
        .post(
            "/faults/emergency-stop",
            Some(&cookie),
            &format!("confirm=yes&csrf={csrf}"),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(
        ok.body.contains("Emergency stop: 0 fault(s)"),
        "{}",
        ok.body
    );
    // Audited like the API: a `started` entry and its outcome.
    assert_eq!(stops(&e.audit_actions().await), 2);
}

#[tokio::test]
async fn a_viewer_sees_no_buttons_and_is_refused_anyway() {
    let e = env().await;
    let viewer = e.token(Role::Viewer).await;
    let (cookie, csrf) = e.login(&viewer).await;
    let faults = e.get("/faults", Some(&cookie)).await;
    assert!(faults.body.contains("viewer"));
    assert!(!faults.body.contains("emergency-stop"), "{}", faults.body);
    let compliance = e.get("/compliance", Some(&cookie)).await;
    assert!(!compliance.body.contains("Start sweep"));
    let refused = e
        .post(
            "/faults/emergency-stop",
            Some(&cookie),
            &format!("confirm=yes&csrf={csrf}"),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("needs the operator role"),
        "{}",
        refused.body
    );
    let sweep = e
        .post("/compliance/sweep", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(sweep.status, StatusCode::FORBIDDEN);
    let audit = e.audit_actions().await;
    assert!(
        audit
            .iter()
            .any(|(a, r)| a == "ChaosService/EmergencyStop" && r.starts_with("PermissionDenied"))
    );

    let operator = e.token(Role::Operator).await;
    let (cookie, _) = e.login(&operator).await;
    let faults = e.get("/faults", Some(&cookie)).await;
    assert!(faults.body.contains("id=\"emergency-stop\""));
}

#[tokio::test]
async fn logout_and_revocation_end_sessions_and_login_links_work_once() {
    let e = env().await;
    let operator = e.token(Role::Operator).await;
    let (cookie, csrf) = e.login(&operator).await;
    let out = e
        .post("/logout", Some(&cookie), &format!("csrf={csrf}"))
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        e.get("/fleet", Some(&cookie)).await.status,
        StatusCode::SEE_OTHER
    );

    let (cookie, _) = e.login(&operator).await;
    let store = &e.coordinator.state.store;
    let id = store
        .operator_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "operator")
        .unwrap()
        .id;
    store.revoke_operator_token(&id).await.unwrap().unwrap();
    let a = e.get("/fleet", Some(&cookie)).await;
    assert_eq!(
        a.status,
        StatusCode::SEE_OTHER,
        "a revoked token's session ends"
    );

    let code = e.console.sessions.login_code(&e.admin);
    let first = e.get(&format!("/login?code={code}"), None).await;
    assert_eq!(first.status, StatusCode::OK);
    let set = cookie_of(
        &{
            let mut h = axum::http::HeaderMap::new();
            h.insert(header::COOKIE, first.headers[header::SET_COOKIE].clone());
            h
        },
        COOKIE,
    );
    assert!(set.is_some_and(|c| c.len() == 64));
    let again = e.get(&format!("/login?code={code}"), None).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(!again.headers.contains_key(header::SET_COOKIE));
}

#[tokio::test]
async fn what_hosts_report_is_escaped() {
    let e = env().await;
    e.coordinator
        .state
        .store
        .insert_agent(&AgentRecord {
            hostname: "<script>alert(1)</script>".into(),
            labels: [("env".to_string(), "\"><img src=x>".to_string())].into(),
            cert_fingerprint: "f".into(),
            cert_expires_at: None,
            enrolled_at: 1,
            ..crate::store::testing::agent_record("agent-x")
        })
        .await
        .unwrap();
    let (cookie, _) = e.login(&e.admin).await;
    let page = e.get("/fleet", Some(&cookie)).await;
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.body.contains("<script>alert"));
    assert!(!page.body.contains("<img src=x>"));
    let filtered = e.get("/fleet?selector=env%3Dprod", Some(&cookie)).await;
    assert!(!filtered.body.contains("agent-x"));
    let bad = e.get("/fleet?selector=%3D%3D", Some(&cookie)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}

#[tokio::test]
async fn a_sweep_started_here_is_stored_and_downloads_in_every_format() {
    let e = env().await;
    let (cookie, csrf) = e.login(&e.admin).await;
    let started = e
        .post(
            "/compliance/sweep",
            Some(&cookie),
            &format!("csrf={csrf}&selector=&pack=linux-baseline"),
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let at = started.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    assert!(at.starts_with("/compliance/sweeps/sweep-"));
    let page = e.get(&at, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for (ext, kind, needle) in [
        ("json", "application/json", "\"sweep_id\""),
        ("sarif", "application/sarif+json", "\"2.1.0\""),
        ("oscal", "application/json", "assessment-results"),
        ("junit", "application/xml", "<testsuites"),
        ("md", "text/markdown; charset=utf-8", "#"),
    ] {
        let d = e.get(&format!("{at}/report.{ext}"), Some(&cookie)).await;
        assert_eq!(d.status, StatusCode::OK, "{ext}: {}", d.body);
        assert_eq!(d.headers[header::CONTENT_TYPE], kind, "{ext}");
        assert!(
            d.headers[header::CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .starts_with("attachment"),
            "{ext}"
        );
        assert!(d.body.contains(needle), "{ext}: {}", d.body);
    }
    assert_eq!(
        e.get(&format!("{at}/report.exe"), Some(&cookie))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let list = e.get("/compliance", Some(&cookie)).await;
    assert!(
        list.body
            .contains(at.trim_start_matches("/compliance/sweeps/"))
    );
    assert_eq!(
        e.get("/experiments/run-missing/events", Some(&cookie))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn many_logins_and_pages_at_once_lose_nothing() {
    let e = env().await;
    let before = e.audit_actions().await.len();
    let e = Arc::new(e);
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let (cookie, csrf) = e.login(&e.admin).await;
            for path in ["/fleet", "/compliance", "/faults"] {
                assert_eq!(e.get(path, Some(&cookie)).await.status, StatusCode::OK);
            }
            let out = e
                .post("/logout", Some(&cookie), &format!("csrf={csrf}"))
                .await;
            assert_eq!(out.status, StatusCode::SEE_OTHER);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let audit = e.audit_actions().await;
    let count = |action: &str| audit.iter().filter(|(a, _)| a == action).count();
    assert_eq!(count("console/Login"), 48);
    assert_eq!(count("console/Logout"), 48);
    assert_eq!(audit.len(), before + 96, "nothing else, nothing lost");
    assert_eq!(e.console.sessions.held(), 0, "every session ended");
}

#[tokio::test]
async fn oversized_and_malformed_input_is_refused_plainly() {
    let e = env().await;
    let (cookie, csrf) = e.login(&e.admin).await;
    let huge = format!("token={}", "x".repeat(1 << 20));
    assert_eq!(
        e.post("/login", None, &huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let note = format!("csrf={csrf}&text={}", "n".repeat(1 << 20));
    assert_eq!(
        e.post("/experiments/run-x/note", Some(&cookie), &note)
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // A form without its fields, and a sweep of a pack that does not exist.
    assert_eq!(
        e.post("/faults/revert", Some(&cookie), "nonsense")
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let bad = e
        .post(
            "/compliance/sweep",
            Some(&cookie),
            &format!("csrf={csrf}&pack=no-such-pack"),
        )
        .await;
    assert!(bad.status.is_client_error(), "{}", bad.status);
    assert!(bad.body.contains("no-such-pack"), "{}", bad.body);
    // A cookie that names no session is sent to the login page, whatever its size.
    let long = "a".repeat(4096);
    assert_eq!(
        e.get("/fleet", Some(&long)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn failed_logins_from_one_address_are_limited_and_do_not_flood_the_audit_trail() {
    let e = env().await;
    let from = |ip: [u8; 4], body: String| {
        let mut r = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        r.extensions_mut()
            .insert(super::session::Peer(std::net::IpAddr::from(ip)));
        r
    };
    let limit = super::session::MAX_FAILURES as usize;
    let mut statuses = Vec::new();
    for _ in 0..50 {
        statuses.push(
            e.send(from([192, 0, 2, 1], "token=rpo_guess".into()))
                .await
                .status,
        );
    }
    assert!(
        statuses[..limit]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED)
    );
    assert!(
        statuses[limit..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS)
    );
    // While the address waits, even a good token is not tried from it; another address is.
    let ok = format!("token={}", e.admin);
    assert_eq!(
        e.send(from([192, 0, 2, 1], ok.clone())).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        e.send(from([192, 0, 2, 2], ok)).await.status,
        StatusCode::OK
    );
    let refused: Vec<_> = e
        .audit_actions()
        .await
        .into_iter()
        .filter(|(a, r)| a == "console/Login" && r.starts_with("Unauthenticated"))
        .collect();
    assert_eq!(
        refused.len(),
        limit,
        "one entry per checked attempt, none after"
    );
    assert!(refused.iter().any(|(_, r)| r.contains("must wait")));
}
