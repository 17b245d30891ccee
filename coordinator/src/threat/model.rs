//! What a threat-model file holds once it has been read and checked: every reference resolves,
//! ids are unique, boundaries form a tree.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chrono::NaiveDate;

use super::risk::Factors;

/// How much an asset matters for one of confidentiality, integrity, availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Rating {
    #[default]
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Rating {
    pub const NAMES: &'static [&'static str] = &["none", "low", "medium", "high", "critical"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Rating::None,
            "low" => Rating::Low,
            "medium" => Rating::Medium,
            "high" => Rating::High,
            "critical" => Rating::Critical,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// The STRIDE categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stride {
    Spoofing,
    Tampering,
    Repudiation,
    InformationDisclosure,
    DenialOfService,
    ElevationOfPrivilege,
}

impl Stride {
    pub const NAMES: &'static [&'static str] = &[
        "spoofing",
        "tampering",
        "repudiation",
        "information_disclosure",
        "denial_of_service",
        "elevation_of_privilege",
    ];
    pub const ALL: [Stride; 6] = [
        Stride::Spoofing,
        Stride::Tampering,
        Stride::Repudiation,
        Stride::InformationDisclosure,
        Stride::DenialOfService,
        Stride::ElevationOfPrivilege,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for Stride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ComponentType {
    /// A program: a service, a daemon, a job.
    Process,
    /// Where data rests: a database, a bucket, a file share.
    Datastore,
    /// A message broker or queue (holds data in transit).
    Queue,
    /// A system outside the team's control (a payment processor, a SaaS API).
    External,
}

impl ComponentType {
    pub const NAMES: &'static [&'static str] = &["process", "datastore", "queue", "external"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "process" => ComponentType::Process,
            "datastore" => ComponentType::Datastore,
            "queue" => ComponentType::Queue,
            "external" => ComponentType::External,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentType::Process => "process",
            ComponentType::Datastore => "datastore",
            ComponentType::Queue => "queue",
            ComponentType::External => "external",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub id: String,
    pub name: String,
    pub description: String,
    pub confidentiality: Rating,
    pub integrity: Rating,
    pub availability: Rating,
}

/// Boundary kinds; `internet` marks an untrusted zone.
pub const BOUNDARY_KINDS: &[&str] = &["internet", "network", "host", "container", "cloud"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: ComponentType,
    pub boundary: Option<String>,
    pub internet_facing: bool,
    /// The real hosts it runs on (a label selector); None when it is not on the fleet.
    pub selector: Option<String>,
    pub handles: Vec<String>,
    pub encrypted_at_rest: bool,
    /// How many instances serve it (1 unless stated).
    pub instances: u32,
    /// It keeps an audit trail of who changed what.
    pub audit_log: bool,
    /// It runs with administrative privileges (root, a cluster-admin account).
    pub privileged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub boundary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub id: String,
    pub name: String,
    pub from: String,
    pub to: String,
    pub protocol: String,
    pub port: Option<u16>,
    pub encrypted: bool,
    pub authenticated: bool,
    /// An administrative or management interface (SSH, a database console, an admin API).
    pub admin: bool,
    pub carries: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threat {
    pub id: String,
    pub title: String,
    pub description: String,
    pub stride: Stride,
    pub elements: Vec<String>,
    /// OWASP factors given in the file; the rest come from the elements.
    pub factors: Factors,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Control {
    pub pack: String,
    pub rule: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manual {
    pub evidence: String,
    pub expires: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mitigation {
    pub id: String,
    pub title: String,
    /// Risk ids: a threat's id, or `rule:RULE@ELEMENT`.
    pub mitigates: Vec<String>,
    pub controls: Vec<Control>,
    pub experiments: Vec<String>,
    pub manual: Option<Manual>,
    /// The factors a proven mitigation sets (the default closes the weakness: see `risk.rs`).
    pub effect: Factors,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub risk: String,
    pub reason: String,
    pub expires: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    pub rule: String,
    pub element: String,
    pub justification: String,
}

/// How old evidence may be, unless the model says otherwise.
pub const DEFAULT_FRESHNESS: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Model {
    pub name: String,
    pub description: String,
    pub freshness: Duration,
    pub assets: Vec<Asset>,
    pub boundaries: Vec<Boundary>,
    pub components: Vec<Component>,
    pub actors: Vec<Actor>,
    pub flows: Vec<Flow>,
    pub threats: Vec<Threat>,
    pub mitigations: Vec<Mitigation>,
    pub accepted: Vec<Accepted>,
    pub exclusions: Vec<Exclusion>,
}

/// A component, actor or flow.
#[derive(Debug, Clone, Copy)]
pub enum Element<'m> {
    Component(&'m Component),
    Actor(&'m Actor),
    Flow(&'m Flow),
}

/// Lookups over a checked model.
#[derive(Debug)]
pub struct Index<'m> {
    pub model: &'m Model,
    pub assets: HashMap<&'m str, &'m Asset>,
    pub boundaries: HashMap<&'m str, &'m Boundary>,
    pub components: HashMap<&'m str, &'m Component>,
    pub actors: HashMap<&'m str, &'m Actor>,
    pub flows: HashMap<&'m str, &'m Flow>,
}

impl<'m> Index<'m> {
    pub fn new(model: &'m Model) -> Self {
        Self {
            model,
            assets: model.assets.iter().map(|a| (a.id.as_str(), a)).collect(),
            boundaries: model
                .boundaries
                .iter()
                .map(|b| (b.id.as_str(), b))
                .collect(),
            components: model
                .components
                .iter()
                .map(|c| (c.id.as_str(), c))
                .collect(),
            actors: model.actors.iter().map(|a| (a.id.as_str(), a)).collect(),
            flows: model.flows.iter().map(|f| (f.id.as_str(), f)).collect(),
        }
    }

    pub fn element(&self, id: &str) -> Option<Element<'m>> {
        if let Some(c) = self.components.get(id) {
            return Some(Element::Component(c));
        }
        if let Some(a) = self.actors.get(id) {
            return Some(Element::Actor(a));
        }
        self.flows.get(id).map(|f| Element::Flow(f))
    }

    /// The boundary an element (component or actor) sits in.
    pub fn boundary_of(&self, id: &str) -> Option<&'m str> {
        match self.element(id)? {
            Element::Component(c) => c.boundary.as_deref(),
            Element::Actor(a) => a.boundary.as_deref(),
            Element::Flow(_) => None,
        }
    }

    /// True when boundary `inner` is `outer` or nested in it (boundaries form a tree).
    pub fn within(&self, inner: Option<&str>, outer: Option<&str>) -> bool {
        let Some(outer) = outer else {
            return true;
        };
        let mut cur = inner;
        let mut steps = 0;
        while let Some(b) = cur {
            if b == outer {
                return true;
            }
            cur = self.boundaries.get(b).and_then(|b| b.parent.as_deref());
            steps += 1;
            if steps > self.boundaries.len() {
                break;
            }
        }
        false
    }

    /// An actor, an external component, or anything in an `internet` boundary (or nested in one).
    pub fn untrusted(&self, id: &str) -> bool {
        match self.element(id) {
            Some(Element::Actor(a)) => {
                a.boundary.is_none() || self.in_internet(a.boundary.as_deref())
            }
            Some(Element::Component(c)) => {
                c.kind == ComponentType::External || self.in_internet(c.boundary.as_deref())
            }
            _ => false,
        }
    }

    fn in_internet(&self, boundary: Option<&str>) -> bool {
        let mut cur = boundary;
        let mut steps = 0;
        while let Some(b) = cur.and_then(|b| self.boundaries.get(b)) {
            if b.kind == "internet" {
                return true;
            }
            cur = b.parent.as_deref();
            steps += 1;
            if steps > self.boundaries.len() {
                break;
            }
        }
        false
    }

    /// The flow's ends sit in different boundaries.
    pub fn crosses(&self, f: &Flow) -> bool {
        self.boundary_of(&f.from) != self.boundary_of(&f.to)
    }

    /// The assets an element involves: what a component handles, what a flow carries.
    pub fn assets_of(&self, id: &str) -> Vec<&'m Asset> {
        let ids: &[String] = match self.element(id) {
            Some(Element::Component(c)) => &c.handles,
            Some(Element::Flow(f)) => &f.carries,
            _ => &[],
        };
        ids.iter()
            .filter_map(|a| self.assets.get(a.as_str()).copied())
            .collect()
    }

    /// The highest rating among `assets` for one property.
    pub fn max_of(assets: &[&Asset], pick: fn(&Asset) -> Rating) -> Rating {
        assets.iter().map(|a| pick(a)).max().unwrap_or_default()
    }

    /// The element's display name.
    pub fn name_of(&self, id: &str) -> &'m str {
        match self.element(id) {
            Some(Element::Component(c)) => &c.name,
            Some(Element::Actor(a)) => &a.name,
            Some(Element::Flow(f)) => &f.name,
            None => "",
        }
    }

    /// The selectors of the hosts an element runs on: a component's own, a flow's two ends'.
    pub fn selectors_of(&self, id: &str) -> Vec<&'m str> {
        match self.element(id) {
            Some(Element::Component(c)) => c.selector.as_deref().into_iter().collect(),
            Some(Element::Flow(f)) => [&f.from, &f.to]
                .into_iter()
                .filter_map(|e| self.components.get(e.as_str()))
                .filter_map(|c| c.selector.as_deref())
                .collect(),
            _ => Vec::new(),
        }
    }
}
