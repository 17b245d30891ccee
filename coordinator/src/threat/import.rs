//! Import of OWASP Threat Dragon v2 models (JSON). Threat Dragon draws diagrams: processes,
//! stores, actors, flows and trust-boundary boxes or curves, each cell with its threats. Rampart
//! reads the cells into a model: boxes become boundaries (containment by geometry), stores become
//! datastores (`storesCredentials` adds a `credentials` asset, `isEncrypted` sets
//! `encrypted_at_rest`, `isALog` sets `audit_log`), flows keep `isEncrypted`, and a flow on a
//! public network puts its actors in an `internet` boundary. What has no counterpart is said in
//! the notes written at the top of the file.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::model::*;
use super::risk::Factors;

/// A Threat Dragon file is a few hundred kB at most; refuse what is clearly not one.
pub const MAX_IMPORT_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file is {0} bytes; at most {MAX_IMPORT_BYTES}")]
    TooLarge(usize),
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Format(String),
}

/// An id from a name: lower-case letters, digits and dashes, unique in `taken`.
pub fn slug(name: &str, fallback: &str, taken: &mut HashSet<String>) -> String {
    let mut s = String::new();
    for ch in name.trim().chars() {
        if ch.is_ascii_alphanumeric() {
            s.push(ch.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-');
    let mut base: String = if s.is_empty() {
        fallback.to_string()
    } else {
        s.chars().take(60).collect()
    };
    if base.starts_with("rule") {
        base = format!("x-{base}");
    }
    let mut id = base.clone();
    let mut n = 2;
    while !taken.insert(id.clone()) {
        id = format!("{base}-{n}");
        n += 1;
    }
    id
}

struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn of(cell: &Value) -> Option<Self> {
        Some(Rect {
            x: cell["position"]["x"].as_f64()?,
            y: cell["position"]["y"].as_f64()?,
            w: cell["size"]["width"].as_f64().unwrap_or(0.0),
            h: cell["size"]["height"].as_f64().unwrap_or(0.0),
        })
    }
    fn center(&self) -> (f64, f64) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }
    fn contains(&self, p: (f64, f64)) -> bool {
        p.0 >= self.x && p.0 <= self.x + self.w && p.1 >= self.y && p.1 <= self.y + self.h
    }
    fn area(&self) -> f64 {
        self.w * self.h
    }
}

fn stride_of(kind: &str) -> Option<Stride> {
    Some(match kind.to_ascii_lowercase().as_str() {
        "spoofing" => Stride::Spoofing,
        "tampering" | "integrity" => Stride::Tampering,
        "repudiation" | "non-repudiation" => Stride::Repudiation,
        "information disclosure"
        | "confidentiality"
        | "disclosure of information"
        | "linkability"
        | "identifiability"
        | "detectability"
        | "unawareness" => Stride::InformationDisclosure,
        "denial of service" | "availability" => Stride::DenialOfService,
        "elevation of privilege" => Stride::ElevationOfPrivilege,
        _ => return None,
    })
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_default()
        .replace('\n', " ")
        .trim()
        .to_string()
}

/// The same note once, with how many times it came up.
pub fn collapse(notes: Vec<String>) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for n in notes {
        match out.iter_mut().find(|(x, _)| *x == n) {
            Some((_, count)) => *count += 1,
            None => out.push((n, 1)),
        }
    }
    out.into_iter()
        .map(|(n, c)| if c > 1 { format!("{n} ({c} times)") } else { n })
        .collect()
}

