//! Reading an experiment file.

use std::time::Duration;

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;
use rampart_proto::v1::{CommandProbe, HttpProbe, TcpProbe};

use super::{
    Check, DEFAULT_INTERVAL, DEFAULT_MAX_DURATION, Experiment, LONGEST_MAX_DURATION, MIN_INTERVAL,
    Probe, Source, SpecErrors, Step,
};
use crate::yaml::{Reader, load};

const EXPERIMENT_FIELDS: &[&str] = &[
    "kind",
    "name",
    "description",
    "scope",
    "hypothesis",
    "method",
    "abort",
];
const PROBE_FIELDS: &[&str] = &[
    "name",
    "http",
    "tcp",
    "metric",
    "prometheus",
    "command",
    "from",
    "interval",
    "tolerance",
];
const PROBE_KINDS: &[&str] = &["http", "tcp", "metric", "prometheus", "command"];

/// Reads and checks an experiment file.
pub fn experiment(file: &str, text: &str) -> Result<Experiment, SpecErrors> {
    let (root, mut r) = load(file, text, super::LIMITS)?;
    let e = read_experiment(&mut r, &root);
    r.finish(e)
}

fn read_experiment(r: &mut Reader, root: &Node) -> Experiment {
    let mut e = Experiment {
        name: String::new(),
        description: String::new(),
        selector: String::new(),
        max_targets: None,
        max_percent: None,
        hypothesis: Vec::new(),
        method: Vec::new(),
        max_duration: DEFAULT_MAX_DURATION,
    };
    let Some(map) = r.mapping(
        root,
        "an experiment",
        EXPERIMENT_FIELDS,
        &["name", "scope", "method"],
    ) else {
        return e;
    };
    r.kind(map, "Experiment");
    e.name = r.name(map);
    e.description = r.string(map, "description").unwrap_or_default();
    if let Some(scope) = map.get_node("scope")
        && let Some(s) = r.mapping(
            scope,
            "`scope`",
            &["selector", "max_targets", "max_percent"],
            &[],
        )
    {
        e.selector = r.selector(s, "selector").unwrap_or_default();
        e.max_targets = r.number(s, "max_targets", "a whole number");
        e.max_percent = r.number(s, "max_percent", "a whole number");
        if e.max_targets.is_some() && e.max_percent.is_some() {
            r.error_at(
                s.span(),
                "`scope` takes `max_targets` or `max_percent`, not both",
            );
        }
        if e.max_targets == Some(0)
            && let Some(n) = s.get_node("max_targets")
        {
            r.error_at(n.span(), "`max_targets` must be at least 1");
        }
        if e.max_percent.is_some_and(|p| !(1..=100).contains(&p))
            && let Some(n) = s.get_node("max_percent")
        {
            r.error_at(n.span(), "`max_percent` must be 1 to 100");
        }
    }
    if let Some(abort) = map.get_node("abort")
        && let Some(a) = r.mapping(abort, "`abort`", &["max_duration"], &[])
        && let Some(d) = r.duration(a, "max_duration")
    {
        if d.is_zero() || d > LONGEST_MAX_DURATION {
            r.error_at(
                a.span(),
                "`max_duration` must be more than 0 and at most 24h",
            );
        }
        e.max_duration = d;
    }
    let mut names = std::collections::BTreeSet::new();
    for node in r.items(map, "hypothesis") {
        if let Some(p) = read_probe(r, node) {
            if !names.insert(p.name.clone()) {
                r.error_at(node.span(), format!("two probes are named {:?}", p.name));
            }
            e.hypothesis.push(p);
        }
    }
    let steps = r.items(map, "method");
    if steps.is_empty() && map.get_node("method").is_some() {
        r.error_at(map.span(), "`method` needs at least one step");
    }
    for node in steps {
        if let Some(step) = read_step(r, node) {
            if step.at + step.duration > e.max_duration {
                r.error_at(
                    node.span(),
                    format!(
                        "this step ends at {}, after `abort.max_duration` ({})",
                        humantime::format_duration(step.at + step.duration),
                        humantime::format_duration(e.max_duration)
                    ),
                );
            }
            e.method.push(step);
        }
    }
    e
}

