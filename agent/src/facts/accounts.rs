//! Users and groups from passwd/group, and each account's password state and ageing from shadow.
//! Password hashes are read only to classify them and never leave this function.

use rampart_proto::v1::{Account, Group};

use super::{CollectResult, FactSource, io_err};

fn classify(hash: &str) -> &'static str {
    if hash.is_empty() {
        "empty"
    } else if hash.starts_with('!') || hash.starts_with('*') {
        "locked"
    } else {
        "set"
    }
}

fn days(field: Option<&str>) -> i64 {
    field.and_then(|f| f.trim().parse().ok()).unwrap_or(-1)
}

pub fn collect(src: &FactSource) -> CollectResult<(Vec<Account>, Vec<Group>)> {
    let passwd = src
        .read_optional("/etc/passwd")
        .map_err(io_err("/etc/passwd"))?
        .unwrap_or_default();
    let shadow = src
        .read_optional("/etc/shadow")
        .map_err(io_err("/etc/shadow"))?
        .unwrap_or_default();
    let group = src
        .read_optional("/etc/group")
        .map_err(io_err("/etc/group"))?
        .unwrap_or_default();
    let mut accounts = Vec::new();
    for line in passwd
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            continue;
        }
        let mut a = Account {
            name: f[0].into(),
            uid: f[2].parse().unwrap_or(u32::MAX),
            gid: f[3].parse().unwrap_or(u32::MAX),
            home: f[5].into(),
            shell: f[6].into(),
            password: "unknown".into(),
            last_change_days: -1,
            min_days: -1,
            max_days: -1,
            warn_days: -1,
            inactive_days: -1,
            expire_days: -1,
        };
        // passwd's own field: an empty one there means no password at all.
        if f[1].is_empty() {
            a.password = "empty".into();
        }
        accounts.push(a);
    }
    for line in shadow.lines() {
        let f: Vec<&str> = line.split(':').collect();
        let Some(a) = accounts
            .iter_mut()
            .find(|a| Some(a.name.as_str()) == f.first().copied())
        else {
            continue;
        };
        a.password = classify(f.get(1).copied().unwrap_or("")).into();
        a.last_change_days = days(f.get(2).copied());
        a.min_days = days(f.get(3).copied());
        a.max_days = days(f.get(4).copied());
        a.warn_days = days(f.get(5).copied());
        a.inactive_days = days(f.get(6).copied());
        a.expire_days = days(f.get(7).copied());
    }
    let groups = group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| Group {
                name: f[0].into(),
                gid: f[2].parse().unwrap_or(u32::MAX),
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect();
    Ok((accounts, groups))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testing::write;

    #[test]
    fn shadow_states_without_hashes() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\nsvc:x:999:999::/:/usr/sbin/nologin\n",
        );
        write(
            dir.path(),
            "etc/shadow",
            "root:$6$salt$hash:19000:0:99999:7:::\nalice::19000:1:90:7:30::\nbob:!$6$x:19000::::::\n",
        );
        write(dir.path(), "etc/group", "root:x:0:\nsudo:x:27:alice,bob\n");
        let (a, g) = collect(&FactSource::fixture(dir.path())).unwrap();
        let state: Vec<(&str, &str)> = a
            .iter()
            .map(|a| (a.name.as_str(), a.password.as_str()))
            .collect();
        assert_eq!(
            state,
            [
                ("root", "set"),
                ("alice", "empty"),
                ("bob", "locked"),
                ("svc", "unknown")
            ]
        );
        assert_eq!(
            (
                a[1].min_days,
                a[1].max_days,
                a[1].inactive_days,
                a[1].expire_days
            ),
            (1, 90, 30, -1)
        );
        assert_eq!(g[1].members, ["alice", "bob"]);
        let json = serde_json::to_string(&a).unwrap();
        assert!(!json.contains("$6$"), "hashes never leave the collector");
    }
}
