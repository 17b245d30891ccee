//! Installed packages: dpkg's status file, and rpm's database through `rpm --dbpath DB -qa` (on
//! the real host, or on a fact root's own database).

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

/// Where rpm keeps its database below the root: newer releases in /usr/lib/sysimage/rpm (with
/// /var/lib/rpm a link to it), RHEL 9 and its rebuilds in /var/lib/rpm.
const RPMDB_DIRS: [&str; 2] = ["/usr/lib/sysimage/rpm", "/var/lib/rpm"];

/// Files that make a folder an rpm database (SQLite since rpm 4.16, Berkeley DB before).
const RPMDB_FILES: [&str; 2] = ["rpmdb.sqlite", "Packages"];

pub fn collect(src: &FactSource) -> CollectResult<Vec<Package>> {
    let mut packages = match src
        .read_optional("/var/lib/dpkg/status")
        .map_err(io_err("/var/lib/dpkg/status"))?
    {
        Some(text) => parse_dpkg_status(&text),
        None => Vec::new(),
    };
    if let Some(db) = rpm_database(src) {
        packages.extend(query_rpm(&db)?);
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

/// The rpm database below the root, resolved inside it, when there is one and `rpm` may read it:
/// on the real root only where host commands may run; a mounted host or fixture tree's database
/// is read with `--dbpath` (the tree's files, nothing of the machine running the agent).
fn rpm_database(src: &FactSource) -> Option<std::path::PathBuf> {
    if !src.tree_tools_allowed() {
        return None;
    }
    RPMDB_DIRS
        .iter()
        .filter_map(|d| src.path(d).ok())
        .find(|p| RPMDB_FILES.iter().any(|f| p.join(f).is_file()))
}

/// Lists the packages of the rpm database in `db` with `rpm -qa`.
fn query_rpm(db: &std::path::Path) -> CollectResult<Vec<Package>> {
    let out = std::process::Command::new("rpm")
        .arg("--dbpath")
        .arg(db)
        .args(["-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"])
        .output()
        .map_err(|e| {
            format!(
                "an rpm database is at {} but `rpm` could not run to read it: {e}",
                db.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "rpm -qa on {} failed: {}",
            db.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_rpm_query(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `rpm -qa` lines of `name<TAB>version-release<TAB>arch`.
pub fn parse_rpm_query(text: &str) -> Vec<Package> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            match (f.next(), f.next(), f.next()) {
                (Some(n), Some(v), Some(a)) if !n.is_empty() => Some(Package {
                    name: n.into(),
                    version: v.into(),
                    arch: a.into(),
                    source: "rpm".into(),
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_query_lines_become_packages() {
        let p =
            parse_rpm_query("openssh-server\t8.7p1-38.el9\tx86_64\nbroken line\n\tno-name\tx\n");
        assert_eq!(p.len(), 1);
        assert_eq!(
            (
                p[0].name.as_str(),
                p[0].version.as_str(),
                p[0].arch.as_str()
            ),
            ("openssh-server", "8.7p1-38.el9", "x86_64")
        );
        assert_eq!(p[0].source, "rpm");
    }

    /// A fixture tree's own rpm database is read (with `rpm --dbpath`), and reading it leaves the
    /// tree as it was. Needs Debian's `rpm` package, which CI installs.
    #[test]
    fn a_fixture_trees_rpm_database_is_read() {
        let tree = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/hosts/rhel-9-hardened");
        let before: Vec<_> = std::fs::read_dir(tree.join("var/lib/rpm"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        let packages = collect(&FactSource::fixture(&tree))
            .expect("rpm must be installed to read the RHEL fixtures (apt install rpm)");
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert!(
            names.contains(&"openssh-server") && names.contains(&"aide"),
            "{names:?}"
        );
        assert!(packages.iter().all(|p| p.source == "rpm"));
        let after: Vec<_> = std::fs::read_dir(tree.join("var/lib/rpm"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(before, after, "reading the database changed the tree");
    }

    #[test]
    fn only_installed_packages_count() {
        let status = "Package: openssh-server\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:9.2p1-2\n\nPackage: telnetd\nStatus: deinstall ok config-files\nVersion: 0.17\n\nPackage: auditd\nStatus: install ok installed\nVersion: 1:3.0.9-1\nArchitecture: amd64\n";
        let p = parse_dpkg_status(status);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["openssh-server", "auditd"]);
        assert_eq!(p[0].version, "1:9.2p1-2");
    }
}