fn bounds(r: &mut Reader, m: &MarkedMappingNode, what: &str) -> (Option<f64>, Option<f64>) {
    let below = r.number::<f64>(m, "below", "a number");
    let above = r.number::<f64>(m, "above", "a number");
    if below.is_none() && above.is_none() {
        r.error_at(m.span(), format!("{what} needs `below` or `above`"));
    }
    if below.is_some_and(|v| !v.is_finite()) || above.is_some_and(|v| !v.is_finite()) {
        r.error_at(m.span(), "bounds must be finite numbers");
    }
    (below, above)
}

fn read_probe(r: &mut Reader, node: &Node) -> Option<Probe> {
    let map = r.mapping(node, "a probe", PROBE_FIELDS, &["name"])?;
    let name = r.string(map, "name").unwrap_or_default();
    let kinds: Vec<&str> = PROBE_KINDS
        .iter()
        .copied()
        .filter(|k| map.get_node(k).is_some())
        .collect();
    if kinds.len() != 1 {
        r.error_at(
            map.span(),
            format!(
                "probe {name:?} needs exactly one of: {}",
                PROBE_KINDS.join(", ")
            ),
        );
        return None;
    }
    let body = map.get_node(kinds[0])?;
    let check = match kinds[0] {
        "http" => {
            let m = r.mapping(
                body,
                "`http`",
                &["url", "status", "max_latency", "timeout"],
                &["url"],
            )?;
            let url = r.string(m, "url").unwrap_or_default();
            if let Err(e) = rampart_agent::probes::http::parse(&url)
                && let Some(u) = m.get_node("url")
            {
                r.error_at(u.span(), e);
            }
            Check::Http(HttpProbe {
                url,
                status: r.number(m, "status", "an HTTP status code").unwrap_or(0),
                max_latency_ms: r.millis(m, "max_latency"),
                timeout_ms: r.millis(m, "timeout"),
            })
        }
        "tcp" => {
            let m = r.mapping(body, "`tcp`", &["address", "timeout"], &["address"])?;
            let address = r.string(m, "address").unwrap_or_default();
            if !address.contains(':')
                && let Some(a) = m.get_node("address")
            {
                r.error_at(a.span(), "`address` must be host:port");
            }
            Check::Tcp(TcpProbe {
                address,
                timeout_ms: r.millis(m, "timeout"),
            })
        }
        "metric" => {
            let m = r.mapping(body, "`metric`", &["name", "below", "above"], &["name"])?;
            let metric = r.string(m, "name").unwrap_or_default();
            let names = rampart_agent::probes::metrics::NAMES;
            if !names.contains(&metric.as_str())
                && let Some(n) = m.get_node("name")
            {
                r.error_at(
                    n.span(),
                    format!("unknown metric {metric:?}; metrics: {}", names.join(", ")),
                );
            }
            let (below, above) = bounds(r, m, "`metric`");
            Check::Metric {
                name: metric,
                below,
                above,
            }
        }
        "prometheus" => {
            let m = r.mapping(
                body,
                "`prometheus`",
                &["url", "query", "below", "above"],
                &["url", "query"],
            )?;
            let url = r.string(m, "url").unwrap_or_default();
            if let Err(e) = rampart_agent::probes::http::parse(&url)
                && let Some(u) = m.get_node("url")
            {
                r.error_at(u.span(), e);
            }
            let query = r.string(m, "query").unwrap_or_default();
            let (below, above) = bounds(r, m, "`prometheus`");
            Check::Prometheus {
                url,
                query,
                below,
                above,
            }
        }
        _ => {
            let m = r.mapping(
                body,
                "`command`",
                &["argv", "exit_code", "timeout"],
                &["argv"],
            )?;
            let argv: Vec<String> = match m.get_node("argv").and_then(Node::as_sequence) {
                Some(seq) => seq
                    .iter()
                    .filter_map(|n| n.as_scalar().map(|s| s.as_str().to_string()))
                    .collect(),
                None => Vec::new(),
            };
            if argv.first().is_none_or(|p| !p.starts_with('/')) {
                r.error_at(m.span(), "`argv` must be a list whose first item is an absolute path (no shell, no PATH search)");
            }
            Check::Command(CommandProbe {
                argv,
                exit_code: r.number(m, "exit_code", "a whole number").unwrap_or(0),
                timeout_ms: r.millis(m, "timeout"),
            })
        }
    };
    let from = match map.get_node("from") {
        None => match check {
            Check::Metric { .. } | Check::Command(_) => Source::Targets,
            _ => Source::Coordinator,
        },
        Some(n) => match (n.as_scalar(), n.as_mapping()) {
            (Some(s), _) if s.as_str() == "coordinator" => Source::Coordinator,
            (Some(s), _) if s.as_str() == "targets" => Source::Targets,
            (_, Some(_)) => {
                let m = r.mapping(n, "`from`", &["selector"], &["selector"])?;
                Source::Agents(r.selector(m, "selector").unwrap_or_default())
            }
            _ => {
                r.error_at(
                    n.span(),
                    "`from` must be coordinator, targets or {selector: …}",
                );
                Source::Coordinator
            }
        },
    };
    match (&check, &from) {
        (Check::Command(_), Source::Coordinator) => r.error_at(
            map.span(),
            "a command probe runs on agents only (their config allow-lists the program); use `from: {selector: …}` or leave `from` out for the targets",
        ),
        (Check::Metric { .. }, f) if *f != Source::Targets => {
            r.error_at(map.span(), "a metric probe reads the targets' metrics; leave `from` out")
        }
        (Check::Prometheus { .. }, f) if *f != Source::Coordinator => {
            r.error_at(map.span(), "a prometheus probe runs from the coordinator; leave `from` out")
        }
        _ => {}
    }
    let interval = r.duration(map, "interval").unwrap_or(DEFAULT_INTERVAL);
    if interval < MIN_INTERVAL {
        r.error_at(
            map.span(),
            format!(
                "`interval` must be at least {}",
                humantime::format_duration(MIN_INTERVAL)
            ),
        );
    }
    let tolerance = r.number(map, "tolerance", "a whole number").unwrap_or(1);
    if tolerance == 0 {
        r.error_at(map.span(), "`tolerance` must be at least 1 (the number of consecutive misses that break the hypothesis)");
    }
    Some(Probe {
        name,
        check,
        from,
        interval,
        tolerance,
    })
}

