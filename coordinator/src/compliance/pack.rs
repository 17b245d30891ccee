//! Policy packs. A pack is a folder with `pack.toml` (name, version, description, Rego package)
//! and `*.rego` files. In its package, `meta["<id>"]` describes each check (title, severity,
//! rationale, remediation, references, optional remediation action) and `result["<id>"]` gives
//! its verdict over the facts: `{"status": "pass"|"fail"|"error"|"not_applicable", "evidence": …}`.
//! A check whose result is undefined is reported as `error`, never silently dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// The Rego files of a built-in folder, as (name, text).
macro_rules! builtin_files {
    ($dir:literal: $($file:literal),* $(,)?) => {
        &[$((
            concat!($dir, "/", $file),
            include_str!(concat!("../../packs/", $dir, "/", $file)),
        )),*]
    };
}

/// Built-in packs, compiled into the binary: manifest and Rego files.
const BUILTIN: &[(&str, &[(&str, &str)])] = &[
    (
        include_str!("../../packs/linux-baseline/pack.toml"),
        builtin_files!("linux-baseline": "lib.rego", "sshd.rego", "files.rego", "sysctl.rego", "system.rego"),
    ),
    (
        include_str!("../../packs/cis-debian-12/pack.toml"),
        builtin_files!("cis-debian-12": "recommendations.rego"),
    ),
    (
        include_str!("../../packs/cis-ubuntu-24.04/pack.toml"),
        builtin_files!("cis-ubuntu-24.04": "recommendations.rego"),
    ),
];

/// Built-in libraries: Rego shared by built-in packs (`uses = ["name"]`).
const BUILTIN_LIBRARIES: &[(&str, &[(&str, &str)])] = &[(
    "cis-common",
    builtin_files!(
        "cis-common": "_lib.rego",
        "filesystems.rego",
        "system.rego",
        "services.rego",
        "network.rego",
        "ssh.rego",
        "access.rego",
        "logging.rego",
        "files.rego",
        "numbering.rego",
    ),
)];

/// The files of a built-in library, named as built-in files are.
fn builtin_library(name: &str) -> Result<Vec<(String, String)>, String> {
    BUILTIN_LIBRARIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, files)| {
            files
                .iter()
                .map(|(n, t)| (format!("builtin:{n}"), t.to_string()))
                .collect()
        })
        .ok_or_else(|| format!("there is no built-in library {name:?}"))
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{0}")]
    Manifest(#[from] rampart_common::config::ConfigErrors),
    #[error("pack {pack}: {file}: {message}")]
    Rego {
        pack: String,
        file: String,
        message: String,
    },
    #[error("pack {pack}: invalid check metadata:\n  {}", .problems.join("\n  "))]
    Meta { pack: String, problems: Vec<String> },
    #[error("cannot read pack folder {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            o => Err(format!(
                "unknown severity {o:?}: expected low, medium, high or critical"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Error,
    NotApplicable,
}

impl Status {
    /// The name reports and the store use.
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::NotApplicable => "not_applicable",
        }
    }
}

impl Severity {
    /// The name reports and the store use.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// References to the benchmarks and controls a check implements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct References {
    /// CIS benchmark recommendation numbers (e.g. "5.1.20").
    #[serde(default)]
    pub cis: Vec<String>,
    /// NIST SP 800-53 rev. 5 controls (e.g. "AC-6(2)").
    #[serde(default)]
    pub nist: Vec<String>,
    /// CIS Critical Security Controls v8 safeguards (e.g. "4.8").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cis_controls: Vec<String>,
}

/// What a check is (from `meta`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckMeta {
    #[serde(default)]
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub rationale: String,
    pub remediation: String,
    #[serde(default)]
    pub references: References,
    /// A remediation action the agent can apply (kind plus parameters), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<serde_json::Value>,
    /// The facts the verdict reads, as paths into the fact report (e.g.
    /// "sshd.settings.permitrootlogin", "files[/etc/shadow]").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
}

/// One check's verdict on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleResult {
    pub rule: String,
    pub status: Status,
    pub severity: Severity,
    /// The fact values that decided it (or, for `error`, what went wrong).
    pub evidence: serde_json::Value,
    /// Evaluation time of this check, in microseconds.
    pub micros: u64,
}

