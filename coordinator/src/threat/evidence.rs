//! What the fleet shows now, gathered from the store for one assessment: the hosts, the latest
//! result of every check a mitigation cites on each host, the latest finished run of every
//! experiment a mitigation cites, and the listening sockets of the hosts components select.

use std::collections::{BTreeSet, HashMap};

use rampart_common::labels::{Labels, Selector};

use super::model::{Control, Model};
use crate::store::{AgentState, Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub agent_id: String,
    pub hostname: String,
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRef {
    pub status: String,
    pub sweep_id: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    pub id: String,
    pub verdict: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub protocol: String,
    pub address: String,
    pub port: u32,
    pub process: String,
}

/// Evidence for one assessment.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub now_ms: i64,
    /// Enrolled hosts (revoked ones excluded).
    pub hosts: Vec<Host>,
    /// Per control, per agent id: the latest result.
    pub results: HashMap<Control, HashMap<String, ResultRef>>,
    /// Per experiment name: the latest finished run.
    pub runs: HashMap<String, RunRef>,
    /// Per agent id: listening sockets from its latest facts.
    pub listeners: HashMap<String, Vec<Listener>>,
}

/// The hosts each selector matches (indexes into `hosts`).
pub fn matching(hosts: &[Host], selector: &str) -> Vec<usize> {
    let Ok(sel) = Selector::parse(selector) else {
        return Vec::new();
    };
    hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| sel.matches(&h.labels))
        .map(|(i, _)| i)
        .collect()
}

/// Reads what the model's mitigations and components need.
pub async fn gather(store: &Store, model: &Model, now_ms: i64) -> Result<Evidence> {
    let hosts: Vec<Host> = store
        .agents()
        .await?
        .into_iter()
        .filter(|a| a.state != AgentState::Revoked)
        .map(|a| Host {
            agent_id: a.id,
            hostname: a.hostname,
            labels: a.labels,
        })
        .collect();

    let mut by_pack: HashMap<&str, BTreeSet<String>> = HashMap::new();
    for m in &model.mitigations {
        for c in &m.controls {
            by_pack.entry(&c.pack).or_default().insert(c.rule.clone());
        }
    }
    let mut results: HashMap<Control, HashMap<String, ResultRef>> = HashMap::new();
    for (pack, rules) in by_pack {
        let rules: Vec<String> = rules.into_iter().collect();
        for r in store.latest_results(pack, &rules).await? {
            results
                .entry(Control {
                    pack: pack.to_string(),
                    rule: r.rule,
                })
                .or_default()
                .insert(
                    r.agent_id,
                    ResultRef {
                        status: r.status,
                        sweep_id: r.sweep_id,
                        at: r.at,
                    },
                );
        }
    }

    let names: BTreeSet<String> = model
        .mitigations
        .iter()
        .flat_map(|m| m.experiments.iter().cloned())
        .collect();
    let names: Vec<String> = names.into_iter().collect();
    let runs = store
        .latest_experiment_runs(&names)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.name,
                RunRef {
                    id: r.id,
                    verdict: r.verdict,
                    at: r.finished_at,
                },
            )
        })
        .collect();

    // Listening sockets of the hosts some component selects.
    let mut selected = BTreeSet::new();
    for c in &model.components {
        if let Some(s) = &c.selector {
            selected.extend(matching(&hosts, s));
        }
    }
    let mut listeners = HashMap::new();
    for i in selected {
        let h = &hosts[i];
        if let Some((_, json)) = store.latest_facts(&h.agent_id).await? {
            listeners.insert(h.agent_id.clone(), sockets(&json));
        }
    }
    Ok(Evidence {
        now_ms,
        hosts,
        results,
        runs,
        listeners,
    })
}

/// The listening sockets in a stored fact report (its JSON form).
pub fn sockets(json: &str) -> Vec<Listener> {
    #[derive(serde::Deserialize)]
    struct Report {
        #[serde(default)]
        sockets: Vec<rampart_proto::v1::Socket>,
    }
    match serde_json::from_str::<Report>(json) {
        Ok(r) => r
            .sockets
            .into_iter()
            .map(|s| Listener {
                protocol: s.protocol,
                address: s.address,
                port: s.port,
                process: s.process,
            })
            .collect(),
        Err(err) => {
            tracing::warn!(%err, "stored facts are unreadable; their sockets are skipped");
            Vec::new()
        }
    }
}
