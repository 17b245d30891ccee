//! Installed packages: dpkg's status file, and rpm's database through `rpm -qa` on a real host.

use rampart_proto::v1::Package;

use super::{CollectResult, FactSource, io_err};

/// Parses dpkg's status file; only packages whose status is "install ok installed".
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut installed) = ("", "", "", false);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = v.trim();
            } else if let Some(v) = line.strip_prefix("Version: ") {
                version = v.trim();
            } else if let Some(v) = line.strip_prefix("Architecture: ") {
                arch = v.trim();
            } else if let Some(v) = line.strip_prefix("Status: ") {
                installed = v.trim() == "install ok installed";
            }
        }
        if installed && !name.is_empty() {
            out.push(Package {
                name: name.into(),
                version: version.into(),
                arch: arch.into(),
                source: "dpkg".into(),
            });
        }
    }
    out
}

pub fn collect(src: &FactSource) -> CollectResult<Vec<Package>> {
    let mut packages = match src
        .read_optional("/var/lib/dpkg/status")
        .map_err(io_err("/var/lib/dpkg/status"))?
    {
        Some(text) => parse_dpkg_status(&text),
        None => Vec::new(),
    };
    if src.commands_allowed() && src.path("/var/lib/rpm").is_ok_and(|p| p.is_dir()) {
        let out = std::process::Command::new("rpm")
            .args(["-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"])
            .output()
            .map_err(|e| format!("rpm -qa: {e}"))?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut f = line.split('\t');
            if let (Some(n), Some(v), Some(a)) = (f.next(), f.next(), f.next()) {
                packages.push(Package {
                    name: n.into(),
                    version: v.into(),
                    arch: a.into(),
                    source: "rpm".into(),
                });
            }
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages_count() {
        let status = "Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:9.2p1-2\n\nPackage: telnetd\nStatus: deinstall ok config-files\nVersion: 0.17\n\nPackage: auditd\nStatus: install ok installed\nVersion: 1:3.0.9-1\nArchitecture: amd64\n";
        let p = parse_dpkg_status(status);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["openssh-server", "auditd"]);
        assert_eq!(p[0].version, "1:9.2p1-2");
    }
}
