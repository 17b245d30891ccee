//! Differences between two assessments: risks that appeared, went away, or changed residual
//! severity or status. The gate for CI: a risk that is new — or was not already an open high or
//! critical — and is now open (unmitigated or unproven) with a residual severity of high or
//! critical.

use std::collections::HashMap;

use rampart_proto::v1::{Assessment, Risk};

use super::assess::severity_of;
use super::risk::Severity;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added,
    Removed,
    /// Residual severity or status changed: (before, after).
    Changed {
        from: String,
        to: String,
    },
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub title: String,
    pub change: Change,
    /// Residual severity and status now (before, for a removed risk).
    pub severity: Severity,
    pub status: String,
    /// It trips the gate.
    pub gate: bool,
}

fn open_high(r: &Risk) -> bool {
    matches!(r.status.as_str(), "unmitigated" | "unproven")
        && severity_of(r.residual.as_ref()) >= Severity::High
}

fn state(r: &Risk) -> String {
    format!("{} {}", severity_of(r.residual.as_ref()), r.status)
}

/// Every difference, in the new assessment's order, removed risks last.
pub fn diff(old: &Assessment, new: &Assessment) -> Vec<Entry> {
    let before: HashMap<&str, &Risk> = old.risks.iter().map(|r| (r.id.as_str(), r)).collect();
    let after: HashMap<&str, &Risk> = new.risks.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut out = Vec::new();
    for r in &new.risks {
        let change = match before.get(r.id.as_str()) {
            None => Change::Added,
            Some(b) if state(b) != state(r) => Change::Changed {
                from: state(b),
                to: state(r),
            },
            Some(_) => continue,
        };
        let was_open_high = before.get(r.id.as_str()).is_some_and(|b| open_high(b));
        out.push(Entry {
            id: r.id.clone(),
            title: r.title.clone(),
            change,
            severity: severity_of(r.residual.as_ref()),
            status: r.status.clone(),
            gate: open_high(r) && !was_open_high,
        });
    }
    for r in &old.risks {
        if !after.contains_key(r.id.as_str()) {
            out.push(Entry {
                id: r.id.clone(),
                title: r.title.clone(),
                change: Change::Removed,
                severity: severity_of(r.residual.as_ref()),
                status: r.status.clone(),
                gate: false,
            });
        }
    }
    out
}
