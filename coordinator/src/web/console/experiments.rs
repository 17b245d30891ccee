//! Experiments and game days: the runs with their verdicts, and a live view of one run (stages,
//! per-target fault state, probes, halts, notes) that follows the run over server-sent events
//! while any number of people watch. Approve, note and abort are forms: they work without
//! script, and every watcher sees their effect on the timeline.

use std::convert::Infallible;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rampart_proto::v1::experiment_service_server::ExperimentService;
use rampart_proto::v1::{
    AbortRunRequest, ApproveGameDayRequest, GetRunRequest, ListRunsRequest, NoteGameDayRequest, Run,
};
use serde::Deserialize;
use tokio_stream::StreamExt as _;

use super::html::{Section, button, csrf, frame, tag, time};
use super::session::Caller;
use super::{Console, Page, Shared, see_other};
use crate::store::Role;

/// Runs listed.
const LIST_LIMIT: u32 = 200;
/// Changes closer together than this are sent as one update.
const COALESCE: Duration = Duration::from_millis(50);
/// A quiet live view still checks its session and token this often.
const RECHECK: Duration = Duration::from_secs(30);

pub async fn list(State(console): Shared, caller: Caller) -> Page {
    let runs = console
        .experiments
        .list_runs(caller.request(ListRunsRequest {
            kind: String::new(),
            limit: LIST_LIMIT,
        }))
        .await?
        .into_inner()
        .runs;
    let body = html! {
        table #runs {
            thead { tr { th { "Run" } th { "Kind" } th { "Name" } th { "State" } th { "Verdict" } th { "Started" } th { "By" } th { "Reason" } } }
            tbody {
                @for r in &runs {
                    tr {
                        td { a href={ "/experiments/" (r.id) } { code { (r.id) } } }
                        td { (r.kind) @if r.preview { " (preview)" } }
                        td { (r.name) }
                        td { (tag(&r.state)) }
                        td { @if !r.verdict.is_empty() { (tag(&r.verdict)) } }
                        td { (time(r.started_unix_ms)) }
                        td { (r.created_by) }
                        td { (r.reason) }
                    }
                }
            }
        }
        @if runs.is_empty() { p.hint { "No experiment has run yet. Start one with " code { "rampart experiment run FILE" } "." } }
    };
    Ok(frame(
        "Experiments and game days",
        &caller,
        Section::Experiments,
        false,
        body,
    ))
}

async fn get_run(console: &Console, caller: &Caller, id: &str) -> Result<Run, tonic::Status> {
    Ok(console
        .experiments
        .get_run(caller.request(GetRunRequest {
            id: id.to_string(),
            after_seq: 0,
        }))
        .await?
        .into_inner())
}

fn ms(v: i64) -> String {
    if v < 0 { "-".into() } else { format!("{v} ms") }
}

/// The part of the run page that changes: rendered for the first load and for every update.
fn panel(caller: &Caller, run: &Run) -> Markup {
    let faults: Vec<_> = std::iter::once(run)
        .chain(run.children.iter())
        .flat_map(|r| r.faults.iter().map(move |f| (r, f)))
        .collect();
    let probes: Vec<_> = std::iter::once(run)
        .chain(run.children.iter())
        .flat_map(|r| r.probes.iter().map(move |p| (r, p)))
        .collect();
    html! {
        div.cards {
            div.card { b #run-state { (run.state) } "state" }
            div.card { b #run-verdict { (if run.verdict.is_empty() { "-" } else { &run.verdict }) } "verdict" }
            @if !run.stage.is_empty() { div.card { b #run-stage { (run.stage) } "stage" } }
            div.card { b { (ms(run.halt_latency_ms)) } "halt latency" }
            div.card { b { (ms(run.recovery_ms)) } "recovery" }
        }
        @if !run.reason.is_empty() { p.error #run-reason { (run.reason) } }
        @if run.state == "waiting_approval" {
            div.panel #approval {
                p { "Waiting for approval to go on to the next stage." }
                (button(caller, Role::Operator, &format!("/experiments/{}/approve", run.id), "Approve", html! {}))
            }
        }
        @if !run.children.is_empty() {
            h2 { "Stages" }
            table #stages {
                thead { tr { th { "Stage" } th { "Experiment" } th { "State" } th { "Verdict" } th { "Reason" } } }
                tbody {
                    @for c in &run.children {
                        tr {
                            td { (c.stage) }
                            td { a href={ "/experiments/" (c.id) } { (c.name) } }
                            td { (tag(&c.state)) }
                            td { @if !c.verdict.is_empty() { (tag(&c.verdict)) } }
                            td { (c.reason) }
                        }
                    }
                }
            }
        }
        h2 { "Faults per target" }
        table #run-faults {
            thead { tr { th { "Host" } th { "Experiment" } th { "Step" } th { "Kind" } th { "State" } th { "Detail" } } }
            tbody {
                @for (r, f) in &faults {
                    tr { td { (f.hostname) } td { (r.name) } td { (f.step + 1) } td { (f.kind) } td { (tag(&f.state)) } td { (f.detail) } }
                }
            }
        }
        h2 { "Probes" }
        table #probes {
            thead { tr { th { "Probe" } th { "From" } th.num { "Checks" } th.num { "Misses" } th.num { "Longest miss run" } th { "Last" } } }
            tbody {
                @for (_, p) in &probes {
                    tr {
                        td { (p.name) " (" (p.kind) ")" } td { (p.source) }
                        td.num { (p.checks) } td.num { (p.misses) } td.num { (p.max_consecutive) }
                        td { (tag(if p.last_ok { "ok" } else { "fail" })) " " (p.last_detail) }
                    }
                }
            }
        }
        h2 { "Timeline" }
        ol.timeline #timeline {
            @for e in &run.timeline {
                li class=(e.kind) data-seq=(e.seq) {
                    (time(e.at_unix_ms)) " " (tag(&e.kind)) " "
                    @if !e.hostname.is_empty() { b { (e.hostname) } " " }
                    (e.detail)
                    @if !e.actor.is_empty() { " — " i { (e.actor) } }
                }
            }
        }
    }
}

