//! The CIS packs: evaluation time per host for each built-in pack, and the checks count and false
//! verdicts of `cis-debian-12` beside OpenSCAP's `oscap-chroot` with the SCAP Security Guide
//! content Debian packages (`ssg-debian`), on the same fixture trees, in one run.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use rampart_agent::facts::{FactSource, collect};
use rampart_coordinator::compliance::pack::Status;
use rampart_coordinator::compliance::{Packs, pack_test};

use super::median;

/// The SSG data stream: Debian's ssg-debian 0.1.65 ships content for Debian 10 and 11 only.
const SSG_DS: &str = "/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml";
const SSG_PROFILE: &str = "xccdf_org.ssgproject.content_profile_standard";

/// What each fixture tree really is, topic by topic (true: compliant), with the OpenSCAP rules
/// and the Rampart check that judge it. Rules whose policy differs from the CIS benchmark (SSG
/// wants ntpd, group `shadow` on /etc/shadow, ClientAliveCountMax 0, ...) or that the trees do
/// not model (logrotate, System.map) are left out and counted as "not judged".
/// Topic, OpenSCAP rules, Rampart check, compliant on the hardened tree, on the weak tree.
type Truth = (
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
    bool,
    bool,
);

const TRUTH: &[Truth] = &[
    (
        "/tmp is its own partition",
        &["partition_for_tmp"],
        Some("partition-tmp-separate"),
        true,
        false,
    ),
    (
        "/var is its own partition",
        &["partition_for_var"],
        None,
        true,
        false,
    ),
    (
        "/var/log is its own partition",
        &["partition_for_var_log"],
        None,
        true,
        false,
    ),
    (
        "/var/log/audit is its own partition",
        &["partition_for_var_log_audit"],
        None,
        true,
        false,
    ),
    (
        "/home is its own partition",
        &["partition_for_home"],
        None,
        true,
        true,
    ),
    (
        "/etc/passwd owner and mode",
        &["file_owner_etc_passwd", "file_permissions_etc_passwd"],
        Some("file-passwd-permissions"),
        true,
        false,
    ),
    (
        "/etc/passwd group",
        &["file_groupowner_etc_passwd"],
        None,
        true,
        true,
    ),
    (
        "/etc/group owner and mode",
        &["file_owner_etc_group", "file_permissions_etc_group"],
        Some("file-group-permissions"),
        true,
        false,
    ),
    (
        "/etc/group group",
        &["file_groupowner_etc_group"],
        None,
        true,
        true,
    ),
    (
        "/etc/shadow owner",
        &["file_owner_etc_shadow"],
        None,
        true,
        false,
    ),
    (
        "/etc/gshadow owner",
        &["file_owner_etc_gshadow"],
        None,
        true,
        false,
    ),
    (
        "fs.suid_dumpable is 0",
        &["sysctl_fs_suid_dumpable"],
        Some("core-dumps-restricted"),
        true,
        false,
    ),
    (
        "ASLR is on",
        &["sysctl_kernel_randomize_va_space"],
        Some("aslr-enabled"),
        true,
        false,
    ),
    (
        "cron is installed",
        &["package_cron_installed"],
        None,
        true,
        true,
    ),
    (
        "cron is enabled",
        &["service_cron_enabled"],
        Some("cron-enabled"),
        true,
        false,
    ),
    (
        "no telnet server",
        &[
            "package_telnetd_removed",
            "package_inetutils-telnetd_removed",
            "package_telnetd-ssl_removed",
        ],
        None,
        true,
        true,
    ),
    (
        "no NIS",
        &["package_nis_removed"],
        Some("client-nis"),
        true,
        false,
    ),
    ("no ntpdate", &["package_ntpdate_removed"], None, true, true),
    (
        "auditd installed and enabled",
        &["package_audit_installed", "service_auditd_enabled"],
        None,
        false,
        false,
    ),
    (
        "rsyslog installed and enabled",
        &["package_rsyslog_installed", "service_rsyslog_enabled"],
        None,
        false,
        true,
    ),
    (
        "sshd idle timeout",
        &["sshd_set_idle_timeout"],
        Some("sshd-client-alive"),
        true,
        false,
    ),
    (
        "sshd refuses empty passwords",
        &["sshd_disable_empty_passwords"],
        Some("sshd-permit-empty-passwords"),
        true,
        false,
    ),
    (
        "sshd refuses root",
        &["sshd_disable_root_login"],
        Some("sshd-permit-root-login"),
        true,
        false,
    ),
];

