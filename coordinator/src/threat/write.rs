//! Writes a model back as a model file (YAML), for imports: flow-style entries, strings
//! double-quoted with JSON escapes (a JSON string is a valid YAML double-quoted scalar), so any
//! name an imported tool allowed reads back unchanged.

use std::fmt::Write;

use super::model::{Model, Rating};
use super::risk::FACTORS;

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

fn rating(r: Rating) -> &'static str {
    r.as_str()
}

/// The model as a file that `parse::model` reads back to an equal model.
pub fn yaml(m: &Model, header: &str) -> String {
    let mut s = String::new();
    for line in header.lines() {
        let _ = writeln!(s, "# {line}");
    }
    let _ = writeln!(s, "kind: ThreatModel");
    let _ = writeln!(s, "name: {}", q(&m.name));
    if !m.description.is_empty() {
        let _ = writeln!(s, "description: {}", q(&m.description));
    }
    if m.freshness != super::model::DEFAULT_FRESHNESS {
        let _ = writeln!(
            s,
            "evidence_freshness: {}",
            q(&humantime::format_duration(m.freshness).to_string())
        );
    }
    let section = |s: &mut String, name: &str, lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        let _ = writeln!(s, "{name}:");
        for l in lines {
            let _ = writeln!(s, "  - {{{l}}}");
        }
    };
    section(
        &mut s,
        "assets",
        m.assets
            .iter()
            .map(|a| {
                let mut l = format!(
                    "id: {}, name: {}, confidentiality: {}, integrity: {}, availability: {}",
                    q(&a.id),
                    q(&a.name),
                    rating(a.confidentiality),
                    rating(a.integrity),
                    rating(a.availability)
                );
                if !a.description.is_empty() {
                    let _ = write!(l, ", description: {}", q(&a.description));
                }
                l
            })
            .collect(),
    );
    section(
        &mut s,
        "boundaries",
        m.boundaries
            .iter()
            .map(|b| {
                let mut l = format!("id: {}, name: {}, kind: {}", q(&b.id), q(&b.name), b.kind);
                if let Some(p) = &b.parent {
                    let _ = write!(l, ", parent: {}", q(p));
                }
                l
            })
            .collect(),
    );
    section(
        &mut s,
        "components",
        m.components
            .iter()
            .map(|c| {
                let mut l = format!(
                    "id: {}, name: {}, type: {}",
                    q(&c.id),
                    q(&c.name),
                    c.kind.as_str()
                );
                if !c.description.is_empty() {
                    let _ = write!(l, ", description: {}", q(&c.description));
                }
                if let Some(b) = &c.boundary {
                    let _ = write!(l, ", boundary: {}", q(b));
                }
                if let Some(sel) = &c.selector {
                    let _ = write!(l, ", selector: {}", q(sel));
                }
                for (k, v) in [
                    ("internet_facing", c.internet_facing),
                    ("encrypted_at_rest", c.encrypted_at_rest),
                    ("audit_log", c.audit_log),
                    ("privileged", c.privileged),
                ] {
                    if v {
                        let _ = write!(l, ", {k}: true");
                    }
                }
                if c.instances != 1 {
                    let _ = write!(l, ", instances: {}", c.instances);
                }
                if !c.handles.is_empty() {
                    let _ = write!(l, ", handles: {}", list(&c.handles));
                }
                l
            })
            .collect(),
    );
    section(
        &mut s,
        "actors",
        m.actors
            .iter()
            .map(|a| {
                let mut l = format!("id: {}, name: {}", q(&a.id), q(&a.name));
                if let Some(b) = &a.boundary {
                    let _ = write!(l, ", boundary: {}", q(b));
                }
                l
            })
            .collect(),
    );
    section(
        &mut s,
        "flows",
        m.flows
            .iter()
            .map(|f| {
                let mut l = format!(
                    "id: {}, from: {}, to: {}, encrypted: {}, authenticated: {}",
                    q(&f.id),
                    q(&f.from),
                    q(&f.to),
                    f.encrypted,
                    f.authenticated
                );
                if !f.name.is_empty() {
                    let _ = write!(l, ", name: {}", q(&f.name));
                }
                if !f.protocol.is_empty() {
                    let _ = write!(l, ", protocol: {}", q(&f.protocol));
                }
                if let Some(p) = f.port {
                    let _ = write!(l, ", port: {p}");
                }
                if f.admin {
                    l.push_str(", admin: true");
                }
                if !f.carries.is_empty() {
                    let _ = write!(l, ", carries: {}", list(&f.carries));
                }
                l
            })
            .collect(),
    );
    let factors = |f: &super::risk::Factors, range: std::ops::Range<usize>| -> Option<String> {
        let parts: Vec<String> = range
            .filter_map(|i| f.0[i].map(|v| format!("{}: {v}", FACTORS[i])))
            .collect();
        (!parts.is_empty()).then(|| format!("{{{}}}", parts.join(", ")))
    };
    section(
        &mut s,
        "threats",
        m.threats
            .iter()
            .map(|t| {
                let mut l = format!(
                    "id: {}, title: {}, stride: {}, elements: {}",
                    q(&t.id),
                    q(&t.title),
                    t.stride,
                    list(&t.elements)
                );
                if !t.description.is_empty() {
                    let _ = write!(l, ", description: {}", q(&t.description));
                }
                if let Some(f) = factors(&t.factors, 0..8) {
                    let _ = write!(l, ", likelihood: {f}");
                }
                if let Some(f) = factors(&t.factors, 8..16) {
                    let _ = write!(l, ", impact: {f}");
                }
                l
            })
            .collect(),
    );
    section(
        &mut s,
        "mitigations",
        m.mitigations
            .iter()
            .map(|mit| {
                let mut l = format!(
                    "id: {}, title: {}, mitigates: {}",
                    q(&mit.id),
                    q(&mit.title),
                    list(&mit.mitigates)
                );
                if !mit.controls.is_empty() {
                    let cs: Vec<String> = mit
                        .controls
                        .iter()
                        .map(|c| format!("{{pack: {}, rule: {}}}", q(&c.pack), q(&c.rule)))
                        .collect();
                    let _ = write!(l, ", controls: [{}]", cs.join(", "));
                }
                if !mit.experiments.is_empty() {
                    let _ = write!(l, ", experiments: {}", list(&mit.experiments));
                }
                if let Some(man) = &mit.manual {
                    let _ = write!(
                        l,
                        ", manual: {{evidence: {}, expires: {}}}",
                        q(&man.evidence),
                        man.expires
                    );
                }
                let lik = factors(&mit.effect, 0..8);
                let imp = factors(&mit.effect, 8..16);
                if lik.is_some() || imp.is_some() {
                    let parts: Vec<String> = [("likelihood", lik), ("impact", imp)]
                        .into_iter()
                        .filter_map(|(k, v)| v.map(|v| format!("{k}: {v}")))
                        .collect();
                    let _ = write!(l, ", effect: {{{}}}", parts.join(", "));
                }
                l
            })
            .collect(),
    );
    section(
        &mut s,
        "accepted",
        m.accepted
            .iter()
            .map(|a| {
                format!(
                    "threat: {}, reason: {}, expires: {}",
                    q(&a.risk),
                    q(&a.reason),
                    a.expires
                )
            })
            .collect(),
    );
    section(
        &mut s,
        "exclusions",
        m.exclusions
            .iter()
            .map(|x| {
                format!(
                    "rule: {}, element: {}, justification: {}",
                    q(&x.rule),
                    q(&x.element),
                    q(&x.justification)
                )
            })
            .collect(),
    );
    s
}
