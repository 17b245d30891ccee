//! Open Threat Model (OTM) 0.2.0 export and import. Boundaries become trust zones, components
//! and actors become components (actors with type `actor`), flows dataflows, and threats — the
//! hand-written ones and the rules' findings — threats referenced from their elements with their
//! mitigations. What OTM has no field for (flow encryption, selectors, OWASP factors, evidence,
//! accepted risks, exclusions) travels in `attributes.rampart`, so that a model exported and
//! imported again is the same model. Files from other tools import without those attributes:
//! ratings and trust are mapped from OTM's 0–100 scales, and what cannot be mapped is noted.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::import::{ImportError, MAX_IMPORT_BYTES, slug};
use super::model::*;
use super::risk::{FACTORS, Factors};
use super::rules;

fn pct(r: Rating) -> u32 {
    match r {
        Rating::None => 0,
        Rating::Low => 25,
        Rating::Medium => 50,
        Rating::High => 75,
        Rating::Critical => 100,
    }
}

fn from_pct(v: f64) -> Rating {
    match v {
        v if v <= 0.0 => Rating::None,
        v if v <= 25.0 => Rating::Low,
        v if v <= 50.0 => Rating::Medium,
        v if v <= 75.0 => Rating::High,
        _ => Rating::Critical,
    }
}

fn factors_json(f: &Factors) -> Value {
    let map: serde_json::Map<String, Value> = FACTORS
        .iter()
        .zip(f.0.iter())
        .filter_map(|(n, v)| v.map(|v| ((*n).to_string(), json!(v))))
        .collect();
    Value::Object(map)
}

fn factors_from(v: &Value) -> Factors {
    let mut f = Factors::default();
    if let Some(map) = v.as_object() {
        for (k, v) in map {
            if let Some(n) = v.as_u64().filter(|n| *n <= 9) {
                f.set(k, n as u8);
            }
        }
    }
    f
}

