//! Experiment and game-day files (YAML): parsed with located nodes (marked-yaml, on the
//! maintained yaml-rust2), then read field by field so that every error is reported at once as
//! `file:line:col: message`. Nothing runs from a file with an error.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};
use rampart_common::labels::Selector;
use rampart_proto::v1::{CommandProbe, FaultSpec, HttpProbe, TcpProbe};

/// Used when an experiment gives no `abort.max_duration`.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(10 * 60);
/// Longest an experiment may run: faults are meant to be short.
pub const LONGEST_MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// How often a probe runs unless it says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Probes may not run more often than this (each is a request to a service, or a command to
/// every agent it runs from).
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Files are small; a huge one is a mistake (or an attack on the parser).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;
/// Steps and probes per experiment, experiments per game day.
pub const MAX_ITEMS: usize = 100;

/// One located problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// Where a probe runs from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Coordinator,
    /// The online agents a selector matches.
    Agents(String),
    /// Each of the run's targets.
    Targets,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Http(HttpProbe),
    Tcp(TcpProbe),
    /// A host metric of each target, streamed by its agent while the run is active.
    Metric {
        name: String,
        below: Option<f64>,
        above: Option<f64>,
    },
    /// A PromQL instant query; its single value must stay within the bounds.
    Prometheus {
        url: String,
        query: String,
        below: Option<f64>,
        above: Option<f64>,
    },
    Command(CommandProbe),
}

impl Check {
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Http(_) => "http",
            Check::Tcp(_) => "tcp",
            Check::Metric { .. } => "metric",
            Check::Prometheus { .. } => "prometheus",
            Check::Command(_) => "command",
        }
    }
}

/// One part of the steady-state hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub name: String,
    pub check: Check,
    pub from: Source,
    pub interval: Duration,
    /// Consecutive misses that make the hypothesis violated (1: the first miss).
    pub tolerance: u32,
}

/// One fault of the method.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub spec: FaultSpec,
    pub kind: String,
    pub at: Duration,
    pub duration: Duration,
    /// The fault's fields as written, for the plan.
    pub fields: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub name: String,
    pub description: String,
    pub selector: String,
    pub max_targets: Option<u32>,
    pub max_percent: Option<u32>,
    pub hypothesis: Vec<Probe>,
    pub method: Vec<Step>,
    pub max_duration: Duration,
}

impl Experiment {
    /// One line per step, for previews and reports.
    pub fn plan(&self) -> Vec<String> {
        self.method
            .iter()
            .map(|s| {
                format!(
                    "at {} for {}: {} {}",
                    humantime::format_duration(s.at),
                    humantime::format_duration(s.duration),
                    s.kind,
                    s.fields
                )
            })
            .collect()
    }

    /// When the last step ends.
    pub fn method_end(&self) -> Duration {
        self.method
            .iter()
            .map(|s| s.at + s.duration)
            .max()
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub name: String,
    /// Waits for `rampart gameday approve` before going on.
    pub approval: bool,
    pub parallel: bool,
    pub continue_on_failure: bool,
    /// Paths as written in the plan, and the experiments they hold.
    pub experiments: Vec<(String, Experiment)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GameDay {
    pub name: String,
    pub description: String,
    pub stages: Vec<Stage>,
}

/// Collects errors while reading a file's nodes.
struct Reader {
    file: String,
    errors: Vec<SpecError>,
}

fn start(node_span: &marked_yaml::Span) -> (usize, usize) {
    node_span
        .start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1))
}

impl Reader {
    fn error_at(&mut self, span: &marked_yaml::Span, message: impl Into<String>) {
        let (line, column) = start(span);
        self.errors.push(SpecError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The node as a mapping whose keys are all in `allowed` and which has every `required` key.
    fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<&'n MarkedMappingNode> {
        let Some(map) = node.as_mapping() else {
            self.error_at(node.span(), format!("{what} must be a mapping"));
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error_at(
                    key.span(),
                    format!(
                        "unknown field `{}` in {what}; expected one of: {}",
                        key.as_str(),
                        allowed.join(", ")
                    ),
                );
            }
        }
        for r in required {
            if map.get_node(r).is_none() {
                self.error_at(map.span(), format!("{what} needs `{r}`"));
            }
        }
        Some(map)
    }

