//! The coordinator's config file (TOML). Every field can also be given on the command line, which
//! wins. Errors are all reported at once, with file and line.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rampart_common::config::{self, ConfigErrors};
use rampart_common::logging::LogFormat;

use crate::api::enroll_guard::EnrollLimits;

/// Agent certificates shorter than this could expire before a renewal round trip completes.
const MIN_CERT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(10);
/// Longer-lived agent certificates would make a stolen key useful for too long.
const MAX_CERT_LIFETIME: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// Default listen address: every interface, on Rampart's port (agents dial in from the fleet).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7443";

/// What the config file may set; `None` where it is silent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    /// Where the CA, the database and the initial admin token live.
    pub data_dir: Option<PathBuf>,
    /// Address the gRPC server binds.
    pub listen: Option<SocketAddr>,
    /// Extra DNS names or IP addresses the server certificate must name (load balancers, NAT).
    pub server_names: Vec<String>,
    /// Log line format.
    pub log_format: Option<LogFormat>,
    /// Folder of extra policy packs.
    pub packs_dir: Option<PathBuf>,
    /// Enrolment attempts allowed per minute, per source address and overall.
    pub enroll_limits: EnrollLimits,
    /// Lifetime of agent certificates (default 30 days; agents renew at two thirds).
    pub agent_cert_lifetime: Option<std::time::Duration>,
    /// Where to serve `/metrics` for Prometheus (plain HTTP); off when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// Agent label whose values group the compliance score metric (e.g. `env`).
    pub metrics_group_label: Option<String>,
    /// Where to serve the web console (HTTPS); off when absent.
    pub web_listen: Option<SocketAddr>,
    /// PostgreSQL to store everything in (`postgres://…`), shared by every coordinator of a
    /// deployment; absent: SQLite in the data dir. It may hold a password, so it is a Secret.
    pub database_url: Option<rampart_common::Secret>,
}

impl FileConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        config::load(path, |s| {
            let data_dir = s.string("data_dir").map(PathBuf::from);
            let listen = s.parsed("listen", "a socket address such as 0.0.0.0:7443");
            let server_names = s.string_list("server_names").unwrap_or_default();
            for name in &server_names {
                if name.parse::<std::net::IpAddr>().is_err() && !valid_dns_name(name) {
                    s.error(
                        "server_names",
                        format!("{name:?} is neither an IP address nor a DNS name"),
                    );
                }
            }
            let log_format = s.parsed("log_format", "text or json");
            let packs_dir = s.string("packs_dir").map(PathBuf::from);
            let mut enroll_limits = EnrollLimits::default();
            for (key, field) in [
                (
                    "enroll_per_source_per_minute",
                    &mut enroll_limits.per_source_per_minute,
                ),
                ("enroll_per_minute", &mut enroll_limits.total_per_minute),
            ] {
                match s.u64(key) {
                    Some(n) if (1..=1_000_000).contains(&n) => *field = n as u32,
                    Some(_) => s.error(key, "must be from 1 to 1000000"),
                    None => {}
                }
            }
            let agent_cert_lifetime = s.duration("agent_cert_lifetime");
            if let Some(d) = agent_cert_lifetime
                && !(MIN_CERT_LIFETIME..=MAX_CERT_LIFETIME).contains(&d)
            {
                s.error(
                    "agent_cert_lifetime",
                    "must be from 10s (renewal needs time) to 365d",
                );
            }
            let metrics_listen =
                s.parsed("metrics_listen", "a socket address such as 127.0.0.1:9477");
            let metrics_group_label = s.string("metrics_group_label");
            if let Some(l) = &metrics_group_label
                && rampart_common::labels::validate(l, "x").is_err()
            {
                s.error("metrics_group_label", format!("{l:?} is not a label key"));
            }
            let web_listen = s.parsed("web_listen", "a socket address such as 0.0.0.0:7444");
            let database_url = s.string("database_url");
            if let Some(url) = &database_url
                && let Err(e) = check_database_url(url)
            {
                s.error("database_url", e);
            }
            FileConfig {
                database_url: database_url.map(rampart_common::Secret::new),
                web_listen,
                metrics_listen,
                metrics_group_label,
                agent_cert_lifetime,
                enroll_limits,
                data_dir,
                listen,
                server_names,
                log_format,
                packs_dir,
            }
        })
    }
}

/// Checks that a database URL is one Rampart can use: `postgres://` or `postgresql://`.
pub fn check_database_url(url: &str) -> Result<(), String> {
    let redacted = crate::store::redact_url(url);
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "postgres" | "postgresql") => Ok(()),
        Ok(u) => Err(format!(
            "{redacted}: unsupported scheme {:?}; Rampart stores in PostgreSQL (postgres://user:password@host/database) or, without a database_url, in SQLite in the data dir",
            u.scheme()
        )),
        Err(e) => Err(format!(
            "{redacted} is not a URL ({e}); expected postgres://user:password@host/database"
        )),
    }
}

/// A permissive DNS name check: labels of letters, digits and '-', separated by dots.
pub fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_example_and_reports_all_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "data_dir = \"/var/lib/rampart\"\nlisten = \"127.0.0.1:7443\"\nserver_names = [\"rampart.example.com\", \"10.0.0.5\"]\nlog_format = \"json\"\n").unwrap();
        let c = FileConfig::load(&good).unwrap();
        assert_eq!(c.listen.unwrap().port(), 7443);
        assert_eq!(c.log_format, Some(LogFormat::Json));

        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "listen = \"here\"\nserver_names = [\"bad name!\"]\nlog_format = \"xml\"\nport = 1\n",
        )
        .unwrap();
        let errs = FileConfig::load(&bad).unwrap_err();
        let lines: Vec<usize> = errs.0.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 2, 3, 4], "{errs}");
    }

    /// A PostgreSQL URL is taken as a secret; any other scheme is refused at its line, and the
    /// message never shows the password.
    #[test]
    fn database_url_must_be_postgres_and_its_password_stays_hidden() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        let url = "postgres://rampart:s3cret@db.example.com/rampart";
        std::fs::write(&good, format!("database_url = \"{url}\"\n")).unwrap();
        let c = FileConfig::load(&good).unwrap();
        assert_eq!(c.database_url.as_ref().map(|s| s.expose()), Some(url));
        assert!(!format!("{c:?}").contains("s3cret"));

        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "log_format = \"text\"\ndatabase_url = \"mysql://root:s3cret@db/x\"\n",
        )
        .unwrap();
        let errs = FileConfig::load(&bad).unwrap_err();
        let text = errs.to_string();
        assert_eq!(errs.0.len(), 1, "{text}");
        assert_eq!(errs.0[0].line, 2, "{text}");
        assert!(text.contains("unsupported scheme \"mysql\""), "{text}");
        assert!(!text.contains("s3cret") && text.contains("***"), "{text}");
    }

    #[test]
    fn example_config_in_deploy_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/coordinator.toml");
        FileConfig::load(&path).unwrap();
    }
}
