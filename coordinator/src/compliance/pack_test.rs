//! Pack tests and lint, for pack authors: `rampart packs test DIR` and `rampart packs lint DIR`.
//!
//! A pack folder may carry `tests/<case>/` folders. Each holds `case.toml` (the host tree the
//! agent's collectors read, file modes and ownership to apply first, since git keeps neither) and
//! `expected.toml` (`"<check id>" = "pass" | "fail" | "error" | "not_applicable"` for every check
//! of the pack). A test collects the facts of the tree exactly as an agent with that fact root
//! would, evaluates the pack and compares every verdict: the `opa test` of Rampart packs.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::pack::{Pack, RuleResult, Status};

/// One test case of a pack.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub description: String,
    /// The host tree, resolved.
    pub root: PathBuf,
    /// Modes to set before collecting (path as on the host → mode); a missing path is created
    /// (a folder when the mode has the owner's execute bit).
    pub modes: BTreeMap<String, u32>,
    /// What every file's owner is reported as (uid, user, group).
    pub owner: (u32, String, String),
    /// Expected verdict per check; None when `expected.toml` is missing.
    pub expect: Option<BTreeMap<String, Status>>,
}

/// A check whose verdict is not the expected one.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub rule: String,
    /// None: the case does not say.
    pub expected: Option<Status>,
    /// None: the pack has no such check.
    pub got: Option<Status>,
    pub evidence: serde_json::Value,
}

/// What one case found.
#[derive(Debug, Clone)]
pub struct CaseOutcome {
    pub name: String,
    pub checks: usize,
    pub mismatches: Vec<Mismatch>,
    /// Collector errors on the tree (a broken fixture), as the agent would report them.
    pub collector_errors: Vec<String>,
    /// Every verdict, for `--update`.
    pub verdicts: BTreeMap<String, Status>,
    /// Checks whose verdict from the compiled `result` is not the interpreter's (a regorus
    /// limitation the pack must work around, or compile off).
    pub evaluator_differences: Vec<String>,
}

impl CaseOutcome {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
            && self.collector_errors.is_empty()
            && self.evaluator_differences.is_empty()
    }
}

fn status_of(s: &str) -> Option<Status> {
    Some(match s {
        "pass" => Status::Pass,
        "fail" => Status::Fail,
        "error" => Status::Error,
        "not_applicable" => Status::NotApplicable,
        _ => return None,
    })
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The test cases in `pack_dir/tests`, sorted by name; none when there is no such folder.
pub fn load_cases(pack_dir: &Path) -> Result<Vec<Case>, String> {
    let tests = pack_dir.join("tests");
    if !tests.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&tests)
        .map_err(|e| format!("cannot read {}: {e}", tests.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("case.toml").is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|d| load_case(d)).collect()
}

fn load_case(dir: &Path) -> Result<Case, String> {
    let path = dir.join("case.toml");
    let text = read(&path)?;
    let (description, root, modes, owner) = rampart_common::config::parse(&path, &text, |s| {
        let description = s.string("description").unwrap_or_default();
        let root = s.string("root").unwrap_or_else(|| "root".into());
        let mut modes = BTreeMap::new();
        for (p, m) in s.string_map("modes").unwrap_or_default() {
            match u32::from_str_radix(m.trim_start_matches("0o"), 8) {
                Ok(mode) if p.starts_with('/') && mode <= 0o7777 => {
                    modes.insert(p, mode);
                }
                _ => s.error(
                    "modes",
                    format!(
                        "{p:?} = {m:?}: give an absolute path and an octal mode such as \"0640\""
                    ),
                ),
            }
        }
        let owner = s
            .section("owner", |o| {
                (
                    o.u64("uid").unwrap_or(0) as u32,
                    o.string("user").unwrap_or_else(|| "root".into()),
                    o.string("group").unwrap_or_else(|| "root".into()),
                )
            })
            .unwrap_or((0, "root".into(), "root".into()));
        (description, root, modes, owner)
    })
    .map_err(|e| e.to_string())?;
    let root = dir.join(root);
    if !root.is_dir() {
        return Err(format!(
            "{}: the host tree {} is not a folder",
            path.display(),
            root.display()
        ));
    }
    let expected = dir.join("expected.toml");
    let expect = if expected.is_file() {
        let text = read(&expected)?;
        let map = rampart_common::config::parse(&expected, &text, |s| {
            let mut out = BTreeMap::new();
            let keys: Vec<String> = text_keys(&text);
            for k in keys {
                let Some(v) = s.string(&k) else { continue };
                match status_of(&v) {
                    Some(st) => {
                        out.insert(k, st);
                    }
                    None => s.error(
                        &k,
                        format!("{v:?} is not a verdict: pass, fail, error or not_applicable"),
                    ),
                }
            }
            out
        })
        .map_err(|e| e.to_string())?;
        Some(map)
    } else {
        None
    };
    Ok(Case {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir: dir.to_path_buf(),
        description,
        root,
        modes,
        owner,
        expect,
    })
}

/// The top-level keys of a TOML document (what `expected.toml` lists).
fn text_keys(text: &str) -> Vec<String> {
    text.parse::<toml::Table>()
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Copies a host tree: files, folders, and symbolic links as links.
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        let kind = e.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_tree(&e.path(), &dest)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path())?, dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}

