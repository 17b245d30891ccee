//! The console's page frame and the small pieces every page uses. Markup is built with `maud`,
//! which escapes every value it is given: nothing a host or an operator wrote reaches a page
//! unescaped. Only markup the coordinator renders itself (the threat diagram) is passed through.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::Caller;
use crate::store::Role;

/// An error shown as a page.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<tonic::Status> for PageError {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let status = match s.code() {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, s.message().to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_string();
        (
            self.status,
            bare_page(
                &title,
                html! {
                    h1 { (title) }
                    p.error role="alert" { (self.message) }
                    p { a href="/fleet" { "Back to the console" } }
                },
            ),
        )
            .into_response()
    }
}

pub fn not_found() -> Response {
    PageError::new(StatusCode::NOT_FOUND, "There is no such page.").into_response()
}

fn head(title: &str, extra: Markup) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Rampart" }
        link rel="stylesheet" href="/assets/console.css";
        link rel="icon" href="data:,";
        (extra)
    }
}

/// A page without navigation (login, errors).
pub fn bare_page(title: &str, body: Markup) -> Html<String> {
    page_with_head(title, html! {}, body)
}

/// A page without navigation, with extra elements in its head.
pub fn page_with_head(title: &str, extra: Markup, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head { (head(title, extra)) }
                body.bare { main { (body) } }
            }
        }
        .into_string(),
    )
}

/// The console's sections, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Fleet,
    Compliance,
    Faults,
    Experiments,
    Threats,
}

const SECTIONS: [(Section, &str, &str); 5] = [
    (Section::Fleet, "/fleet", "Fleet"),
    (Section::Compliance, "/compliance", "Compliance"),
    (Section::Faults, "/faults", "Faults"),
    (Section::Experiments, "/experiments", "Experiments"),
    (Section::Threats, "/threats", "Threat model"),
];

/// A console page: navigation, who is logged in, a logout button, then `body`. `script`: load
/// the console's script (the live views).
pub fn frame(title: &str, caller: &Caller, at: Section, script: bool, body: Markup) -> Response {
    let p = &caller.principal;
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    (head(title, html! {
                        @if script { script src="/assets/console.js" defer {} }
                    }))
                }
                body {
                    header {
                        nav {
                            span.brand { "Rampart" }
                            @for (s, href, label) in SECTIONS {
                                a href=(href) class=[(s == at).then_some("active")] { (label) }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            span.who { (p.name) " · " (p.role.as_str()) }
                            (csrf(caller))
                            button type="submit" { "Log out" }
                        }
                    }
                    main { h1 { (title) } (body) }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

/// The hidden field every form that changes something carries.
pub fn csrf(caller: &Caller) -> Markup {
    html! { input type="hidden" name="csrf" value=(caller.session.csrf); }
}

/// A form with one button, shown only to callers whose role is at least `role`.
pub fn button(caller: &Caller, role: Role, action: &str, label: &str, fields: Markup) -> Markup {
    if !caller.can(role) {
        return html! {};
    }
    html! {
        form.inline method="post" action=(action) {
            (csrf(caller))
            (fields)
            button type="submit" { (label) }
        }
    }
}

/// Unix ms as `2026-12-01 04:05:06Z`; `-` for 0.
pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

/// A status or severity as a coloured tag (the class is the lowercased word).
pub fn tag(word: &str) -> Markup {
    let class: String = word
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    html! { span class={ "tag " (class) } { (word) } }
}

/// A line chart of (time, percent) points, as inline SVG drawn with attributes only (the CSP
/// allows no inline style).
pub fn score_chart(points: &[(i64, f64)]) -> Markup {
    const W: f64 = 640.0;
    const H: f64 = 160.0;
    const PAD: f64 = 32.0;
    if points.len() < 2 {
        return html! { p.hint { "The chart appears after two sweeps." } };
    }
    let (t0, t1) = (points[0].0, points[points.len() - 1].0);
    let span = (t1 - t0).max(1) as f64;
    let x = |t: i64| PAD + (t - t0) as f64 / span * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD / 2.0 - v.clamp(0.0, 100.0) / 100.0 * (H - PAD);
    let path: String = points
        .iter()
        .enumerate()
        .map(|(i, (t, v))| {
            format!(
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { " L" },
                x(*t),
                y(*v)
            )
        })
        .collect();
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"compliance score over time\">"
    );
    for pct in [0.0, 50.0, 100.0] {
        svg.push_str(&format!(
            "<line x1=\"{PAD}\" x2=\"{:.0}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#d5d8dc\"/><text x=\"2\" y=\"{:.1}\" font-size=\"10\" fill=\"#566573\">{pct:.0}%</text>",
            W - PAD,
            y(pct) + 3.0,
            y = y(pct)
        ));
    }
    svg.push_str(&format!(
        "<path d=\"{path}\" fill=\"none\" stroke=\"#1f618d\" stroke-width=\"2\"/>"
    ));
    for (t, v) in points {
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f618d\"><title>{} {v:.1}%</title></circle>",
            x(*t),
            y(*v),
            time(*t)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{PAD}\" y=\"{H}\" font-size=\"10\" fill=\"#566573\">{}</text><text x=\"{:.0}\" y=\"{H}\" font-size=\"10\" fill=\"#566573\" text-anchor=\"end\">{}</text></svg>",
        time(t0),
        W - PAD,
        time(t1)
    ));
    PreEscaped(svg)
}
