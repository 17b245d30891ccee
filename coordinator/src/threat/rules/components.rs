//! Rules on components: data at rest, exposure, availability, audit trails, shared hosts.

use std::collections::HashMap;

use super::*;

pub(super) static COMPONENT_RULES: &[Rule] = &[
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
            let mut by_selector: HashMap<&str, Vec<&crate::threat::model::Component>> =
                HashMap::new();
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