/// Reads a Threat Dragon v2 file; returns the model and notes on what was not carried over.
pub fn threat_dragon(json: &str) -> Result<(Model, Vec<String>), ImportError> {
    if json.len() > MAX_IMPORT_BYTES {
        return Err(ImportError::TooLarge(json.len()));
    }
    let doc: Value = serde_json::from_str(json)?;
    let version = doc["version"].as_str().unwrap_or_default();
    if !version.starts_with('2') {
        return Err(ImportError::Format(format!(
            "this is not a Threat Dragon v2 model (version {:?}); open and save it in Threat Dragon 2 first",
            doc["version"]
        )));
    }
    let diagrams = doc["detail"]["diagrams"]
        .as_array()
        .ok_or_else(|| ImportError::Format("no `detail.diagrams` list".into()))?;
    let mut m = Model {
        name: text(&doc["summary"]["title"]),
        description: text(&doc["summary"]["description"]),
        freshness: DEFAULT_FRESHNESS,
        ..Model::default()
    };
    if m.name.is_empty() {
        m.name = "imported".into();
    }
    let mut notes = Vec::new();
    let mut taken = HashSet::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut credentials = false;
    let mut public_actors = HashSet::new();
    let mut threat_n = 0;

    for d in diagrams {
        let cells = d["cells"].as_array().cloned().unwrap_or_default();
        // Boundary boxes first: the smallest box around an element is its boundary.
        let mut boxes: Vec<(String, Rect)> = Vec::new();
        for c in &cells {
            let shape = c["shape"].as_str().unwrap_or_default();
            if shape == "trust-boundary-box"
                && let Some(r) = Rect::of(c)
            {
                let name = text(&c["data"]["name"]);
                let id = slug(&name, "boundary", &mut taken);
                boxes.push((id.clone(), r));
                m.boundaries.push(Boundary {
                    id,
                    name: if name.is_empty() {
                        "Trust boundary".into()
                    } else {
                        name
                    },
                    kind: "network".into(),
                    parent: None,
                });
            } else if shape == "trust-boundary-curve" {
                notes.push(format!(
                    "diagram {:?}: a trust-boundary curve has no inside; draw it as a box to import it",
                    text(&d["title"])
                ));
            }
        }
        let inside = |r: &Rect, skip: Option<&str>| -> Option<String> {
            boxes
                .iter()
                .filter(|(id, b)| {
                    Some(id.as_str()) != skip && b.area() > r.area() && b.contains(r.center())
                })
                .min_by(|a, b| a.1.area().total_cmp(&b.1.area()))
                .map(|(id, _)| id.clone())
        };
        let parents: Vec<Option<String>> =
            boxes.iter().map(|(id, r)| inside(r, Some(id))).collect();
        for ((id, _), p) in boxes.iter().zip(parents) {
            if let Some(b) = m.boundaries.iter_mut().find(|b| &b.id == id) {
                b.parent = p;
            }
        }
        for c in &cells {
            let data = &c["data"];
            let shape = c["shape"].as_str().unwrap_or_default();
            let name = text(&data["name"]);
            let cell_id = c["id"].as_str().unwrap_or_default().to_string();
            let out_of_scope = data["outOfScope"].as_bool().unwrap_or(false);
            if out_of_scope && matches!(shape, "actor" | "process" | "store" | "flow") {
                notes.push(format!(
                    "{shape} {name:?} is out of scope in Threat Dragon; not imported"
                ));
                continue;
            }
            let boundary = Rect::of(c).and_then(|r| inside(&r, None));
            let id = match shape {
                "actor" => {
                    let id = slug(&name, "actor", &mut taken);
                    m.actors.push(Actor {
                        id: id.clone(),
                        name: name.clone(),
                        boundary,
                    });
                    id
                }
                "process" | "store" => {
                    let id = slug(&name, shape, &mut taken);
                    let store = shape == "store";
                    let mut handles = Vec::new();
                    if store && data["storesCredentials"].as_bool().unwrap_or(false) {
                        credentials = true;
                        handles.push("credentials".to_string());
                    }
                    m.components.push(Component {
                        id: id.clone(),
                        name: name.clone(),
                        description: text(&data["description"]),
                        kind: if store {
                            ComponentType::Datastore
                        } else {
                            ComponentType::Process
                        },
                        boundary,
                        internet_facing: false,
                        selector: None,
                        handles,
                        encrypted_at_rest: store && data["isEncrypted"].as_bool().unwrap_or(false),
                        instances: 1,
                        audit_log: store && data["isALog"].as_bool().unwrap_or(false),
                        privileged: false,
                    });
                    id
                }
                _ => continue,
            };
            ids.insert(cell_id, id);
        }
        for c in &cells {
            if c["shape"].as_str() != Some("flow") {
                continue;
            }
            let data = &c["data"];
            if data["outOfScope"].as_bool().unwrap_or(false) {
                continue;
            }
            let name = text(&data["name"]);
            let (Some(from), Some(to)) = (
                c["source"]["cell"].as_str().and_then(|s| ids.get(s)),
                c["target"]["cell"].as_str().and_then(|s| ids.get(s)),
            ) else {
                notes.push(format!(
                    "flow {name:?} is not connected at both ends; not imported"
                ));
                continue;
            };
            if from == to {
                notes.push(format!("flow {name:?} loops on one element; not imported"));
                continue;
            }
            let id = slug(&name, "flow", &mut taken);
            if data["isPublicNetwork"].as_bool().unwrap_or(false) {
                for end in [from, to] {
                    if m.actors.iter().any(|a| &a.id == end) {
                        public_actors.insert(end.clone());
                    }
                }
            }
            m.flows.push(Flow {
                id: id.clone(),
                name,
                from: from.clone(),
                to: to.clone(),
                protocol: text(&data["protocol"]),
                port: None,
                encrypted: data["isEncrypted"].as_bool().unwrap_or(false),
                authenticated: false,
                admin: false,
                carries: Vec::new(),
            });
            ids.insert(c["id"].as_str().unwrap_or_default().to_string(), id);
        }
        // Threats, on the element they were written on.
        for c in &cells {
            let Some(element) = c["id"].as_str().and_then(|s| ids.get(s)) else {
                continue;
            };
            for t in c["data"]["threats"].as_array().into_iter().flatten() {
                threat_n += 1;
                let kind = text(&t["type"]);
                let stride = stride_of(&kind).unwrap_or_else(|| {
                    notes.push(format!(
                        "threat {:?}: category {kind:?} read as information_disclosure",
                        text(&t["title"])
                    ));
                    Stride::InformationDisclosure
                });
                let mut description = text(&t["description"]);
                for (label, key) in [
                    ("Status", "status"),
                    ("Severity", "severity"),
                    ("Mitigation", "mitigation"),
                ] {
                    let v = text(&t[key]);
                    if !v.is_empty() {
                        description.push_str(&format!(" {label} in Threat Dragon: {v}."));
                    }
                }
                let title = text(&t["title"]);
                m.threats.push(Threat {
                    id: format!("TD-{threat_n}"),
                    title: if title.is_empty() {
                        format!("Threat {threat_n}")
                    } else {
                        title
                    },
                    description: description.trim().to_string(),
                    stride,
                    elements: vec![element.clone()],
                    factors: Factors::default(),
                });
            }
        }
    }
    if !public_actors.is_empty() {
        let id = slug("internet", "internet", &mut taken);
        m.boundaries.push(Boundary {
            id: id.clone(),
            name: "Internet".into(),
            kind: "internet".into(),
            parent: None,
        });
        for a in m
            .actors
            .iter_mut()
            .filter(|a| public_actors.contains(&a.id) && a.boundary.is_none())
        {
            a.boundary = Some(id.clone());
        }
    }
    if credentials {
        m.assets.push(Asset {
            id: "credentials".into(),
            name: "Stored credentials".into(),
            description: "Imported: a Threat Dragon store marked `storesCredentials`.".into(),
            confidentiality: Rating::Critical,
            integrity: Rating::High,
            availability: Rating::Medium,
        });
    }
    let mut notes = collapse(notes);
    notes.push("Threat Dragon does not record authentication on flows: every flow is imported with `authenticated: false`; review them.".into());
    notes.push("Add `selector:` to components that run on Rampart hosts, and assets with their ratings, so rules and evidence apply.".into());
    Ok((m, notes))
}
