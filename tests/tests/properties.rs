//! Property tests: every parser that reads host files or operator input survives whatever it is
//! given (no panic), and where a rendering exists, parsing it gives back what was rendered.
//! Host files go through the real fact collectors over generated fixture trees; operator input
//! through the functions the CLI and the config loaders use.

use std::path::Path;

use proptest::prelude::*;
use rampart_agent::facts::{FactSource, collect};
use rampart_common::labels::{Labels, Selector};

/// Text that looks like config lines: real keywords and separators mixed with junk.
fn lines(words: &'static [&'static str]) -> impl Strategy<Value = String> {
    let line = prop_oneof![
        (prop::sample::select(words), "[ -~]{0,40}").prop_map(|(w, rest)| format!("{w} {rest}")),
        (prop::sample::select(words), "[ -~]{0,20}").prop_map(|(w, rest)| format!("{w}:{rest}")),
        "[ -~\t]{0,60}",
        "\\PC{0,30}",
        Just(String::new()),
    ];
    prop::collection::vec(line, 0..40).prop_map(|l| l.join("\n"))
}

/// A passwd/shadow/group-like file: colon-separated fields, sometimes too few or too many.
fn colon_file() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        "[a-z0-9_]{0,12}",
        "[0-9]{1,12}",
        "-?[0-9]{1,22}",
        "\\PC{0,8}",
        Just(String::new())
    ];
    prop::collection::vec(prop::collection::vec(field, 0..10), 0..30).prop_map(|rows| {
        rows.into_iter()
            .map(|r| r.join(":"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

const SSHD: &[&str] = &[
    "PermitRootLogin",
    "PasswordAuthentication",
    "Include",
    "Match",
    "AllowUsers",
    "X11Forwarding",
    "Ciphers",
    "MaxAuthTries",
    "Port",
    "Subsystem",
    "  Match User",
    "\tInclude",
];
const DPKG: &[&str] = &[
    "Package",
    "Status",
    "Version",
    "Architecture",
    " ",
    "Description",
];
const MODPROBE: &[&str] = &[
    "blacklist",
    "install",
    "options",
    "alias",
    "softdep",
    "remove",
];
const OS_RELEASE: &[&str] = &["ID=", "VERSION_ID=", "PRETTY_NAME=", "NAME=", "ID_LIKE="];

#[derive(Debug, Clone)]
struct Host {
    sshd: String,
    sshd_include: String,
    include_pattern: String,
    passwd: String,
    shadow: String,
    group: String,
    dpkg: String,
    mounts: String,
    modprobe: String,
    os_release: String,
    sysctl: Vec<(String, String)>,
}

fn host() -> impl Strategy<Value = Host> {
    (
        (lines(SSHD), lines(SSHD), "[a-z*?\\[\\]/.]{0,20}"),
        (colon_file(), colon_file(), colon_file()),
        (
            lines(DPKG),
            "[ -~\n]{0,300}",
            lines(MODPROBE),
            lines(OS_RELEASE),
        ),
        prop::collection::vec(
            ("[a-z0-9_]{1,8}(/[a-z0-9_]{1,8}){0,3}", "\\PC{0,20}"),
            0..20,
        ),
    )
        .prop_map(
            |(
                (sshd, sshd_include, include_pattern),
                (passwd, shadow, group),
                (dpkg, mounts, modprobe, os_release),
                sysctl,
            )| Host {
                sshd,
                sshd_include,
                include_pattern,
                passwd,
                shadow,
                group,
                dpkg,
                mounts,
                modprobe,
                os_release,
                sysctl,
            },
        )
}

fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// sshd_config (with Include and Match), passwd/shadow/group, dpkg status, mounts,
    /// modprobe.d, sysctl and os-release, all at once through the real collectors.
    #[test]
    fn fact_collectors_survive_any_host_files(h in host()) {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "etc/ssh/sshd_config", &format!("{}\nInclude {}\n", h.sshd, h.include_pattern));
        write(r, "etc/ssh/sshd_config.d/10-x.conf", &h.sshd_include);
        write(r, "etc/passwd", &h.passwd);
        write(r, "etc/shadow", &h.shadow);
        write(r, "etc/group", &h.group);
        write(r, "var/lib/dpkg/status", &h.dpkg);
        write(r, "proc/mounts", &h.mounts);
        write(r, "etc/modprobe.d/x.conf", &h.modprobe);
        write(r, "etc/os-release", &h.os_release);
        for (k, v) in &h.sysctl {
            // Keys may collide with folders made by earlier keys: then that one is skipped.
            let p = r.join("proc/sys").join(k);
            if std::fs::create_dir_all(p.parent().unwrap()).is_ok() && !p.is_dir() {
                let _ = std::fs::write(&p, v);
            }
        }
        let report = collect(&FactSource::fixture(r), &["/etc/passwd".into()]);
        // Every account came from a passwd line; collectors that failed say so.
        prop_assert!(report.accounts.len() <= h.passwd.lines().count());
        // Every collector ran and timed itself, whatever the files held: as many as on an empty tree.
        let empty = tempfile::tempdir().unwrap();
        let baseline = collect(&FactSource::fixture(empty.path()), &[]);
        prop_assert!(baseline.timings.len() >= 25);
        prop_assert_eq!(report.timings.len(), baseline.timings.len());
        prop_assert!(report.sshd.is_some() || report.errors.iter().any(|e| e.collector == "sshd"));
    }

    #[test]
    fn selectors_round_trip(pairs in prop::collection::btree_map("[a-z][a-z0-9./_-]{0,20}", "[A-Za-z0-9][A-Za-z0-9._-]{0,20}", 0..6)) {
        let text = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let sel = Selector::parse(&text).unwrap();
        prop_assert_eq!(Selector::parse(&sel.render()).unwrap(), sel.clone());
        let labels: Labels = pairs.clone();
        prop_assert!(sel.matches(&labels));
    }

    #[test]
    fn selectors_and_labels_survive_any_text(s in "\\PC{0,80}") {
        let _ = Selector::parse(&s);
        let _ = rampart_common::labels::parse_label(&s);
    }

    #[test]
    fn durations_round_trip_and_survive_any_text(secs in 0u64..10_000_000_000, junk in "\\PC{0,40}") {
        let d = std::time::Duration::from_secs(secs);
        let text = humantime::format_duration(d).to_string();
        prop_assert_eq!(rampart_common::time::parse_duration(&text).unwrap(), d);
        let _ = rampart_common::time::parse_duration(&junk);
    }

    #[test]
    fn rates_and_sizes_round_trip_or_refuse(n in 0u64..u64::MAX, unit in prop::sample::select(&["", "bit", "kbit", "mbit", "gbit"][..]), size_unit in prop::sample::select(&["", "b", "kb", "kib", "mb", "mib", "gb", "gib"][..]), junk in "\\PC{0,30}") {
        use rampart_coordinator::cli::{parse_bytes, parse_rate};
        let mult = match unit { "kbit" => 1_000, "mbit" => 1_000_000, "gbit" => 1_000_000_000, _ => 1 };
        let rate = parse_rate(&format!("{n}{unit}"));
        match n.checked_mul(mult) {
            Some(v) => prop_assert_eq!(rate.unwrap(), v),
            None => prop_assert!(rate.unwrap_err().contains("too large")),
        }
        let size_mult: u64 = match size_unit {
            "kb" => 1000, "kib" => 1024, "mb" => 1_000_000, "mib" => 1 << 20,
            "gb" => 1_000_000_000, "gib" => 1 << 30, _ => 1,
        };
        let size = parse_bytes(&format!("{n}{size_unit}"));
        match n.checked_mul(size_mult) {
            Some(v) => prop_assert_eq!(size.unwrap(), v),
            None => prop_assert!(size.is_err()),
        }
        let _ = parse_rate(&junk);
        let _ = parse_bytes(&junk);
    }
}

/// TOML-ish text: the config keys both binaries read, with values of every type, and junk.
fn toml_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(
        &[
            "data_dir",
            "listen",
            "server_names",
            "log_format",
            "packs_dir",
            "coordinator",
            "state_dir",
            "labels",
            "heartbeat_interval",
            "reconnect_max",
            "fact_root",
            "fact_commands",
            "remediation",
            "enroll_per_minute",
            "enroll_per_source_per_minute",
            "agent_cert_lifetime",
            "[faults]",
            "enabled",
            "allowed_kinds",
            "max_duration",
            "protected_processes",
            "lease",
            "unknown_key",
        ][..],
    );
    let value = prop_oneof![
        "\"[ -~]{0,20}\"",
        "-?[0-9]{1,20}",
        Just("true".to_string()),
        Just("[\"a\", 1]".to_string()),
        Just("{ a = \"b\" }".to_string()),
        "\\PC{0,10}",
    ];
    prop::collection::vec((key, value), 0..12).prop_map(|kv| {
        kv.into_iter()
            .map(|(k, v)| {
                if k.starts_with('[') {
                    k.to_string()
                } else {
                    format!("{k} = {v}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn config_files_survive_any_text(text in toml_text()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, &text).unwrap();
        // Either loads or lists located errors; never panics.
        if let Err(e) = rampart_agent::config::FileConfig::load(&path) {
            prop_assert!(!e.to_string().is_empty());
        }
        if let Err(e) = rampart_coordinator::config::FileConfig::load(&path) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
