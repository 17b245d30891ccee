//! Remediation: the allow-listed changes the agent makes to bring a host back into compliance
//! (sysctl, sshd option, file mode and owner, kernel module, systemd unit). Nothing else can be
//! asked for: actions are typed messages, and every parameter is checked before anything is read.
//!
//! A dry run only reads and describes. Applying first writes what it is about to change to a
//! backup manifest under the state dir (fsync), then changes it; a failed step undoes the steps
//! before it. `rollback` restores a run from its manifest. Everything happens below the fact root,
//! so fixture trees can be remediated in tests; commands (`sshd -t`, reloads, `modprobe -r`,
//! `systemctl`) run only on the live host (fact root `/`, host commands allowed).
//!
//! Must not touch: anything outside the fact root, or paths reached through symbolic links.

mod backup;
mod files;
mod modules;
mod sshd;
mod sysctl;
mod units;

use std::path::{Component, Path, PathBuf};

use rampart_proto::v1::{RemediationAction, RemediationOutcome, remediation_action};

use crate::facts::FactSource;
use backup::Manifest;

#[derive(Debug, thiserror::Error)]
pub enum RemediateError {
    #[error("remediation is disabled by this agent's config (remediation = false)")]
    Disabled,
    #[error("refused: {0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
    #[error("step failed: {step}; changes made before it were undone")]
    Failed { step: String },
    #[error("no backups of run {0} on this host")]
    NoRun(String),
}

fn invalid(msg: impl Into<String>) -> RemediateError {
    RemediateError::Invalid(msg.into())
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> RemediateError {
    move |e| RemediateError::Io(format!("{what}: {e}"))
}

/// One concrete change. Paths are as on the host; they are resolved below the fact root.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Replaces a file's content (created with `mode` if missing), atomically.
    Write {
        path: String,
        content: String,
        mode: u32,
    },
    /// Writes a value into an existing file (a kernel parameter): never created.
    Live {
        path: String,
        value: String,
    },
    Chmod {
        path: String,
        mode: u32,
    },
    Chown {
        path: String,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    /// Removes a symbolic link (a unit's enablement link).
    Unlink {
        path: String,
    },
    /// A command of the live host; `undo` runs after a rollback restored the files.
    Run {
        argv: Vec<String>,
        undo: Option<Vec<String>>,
    },
}

/// A planned change and how it reads to an operator; `step` is `None` for a note (something that
/// stays as it is, and why).
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    step: Option<Step>,
    describe: String,
}

impl Planned {
    fn change(step: Step, describe: impl Into<String>) -> Self {
        Self {
            step: Some(step),
            describe: describe.into(),
        }
    }

    fn note(describe: impl Into<String>) -> Self {
        Self {
            step: None,
            describe: describe.into(),
        }
    }
}

/// What actions see of the host.
pub(crate) struct Host<'a> {
    src: &'a FactSource,
    /// Whether host commands may run (real root, commands allowed).
    live: bool,
}

impl Host<'_> {
    /// `path` (absolute, as on the host) below the fact root, refusing `..`. Links in its folders
    /// are resolved inside the root (an absolute link means that path under the root, as
    /// `openat2(RESOLVE_IN_ROOT)` does), so nothing outside the root is ever reached; a link in
    /// the last component is kept as it is (actions refuse to write through links).
    fn resolve(&self, path: &str) -> Result<PathBuf, RemediateError> {
        let p = Path::new(path);
        if !p.is_absolute()
            || p.components()
                .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
        {
            return Err(invalid(format!("{path:?} is not a plain absolute path")));
        }
        self.src.path_nofollow(p).map_err(io(path))
    }

    fn read_optional(&self, path: &str) -> Result<Option<String>, RemediateError> {
        let full = self.resolve(path)?;
        match std::fs::read_to_string(&full) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path)(e)),
        }
    }

    fn exists(&self, path: &str) -> Result<bool, RemediateError> {
        Ok(self.resolve(path)?.symlink_metadata().is_ok())
    }
}

/// Checks a name against an allow-list of characters.
fn check_name(what: &str, value: &str, extra: &str) -> Result<(), RemediateError> {
    if value.is_empty()
        || value.len() > 128
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
    {
        return Err(invalid(format!("{what} {value:?} is not a valid name")));
    }
    Ok(())
}

