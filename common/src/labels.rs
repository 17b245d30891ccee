//! Labels (`key=value`) name what a host is; selectors (`k=v,k2=v2`) pick hosts by them.

use std::collections::BTreeMap;

/// Labels attached to an agent, sorted by key.
pub type Labels = BTreeMap<String, String>;

/// Checks a label key or value: 1–63 characters of `[A-Za-z0-9._-]`, plus `/` in keys.
fn check_part(part: &str, what: &str, allow_slash: bool) -> Result<(), String> {
    if part.is_empty() || part.len() > 63 {
        return Err(format!("label {what} {part:?} must be 1 to 63 characters"));
    }
    let ok = part.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || (allow_slash && c == '/')
    });
    if !ok {
        return Err(format!(
            "label {what} {part:?} may only contain letters, digits, '.', '_', '-'{}",
            if allow_slash { " and '/'" } else { "" }
        ));
    }
    Ok(())
}

/// Validates one label.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    check_part(key, "key", true)?;
    check_part(value, "value", false)
}

/// Parses `key=value`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("label {s:?} must look like key=value"))?;
    let (k, v) = (k.trim(), v.trim());
    validate(k, v)?;
    Ok((k.to_string(), v.to_string()))
}

/// Parses a list of `key=value` arguments into labels.
pub fn parse_labels<S: AsRef<str>>(items: &[S]) -> Result<Labels, String> {
    items.iter().map(|s| parse_label(s.as_ref())).collect()
}

/// A conjunction of `key=value` requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<(String, String)>);

impl Selector {
    /// Parses `k=v,k2=v2`; the empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            reqs.push(parse_label(part).map_err(|e| format!("selector {s:?}: {e}"))?);
        }
        Ok(Self(reqs))
    }

    /// The `k=v,k2=v2` form [`Selector::parse`] reads.
    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Whether `labels` has every required pair.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_matches_all_pairs() {
        let labels: Labels = parse_labels(&["env=prod", "role=db"]).unwrap();
        assert!(Selector::parse("").unwrap().matches(&labels));
        assert!(Selector::parse("env=prod").unwrap().matches(&labels));
        assert!(
            Selector::parse("env=prod, role=db")
                .unwrap()
                .matches(&labels)
        );
        assert!(
            !Selector::parse("env=prod,role=web")
                .unwrap()
                .matches(&labels)
        );
        assert!(!Selector::parse("zone=a").unwrap().matches(&labels));
    }

    #[test]
    fn bad_labels_say_why() {
        assert!(parse_label("nokey").unwrap_err().contains("key=value"));
        assert!(
            parse_label("a b=c")
                .unwrap_err()
                .contains("may only contain")
        );
        assert!(parse_label("=c").unwrap_err().contains("1 to 63"));
        assert!(Selector::parse("env=prod,bad").is_err());
    }
}
