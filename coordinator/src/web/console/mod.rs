//! The web console: server-rendered pages over HTTPS for the people who would rather look than
//! type. Every page and every button goes through the same gRPC service code the CLI calls (in
//! process, with the session's operator token), so roles, validation and the audit trail are the
//! API's own. Sessions live in memory; a coordinator restart asks everyone to log in again.
//!
//! Security: TLS with the coordinator's certificate; a session cookie that is `HttpOnly`,
//! `Secure`, `SameSite=Strict` and expires; a per-session CSRF token on every change plus a
//! refusal of cross-site requests (`Sec-Fetch-Site`, `Origin`); a strict Content-Security-Policy
//! (no inline script or style, every asset from the coordinator itself); bounded request bodies
//! and connection counts.

mod assets;
mod compliance;
mod experiments;
mod faults;
mod fleet;
mod html;
mod serve;
mod session;
#[cfg(test)]
mod tests;
mod threats;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::api::AppState;
use crate::api::chaos::ChaosApi;
use crate::api::compliance::ComplianceApi;
use crate::api::experiments::ExperimentApi;
use crate::api::fleet::FleetApi;
use crate::api::threats::ThreatApi;

pub use serve::{serve, tls_config};
pub use session::Sessions;

/// A form is a few fields; nothing the console accepts is larger.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The console's Content-Security-Policy: only the coordinator's own script and style, no
/// inline code, no framing, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console's handlers share.
pub struct Console {
    pub state: Arc<AppState>,
    pub sessions: Sessions,
    fleet: FleetApi,
    compliance: ComplianceApi,
    chaos: ChaosApi,
    experiments: ExperimentApi,
    threats: ThreatApi,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    pub fn new(state: Arc<AppState>) -> Arc<Self> {
        Arc::new(Self {
            sessions: Sessions::default(),
            fleet: FleetApi::new(state.clone()),
            compliance: ComplianceApi::new(state.clone()),
            chaos: ChaosApi::new(state.clone()),
            experiments: ExperimentApi::new(state.clone()),
            threats: ThreatApi::new(state.clone()),
            state,
        })
    }
}

/// Every route of the console.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/fleet") }))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/fleet", get(fleet::page))
        .route("/compliance", get(compliance::page))
        .route("/compliance/sweep", post(compliance::start_sweep))
        .route("/compliance/sweeps/{id}", get(compliance::sweep_page))
        .route(
            "/compliance/sweeps/{id}/report.{format}",
            get(compliance::download),
        )
        .route("/faults", get(faults::page))
        .route("/faults/revert", post(faults::revert))
        .route("/faults/emergency-stop", post(faults::emergency_stop))
        .route("/experiments", get(experiments::list))
        .route("/experiments/{id}", get(experiments::page))
        .route("/experiments/{id}/events", get(experiments::events))
        .route("/experiments/{id}/approve", post(experiments::approve))
        .route("/experiments/{id}/note", post(experiments::note))
        .route("/experiments/{id}/abort", post(experiments::abort))
        .route("/threats", get(threats::page))
        .route("/threats/risks/{id}", get(threats::risk_page))
        .route("/threats/report.html", get(threats::report))
        .route("/assets/{name}", get(assets::asset))
        .fallback(|| async { html::not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(console)
}

/// Headers every answer carries, and how long the server took (for the benchmark and for
/// anyone looking at the browser's network panel).
async fn security_headers(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // Same-origin requests keep their Origin header (checked on posts); nothing leaves.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set(h, header::CACHE_CONTROL, "no-store");
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert("server-timing", v);
    }
    resp
}

/// The state extractor every handler uses.
type Shared = State<Arc<Console>>;

/// What a handler answers: a page, a redirect, or an error page.
type Page = Result<Response, html::PageError>;

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