/// A loaded, validated pack.
pub struct Pack {
    pub name: String,
    pub version: String,
    pub description: String,
    package: String,
    /// The compiled policies; evaluations run on clones of it.
    engine: regorus::Engine,
    /// Clones of `engine` between evaluations: a clone costs about as much as evaluating the
    /// whole pack, so each worker thread reuses one (every evaluation starts from a clean state
    /// and sets its own input).
    idle: std::sync::Mutex<Vec<regorus::Engine>>,
    /// The top-level facts the pack's Rego reads (`input.sshd`, `input.files`, …), so only those
    /// are converted for the engine; `None` when a policy uses `input` as a whole.
    reads: Option<Vec<String>>,
    /// `data.<package>.result`.
    result_path: String,
    /// Whether `result_path` can be evaluated as a rule path (no query to parse); not when the
    /// pack only defines `result` for literal keys.
    result_is_rule: bool,
    /// Checks, sorted by id.
    pub checks: Vec<CheckMeta>,
    /// The distributions the pack is written for; empty: every host.
    pub targets: Vec<Target>,
}

/// Engines kept for reuse; more threads than this evaluating at once clone their own.
const IDLE_ENGINES: usize = 16;

/// The top-level input keys Rego sources read, or `None` when one uses `input` other than as
/// `input.<name>` or `object.get(input, "<name>", …)` (then the whole input is needed).
/// Comments are ignored.
fn input_reads(sources: &[(String, String)]) -> Option<Vec<String>> {
    let mut keys = std::collections::BTreeSet::new();
    for (_, text) in sources {
        for line in text.lines() {
            // String contents are masked (same length, so offsets still match `line`): words in
            // them are not code.
            let masked = mask_strings(line);
            let code = masked.split('#').next().unwrap_or_default();
            let mut offset = 0;
            while let Some(found) = code[offset..].find("input") {
                let at = offset + found;
                let before = code[..at].chars().next_back();
                let getter = code[..at].ends_with("object.get(");
                let after = &code[at + "input".len()..];
                offset = at + "input".len();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue; // part of another name, e.g. `my_input` or `data.input`
                }
                if after.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                    continue; // `inputs`, `input_x`
                }
                if getter && after.starts_with(", \"") {
                    let quoted = &line[offset + 3..];
                    let name: String = quoted
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name.is_empty() || !quoted[name.len()..].starts_with('"') {
                        return None;
                    }
                    keys.insert(name);
                    continue;
                }
                let name: String = after
                    .strip_prefix('.')?
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() {
                    return None;
                }
                keys.insert(name);
            }
        }
    }
    Some(keys.into_iter().collect())
}

/// `line` with the contents of its string literals ("…" and `…`) replaced by spaces.
fn mask_strings(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in line.chars() {
        match quote {
            None => {
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
                out.push(c);
            }
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                    out.push(c);
                    continue;
                }
                // One space per byte keeps offsets equal to the original line's.
                out.extend(std::iter::repeat_n(' ', c.len_utf8()));
            }
        }
    }
    out
}

/// Finds a library a pack `uses` by name: its Rego files (name, text), or why not.
pub type LibraryLoader<'a> = dyn Fn(&str) -> Result<Vec<(String, String)>, String> + 'a;

/// The `*.rego` files of a folder (name, text), sorted by name.
fn rego_files(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rego"))
        .collect();
    entries.sort();
    entries
        .into_iter()
        .map(|p| Ok((p.display().to_string(), std::fs::read_to_string(&p)?)))
        .collect()
}

/// A distribution a pack is written for: an os-release `ID` and `VERSION_ID` (a major version
/// matches its minor releases: "9" matches "9.4").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub version: String,
}

impl Target {
    fn parse(s: &str) -> Result<Self, String> {
        match s.split_whitespace().collect::<Vec<_>>()[..] {
            [id, version] => Ok(Self {
                id: id.to_string(),
                version: version.to_string(),
            }),
            _ => Err(format!(
                "target {s:?} must be an os-release ID and VERSION_ID, e.g. \"debian 12\""
            )),
        }
    }

    fn matches(&self, id: &str, version: &str) -> bool {
        self.id == id
            && (version == self.version
                || version
                    .strip_prefix(&self.version)
                    .is_some_and(|rest| rest.starts_with('.')))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.id, self.version)
    }
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack")
            .field("name", &self.name)
            .field("checks", &self.checks.len())
            .finish()
    }
}

fn regorus_value_json(v: &regorus::Value) -> Option<serde_json::Value> {
    if *v == regorus::Value::Undefined {
        return None;
    }
    serde_json::to_value(v).ok()
}

/// The value of a single-expression query, if defined.
fn first_value(results: &regorus::QueryResults) -> Option<serde_json::Value> {
    results
        .result
        .first()
        .and_then(|r| r.expressions.first())
        .and_then(|e| regorus_value_json(&e.value))
}

