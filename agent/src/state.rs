//! The agent's state dir: its private key (mode 0600, never leaves the host), its certificate,
//! the pinned CA, and `agent.json` (id, coordinator address, labels from enrolment).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("this agent is not enrolled ({path} is missing); run `rampart-agent enroll` first")]
    NotEnrolled { path: PathBuf },
    #[error(
        "already enrolled as {agent_id} in {dir}; pass --force to enrol again (the old identity is discarded)"
    )]
    AlreadyEnrolled { agent_id: String, dir: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is damaged ({reason}); enrol again with --force")]
    Corrupt { path: PathBuf, reason: String },
}

/// `agent.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// Assigned by the coordinator; the certificate's common name.
    pub agent_id: String,
    /// Where the agent enrolled; sessions dial it unless the config names another address.
    pub coordinator: String,
    /// Labels recorded at enrolment.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Everything the agent needs to open a session.
#[derive(Clone)]
pub struct Enrolment {
    pub identity: Identity,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Enrolment")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A renewed key and certificate, before they replace `key.pem` and `cert.pem`.
const KEY_NEXT: &str = "key.next.pem";
const CERT_NEXT: &str = "cert.next.pem";

/// Paths inside the state dir.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StateError + 'a {
    move |source| StateError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), StateError> {
    write_durably(path, contents, mode).map_err(io("write", path))
}

/// Writes beside, fsyncs, renames over `path`, then fsyncs the folder: a crash leaves either the
/// old file or the new one, never half of one (keys, the fault journal, remediation backups).
pub(crate) fn write_durably(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn identity_path(&self) -> PathBuf {
        self.dir.join("agent.json")
    }

    /// The enrolled identity, if any.
    pub fn identity(&self) -> Result<Option<Identity>, StateError> {
        let path = self.identity_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| StateError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Io {
                action: "read",
                path,
                source: e,
            }),
        }
    }

    /// Saves a renewed key and certificate. Both are written beside the current ones first; the
    /// certificate's `.next` file is the marker that the pair is complete, and promotion renames
    /// the key, then the certificate. A crash at any point leaves either the old pair or a
    /// complete new pair that the next `load` finishes promoting (the coordinator accepts both
    /// until it sees the new one).
    pub fn save_renewed(&self, key_pem: &str, cert_pem: &str) -> Result<(), StateError> {
        write_file(&self.dir.join(KEY_NEXT), key_pem.as_bytes(), 0o600)?;
        write_file(&self.dir.join(CERT_NEXT), cert_pem.as_bytes(), 0o644)?;
        self.promote_renewed()
    }

    /// Finishes a renewal that `save_renewed` started (see there).
    fn promote_renewed(&self) -> Result<(), StateError> {
        let cert_next = self.dir.join(CERT_NEXT);
        if !cert_next.exists() {
            return Ok(());
        }
        let key_next = self.dir.join(KEY_NEXT);
        if key_next.exists() {
            let key = self.dir.join("key.pem");
            std::fs::rename(&key_next, &key).map_err(io("rename", &key_next))?;
        }
        let cert = self.dir.join("cert.pem");
        std::fs::rename(&cert_next, &cert).map_err(io("rename", &cert_next))?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", &self.dir))
    }

    /// Loads the enrolment, or says that there is none.
    pub fn load(&self) -> Result<Enrolment, StateError> {
        self.promote_renewed()?;
        let identity = self.identity()?.ok_or_else(|| StateError::NotEnrolled {
            path: self.identity_path(),
        })?;
        let read = |name: &str| {
            let p = self.dir.join(name);
            std::fs::read_to_string(&p).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => StateError::NotEnrolled { path: p.clone() },
                _ => StateError::Io {
                    action: "read",
                    path: p.clone(),
                    source,
                },
            })
        };
        Ok(Enrolment {
            identity,
            cert_pem: read("cert.pem")?,
            key_pem: read("key.pem")?,
            ca_pem: read("ca.pem")?,
        })
    }

    /// Writes a new enrolment; the key file is readable by the agent's user only.
    pub fn save(&self, e: &Enrolment) -> Result<(), StateError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io("create", &self.dir))?;
        write_file(&self.dir.join("key.pem"), e.key_pem.as_bytes(), 0o600)?;
        write_file(&self.dir.join("cert.pem"), e.cert_pem.as_bytes(), 0o644)?;
        write_file(&self.dir.join("ca.pem"), e.ca_pem.as_bytes(), 0o644)?;
        let json = serde_json::to_string_pretty(&e.identity).unwrap_or_default();
        // agent.json last: its presence means the enrolment is complete.
        write_file(&self.identity_path(), json.as_bytes(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("s"));
        assert!(matches!(state.load(), Err(StateError::NotEnrolled { .. })));
        let e = Enrolment {
            identity: Identity {
                agent_id: "agent-1".into(),
                coordinator: "https://c:7443".into(),
                labels: Default::default(),
            },
            cert_pem: "C".into(),
            key_pem: "K".into(),
            ca_pem: "A".into(),
        };
        state.save(&e).unwrap();
        let back = state.load().unwrap();
        assert_eq!(back.identity, e.identity);
        assert_eq!(back.key_pem, "K");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("s/key.pem"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(!format!("{back:?}").contains('K'));
    }

    #[test]
    fn a_renewal_cut_off_between_its_renames_is_finished_at_the_next_load() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let e = Enrolment {
            identity: Identity {
                agent_id: "agent-1".into(),
                coordinator: "https://c:7443".into(),
                labels: Default::default(),
            },
            cert_pem: "C1".into(),
            key_pem: "K1".into(),
            ca_pem: "A".into(),
        };
        state.save(&e).unwrap();
        state.save_renewed("K2", "C2").unwrap();
        let back = state.load().unwrap();
        assert_eq!(
            (back.key_pem.as_str(), back.cert_pem.as_str()),
            ("K2", "C2")
        );
        // Crash after the key was renamed but before the certificate was.
        write_file(&dir.path().join(CERT_NEXT), b"C3", 0o644).unwrap();
        write_file(&dir.path().join("key.pem"), b"K3", 0o600).unwrap();
        let back = state.load().unwrap();
        assert_eq!(
            (back.key_pem.as_str(), back.cert_pem.as_str()),
            ("K3", "C3")
        );
        // A key written without its certificate (crash before the marker) is ignored.
        write_file(&dir.path().join(KEY_NEXT), b"K4", 0o600).unwrap();
        let back = state.load().unwrap();
        assert_eq!(
            (back.key_pem.as_str(), back.cert_pem.as_str()),
            ("K3", "C3")
        );
    }
}
