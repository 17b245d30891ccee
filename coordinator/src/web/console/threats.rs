//! The threat model: the data-flow diagram coloured by residual risk, the risks by residual
//! severity, and each risk's evidence chain down to the hosts, sweeps and runs that prove (or do
//! not prove) its mitigations.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use maud::{Markup, PreEscaped, html};
use rampart_proto::v1::threat_service_server::ThreatService;
use rampart_proto::v1::{Assessment, GetAssessmentRequest, Risk};

use super::html::{Section, frame, tag, time};
use super::session::Caller;
use super::{Console, Page, Shared};
use crate::threat;
use crate::threat::assess::severity_of;

async fn assessment(
    console: &Console,
    caller: &Caller,
    view: GetAssessmentRequest,
) -> Result<Option<Assessment>, tonic::Status> {
    match console.threats.get_assessment(caller.request(view)).await {
        Ok(a) => Ok(Some(a.into_inner())),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(s),
    }
}

fn severity(r: &Risk, residual: bool) -> String {
    let rating = if residual { &r.residual } else { &r.inherent };
    rating
        .as_ref()
        .map(|r| r.severity.clone())
        .unwrap_or_default()
}

fn none_applied(caller: &Caller) -> Page {
    Ok(frame(
        "Threat model",
        caller,
        Section::Threats,
        false,
        html! { p.hint { "No threat model has been applied. Apply one with " code { "rampart threats apply FILE" } "." } },
    ))
}

pub async fn page(State(console): Shared, caller: Caller) -> Page {
    let view = GetAssessmentRequest {
        include_yaml: true,
        ..Default::default()
    };
    let Some(mut a) = assessment(&console, &caller, view).await? else {
        return none_applied(&caller);
    };
    let model = threat::parse_model("applied", &a.yaml).ok();
    let diagram = model
        .as_ref()
        .map(|m| threat::diagram::svg(m, Some(&a)))
        .unwrap_or_default();
    a.risks.sort_by(|x, y| {
        severity_of(y.residual.as_ref())
            .cmp(&severity_of(x.residual.as_ref()))
            .then_with(|| x.id.cmp(&y.id))
    });
    let counts = threat::report::counts(&a);
    let body = html! {
        p {
            "Model " b { (a.model) } ", version " (a.version) ", applied " (time(a.applied_at_unix_ms)) " by " (a.applied_by)
            "; evaluated " (time(a.evaluated_at_unix_ms)) " against the fleet's latest evidence. "
            a href="/threats/report.html" download { "HTML report" }
        }
        div.cards {
            @for (s, n) in &counts { div.card { b { (n) } (tag(s.as_str())) } }
        }
        h2 { "Data-flow diagram" }
        // Rendered by the coordinator from the model, every name escaped; attributes only, so the
        // strict CSP applies.
        div.diagram { (PreEscaped(diagram)) }
        h2 { "Risks by residual severity" }
        table #risks {
            thead { tr { th { "Risk" } th { "STRIDE" } th { "Elements" } th { "Inherent" } th { "Residual" } th { "Status" } } }
            tbody {
                @for r in &a.risks {
                    tr {
                        td { a href={ "/threats/risks/" (r.id) } { code { (r.id) } } br; (r.title) }
                        td { (r.stride) }
                        td { (r.elements.join(", ")) }
                        td { (tag(&severity(r, false))) }
                        td { (tag(&severity(r, true))) }
                        td { (tag(&r.status)) }
                    }
                }
            }
        }
        @if a.risks_omitted > 0 { p.hint { (a.risks_omitted) " lower risks left out of " (a.risks_total) "." } }
        @if !a.unmodeled_exposures.is_empty() {
            h2 { "Listening sockets no flow explains" }
            table #exposures {
                thead { tr { th { "Host" } th { "Address" } th { "Process" } th { "Components" } } }
                tbody {
                    @for e in &a.unmodeled_exposures {
                        tr { td { (e.hostname) } td { (e.protocol) " " (e.address) ":" (e.port) } td { (e.process) } td { (e.components.join(", ")) } }
                    }
                }
            }
        }
        @if !a.unmodeled_hosts.is_empty() {
            h2 { "Hosts no component selects" }
            ul { @for h in &a.unmodeled_hosts { li { (h.hostname) } } }
        }
    };
    Ok(frame(
        "Threat model",
        &caller,
        Section::Threats,
        false,
        body,
    ))
}

