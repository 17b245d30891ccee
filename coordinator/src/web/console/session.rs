//! Console sessions: log in with an operator token (or a one-time login link), get a cookie that
//! names a session kept in memory; log out. Every request re-checks the session's token, so a
//! revoked or expired token ends its sessions at once, and a role change shows at the next page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, extract::State};
use maud::html;
use rand::RngCore;
use serde::Deserialize;
use tonic::metadata::{MetadataMap, MetadataValue};

use super::html::{PageError, bare_page};
use super::{Console, Page, Shared, see_other};
use crate::api::auth::{Principal, authenticate};
use crate::store::Role;

/// The session cookie's name.
pub const COOKIE: &str = "rampart_session";
/// How long a session lasts after login, whatever happens in between.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// How long a login link stays usable (once).
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(15 * 60);
/// Sessions held at most; the oldest go first past this.
const MAX_SESSIONS: usize = 10_000;
/// Failed logins one address may make per [`FAILURE_WINDOW`]; past that it is told to wait, and
/// its further attempts are neither checked nor each written to the audit trail.
pub const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The address a request came from (set by the listener; absent in in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::IpAddr);

/// One logged-in browser. The operator token stays here, in the coordinator's memory; the
/// browser holds only the random session id.
pub struct Session {
    pub csrf: String,
    secret: String,
    expires: Instant,
    /// Set at logout, so what outlives the request (a live view) ends too.
    ended: std::sync::atomic::AtomicBool,
}

impl Session {
    /// Not logged out and not expired.
    pub fn live(&self) -> bool {
        !self.ended.load(std::sync::atomic::Ordering::Relaxed) && self.expires > Instant::now()
    }
}

/// Sessions and outstanding login codes.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<String, Arc<Session>>>,
    codes: Mutex<HashMap<String, (String, Instant)>>,
    /// Failed logins per source address: (window start, failures in it).
    failures: Mutex<HashMap<Option<std::net::IpAddr>, (Instant, u32)>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

fn random_id() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Sessions {
    fn create(&self, secret: &str) -> (String, Arc<Session>) {
        let id = random_id();
        let session = Arc::new(Session {
            csrf: random_id(),
            secret: secret.to_string(),
            expires: Instant::now() + SESSION_TTL,
            ended: Default::default(),
        });
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), session.clone());
        (id, session)
    }

    fn get(&self, id: &str) -> Option<Arc<Session>> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        match live.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    fn remove(&self, id: &str) {
        let removed = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(s) = removed {
            s.ended.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Sessions currently held (expired ones not yet swept included).
    pub fn held(&self) -> usize {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// A one-time code that logs its user in as `secret`'s token (for the link `rampart dev`
    /// prints); usable once, for [`LOGIN_CODE_TTL`].
    pub fn login_code(&self, secret: &str) -> String {
        let code = random_id();
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        codes.retain(|_, (_, until)| *until > now);
        codes.insert(code.clone(), (secret.to_string(), now + LOGIN_CODE_TTL));
        code
    }

    /// Whether `from` may try to log in now.
    fn may_try(&self, from: Option<std::net::IpAddr>) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match failures.get(&from) {
            Some((start, n)) => start.elapsed() >= FAILURE_WINDOW || *n < MAX_FAILURES,
            None => true,
        }
    }

    /// Counts a failed login; true when this one reached the limit.
    fn failed(&self, from: Option<std::net::IpAddr>) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_SESSIONS {
            failures.retain(|_, (start, _)| start.elapsed() < FAILURE_WINDOW);
        }
        let entry = failures.entry(from).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
        entry.1 == MAX_FAILURES
    }

    fn take_code(&self, code: &str) -> Option<String> {
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        codes
            .remove(code)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(s, _)| s)
    }
}

fn bearer_metadata(secret: &str) -> MetadataMap {
    let mut m = MetadataMap::new();
    if let Ok(v) = MetadataValue::try_from(format!("Bearer {secret}")) {
        m.insert("authorization", v);
    }
    m
}

/// The person behind a request: their session and what their token is allowed.
pub struct Caller {
    pub session: Arc<Session>,
    pub principal: Principal,
}

