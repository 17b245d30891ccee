//! Reading a threat-model file: every field is checked where it stands, then every reference,
//! id and boundary, so that one run lists every error as `file:line:col: message`. An invalid
//! model is never applied.

use std::collections::HashMap;

use chrono::NaiveDate;
use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;

use super::model::*;
use super::refs::{Refs, Target, check_boundary_cycles, check_refs};
use super::risk::{FACTORS, Factors, LIKELIHOOD};
use crate::yaml::{Limits, Reader, SpecErrors, load};

/// A model of 500 components and 2,000 flows is about 300 kB; 4 MiB is the gRPC message bound.
pub const LIMITS: Limits = Limits {
    max_bytes: 2 * 1024 * 1024,
    max_items: 20_000,
};

const TOP: &[&str] = &[
    "kind",
    "name",
    "description",
    "evidence_freshness",
    "assets",
    "boundaries",
    "components",
    "actors",
    "flows",
    "threats",
    "mitigations",
    "accepted",
    "exclusions",
];

/// Reads and checks a model file.
pub fn model(file: &str, text: &str) -> Result<Model, SpecErrors> {
    let (root, mut r) = load(file, text, LIMITS)?;
    let mut refs = Refs::default();
    let mut ids: HashMap<String, &'static str> = HashMap::new();
    let m = read(&mut r, &root, &mut refs, &mut ids);
    check_refs(&mut r, &m, &refs);
    check_boundary_cycles(&mut r, &m, &root);
    r.finish(m)
}

fn flag(r: &mut Reader, map: &MarkedMappingNode, key: &str, default: bool) -> bool {
    let Some(s) = r.scalar(map, key) else {
        return default;
    };
    match s.as_str() {
        "true" => true,
        "false" => false,
        other => {
            r.error_at(
                s.span(),
                format!("`{key}` must be true or false, not {other:?}"),
            );
            default
        }
    }
}

/// A list of strings, each with its place.
fn strings(r: &mut Reader, map: &MarkedMappingNode, key: &str) -> Vec<(String, marked_yaml::Span)> {
    r.items(map, key)
        .into_iter()
        .filter_map(|n| match n.as_scalar() {
            Some(s) => Some((s.as_str().to_string(), *s.span())),
            None => {
                r.error_at(n.span(), format!("items of `{key}` must be single values"));
                None
            }
        })
        .collect()
}

fn refs_list(
    r: &mut Reader,
    refs: &mut Refs,
    map: &MarkedMappingNode,
    key: &str,
    target: Target,
) -> Vec<String> {
    strings(r, map, key)
        .into_iter()
        .map(|(v, span)| {
            refs.add(&span, target, &v);
            v
        })
        .collect()
}

fn reference(
    r: &mut Reader,
    refs: &mut Refs,
    map: &MarkedMappingNode,
    key: &str,
    target: Target,
) -> Option<String> {
    let s = r.scalar(map, key)?;
    refs.add(s.span(), target, s.as_str());
    Some(s.as_str().to_string())
}

/// A value from a fixed list: `parse` of the scalar, or an error naming the choices. None when
/// the key is absent or the value is not one of them.
fn choice<T>(
    r: &mut Reader,
    map: &MarkedMappingNode,
    key: &str,
    names: &[&str],
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let s = r.scalar(map, key)?;
    let v = parse(s.as_str());
    if v.is_none() {
        r.error_at(
            s.span(),
            format!(
                "`{key}` must be one of {}, not {:?}",
                names.join(", "),
                s.as_str()
            ),
        );
    }
    v
}

fn rating(r: &mut Reader, map: &MarkedMappingNode, key: &str) -> Rating {
    choice(r, map, key, Rating::NAMES, Rating::parse).unwrap_or_default()
}

fn date(r: &mut Reader, map: &MarkedMappingNode, key: &str) -> Option<NaiveDate> {
    let s = r.scalar(map, key)?;
    match NaiveDate::parse_from_str(s.as_str(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            r.error_at(
                s.span(),
                format!("`{key}` must be a date (YYYY-MM-DD), not {:?}", s.as_str()),
            );
            None
        }
    }
}

