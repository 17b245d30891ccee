//! Backups of what a run changes, and how steps are carried out and undone. The manifest is
//! written (and fsynced) before each step, so a crash mid-run still leaves a complete record of
//! everything that may have changed.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Host, RemediateError, Step, io};

pub const MANIFEST: &str = "manifest.json";

/// The state of one thing before a step changed it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Entry {
    /// A file's content and attributes (`copy` names the saved content in the run's folder).
    File {
        path: String,
        existed: bool,
        copy: Option<String>,
        mode: u32,
        uid: u32,
        gid: u32,
        /// A kernel parameter: only the value is restored.
        live: bool,
    },
    Mode {
        path: String,
        mode: u32,
    },
    Owner {
        path: String,
        uid: u32,
        gid: u32,
    },
    Link {
        path: String,
        target: String,
    },
    /// A command that ran; `undo` runs after the files are restored.
    Run {
        argv: Vec<String>,
        undo: Option<Vec<String>>,
    },
}

/// A run's backups on this host.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub rule: String,
    pub created_unix_ms: i64,
    pub rolled_back: bool,
    entries: Vec<Entry>,
    #[serde(skip)]
    dir: PathBuf,
}

/// Backups may hold copies of secrets (sshd_config, shadow): owner-only.
fn sync_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::state::write_durably(path, bytes, 0o600)
}

fn run_command(argv: &[String]) -> Result<(), String> {
    let (cmd, args) = argv.split_first().ok_or("empty command")?;
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Manifest {
    pub fn create(dir: &Path, run_id: &str, rule: &str) -> Result<Self, RemediateError> {
        std::fs::create_dir_all(dir).map_err(io(dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(dir.display()))?;
        let m = Self {
            run_id: run_id.into(),
            rule: rule.into(),
            created_unix_ms: rampart_common::time::now_ms(),
            rolled_back: false,
            entries: Vec::new(),
            dir: dir.to_path_buf(),
        };
        m.save()?;
        Ok(m)
    }

    pub fn load(dir: &Path) -> Result<Option<Self>, RemediateError> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path.display())(e)),
        };
        let mut m: Self = serde_json::from_slice(&text).map_err(|e| {
            RemediateError::Io(format!(
                "backup manifest {} is unreadable: {e}",
                path.display()
            ))
        })?;
        m.dir = dir.to_path_buf();
        Ok(Some(m))
    }

    fn save(&self) -> Result<(), RemediateError> {
        let bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        let path = self.dir.join(MANIFEST);
        sync_write(&path, &bytes).map_err(io(path.display()))
    }

    /// Records the state `step` is about to change, durably.
    pub fn record(&mut self, host: &Host, step: &Step) -> Result<(), RemediateError> {
        let entry = match step {
            Step::Write { path, .. } | Step::Live { path, .. } => {
                let full = host.resolve(path)?;
                let live = matches!(step, Step::Live { .. });
                match std::fs::symlink_metadata(&full) {
                    Ok(meta) => {
                        let copy = format!("{}.orig", self.entries.len());
                        let content = std::fs::read(&full).map_err(io(path))?;
                        sync_write(&self.dir.join(&copy), &content).map_err(io(&copy))?;
                        Entry::File {
                            path: path.clone(),
                            existed: true,
                            copy: Some(copy),
                            mode: meta.mode() & 0o7777,
                            uid: meta.uid(),
                            gid: meta.gid(),
                            live,
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !live => Entry::File {
                        path: path.clone(),
                        existed: false,
                        copy: None,
                        mode: 0,
                        uid: 0,
                        gid: 0,
                        live,
                    },
                    Err(e) => return Err(io(path)(e)),
                }
            }
            Step::Chmod { path, .. } => {
                let meta = std::fs::symlink_metadata(host.resolve(path)?).map_err(io(path))?;
                Entry::Mode {
                    path: path.clone(),
                    mode: meta.mode() & 0o7777,
                }
            }
            Step::Chown { path, .. } => {
                let meta = std::fs::symlink_metadata(host.resolve(path)?).map_err(io(path))?;
                Entry::Owner {
                    path: path.clone(),
                    uid: meta.uid(),
                    gid: meta.gid(),
                }
            }
            Step::Unlink { path } => {
                let target = std::fs::read_link(host.resolve(path)?).map_err(io(path))?;
                Entry::Link {
                    path: path.clone(),
                    target: target.to_string_lossy().into_owned(),
                }
            }
            Step::Run { argv, undo } => Entry::Run {
                argv: argv.clone(),
                undo: undo.clone(),
            },
        };
        self.entries.push(entry);
        self.save()
    }

    /// Puts back everything recorded, newest first, then runs the commands' undos; checks each
    /// file afterwards. Tries every entry even when one fails, and reports all failures.
    pub fn restore(&mut self, host: &Host) -> Result<Vec<String>, RemediateError> {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let mut undos = Vec::new();
        for entry in self.entries.iter().rev() {
            match restore_entry(host, &self.dir, entry) {
                Ok(Some(what)) => done.push(what),
                Ok(None) => {}
                Err(e) => failed.push(e),
            }
            if let Entry::Run {
                undo: Some(undo), ..
            } = entry
            {
                undos.push(undo.clone());
            }
        }
        for undo in undos {
            if !host.live {
                continue;
            }
            match run_command(&undo) {
                Ok(()) => done.push(format!("ran `{}`", undo.join(" "))),
                Err(e) => failed.push(e),
            }
        }
        if !failed.is_empty() {
            return Err(RemediateError::Io(format!(
                "could not restore everything: {}",
                failed.join("; ")
            )));
        }
        self.rolled_back = true;
        self.save()?;
        Ok(done)
    }
}

fn restore_entry(host: &Host, dir: &Path, entry: &Entry) -> Result<Option<String>, String> {
    let resolve = |p: &str| host.resolve(p).map_err(|e| e.to_string());
    match entry {
        Entry::File {
            path,
            existed: false,
            ..
        } => {
            let full = resolve(path)?;
            match std::fs::remove_file(&full) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("cannot remove {path}: {e}")),
            }
            if full.exists() {
                return Err(format!("{path} is still there after removing it"));
            }
            Ok(Some(format!("removed {path} (it did not exist before)")))
        }
        Entry::File {
            path,
            copy,
            mode,
            uid,
            gid,
            live,
            ..
        } => {
            let full = resolve(path)?;
            let saved = std::fs::read(dir.join(copy.as_deref().unwrap_or_default()))
                .map_err(|e| format!("the backup of {path} is unreadable: {e}"))?;
            if *live {
                std::fs::OpenOptions::new()
                    .write(true)
                    .truncate(true)
                    .open(&full)
                    .and_then(|mut f| f.write_all(&saved))
                    .map_err(|e| format!("cannot restore {path}: {e}"))?;
                let now = std::fs::read(&full).map_err(|e| format!("{path}: {e}"))?;
                if String::from_utf8_lossy(&now).trim() != String::from_utf8_lossy(&saved).trim() {
                    return Err(format!("{path} did not take its previous value back"));
                }
            } else {
                sync_write(&full, &saved).map_err(|e| format!("cannot restore {path}: {e}"))?;
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*mode))
                    .map_err(|e| format!("cannot restore the mode of {path}: {e}"))?;
                std::os::unix::fs::chown(&full, Some(*uid), Some(*gid))
                    .map_err(|e| format!("cannot restore the owner of {path}: {e}"))?;
                if std::fs::read(&full).ok().as_deref() != Some(&saved[..]) {
                    return Err(format!("{path} does not hold its previous content"));
                }
            }
            Ok(Some(format!("restored {path}")))
        }
        Entry::Mode { path, mode } => {
            std::fs::set_permissions(resolve(path)?, std::fs::Permissions::from_mode(*mode))
                .map_err(|e| format!("cannot restore the mode of {path}: {e}"))?;
            Ok(Some(format!("mode of {path} back to {mode:04o}")))
        }
        Entry::Owner { path, uid, gid } => {
            std::os::unix::fs::chown(resolve(path)?, Some(*uid), Some(*gid))
                .map_err(|e| format!("cannot restore the owner of {path}: {e}"))?;
            Ok(Some(format!("owner of {path} back to {uid}:{gid}")))
        }
        Entry::Link { path, target } => {
            let full = resolve(path)?;
            if std::fs::read_link(&full).is_err() {
                std::os::unix::fs::symlink(target, &full)
                    .map_err(|e| format!("cannot recreate the link {path}: {e}"))?;
            }
            Ok(Some(format!("link {path} → {target} recreated")))
        }
        Entry::Run { .. } => Ok(None),
    }
}