/// Plans an action.
fn plan(host: &Host, action: &RemediationAction) -> Result<Vec<Planned>, RemediateError> {
    use remediation_action::Action;
    match action.action.as_ref() {
        Some(Action::Sysctl(a)) => sysctl::plan(host, a),
        Some(Action::SshdOption(a)) => sshd::plan(host, a),
        Some(Action::FileMode(a)) => files::plan(host, a),
        Some(Action::KernelModule(a)) => modules::plan(host, a),
        Some(Action::UnitDisable(a)) => units::plan(host, a),
        None => Err(invalid(
            "unknown remediation action: this agent may be older than the coordinator",
        )),
    }
}

/// The agent's remediation front door.
#[derive(Debug, Clone)]
pub struct Remediator {
    pub source: FactSource,
    /// Backups live in `<state_dir>/remediation/<run id>/`.
    pub state_dir: PathBuf,
    /// False when the agent's config forbids remediation.
    pub enabled: bool,
}

impl Remediator {
    fn host(&self) -> Host<'_> {
        Host {
            src: &self.source,
            live: self.source.commands_allowed(),
        }
    }

    fn run_dir(&self, run_id: &str) -> Result<PathBuf, RemediateError> {
        check_name("run id", run_id, "-_")?;
        Ok(self.state_dir.join("remediation").join(run_id))
    }

    /// Plans (`apply` false) or applies one rule's action.
    pub fn remediate(
        &self,
        run_id: &str,
        rule: &str,
        action: &RemediationAction,
        apply: bool,
    ) -> Result<RemediationOutcome, RemediateError> {
        if !self.enabled {
            return Err(RemediateError::Disabled);
        }
        let dir = self.run_dir(run_id)?;
        let host = self.host();
        let planned = plan(&host, action)?;
        let mut changes: Vec<String> = planned.iter().map(|p| p.describe.clone()).collect();
        let steps = planned.iter().filter(|p| p.step.is_some()).count();
        if steps == 0 && changes.is_empty() {
            changes.push("nothing to change".into());
        }
        if !apply || steps == 0 {
            return Ok(RemediationOutcome {
                changes,
                applied: false,
            });
        }
        if dir.join(backup::MANIFEST).exists() {
            return Err(invalid(format!(
                "run {run_id} was already applied on this host"
            )));
        }
        apply_steps(&host, &dir, run_id, rule, &planned)?;
        tracing::info!(run = run_id, rule, changes = steps, "remediation applied");
        Ok(RemediationOutcome {
            changes,
            applied: true,
        })
    }

    /// Restores what run `run_id` changed on this host.
    pub fn rollback(&self, run_id: &str) -> Result<RemediationOutcome, RemediateError> {
        let dir = self.run_dir(run_id)?;
        let mut manifest =
            Manifest::load(&dir)?.ok_or_else(|| RemediateError::NoRun(run_id.into()))?;
        if manifest.rolled_back {
            return Ok(RemediationOutcome {
                changes: vec![format!("run {run_id} was already rolled back")],
                applied: false,
            });
        }
        let host = self.host();
        let changes = manifest.restore(&host)?;
        tracing::info!(
            run = run_id,
            restored = changes.len(),
            "remediation rolled back"
        );
        Ok(RemediationOutcome {
            changes,
            applied: true,
        })
    }
}

/// Backs up and carries out each planned step; a failure undoes the steps before it.
fn apply_steps(
    host: &Host,
    dir: &Path,
    run_id: &str,
    rule: &str,
    planned: &[Planned],
) -> Result<(), RemediateError> {
    let mut manifest = Manifest::create(dir, run_id, rule)?;
    for p in planned {
        let Some(step) = &p.step else { continue };
        let done = manifest
            .record(host, step)
            .map_err(|e| e.to_string())
            .and_then(|()| backup::execute(host, step));
        if let Err(e) = done {
            tracing::warn!(run = run_id, step = %p.describe, error = %e, "remediation step failed; undoing");
            if let Err(u) = manifest.restore(host) {
                return Err(RemediateError::Io(format!(
                    "step failed: {} ({e}), and undoing the earlier steps failed too: {u}",
                    p.describe
                )));
            }
            return Err(RemediateError::Failed {
                step: format!("{} ({e})", p.describe),
            });
        }
    }
    Ok(())
}

/// Sets `key<sep>value` in a config text: replaces the first line for `key` (matched as
/// `match_key` says), comments out later ones, or appends. Returns the new text.
fn set_line(text: &str, key: &str, line: &str, same_key: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    let mut done = false;
    for l in text.lines() {
        let t = l.trim_start();
        if !t.starts_with('#') && same_key(t) {
            if !done {
                out.push_str(line);
                done = true;
            } else {
                out.push_str(&format!("# {l} (superseded by rampart: {key})"));
            }
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    if !done {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests;
