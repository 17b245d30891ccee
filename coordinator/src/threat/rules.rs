//! The built-in rules: each finds one precise weakness in the model and names the element and
//! why. `docs/threat-rules.md` is generated from this table (`rampart threats rules`), and a test
//! keeps the two equal.
//!
//! "Sensitive" below means confidentiality or integrity rated high or critical; "untrusted" means
//! an actor, an external component, or an element in (or nested in) an `internet` boundary.

use std::collections::HashMap;

use super::model::{ComponentType, Flow, Index, Rating, Stride};

/// A finding: rule, element, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static Rule,
    pub element: String,
    pub why: String,
}

impl Finding {
    pub fn risk_id(&self) -> String {
        risk_id(self.rule.id, &self.element)
    }
}

pub fn risk_id(rule: &str, element: &str) -> String {
    format!("rule:{rule}@{element}")
}

type Check = fn(&Index) -> Vec<(String, String)>;

#[derive(Debug)]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    pub stride: Stride,
    /// The exact condition, as documented.
    pub condition: &'static str,
    pub rationale: &'static str,
    pub references: &'static [&'static str],
    /// OWASP vulnerability factors when found: ease of discovery, ease of exploit, awareness.
    pub vulnerability: [u8; 3],
    check: Check,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Rule {}

pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

/// Every rule's findings on a checked model, in rule order then element order.
pub fn find(ix: &Index) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in RULES {
        for (element, why) in (r.check)(ix) {
            out.push(Finding {
                rule: r,
                element,
                why,
            });
        }
    }
    out
}

fn sensitive(r: Rating) -> bool {
    r >= Rating::High
}

/// Names of the assets a list selects, for messages.
fn names(ix: &Index, ids: &[String], keep: impl Fn(&super::model::Asset) -> bool) -> Vec<String> {
    ids.iter()
        .filter_map(|a| ix.assets.get(a.as_str()))
        .filter(|a| keep(a))
        .map(|a| a.id.clone())
        .collect()
}

fn confidential_carried(ix: &Index, f: &Flow) -> Vec<String> {
    names(ix, &f.carries, |a| sensitive(a.confidentiality))
}

fn handles_sensitive(ix: &Index, id: &str) -> Vec<String> {
    match ix.components.get(id) {
        Some(c) => names(ix, &c.handles, |a| {
            sensitive(a.confidentiality) || sensitive(a.integrity)
        }),
        None => Vec::new(),
    }
}

fn is_kind(ix: &Index, id: &str, kind: ComponentType) -> bool {
    ix.components.get(id).is_some_and(|c| c.kind == kind)
}

fn flows<'m>(ix: &Index<'m>) -> impl Iterator<Item = &'m Flow> {
    ix.model.flows.iter()
}

fn plaintext_sensitive_crossing(ix: &Index, f: &Flow) -> bool {
    !f.encrypted && ix.crosses(f) && !confidential_carried(ix, f).is_empty()
}

fn untrusted_end(ix: &Index, f: &Flow) -> bool {
    ix.untrusted(&f.from) || ix.untrusted(&f.to)
}

const LEGACY_PROTOCOLS: &[&str] = &["telnet", "ftp", "tftp", "rsh", "rlogin", "rexec"];

