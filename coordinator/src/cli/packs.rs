//! `rampart packs test DIR` and `rampart packs lint DIR`: for pack authors, on this machine (no
//! coordinator needed).

use std::path::Path;

use anyhow::anyhow;

use super::output::print_table;
use crate::compliance::pack::Pack;
use crate::compliance::pack_test::{self, Case};

/// Exit status when a case differs or lint finds a problem.
pub const EXIT_PACK_PROBLEMS: i32 = 1;

fn load(dir: &Path) -> anyhow::Result<Pack> {
    if !dir.join("pack.toml").is_file() {
        return Err(anyhow!(
            "{} is not a pack folder: it has no pack.toml",
            dir.display()
        ));
    }
    Pack::load_dir(dir).map_err(|e| anyhow!("{e}"))
}

fn cases(dir: &Path) -> anyhow::Result<Vec<Case>> {
    pack_test::load_cases(dir).map_err(|e| anyhow!(e))
}

/// `packs test`: every case of the pack, with the verdicts that differ. `update` rewrites each
/// case's `expected.toml` with what the pack says instead (review the diff before committing).
pub fn test(dir: &Path, update: bool, only: Option<&str>) -> anyhow::Result<i32> {
    let pack = load(dir)?;
    let mut cases = cases(dir)?;
    if let Some(name) = only {
        cases.retain(|c| c.name == name);
        if cases.is_empty() {
            return Err(anyhow!(
                "no case {name:?} in {}",
                dir.join("tests").display()
            ));
        }
    }
    if cases.is_empty() {
        return Err(anyhow!(
            "{} has no test cases: add tests/<case>/case.toml (the host tree and file modes) and expected.toml (the verdict of every check)",
            dir.display()
        ));
    }
    eprintln!(
        "pack {} {}: {} check(s), {} case(s)",
        pack.name,
        pack.version,
        pack.checks.len(),
        cases.len()
    );
    let mut failed = 0;
    for case in &cases {
        let out =
            pack_test::run_case(&pack, case).map_err(|e| anyhow!("case {}: {e}", case.name))?;
        if update {
            let path = case.dir.join("expected.toml");
            std::fs::write(&path, pack_test::expected_toml(&out.verdicts))
                .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
            println!(
                "updated {} ({} verdicts, {} changed)",
                path.display(),
                out.verdicts.len(),
                out.mismatches.len()
            );
            continue;
        }
        if out.passed() {
            println!("ok    {} ({} checks)", out.name, out.checks);
            continue;
        }
        failed += 1;
        println!(
            "FAIL  {}: {} of {} checks differ",
            out.name,
            out.mismatches.len(),
            out.checks
        );
        for e in &out.collector_errors {
            println!("      {e}");
        }
        if !out.evaluator_differences.is_empty() {
            println!(
                "      the compiled evaluation differs from the interpreter's on {} check(s) (rewrite the rule, or set `compile = false` in pack.toml):",
                out.evaluator_differences.len()
            );
        }
        for d in &out.evaluator_differences {
            println!("      {d}");
        }
        let name = |s: Option<crate::compliance::Status>, none: &str| {
            s.map(|s| s.name().to_string())
                .unwrap_or_else(|| none.to_string())
        };
        let rows: Vec<Vec<String>> = out
            .mismatches
            .iter()
            .map(|m| {
                vec![
                    format!("      {}", m.rule),
                    format!("expected {}", name(m.expected, "(not listed)")),
                    format!("got {}", name(m.got, "(no such check)")),
                    if m.evidence.is_null() {
                        String::new()
                    } else {
                        m.evidence.to_string()
                    },
                ]
            })
            .collect();
        print_table(&["      CHECK", "EXPECTED", "ACTUAL", "EVIDENCE"], &rows);
    }
    if update {
        return Ok(0);
    }
    println!(
        "{} case(s): {} passed, {failed} failed",
        cases.len(),
        cases.len() - failed
    );
    Ok(if failed > 0 { EXIT_PACK_PROBLEMS } else { 0 })
}

/// `packs lint`: the pack loads, and every check is complete and reachable.
pub fn lint(dir: &Path) -> anyhow::Result<i32> {
    let pack = load(dir)?;
    let cases = cases(dir)?;
    let mut hosts = Vec::new();
    for c in &cases {
        let (facts, _) = pack_test::case_facts(c).map_err(|e| anyhow!("case {}: {e}", c.name))?;
        hosts.push((format!("test case {}", c.name), facts));
    }
    let mut problems = pack_test::lint(&pack, &hosts);
    if cases.is_empty() {
        problems.push(pack_test::LintProblem {
            check: String::new(),
            message: "no tests/: add a case per host you target (`rampart packs test --help`)"
                .into(),
        });
    }
    if problems.is_empty() {
        println!(
            "pack {} {}: {} check(s), {} test case(s), no problems",
            pack.name,
            pack.version,
            pack.checks.len(),
            cases.len()
        );
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = problems
        .iter()
        .map(|p| {
            vec![
                if p.check.is_empty() {
                    "(pack)".to_string()
                } else {
                    p.check.clone()
                },
                p.message.clone(),
            ]
        })
        .collect();
    print_table(&["CHECK", "PROBLEM"], &rows);
    println!("{} problem(s) in pack {}", problems.len(), pack.name);
    Ok(EXIT_PACK_PROBLEMS)
}