/// The model as an OTM document.
pub fn export(m: &Model) -> Value {
    let ix = Index::new(m);
    let mut zones: Vec<Value> = m
        .boundaries
        .iter()
        .map(|b| {
            let mut z = json!({
                "id": b.id, "name": b.name, "type": b.kind,
                "risk": {"trustRating": if b.kind == "internet" { 0 } else { 50 }},
                "attributes": {"rampart": {"kind": b.kind}},
            });
            if let Some(p) = &b.parent {
                z["parent"] = json!({"trustZone": p});
            }
            z
        })
        .collect();
    let needs_default = m.components.iter().any(|c| c.boundary.is_none())
        || m.actors.iter().any(|a| a.boundary.is_none());
    let default_zone = "rampart-unzoned";
    if needs_default {
        zones.push(json!({
            "id": default_zone, "name": "No boundary", "type": "network",
            "risk": {"trustRating": 50},
            "attributes": {"rampart": {"placeholder": true}},
        }));
    }
    // Risks: hand-written threats and the rules' findings (excluded ones are left out).
    let excluded: HashSet<(&str, &str)> = m
        .exclusions
        .iter()
        .map(|x| (x.rule.as_str(), x.element.as_str()))
        .collect();
    let mut threats = Vec::new();
    let mut on_element: HashMap<String, Vec<String>> = HashMap::new();
    for t in &m.threats {
        threats.push(json!({
            "id": t.id, "name": t.title, "description": t.description,
            "categories": [t.stride.as_str()],
            "risk": {"likelihood": null, "impact": 0, "impactComment": "rated in Rampart (attributes.rampart.factors)"},
            "attributes": {"rampart": {"factors": factors_json(&t.factors), "elements": t.elements}},
        }));
        for e in &t.elements {
            on_element.entry(e.clone()).or_default().push(t.id.clone());
        }
    }
    for f in rules::find(&ix) {
        if excluded.contains(&(f.rule.id, f.element.as_str())) {
            continue;
        }
        let id = f.risk_id();
        threats.push(json!({
            "id": id, "name": f.rule.title, "description": f.why,
            "categories": [f.rule.stride.as_str()],
            "cwes": f.rule.references.iter().filter(|r| r.starts_with("CWE-")).collect::<Vec<_>>(),
            "risk": {"likelihood": null, "impact": 0, "impactComment": "rated in Rampart from the element's defaults"},
            "attributes": {"rampart": {"rule": f.rule.id, "finding": true}},
        }));
        on_element.entry(f.element.clone()).or_default().push(id);
    }
    let mut mitigations_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for mit in &m.mitigations {
        for r in &mit.mitigates {
            mitigations_of.entry(r).or_default().push(&mit.id);
        }
    }
    let refs = |element: &str| -> Vec<Value> {
        on_element
            .get(element)
            .into_iter()
            .flatten()
            .map(|t| {
                json!({
                    "threat": t,
                    "state": if mitigations_of.contains_key(t.as_str()) { "mitigation-defined" } else { "open" },
                    "mitigations": mitigations_of.get(t.as_str()).into_iter().flatten()
                        .map(|mid| json!({"mitigation": mid, "state": "defined"})).collect::<Vec<_>>(),
                })
            })
            .collect()
    };
    let mut components: Vec<Value> = m
        .components
        .iter()
        .map(|c| {
            let stored: Vec<&String> = if matches!(c.kind, ComponentType::Datastore | ComponentType::Queue) {
                c.handles.iter().collect()
            } else {
                Vec::new()
            };
            json!({
                "id": c.id, "name": c.name, "type": c.kind.as_str(), "description": c.description,
                "parent": {"trustZone": c.boundary.as_deref().unwrap_or(default_zone)},
                "assets": {"processed": c.handles, "stored": stored},
                "threats": refs(&c.id),
                "attributes": {"rampart": {
                    "boundary": c.boundary, "selector": c.selector, "internet_facing": c.internet_facing,
                    "encrypted_at_rest": c.encrypted_at_rest, "instances": c.instances,
                    "audit_log": c.audit_log, "privileged": c.privileged,
                }},
            })
        })
        .collect();
    for a in &m.actors {
        components.push(json!({
            "id": a.id, "name": a.name, "type": "actor",
            "parent": {"trustZone": a.boundary.as_deref().unwrap_or(default_zone)},
            "threats": refs(&a.id),
            "attributes": {"rampart": {"actor": true, "boundary": a.boundary}},
        }));
    }
    let dataflows: Vec<Value> = m
        .flows
        .iter()
        .map(|f| {
            json!({
                "id": f.id, "name": if f.name.is_empty() { &f.id } else { &f.name },
                "bidirectional": false, "source": f.from, "destination": f.to,
                "assets": f.carries, "threats": refs(&f.id),
                "attributes": {"rampart": {
                    "name": f.name, "protocol": f.protocol, "port": f.port, "encrypted": f.encrypted,
                    "authenticated": f.authenticated, "admin": f.admin,
                }},
            })
        })
        .collect();
    let mitigations: Vec<Value> = m
        .mitigations
        .iter()
        .map(|mit| {
            json!({
                "id": mit.id, "name": mit.title, "riskReduction": 100,
                "attributes": {"rampart": {
                    "mitigates": mit.mitigates,
                    "controls": mit.controls.iter().map(|c| json!({"pack": c.pack, "rule": c.rule})).collect::<Vec<_>>(),
                    "experiments": mit.experiments,
                    "manual": mit.manual.as_ref().map(|man| json!({"evidence": man.evidence, "expires": man.expires.to_string()})),
                    "effect": factors_json(&mit.effect),
                }},
            })
        })
        .collect();
    let assets: Vec<Value> = m
        .assets
        .iter()
        .map(|a| {
            json!({
                "id": a.id, "name": a.name, "description": a.description,
                "risk": {"confidentiality": pct(a.confidentiality), "integrity": pct(a.integrity), "availability": pct(a.availability)},
            })
        })
        .collect();
    json!({
        "otmVersion": "0.2.0",
        "project": {
            "name": m.name, "id": m.name, "description": m.description,
            "attributes": {"rampart": {
                "freshness_secs": m.freshness.as_secs(),
                "accepted": m.accepted.iter().map(|a| json!({"threat": a.risk, "reason": a.reason, "expires": a.expires.to_string()})).collect::<Vec<_>>(),
                "exclusions": m.exclusions.iter().map(|x| json!({"rule": x.rule, "element": x.element, "justification": x.justification})).collect::<Vec<_>>(),
            }},
        },
        "assets": assets,
        "trustZones": zones,
        "components": components,
        "dataflows": dataflows,
        "threats": threats,
        "mitigations": mitigations,
    })
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn component_type(t: &str) -> ComponentType {
    let t = t.to_ascii_lowercase();
    if let Some(k) = ComponentType::parse(&t) {
        return k;
    }
    if [
        "store", "database", "db", "bucket", "storage", "sql", "cache",
    ]
    .iter()
    .any(|k| t.contains(k))
    {
        ComponentType::Datastore
    } else if ["queue", "broker", "topic", "kafka", "bus"]
        .iter()
        .any(|k| t.contains(k))
    {
        ComponentType::Queue
    } else if t.contains("external") || t.contains("third") || t.contains("saas") {
        ComponentType::External
    } else {
        ComponentType::Process
    }
}

/// OTM ids may hold any character; Rampart ids are kept when they are valid ids, others get a
/// slug of the name.
#[derive(Default)]
struct Ids {
    taken: HashSet<String>,
    map: HashMap<String, String>,
}

impl Ids {
    fn id_for(&mut self, raw: &str, name: &str) -> String {
        let ok = !raw.is_empty()
            && raw.len() <= 128
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && !self.taken.contains(raw);
        let id = if ok {
            self.taken.insert(raw.to_string());
            raw.to_string()
        } else {
            slug(name, "element", &mut self.taken)
        };
        self.map.insert(raw.to_string(), id.clone());
        id
    }

    fn map(&self, raw: &str) -> String {
        self.map
            .get(raw)
            .cloned()
            .unwrap_or_else(|| raw.to_string())
    }
}

/// Reads an OTM document; returns the model and notes on what was not carried over.
pub fn import(text: &str) -> Result<(Model, Vec<String>), ImportError> {
    if text.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge(text.len()));
    }
    let doc: Value = serde_json::from_str(text)?;
    if !s(&doc["otmVersion"]).starts_with("0.") {
        return Err(ImportError::Format(format!(
            "not an Open Threat Model document (otmVersion {:?})",
            doc["otmVersion"]
        )));
    }
    let mut notes = Vec::new();
    let project = &doc["project"];
    let pr = &project["attributes"]["rampart"];
    let mut m = Model {
        name: s(&project["name"]),
        description: s(&project["description"]),
        freshness: pr["freshness_secs"]
            .as_u64()
            .map(std::time::Duration::from_secs)
            .unwrap_or(DEFAULT_FRESHNESS),
        ..Model::default()
    };
    let mut ids = Ids::default();
    for a in doc["assets"].as_array().into_iter().flatten() {
        let id = ids.id_for(&s(&a["id"]), &s(&a["name"]));
        let r = &a["risk"];
        m.assets.push(Asset {
            id,
            name: s(&a["name"]),
            description: s(&a["description"]),
            confidentiality: from_pct(r["confidentiality"].as_f64().unwrap_or(0.0)),
            integrity: from_pct(r["integrity"].as_f64().unwrap_or(0.0)),
            availability: from_pct(r["availability"].as_f64().unwrap_or(0.0)),
        });
    }
    let mut placeholder = HashSet::new();
    for z in doc["trustZones"].as_array().into_iter().flatten() {
        if z["attributes"]["rampart"]["placeholder"].as_bool() == Some(true) {
            placeholder.insert(s(&z["id"]));
            continue;
        }
        let id = ids.id_for(&s(&z["id"]), &s(&z["name"]));
        let kind = match z["attributes"]["rampart"]["kind"].as_str() {
            Some(k) => k.to_string(),
            None if z["risk"]["trustRating"].as_f64() == Some(0.0) => "internet".into(),
            None => "network".into(),
        };
        m.boundaries.push(Boundary {
            id,
            name: s(&z["name"]),
            kind,
            parent: z["parent"]["trustZone"].as_str().map(str::to_string),
        });
    }
    for b in &mut m.boundaries {
        b.parent = b
            .parent
            .as_deref()
            .filter(|p| !placeholder.contains(*p))
            .map(|p| ids.map(p));
    }
    let mut threat_elements: HashMap<String, Vec<String>> = HashMap::new();
    let mut mitigated: HashMap<String, Vec<String>> = HashMap::new();
    let mut note_refs = |element: &str, v: &Value| {
        for t in v["threats"].as_array().into_iter().flatten() {
            let tid = s(&t["threat"]);
            threat_elements
                .entry(tid.clone())
                .or_default()
                .push(element.to_string());
            for mm in t["mitigations"].as_array().into_iter().flatten() {
                mitigated
                    .entry(s(&mm["mitigation"]))
                    .or_default()
                    .push(tid.clone());
            }
        }
    };
    let parent_boundary = |c: &Value, ids: &Ids| -> Option<String> {
        let z = c["parent"]["trustZone"].as_str()?;
        (!placeholder.contains(z)).then(|| ids.map(z))
    };
    let mut nested: Vec<(usize, String)> = Vec::new();
    for c in doc["components"].as_array().into_iter().flatten() {
        let id = ids.id_for(&s(&c["id"]), &s(&c["name"]));
        note_refs(&id, c);
        let ra = &c["attributes"]["rampart"];
        let boundary = parent_boundary(c, &ids);
        if ra["actor"].as_bool() == Some(true) || s(&c["type"]).eq_ignore_ascii_case("actor") {
            m.actors.push(Actor {
                id,
                name: s(&c["name"]),
                boundary,
            });
            continue;
        }
        if let Some(p) = c["parent"]["component"].as_str() {
            nested.push((m.components.len(), p.to_string()));
        }
        let mut handles = strings(&c["assets"]["processed"]);
        for st in strings(&c["assets"]["stored"]) {
            if !handles.contains(&st) {
                handles.push(st);
            }
        }
        m.components.push(Component {
            id,
            name: s(&c["name"]),
            description: s(&c["description"]),
            kind: component_type(&s(&c["type"])),
            boundary,
            internet_facing: ra["internet_facing"].as_bool().unwrap_or(false),
            selector: ra["selector"].as_str().map(str::to_string),
            handles,
            encrypted_at_rest: ra["encrypted_at_rest"].as_bool().unwrap_or(false),
            instances: ra["instances"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1)
                .max(1),
            audit_log: ra["audit_log"].as_bool().unwrap_or(false),
            privileged: ra["privileged"].as_bool().unwrap_or(false),
        });
    }
    // A component nested in another sits in its parent's boundary.
    for (i, parent) in nested {
        let b = m
            .components
            .iter()
            .find(|c| c.id == ids.map(&parent))
            .and_then(|c| c.boundary.clone());
        m.components[i].boundary = b;
    }
    for f in doc["dataflows"].as_array().into_iter().flatten() {
        let id = ids.id_for(&s(&f["id"]), &s(&f["name"]));
        note_refs(&id, f);
        let ra = &f["attributes"]["rampart"];
        if f["bidirectional"].as_bool() == Some(true) {
            notes.push(format!(
                "dataflow {id} is bidirectional; imported in its source → destination direction"
            ));
        }
        m.flows.push(Flow {
            id,
            name: ra["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| s(&f["name"])),
            from: ids.map(&s(&f["source"])),
            to: ids.map(&s(&f["destination"])),
            protocol: s(&ra["protocol"]),
            port: ra["port"].as_u64().and_then(|p| u16::try_from(p).ok()),
            encrypted: ra["encrypted"].as_bool().unwrap_or(false),
            authenticated: ra["authenticated"].as_bool().unwrap_or(false),
            admin: ra["admin"].as_bool().unwrap_or(false),
            carries: strings(&f["assets"]).iter().map(|a| ids.map(a)).collect(),
        });
    }
    for c in &mut m.components {
        c.handles = c.handles.iter().map(|a| ids.map(a)).collect();
    }
    for t in doc["threats"].as_array().into_iter().flatten() {
        let raw = s(&t["id"]);
        let ra = &t["attributes"]["rampart"];
        if ra["finding"].as_bool() == Some(true) || raw.starts_with("rule:") {
            continue; // the rules find it again
        }
        let elements: Vec<String> = match ra["elements"].as_array() {
            Some(_) => strings(&ra["elements"])
                .iter()
                .map(|e| ids.map(e))
                .collect(),
            None => threat_elements.get(&raw).cloned().unwrap_or_default(),
        };
        if elements.is_empty() {
            notes.push(format!(
                "threat {raw:?} is on no component or dataflow; not imported"
            ));
            continue;
        }
        let stride = strings(&t["categories"])
            .iter()
            .find_map(|c| Stride::parse(&c.to_ascii_lowercase().replace([' ', '-'], "_")))
            .unwrap_or_else(|| {
                notes.push(format!(
                    "threat {raw:?}: no STRIDE category; read as tampering"
                ));
                Stride::Tampering
            });
        let mut factors = factors_from(&ra["factors"]);
        if ra["factors"].is_null() {
            // Another tool's 0–100 likelihood and impact spread over the OWASP factors.
            let scale = |v: &Value| {
                v.as_f64()
                    .map(|v| (v.clamp(0.0, 100.0) * 9.0 / 100.0).round() as u8)
            };
            if let Some(l) = scale(&t["risk"]["likelihood"]) {
                for i in 0..8 {
                    factors.0[i] = Some(l);
                }
            }
            if let Some(im) = scale(&t["risk"]["impact"]) {
                for i in 8..12 {
                    factors.0[i] = Some(im);
                }
            }
        }
        let id = ids.id_for(&raw, &s(&t["name"]));
        m.threats.push(Threat {
            id,
            title: s(&t["name"]),
            description: s(&t["description"]),
            stride,
            elements,
            factors,
        });
    }
    for mm in doc["mitigations"].as_array().into_iter().flatten() {
        let raw = s(&mm["id"]);
        let ra = &mm["attributes"]["rampart"];
        let mitigates: Vec<String> = match ra["mitigates"].as_array() {
            Some(_) => strings(&ra["mitigates"]),
            None => mitigated
                .get(&raw)
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|t| ids.map(t))
                .collect(),
        };
        let controls: Vec<Control> = ra["controls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Control {
                pack: s(&c["pack"]),
                rule: s(&c["rule"]),
            })
            .collect();
        let experiments = strings(&ra["experiments"]);
        let manual = ra["manual"].as_object().and_then(|man| {
            Some(Manual {
                evidence: man.get("evidence")?.as_str()?.to_string(),
                expires: NaiveDate::parse_from_str(man.get("expires")?.as_str()?, "%Y-%m-%d")
                    .ok()?,
            })
        });
        if controls.is_empty() && experiments.is_empty() && manual.is_none() {
            notes.push(format!(
                "mitigation {raw:?} ({}) has no Rampart evidence; add `controls`, `experiments` or `manual` to import it",
                s(&mm["name"])
            ));
            continue;
        }
        if mitigates.is_empty() {
            notes.push(format!(
                "mitigation {raw:?} mitigates no threat; not imported"
            ));
            continue;
        }
        let id = ids.id_for(&raw, &s(&mm["name"]));
        m.mitigations.push(Mitigation {
            id,
            title: s(&mm["name"]),
            mitigates,
            controls,
            experiments,
            manual,
            effect: factors_from(&ra["effect"]),
        });
    }
    for a in pr["accepted"].as_array().into_iter().flatten() {
        if let Ok(expires) = NaiveDate::parse_from_str(&s(&a["expires"]), "%Y-%m-%d") {
            m.accepted.push(Accepted {
                risk: s(&a["threat"]),
                reason: s(&a["reason"]),
                expires,
            });
        }
    }
    for x in pr["exclusions"].as_array().into_iter().flatten() {
        m.exclusions.push(Exclusion {
            rule: s(&x["rule"]),
            element: s(&x["element"]),
            justification: s(&x["justification"]),
        });
    }
    if m.name.is_empty() {
        m.name = "imported".into();
    }
    Ok((m, notes))
}
