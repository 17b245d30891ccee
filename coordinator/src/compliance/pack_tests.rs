//! Tests of pack loading and evaluation (`pack.rs`).
use std::os::unix::fs::PermissionsExt;

use super::*;

/// Facts of a fixture host, with file modes set as the scenario wants and ownership as root
/// (git keeps neither, and tests need not run as root).
pub(crate) fn fixture_facts(
    name: &str,
    modes: &[(&str, u32)],
    owner_uid: u32,
) -> serde_json::Value {
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
    let report =
        rampart_agent::facts::collect(&rampart_agent::facts::FactSource::fixture(dir.path()), &[]);
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
            "package_versions",
            "sshd",
            "sysctl",
            "units_by_name"
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
    assert!(pack.idle.idle() <= 1, "one thread reuses one engine");
    // Many threads at once, hosts interleaved: each gets its own host's verdicts.
    let (want_weak, want_hardened) = (fresh(&weak), fresh(&hardened));
    std::thread::scope(|s| {
        for t in 0..8 {
            let (facts, want) = if t % 2 == 0 {
                (&weak, &want_weak)
            } else {
                (&hardened, &want_hardened)
            };
            let pack = &pack;
            s.spawn(move || {
                for _ in 0..5 {
                    assert_eq!(&pack.evaluate(facts), want);
                }
            });
        }
    });
    assert_eq!(pack.interpreter_fallbacks(), 0);
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
            .all(|r| r.status == Status::NotApplicable && r.evidence["reason"] == reason.as_str())
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

/// The compiled program runs `result`; where it leaves a verdict undefined (regorus 0.14 stores
/// `<undefined>` for a compiled partial rule whose value is undefined, where the interpreter
/// skips the rule), the interpreter judges the host instead and the fallback is counted.
#[test]
fn a_verdict_the_compiled_program_leaves_undefined_is_judged_by_the_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pack.toml"),
        "name = \"two\"\nversion = \"1\"\ndescription = \"x\"\npackage = \"rampart.pack.two\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.rego"),
        r#"package rampart.pack.two
import rego.v1
meta[id] := {"title": "t", "severity": "low", "rationale": "r", "remediation": "m"} if some id in ["a", "b"]
result[id] := {"status": "fail", "evidence": {}} if {
	id := "a"
	not input.sysctl.x
}
result[id] := {"status": "pass", "evidence": {"v": v}} if {
	id := "a"
	v := input.sysctl.x
}
result[id] := {"status": "pass", "evidence": {}} if id := "b"
"#,
    )
    .unwrap();
    let pack = Pack::load_dir(dir.path()).unwrap();
    assert_eq!(pack.interpreted_because(), None, "it compiles");
    let status = |facts: serde_json::Value| {
        pack.evaluate(&facts)
            .into_iter()
            .map(|r| (r.rule, r.status))
            .collect::<Vec<_>>()
    };
    // The fact is there: the compiled program decides alone.
    assert_eq!(
        status(serde_json::json!({"sysctl": {"x": "1"}})),
        [("a".into(), Status::Pass), ("b".into(), Status::Pass)]
    );
    assert_eq!(pack.interpreter_fallbacks(), 0);
    // The fact is missing: whatever the compiled program makes of `v := input.sysctl.x`, the
    // verdict is the interpreter's, never `error` for a host that simply lacks the setting.
    let missing = serde_json::json!({"sysctl": {}});
    assert_eq!(
        status(missing.clone()),
        [("a".into(), Status::Fail), ("b".into(), Status::Pass)]
    );
    assert_eq!(
        pack.evaluate(&missing),
        pack.evaluate_interpreted(&missing),
        "both paths agree on what users see"
    );
    assert_eq!(pack.interpreter_fallbacks(), 2, "one per evaluation above");
    // What the compiled program alone makes of it: the second rule's undefined value over the
    // first rule's `fail`. (When a regorus upgrade fixes this, this line says so.)
    let raw = pack.compiled.as_ref().unwrap();
    let raw = raw.evaluate(pack.input_value(&missing)).unwrap();
    assert_eq!(raw["a"], regorus::Value::Undefined);
}
