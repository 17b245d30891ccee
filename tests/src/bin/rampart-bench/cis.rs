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
/// One pack's compiled evaluation, `repeats` times and nothing else (see `--only`).
pub fn only(name: &str, repeats: usize, packs_dir: Option<&Path>) -> anyhow::Result<()> {
    let packs = Packs::load(packs_dir);
    let pack = packs.get(name).with_context(|| format!("no pack {name}"))?;
    let mut facts = serde_json::to_value(collect(&FactSource::host(), &[]))?;
    if let Some(t) = pack.targets.first() {
        facts["os"]["id"] = t.id.clone().into();
        facts["os"]["version_id"] = t.version.clone().into();
    }
    let mut times = Vec::new();
    for _ in 0..repeats {
        let start = Instant::now();
        let results = pack.evaluate(&facts);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(results.len() == pack.checks.len());
    }
    println!(
        "{name}: {repeats} compiled evaluations, median {:.2} ms (interpreter redid {})",
        median(times),
        pack.interpreter_fallbacks()
    );
    Ok(())
}

pub fn run(
    repeats: usize,
    packs_dir: Option<&Path>,
    against_dir: Option<&Path>,
) -> anyhow::Result<()> {
    let packs = Packs::load(packs_dir);
    anyhow::ensure!(packs.errors.is_empty(), "{:?}", packs.errors);
    let packs_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../coordinator/packs");

    // 1. Evaluation per host: this machine's facts (as the pack's distribution), every pack.
    let host = serde_json::to_value(collect(&FactSource::host(), &[]))?;
    if let Some(dir) = against_dir {
        return against(&host, dir, repeats);
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

/// Each pack in `against` beside the built-in pack of the same name, compiled, alternating on
/// this machine's facts (as the pack's distribution): a change to a pack measured side by side
/// with the same load, which separate runs on a shared machine cannot give.
pub fn against(facts: &serde_json::Value, dir: &Path, repeats: usize) -> anyhow::Result<()> {
    let builtin = Packs::builtin();
    let changed = Packs::load(Some(dir));
    anyhow::ensure!(changed.errors.is_empty(), "{:?}", changed.errors);
    println!(
        "built-in beside {} (compiled, median of {repeats}):",
        dir.display()
    );
    for (name, pack) in &changed.packs {
        let Some(base) = builtin.get(name) else {
            continue;
        };
        if !dir.join(name).exists() {
            continue;
        }
        let mut facts = facts.clone();
        if let Some(t) = pack.targets.first() {
            facts["os"]["id"] = t.id.clone().into();
            facts["os"]["version_id"] = t.version.clone().into();
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            let start = Instant::now();
            base.evaluate(&facts);
            a.push(start.elapsed().as_secs_f64() * 1000.0);
            let start = Instant::now();
            pack.evaluate(&facts);
            b.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let verdicts = |p: &rampart_coordinator::compliance::pack::Pack| {
            p.evaluate(&facts)
                .into_iter()
                .map(|r| (r.rule, r.status))
                .collect::<Vec<_>>()
        };
        // The fastest run is the least disturbed by other tenants of a shared machine.
        let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let (fa, fb) = (fastest(&a), fastest(&b));
        let (a, b) = (median(a), median(b));
        println!(
            "  {name:18} built-in {a:6.2} ms   changed {b:6.2} ms   ({:+.1} %; fastest {fa:.2} against {fb:.2} ms, {:+.1} %)   verdicts {}",
            (b - a) / a * 100.0,
            (fb - fa) / fa * 100.0,
            if verdicts(&base) == verdicts(pack) {
                "the same"
            } else {
                "DIFFER"
            }
        );
    }
    Ok(())
}