pub static RULES: &[Rule] = &[
    Rule {
        id: "unencrypted-sensitive-flow",
        title: "Confidential data crosses a boundary unencrypted",
        stride: Stride::InformationDisclosure,
        condition: "a flow with `encrypted: false` whose two ends are in different boundaries carries an asset with confidentiality high or critical",
        rationale: "Anyone on the network path between the zones can read the data.",
        references: &["CWE-319", "CAPEC-157"],
        vulnerability: [7, 5, 6],
        check: |ix| {
            flows(ix)
                .filter(|f| plaintext_sensitive_crossing(ix, f))
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "flow {} carries {} unencrypted from {} to {}",
                            f.id,
                            confidential_carried(ix, f).join(", "),
                            ix.boundary_of(&f.from).unwrap_or("no boundary"),
                            ix.boundary_of(&f.to).unwrap_or("no boundary")
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "plaintext-credentials-flow",
        title: "Credentials sent in clear text",
        stride: Stride::Spoofing,
        condition: "a flow with `authenticated: true` and `encrypted: false`",
        rationale: "The credentials that authenticate the flow can be captured and replayed.",
        references: &["CWE-523", "CAPEC-102"],
        vulnerability: [7, 7, 6],
        check: |ix| {
            flows(ix)
                .filter(|f| f.authenticated && !f.encrypted)
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "flow {} authenticates over an unencrypted channel ({})",
                            f.id,
                            proto_name(f)
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "unencrypted-untrusted-flow",
        title: "Unencrypted flow to or from an untrusted zone",
        stride: Stride::Tampering,
        condition: "a flow with `encrypted: false` with an untrusted end, when unencrypted-sensitive-flow does not apply",
        rationale: "Traffic on networks the team does not control can be read and changed in transit.",
        references: &["CWE-319", "CAPEC-94"],
        vulnerability: [7, 5, 6],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    !f.encrypted && untrusted_end(ix, f) && !plaintext_sensitive_crossing(ix, f)
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "flow {} is unencrypted and has an untrusted end ({} → {})",
                            f.id, f.from, f.to
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "integrity-flow-unencrypted",
        title: "High-integrity data crosses a boundary without protection",
        stride: Stride::Tampering,
        condition: "a flow with `encrypted: false` whose ends are in different boundaries, neither untrusted, carries an asset with integrity high or critical and none with confidentiality high or critical",
        rationale: "Without an encrypted (and so integrity-protected) channel, data can be altered in transit between zones.",
        references: &["CWE-924", "CAPEC-94"],
        vulnerability: [5, 5, 5],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    !f.encrypted
                        && ix.crosses(f)
                        && !untrusted_end(ix, f)
                        && confidential_carried(ix, f).is_empty()
                        && !names(ix, &f.carries, |a| sensitive(a.integrity)).is_empty()
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "flow {} carries {} across boundaries without encryption",
                            f.id,
                            names(ix, &f.carries, |a| sensitive(a.integrity)).join(", ")
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "unauthenticated-sensitive-flow",
        title: "Unauthenticated flow into a process handling sensitive data",
        stride: Stride::Spoofing,
        condition: "a flow with `authenticated: false` and `admin: false` from a component to a `process` that handles a sensitive asset",
        rationale: "Any peer that can reach the process can pose as a legitimate caller.",
        references: &["CWE-306", "CAPEC-151"],
        vulnerability: [6, 6, 5],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    !f.authenticated
                        && !f.admin
                        && ix.components.contains_key(f.from.as_str())
                        && is_kind(ix, &f.to, ComponentType::Process)
                        && !handles_sensitive(ix, &f.to).is_empty()
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "flow {} reaches {}, which handles {}, without authentication",
                            f.id,
                            f.to,
                            handles_sensitive(ix, &f.to).join(", ")
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "unauthenticated-actor-access",
        title: "An actor reaches sensitive data without authenticating",
        stride: Stride::Spoofing,
        condition: "a flow with `authenticated: false` and `admin: false` from an actor to a component that handles a sensitive asset",
        rationale: "Nothing ties the request to a person, so anyone can act as any user.",
        references: &["CWE-287", "CAPEC-115"],
        vulnerability: [7, 7, 6],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    !f.authenticated
                        && !f.admin
                        && ix.actors.contains_key(f.from.as_str())
                        && !handles_sensitive(ix, &f.to).is_empty()
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "actor {} reaches {} ({}) without authenticating",
                            f.from,
                            f.to,
                            handles_sensitive(ix, &f.to).join(", ")
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "unauthenticated-datastore-access",
        title: "Unauthenticated access to a datastore",
        stride: Stride::Tampering,
        condition: "a flow with `authenticated: false` and `admin: false` from a component to a `datastore`",
        rationale: "Any process that can reach the datastore can read and change what it holds.",
        references: &["CWE-306", "CAPEC-115"],
        vulnerability: [6, 7, 5],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    !f.authenticated
                        && !f.admin
                        && ix.components.contains_key(f.from.as_str())
                        && is_kind(ix, &f.to, ComponentType::Datastore)
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "flow {} reaches datastore {} without authentication",
                            f.id, f.to
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "unauthenticated-queue-producer",
        title: "Unauthenticated producer on a queue",
        stride: Stride::Tampering,
        condition: "a flow with `authenticated: false` and `admin: false` from a component to a `queue`",
        rationale: "Anyone who reaches the queue can inject messages its consumers will trust.",
        references: &["CWE-345", "CAPEC-148"],
        vulnerability: [5, 6, 5],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    !f.authenticated
                        && !f.admin
                        && ix.components.contains_key(f.from.as_str())
                        && is_kind(ix, &f.to, ComponentType::Queue)
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "flow {} writes to queue {} without authentication",
                            f.id, f.to
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "datastore-reached-from-outside",
        title: "Datastore reached straight from outside its boundary",
        stride: Stride::InformationDisclosure,
        condition: "a flow from a component to a `datastore` that has a boundary, when the component is neither in the datastore's boundary (or nested in it) nor in the boundary directly around it",
        rationale: "A datastore should be reached only from its own zone or the tier in front of it; a path from anywhere else bypasses that tier's checks.",
        references: &["CWE-668", "CAPEC-560"],
        vulnerability: [5, 5, 5],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    let Some(ds) = ix
                        .components
                        .get(f.to.as_str())
                        .filter(|c| c.kind == ComponentType::Datastore)
                    else {
                        return false;
                    };
                    let front = ds
                        .boundary
                        .as_deref()
                        .and_then(|b| ix.boundaries.get(b))
                        .and_then(|b| b.parent.as_deref());
                    ds.boundary.is_some()
                        && ix.components.contains_key(f.from.as_str())
                        && !ix.within(ix.boundary_of(&f.from), ds.boundary.as_deref())
                        && (front.is_none() || ix.boundary_of(&f.from) != front)
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "{} in {} reaches datastore {} in {} directly",
                            f.from,
                            ix.boundary_of(&f.from).unwrap_or("no boundary"),
                            f.to,
                            ix.boundary_of(&f.to).unwrap_or("no boundary")
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "actor-reaches-datastore",
        title: "An actor reaches a datastore directly",
        stride: Stride::ElevationOfPrivilege,
        condition: "a flow from an actor to a `datastore` with `admin: false`",
        rationale: "People should reach data through a process that enforces authorisation, not the store itself.",
        references: &["CWE-284", "CAPEC-122"],
        vulnerability: [6, 5, 5],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    !f.admin
                        && ix.actors.contains_key(f.from.as_str())
                        && is_kind(ix, &f.to, ComponentType::Datastore)
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!("actor {} reaches datastore {} directly", f.from, f.to),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "admin-interface-across-boundary",
        title: "Administrative interface reachable across a boundary",
        stride: Stride::ElevationOfPrivilege,
        condition: "a flow with `admin: true` whose source is not in the target's boundary (or nested in it)",
        rationale: "Management interfaces grant full control; exposing them to another zone widens who can try.",
        references: &["CWE-284", "CAPEC-122"],
        vulnerability: [6, 5, 6],
        check: |ix| {
            flows(ix)
                .filter(|f| f.admin && !ix.within(ix.boundary_of(&f.from), ix.boundary_of(&f.to)))
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "admin flow {} reaches {} from {}",
                            f.id,
                            f.to,
                            ix.boundary_of(&f.from).unwrap_or("no boundary")
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "admin-flow-unauthenticated",
        title: "Administrative interface without authentication",
        stride: Stride::ElevationOfPrivilege,
        condition: "a flow with `admin: true` and `authenticated: false`",
        rationale: "Whoever reaches an unauthenticated management interface controls the component.",
        references: &["CWE-306", "CAPEC-115"],
        vulnerability: [7, 8, 6],
        check: |ix| {
            flows(ix)
                .filter(|f| f.admin && !f.authenticated)
                .map(|f| {
                    (
                        f.id.clone(),
                        format!("admin flow {} to {} is not authenticated", f.id, f.to),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "legacy-cleartext-protocol",
        title: "Legacy clear-text protocol",
        stride: Stride::InformationDisclosure,
        condition: "a flow whose `protocol` is telnet, ftp, tftp, rsh, rlogin or rexec",
        rationale: "These protocols have no encryption to turn on; replace them (SSH, SFTP).",
        references: &["CWE-319", "CAPEC-158"],
        vulnerability: [9, 7, 9],
        check: |ix| {
            flows(ix)
                .filter(|f| LEGACY_PROTOCOLS.contains(&f.protocol.to_ascii_lowercase().as_str()))
                .map(|f| (f.id.clone(), format!("flow {} uses {}", f.id, f.protocol)))
                .collect()
        },
    },
    Rule {
        id: "untrusted-reaches-inner-zone",
        title: "Untrusted source reaches an inner zone directly",
        stride: Stride::ElevationOfPrivilege,
        condition: "a flow from an untrusted element to a component whose boundary has a parent boundary",
        rationale: "Nested zones exist so that outer ones screen traffic; a direct path skips that layer.",
        references: &["CWE-653"],
        vulnerability: [5, 5, 5],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    ix.untrusted(&f.from)
                        && ix
                            .components
                            .get(f.to.as_str())
                            .and_then(|c| c.boundary.as_deref())
                            .and_then(|b| ix.boundaries.get(b))
                            .is_some_and(|b| b.parent.is_some())
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "{} (untrusted) reaches {} in nested boundary {}",
                            f.from,
                            f.to,
                            ix.boundary_of(&f.to).unwrap_or("")
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "sensitive-data-to-external",
        title: "Confidential data sent to an external system",
        stride: Stride::InformationDisclosure,
        condition: "a flow to an `external` component that carries an asset with confidentiality high or critical",
        rationale: "Data handed to a third party is protected only by that party's controls and contract.",
        references: &["CWE-201"],
        vulnerability: [3, 4, 4],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    is_kind(ix, &f.to, ComponentType::External)
                        && !confidential_carried(ix, f).is_empty()
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "flow {} sends {} to external {}",
                            f.id,
                            confidential_carried(ix, f).join(", "),
                            f.to
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "critical-external-dependency",
        title: "Critical availability depends on an external system",
        stride: Stride::DenialOfService,
        condition: "a flow from a component that handles an asset with availability critical to an `external` component",
        rationale: "An outage of the third party becomes an outage of a critical service.",
        references: &["CWE-1357"],
        vulnerability: [4, 4, 6],
        check: |ix| {
            flows(ix)
                .filter(|f| {
                    is_kind(ix, &f.to, ComponentType::External)
                        && Index::max_of(&ix.assets_of(&f.from), |a| a.availability)
                            == Rating::Critical
                })
                .map(|f| {
                    (
                        f.id.clone(),
                        format!(
                            "{} (critical availability) depends on external {}",
                            f.from, f.to
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "datastore-unencrypted-at-rest",
        title: "Critical data unencrypted at rest",
        stride: Stride::InformationDisclosure,
        condition: "a `datastore` with `encrypted_at_rest: false` that handles an asset with confidentiality critical",
        rationale: "A stolen disk, backup or snapshot discloses the data.",
        references: &["CWE-311", "CAPEC-37"],
        vulnerability: [4, 4, 5],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| c.kind == ComponentType::Datastore && !c.encrypted_at_rest)
                .filter_map(|c| {
                    let crit = names(ix, &c.handles, |a| a.confidentiality == Rating::Critical);
                    (!crit.is_empty()).then(|| {
                        (
                            c.id.clone(),
                            format!(
                                "datastore {} holds {} unencrypted at rest",
                                c.id,
                                crit.join(", ")
                            ),
                        )
                    })
                })
                .collect()
        },
    },
    Rule {
        id: "queue-unencrypted-sensitive",
        title: "Confidential messages unencrypted at rest in a queue",
        stride: Stride::InformationDisclosure,
        condition: "a `queue` with `encrypted_at_rest: false` that handles an asset with confidentiality high or critical",
        rationale: "Brokers persist messages to disk; their files and replicas disclose the data.",
        references: &["CWE-311"],
        vulnerability: [4, 4, 4],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| c.kind == ComponentType::Queue && !c.encrypted_at_rest)
                .filter_map(|c| {
                    let s = names(ix, &c.handles, |a| sensitive(a.confidentiality));
                    (!s.is_empty()).then(|| {
                        (
                            c.id.clone(),
                            format!("queue {} holds {} unencrypted at rest", c.id, s.join(", ")),
                        )
                    })
                })
                .collect()
        },
    },
    Rule {
        id: "internet-facing-datastore",
        title: "Datastore exposed to the internet",
        stride: Stride::InformationDisclosure,
        condition: "a `datastore` with `internet_facing: true`",
        rationale: "Datastores are found by mass scanning within hours of exposure.",
        references: &["CWE-668", "CAPEC-116"],
        vulnerability: [9, 6, 8],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| c.kind == ComponentType::Datastore && c.internet_facing)
                .map(|c| {
                    (
                        c.id.clone(),
                        format!("datastore {} is internet-facing", c.id),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "internet-facing-no-availability-mitigation",
        title: "Internet-facing component without an availability threat",
        stride: Stride::DenialOfService,
        condition: "a component with `internet_facing: true` that handles an asset with availability medium or higher, named by no hand-written `denial_of_service` threat",
        rationale: "Anything reachable from the internet will be flooded one day; the model should say how the component copes (a DoS threat with its mitigations).",
        references: &["CWE-400", "CAPEC-125"],
        vulnerability: [9, 6, 9],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| {
                    c.internet_facing
                        && Index::max_of(&ix.assets_of(&c.id), |a| a.availability) >= Rating::Medium
                })
                .filter(|c| {
                    !ix.model
                        .threats
                        .iter()
                        .any(|t| t.stride == Stride::DenialOfService && t.elements.contains(&c.id))
                })
                .map(|c| {
                    (
                        c.id.clone(),
                        format!(
                            "{} is internet-facing and no denial_of_service threat names it",
                            c.id
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "single-instance-critical-availability",
        title: "Single instance of a component with critical availability",
        stride: Stride::DenialOfService,
        condition: "a component (not `external`) with `instances` 1 (the default) that handles an asset with availability critical",
        rationale: "One host failure takes a critical service down.",
        references: &["CAPEC-607"],
        vulnerability: [5, 4, 7],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| {
                    c.kind != ComponentType::External
                        && c.instances < 2
                        && Index::max_of(&ix.assets_of(&c.id), |a| a.availability)
                            == Rating::Critical
                })
                .map(|c| {
                    (
                        c.id.clone(),
                        format!(
                            "{} runs as one instance and handles critical-availability data",
                            c.id
                        ),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "no-audit-trail-high-integrity",
        title: "No audit trail where integrity matters",
        stride: Stride::Repudiation,
        condition: "a `process` or `datastore` with `audit_log: false` that handles an asset with integrity high or critical",
        rationale: "Without a record of who changed what, a change cannot be attributed or disputed.",
        references: &["CWE-778", "CAPEC-93"],
        vulnerability: [4, 5, 5],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| {
                    matches!(c.kind, ComponentType::Process | ComponentType::Datastore)
                        && !c.audit_log
                })
                .filter_map(|c| {
                    let s = names(ix, &c.handles, |a| sensitive(a.integrity));
                    (!s.is_empty()).then(|| {
                        (
                            c.id.clone(),
                            format!("{} changes {} without an audit trail", c.id, s.join(", ")),
                        )
                    })
                })
                .collect()
        },
    },
    Rule {
        id: "internet-facing-privileged",
        title: "Internet-facing component runs privileged",
        stride: Stride::ElevationOfPrivilege,
        condition: "a component with `internet_facing: true` and `privileged: true`",
        rationale: "A flaw in an exposed component then yields administrative control of its host.",
        references: &["CWE-250", "CAPEC-69"],
        vulnerability: [5, 5, 6],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| c.internet_facing && c.privileged)
                .map(|c| {
                    (
                        c.id.clone(),
                        format!("{} is internet-facing and privileged", c.id),
                    )
                })
                .collect()
        },
    },
    Rule {
        id: "shared-hosts-across-boundaries",
        title: "Components of different zones share hosts",
        stride: Stride::ElevationOfPrivilege,
        condition: "two components with the same `selector` in different boundaries (reported on the first, in file order)",
        rationale: "Zones that share hosts are one zone: compromising one component reaches the other.",
        references: &["CWE-653"],
        vulnerability: [4, 5, 4],
        check: |ix| {
            let mut by_selector: HashMap<&str, Vec<&super::model::Component>> = HashMap::new();
            for c in &ix.model.components {
                if let Some(s) = c.selector.as_deref() {
                    by_selector.entry(s).or_default().push(c);
                }
            }
            let mut out = Vec::new();
            for c in &ix.model.components {
                let Some(group) = c.selector.as_deref().and_then(|s| by_selector.get(s)) else {
                    continue;
                };
                if group[0].id != c.id {
                    continue;
                }
                let others: Vec<&str> = group
                    .iter()
                    .filter(|o| o.boundary != c.boundary)
                    .map(|o| o.id.as_str())
                    .collect();
                if !others.is_empty() {
                    out.push((
                        c.id.clone(),
                        format!(
                            "{} shares hosts ({}) with {} in another boundary",
                            c.id,
                            c.selector.as_deref().unwrap_or(""),
                            others.join(", ")
                        ),
                    ));
                }
            }
            out
        },
    },
    Rule {
        id: "external-handles-critical-data",
        title: "Critical data held by an external system",
        stride: Stride::InformationDisclosure,
        condition: "an `external` component that handles an asset with confidentiality critical",
        rationale: "The team cannot verify how a third party protects data it holds.",
        references: &["CWE-200"],
        vulnerability: [3, 4, 4],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| c.kind == ComponentType::External)
                .filter_map(|c| {
                    let s = names(ix, &c.handles, |a| a.confidentiality == Rating::Critical);
                    (!s.is_empty()).then(|| {
                        (
                            c.id.clone(),
                            format!("external {} holds {}", c.id, s.join(", ")),
                        )
                    })
                })
                .collect()
        },
    },
    Rule {
        id: "datastore-shared-across-boundaries",
        title: "Datastore shared by components of different zones",
        stride: Stride::Tampering,
        condition: "a `datastore` reached by flows from components in two or more different boundaries",
        rationale: "A shared store bridges the zones: a compromise in one can change what the other reads.",
        references: &["CWE-653"],
        vulnerability: [4, 5, 4],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| c.kind == ComponentType::Datastore)
                .filter_map(|c| {
                    let mut zones: Vec<&str> = flows(ix)
                        .filter(|f| f.to == c.id && ix.components.contains_key(f.from.as_str()))
                        .map(|f| ix.boundary_of(&f.from).unwrap_or("(none)"))
                        .collect();
                    zones.sort_unstable();
                    zones.dedup();
                    (zones.len() >= 2).then(|| {
                        (
                            c.id.clone(),
                            format!(
                                "datastore {} is written or read from boundaries {}",
                                c.id,
                                zones.join(", ")
                            ),
                        )
                    })
                })
                .collect()
        },
    },
    Rule {
        id: "sensitive-component-without-hosts",
        title: "Sensitive component not on the fleet",
        stride: Stride::Tampering,
        condition: "a `process` or `datastore` with no `selector` that handles an asset with confidentiality or integrity critical",
        rationale: "Nothing Rampart measures can prove a mitigation on it: its evidence can only be manual.",
        references: &["CWE-1059"],
        vulnerability: [3, 3, 3],
        check: |ix| {
            ix.model
                .components
                .iter()
                .filter(|c| {
                    matches!(c.kind, ComponentType::Process | ComponentType::Datastore)
                        && c.selector.is_none()
                })
                .filter_map(|c| {
                    let s = names(ix, &c.handles, |a| {
                        a.confidentiality == Rating::Critical || a.integrity == Rating::Critical
                    });
                    (!s.is_empty()).then(|| {
                        (
                            c.id.clone(),
                            format!("{} handles {} and selects no hosts", c.id, s.join(", ")),
                        )
                    })
                })
                .collect()
        },
    },
];

fn proto_name(f: &Flow) -> String {
    match (f.protocol.is_empty(), f.port) {
        (true, None) => "no protocol given".into(),
        (true, Some(p)) => format!("port {p}"),
        (false, None) => f.protocol.clone(),
        (false, Some(p)) => format!("{} on port {p}", f.protocol),
    }
}

/// The rules as a Markdown document (docs/threat-rules.md).
pub fn markdown() -> String {
    let mut s = String::from(
        "# Threat-model rules\n\n\
         Generated by `rampart threats rules`; do not edit by hand.\n\n\
         Rampart's built-in rules each look for one precise weakness in a threat model. A finding\n\
         names the element (its risk id is `rule:RULE@ELEMENT`) and why it was found. A model\n\
         can exclude a finding with a justification (`exclusions:`), mitigate it, or accept it.\n\n\
         Words used below: *sensitive* means confidentiality or integrity rated high or critical;\n\
         *untrusted* means an actor, an `external` component, or an element in (or nested in) a\n\
         boundary of kind `internet`. The vulnerability factors (ease of discovery, ease of\n\
         exploit, awareness) are the OWASP likelihood defaults the rule gives its findings.\n\n\
         | id | STRIDE | references |\n|---|---|---|\n",
    );
    for r in RULES {
        s.push_str(&format!(
            "| [`{}`](#{}) | {} | {} |\n",
            r.id,
            r.id,
            r.stride,
            r.references.join(", ")
        ));
    }
    for r in RULES {
        s.push_str(&format!(
            "\n## {}\n\n{}\n\n- **STRIDE:** {}\n- **Condition:** {}\n- **Rationale:** {}\n- **References:** {}\n- **Vulnerability factors:** discovery {}, exploit {}, awareness {}\n",
            r.id,
            r.title,
            r.stride,
            r.condition,
            r.rationale,
            r.references.join(", "),
            r.vulnerability[0],
            r.vulnerability[1],
            r.vulnerability[2]
        ));
    }
    s
}
