//! Rules on flows: encryption, authentication, who reaches what across which boundary.

use super::*;

pub(super) static FLOW_RULES: &[Rule] = &[
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
];