    fn scalar<'n>(
        &mut self,
        map: &'n MarkedMappingNode,
        key: &str,
    ) -> Option<&'n MarkedScalarNode> {
        let node = map.get_node(key)?;
        match node.as_scalar() {
            Some(s) => Some(s),
            None => {
                self.error_at(node.span(), format!("`{key}` must be a single value"));
                None
            }
        }
    }

    fn string(&mut self, map: &MarkedMappingNode, key: &str) -> Option<String> {
        self.scalar(map, key).map(|s| s.as_str().to_string())
    }

    fn number<T: std::str::FromStr>(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        what: &str,
    ) -> Option<T> {
        let s = self.scalar(map, key)?;
        match s.as_str().trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error_at(
                    s.span(),
                    format!("`{key}` must be {what}, not {:?}", s.as_str()),
                );
                None
            }
        }
    }

    fn duration(&mut self, map: &MarkedMappingNode, key: &str) -> Option<Duration> {
        let s = self.scalar(map, key)?;
        match rampart_common::time::parse_duration(s.as_str()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error_at(s.span(), format!("`{key}`: {e}"));
                None
            }
        }
    }

    fn millis(&mut self, map: &MarkedMappingNode, key: &str) -> u32 {
        self.duration(map, key)
            .map(|d| d.as_millis().min(u128::from(u32::MAX)) as u32)
            .unwrap_or(0)
    }

    fn selector(&mut self, map: &MarkedMappingNode, key: &str) -> Option<String> {
        let s = self.scalar(map, key)?;
        match Selector::parse(s.as_str()) {
            Ok(_) => Some(s.as_str().to_string()),
            Err(e) => {
                self.error_at(s.span(), e);
                None
            }
        }
    }

    fn items<'n>(&mut self, map: &'n MarkedMappingNode, key: &str) -> Vec<&'n Node> {
        let Some(node) = map.get_node(key) else {
            return Vec::new();
        };
        match node.as_sequence() {
            Some(seq) if seq.len() > MAX_ITEMS => {
                self.error_at(
                    node.span(),
                    format!("`{key}` has {} items; at most {MAX_ITEMS}", seq.len()),
                );
                Vec::new()
            }
            Some(seq) => seq.iter().collect(),
            None => {
                self.error_at(node.span(), format!("`{key}` must be a list"));
                Vec::new()
            }
        }
    }

    /// `kind:` must be `expected`.
    fn kind(&mut self, map: &MarkedMappingNode, expected: &str) {
        match map.get_scalar("kind") {
            Some(k) if k.as_str() == expected => {}
            Some(k) => self.error_at(
                k.span(),
                format!("`kind` must be {expected}, not {:?}", k.as_str()),
            ),
            None => self.error_at(map.span(), format!("the file needs `kind: {expected}`")),
        }
    }

    fn name(&mut self, map: &MarkedMappingNode) -> String {
        let name = self.string(map, "name").unwrap_or_default();
        if let Some(n) = map.get_scalar("name")
            && (name.trim().is_empty() || name.len() > 128)
        {
            self.error_at(n.span(), "`name` must be 1 to 128 characters");
        }
        name
    }

    fn finish<T>(self, value: T) -> Result<T, SpecErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(SpecErrors(self.errors))
        }
    }
}

/// Parses the text into its top-level mapping, or the syntax error, located.
fn load(file: &str, text: &str) -> Result<(Node, Reader), SpecErrors> {
    let reader = Reader {
        file: file.to_string(),
        errors: Vec::new(),
    };
    let located = |line: usize, column: usize, message: String| {
        SpecErrors(vec![SpecError {
            file: file.to_string(),
            line,
            column,
            message,
        }])
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(located(
            1,
            1,
            format!("the file is {} bytes; at most {MAX_FILE_BYTES}", text.len()),
        ));
    }
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .toplevel_mapping();
    match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(node) => Ok((node, reader)),
        Err(e) => {
            use marked_yaml::LoadError as L;
            let (line, column) = match &e {
                L::TopLevelMustBeMapping(m)
                | L::TopLevelMustBeSequence(m)
                | L::UnexpectedAnchor(m)
                | L::MappingKeyMustBeScalar(m)
                | L::UnexpectedTag(m)
                | L::ScanError(m, _) => (m.line(), m.column()),
                L::DuplicateKey(inner) => start(inner.key.span()),
            };
            // The loader's message starts with its own (source-numbered) location.
            let message = e.to_string();
            let message = match message.split_once(": ") {
                Some((loc, rest)) if loc.starts_with(|c: char| c.is_ascii_digit()) => {
                    rest.to_string()
                }
                _ => message,
            };
            Err(located(line, column, message))
        }
    }
}

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
    let (root, mut r) = load(file, text)?;
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

