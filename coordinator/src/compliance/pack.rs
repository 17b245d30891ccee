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

use super::builtin::{BUILTIN, builtin_library};
use super::pack_vm::CompiledResult;
use super::reads::input_reads;
pub use super::target::Target;

mod evaluate;

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
    idle: super::pool::Pool<regorus::Engine>,
    /// The top-level facts the pack's Rego reads (`input.sshd`, `input.files`, …), so only those
    /// are converted for the engine; `None` when a policy uses `input` as a whole.
    reads: Option<Vec<String>>,
    /// `data.<package>.result`.
    result_path: String,
    /// Whether `result_path` can be evaluated as a rule path (no query to parse); not when the
    /// pack only defines `result` for literal keys.
    result_is_rule: bool,
    /// `result` compiled to bytecode (the fast path), or why the compiler refused it (then the
    /// interpreter evaluates it).
    compiled: Result<CompiledResult, String>,
    /// Whether pack.toml lets `result` be compiled (`compile`, default true).
    compile: bool,
    /// Evaluations the interpreter redid because the compiled one failed or left a verdict undefined.
    fallbacks: std::sync::atomic::AtomicU64,
    /// Checks, sorted by id.
    pub checks: Vec<CheckMeta>,
    /// The distributions the pack is written for; empty: every host.
    pub targets: Vec<Target>,
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
        let (name, version, description, package, uses, targets, compile) =
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
                    s.bool("compile").unwrap_or(true),
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
        let compiled = if !compile {
            Err("pack.toml sets `compile = false`".to_string())
        } else if result_is_rule {
            CompiledResult::compile(&engine, &result_path)
        } else {
            Err(format!("{result_path} is not a rule"))
        };
        Ok(Self {
            name,
            version,
            description,
            result_path,
            result_is_rule,
            compiled,
            compile,
            fallbacks: Default::default(),
            package,
            engine,
            idle: super::pool::Pool::new(),
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
#[path = "pack_tests.rs"]
pub(crate) mod tests;