impl Pack {
    /// Loads a pack from `pack.toml` text and its Rego files (name, text). Any syntax error or
    /// invalid metadata rejects the whole pack.
    pub fn from_sources(
        manifest_path: &Path,
        manifest: &str,
        files: &[(String, String)],
        library: &LibraryLoader<'_>,
    ) -> Result<Self, PackError> {
        let (name, version, description, package, uses, targets) =
            rampart_common::config::parse(manifest_path, manifest, |s| {
                let name = s.string("name").unwrap_or_default();
                if name.is_empty() {
                    s.error("name", "a pack needs a name");
                }
                let package = s.string("package").unwrap_or_default();
                if !package.starts_with("rampart.") {
                    s.error(
                        "package",
                        "must name the Rego package, starting with `rampart.`",
                    );
                }
                let uses = s.string_list("uses").unwrap_or_default();
                let mut targets = Vec::new();
                for t in s.string_list("targets").unwrap_or_default() {
                    match Target::parse(&t) {
                        Ok(t) => targets.push(t),
                        Err(e) => s.error("targets", e),
                    }
                }
                (
                    name,
                    s.string("version").unwrap_or_default(),
                    s.string("description").unwrap_or_default(),
                    package,
                    uses,
                    targets,
                )
            })?;
        let mut files = files.to_vec();
        for lib in &uses {
            files.extend(library(lib).map_err(|message| PackError::Rego {
                pack: name.clone(),
                file: format!("library {lib}"),
                message,
            })?);
        }
        let files = &files[..];
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(false);
        for (file, text) in files {
            engine
                .add_policy(file.clone(), text.clone())
                .map_err(|e| PackError::Rego {
                    pack: name.clone(),
                    file: file.clone(),
                    message: e.to_string(),
                })?;
        }
        engine.set_input(regorus::Value::new_object());
        let meta = engine
            .eval_query(format!("data.{package}.meta"), false)
            .map_err(|e| PackError::Rego {
                pack: name.clone(),
                file: "meta".into(),
                message: e.to_string(),
            })?;
        let meta = first_value(&meta)
            .and_then(|m| m.as_object().cloned())
            .ok_or_else(|| PackError::Meta {
                pack: name.clone(),
                problems: vec![format!("data.{package}.meta is not an object of checks")],
            })?;
        let mut checks = Vec::new();
        let mut problems = Vec::new();
        for (id, m) in meta {
            match serde_json::from_value::<CheckMeta>(m) {
                Ok(mut c) => {
                    if let Some(Err(e)) = c.action.as_ref().map(super::action::parse_action) {
                        problems.push(format!("check {id}: action: {e}"));
                    }
                    c.id = id;
                    checks.push(c);
                }
                Err(e) => problems.push(format!("check {id}: {e}")),
            }
        }
        if !problems.is_empty() {
            return Err(PackError::Meta {
                pack: name,
                problems,
            });
        }
        checks.sort_by(|a, b| a.id.cmp(&b.id));
        let result_path = format!("data.{package}.result");
        let result_is_rule = engine.eval_rule(result_path.clone()).is_ok();
        Ok(Self {
            name,
            version,
            description,
            result_path,
            result_is_rule,
            package,
            engine,
            idle: std::sync::Mutex::new(Vec::new()),
            reads: input_reads(files),
            checks,
            targets,
        })
    }

    /// Loads the pack in `dir`; a library it `uses` is the sibling folder of that name.
    pub fn load_dir(dir: &Path) -> Result<Self, PackError> {
        let io = |source| PackError::Io {
            path: dir.display().to_string(),
            source,
        };
        let manifest_path = dir.join("pack.toml");
        let manifest = std::fs::read_to_string(&manifest_path).map_err(io)?;
        let files = rego_files(dir).map_err(io)?;
        let parent = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        let library = |name: &str| {
            if name.is_empty() || name.contains(['/', '.']) {
                return Err(format!(
                    "{name:?} is not a library name (a sibling folder's name)"
                ));
            }
            let lib = parent.join(name);
            match rego_files(&lib) {
                Ok(f) if !f.is_empty() => Ok(f),
                Ok(_) => Err(format!("{} holds no .rego files", lib.display())),
                Err(e) => Err(format!("cannot read {}: {e}", lib.display())),
            }
        };
        Self::from_sources(&manifest_path, &manifest, &files, &library)
    }