/// One OpenSCAP run: rule (without the ssgproject prefix) → result.
fn oscap(root: &Path) -> anyhow::Result<(f64, Vec<(String, String)>)> {
    let start = Instant::now();
    let out = std::process::Command::new("oscap-chroot")
        .arg(root)
        .args(["xccdf", "eval", "--profile", SSG_PROFILE, SSG_DS])
        .output()
        .context("oscap-chroot (apt install openscap-utils ssg-debian)")?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    // Exit status 2 means "some rule failed", which is the point.
    if !matches!(out.status.code(), Some(0 | 2)) {
        bail!(
            "oscap-chroot failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rule = String::new();
    let mut results = Vec::new();
    for line in text.lines() {
        // oscap writes "Rule\r\t…" (a carriage return before the tab).
        let line = line.replace('\r', "");
        if let Some(r) = line.strip_prefix("Rule\t") {
            rule = r
                .trim_start_matches("xccdf_org.ssgproject.content_rule_")
                .to_string();
        } else if let Some(r) = line.strip_prefix("Result\t") {
            results.push((rule.clone(), r.trim().to_string()));
        }
    }
    Ok((ms, results))
}

/// Copies a case's tree, with its modes, and its owner as real ownership (this runs as root), so
/// both tools read the same files.
fn prepared(case: &pack_test::Case) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    pack_test::prepare_tree(case, dir.path()).map_err(anyhow::Error::msg)?;
    let uid = case.owner.0;
    if uid != 0 {
        let status = std::process::Command::new("chown")
            .args(["-R", &format!("{uid}:0")])
            .arg(dir.path())
            .status()?;
        anyhow::ensure!(status.success(), "chown failed");
    }
    // The SSG content's platform check wants Debian 11; Rampart reads os-release, not this file.
    std::fs::write(dir.path().join("etc/debian_version"), "11.11\n")?;
    Ok(dir)
}

/// `packs_dir`: a folder of packs that replace built-in ones of the same name (to compare a
/// change to a pack with the built-in one).
pub fn run(repeats: usize, packs_dir: Option<&Path>, profile: bool) -> anyhow::Result<()> {
    let packs = Packs::load(packs_dir);
    anyhow::ensure!(packs.errors.is_empty(), "{:?}", packs.errors);
    let packs_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/packs");

    // 1. Evaluation per host: this machine's facts (as the pack's distribution), every pack.
    let host = serde_json::to_value(collect(&FactSource::host(), &[]))?;
    if profile {
        return profile_library(&host, repeats);
    }
    println!("evaluation per host (median of {repeats}), this machine's facts:");
    for (name, pack) in &packs.packs {
        let mut facts = host.clone();
        if let Some(t) = pack.targets.first() {
            facts["os"]["id"] = t.id.clone().into();
            facts["os"]["version_id"] = t.version.clone().into();
        }
        // Compiled and interpreted, alternating, so both see the same machine load.
        let (mut times, mut interpreted) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            let start = Instant::now();
            let r = pack.evaluate(&facts);
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(r.len() == pack.checks.len());
            let start = Instant::now();
            pack.evaluate_interpreted(&facts);
            interpreted.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        // Of which: the facts the pack reads made into the engine's input.
        let mut convert = Vec::new();
        for _ in 0..repeats {
            let start = Instant::now();
            drop(pack.input_value(&facts));
            convert.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let last = pack.evaluate(&facts);
        let differences =
            pack_test::evaluator_differences(&last, &pack.evaluate_interpreted(&facts));
        let count = |s: Status| last.iter().filter(|r| r.status == s).count();
        let errors: Vec<String> = last
            .iter()
            .filter(|r| r.status == Status::Error)
            .map(|r| format!("{}: {}", r.rule, r.evidence))
            .collect();
        let (compiled_ms, interpreted_ms) = (median(times), median(interpreted));
        println!(
            "  {name:18} {:4} checks  {compiled_ms:6.2} ms compiled{}, {interpreted_ms:6.2} ms interpreted ({:.1}x)   (pass {}, fail {}, n/a {}, error {})",
            pack.checks.len(),
            match pack.interpreted_because() {
                Some(why) => format!(" [not compiled: {why}]"),
                None => format!(
                    " [interpreter redid {} of {}]",
                    pack.interpreter_fallbacks(),
                    repeats + 1
                ),
            },
            interpreted_ms / compiled_ms,
            count(Status::Pass),
            count(Status::Fail),
            count(Status::NotApplicable),
            count(Status::Error)
        );
        println!(
            "      of which facts to input {:.2} ms; compiled and interpreted verdicts differ on {} check(s)",
            median(convert),
            differences.len()
        );
        for d in differences.iter().take(5) {
            println!("      {d}");
        }
        for e in errors {
            println!("      error {e}");
        }
    }

    // 2. cis-debian-12 beside oscap-chroot + ssg-debian on the Debian 12 fixture trees.
    let pack = packs.get("cis-debian-12").context("cis-debian-12")?;
    let cases =
        pack_test::load_cases(&packs_dir.join("cis-debian-12")).map_err(anyhow::Error::msg)?;
    println!("\ncis-debian-12 beside oscap-chroot ({SSG_PROFILE} of {SSG_DS}):");
    let (mut rampart_false, mut rampart_judged, mut oscap_false, mut oscap_judged) = (0, 0, 0, 0);
    for case in &cases {
        let dir = prepared(case)?;
        let mut times = Vec::new();
        let mut results = Vec::new();
        for _ in 0..repeats.clamp(1, 20) {
            let start = Instant::now();
            let facts = serde_json::to_value(collect(&FactSource::fixture(dir.path()), &[]))?;
            results = pack.evaluate(&facts);
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let mut oscap_runs = Vec::new();
        let mut oscap_results = Vec::new();
        for _ in 0..3 {
            let (ms, r) = oscap(dir.path())?;
            oscap_runs.push(ms);
            oscap_results = r;
        }
        let hardened = case.name == "hardened";
        let decided = |s: &str| matches!(s, "pass" | "fail");
        println!(
            "  {:9} Rampart: {} checks, {} decided, {:.1} ms (collect + evaluate)   OpenSCAP: {} rules, {} decided, {:.0} ms",
            case.name,
            results.len(),
            results
                .iter()
                .filter(|r| matches!(r.status, Status::Pass | Status::Fail))
                .count(),
            median(times),
            oscap_results.len(),
            oscap_results.iter().filter(|(_, r)| decided(r)).count(),
            median(oscap_runs)
        );
        for (topic, rules, check, truth_hardened, truth_weak) in TRUTH {
            let truth = if hardened {
                *truth_hardened
            } else {
                *truth_weak
            };
            for rule in *rules {
                let Some((_, got)) = oscap_results.iter().find(|(r, _)| r == rule) else {
                    continue;
                };
                oscap_judged += 1;
                if decided(got) && (got == "pass") != truth || !decided(got) {
                    oscap_false += 1;
                    println!("    OpenSCAP {rule}: {got}, but {topic} is {truth}");
                }
            }
            if let Some(check) = check {
                let r = results.iter().find(|r| r.rule == *check).context("check")?;
                rampart_judged += 1;
                let ok = matches!(r.status, Status::Pass);
                if !matches!(r.status, Status::Pass | Status::Fail) || ok != truth {
                    rampart_false += 1;
                    println!(
                        "    Rampart {check}: {}, but {topic} is {truth}",
                        r.status.name()
                    );
                }
            }
        }
    }
    println!(
        "  false verdicts on the judged topics: Rampart {rampart_false} of {rampart_judged}, OpenSCAP {oscap_false} of {oscap_judged}"
    );
    Ok(())
}

/// Time of each shared rule of the cis-common library alone over `facts` (fresh engine each),
/// to find what a pack's evaluation spends its time on.
pub fn profile_library(facts: &serde_json::Value, repeats: usize) -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/packs/cis-common");
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(false);
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "rego"))
    {
        engine.add_policy(f.display().to_string(), std::fs::read_to_string(f)?)?;
    }
    engine.set_input(regorus::Value::from_json_str(&facts.to_string())?);
    let text: String = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let name: String = l
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let rest = &l[name.len()..];
            (!name.is_empty() && (rest.starts_with(" :=") || rest.starts_with(" if")))
                .then_some(name)
        })
        .collect();
    names.sort();
    names.dedup();
    names.push("result".into());
    let mut rows = Vec::new();
    for name in names {
        let mut times = Vec::new();
        for _ in 0..repeats {
            let mut e = engine.clone();
            let start = Instant::now();
            let _ = e.eval_rule(format!("data.rampart.lib.cis.{name}"));
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        rows.push((median(times), name));
    }
    // The same engine again and again (as a pack's pooled engines are used), input set each time.
    let input = regorus::Value::from_json_str(&facts.to_string())?;
    for name in ["rpm_ids", "result"] {
        let mut e = engine.clone();
        let mut times = Vec::new();
        for _ in 0..repeats {
            e.set_input(input.clone());
            let start = Instant::now();
            let _ = e.eval_rule(format!("data.rampart.lib.cis.{name}"));
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "reused engine, {name}: {:.3} ms (first {:.3} ms)",
            median(times.clone()),
            times[0]
        );
    }
    // What a function call costs in regorus: 200 values built inline, and through a two-clause
    // function.
    let synthetic = [
        ("inline", "package s\nimport rego.v1\nx := [v | some i in numbers.range(1, 200); v := {\"status\": \"pass\", \"evidence\": {\"i\": i}}]\n".to_string()),
        ("function", "package s\nimport rego.v1\nf(ok, e) := {\"status\": \"pass\", \"evidence\": e} if ok\nf(ok, e) := {\"status\": \"fail\", \"evidence\": e} if not ok\nx := [v | some i in numbers.range(1, 200); v := f(true, {\"i\": i})]\n".to_string()),
    ];
    for (label, policy) in synthetic {
        let mut e = regorus::Engine::new();
        e.add_policy("s.rego".into(), policy)?;
        let mut times = Vec::new();
        for _ in 0..repeats {
            e.set_input(input.clone());
            let start = Instant::now();
            let _ = e.eval_rule("data.s.x".into())?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!("synthetic {label}: {:.3} ms", median(times));
    }
    // Each file's share: `result` with that file's result rules removed (helpers kept).
    let sources: Vec<(String, String)> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "rego"))
        .map(|f| {
            (
                f.display().to_string(),
                std::fs::read_to_string(f).unwrap_or_default(),
            )
        })
        .collect();
    for (skip, _) in &sources {
        let mut e = regorus::Engine::new();
        e.set_strict_builtin_errors(false);
        for (name, text) in &sources {
            let text = if name == skip {
                text.split("\n\n")
                    .filter(|block| !block.trim_start().starts_with("result["))
                    .collect::<Vec<_>>()
                    .join("\n\n")
            } else {
                text.clone()
            };
            e.add_policy(name.clone(), text)?;
        }
        let mut times = Vec::new();
        for _ in 0..repeats {
            e.set_input(input.clone());
            let start = Instant::now();
            let _ = e.eval_rule("data.rampart.lib.cis.result".into());
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "result without {}'s results: {:.3} ms",
            skip.rsplit('/').next().unwrap_or(skip),
            median(times)
        );
    }
    rows.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    println!("cis-common rules alone (median of {repeats}, ms):");
    for (ms, name) in rows.iter().take(25) {
        println!("  {ms:8.3}  {name}");
    }
    Ok(())
}
