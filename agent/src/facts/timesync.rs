//! Time synchronisation: chrony's sources and configured user (`/etc/chrony/chrony.conf` or
//! `/etc/chrony.conf`, with `include`, `confdir` and `sourcedir`), systemd-timesyncd's `[Time]`
//! settings, and ntpd's sources. Which daemon runs is in the units and processes facts.

use rampart_proto::v1::TimeSyncFacts;

use super::{CollectResult, FactSource, conf};

const CHRONY: [&str; 2] = ["/etc/chrony/chrony.conf", "/etc/chrony.conf"];
const NTP: [&str; 2] = ["/etc/ntpsec/ntp.conf", "/etc/ntp.conf"];
const MAX_FILES: usize = 64;

fn chrony_file(src: &FactSource, path: &str, seen: &mut Vec<String>, facts: &mut TimeSyncFacts) {
    if seen.len() >= MAX_FILES || seen.iter().any(|s| s == path) {
        return;
    }
    seen.push(path.to_string());
    let Ok(Some(text)) = src.read_optional(path) else {
        return;
    };
    for line in conf::lines(&text) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match word {
            "server" | "pool" | "peer" => facts.chrony_sources.push(line.to_string()),
            "user" => facts.chrony_user = rest.to_string(),
            "include" => {
                for f in conf::glob(src, rest) {
                    chrony_file(src, &f, seen, facts);
                }
            }
            "confdir" | "sourcedir" => {
                let suffix = if word == "confdir" {
                    ".conf"
                } else {
                    ".sources"
                };
                for dir in rest.split_whitespace() {
                    for f in src.list(dir).into_iter().filter(|f| f.ends_with(suffix)) {
                        chrony_file(src, &f, seen, facts);
                    }
                }
            }
            _ => {}
        }
    }
}

pub fn collect(src: &FactSource) -> CollectResult<TimeSyncFacts> {
    let mut facts = TimeSyncFacts::default();
    let mut seen = Vec::new();
    if let Some(main) = CHRONY
        .into_iter()
        .find(|p| matches!(src.read_optional(p), Ok(Some(_))))
    {
        chrony_file(src, main, &mut seen, &mut facts);
    }
    // An -u option of the service (RHEL: /etc/sysconfig/chronyd OPTIONS="-u chrony").
    for (file, key) in [
        ("/etc/sysconfig/chronyd", "OPTIONS"),
        ("/etc/default/chrony", "DAEMON_OPTS"),
    ] {
        let mut m = std::collections::HashMap::new();
        conf::settings_of(src, file, &mut m);
        if let Some(opts) = m.get(key) {
            let words: Vec<&str> = opts.split_whitespace().collect();
            if let Some(i) = words.iter().position(|w| *w == "-u")
                && let Some(u) = words.get(i + 1)
            {
                facts.chrony_user = u.to_string();
            }
        }
    }
    facts.timesyncd = conf::systemd_section(src, "timesyncd", "Time");
    if let Some(ntp) = NTP
        .into_iter()
        .find_map(|p| src.read_optional(p).ok().flatten())
    {
        facts.ntp_sources = conf::lines(&ntp)
            .filter(|l| l.starts_with("server ") || l.starts_with("pool "))
            .map(str::to_string)
            .collect();
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn chrony_sources_across_dirs_and_timesyncd() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(
            r,
            "etc/chrony/chrony.conf",
            "confdir /etc/chrony/conf.d\npool 2.debian.pool.ntp.org iburst\nsourcedir /etc/chrony/sources.d\nuser _chrony\n",
        );
        write(
            r,
            "etc/chrony/sources.d/site.sources",
            "server time.example.internal iburst\n",
        );
        write(
            r,
            "etc/chrony/conf.d/loop.conf",
            "include /etc/chrony/chrony.conf\n",
        );
        write(
            r,
            "etc/systemd/timesyncd.conf",
            "[Time]\nNTP=time.example.internal\nFallbackNTP=\n",
        );
        let t = collect(&FactSource::fixture(r)).unwrap();
        assert_eq!(
            t.chrony_sources,
            [
                "pool 2.debian.pool.ntp.org iburst",
                "server time.example.internal iburst"
            ]
        );
        assert_eq!(t.chrony_user, "_chrony");
        assert_eq!(t.timesyncd["NTP"], "time.example.internal");
        assert!(t.ntp_sources.is_empty());

        let rhel = tempfile::tempdir().unwrap();
        write(rhel.path(), "etc/chrony.conf", "server 198.18.0.1\n");
        write(
            rhel.path(),
            "etc/sysconfig/chronyd",
            "OPTIONS=\"-F 2 -u chrony\"\n",
        );
        let t = collect(&FactSource::fixture(rhel.path())).unwrap();
        assert_eq!(t.chrony_sources, ["server 198.18.0.1"]);
        assert_eq!(t.chrony_user, "chrony");
    }
}