    /// Evaluates every check over `facts` (the JSON form of a `FactReport`) in one pass: the fast
    /// path, used by sweeps. Per-check times are 0; see [`Pack::evaluate_profiled`].
    pub fn evaluate(&self, facts: &serde_json::Value) -> Vec<RuleResult> {
        if let Some(reason) = self.off_target(facts) {
            return self.all_not_applicable(&reason);
        }
        let all = self.result_object(facts);
        self.checks
            .iter()
            .map(|check| {
                let (status, evidence) = match &all {
                    Err(e) => (Status::Error, serde_json::json!({"error": e})),
                    Ok(v) => verdict_of(v.get(&check.id).cloned()),
                };
                RuleResult {
                    rule: check.id.clone(),
                    status,
                    severity: check.severity,
                    evidence,
                    micros: 0,
                }
            })
            .collect()
    }

    /// Why the pack does not apply to the host of `facts` (another distribution or version), or
    /// `None` when it does (or targets every host).
    pub fn off_target(&self, facts: &serde_json::Value) -> Option<String> {
        if self.targets.is_empty() {
            return None;
        }
        let id = facts["os"]["id"].as_str().unwrap_or_default();
        let version = facts["os"]["version_id"].as_str().unwrap_or_default();
        if self.targets.iter().any(|t| t.matches(id, version)) {
            return None;
        }
        let host = if id.is_empty() {
            "a host whose distribution is unknown (no os-release)".to_string()
        } else {
            format!("{id} {version}")
        };
        let targets: Vec<String> = self.targets.iter().map(Target::to_string).collect();
        Some(format!(
            "pack {} is written for {}; this host is {host}: its checks do not apply",
            self.name,
            targets.join(", ")
        ))
    }

    fn all_not_applicable(&self, reason: &str) -> Vec<RuleResult> {
        self.checks
            .iter()
            .map(|c| RuleResult {
                rule: c.id.clone(),
                status: Status::NotApplicable,
                severity: c.severity,
                evidence: serde_json::json!({"reason": reason}),
                micros: 0,
            })
            .collect()
    }

    /// `data.<package>.result` over `facts`: check id → verdict.
    fn result_object(&self, facts: &serde_json::Value) -> Result<serde_json::Value, String> {
        self.with_engine(facts, |engine| {
            let empty = || serde_json::json!({});
            if self.result_is_rule {
                engine
                    .eval_rule(self.result_path.clone())
                    .map(|v| regorus_value_json(&v).unwrap_or_else(empty))
            } else {
                engine
                    .eval_query(self.result_path.clone(), false)
                    .map(|r| first_value(&r).unwrap_or_else(empty))
            }
            .map_err(|e| e.to_string())
        })
    }

    /// The ids `result` gives a verdict for over `facts`, checks or not (for `packs lint`).
    pub fn result_ids(&self, facts: &serde_json::Value) -> Vec<String> {
        self.result_object(facts)
            .ok()
            .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
            .unwrap_or_default()
    }

    /// The top-level facts the pack's Rego reads; None when it uses `input` as a whole.
    pub fn reads(&self) -> Option<Vec<String>> {
        self.reads.clone()
    }

    /// Like [`Pack::evaluate`], but each check on its own, timed: shows which check is slow. Each
    /// query costs the engine's set-up again, so this is tens of times slower.
    pub fn evaluate_profiled(&self, facts: &serde_json::Value) -> Vec<RuleResult> {
        if let Some(reason) = self.off_target(facts) {
            return self.all_not_applicable(&reason);
        }
        self.with_engine(facts, |engine| self.each_check_timed(engine))
    }

    fn each_check_timed(&self, engine: &mut regorus::Engine) -> Vec<RuleResult> {
        self.checks
            .iter()
            .map(|check| {
                let start = Instant::now();
                let query = format!("data.{}.result[\"{}\"]", self.package, check.id);
                let outcome = engine.eval_query(query, false);
                let micros = start.elapsed().as_micros() as u64;
                let (status, evidence) = match outcome {
                    Err(e) => (Status::Error, serde_json::json!({"error": e.to_string()})),
                    Ok(results) => verdict_of(first_value(&results)),
                };
                RuleResult {
                    rule: check.id.clone(),
                    status,
                    severity: check.severity,
                    evidence,
                    micros,
                }
            })
            .collect()
    }