impl Caller {
    /// A gRPC request carrying this caller's token, for the in-process service calls.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        *r.metadata_mut() = bearer_metadata(&self.session.secret);
        r
    }

    /// Whether to show buttons that need `role` (the server refuses them anyway).
    pub fn can(&self, role: Role) -> bool {
        self.principal.role >= role
    }

    /// Refuses a change whose form does not carry this session's CSRF token.
    pub fn check_csrf(&self, token: &str) -> Result<(), PageError> {
        use subtle_eq::eq;
        if eq(token.as_bytes(), self.session.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this console (CSRF check failed). Reload the page and try again.",
            ))
        }
    }
}

/// Constant-time comparison, so the CSRF token cannot be guessed byte by byte from timings.
mod subtle_eq {
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Refuses requests another site made the browser send: the cookie's `SameSite=Strict` already
/// keeps it off them, and this says no even to a browser that ignores that.
fn cross_site(headers: &HeaderMap, authority: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && site == "cross-site"
    {
        return true;
    }
    // HTTP/2 carries the host in the request's authority, not a Host header.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(authority);
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        host,
    ) {
        // "null" says nothing (privacy settings send it for same-origin posts too); the CSRF
        // token decides then.
        (Some("null"), _) | (None, _) => false,
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, h)| h) != Some(host),
        (Some(_), None) => true,
    }
}

impl FromRequestParts<Arc<Console>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || {
            if parts.uri.path().ends_with("/events") {
                StatusCode::UNAUTHORIZED.into_response()
            } else {
                Redirect::to("/login").into_response()
            }
        };
        if parts.method != axum::http::Method::GET
            && cross_site(&parts.headers, parts.uri.authority().map(|a| a.as_str()))
        {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "Refused: this request came from another site.",
            )
            .into_response());
        }
        let Some(id) = cookie_value(&parts.headers, COOKIE) else {
            return Err(to_login());
        };
        let Some(session) = console.sessions.get(id) else {
            return Err(to_login());
        };
        match authenticate(&console.state, &bearer_metadata(&session.secret)).await {
            Ok(principal) => Ok(Caller { session, principal }),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                console.sessions.remove(id);
                Err(to_login())
            }
            Err(status) => Err(PageError::from(status).into_response()),
        }
    }
}

fn session_cookie(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
        SESSION_TTL.as_secs()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cleared_cookie() -> HeaderValue {
    HeaderValue::from_static(
        "rampart_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
    )
}

fn login_form(message: Option<&str>) -> maud::Markup {
    html! {
        h1 { "Rampart" }
        @if let Some(m) = message { p.error role="alert" { (m) } }
        form.login method="post" action="/login" {
            label for="token" { "Operator token" }
            input #token type="password" name="token" autocomplete="off" required autofocus;
            button type="submit" { "Log in" }
        }
        p.hint { "Create a token with " code { "rampart admin token create --name NAME --role viewer|operator|admin" } "." }
    }
}

#[derive(Deserialize)]
pub struct CodeQuery {
    code: Option<String>,
}

/// The login form, or a login link's code exchanged for a session.
pub async fn login_page(
    State(console): Shared,
    peer: Option<axum::Extension<Peer>>,
    Query(q): Query<CodeQuery>,
) -> Response {
    let Some(code) = q.code else {
        return bare_page("Log in", login_form(None)).into_response();
    };
    let from = peer.map(|p| p.0.0);
    if !console.sessions.may_try(from) {
        return too_many();
    }
    let Some(secret) = console.sessions.take_code(&code) else {
        console.sessions.failed(from);
        return (
            StatusCode::UNAUTHORIZED,
            bare_page(
                "Log in",
                login_form(Some(
                    "That login link was already used or has expired; log in with a token.",
                )),
            ),
        )
            .into_response();
    };
    start_session(&console, &secret, "login link", from).await
}

fn too_many() -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        bare_page(
            "Log in",
            login_form(Some(
                "Too many failed logins from this address; wait a minute and try again.",
            )),
        ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// A token typed into the form.
pub async fn login(
    State(console): Shared,
    peer: Option<axum::Extension<Peer>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Page {
    if cross_site(&headers, uri.authority().map(|a| a.as_str())) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Refused: this request came from another site.",
        ));
    }
    let from = peer.map(|p| p.0.0);
    if !console.sessions.may_try(from) {
        return Ok(too_many());
    }
    Ok(start_session(&console, f.token.trim(), "token", from).await)
}