/// Reads a game-day plan; `experiments` maps each path the plan names to its file's text (the
/// CLI reads them relative to the plan).
pub fn gameday(
    file: &str,
    text: &str,
    experiments: &BTreeMap<String, String>,
) -> Result<GameDay, SpecErrors> {
    let (root, mut r) = load(file, text)?;
    let mut day = GameDay {
        name: String::new(),
        description: String::new(),
        stages: Vec::new(),
    };
    let mut nested = Vec::new();
    if let Some(map) = r.mapping(
        &root,
        "a game day",
        &["kind", "name", "description", "stages"],
        &["name", "stages"],
    ) {
        r.kind(map, "GameDay");
        day.name = r.name(map);
        day.description = r.string(map, "description").unwrap_or_default();
        for node in r.items(map, "stages") {
            let Some(s) = r.mapping(
                node,
                "a stage",
                &[
                    "name",
                    "experiments",
                    "gate",
                    "parallel",
                    "continue_on_failure",
                ],
                &["name"],
            ) else {
                continue;
            };
            let mut stage = Stage {
                name: r.string(s, "name").unwrap_or_default(),
                approval: false,
                parallel: r.number(s, "parallel", "true or false").unwrap_or(false),
                continue_on_failure: r
                    .number(s, "continue_on_failure", "true or false")
                    .unwrap_or(false),
                experiments: Vec::new(),
            };
            if let Some(g) = s.get_scalar("gate") {
                if g.as_str() == "approval" {
                    stage.approval = true;
                } else {
                    r.error_at(
                        g.span(),
                        format!("unknown gate {:?}; the gate is `approval`", g.as_str()),
                    );
                }
            }
            for e in r.items(s, "experiments") {
                let Some(path) = e.as_scalar() else {
                    r.error_at(e.span(), "an experiment is the path of its file");
                    continue;
                };
                match experiments.get(path.as_str()) {
                    None => r.error_at(
                        path.span(),
                        format!(
                            "experiment file {:?} was not found (paths are relative to the plan)",
                            path.as_str()
                        ),
                    ),
                    Some(text) => match experiment(path.as_str(), text) {
                        Ok(x) => stage.experiments.push((path.as_str().to_string(), x)),
                        Err(errs) => nested.extend(errs.0),
                    },
                }
            }
            if !stage.approval && stage.experiments.is_empty() && r.errors.is_empty() {
                r.error_at(
                    s.span(),
                    format!("stage {:?} has neither experiments nor a gate", stage.name),
                );
            }
            day.stages.push(stage);
        }
        if day.stages.is_empty() && map.get_node("stages").is_some() {
            r.error_at(map.span(), "a game day needs at least one stage");
        }
    }
    r.errors.extend(nested);
    r.finish(day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"kind: Experiment
name: checkout-survives-db-latency
description: free text
scope:
  selector: role=db,env=staging
  max_targets: 1
hypothesis:
  - name: shop-up
    http: {url: "http://198.18.6.1:8080/health", status: 200, max_latency: 500ms}
    from: coordinator
    interval: 1s
    tolerance: 2
  - name: db-port
    tcp: {address: "198.18.6.2:5432", timeout: 1s}
  - name: cpu-headroom
    metric: {name: cpu_percent, below: 90}
  - name: error-rate
    prometheus: {url: "http://127.0.0.1:9090", query: "sum(rate(http_errors_total[1m]))", below: 5}
  - name: app-self-check
    command: {argv: ["/usr/local/bin/check-shop"], exit_code: 0}
method:
  - fault: {kind: network-latency, delay: 200ms, port: [5432], interface: eth0}
    at: 0s
    duration: 60s
  - fault: {kind: cpu, load: 80, workers: 2}
    at: 30s
    duration: 30s
abort:
  max_duration: 5m
"#;

    #[test]
    fn the_documented_example_reads() {
        let e = experiment("x.yaml", GOOD).unwrap();
        assert_eq!(e.name, "checkout-survives-db-latency");
        assert_eq!(e.selector, "role=db,env=staging");
        assert_eq!(e.max_targets, Some(1));
        assert_eq!(e.hypothesis.len(), 5);
        assert_eq!(e.hypothesis[0].tolerance, 2);
        assert_eq!(e.hypothesis[1].tolerance, 1);
        assert_eq!(e.hypothesis[2].from, Source::Targets);
        assert_eq!(e.hypothesis[4].from, Source::Targets);
        assert_eq!(e.method.len(), 2);
        assert_eq!(e.method[0].kind, "network-latency");
        let Some(rampart_proto::v1::fault_spec::Kind::NetworkLatency(l)) = &e.method[0].spec.kind
        else {
            panic!("{:?}", e.method[0].spec)
        };
        assert_eq!(
            (l.delay_ms, l.ports.clone(), l.interface.as_str()),
            (200, vec![5432], "eth0")
        );
        let Some(rampart_proto::v1::fault_spec::Kind::Cpu(c)) = &e.method[1].spec.kind else {
            panic!()
        };
        assert_eq!((c.workers, c.load_percent), (2, 80));
        assert_eq!(e.method_end(), Duration::from_secs(60));
        assert_eq!(e.max_duration, Duration::from_secs(300));
        assert_eq!(e.plan()[1], "at 30s for 30s: cpu load=80 workers=2");
    }

    #[test]
    fn every_error_is_listed_with_its_place() {
        let bad = r#"kind: Experiment
name: broken
colour: blue
scope:
  selector: "role"
  max_targets: 1
  max_percent: 50
hypothesis:
  - name: up
    http: {url: "ftp://x/", status: 200}
    interval: 10ms
  - name: both
    tcp: {address: "a:1"}
    metric: {name: cpu_percent, below: 1}
method:
  - fault: {kind: teleport}
    duration: 10s
  - fault: {kind: cpu, load: 50}
    at: 4m
    duration: 2m
  - fault: {kind: cpu, speed: 3}
    duration: soon
abort:
  max_duration: 5m
"#;
        let errs = experiment("bad.yaml", bad).unwrap_err();
        let text = errs.to_string();
        for want in [
            "bad.yaml:3:1: unknown field `colour`",
            "bad.yaml:5:13: selector \"role\"",
            "not both",
            "bad.yaml:10:17: \"ftp://x/\": only http",
            "`interval` must be at least 200ms",
            "probe \"both\" needs exactly one of",
            "fault: invalid value `teleport`",
            "ends at 6m, after `abort.max_duration` (5m)",
            "bad.yaml:21:24: unknown field `speed`",
            "bad.yaml:22:15: `duration`: invalid duration \"soon\"",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        assert!(errs.0.len() >= 10, "{text}");
    }

    #[test]
    fn syntax_errors_and_duplicates_are_located() {
        let e = experiment("s.yaml", "kind: Experiment\nname: [unclosed\n").unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert!(e.0[0].line >= 2, "{e}");
        let e = experiment("d.yaml", "kind: Experiment\nname: a\nname: b\n").unwrap_err();
        assert!(e.to_string().starts_with("d.yaml:3:1:"), "{e}");
        assert!(experiment("l.yaml", &"#".repeat(MAX_FILE_BYTES + 1)).is_err());
    }

    #[test]
    fn command_probes_never_run_on_the_coordinator() {
        let text = GOOD.replace(
            "command: {argv: [\"/usr/local/bin/check-shop\"], exit_code: 0}",
            "command: {argv: [\"check-shop\"]}\n    from: coordinator",
        );
        let errs = experiment("c.yaml", &text).unwrap_err().to_string();
        assert!(errs.contains("absolute path"), "{errs}");
        assert!(errs.contains("runs on agents only"), "{errs}");
    }

    #[test]
    fn the_examples_in_the_repository_are_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(dir.join("experiments")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let name = format!(
                "experiments/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            experiment(&name, &text).unwrap_or_else(|e| panic!("{e}"));
            files.insert(name, text);
        }
        assert!(files.len() >= 3);
        let plan = std::fs::read_to_string(dir.join("gameday.yaml")).unwrap();
        let day = gameday("gameday.yaml", &plan, &files).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(day.stages.len(), 3);
    }

    #[test]
    fn game_days_read_their_experiments() {
        let plan = "kind: GameDay\nname: q4\nstages:\n  - name: warm-up\n    experiments: [a.yaml]\n  - name: go/no-go\n    gate: approval\n  - name: db\n    parallel: true\n    continue_on_failure: true\n    experiments: [a.yaml, b.yaml]\n";
        let mut files = BTreeMap::new();
        files.insert("a.yaml".to_string(), GOOD.to_string());
        let errs = gameday("plan.yaml", plan, &files).unwrap_err().to_string();
        assert!(
            errs.contains("plan.yaml:11:27: experiment file \"b.yaml\" was not found"),
            "{errs}"
        );
        files.insert(
            "b.yaml".to_string(),
            GOOD.replace("max_targets: 1", "max_targets: 0"),
        );
        let errs = gameday("plan.yaml", plan, &files).unwrap_err().to_string();
        assert!(
            errs.contains("b.yaml:6:16: `max_targets` must be at least 1"),
            "{errs}"
        );
        files.insert("b.yaml".to_string(), GOOD.to_string());
        let day = gameday("plan.yaml", plan, &files).unwrap();
        assert_eq!(day.stages.len(), 3);
        assert!(day.stages[1].approval && day.stages[1].experiments.is_empty());
        assert!(day.stages[2].parallel && day.stages[2].continue_on_failure);
        assert_eq!(day.stages[2].experiments.len(), 2);
    }
}