    /// Runs `f` on an engine whose input is `facts` (only the parts the pack reads).
    fn with_engine<T>(
        &self,
        facts: &serde_json::Value,
        f: impl FnOnce(&mut regorus::Engine) -> T,
    ) -> T {
        let pooled = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let mut engine = pooled.unwrap_or_else(|| self.engine.clone());
        let input = match (&self.reads, facts.as_object()) {
            (Some(keys), Some(all)) => {
                let mut input = regorus::Value::new_object();
                let mut converted = Ok(());
                if let Ok(obj) = input.as_object_mut() {
                    for k in keys {
                        if let Some(v) = all.get(k) {
                            match regorus::Value::deserialize(v) {
                                Ok(v) => {
                                    obj.insert(regorus::Value::from(k.as_str()), v);
                                }
                                Err(e) => converted = Err(e),
                            }
                        }
                    }
                }
                converted.map(|()| input)
            }
            _ => regorus::Value::deserialize(facts),
        };
        engine.set_input(input.unwrap_or_else(|_| regorus::Value::new_object()));
        let out = f(&mut engine);
        // Keep no host's facts in an idle engine.
        engine.set_input(regorus::Value::new_object());
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE_ENGINES
        {
            idle.push(engine);
        }
        out
    }
}

/// Reads one check's `{"status", "evidence"}`; an undefined or malformed verdict is an error.
fn verdict_of(v: Option<serde_json::Value>) -> (Status, serde_json::Value) {
    match v {
        None => (
            Status::Error,
            serde_json::json!({"error": "the check gave no verdict: a fact it needs is missing or malformed"}),
        ),
        Some(v) => match serde_json::from_value::<Status>(v["status"].clone()) {
            Ok(s) => (s, v["evidence"].clone()),
            Err(_) => (
                Status::Error,
                serde_json::json!({"error": "the check's verdict has no valid status", "verdict": v}),
            ),
        },
    }
}

/// The packs a coordinator knows: the built-in ones plus those in a packs folder. A pack that
/// fails to load is rejected whole and reported; the others keep working.
#[derive(Debug, Default)]
pub struct Packs {
    pub packs: BTreeMap<String, Arc<Pack>>,
    pub errors: Vec<String>,
}

impl Packs {
    /// Built-in packs only.
    pub fn builtin() -> Self {
        let mut packs = Self::default();
        for (manifest, files) in BUILTIN {
            let files: Vec<(String, String)> = files
                .iter()
                .map(|(n, t)| (format!("builtin:{n}"), t.to_string()))
                .collect();
            packs.add(Pack::from_sources(
                Path::new("builtin:pack.toml"),
                manifest,
                &files,
                &builtin_library,
            ));
        }
        packs
    }

    /// Built-in packs plus every sub-folder of `dir` holding a `pack.toml`.
    pub fn load(dir: Option<&Path>) -> Self {
        let mut packs = Self::builtin();
        if let Some(dir) = dir {
            match std::fs::read_dir(dir) {
                Ok(entries) => {
                    let mut paths: Vec<_> = entries
                        .flatten()
                        .map(|e| e.path())
                        .filter(|p| p.join("pack.toml").exists())
                        .collect();
                    paths.sort();
                    for p in paths {
                        packs.add(Pack::load_dir(&p));
                    }
                }
                Err(e) => packs
                    .errors
                    .push(format!("cannot read packs folder {}: {e}", dir.display())),
            }
        }
        packs
    }

