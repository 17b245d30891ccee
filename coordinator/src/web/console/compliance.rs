//! Compliance: scores per host and per group, the score over time, failing checks with their
//! evidence, drift, starting a sweep, and stored sweeps with their downloads.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use futures::StreamExt;
use maud::{Markup, html};
use rampart_proto::v1::compliance_service_server::ComplianceService;
use rampart_proto::v1::sweep_event::Event;
use rampart_proto::v1::{
    DriftRequest, GetSweepRequest, GetSweepResponse, HostResult, ListPacksRequest, StatusRequest,
    SweepRequest,
};
use serde::Deserialize;

use super::html::{PageError, Section, button, frame, score_chart, tag, time};
use super::session::Caller;
use super::{Page, Shared, see_other};
use crate::api::store_status;
use crate::report::{self, SweepReport};
use crate::store::Role;

/// Sweeps in the list and points on the chart.
const RECENT_SWEEPS: u32 = 60;
/// How far back the drift table looks.
const DRIFT_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

#[derive(Deserialize, Default)]
pub struct View {
    /// The label whose values group the scores.
    #[serde(default)]
    group: String,
}

fn pct(score: f64) -> String {
    format!("{score:.1}%")
}

pub async fn page(State(console): Shared, caller: Caller, Query(v): Query<View>) -> Page {
    let api = &console.compliance;
    let status = api
        .status(caller.request(StatusRequest {}))
        .await?
        .into_inner();
    let since = rampart_common::time::now_ms() - DRIFT_WINDOW_MS;
    let drift = api
        .drift(caller.request(DriftRequest {
            since_unix_ms: since,
        }))
        .await?
        .into_inner()
        .events;
    let packs = api
        .list_packs(caller.request(ListPacksRequest {}))
        .await?
        .into_inner()
        .packs;
    let sweeps = console
        .state
        .store
        .recent_sweeps(RECENT_SWEEPS)
        .await
        .map_err(store_status)?;
    let mut points: Vec<(i64, f64)> = sweeps
        .iter()
        .filter(|s| s.finished_at.is_some())
        .filter_map(|s| s.score().map(|v| (s.started_at, v)))
        .collect();
    points.reverse();
    let group = if v.group.trim().is_empty() {
        "env".to_string()
    } else {
        v.group.trim().to_string()
    };
    let groups = report::score_groups(&status.hosts, &group);
    // Evidence of the failures in the newest finished sweep.
    let latest = match sweeps.iter().find(|s| s.finished_at.is_some()) {
        Some(s) => Some(
            api.get_sweep(caller.request(GetSweepRequest {
                sweep_id: s.id.clone(),
            }))
            .await?
            .into_inner(),
        ),
        None => None,
    };
    let mut failing: Vec<_> = status.rules.iter().filter(|r| r.fail > 0).collect();
    failing.sort_by_key(|r| std::cmp::Reverse(severity_rank(&r.severity)));

    let body = html! {
        section.panel {
            h2 { "Score over time" }
            (score_chart(&points))
        }
        @if caller.can(Role::Operator) {
            section.panel {
                h2 { "Start a sweep" }
                (button(&caller, Role::Operator, "/compliance/sweep", "Start sweep", html! {
                    label for="sweep-selector" { "Selector " }
                    input #sweep-selector name="selector" placeholder="all agents" size="24";
                    " "
                    label for="sweep-pack" { "Pack " }
                    select #sweep-pack name="pack" {
                        @for p in &packs { option value=(p.name) selected[p.name == "linux-baseline"] { (p.name) " (" (p.checks) " checks)" } }
                    }
                    " "
                }))
            }
        }
        h2 { "Hosts" }
        table #host-scores {
            thead { tr { th { "Host" } th.num { "Score" } th.num { "Pass" } th.num { "Fail" } th.num { "Error" } th { "Checked" } th { "Sweep" } } }
            tbody {
                @for h in &status.hosts {
                    tr {
                        td { (h.hostname) }
                        td.num { (pct(h.score)) }
                        td.num { (h.pass) } td.num { (h.fail) } td.num { (h.error) }
                        td { (time(h.checked_unix_ms)) }
                        td { a href={ "/compliance/sweeps/" (h.sweep_id) } { code { (h.sweep_id) } } }
                    }
                }
            }
        }
        @if status.hosts.is_empty() { p.hint { "No host has been checked yet." } }
        h2 { "By " (group) }
        form method="get" action="/compliance" {
            label for="group" { "Group by label " }
            input #group name="group" value=(group) size="12";
            " " button type="submit" { "Group" }
        }
        table #group-scores {
            thead { tr { th { (group) } th.num { "Hosts" } th.num { "Score" } th.num { "Pass" } th.num { "Fail" } th.num { "Error" } } }
            tbody {
                @for g in &groups {
                    tr { td { (g.value) } td.num { (g.hosts) } td.num { (pct(g.score)) } td.num { (g.pass) } td.num { (g.fail) } td.num { (g.error) } }
                }
            }
        }
        h2 { "Failing checks" }
        table #failing {
            thead { tr { th { "Check" } th { "Severity" } th.num { "Failing hosts" } th { "Evidence (newest sweep)" } } }
            tbody {
                @for r in &failing {
                    tr {
                        td { code { (r.rule) } }
                        td { (tag(&r.severity)) }
                        td.num { (r.fail) }
                        td { (evidence_of(latest.as_ref(), &r.rule)) }
                    }
                }
            }
        }
        @if failing.is_empty() { p.hint { "No check fails on any host's latest sweep." } }
        h2 { "Drift (last 7 days)" }
        table #drift {
            thead { tr { th { "When" } th { "Host" } th { "Check" } th { "From" } th { "To" } th { "Sweep" } } }
            tbody {
                @for d in drift.iter().rev().take(200) {
                    tr {
                        td { (time(d.at_unix_ms)) } td { (d.hostname) } td { code { (d.rule) } }
                        td { (tag(&d.from_status)) } td { (tag(&d.to_status)) }
                        td { a href={ "/compliance/sweeps/" (d.sweep_id) } { code { (d.sweep_id) } } }
                    }
                }
            }
        }
        @if drift.is_empty() { p.hint { "No check changed its verdict in the last 7 days." } }
        h2 { "Sweeps" }
        table #sweeps {
            thead { tr { th { "Sweep" } th { "Started" } th { "Pack" } th { "Selector" } th { "By" } th.num { "Hosts" } th.num { "Unreachable" } th.num { "Score" } } }
            tbody {
                @for s in &sweeps {
                    tr {
                        td { a href={ "/compliance/sweeps/" (s.id) } { code { (s.id) } } }
                        td { (time(s.started_at)) @if s.finished_at.is_none() { " " (tag("running")) } }
                        td { (s.pack) } td { code { (s.selector) } } td { (s.actor) }
                        td.num { (s.hosts) } td.num { (s.unreachable) }
                        td.num { (s.score().map(pct).unwrap_or_else(|| "-".into())) }
                    }
                }
            }
        }
    };
    Ok(frame(
        "Compliance",
        &caller,
        Section::Compliance,
        false,
        body,
    ))
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

