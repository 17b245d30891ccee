//! The fleet page: every agent with its state, labels, last contact, version and capabilities,
//! filtered by a label selector.

use axum::extract::Query;
use maud::html;
use rampart_proto::v1::fleet_service_server::FleetService;
use rampart_proto::v1::{AgentState, ListAgentsRequest};
use serde::Deserialize;

use super::html::{Section, frame, tag, time};
use super::session::Caller;
use super::{Page, Shared};

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    selector: String,
}

pub fn state_word(state: i32) -> &'static str {
    match AgentState::try_from(state) {
        Ok(AgentState::Online) => "online",
        Ok(AgentState::Offline) => "offline",
        Ok(AgentState::Revoked) => "revoked",
        _ => "unknown",
    }
}

pub async fn page(
    axum::extract::State(console): Shared,
    caller: Caller,
    Query(f): Query<Filter>,
) -> Page {
    let selector = f.selector.trim();
    let agents = console
        .fleet
        .list_agents(caller.request(ListAgentsRequest {
            selector: selector.to_string(),
        }))
        .await?
        .into_inner()
        .agents;
    let online = agents
        .iter()
        .filter(|a| a.state == AgentState::Online as i32)
        .count();
    let body = html! {
        div.cards {
            div.card { b #agents-total { (agents.len()) } "agents" }
            div.card { b #agents-online { (online) } "online" }
            div.card { b { (agents.len() - online) } "not online" }
        }
        form method="get" action="/fleet" {
            label for="selector" { "Selector " }
            input #selector name="selector" value=(selector) placeholder="env=prod,role=db" size="30";
            " "
            button type="submit" { "Filter" }
        }
        table #agents {
            thead { tr { th { "Host" } th { "State" } th { "Labels" } th { "Last seen" } th { "Version" } th { "OS" } th { "Capabilities" } th { "Agent id" } } }
            tbody {
                @for a in &agents {
                    tr {
                        td { (a.hostname) }
                        td { (tag(state_word(a.state))) }
                        td { @for (k, v) in &a.labels { code { (k) "=" (v) } " " } }
                        td { (time(a.last_seen_unix_ms)) }
                        td { (a.version) }
                        td { (a.os) " " (a.arch) }
                        td { (a.capabilities.join(", ")) }
                        td { code { (a.id) } }
                    }
                }
            }
        }
        @if agents.is_empty() { p.hint { "No agent matches. Enrol one with " code { "rampart-agent enroll" } "." } }
    };
    Ok(frame("Fleet", &caller, Section::Fleet, false, body))
}