/// Copies the case's host tree to `dir` and sets the case's modes (creating what is missing: a
/// folder when the mode has the owner's execute bit, else an empty file).
pub fn prepare_tree(case: &Case, dir: &Path) -> Result<(), String> {
    copy_tree(&case.root, dir).map_err(|e| format!("cannot copy {}: {e}", case.root.display()))?;
    for (path, mode) in &case.modes {
        let p = dir.join(path.trim_start_matches('/'));
        if !p.exists() {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{path}: {e}"))?;
            }
            let made = if mode & 0o100 != 0 {
                std::fs::create_dir_all(&p)
            } else {
                std::fs::write(&p, "")
            };
            made.map_err(|e| format!("{path}: {e}"))?;
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
            .map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// The facts an agent with the case's tree as fact root reports, modes and ownership applied.
pub fn case_facts(case: &Case) -> Result<(serde_json::Value, Vec<String>), String> {
    let tmp = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
    prepare_tree(case, tmp.path())?;
    let report =
        rampart_agent::facts::collect(&rampart_agent::facts::FactSource::fixture(tmp.path()), &[]);
    let errors = report
        .errors
        .iter()
        .map(|e| format!("collector {}: {}", e.collector, e.message))
        .collect();
    let mut json = serde_json::to_value(&report).map_err(|e| e.to_string())?;
    apply_owner(&mut json, &case.owner);
    Ok((json, errors))
}

/// Reports every file of the tree as owned by `owner` (uid, user, group): in file metadata, the
/// cron/at access files, the boot loader configuration, and the filesystem walk (which then finds
/// no unowned files, the owner being a named user).
fn apply_owner(json: &mut serde_json::Value, owner: &(u32, String, String)) {
    let (uid, user, group) = owner;
    for list in ["files", "cron_access"] {
        if let Some(entries) = json[list].as_array_mut() {
            for f in entries {
                if list == "files" {
                    f["uid"] = (*uid).into();
                }
                f["owner"] = user.clone().into();
                f["group"] = group.clone().into();
            }
        }
    }
    if json["boot"].is_object() {
        json["boot"]["config_uid"] = (*uid).into();
        json["boot"]["config_gid"] = if group == "root" { 0 } else { *uid }.into();
    }
    if json["file_walk"].is_object() {
        for key in ["unowned", "ungrouped"] {
            json["file_walk"][key] = serde_json::json!([]);
            json["file_walk"][format!("{key}_count")] = 0.into();
        }
    }
}

/// Runs one case: every check's verdict against the expected one.
pub fn run_case(pack: &Pack, case: &Case) -> Result<CaseOutcome, String> {
    let (facts, collector_errors) = case_facts(case)?;
    let results = pack.evaluate(&facts);
    let evaluator_differences = if pack.interpreted_because().is_none() {
        evaluator_differences(&results, &pack.evaluate_interpreted(&facts))
    } else {
        Vec::new()
    };
    let verdicts: BTreeMap<String, Status> =
        results.iter().map(|r| (r.rule.clone(), r.status)).collect();
    let mut mismatches = Vec::new();
    let empty = BTreeMap::new();
    let expect = case.expect.as_ref().unwrap_or(&empty);
    for r in &results {
        let want = expect.get(&r.rule).copied();
        if want != Some(r.status) {
            mismatches.push(Mismatch {
                rule: r.rule.clone(),
                expected: want,
                got: Some(r.status),
                evidence: r.evidence.clone(),
            });
        }
    }
    for (rule, want) in expect {
        if !verdicts.contains_key(rule) {
            mismatches.push(Mismatch {
                rule: rule.clone(),
                expected: Some(*want),
                got: None,
                evidence: serde_json::Value::Null,
            });
        }
    }
    Ok(CaseOutcome {
        name: case.name.clone(),
        checks: results.len(),
        mismatches,
        collector_errors,
        verdicts,
        evaluator_differences,
    })
}

/// Checks whose compiled verdict (status and evidence) is not the interpreter's.
pub fn evaluator_differences(compiled: &[RuleResult], interpreted: &[RuleResult]) -> Vec<String> {
    compiled
        .iter()
        .zip(interpreted)
        .filter(|(c, i)| c.status != i.status || c.evidence != i.evidence)
        .map(|(c, i)| {
            format!(
                "{}: compiled {} {}, interpreter {} {}",
                c.rule,
                c.status.name(),
                c.evidence,
                i.status.name(),
                i.evidence
            )
        })
        .collect()
}

/// `expected.toml` holding `verdicts`.
pub fn expected_toml(verdicts: &BTreeMap<String, Status>) -> String {
    let mut out = String::from(
        "# Expected verdict of every check on this case's host tree (`rampart packs test --update` writes it).\n",
    );
    for (rule, status) in verdicts {
        out.push_str(&format!("{:?} = {:?}\n", rule, status.name()));
    }
    out
}

/// A problem `packs lint` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintProblem {
    /// The check concerned, or empty for the pack.
    pub check: String,
    pub message: String,
}

/// Top-level facts an agent reports and the coordinator's indexes of them (what `input.<name>`
/// may read), sorted.
pub fn fact_names() -> Vec<String> {
    let report = rampart_proto::v1::FactReport::default();
    let mut names: Vec<String> = serde_json::to_value(&report)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.keys().cloned().collect()))
        .unwrap_or_default();
    names.extend(super::indexes::INDEXES.iter().map(|i| i.name.to_string()));
    names.sort();
    names
}

