//! Core dumps: `hard core` limits in `/etc/security/limits.conf` and `limits.d/*.conf` (a `-`
//! type sets hard and soft alike), and systemd-coredump's `[Coredump]` settings. The
//! `fs.suid_dumpable` kernel parameter is in the sysctl facts.

use rampart_proto::v1::CoreDumpFacts;

use super::{CollectResult, FactSource, conf};

pub fn collect(src: &FactSource) -> CollectResult<CoreDumpFacts> {
    let mut facts = CoreDumpFacts::default();
    let mut files = vec!["/etc/security/limits.conf".to_string()];
    files.extend(conf::conf_files(src, "/etc/security/limits.d"));
    for f in files {
        let Ok(Some(text)) = src.read_optional(&f) else {
            continue;
        };
        for line in conf::lines(&text) {
            if let [domain, kind, "core", value] = line.split_whitespace().collect::<Vec<_>>()[..]
                && matches!(kind, "hard" | "-")
            {
                facts.hard_core_limits.push(format!("{domain}={value}"));
            }
        }
    }
    facts.systemd_coredump = conf::systemd_section(src, "coredump", "Coredump");
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn hard_core_limits_and_coredump_settings() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "etc/security/limits.conf",
            "#*  hard core 0\n@staff soft core 100\n",
        );
        write(
            r,
            "etc/security/limits.d/90-cis.conf",
            "*\thard\tcore\t0\nroot - core unlimited\n",
        );
        write(
            r,
            "etc/systemd/coredump.conf",
            "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
        );
        let c = collect(&FactSource::fixture(r)).unwrap();
        assert_eq!(c.hard_core_limits, ["*=0", "root=unlimited"]);
        assert_eq!(c.systemd_coredump["Storage"], "none");
    }
}
