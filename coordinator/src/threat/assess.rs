//! An assessment: the rules' findings and the hand-written threats become risks, each rated by
//! the OWASP methodology (defaults from its elements, overridden by the threat's own factors),
//! then given a residual rating from the evidence of its mitigations. A mitigation is proven only
//! when every check it cites passes on every host its risks' elements select (latest result,
//! fresh), every experiment it cites last finished `passed` (fresh), and its manual evidence has
//! not expired. A proven mitigation sets the four vulnerability factors to 1 (the weakness is
//! closed: hard to find, theoretical to exploit, unknown, detected), or the factors its `effect`
//! gives; each factor takes the lowest value any proven mitigation gives it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use chrono::{DateTime, NaiveDate};
use rampart_common::time::format_ms;
use rampart_proto::v1::{
    Assessment, ControlEvidence, ExperimentEvidence, Exposure, Factor, HostEvidence,
    ManualEvidence, MitigationEvidence, Rating as RatingMsg, Risk, UnmodeledHost,
};

use super::evidence::{Evidence, matching};
use super::model::{ComponentType, Element, Index, Mitigation, Model, Rating, Stride};
use super::risk::{FACTORS, Factors, Severity, rate};
use super::rules;

/// The vulnerability factors a proven mitigation without `effect` sets to 1.
const CLOSED: [&str; 4] = [
    "ease_of_discovery",
    "ease_of_exploit",
    "awareness",
    "intrusion_detection",
];

struct Candidate {
    id: String,
    title: String,
    stride: Stride,
    rule: Option<&'static rules::Rule>,
    elements: Vec<String>,
    why: String,
    given: Factors,
}

