//! Risk registers: Markdown, a self-contained HTML page (with the diagram inline, no script, no
//! external asset), SARIF 2.1.0 for code-scanning tools, and the evidence chain of one risk as
//! plain text.

use std::fmt::Write;

use rampart_common::time::format_ms;
use rampart_proto::v1::{Assessment, Risk};
use serde_json::{Value, json};

use super::assess::severity_of;
use super::model::Model;
use super::risk::Severity;
use super::rules;

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn sev(r: &Risk, residual: bool) -> String {
    let rating = if residual { &r.residual } else { &r.inherent };
    rating
        .as_ref()
        .map(|r| r.severity.clone())
        .unwrap_or_default()
}

/// Counts of risks per residual severity, highest first.
pub fn counts(a: &Assessment) -> Vec<(Severity, usize)> {
    let mut out = Vec::new();
    for s in Severity::NAMES
        .iter()
        .rev()
        .filter_map(|n| Severity::parse(n))
    {
        let n = a
            .risks
            .iter()
            .filter(|r| severity_of(r.residual.as_ref()) == s)
            .count();
        out.push((s, n));
    }
    out
}

fn summary_line(a: &Assessment) -> String {
    let parts: Vec<String> = counts(a).iter().map(|(s, n)| format!("{n} {s}")).collect();
    format!(
        "{} risk(s) by residual severity: {}; {} unmodeled exposure(s), {} unmodeled host(s), {} excluded finding(s)",
        a.risks.len(),
        parts.join(", "),
        a.unmodeled_exposures.len(),
        a.unmodeled_hosts.len(),
        a.excluded_findings
    )
}

fn heading(a: &Assessment) -> String {
    if a.version > 0 {
        format!(
            "version {} applied {} by {}; evaluated {}",
            a.version,
            format_ms(a.applied_at_unix_ms),
            a.applied_by,
            format_ms(a.evaluated_at_unix_ms)
        )
    } else {
        format!(
            "not applied; evaluated {}",
            format_ms(a.evaluated_at_unix_ms)
        )
    }
}

/// The evidence chain of one risk: threat → mitigations → controls/experiments → hosts.
pub fn chain(r: &Risk) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}  {}", r.id, r.title);
    let _ = writeln!(s, "  STRIDE:    {}", r.stride);
    let _ = writeln!(s, "  elements:  {}", r.elements.join(", "));
    if !r.why.is_empty() {
        let _ = writeln!(s, "  why:       {}", r.why);
    }
    if !r.references.is_empty() {
        let _ = writeln!(s, "  refs:      {}", r.references.join(", "));
    }
    let _ = writeln!(s, "  inherent:  {}", sev(r, false));
    let _ = writeln!(s, "  residual:  {} ({})", sev(r, true), r.status);
    let _ = writeln!(s, "  because:");
    for line in &r.reasons {
        let _ = writeln!(s, "    - {line}");
    }
    for m in &r.mitigations {
        let _ = writeln!(
            s,
            "  mitigation {} — {} [{}]",
            m.id,
            m.title,
            if m.proven { "proven" } else { "unproven" }
        );
        for c in &m.controls {
            let _ = writeln!(
                s,
                "    control {}/{} [{}]",
                c.pack,
                c.rule,
                if c.proven { "proven" } else { "unproven" }
            );
            if c.hosts.is_empty() {
                let _ = writeln!(s, "      (no hosts selected)");
            }
            for h in &c.hosts {
                let when = if h.at_unix_ms > 0 {
                    format_ms(h.at_unix_ms)
                } else {
                    "-".into()
                };
                let _ = writeln!(
                    s,
                    "      {:<24} {:<14} sweep {:<24} {when}{}",
                    h.hostname,
                    h.status,
                    if h.sweep_id.is_empty() {
                        "-"
                    } else {
                        &h.sweep_id
                    },
                    if h.status != "missing" && !h.fresh {
                        " (stale)"
                    } else {
                        ""
                    }
                );
            }
        }
        for e in &m.experiments {
            let _ = writeln!(
                s,
                "    experiment {} [{}]: {}",
                e.experiment,
                if e.proven { "proven" } else { "unproven" },
                if e.run_id.is_empty() {
                    "never finished a run".to_string()
                } else {
                    format!(
                        "run {} {} at {}{}",
                        e.run_id,
                        e.verdict,
                        format_ms(e.at_unix_ms),
                        if e.fresh { "" } else { " (stale)" }
                    )
                }
            );
        }
        if let Some(man) = &m.manual {
            let _ = writeln!(
                s,
                "    manual [{}]: {} (expires {})",
                if man.proven { "valid" } else { "expired" },
                man.evidence,
                man.expires
            );
        }
    }
    s
}

