//! OS release, kernel, architecture, hostname, uptime.

use rampart_proto::v1::OsFacts;

use super::{CollectResult, FactSource, io_err};

/// Parses `KEY=value` / `KEY="value"` lines (os-release format).
pub fn parse_os_release(text: &str) -> std::collections::HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.trim().trim_matches('"').trim_matches('\'').to_string(),
            )
        })
        .collect()
}

pub fn collect(src: &FactSource) -> CollectResult<OsFacts> {
    let release = match src
        .read_optional("/etc/os-release")
        .map_err(io_err("/etc/os-release"))?
    {
        Some(t) => Some(t),
        None => src
            .read_optional("/usr/lib/os-release")
            .map_err(io_err("/usr/lib/os-release"))?,
    };
    let rel = release.as_deref().map(parse_os_release).unwrap_or_default();
    let first_line = |p: &str| {
        src.read_optional(p)
            .ok()
            .flatten()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let kernel = first_line("/proc/sys/kernel/osrelease").unwrap_or_default();
    let arch = first_line("/proc/sys/kernel/arch")
        .or_else(|| {
            src.commands_allowed()
                .then(|| {
                    nix::sys::utsname::uname()
                        .ok()
                        .map(|u| u.machine().to_string_lossy().into_owned())
                })
                .flatten()
        })
        .unwrap_or_default();
    let hostname = first_line("/etc/hostname")
        .or_else(|| first_line("/proc/sys/kernel/hostname"))
        .unwrap_or_default();
    let uptime_seconds = first_line("/proc/uptime")
        .and_then(|u| {
            u.split_whitespace()
                .next()
                .and_then(|s| s.parse::<f64>().ok())
        })
        .map(|s| s as u64)
        .unwrap_or(0);
    Ok(OsFacts {
        id: rel.get("ID").cloned().unwrap_or_default(),
        version_id: rel.get("VERSION_ID").cloned().unwrap_or_default(),
        pretty_name: rel.get("PRETTY_NAME").cloned().unwrap_or_default(),
        kernel,
        arch,
        hostname,
        uptime_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn reads_the_fixture_only() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/os-release",
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        write(dir.path(), "proc/sys/kernel/osrelease", "6.1.0-13-amd64\n");
        write(dir.path(), "etc/hostname", "web-1\n");
        write(dir.path(), "proc/uptime", "12345.67 2000.00\n");
        let os = collect(&FactSource::fixture(dir.path())).unwrap();
        assert_eq!((os.id.as_str(), os.version_id.as_str()), ("debian", "12"));
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os.kernel, "6.1.0-13-amd64");
        assert_eq!(os.hostname, "web-1");
        assert_eq!(os.uptime_seconds, 12345);
        // No arch file in the fixture and no host commands: unknown, not the real host's.
        assert_eq!(os.arch, "");
    }
}