/// Assesses a checked model with the evidence; `now_ms` decides freshness and expiry.
pub fn assess(m: &Model, ev: &Evidence) -> Assessment {
    let started = Instant::now();
    let ix = Index::new(m);
    let excluded: HashSet<(&str, &str)> = m
        .exclusions
        .iter()
        .map(|x| (x.rule.as_str(), x.element.as_str()))
        .collect();
    let mut candidates = Vec::new();
    let mut excluded_findings = 0;
    for f in rules::find(&ix) {
        if excluded.contains(&(f.rule.id, f.element.as_str())) {
            excluded_findings += 1;
            continue;
        }
        candidates.push(Candidate {
            id: f.risk_id(),
            title: format!("{}: {}", f.rule.title, ix.name_of(&f.element)),
            stride: f.rule.stride,
            rule: Some(f.rule),
            elements: vec![f.element],
            why: f.why,
            given: Factors::default(),
        });
    }
    for t in &m.threats {
        candidates.push(Candidate {
            id: t.id.clone(),
            title: t.title.clone(),
            stride: t.stride,
            rule: None,
            elements: t.elements.clone(),
            why: t.description.clone(),
            given: t.factors,
        });
    }

    // Which elements each risk has, for the hosts its mitigations must be proven on.
    let elements_of: HashMap<&str, &[String]> = candidates
        .iter()
        .map(|c| (c.id.as_str(), c.elements.as_slice()))
        .collect();
    let mut selector_hosts: HashMap<&str, Vec<usize>> = HashMap::new();
    for c in &m.components {
        if let Some(s) = c.selector.as_deref() {
            selector_hosts
                .entry(s)
                .or_insert_with(|| matching(&ev.hosts, s));
        }
    }
    let today = DateTime::from_timestamp_millis(ev.now_ms)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let freshness_ms = i64::try_from(m.freshness.as_millis()).unwrap_or(i64::MAX);
    let proofs: HashMap<&str, MitigationEvidence> = m
        .mitigations
        .iter()
        .map(|mit| {
            let mut hosts = BTreeSet::new();
            for risk in &mit.mitigates {
                for e in elements_of.get(risk.as_str()).copied().unwrap_or_default() {
                    for s in ix.selectors_of(e) {
                        hosts.extend(selector_hosts.get(s).into_iter().flatten().copied());
                    }
                }
            }
            (mit.id.as_str(), prove(mit, &hosts, ev, freshness_ms, today))
        })
        .collect();
    let mut by_risk: HashMap<&str, Vec<&Mitigation>> = HashMap::new();
    for mit in &m.mitigations {
        for r in &mit.mitigates {
            by_risk.entry(r.as_str()).or_default().push(mit);
        }
    }
    let accepted: HashMap<&str, &super::model::Accepted> =
        m.accepted.iter().map(|a| (a.risk.as_str(), a)).collect();

    let mut risks: Vec<Risk> = candidates
        .iter()
        .map(|c| {
            let (full, sources) = defaults(&ix, c);
            let inherent = rate(&full);
            let mits = by_risk.get(c.id.as_str()).cloned().unwrap_or_default();
            let evidence: Vec<MitigationEvidence> = mits
                .iter()
                .filter_map(|mit| proofs.get(mit.id.as_str()).cloned())
                .collect();
            let mut residual_factors = full;
            let mut residual_sources = sources.clone();
            let mut reasons = vec![format!(
                "inherent {} (likelihood {:.2} {}, impact {:.2} {})",
                inherent.severity,
                inherent.likelihood,
                inherent.likelihood_level.as_str(),
                inherent.impact,
                inherent.impact_level.as_str()
            )];
            let mut proven = 0;
            for (mit, e) in mits.iter().zip(&evidence) {
                if e.proven {
                    proven += 1;
                    apply_effect(mit, &mut residual_factors, &mut residual_sources);
                    reasons.push(format!("{} proven: {}", mit.id, e.reasons.join("; ")));
                } else {
                    reasons.push(format!("{} unproven: {}", mit.id, e.reasons.join("; ")));
                }
            }
            let residual = rate(&residual_factors);
            let acceptance = accepted.get(c.id.as_str());
            let accepted_now = acceptance.filter(|a| a.expires >= today);
            let status = if proven > 0 {
                "mitigated"
            } else if accepted_now.is_some() {
                "accepted"
            } else if !mits.is_empty() {
                "unproven"
            } else {
                "unmitigated"
            };
            if mits.is_empty() {
                reasons.push("no mitigation names this risk".into());
            }
            if let Some(a) = acceptance {
                if a.expires >= today {
                    reasons.push(format!("accepted until {}: {}", a.expires, a.reason));
                } else {
                    reasons.push(format!(
                        "acceptance expired on {}: it counts again",
                        a.expires
                    ));
                }
            }
            if proven > 0 {
                reasons.push(format!(
                    "residual {} (likelihood {:.2} {}, impact {:.2} {})",
                    residual.severity,
                    residual.likelihood,
                    residual.likelihood_level.as_str(),
                    residual.impact,
                    residual.impact_level.as_str()
                ));
            }
            Risk {
                id: c.id.clone(),
                title: c.title.clone(),
                stride: c.stride.as_str().into(),
                rule: c.rule.map(|r| r.id.to_string()).unwrap_or_default(),
                elements: c.elements.clone(),
                why: c.why.clone(),
                references: c
                    .rule
                    .map(|r| r.references.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
                inherent: Some(rating_msg(&full, &sources)),
                residual: Some(rating_msg(&residual_factors, &residual_sources)),
                status: status.into(),
                reasons,
                mitigations: evidence,
                accepted_reason: accepted_now.map(|a| a.reason.clone()).unwrap_or_default(),
                accepted_until: accepted_now
                    .map(|a| a.expires.to_string())
                    .unwrap_or_default(),
            }
        })
        .collect();
    risks.sort_by(|a, b| {
        severity_of(b.residual.as_ref())
            .cmp(&severity_of(a.residual.as_ref()))
            .then(severity_of(b.inherent.as_ref()).cmp(&severity_of(a.inherent.as_ref())))
            .then(a.id.cmp(&b.id))
    });
    let (unmodeled_exposures, unmodeled_hosts) = reality(&ix, ev);
    Assessment {
        model: m.name.clone(),
        evaluated_at_unix_ms: ev.now_ms,
        freshness_ms: u64::try_from(m.freshness.as_millis()).unwrap_or(u64::MAX),
        risks,
        unmodeled_exposures,
        unmodeled_hosts,
        excluded_findings,
        eval_micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        ..Assessment::default()
    }
}

/// A rating's severity, for sorting and filtering.
pub fn severity_of(r: Option<&RatingMsg>) -> Severity {
    r.and_then(|r| Severity::parse(&r.severity))
        .unwrap_or(Severity::Note)
}

fn rating_msg(f: &Factors, sources: &[String; 16]) -> RatingMsg {
    let s = rate(f);
    RatingMsg {
        likelihood: s.likelihood,
        impact: s.impact,
        likelihood_level: s.likelihood_level.as_str().into(),
        impact_level: s.impact_level.as_str().into(),
        severity: s.severity.as_str().into(),
        factors: FACTORS
            .iter()
            .zip(f.0.iter().zip(sources))
            .map(|(name, (v, src))| Factor {
                name: (*name).into(),
                value: u32::from(v.unwrap_or(0)),
                source: if v.is_some() {
                    src.clone()
                } else {
                    "unset".into()
                },
            })
            .collect(),
    }
}

fn apply_effect(mit: &Mitigation, f: &mut Factors, sources: &mut [String; 16]) {
    let mut effect = mit.effect;
    if effect.is_empty() {
        for name in CLOSED {
            effect.set(name, 1);
        }
    }
    for (i, v) in effect.0.iter().enumerate() {
        if let Some(v) = v
            && f.0[i].is_none_or(|cur| *v < cur)
        {
            f.0[i] = Some(*v);
            sources[i] = format!("mitigation:{}", mit.id);
        }
    }
}

fn loss(r: Rating, scale: [u8; 4]) -> u8 {
    match r {
        Rating::None => 0,
        Rating::Low => scale[0],
        Rating::Medium => scale[1],
        Rating::High => scale[2],
        Rating::Critical => scale[3],
    }
}

/// The factors of a risk: defaults from its elements, then the threat's own values.
fn defaults(ix: &Index, c: &Candidate) -> (Factors, [String; 16]) {
    let exposed = c.elements.iter().any(|e| match ix.element(e) {
        Some(Element::Component(comp)) => comp.internet_facing || ix.untrusted(e),
        Some(Element::Actor(_)) => true,
        Some(Element::Flow(f)) => [&f.from, &f.to].into_iter().any(|end| {
            ix.untrusted(end)
                || ix
                    .components
                    .get(end.as_str())
                    .is_some_and(|c| c.internet_facing)
        }),
        None => false,
    });
    let audited = c.elements.iter().any(|e| match ix.element(e) {
        Some(Element::Component(comp)) => comp.audit_log,
        Some(Element::Flow(f)) => [&f.from, &f.to]
            .into_iter()
            .any(|end| ix.components.get(end.as_str()).is_some_and(|c| c.audit_log)),
        _ => false,
    });
    let mut assets: Vec<_> = c.elements.iter().flat_map(|e| ix.assets_of(e)).collect();
    if c.stride == Stride::ElevationOfPrivilege {
        // Control of a host reaches everything on it: the assets of every component that runs on
        // the same hosts (the same selector) as the element, or as a flow's target.
        for e in &c.elements {
            let selector = match ix.element(e) {
                Some(Element::Component(comp)) => comp.selector.as_deref(),
                Some(Element::Flow(f)) => ix
                    .components
                    .get(f.to.as_str())
                    .and_then(|t| t.selector.as_deref()),
                _ => None,
            };
            if let Some(sel) = selector {
                for other in ix.model.components.iter() {
                    if other.selector.as_deref() == Some(sel) {
                        assets.extend(ix.assets_of(&other.id));
                    }
                }
            }
        }
    }
    let conf = Index::max_of(&assets, |a| a.confidentiality);
    let integ = Index::max_of(&assets, |a| a.integrity);
    let avail = Index::max_of(&assets, |a| a.availability);
    let (uses_c, uses_i, uses_a) = match c.stride {
        Stride::Spoofing => (true, true, false),
        Stride::Tampering | Stride::Repudiation => (false, true, false),
        Stride::InformationDisclosure => (true, false, false),
        Stride::DenialOfService => (false, false, true),
        Stride::ElevationOfPrivilege => (true, true, true),
    };
    let agent: [u8; 4] = if exposed { [6, 4, 9, 9] } else { [3, 4, 4, 4] };
    let vuln = c.rule.map(|r| r.vulnerability).unwrap_or([5, 5, 5]);
    // Likelihood factors always have a value; an impact factor only when the threat's STRIDE
    // category can cause that loss (accountability: repudiation only).
    let values: [Option<u8>; 12] = [
        Some(agent[0]),
        Some(agent[1]),
        Some(agent[2]),
        Some(agent[3]),
        Some(vuln[0]),
        Some(vuln[1]),
        Some(vuln[2]),
        Some(if audited { 3 } else { 9 }),
        uses_c.then(|| loss(conf, [2, 6, 7, 9])),
        uses_i.then(|| loss(integ, [1, 3, 7, 9])),
        uses_a.then(|| loss(avail, [1, 5, 7, 9])),
        (c.stride == Stride::Repudiation).then_some(if audited { 7 } else { 9 }),
    ];
    let mut f = Factors::default();
    let mut sources: [String; 16] = Default::default();
    for (i, v) in values.iter().enumerate() {
        f.0[i] = *v;
        sources[i] = "default".into();
    }
    for (i, v) in c.given.0.iter().enumerate() {
        if let Some(v) = v {
            f.0[i] = Some(*v);
            sources[i] = "threat".into();
        }
    }
    (f, sources)
}

/// Resolves one mitigation's evidence over the hosts its risks' elements select.
fn prove(
    mit: &Mitigation,
    hosts: &BTreeSet<usize>,
    ev: &Evidence,
    freshness_ms: i64,
    today: NaiveDate,
) -> MitigationEvidence {
    let fresh = |at: i64| ev.now_ms.saturating_sub(at) <= freshness_ms;
    let mut reasons = Vec::new();
    let mut controls = Vec::new();
    for c in &mit.controls {
        let results = ev.results.get(c);
        let mut evidence = Vec::new();
        let mut bad = Vec::new();
        for &i in hosts {
            let h = &ev.hosts[i];
            let he = match results.and_then(|r| r.get(&h.agent_id)) {
                Some(r) => HostEvidence {
                    agent_id: h.agent_id.clone(),
                    hostname: h.hostname.clone(),
                    status: r.status.clone(),
                    sweep_id: r.sweep_id.clone(),
                    at_unix_ms: r.at,
                    fresh: fresh(r.at),
                },
                None => HostEvidence {
                    agent_id: h.agent_id.clone(),
                    hostname: h.hostname.clone(),
                    status: "missing".into(),
                    ..HostEvidence::default()
                },
            };
            if he.status == "missing" {
                bad.push(format!("no result on {}", he.hostname));
            } else if he.status != "pass" {
                bad.push(format!(
                    "{} on {} (sweep {}, {})",
                    he.status,
                    he.hostname,
                    he.sweep_id,
                    format_ms(he.at_unix_ms)
                ));
            } else if !he.fresh {
                bad.push(format!(
                    "stale on {} (last passed {})",
                    he.hostname,
                    format_ms(he.at_unix_ms)
                ));
            }
            evidence.push(he);
        }
        let proven = !hosts.is_empty() && bad.is_empty();
        let name = format!("{}/{}", c.pack, c.rule);
        if hosts.is_empty() {
            reasons.push(format!("control {name}: its elements select no hosts"));
        } else if proven {
            reasons.push(format!("control {name} passes on {} host(s)", hosts.len()));
        } else {
            reasons.push(format!("control {name}: {}", bad.join(", ")));
        }
        controls.push(ControlEvidence {
            pack: c.pack.clone(),
            rule: c.rule.clone(),
            proven,
            hosts: evidence,
        });
    }
    let mut experiments = Vec::new();
    for name in &mit.experiments {
        let e = match ev.runs.get(name) {
            Some(r) => {
                let e = ExperimentEvidence {
                    experiment: name.clone(),
                    proven: r.verdict == "passed" && fresh(r.at),
                    run_id: r.id.clone(),
                    verdict: r.verdict.clone(),
                    at_unix_ms: r.at,
                    fresh: fresh(r.at),
                };
                reasons.push(if e.proven {
                    format!(
                        "experiment {name} passed (run {}, {})",
                        r.id,
                        format_ms(r.at)
                    )
                } else if r.verdict != "passed" {
                    format!(
                        "experiment {name} last {} (run {}, {})",
                        r.verdict,
                        r.id,
                        format_ms(r.at)
                    )
                } else {
                    format!("experiment {name} last passed {} (stale)", format_ms(r.at))
                });
                e
            }
            None => {
                reasons.push(format!("experiment {name} never finished a run"));
                ExperimentEvidence {
                    experiment: name.clone(),
                    ..ExperimentEvidence::default()
                }
            }
        };
        experiments.push(e);
    }
    let manual = mit.manual.as_ref().map(|man| {
        let proven = man.expires >= today;
        reasons.push(if proven {
            format!(
                "manual evidence {:?} valid until {}",
                man.evidence, man.expires
            )
        } else {
            format!(
                "manual evidence {:?} expired on {}",
                man.evidence, man.expires
            )
        });
        ManualEvidence {
            evidence: man.evidence.clone(),
            expires: man.expires.to_string(),
            proven,
        }
    });
    let proven = controls.iter().all(|c| c.proven)
        && experiments.iter().all(|e| e.proven)
        && manual.as_ref().is_none_or(|m| m.proven);
    MitigationEvidence {
        id: mit.id.clone(),
        title: mit.title.clone(),
        proven,
        reasons,
        controls,
        experiments,
        manual,
    }
}

fn loopback(address: &str) -> bool {
    address.starts_with("127.") || address == "::1"
}

/// Ports no flow explains on the hosts components select, and hosts no component selects.
fn reality(ix: &Index, ev: &Evidence) -> (Vec<Exposure>, Vec<UnmodeledHost>) {
    let mut on_host: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for c in &ix.model.components {
        if c.kind == ComponentType::External {
            continue;
        }
        if let Some(s) = c.selector.as_deref() {
            for i in matching(&ev.hosts, s) {
                on_host.entry(i).or_default().push(&c.id);
            }
        }
    }
    let mut exposures = Vec::new();
    for (&i, comps) in &on_host {
        let h = &ev.hosts[i];
        let explained: HashSet<u32> = ix
            .model
            .flows
            .iter()
            .filter(|f| comps.contains(&f.to.as_str()))
            .filter_map(|f| f.port.map(u32::from))
            .collect();
        let mut seen = HashSet::new();
        for l in ev.listeners.get(&h.agent_id).into_iter().flatten() {
            if loopback(&l.address) || explained.contains(&l.port) {
                continue;
            }
            if !seen.insert((l.protocol.trim_end_matches('6').to_string(), l.port)) {
                continue;
            }
            exposures.push(Exposure {
                agent_id: h.agent_id.clone(),
                hostname: h.hostname.clone(),
                components: comps.iter().map(|s| s.to_string()).collect(),
                protocol: l.protocol.clone(),
                address: l.address.clone(),
                port: l.port,
                process: l.process.clone(),
            });
        }
    }
    let hosts = ev
        .hosts
        .iter()
        .enumerate()
        .filter(|(i, _)| !on_host.contains_key(i))
        .map(|(_, h)| UnmodeledHost {
            agent_id: h.agent_id.clone(),
            hostname: h.hostname.clone(),
            labels: h.labels.clone(),
        })
        .collect();
    (exposures, hosts)
}