/// Carries out one step.
pub fn execute(host: &Host, step: &Step) -> Result<(), String> {
    let resolve = |p: &str| host.resolve(p).map_err(|e| e.to_string());
    let not_a_link = |full: &Path, path: &str| match std::fs::symlink_metadata(full) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(format!("{path} is a symbolic link; links are not followed"))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{path}: {e}")),
    };
    match step {
        Step::Write {
            path,
            content,
            mode,
        } => {
            let full = resolve(path)?;
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(|e| format!("{path}: {e}"))?;
            }
            if full.exists() {
                not_a_link(&full, path)?;
            }
            sync_write(&full, content.as_bytes())
                .map_err(|e| format!("cannot write {path}: {e}"))?;
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*mode))
                .map_err(|e| format!("{path}: {e}"))
        }
        Step::Live { path, value } => {
            let full = resolve(path)?;
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&full)
                .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()))
                .map_err(|e| format!("cannot set {path}: {e}"))
        }
        Step::Chmod { path, mode } => {
            let full = resolve(path)?;
            not_a_link(&full, path)?;
            std::fs::set_permissions(&full, std::fs::Permissions::from_mode(*mode))
                .map_err(|e| format!("chmod {path}: {e}"))
        }
        Step::Chown { path, uid, gid } => {
            let full = resolve(path)?;
            not_a_link(&full, path)?;
            std::os::unix::fs::chown(&full, *uid, *gid).map_err(|e| format!("chown {path}: {e}"))
        }
        Step::Unlink { path } => {
            let full = resolve(path)?;
            match std::fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_symlink() => {
                    std::fs::remove_file(&full).map_err(|e| format!("{path}: {e}"))
                }
                Ok(_) => Err(format!("{path} is not a symbolic link; not removed")),
                Err(e) => Err(format!("{path}: {e}")),
            }
        }
        Step::Run { argv, .. } => {
            if host.live {
                run_command(argv)
            } else {
                Err("commands run only on the live host".into())
            }
        }
    }
}