fn chain(r: &Risk) -> Markup {
    html! {
        dl {
            dt { "STRIDE" } dd { (r.stride) }
            dt { "Elements" } dd { (r.elements.join(", ")) }
            @if !r.why.is_empty() { dt { "Why" } dd { (r.why) } }
            @if !r.references.is_empty() { dt { "References" } dd { (r.references.join(", ")) } }
            dt { "Inherent" } dd { (tag(&severity(r, false))) }
            dt { "Residual" } dd { (tag(&severity(r, true))) " " (tag(&r.status)) }
            @if !r.accepted_reason.is_empty() { dt { "Accepted" } dd { (r.accepted_reason) " until " (r.accepted_until) } }
        }
        h2 { "Because" }
        ul #reasons { @for line in &r.reasons { li { (line) } } }
        h2 { "Evidence chain" }
        @for m in &r.mitigations {
            section.panel.mitigation {
                h3 { (m.id) " — " (m.title) " " (tag(if m.proven { "proven" } else { "unproven" })) }
                @if !m.reasons.is_empty() { ul { @for line in &m.reasons { li { (line) } } } }
                @for c in &m.controls {
                    p { "Control " code { (c.pack) "/" (c.rule) } " " (tag(if c.proven { "proven" } else { "unproven" })) }
                    table.evidence {
                        thead { tr { th { "Host" } th { "Status" } th { "Checked" } th { "Fresh" } th { "Sweep" } } }
                        tbody {
                            @for h in &c.hosts {
                                tr {
                                    td { (h.hostname) } td { (tag(&h.status)) } td { (time(h.at_unix_ms)) }
                                    td { (if h.fresh { "yes" } else { "no" }) }
                                    td { @if !h.sweep_id.is_empty() { a href={ "/compliance/sweeps/" (h.sweep_id) } { code { (h.sweep_id) } } } }
                                }
                            }
                        }
                    }
                }
                @for e in &m.experiments {
                    p {
                        "Experiment " b { (e.experiment) } " " (tag(if e.proven { "proven" } else { "unproven" }))
                        @if !e.run_id.is_empty() {
                            ": run " a href={ "/experiments/" (e.run_id) } { code { (e.run_id) } }
                            " " (tag(&e.verdict)) " " (time(e.at_unix_ms)) @if !e.fresh { " (stale)" }
                        } @else { ": never run" }
                    }
                }
                @if let Some(man) = &m.manual {
                    p { "Manual evidence: " (man.evidence) @if !man.expires.is_empty() { " (until " (man.expires) ")" } " " (tag(if man.proven { "proven" } else { "unproven" })) }
                }
            }
        }
        @if r.mitigations.is_empty() { p.hint { "No mitigation addresses this risk." } }
    }
}

pub async fn risk_page(State(console): Shared, caller: Caller, Path(id): Path<String>) -> Page {
    let view = GetAssessmentRequest {
        risk_ids: vec![id.clone()],
        detail: true,
        ..Default::default()
    };
    let Some(a) = assessment(&console, &caller, view).await? else {
        return none_applied(&caller);
    };
    let Some(r) = a.risks.iter().find(|r| r.id == id) else {
        return Err(super::html::PageError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("the applied model has no risk {id:?}"),
        ));
    };
    Ok(frame(
        &format!("{} — {}", r.id, r.title),
        &caller,
        Section::Threats,
        false,
        chain(r),
    ))
}

/// The self-contained HTML report, as a download (it carries its own inline style, so it is
/// served as an attachment with a policy that allows only that).
pub async fn report(State(console): Shared, caller: Caller) -> Page {
    let view = GetAssessmentRequest {
        include_yaml: true,
        ..Default::default()
    };
    let Some(a) = assessment(&console, &caller, view).await? else {
        return none_applied(&caller);
    };
    let model = threat::parse_model("applied", &a.yaml).ok();
    let mut resp = threat::report::html(&a, model.as_ref()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"threat-model.html\""),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src data:"),
    );
    Ok(resp)
}
