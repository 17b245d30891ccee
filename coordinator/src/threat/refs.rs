//! The checks that need the whole model: every reference resolves to an entry of the right kind,
//! a mitigated finding is one the rules make, boundaries form a tree.

use std::collections::{HashMap, HashSet};

use marked_yaml::Node;

use super::model::{Index, Model};
use super::rules;
use crate::yaml::Reader;

/// What a reference must point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Asset,
    Boundary,
    /// A component or an actor (a flow's end).
    Endpoint,
    /// A component, actor or flow.
    Element,
    /// A threat id, or `rule:RULE@ELEMENT` that the rule finds.
    Risk,
    Rule,
}

#[derive(Default)]
pub(super) struct Refs {
    list: Vec<(marked_yaml::Span, Target, String)>,
}

impl Refs {
    pub(super) fn add(&mut self, span: &marked_yaml::Span, target: Target, value: &str) {
        self.list.push((*span, target, value.to_string()));
    }
}

pub(super) fn check_refs(r: &mut Reader, m: &Model, refs: &Refs) {
    let ix = Index::new(m);
    let threats: HashSet<&str> = m.threats.iter().map(|t| t.id.as_str()).collect();
    // Findings are computed only when every other reference resolves (rules read the model).
    let mut findings: Option<HashSet<String>> = None;
    for (span, target, value) in &refs.list {
        let ok = match target {
            Target::Asset => ix.assets.contains_key(value.as_str()),
            Target::Boundary => ix.boundaries.contains_key(value.as_str()),
            Target::Endpoint => {
                ix.components.contains_key(value.as_str()) || ix.actors.contains_key(value.as_str())
            }
            Target::Element => ix.element(value).is_some(),
            Target::Rule => rules::rule(value).is_some(),
            Target::Risk => continue,
        };
        if !ok {
            let what = match target {
                Target::Asset => "asset",
                Target::Boundary => "boundary",
                Target::Endpoint => "component or actor",
                Target::Element => "component, actor or flow",
                Target::Rule => "rule (see `rampart threats rules`)",
                Target::Risk => unreachable!(),
            };
            r.error_at(span, format!("unknown {what} {value:?}"));
        }
    }
    let clean = r.errors.is_empty();
    for (span, target, value) in &refs.list {
        if *target != Target::Risk {
            continue;
        }
        if let Some(rest) = value.strip_prefix("rule:") {
            let Some((rule, element)) = rest.split_once('@') else {
                r.error_at(
                    span,
                    format!("{value:?}: a rule's finding is written rule:RULE@ELEMENT"),
                );
                continue;
            };
            if rules::rule(rule).is_none() {
                r.error_at(
                    span,
                    format!("unknown rule {rule:?} (see `rampart threats rules`)"),
                );
                continue;
            }
            if ix.element(element).is_none() {
                r.error_at(
                    span,
                    format!("unknown component, actor or flow {element:?}"),
                );
                continue;
            }
            if !clean {
                continue;
            }
            let found = findings
                .get_or_insert_with(|| rules::find(&ix).iter().map(|f| f.risk_id()).collect());
            if !found.contains(value) {
                r.error_at(span, format!("rule {rule} finds nothing on {element}"));
            }
        } else if !threats.contains(value.as_str()) {
            r.error_at(
                span,
                format!("unknown threat {value:?} (a threat id, or rule:RULE@ELEMENT)"),
            );
        }
    }
}

/// Boundaries form a tree: a parent chain that comes back to where it started is an error.
pub(super) fn check_boundary_cycles(r: &mut Reader, m: &Model, root: &Node) {
    let parents: HashMap<&str, &str> = m
        .boundaries
        .iter()
        .filter_map(|b| Some((b.id.as_str(), b.parent.as_deref()?)))
        .collect();
    let spans: HashMap<String, marked_yaml::Span> = root
        .as_mapping()
        .and_then(|m| m.get_sequence("boundaries"))
        .map(|seq| {
            seq.iter()
                .filter_map(|n| {
                    let s = n.as_mapping()?.get_scalar("parent")?;
                    let id = n.as_mapping()?.get_scalar("id")?;
                    Some((id.as_str().to_string(), *s.span()))
                })
                .collect()
        })
        .unwrap_or_default();
    for b in &m.boundaries {
        let mut seen = vec![b.id.as_str()];
        let mut cur = parents.get(b.id.as_str()).copied();
        while let Some(p) = cur {
            if p == b.id {
                if let Some(span) = spans.get(&b.id) {
                    seen.push(p);
                    r.error_at(span, format!("boundary cycle: {}", seen.join(" → ")));
                }
                break;
            }
            if seen.contains(&p) {
                break;
            }
            seen.push(p);
            cur = parents.get(p).copied();
        }
    }
}