async fn start_session(
    console: &Console,
    secret: &str,
    how: &str,
    from: Option<std::net::IpAddr>,
) -> Response {
    let state = &console.state;
    match authenticate(state, &bearer_metadata(secret)).await {
        Ok(p) => {
            if let Err(err) = state
                .store
                .append_audit(&p.actor(), "console/Login", &format!("with a {how}"), "ok")
                .await
            {
                tracing::error!(%err, "could not write the audit entry of a console login");
                return PageError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The coordinator cannot write its audit trail; no login until it can.",
                )
                .into_response();
            }
            let (id, _) = console.sessions.create(secret);
            tracing::info!(actor = %p.actor(), "console login");
            // A page rather than a bare redirect: after a link opened from elsewhere, the browser
            // sends a SameSite=Strict cookie only on a navigation that starts here.
            let mut resp = super::html::page_with_head(
                "Logged in",
                html! { meta http-equiv="refresh" content="0;url=/fleet"; },
                html! {
                    p { "Logged in as " (p.name) " (" (p.role.as_str()) "). " a href="/fleet" { "Continue" } }
                },
            )
            .into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&id));
            resp
        }
        Err(status) => {
            let mut outcome = format!("{:?}: {}", status.code(), status.message());
            if console.sessions.failed(from) {
                outcome.push_str(&format!(
                    "; {MAX_FAILURES} failures within a minute: this address must wait"
                ));
                tracing::warn!(from = ?from, "console: too many failed logins; refusing for a minute");
            }
            if let Err(err) = state
                .store
                .append_audit(
                    &match from {
                        Some(ip) => format!("unauthenticated caller from {ip}"),
                        None => "unauthenticated caller".to_string(),
                    },
                    "console/Login",
                    &format!("with a {how}"),
                    &outcome,
                )
                .await
            {
                tracing::error!(%err, "could not write the audit entry of a refused console login");
            }
            (
                StatusCode::UNAUTHORIZED,
                bare_page(
                    "Log in",
                    login_form(Some("That token is unknown, expired or revoked.")),
                ),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// Ends the session (the cookie is cleared too).
pub async fn logout(
    State(console): Shared,
    caller: Caller,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    if let Some(id) = cookie_value(&headers, COOKIE) {
        console.sessions.remove(id);
    }
    if let Err(err) = console
        .state
        .store
        .append_audit(&caller.principal.actor(), "console/Logout", "", "ok")
        .await
    {
        tracing::error!(%err, "could not write the audit entry of a console logout");
    }
    let mut resp = see_other("/login");
    resp.headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie());
    Ok(resp)
}

#[cfg(test)]
pub(super) fn cookie_of(headers: &HeaderMap, name: &str) -> Option<String> {
    cookie_value(headers, name).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_session_is_ended_for_whoever_still_holds_it() {
        let sessions = Sessions::default();
        let (id, held) = sessions.create("rpo_secret");
        assert!(held.live());
        assert!(sessions.get(&id).is_some());
        sessions.remove(&id);
        assert!(!held.live(), "a live view holding it must see the logout");
        assert!(sessions.get(&id).is_none());
        assert_eq!(sessions.held(), 0);
    }

    #[test]
    fn login_codes_work_once() {
        let sessions = Sessions::default();
        let code = sessions.login_code("rpo_secret");
        assert_eq!(sessions.take_code(&code).as_deref(), Some("rpo_secret"));
        assert_eq!(sessions.take_code(&code), None);
        assert_eq!(sessions.take_code("made-up"), None);
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            m
        };
        assert!(cross_site(&h(&[("sec-fetch-site", "cross-site")]), None));
        assert!(!cross_site(&h(&[("sec-fetch-site", "same-origin")]), None));
        assert!(!cross_site(
            &h(&[("origin", "https://c:7444"), ("host", "c:7444")]),
            None
        ));
        assert!(cross_site(
            &h(&[("origin", "https://evil"), ("host", "c:7444")]),
            None
        ));
        // HTTP/2: the host is the request's authority.
        assert!(!cross_site(
            &h(&[("origin", "https://c:7444")]),
            Some("c:7444")
        ));
        assert!(cross_site(
            &h(&[("origin", "https://evil")]),
            Some("c:7444")
        ));
        assert!(!cross_site(&h(&[("origin", "null")]), Some("c:7444")));
    }
}