/// An id: unique across every kind of entry, made of letters, digits, `-`, `_`, `.`.
fn id(
    r: &mut Reader,
    map: &MarkedMappingNode,
    what: &'static str,
    ids: &mut HashMap<String, &'static str>,
) -> String {
    let Some(s) = r.scalar(map, "id") else {
        return String::new();
    };
    let v = s.as_str().to_string();
    if v.is_empty()
        || v.len() > 128
        || !v
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        r.error_at(
            s.span(),
            format!("id {v:?} must be 1 to 128 letters, digits, `-`, `_` or `.`"),
        );
    } else if let Some(prev) = ids.get(&v) {
        r.error_at(s.span(), format!("duplicate id {v:?} (already a {prev})"));
    } else {
        ids.insert(v.clone(), what);
    }
    v
}

fn factors(
    r: &mut Reader,
    map: &MarkedMappingNode,
    key: &str,
    allowed: &[&str],
    into: &mut Factors,
) {
    let Some(node) = map.get_node(key) else {
        return;
    };
    let Some(fm) = r.mapping(node, &format!("`{key}`"), allowed, &[]) else {
        return;
    };
    for name in allowed {
        if let Some(v) = r.number::<u8>(fm, name, "a whole number from 0 to 9") {
            if v > 9 {
                if let Some(n) = fm.get_node(name) {
                    r.error_at(n.span(), format!("`{name}` must be from 0 to 9, not {v}"));
                }
            } else {
                into.set(name, v);
            }
        }
    }
}