fn read_step(r: &mut Reader, node: &Node) -> Option<Step> {
    let map = r.mapping(
        node,
        "a method step",
        &["fault", "at", "duration"],
        &["fault", "duration"],
    )?;
    let at = r.duration(map, "at").unwrap_or_default();
    let duration = r.duration(map, "duration");
    if duration.is_some_and(|d| d.is_zero()) {
        r.error_at(map.span(), "a step's `duration` must be more than 0");
    }
    let fault = map.get_node("fault")?;
    let fields = crate::cli::chaos::fault_fields();
    let allowed: Vec<&str> = fields.iter().map(String::as_str).collect();
    let f = r.mapping(fault, "`fault`", &allowed, &["kind"])?;
    let mut flags = Vec::new();
    let mut written = Vec::new();
    for (key, value) in f.iter() {
        if key.as_str() == "kind" {
            continue;
        }
        let values: Vec<String> = match value {
            Node::Scalar(s) => vec![s.as_str().to_string()],
            Node::Sequence(seq) => seq
                .iter()
                .filter_map(|n| n.as_scalar().map(|s| s.as_str().to_string()))
                .collect(),
            Node::Mapping(_) => {
                r.error_at(
                    value.span(),
                    format!("`{}` must be a value or a list", key.as_str()),
                );
                continue;
            }
        };
        written.push(format!("{}={}", key.as_str(), values.join(",")));
        // A flag without a value (`force: true`) is given by its presence.
        if values.len() == 1
            && (values[0] == "true" || values[0] == "false")
            && key.as_str() == "force"
        {
            if values[0] == "true" {
                flags.push((key.as_str().to_string(), Vec::new()));
            }
            continue;
        }
        flags.push((key.as_str().to_string(), values));
    }
    let kind = f
        .get_scalar("kind")
        .map(|k| k.as_str().to_string())
        .unwrap_or_default();
    flags.insert(0, ("kind".to_string(), vec![kind]));
    match crate::cli::chaos::fault_from_flags(&flags, duration.unwrap_or(Duration::from_secs(1))) {
        Ok((spec, kind)) => Some(Step {
            spec,
            kind,
            at,
            duration: duration?,
            fields: written.join(" "),
        }),
        Err(e) => {
            r.error_at(f.span(), format!("fault: {e}"));
            None
        }
    }
}
