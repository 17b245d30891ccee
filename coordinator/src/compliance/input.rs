//! A host's facts as the engine's input: only the facts a pack reads (and the indexes it reads,
//! see [`super::indexes`]), converted from their JSON form.

use std::collections::BTreeMap;

use regorus::Value;

use super::indexes;

/// The input for a pack that reads `reads` (top-level names; `None`: everything, every index
/// included) over `facts`, the JSON form of a report.
pub fn input(reads: Option<&[String]>, facts: &serde_json::Value) -> Value {
    let Some(all) = facts.as_object() else {
        return value(facts);
    };
    let entries: BTreeMap<Value, Value> = match reads {
        Some(names) => names
            .iter()
            .filter_map(|name| {
                let v = match all.get(name) {
                    Some(v) => value(v),
                    None => indexes::build(name, all)?,
                };
                Some((Value::from(name.as_str()), v))
            })
            .collect(),
        None => all
            .iter()
            .map(|(name, v)| (Value::from(name.as_str()), value(v)))
            .chain(indexes::INDEXES.iter().filter_map(|index| {
                let v = indexes::build(index.name, all)?;
                Some((Value::from(index.name), v))
            }))
            .collect(),
    };
    Value::from(entries)
}

/// `v` as an engine value. Objects are built from their entries in key order in one pass
/// (serde_json keeps them sorted), about three times faster on a host's 900 sysctl keys than
/// inserting them one at a time as regorus's own deserializer does (see BENCHMARKS.md).
pub fn value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            (None, None) => Value::from(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::from(items.iter().map(value).collect::<Vec<_>>()),
        serde_json::Value::Object(entries) => Value::from(
            entries
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same values regorus's deserializer makes, on every kind of JSON value.
    #[test]
    fn values_are_those_regorus_deserializes() {
        use serde::Deserialize;
        let facts = serde_json::json!({
            "sysctl": {"net.ipv4.ip_forward": "0", "kernel.randomize_va_space": "2"},
            "numbers": [0, 1, -1, 1.5, u64::MAX, i64::MIN, 1e300],
            "nested": [{"b": [true, false, null], "a": {}}, [], ""],
            "unicode": "é ✓",
        });
        assert_eq!(value(&facts), Value::deserialize(&facts).unwrap());
    }

    /// Only what the pack reads, indexes included; everything (indexes too) when it reads
    /// `input` as a whole.
    #[test]
    fn a_pack_gets_the_facts_and_indexes_it_reads() {
        let facts = serde_json::json!({
            "os": {"id": "debian"},
            "sysctl": {"kernel.randomize_va_space": "2"},
            "packages": [{"name": "sudo", "version": "1.9.13p3-1", "arch": "amd64", "source": "dpkg"}],
        });
        let reads = [
            "os".to_string(),
            "package_versions".to_string(),
            "units".to_string(),
        ];
        assert_eq!(
            serde_json::to_value(input(Some(&reads), &facts)).unwrap(),
            serde_json::json!({"os": {"id": "debian"}, "package_versions": {"sudo": ["1.9.13p3-1"]}})
        );
        let whole = serde_json::to_value(input(None, &facts)).unwrap();
        assert_eq!(whole["sysctl"], facts["sysctl"]);
        assert_eq!(whole["packages"], facts["packages"]);
        assert_eq!(
            whole["package_versions"],
            serde_json::json!({"sudo": ["1.9.13p3-1"]})
        );
        assert_eq!(whole.get("units_by_name"), None);
    }
}
