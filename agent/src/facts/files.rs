//! Metadata of files that policies ask about: mode, owner, group, size, and the sha256 of small
//! files. Symlinks are described, not followed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use rampart_proto::v1::{Account, FileMeta, Group};
use sha2::{Digest, Sha256};

use super::{CollectResult, FactSource, group_name, owner_name};

/// Files up to this size get a content hash.
const HASH_LIMIT: u64 = 1024 * 1024;
/// Paths every report includes: what the baseline policies check.
pub const DEFAULT_PATHS: [&str; 29] = [
    "/etc/passwd",
    "/etc/passwd-",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/group",
    "/etc/group-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/shells",
    "/etc/security/opasswd",
    "/etc/motd",
    "/etc/issue",
    "/etc/issue.net",
    "/etc/ssh/sshd_config",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_rsa_key.pub",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ecdsa_key.pub",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssh/ssh_host_ed25519_key.pub",
    "/etc/crontab",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/etc/cron.d",
    "/etc/sysctl.conf",
    "/etc/modprobe.d",
    "/etc/sudoers",
];
/// Upper bound on paths per request, so a request cannot make the agent hash the disk.
const MAX_PATHS: usize = 512;

pub fn collect(
    src: &FactSource,
    extra: &[String],
    accounts: &[Account],
    groups: &[Group],
) -> CollectResult<Vec<FileMeta>> {
    if extra.len() > MAX_PATHS {
        return Err(format!(
            "at most {MAX_PATHS} file paths per request, got {}",
            extra.len()
        ));
    }
    let mut paths: Vec<String> = DEFAULT_PATHS.iter().map(|s| s.to_string()).collect();
    for p in extra {
        if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
            return Err(format!(
                "file path {p:?} must be absolute and must not contain '..'"
            ));
        }
        if !paths.contains(p) {
            paths.push(p.clone());
        }
    }
    Ok(paths
        .into_iter()
        .map(|path| {
            let full = src.path_nofollow(&path);
            let Ok(md) = full.and_then(std::fs::symlink_metadata) else {
                return FileMeta {
                    path,
                    exists: false,
                    ..Default::default()
                };
            };
            let kind = if md.is_file() {
                "file"
            } else if md.is_dir() {
                "dir"
            } else if md.file_type().is_symlink() {
                "symlink"
            } else {
                "other"
            };
            let sha256 = if md.is_file() && md.len() <= HASH_LIMIT {
                src.read_bytes(&path)
                    .map(|b| hex::encode(Sha256::digest(&b)))
                    .unwrap_or_default()
            } else {
                String::new()
            };
            FileMeta {
                path,
                exists: true,
                mode: md.permissions().mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                owner: owner_name(accounts, md.uid()),
                group: group_name(groups, md.gid()),
                size: md.len(),
                sha256,
                kind: kind.into(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn metadata_below_the_root() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "etc/shadow", "root:*:1::::::\n");
        std::fs::set_permissions(
            dir.path().join("etc/shadow"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        let f = collect(
            &FactSource::fixture(dir.path()),
            &["/etc/custom".into()],
            &[],
            &[],
        )
        .unwrap();
        let shadow = f.iter().find(|m| m.path == "/etc/shadow").unwrap();
        assert!(shadow.exists);
        assert_eq!(shadow.mode, 0o640);
        assert_eq!(shadow.kind, "file");
        assert_eq!(
            shadow.sha256,
            hex::encode(Sha256::digest(b"root:*:1::::::\n"))
        );
        assert!(!f.iter().find(|m| m.path == "/etc/passwd").unwrap().exists);
        assert!(f.iter().any(|m| m.path == "/etc/custom"));
        assert!(
            collect(
                &FactSource::fixture(dir.path()),
                &["/etc/../root".into()],
                &[],
                &[]
            )
            .is_err()
        );
    }
}