fn read(
    r: &mut Reader,
    root: &Node,
    refs: &mut Refs,
    ids: &mut HashMap<String, &'static str>,
) -> Model {
    let mut m = Model {
        freshness: DEFAULT_FRESHNESS,
        ..Model::default()
    };
    let Some(map) = r.mapping(root, "a threat model", TOP, &["name"]) else {
        return m;
    };
    r.kind(map, "ThreatModel");
    m.name = r.name(map);
    m.description = r.string(map, "description").unwrap_or_default();
    if let Some(d) = r.duration(map, "evidence_freshness") {
        m.freshness = d;
    }
    let likelihood_names: Vec<&str> = LIKELIHOOD.map(|i| FACTORS[i]).collect();
    let impact_names: Vec<&str> = FACTORS[8..].to_vec();

    for n in r.items(map, "assets") {
        let Some(a) = r.mapping(
            n,
            "an asset",
            &[
                "id",
                "name",
                "description",
                "confidentiality",
                "integrity",
                "availability",
            ],
            &["id", "name"],
        ) else {
            continue;
        };
        m.assets.push(Asset {
            id: id(r, a, "asset", ids),
            name: r.string(a, "name").unwrap_or_default(),
            description: r.string(a, "description").unwrap_or_default(),
            confidentiality: rating(r, a, "confidentiality"),
            integrity: rating(r, a, "integrity"),
            availability: rating(r, a, "availability"),
        });
    }
    for n in r.items(map, "boundaries") {
        let Some(b) = r.mapping(
            n,
            "a boundary",
            &["id", "name", "kind", "parent"],
            &["id", "name"],
        ) else {
            continue;
        };
        let kind = choice(r, b, "kind", BOUNDARY_KINDS, |k| {
            BOUNDARY_KINDS.contains(&k).then(|| k.to_string())
        })
        .unwrap_or_else(|| "network".into());
        m.boundaries.push(Boundary {
            id: id(r, b, "boundary", ids),
            name: r.string(b, "name").unwrap_or_default(),
            kind,
            parent: reference(r, refs, b, "parent", Target::Boundary),
        });
    }
    for n in r.items(map, "components") {
        let Some(c) = r.mapping(
            n,
            "a component",
            &[
                "id",
                "name",
                "description",
                "type",
                "boundary",
                "internet_facing",
                "selector",
                "handles",
                "encrypted_at_rest",
                "instances",
                "audit_log",
                "privileged",
            ],
            &["id", "name", "type"],
        ) else {
            continue;
        };
        let kind = choice(r, c, "type", ComponentType::NAMES, ComponentType::parse)
            .unwrap_or(ComponentType::Process);
        let instances = r
            .number::<u32>(c, "instances", "a whole number")
            .unwrap_or(1);
        if instances == 0
            && let Some(n) = c.get_node("instances")
        {
            r.error_at(n.span(), "`instances` must be at least 1");
        }
        m.components.push(Component {
            id: id(r, c, "component", ids),
            name: r.string(c, "name").unwrap_or_default(),
            description: r.string(c, "description").unwrap_or_default(),
            kind,
            boundary: reference(r, refs, c, "boundary", Target::Boundary),
            internet_facing: flag(r, c, "internet_facing", false),
            selector: r.selector(c, "selector"),
            handles: refs_list(r, refs, c, "handles", Target::Asset),
            encrypted_at_rest: flag(r, c, "encrypted_at_rest", false),
            instances,
            audit_log: flag(r, c, "audit_log", false),
            privileged: flag(r, c, "privileged", false),
        });
    }
    for n in r.items(map, "actors") {
        let Some(a) = r.mapping(n, "an actor", &["id", "name", "boundary"], &["id", "name"]) else {
            continue;
        };
        m.actors.push(Actor {
            id: id(r, a, "actor", ids),
            name: r.string(a, "name").unwrap_or_default(),
            boundary: reference(r, refs, a, "boundary", Target::Boundary),
        });
    }
    for n in r.items(map, "flows") {
        let Some(f) = r.mapping(
            n,
            "a flow",
            &[
                "id",
                "name",
                "from",
                "to",
                "protocol",
                "port",
                "encrypted",
                "authenticated",
                "admin",
                "carries",
            ],
            &["id", "from", "to"],
        ) else {
            continue;
        };
        let flow = Flow {
            id: id(r, f, "flow", ids),
            name: r.string(f, "name").unwrap_or_default(),
            from: reference(r, refs, f, "from", Target::Endpoint).unwrap_or_default(),
            to: reference(r, refs, f, "to", Target::Endpoint).unwrap_or_default(),
            protocol: r.string(f, "protocol").unwrap_or_default(),
            port: r.number(f, "port", "a port number (1 to 65535)"),
            encrypted: flag(r, f, "encrypted", false),
            authenticated: flag(r, f, "authenticated", false),
            admin: flag(r, f, "admin", false),
            carries: refs_list(r, refs, f, "carries", Target::Asset),
        };
        if flow.port == Some(0)
            && let Some(n) = f.get_node("port")
        {
            r.error_at(n.span(), "`port` must be from 1 to 65535");
        }
        if !flow.from.is_empty() && flow.from == flow.to {
            r.error_at(
                f.span(),
                format!("flow {} goes from {} to itself", flow.id, flow.from),
            );
        }
        m.flows.push(flow);
    }
    for n in r.items(map, "threats") {
        let Some(t) = r.mapping(
            n,
            "a threat",
            &[
                "id",
                "title",
                "description",
                "stride",
                "elements",
                "likelihood",
                "impact",
            ],
            &["id", "title", "stride", "elements"],
        ) else {
            continue;
        };
        let stride =
            choice(r, t, "stride", Stride::NAMES, Stride::parse).unwrap_or(Stride::Tampering);
        let mut fs = Factors::default();
        factors(r, t, "likelihood", &likelihood_names, &mut fs);
        factors(r, t, "impact", &impact_names, &mut fs);
        let threat = Threat {
            id: id(r, t, "threat", ids),
            title: r.string(t, "title").unwrap_or_default(),
            description: r.string(t, "description").unwrap_or_default(),
            stride,
            elements: refs_list(r, refs, t, "elements", Target::Element),
            factors: fs,
        };
        if threat.elements.is_empty()
            && let Some(e) = t.get_node("elements")
        {
            r.error_at(e.span(), "a threat names at least one element");
        }
        if threat.id.starts_with("rule:")
            && let Some(s) = t.get_node("id")
        {
            r.error_at(s.span(), "threat ids may not start with `rule:`");
        }
        m.threats.push(threat);
    }
    for n in r.items(map, "mitigations") {
        let Some(mm) = r.mapping(
            n,
            "a mitigation",
            &[
                "id",
                "title",
                "mitigates",
                "controls",
                "experiments",
                "manual",
                "effect",
            ],
            &["id", "title", "mitigates"],
        ) else {
            continue;
        };
        let mut controls = Vec::new();
        for c in r.items(mm, "controls") {
            if let Some(cm) = r.mapping(c, "a control", &["pack", "rule"], &["pack", "rule"]) {
                controls.push(Control {
                    pack: r.string(cm, "pack").unwrap_or_default(),
                    rule: r.string(cm, "rule").unwrap_or_default(),
                });
            }
        }
        let manual = mm.get_node("manual").and_then(|n| {
            let man = r.mapping(
                n,
                "`manual`",
                &["evidence", "expires"],
                &["evidence", "expires"],
            )?;
            Some(Manual {
                evidence: r.string(man, "evidence").unwrap_or_default(),
                expires: date(r, man, "expires")?,
            })
        });
        let mut effect = Factors::default();
        if let Some(e) = mm.get_node("effect")
            && let Some(em) = r.mapping(e, "`effect`", &["likelihood", "impact"], &[])
        {
            factors(r, em, "likelihood", &likelihood_names, &mut effect);
            factors(r, em, "impact", &impact_names, &mut effect);
        }
        let mit = Mitigation {
            id: id(r, mm, "mitigation", ids),
            title: r.string(mm, "title").unwrap_or_default(),
            mitigates: refs_list(r, refs, mm, "mitigates", Target::Risk),
            controls,
            experiments: strings(r, mm, "experiments")
                .into_iter()
                .map(|(s, _)| s)
                .collect(),
            manual,
            effect,
        };
        if mit.mitigates.is_empty() {
            r.error_at(
                mm.span(),
                format!("mitigation {} mitigates nothing", mit.id),
            );
        }
        if mit.controls.is_empty() && mit.experiments.is_empty() && mm.get_node("manual").is_none()
        {
            r.error_at(
                mm.span(),
                format!(
                    "mitigation {} has no evidence: give `controls`, `experiments` or `manual`",
                    mit.id
                ),
            );
        }
        m.mitigations.push(mit);
    }
    for n in r.items(map, "accepted") {
        let Some(a) = r.mapping(
            n,
            "an accepted risk",
            &["threat", "reason", "expires"],
            &["threat", "reason", "expires"],
        ) else {
            continue;
        };
        let (Some(risk), Some(expires)) = (
            reference(r, refs, a, "threat", Target::Risk),
            date(r, a, "expires"),
        ) else {
            continue;
        };
        m.accepted.push(Accepted {
            risk,
            reason: r.string(a, "reason").unwrap_or_default(),
            expires,
        });
    }
    for n in r.items(map, "exclusions") {
        let Some(x) = r.mapping(
            n,
            "an exclusion",
            &["rule", "element", "justification"],
            &["rule", "element", "justification"],
        ) else {
            continue;
        };
        let justification = r.string(x, "justification").unwrap_or_default();
        if justification.trim().is_empty()
            && let Some(j) = x.get_node("justification")
        {
            r.error_at(j.span(), "an exclusion needs a justification");
        }
        m.exclusions.push(Exclusion {
            rule: reference(r, refs, x, "rule", Target::Rule).unwrap_or_default(),
            element: reference(r, refs, x, "element", Target::Element).unwrap_or_default(),
            justification,
        });
    }
    m
}
