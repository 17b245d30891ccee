//! Who may use cron and at: `/etc/cron.allow`, `/etc/cron.deny`, `/etc/at.allow`,
//! `/etc/at.deny`, with their permissions and the users they list.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use rampart_proto::v1::{AccessList, Account, Group};

use super::{CollectResult, FactSource, conf, group_name, owner_name};

const FILES: [&str; 4] = [
    "/etc/cron.allow",
    "/etc/cron.deny",
    "/etc/at.allow",
    "/etc/at.deny",
];

pub fn collect(
    src: &FactSource,
    accounts: &[Account],
    groups: &[Group],
) -> CollectResult<Vec<AccessList>> {
    Ok(FILES
        .iter()
        .map(|path| {
            let md = src.path(path).and_then(std::fs::metadata);
            let Ok(md) = md else {
                return AccessList {
                    path: path.to_string(),
                    ..Default::default()
                };
            };
            let users = src
                .read(path)
                .map(|t| conf::lines(&t).map(str::to_string).collect())
                .unwrap_or_default();
            AccessList {
                path: path.to_string(),
                exists: true,
                mode: md.permissions().mode() & 0o7777,
                owner: owner_name(accounts, md.uid()),
                group: group_name(groups, md.gid()),
                users,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn access_files_with_their_users() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "etc/cron.allow", "# admins\nroot\nops\n");
        std::fs::set_permissions(
            dir.path().join("etc/cron.allow"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        let l = collect(&FactSource::fixture(dir.path()), &[], &[]).unwrap();
        assert_eq!(l.len(), 4);
        assert!(l[0].exists);
        assert_eq!(l[0].mode, 0o640);
        assert_eq!(l[0].users, ["root", "ops"]);
        assert!(!l[1].exists && l[1].path == "/etc/cron.deny");
    }
}