/// The failing hosts of `rule` in `sweep`, each with its evidence.
fn evidence_of(sweep: Option<&GetSweepResponse>, rule: &str) -> Markup {
    let Some(s) = sweep else {
        return html! {};
    };
    let hosts: Vec<_> = s
        .hosts
        .iter()
        .filter_map(|h| {
            h.results
                .iter()
                .find(|v| v.rule == rule && v.status == "fail")
                .map(|v| (h, v))
        })
        .collect();
    html! {
        @for (h, v) in hosts.iter().take(20) {
            details { summary { (h.hostname) } pre { (pretty(&v.evidence_json)) } }
        }
        @if hosts.len() > 20 { p.hint { (hosts.len() - 20) " more in " a href={ "/compliance/sweeps/" (s.sweep_id) } { "the sweep" } } }
    }
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_string())
}

#[derive(Deserialize)]
pub struct SweepForm {
    csrf: String,
    #[serde(default)]
    selector: String,
    #[serde(default)]
    pack: String,
}

/// Starts a sweep and shows it; the sweep runs to its end whatever the browser does.
pub async fn start_sweep(State(console): Shared, caller: Caller, Form(f): Form<SweepForm>) -> Page {
    caller.check_csrf(&f.csrf)?;
    let mut stream = console
        .compliance
        .sweep(caller.request(SweepRequest {
            selector: f.selector.trim().to_string(),
            pack: f.pack.trim().to_string(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    let id = match stream.next().await {
        Some(Ok(e)) => match e.event {
            Some(Event::Started(s)) => s.sweep_id,
            Some(Event::Summary(s)) => s.sweep_id,
            _ => String::new(),
        },
        Some(Err(status)) => return Err(status.into()),
        None => String::new(),
    };
    if id.is_empty() {
        return Err(PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the sweep did not say its id",
        ));
    }
    tokio::spawn(async move { while stream.next().await.is_some() {} });
    Ok(see_other(&format!("/compliance/sweeps/{id}")))
}

fn count(h: &HostResult, status: &str) -> usize {
    h.results.iter().filter(|v| v.status == status).count()
}

const FORMATS: [(&str, &str); 5] = [
    ("json", "JSON"),
    ("sarif", "SARIF"),
    ("oscal", "OSCAL"),
    ("junit", "JUnit"),
    ("md", "Markdown"),
];

pub async fn sweep_page(State(console): Shared, caller: Caller, Path(id): Path<String>) -> Page {
    let mut s = console
        .compliance
        .get_sweep(caller.request(GetSweepRequest { sweep_id: id }))
        .await?
        .into_inner();
    s.hosts
        .sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    let running = s.finished_unix_ms == 0 && !s.interrupted;
    let sum = s.summary.clone().unwrap_or_default();
    let body = html! {
        @if running {
            // Reloads itself until the sweep is done; no script needed.
            meta http-equiv="refresh" content="2";
            p.notice #sweep-state { "Running: " (s.hosts.len()) " of " (s.selected) " host(s) reported. This page reloads until it is done." }
        } @else if s.interrupted {
            p.error #sweep-state { "Interrupted: the coordinator stopped before this sweep finished." }
        } @else {
            p.notice #sweep-state { "Finished " (time(s.finished_unix_ms)) " in " (sum.duration_ms) " ms." }
        }
        div.cards {
            div.card { b { (s.selected) } "hosts selected" }
            div.card { b #sum-pass { (sum.pass) } "pass" }
            div.card { b #sum-fail { (sum.fail) } "fail" }
            div.card { b { (sum.error) } "error" }
            div.card { b #sum-waived { (sum.waived) } "waived" }
            div.card { b { (sum.unreachable) } "unreachable" }
        }
        p {
            "Pack " code { (s.pack) } ", selector " code { (if s.selector.is_empty() { "(all)" } else { &s.selector }) }
            ", started " (time(s.started_unix_ms)) " by " (s.actor) ". Download: "
            @for (ext, label) in FORMATS {
                a href={ "/compliance/sweeps/" (s.sweep_id) "/report." (ext) } download { (label) } " "
            }
        }
        table #sweep-hosts {
            thead { tr { th { "Host" } th { "Status" } th.num { "Pass" } th.num { "Fail" } th.num { "Error" } th { "Failures" } } }
            tbody {
                @for h in &s.hosts {
                    tr {
                        td { (h.hostname) }
                        td { (tag(&h.status)) @if !h.message.is_empty() { " " span.hint { (h.message) } } }
                        td.num { (count(h, "pass")) } td.num { (count(h, "fail")) } td.num { (count(h, "error")) }
                        td {
                            @for v in h.results.iter().filter(|v| v.status == "fail" || v.status == "error") {
                                details {
                                    summary { (tag(&v.severity)) " " code { (v.rule) } " " (v.title) }
                                    pre { (pretty(&v.evidence_json)) }
                                }
                            }
                            @for (v, w) in h.results.iter().filter_map(|v| v.waiver.as_ref().map(|w| (v, w))) {
                                details.waived {
                                    summary { (tag("waived")) " " code { (v.rule) } " " (v.title) }
                                    p { (crate::report::waiver_text(w)) }
                                    pre { (pretty(&v.evidence_json)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(frame(
        &format!("Sweep {}", s.sweep_id),
        &caller,
        Section::Compliance,
        false,
        body,
    ))
}

/// A stored sweep as a file, in the formats the CLI writes.
pub async fn download(
    State(console): Shared,
    caller: Caller,
    Path((id, format)): Path<(String, String)>,
) -> Page {
    let api = &console.compliance;
    let mut s = api
        .get_sweep(caller.request(GetSweepRequest { sweep_id: id }))
        .await?
        .into_inner();
    s.hosts
        .sort_by(|a, b| (&a.hostname, &a.agent_id).cmp(&(&b.hostname, &b.agent_id)));
    let (version, checks) = api
        .list_packs(caller.request(ListPacksRequest {}))
        .await?
        .into_inner()
        .packs
        .into_iter()
        .find(|p| p.name == s.pack)
        .map(|p| (p.version, p.check_info))
        .unwrap_or_default();
    let summary = s.summary.clone().unwrap_or_default();
    let r = SweepReport {
        sweep_id: &s.sweep_id,
        pack: &s.pack,
        pack_version: &version,
        started_unix_ms: s.started_unix_ms,
        finished_unix_ms: s.finished_unix_ms,
        hosts: &s.hosts,
        summary: &summary,
        checks: &checks,
        profiled: false,
        interrupted: s.interrupted,
    };
    let json = |v: serde_json::Value| serde_json::to_string_pretty(&v).unwrap_or_default();
    let (body, kind, ext) = match format.as_str() {
        "json" => (
            serde_json::to_string_pretty(&report::JsonReport::new(&r)).unwrap_or_default(),
            "application/json",
            "json",
        ),
        "sarif" => (json(report::sarif(&r)), "application/sarif+json", "sarif"),
        "oscal" => (json(report::oscal(&r)), "application/json", "oscal.json"),
        "junit" => (report::junit(&r), "application/xml", "junit.xml"),
        "md" => (report::markdown(&r), "text/markdown; charset=utf-8", "md"),
        other => {
            return Err(PageError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "no report format {other:?}; the console offers json, sarif, oscal, junit and md"
                ),
            ));
        }
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}.{ext}\"",
        s.sweep_id
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}