/// Lints a loaded pack: metadata complete, references given, every check decided on each of
/// `hosts` (name, facts: the pack's test cases), `result` entries without a check, and facts
/// read that agents do not report.
pub fn lint(pack: &Pack, hosts: &[(String, serde_json::Value)]) -> Vec<LintProblem> {
    let mut problems = Vec::new();
    let mut problem = |check: &str, message: String| {
        problems.push(LintProblem {
            check: check.to_string(),
            message,
        })
    };
    if pack.checks.is_empty() {
        problem(
            "",
            "the pack has no checks (`meta[\"<id>\"]` entries)".into(),
        );
    }
    if pack.version.is_empty() {
        problem("", "pack.toml has no `version`".into());
    }
    if pack.description.is_empty() {
        problem("", "pack.toml has no `description`".into());
    }
    let known = fact_names();
    for name in pack.reads().unwrap_or_default() {
        if !known.contains(&name) {
            problem(
                "",
                format!(
                    "reads input.{name}, which agents do not report (known facts: {})",
                    known.join(", ")
                ),
            );
        }
    }
    if let Some(why) = pack.compile_refused() {
        problem(
            "",
            format!(
                "`result` is evaluated by the interpreter, about half as fast as compiled: {why} (or set `compile = false` in pack.toml)"
            ),
        );
    }
    if pack.reads().is_none() {
        problem(
            "",
            "uses `input` as a whole: every fact is converted for every evaluation (read `input.<fact>` instead)"
                .into(),
        );
    }
    for c in &pack.checks {
        for (field, value) in [
            ("title", &c.title),
            ("rationale", &c.rationale),
            ("remediation", &c.remediation),
        ] {
            if value.trim().is_empty() {
                problem(&c.id, format!("empty {field}"));
            }
        }
        if c.references.cis.is_empty() && c.references.nist.is_empty() {
            problem(
                &c.id,
                "no references: cite the CIS recommendation and NIST SP 800-53 controls".into(),
            );
        }
        if c.id
            .chars()
            .any(|ch| !(ch.is_ascii_alphanumeric() || "-_.".contains(ch)))
        {
            problem(
                &c.id,
                "ids are letters, digits, '-', '_' and '.' (they appear in reports and CLI flags)"
                    .into(),
            );
        }
    }
    // On every test host (or, without tests, a host without facts) every check must reach a
    // verdict (not_applicable or error is fine): an undefined one means its `result` entry is
    // missing or never matches.
    let empty = [("a host without facts".to_string(), serde_json::json!({}))];
    let inputs = if hosts.is_empty() { &empty[..] } else { hosts };
    for (name, facts) in inputs {
        for r in pack.evaluate(facts) {
            let undefined = r.status == Status::Error
                && r.evidence
                    .get("error")
                    .and_then(|e| e.as_str())
                    .is_some_and(|e| e.contains("no verdict"));
            if undefined {
                problem(
                    &r.rule,
                    format!(
                        "no verdict on {name}: its `result` entry is missing or undefined there"
                    ),
                );
            }
        }
    }
    let mut orphans = std::collections::BTreeSet::new();
    for (_, facts) in inputs {
        orphans.extend(
            pack.result_ids(facts)
                .into_iter()
                .filter(|rule| !pack.checks.iter().any(|c| &c.id == rule)),
        );
    }
    for rule in orphans {
        problem(
            &rule,
            "a `result` entry without `meta`: reports would show no title".into(),
        );
    }
    problems
}
#[cfg(test)]
#[path = "pack_test_tests.rs"]
mod tests;