pub async fn page(State(console): Shared, caller: Caller, Path(id): Path<String>) -> Page {
    let run = get_run(&console, &caller, &id).await?;
    let live = run.state != "finished";
    let title = format!(
        "{} {}",
        if run.kind == "gameday" {
            "Game day"
        } else {
            "Experiment"
        },
        run.name
    );
    let body = html! {
        p {
            code { (run.id) } " started " (time(run.started_unix_ms)) " by " (run.created_by)
            @if !run.gameday_id.is_empty() { ", part of game day " a href={ "/experiments/" (run.gameday_id) } { code { (run.gameday_id) } } }
            @if live { " · " span.live-status { "live: connecting…" } }
        }
        @if live && caller.can(Role::Operator) {
            (button(&caller, Role::Operator, &format!("/experiments/{}/abort", run.id), "Abort", html! {
                input type="hidden" name="reason" value="aborted from the console";
            }))
        }
        @if run.kind == "gameday" {
            form.note method="post" action={ "/experiments/" (run.id) "/note" } {
                (csrf(&caller))
                label for="note-text" { "Note " }
                input #note-text name="text" size="60" maxlength="2000" required;
                " " button type="submit" { "Add note" }
            }
        }
        div #live data-live=[live.then(|| format!("/experiments/{}/events", run.id))] {
            (panel(&caller, &run))
        }
        @if !run.plan.is_empty() {
            h2 { "Plan" }
            ul { @for step in &run.plan { li { (step) } } }
        }
    };
    Ok(frame(&title, &caller, Section::Experiments, live, body))
}

/// Server-sent events: `panel` with the run's panel each time the run changes, then `done`
/// when it has finished. Every watcher has its own stream; all wake on the same signal.
pub async fn events(State(console): Shared, caller: Caller, Path(id): Path<String>) -> Response {
    // Fail before the stream starts when the run does not exist or the caller may not see it.
    if let Err(status) = get_run(&console, &caller, &id).await {
        return super::html::PageError::from(status).into_response();
    }
    let mut changes = console.state.store.watch_runs();
    let shutdown = console.state.shutdown.clone();
    let stream = async_stream(move |tx| async move {
        let mut last = String::new();
        loop {
            let run = match get_run(&console, &caller, &id).await {
                Ok(r) => r,
                Err(status) => {
                    tracing::debug!(%status, run = %id, "console: live view ends");
                    break;
                }
            };
            let html = panel(&caller, &run).into_string();
            if html != last {
                if tx
                    .send(Event::default().event("panel").data(&html))
                    .await
                    .is_err()
                {
                    return;
                }
                last = html;
            }
            if run.state == "finished" {
                let _ = tx
                    .send(Event::default().event("done").data("finished"))
                    .await;
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                r = changes.changed() => if r.is_err() { return },
                // Looks again now and then: a logout or a revoked token ends the stream even
                // when the run is quiet.
                _ = tokio::time::sleep(RECHECK) => {}
            }
            if !caller.session.live() {
                return;
            }
            tokio::time::sleep(COALESCE).await;
            changes.borrow_and_update();
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A stream fed by a task: the task ends when the browser goes away (its sends fail).
fn async_stream<F, Fut>(
    f: F,
) -> impl futures::Stream<Item = Result<Event, Infallible>> + Send + 'static
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok)
}

#[derive(Deserialize)]
pub struct ReasonForm {
    csrf: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub struct NoteForm {
    csrf: String,
    text: String,
}

pub async fn approve(
    State(console): Shared,
    caller: Caller,
    Path(id): Path<String>,
    Form(f): Form<super::session::CsrfForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    console
        .experiments
        .approve_game_day(caller.request(ApproveGameDayRequest { id: id.clone() }))
        .await?;
    Ok(see_other(&format!("/experiments/{id}")))
}

pub async fn note(
    State(console): Shared,
    caller: Caller,
    Path(id): Path<String>,
    Form(f): Form<NoteForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    console
        .experiments
        .note_game_day(caller.request(NoteGameDayRequest {
            id: id.clone(),
            text: f.text,
        }))
        .await?;
    Ok(see_other(&format!("/experiments/{id}")))
}

pub async fn abort(
    State(console): Shared,
    caller: Caller,
    Path(id): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    let reason = if f.reason.trim().is_empty() {
        "aborted from the console".to_string()
    } else {
        f.reason
    };
    console
        .experiments
        .abort_run(caller.request(AbortRunRequest {
            id: id.clone(),
            reason,
        }))
        .await?;
    Ok(see_other(&format!("/experiments/{id}")))
}
