//! Indexes of list facts, offered to packs beside the lists they are built from.
//!
//! Rego has no lookup into a list: finding one package in `input.packages` walks the whole list,
//! and regorus's compiled program spends about 4,000 instructions on each entry it walks (a host
//! with 700 packages: about 2.8 million, 8 % of a CIS pack's evaluation then, for
//! `{p.name | some p in input.packages}` alone). An index is built once per host here, in Rust,
//! and only for a pack that reads it (`input.<index>`, found like any other fact it reads).
//!
//! - `input.package_versions`: package name → its installed versions, sorted (one per
//!   architecture installed; usually one): `"openssh-server" in object.keys(input.package_versions)`.
//! - `input.units_by_name`: unit name → its entry of `input.units` (`{"name", "enabled", "active"}`).
//!
//! An index is absent when the list it is built from is absent, as the list is.

use regorus::Value;

/// An index: its name under `input`, and the fact it is built from.
pub struct Index {
    pub name: &'static str,
    pub from: &'static str,
    build: fn(&[serde_json::Value]) -> Value,
}

pub const INDEXES: &[Index] = &[
    Index {
        name: "package_versions",
        from: "packages",
        build: package_versions,
    },
    Index {
        name: "units_by_name",
        from: "units",
        build: units_by_name,
    },
];

/// Index `name` over `facts` (the JSON form of a report), if `name` is an index and the list it
/// is built from is there.
pub fn build(name: &str, facts: &serde_json::Map<String, serde_json::Value>) -> Option<Value> {
    let index = INDEXES.iter().find(|i| i.name == name)?;
    let list = facts.get(index.from)?.as_array()?;
    Some((index.build)(list))
}

fn text<'a>(entry: &'a serde_json::Value, field: &str) -> &'a str {
    entry[field].as_str().unwrap_or_default()
}

/// An object from entries sorted by key (agents send their lists sorted by name; others are
/// sorted here), built in one pass.
fn sorted_object<'a, T>(
    mut entries: Vec<(&'a str, T)>,
    mut value: impl FnMut(&[(&'a str, T)]) -> Value,
) -> Value {
    if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    let map: std::collections::BTreeMap<Value, Value> = entries
        .chunk_by(|a, b| a.0 == b.0)
        .map(|group| (Value::from(group[0].0), value(group)))
        .collect();
    Value::from(map)
}

fn package_versions(packages: &[serde_json::Value]) -> Value {
    let entries = packages
        .iter()
        .map(|p| (text(p, "name"), text(p, "version")))
        .collect();
    sorted_object(entries, |group| {
        let mut versions: Vec<&str> = group.iter().map(|(_, v)| *v).collect();
        versions.sort_unstable();
        versions.dedup();
        Value::from(versions.into_iter().map(Value::from).collect::<Vec<_>>())
    })
}

fn units_by_name(units: &[serde_json::Value]) -> Value {
    let entries = units.iter().map(|u| (text(u, "name"), u)).collect();
    // A name listed twice keeps its last entry, as `{u.name: u | some u in input.units}` would
    // not (it fails the whole rule).
    sorted_object(entries, |group| {
        super::input::value(group[group.len() - 1].1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    fn json(v: Value) -> serde_json::Value {
        serde_json::to_value(&v).unwrap()
    }

    /// Names in any order; one name installed for two architectures (or two versions, as rpm
    /// keeps kernels) lists each version once, sorted.
    #[test]
    fn package_versions_groups_each_name_in_any_order() {
        let f = facts(serde_json::json!({"packages": [
            {"name": "zlib1g", "version": "1:1.2.13", "arch": "amd64"},
            {"name": "kernel-core", "version": "5.14.0-427", "arch": "x86_64"},
            {"name": "libc6", "version": "2.36-9", "arch": "amd64"},
            {"name": "kernel-core", "version": "5.14.0-362", "arch": "x86_64"},
            {"name": "libc6", "version": "2.36-9", "arch": "i386"},
        ]}));
        assert_eq!(
            json(build("package_versions", &f).unwrap()),
            serde_json::json!({
                "kernel-core": ["5.14.0-362", "5.14.0-427"],
                "libc6": ["2.36-9"],
                "zlib1g": ["1:1.2.13"],
            })
        );
    }

    #[test]
    fn units_by_name_keeps_each_units_whole_entry() {
        let f = facts(serde_json::json!({"units": [
            {"name": "ssh.service", "enabled": "enabled", "active": "active"},
            {"name": "cron.service", "enabled": "disabled", "active": "inactive"},
        ]}));
        assert_eq!(
            json(build("units_by_name", &f).unwrap()),
            serde_json::json!({
                "cron.service": {"name": "cron.service", "enabled": "disabled", "active": "inactive"},
                "ssh.service": {"name": "ssh.service", "enabled": "enabled", "active": "active"},
            })
        );
    }

    /// No list, no index (as a pack would find no list); an empty list, an empty index; a name
    /// that is not an index, nothing.
    #[test]
    fn an_index_is_there_only_when_its_list_is() {
        let none = facts(serde_json::json!({"os": {"id": "debian"}}));
        assert!(build("package_versions", &none).is_none());
        assert!(build("units_by_name", &none).is_none());
        let empty = facts(serde_json::json!({"packages": [], "units": []}));
        assert_eq!(
            json(build("package_versions", &empty).unwrap()),
            serde_json::json!({})
        );
        assert_eq!(
            json(build("units_by_name", &empty).unwrap()),
            serde_json::json!({})
        );
        assert!(build("packages", &empty).is_none());
    }
}