/// The register as Markdown.
pub fn markdown(a: &Assessment) -> String {
    let mut s = format!(
        "# Threat model: {}\n\n{}\n\n{}\n\n",
        md(&a.model),
        heading(a),
        summary_line(a)
    );
    s.push_str(
        "| risk | STRIDE | elements | inherent | residual | status |\n|---|---|---|---|---|---|\n",
    );
    for r in &a.risks {
        let _ = writeln!(
            s,
            "| `{}` {} | {} | {} | {} | {} | {} |",
            md(&r.id),
            md(&r.title),
            r.stride,
            md(&r.elements.join(", ")),
            sev(r, false),
            sev(r, true),
            r.status
        );
    }
    s.push_str("\n## Why each residual risk is what it is\n");
    for r in &a.risks {
        let _ = write!(s, "\n### `{}`\n\n", md(&r.id));
        for line in &r.reasons {
            let _ = writeln!(s, "- {}", md(line));
        }
    }
    if !a.unmodeled_exposures.is_empty() {
        s.push_str("\n## Unmodeled exposure\n\nPorts listening on hosts the model's components select that no flow explains.\n\n| host | port | process | components |\n|---|---|---|---|\n");
        for e in &a.unmodeled_exposures {
            let _ = writeln!(
                s,
                "| {} | {}/{} on {} | {} | {} |",
                md(&e.hostname),
                e.protocol,
                e.port,
                md(&e.address),
                md(&e.process),
                md(&e.components.join(", "))
            );
        }
    }
    if !a.unmodeled_hosts.is_empty() {
        s.push_str("\n## Unmodeled hosts\n\nEnrolled hosts that no component selects.\n\n");
        for h in &a.unmodeled_hosts {
            let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                s,
                "- {} ({}) {}",
                md(&h.hostname),
                h.agent_id,
                md(&labels.join(","))
            );
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The register as one HTML page: no script, no external asset.
pub fn html(a: &Assessment, model: Option<&Model>) -> String {
    let mut s = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Threat model: {}</title>\n<style>\n\
         body{{font-family:Helvetica,Arial,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;width:100%}}\
         th,td{{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top;font-size:13px}}th{{background:#f4f6f7}}\
         .critical{{background:#c0392b;color:#fff}}.high{{background:#e67e22}}.medium{{background:#f4d03f}}.low{{background:#abebc6}}.note{{background:#d5f5e3}}\
         details{{margin:.3em 0}}code{{font-size:12px}}\n</style></head><body>\n<h1>Threat model: {}</h1>\n<p>{}</p>\n<p>{}</p>\n",
        esc(&a.model),
        esc(&a.model),
        esc(&heading(a)),
        esc(&summary_line(a))
    );
    if let Some(m) = model {
        s.push_str("<h2>Data-flow diagram</h2>\n");
        s.push_str(&super::diagram::svg(m, Some(a)));
    }
    s.push_str("<h2>Risks</h2>\n<table><tr><th>risk</th><th>STRIDE</th><th>elements</th><th>inherent</th><th>residual</th><th>status</th></tr>\n");
    for r in &a.risks {
        let (inh, res) = (sev(r, false), sev(r, true));
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code><br>{}<details><summary>why</summary><ul>{}</ul></details></td><td>{}</td><td>{}</td><td class=\"{inh}\">{inh}</td><td class=\"{res}\">{res}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(&r.title),
            r.reasons
                .iter()
                .map(|l| format!("<li>{}</li>", esc(l)))
                .collect::<String>(),
            esc(&r.stride),
            esc(&r.elements.join(", ")),
            esc(&r.status)
        );
    }
    s.push_str("</table>\n");
    if !a.unmodeled_exposures.is_empty() {
        s.push_str("<h2>Unmodeled exposure</h2>\n<table><tr><th>host</th><th>port</th><th>process</th><th>components</th></tr>\n");
        for e in &a.unmodeled_exposures {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}/{} on {}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.hostname),
                esc(&e.protocol),
                e.port,
                esc(&e.address),
                esc(&e.process),
                esc(&e.components.join(", "))
            );
        }
        s.push_str("</table>\n");
    }
    if !a.unmodeled_hosts.is_empty() {
        s.push_str("<h2>Unmodeled hosts</h2>\n<ul>\n");
        for h in &a.unmodeled_hosts {
            let _ = writeln!(s, "<li>{} ({})</li>", esc(&h.hostname), esc(&h.agent_id));
        }
        s.push_str("</ul>\n");
    }
    s.push_str("</body></html>\n");
    s
}

fn level(r: &Risk) -> &'static str {
    match severity_of(r.residual.as_ref()) {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Note => "note",
    }
}

/// The risks that are not mitigated or accepted, as SARIF 2.1.0 results (mitigated and accepted
/// ones are listed as suppressed, with the reason).
pub fn sarif(a: &Assessment) -> Value {
    let mut rule_ids: Vec<String> = rules::all().map(|r| r.id.to_string()).collect();
    rule_ids.push("model-threat".into());
    let mut driver_rules: Vec<Value> = rules::all()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.title,
                "shortDescription": {"text": r.title},
                "fullDescription": {"text": format!("{} When: {}.", r.rationale, r.condition)},
                "properties": {"stride": r.stride.as_str(), "tags": r.references},
            })
        })
        .collect();
    driver_rules.push(json!({
        "id": "model-threat",
        "name": "Threat written in the model",
        "shortDescription": {"text": "A threat written by hand in the threat model"},
    }));
    let results: Vec<Value> = a
        .risks
        .iter()
        .map(|r| {
            let rule = if r.rule.is_empty() { "model-threat" } else { r.rule.as_str() };
            let mut v = json!({
                "ruleId": rule,
                "ruleIndex": rule_ids.iter().position(|x| x == rule).unwrap_or(0),
                "level": level(r),
                "message": {"text": format!("{}: {} (residual {}, {})", r.title, r.why, sev(r, true), r.status)},
                "locations": [{"logicalLocations": r.elements.iter().map(|e| json!({"name": e, "kind": "element"})).collect::<Vec<_>>()}],
                "partialFingerprints": {"rampartRisk/v1": r.id},
                "properties": {"risk": r.id, "inherent": sev(r, false), "residual": sev(r, true), "status": r.status, "reasons": r.reasons},
            });
            if r.status == "mitigated" || r.status == "accepted" {
                v["suppressions"] = json!([{
                    "kind": "external",
                    "justification": r.reasons.iter().skip(1).cloned().collect::<Vec<_>>().join("; "),
                }]);
            }
            v
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "rampart-threats",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": driver_rules,
            }},
            "results": results,
            "properties": {"model": a.model, "version": a.version},
        }],
    })
}