    fn add(&mut self, pack: Result<Pack, PackError>) {
        match pack {
            Ok(p) => {
                self.packs.insert(p.name.clone(), Arc::new(p));
            }
            Err(e) => self.errors.push(e.to_string()),
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Pack>> {
        self.packs.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// Facts of a fixture host, with file modes set as the scenario wants and ownership as root
    /// (git keeps neither, and tests need not run as root).
    fn fixture_facts(name: &str, modes: &[(&str, u32)], owner_uid: u32) -> serde_json::Value {
        let dir = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/hosts")
            .join(name);
        super::super::pack_test::copy_tree(&src, dir.path()).unwrap();
        for (path, mode) in modes {
            let p = dir.path().join(path.trim_start_matches('/'));
            if !p.exists() {
                if *mode & 0o100 != 0 {
                    std::fs::create_dir_all(&p).unwrap();
                } else {
                    std::fs::write(&p, "").unwrap();
                }
            }
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
        }
        let report = rampart_agent::facts::collect(
            &rampart_agent::facts::FactSource::fixture(dir.path()),
            &[],
        );
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let mut json = serde_json::to_value(&report).unwrap();
        for f in json["files"].as_array_mut().unwrap() {
            f["uid"] = owner_uid.into();
            f["owner"] = if owner_uid == 0 {
                "root".into()
            } else {
                "ops".into()
            };
            f["group"] = "root".into();
        }
        json
    }

    fn verdicts(facts: &serde_json::Value) -> BTreeMap<String, Status> {
        let packs = Packs::builtin();
        assert!(packs.errors.is_empty(), "{:?}", packs.errors);
        let pack = packs.get("linux-baseline").unwrap();
        pack.evaluate(facts)
            .into_iter()
            .map(|r| (r.rule, r.status))
            .collect()
    }

    const SSHD: [&str; 13] = [
        "sshd-client-alive",
        "sshd-hostbased-authentication",
        "sshd-ignore-rhosts",
        "sshd-login-grace-time",
        "sshd-max-auth-tries",
        "sshd-password-authentication",
        "sshd-permit-empty-passwords",
        "sshd-permit-root-login",
        "sshd-permit-user-environment",
        "sshd-strong-ciphers",
        "sshd-strong-kex",
        "sshd-strong-macs",
        "sshd-x11-forwarding",
    ];
    const FILES: [&str; 11] = [
        "file-cron-d",
        "file-cron-daily",
        "file-cron-hourly",
        "file-cron-monthly",
        "file-cron-weekly",
        "file-etc-crontab",
        "file-etc-group",
        "file-etc-gshadow",
        "file-etc-passwd",
        "file-etc-shadow",
        "file-sshd-config",
    ];
    const SYSCTL: [&str; 8] = [
        "sysctl-accept-redirects",
        "sysctl-accept-source-route",
        "sysctl-ip-forward",
        "sysctl-log-martians",
        "sysctl-randomize-va-space",
        "sysctl-rp-filter",
        "sysctl-send-redirects",
        "sysctl-tcp-syncookies",
    ];
    const FS: [&str; 7] = [
        "cramfs", "freevxfs", "hfs", "hfsplus", "jffs2", "squashfs", "udf",
    ];
    const REST: [&str; 13] = [
        "accounts-no-duplicate-gids",
        "accounts-no-duplicate-uids",
        "accounts-no-empty-passwords",
        "accounts-only-root-uid0",
        "auditd-installed",
        "service-avahi-disabled",
        "service-nis-absent",
        "service-rsh-absent",
        "service-telnet-absent",
        "tmp-separate-mount",
        "tmp-nodev",
        "tmp-noexec",
        "tmp-nosuid",
    ];

    fn expect(pairs: &[(&str, Status)]) -> BTreeMap<String, Status> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn all(ids: &[&str], s: Status) -> Vec<(String, Status)> {
        ids.iter().map(|id| (id.to_string(), s)).collect()
    }

    #[test]
    fn the_baseline_has_at_least_40_checks_with_complete_metadata() {
        let packs = Packs::builtin();
        let pack = packs.get("linux-baseline").unwrap();
        assert_eq!(
            pack.checks.len(),
            SSHD.len() + FILES.len() + SYSCTL.len() + FS.len() + REST.len()
        );
        assert!(pack.checks.len() >= 40);
        for c in &pack.checks {
            assert!(
                !c.title.is_empty() && !c.rationale.is_empty() && !c.remediation.is_empty(),
                "{c:?}"
            );
            assert!(
                !c.references.cis.is_empty() && !c.references.nist.is_empty(),
                "{}",
                c.id
            );
        }
    }

    #[test]
    fn hardened_host_passes_every_check() {
        let tight = [
            ("/etc/passwd", 0o644),
            ("/etc/shadow", 0o640),
            ("/etc/group", 0o644),
            ("/etc/gshadow", 0o640),
            ("/etc/ssh/sshd_config", 0o600),
            ("/etc/crontab", 0o600),
            ("/etc/cron.hourly", 0o700),
            ("/etc/cron.daily", 0o700),
            ("/etc/cron.weekly", 0o700),
            ("/etc/cron.monthly", 0o700),
            ("/etc/cron.d", 0o700),
        ];
        let got = verdicts(&fixture_facts("hardened", &tight, 0));
        let mut want: BTreeMap<String, Status> = BTreeMap::new();
        for ids in [&SSHD[..], &FILES[..], &SYSCTL[..], &REST[..]] {
            want.extend(all(ids, Status::Pass));
        }
        want.extend(
            FS.iter()
                .map(|f| (format!("fs-{f}-disabled"), Status::Pass)),
        );
        assert_eq!(got, want);
    }

    #[test]
    fn weak_host_gets_the_exact_expected_verdicts() {
        let loose = [
            ("/etc/passwd", 0o666),
            ("/etc/shadow", 0o644),
            ("/etc/group", 0o664),
            ("/etc/gshadow", 0o644),
            ("/etc/ssh/sshd_config", 0o644),
            ("/etc/crontab", 0o644),
            ("/etc/cron.hourly", 0o755),
            ("/etc/cron.daily", 0o755),
            ("/etc/cron.weekly", 0o755),
            ("/etc/cron.d", 0o777),
        ];
        let got = verdicts(&fixture_facts("weak", &loose, 1000));
        let mut want = expect(&[
            // Unset in the weak sshd_config: OpenSSH's strong defaults apply.
            ("sshd-strong-kex", Status::Pass),
            ("sshd-strong-macs", Status::Pass),
            ("file-cron-monthly", Status::NotApplicable),
            ("tmp-nodev", Status::NotApplicable),
            ("tmp-noexec", Status::NotApplicable),
            ("tmp-nosuid", Status::NotApplicable),
        ]);
        for ids in [&SSHD[..], &FILES[..], &SYSCTL[..], &REST[..]] {
            for (id, s) in all(ids, Status::Fail) {
                want.entry(id).or_insert(s);
            }
        }
        want.extend(
            FS.iter()
                .map(|f| (format!("fs-{f}-disabled"), Status::Fail)),
        );
        assert_eq!(got, want);
    }

    #[test]
    fn evidence_names_the_deciding_facts_and_missing_facts_are_errors() {
        let facts = fixture_facts("weak", &[], 0);
        let packs = Packs::builtin();
        let pack = packs.get("linux-baseline").unwrap();
        let results = pack.evaluate(&facts);
        let root = results
            .iter()
            .find(|r| r.rule == "sshd-permit-root-login")
            .unwrap();
        assert_eq!(root.evidence, serde_json::json!({"permitrootlogin": "yes"}));
        let uid0 = results
            .iter()
            .find(|r| r.rule == "accounts-only-root-uid0")
            .unwrap();
        assert_eq!(uid0.evidence, serde_json::json!({"uid0": ["root", "toor"]}));
        let ciphers = results
            .iter()
            .find(|r| r.rule == "sshd-strong-ciphers")
            .unwrap();
        assert_eq!(
            ciphers.evidence["weak"],
            serde_json::json!(["3des-cbc", "aes128-cbc"])
        );

        // A malformed fact: the check cannot decide, and says so instead of passing or vanishing.
        let mut broken = facts.clone();
        broken["sshd"]["settings"]["maxauthtries"] = "many".into();
        let results = pack.evaluate(&broken);
        let tries = results
            .iter()
            .find(|r| r.rule == "sshd-max-auth-tries")
            .unwrap();
        assert_eq!(tries.status, Status::Error, "{tries:?}");
    }

    #[test]
    fn only_the_facts_a_pack_reads_are_converted_and_engines_are_reused_cleanly() {
        let packs = Packs::builtin();
        let pack = packs.get("linux-baseline").unwrap();
        assert_eq!(
            pack.reads.as_deref().unwrap(),
            [
                "accounts",
                "files",
                "groups",
                "kernel_modules",
                "mounts",
                "packages",
                "sshd",
                "sysctl",
                "units"
            ]
        );
        assert_eq!(
            input_reads(&[(
                "a".into(),
                "x := input.a # input[y]\ny := my_input.z\n".into()
            )]),
            Some(vec!["a".to_string()])
        );
        assert_eq!(input_reads(&[("a".into(), "x := input\n".into())]), None);
        assert_eq!(
            input_reads(&[("a".into(), "x := input[\"k\"]\n".into())]),
            None
        );
        assert_eq!(
            input_reads(&[(
                "a".into(),
                "x := object.get(input, \"sudo\", {})\ny := input.os.id\n".into()
            )]),
            Some(vec!["os".to_string(), "sudo".to_string()])
        );
        assert_eq!(
            input_reads(&[("a".into(), "x := object.get(input, k, {})\n".into())]),
            None
        );
        // Words in strings are not reads.
        assert_eq!(
            input_reads(&[(
                "a".into(),
                "x := {\"no-remote-input\": `input`, \"a\\\"input\": input.b} # input\n".into()
            )]),
            Some(vec!["b".to_string()])
        );

        // One engine evaluates host after host; each result equals a fresh pack's.
        let weak = fixture_facts("weak", &[], 1000);
        let hardened = fixture_facts("hardened", &[], 0);
        let fresh = |facts: &serde_json::Value| {
            Packs::builtin()
                .get("linux-baseline")
                .unwrap()
                .evaluate(facts)
        };
        for facts in [&weak, &hardened, &weak, &hardened] {
            assert_eq!(pack.evaluate(facts), fresh(facts));
        }
        assert!(
            pack.idle.lock().unwrap().len() <= 1,
            "one thread reuses one engine"
        );
    }

    #[test]
    fn profiled_evaluation_agrees_with_the_fast_one_and_times_each_check() {
        let facts = fixture_facts("weak", &[], 0);
        let packs = Packs::builtin();
        let pack = packs.get("linux-baseline").unwrap();
        let fast = pack.evaluate(&facts);
        let profiled = pack.evaluate_profiled(&facts);
        let strip = |v: &[RuleResult]| {
            v.iter()
                .map(|r| (r.rule.clone(), r.status, r.evidence.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&fast), strip(&profiled));
        assert!(profiled.iter().all(|r| r.micros > 0));
    }

    #[test]
    fn a_pack_with_a_syntax_error_is_rejected_whole_and_says_where() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        let bad = dir.path().join("bad");
        for (d, name) in [(&good, "good"), (&bad, "bad")] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("pack.toml"), format!("name = \"{name}\"\nversion = \"1\"\ndescription = \"x\"\npackage = \"rampart.pack.{name}\"\n")).unwrap();
        }
        std::fs::write(
            good.join("a.rego"),
            "package rampart.pack.good\nimport rego.v1\nmeta[\"x\"] := {\"title\": \"t\", \"severity\": \"low\", \"rationale\": \"r\", \"remediation\": \"m\"}\nresult[\"x\"] := {\"status\": \"pass\", \"evidence\": {}}\n",
        )
        .unwrap();
        std::fs::write(
            bad.join("a.rego"),
            "package rampart.pack.bad\nimport rego.v1\n\nmeta[\"x\"] := {\n",
        )
        .unwrap();
        let packs = Packs::load(Some(dir.path()));
        assert!(packs.get("good").is_some(), "{:?}", packs.errors);
        assert!(packs.get("linux-baseline").is_some());
        assert!(packs.get("bad").is_none());
        assert_eq!(packs.errors.len(), 1);
        let err = &packs.errors[0];
        assert!(
            err.contains("a.rego:5:1") && err.contains("expecting expression"),
            "{err}"
        );
        let results = packs.get("good").unwrap().evaluate(&serde_json::json!({}));
        assert_eq!(results[0].status, Status::Pass, "{results:?}");
    }

    #[test]
    fn cis_packs_apply_only_to_the_distributions_they_target() {
        let packs = Packs::builtin();
        assert!(packs.errors.is_empty(), "{:?}", packs.errors);
        let pack = packs.get("cis-debian-12").unwrap();
        assert!(pack.checks.len() >= 150, "{}", pack.checks.len());
        // Every check cites its recommendation, NIST controls and CIS Controls v8 safeguards,
        // and names the facts it reads.
        for c in &pack.checks {
            assert_eq!(c.references.cis.len(), 1, "{}", c.id);
            assert!(!c.references.nist.is_empty(), "{}", c.id);
            assert!(!c.references.cis_controls.is_empty(), "{}", c.id);
            assert!(!c.facts.is_empty(), "{}", c.id);
        }
        let debian = fixture_facts("hardened", &[], 0);
        assert_eq!(pack.off_target(&debian), None);
        let mut ubuntu = debian.clone();
        ubuntu["os"]["id"] = "ubuntu".into();
        ubuntu["os"]["version_id"] = "22.04".into();
        let reason = pack.off_target(&ubuntu).unwrap();
        assert_eq!(
            reason,
            "pack cis-debian-12 is written for debian 12; this host is ubuntu 22.04: its checks do not apply"
        );
        let results = pack.evaluate(&ubuntu);
        assert_eq!(results.len(), pack.checks.len());
        assert!(
            results
                .iter()
                .all(|r| r.status == Status::NotApplicable
                    && r.evidence["reason"] == reason.as_str())
        );
        assert!(
            pack.evaluate_profiled(&ubuntu)
                .iter()
                .all(|r| r.status == Status::NotApplicable)
        );
        let mut unknown = debian.clone();
        unknown["os"] = serde_json::json!({});
        assert!(
            pack.off_target(&unknown)
                .unwrap()
                .contains("distribution is unknown")
        );
        // Minor releases match their major version; other majors do not.
        let rhel = Target::parse("rhel 9").unwrap();
        assert!(rhel.matches("rhel", "9.4") && rhel.matches("rhel", "9"));
        assert!(!rhel.matches("rhel", "90") && !rhel.matches("rocky", "9.4"));
        assert!(Target::parse("debian").is_err());
        // The baseline targets every host.
        assert_eq!(
            packs.get("linux-baseline").unwrap().off_target(&ubuntu),
            None
        );
    }
}
