//! Faults: what is injected where, a revert button per fault, and the emergency stop (with a
//! confirmation the server checks, so it works without script).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use maud::html;
use rampart_proto::v1::chaos_service_server::ChaosService;
use rampart_proto::v1::{
    AgentFaults, EmergencyStopRequest, FaultsResponse, ListFaultsRequest, RevertFaultsRequest,
};
use serde::Deserialize;

use super::html::{PageError, Section, button, csrf, frame, tag, time};
use super::session::Caller;
use super::{Page, Shared};
use crate::store::Role;

#[derive(Deserialize, Default)]
pub struct View {
    /// Show reverted faults too.
    #[serde(default)]
    all: bool,
}

fn outcome(title: &str, resp: &FaultsResponse) -> maud::Markup {
    let faults: usize = resp.agents.iter().map(|a| a.faults.len()).sum();
    let failed: Vec<&AgentFaults> = resp.agents.iter().filter(|a| !a.error.is_empty()).collect();
    html! {
        p.notice #outcome { (title) ": " (faults) " fault(s) on " (resp.agents.len()) " host(s) confirmed." }
        @for a in failed { p.error { (a.hostname) ": " (a.error) } }
    }
}

async fn render(console: &super::Console, caller: &Caller, all: bool, note: maud::Markup) -> Page {
    let resp = console
        .chaos
        .list_faults(caller.request(ListFaultsRequest { active: !all }))
        .await?
        .into_inner();
    let count: usize = resp.agents.iter().map(|a| a.faults.len()).sum();
    let body = html! {
        (note)
        @if caller.can(Role::Operator) {
            section.panel.danger {
                h2 { "Emergency stop" }
                p { "Reverts every fault on every host and aborts every running experiment and game day." }
                form method="post" action="/faults/emergency-stop" {
                    (csrf(caller))
                    label { input #confirm-stop type="checkbox" name="confirm" value="yes" required; " I mean it: revert everything now" }
                    " "
                    button.danger #emergency-stop type="submit" { "Emergency stop" }
                }
            }
        }
        p {
            @if all { (count) " fault(s). " a href="/faults" { "Active only" } }
            @else { (count) " active fault(s). " a href="/faults?all=true" { "Include reverted" } }
        }
        table #faults {
            thead { tr { th { "Host" } th { "Fault" } th { "Kind" } th { "State" } th { "Started" } th { "Ends" } th { "Detail" } th {} } }
            tbody {
                @for a in &resp.agents {
                    @for f in &a.faults {
                        tr {
                            td { (a.hostname) }
                            td { code { (f.fault_id) } }
                            td { (f.kind) }
                            td { (tag(&f.state)) }
                            td { (time(f.started_unix_ms)) }
                            td { (time(f.ends_unix_ms)) }
                            td { (f.detail) @if !f.reverted_by.is_empty() { " (reverted by " (f.reverted_by) ")" } }
                            td {
                                @if f.state == "active" {
                                    (button(caller, Role::Operator, "/faults/revert", "Revert", html! {
                                        input type="hidden" name="fault_id" value=(f.fault_id);
                                    }))
                                }
                            }
                        }
                    }
                    @if !a.error.is_empty() {
                        tr { td { (a.hostname) } td colspan="7" { span.error { (a.error) } } }
                    }
                }
            }
        }
    };
    Ok(frame("Faults", caller, Section::Faults, false, body))
}

pub async fn page(State(console): Shared, caller: Caller, Query(v): Query<View>) -> Page {
    render(&console, &caller, v.all, html! {}).await
}

#[derive(Deserialize)]
pub struct RevertForm {
    csrf: String,
    fault_id: String,
}

pub async fn revert(State(console): Shared, caller: Caller, Form(f): Form<RevertForm>) -> Page {
    caller.check_csrf(&f.csrf)?;
    let resp = console
        .chaos
        .revert_faults(caller.request(RevertFaultsRequest {
            fault_id: f.fault_id.trim().to_string(),
            ..Default::default()
        }))
        .await?
        .into_inner();
    render(&console, &caller, false, outcome("Revert", &resp)).await
}

#[derive(Deserialize)]
pub struct StopForm {
    csrf: String,
    #[serde(default)]
    confirm: String,
}

pub async fn emergency_stop(
    State(console): Shared,
    caller: Caller,
    Form(f): Form<StopForm>,
) -> Page {
    caller.check_csrf(&f.csrf)?;
    if f.confirm != "yes" {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "The emergency stop needs its confirmation box ticked.",
        ));
    }
    let resp = console
        .chaos
        .emergency_stop(caller.request(EmergencyStopRequest {}))
        .await?
        .into_inner();
    render(&console, &caller, false, outcome("Emergency stop", &resp)).await
}
