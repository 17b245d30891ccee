//! The distributions a pack is written for (`targets` in `pack.toml`).

/// A distribution a pack is written for: an os-release `ID` and `VERSION_ID` (a major version
/// matches its minor releases: "9" matches "9.4").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub version: String,
}

impl Target {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s.split_whitespace().collect::<Vec<_>>()[..] {
            [id, version] => Ok(Self {
                id: id.to_string(),
                version: version.to_string(),
            }),
            _ => Err(format!(
                "target {s:?} must be an os-release ID and VERSION_ID, e.g. \"debian 12\""
            )),
        }
    }

    pub(crate) fn matches(&self, id: &str, version: &str) -> bool {
        self.id == id
            && (version == self.version
                || version
                    .strip_prefix(&self.version)
                    .is_some_and(|rest| rest.starts_with('.')))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.id, self.version)
    }
}
