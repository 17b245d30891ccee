//! Reading located YAML nodes: every problem is collected with its file, line and column.

use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};
use rampart_common::labels::Selector;

use super::{MAX_FILE_BYTES, MAX_ITEMS, SpecError, SpecErrors};

/// Collects errors while reading a file's nodes.
pub(super) struct Reader {
    file: String,
    pub(super) errors: Vec<SpecError>,
}

fn start(node_span: &marked_yaml::Span) -> (usize, usize) {
    node_span
        .start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1))
}

impl Reader {
    pub(super) fn error_at(&mut self, span: &marked_yaml::Span, message: impl Into<String>) {
        let (line, column) = start(span);
        self.errors.push(SpecError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The node as a mapping whose keys are all in `allowed` and which has every `required` key.
    pub(super) fn mapping<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<&'n MarkedMappingNode> {
        let Some(map) = node.as_mapping() else {
            self.error_at(node.span(), format!("{what} must be a mapping"));
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error_at(
                    key.span(),
                    format!(
                        "unknown field `{}` in {what}; expected one of: {}",
                        key.as_str(),
                        allowed.join(", ")
                    ),
                );
            }
        }
        for r in required {
            if map.get_node(r).is_none() {
                self.error_at(map.span(), format!("{what} needs `{r}`"));
            }
        }
        Some(map)
    }

    pub(super) fn scalar<'n>(
        &mut self,
        map: &'n MarkedMappingNode,
        key: &str,
    ) -> Option<&'n MarkedScalarNode> {
        let node = map.get_node(key)?;
        match node.as_scalar() {
            Some(s) => Some(s),
            None => {
                self.error_at(node.span(), format!("`{key}` must be a single value"));
                None
            }
        }
    }

    pub(super) fn string(&mut self, map: &MarkedMappingNode, key: &str) -> Option<String> {
        self.scalar(map, key).map(|s| s.as_str().to_string())
    }

    pub(super) fn number<T: std::str::FromStr>(
        &mut self,
        map: &MarkedMappingNode,
        key: &str,
        what: &str,
    ) -> Option<T> {
        let s = self.scalar(map, key)?;
        match s.as_str().trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                self.error_at(
                    s.span(),
                    format!("`{key}` must be {what}, not {:?}", s.as_str()),
                );
                None
            }
        }
    }

    pub(super) fn duration(&mut self, map: &MarkedMappingNode, key: &str) -> Option<Duration> {
        let s = self.scalar(map, key)?;
        match rampart_common::time::parse_duration(s.as_str()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error_at(s.span(), format!("`{key}`: {e}"));
                None
            }
        }
    }

    pub(super) fn millis(&mut self, map: &MarkedMappingNode, key: &str) -> u32 {
        self.duration(map, key)
            .map(|d| d.as_millis().min(u128::from(u32::MAX)) as u32)
            .unwrap_or(0)
    }

    pub(super) fn selector(&mut self, map: &MarkedMappingNode, key: &str) -> Option<String> {
        let s = self.scalar(map, key)?;
        match Selector::parse(s.as_str()) {
            Ok(_) => Some(s.as_str().to_string()),
            Err(e) => {
                self.error_at(s.span(), e);
                None
            }
        }
    }

    pub(super) fn items<'n>(&mut self, map: &'n MarkedMappingNode, key: &str) -> Vec<&'n Node> {
        let Some(node) = map.get_node(key) else {
            return Vec::new();
        };
        match node.as_sequence() {
            Some(seq) if seq.len() > MAX_ITEMS => {
                self.error_at(
                    node.span(),
                    format!("`{key}` has {} items; at most {MAX_ITEMS}", seq.len()),
                );
                Vec::new()
            }
            Some(seq) => seq.iter().collect(),
            None => {
                self.error_at(node.span(), format!("`{key}` must be a list"));
                Vec::new()
            }
        }
    }

    /// `kind:` must be `expected`.
    pub(super) fn kind(&mut self, map: &MarkedMappingNode, expected: &str) {
        match map.get_scalar("kind") {
            Some(k) if k.as_str() == expected => {}
            Some(k) => self.error_at(
                k.span(),
                format!("`kind` must be {expected}, not {:?}", k.as_str()),
            ),
            None => self.error_at(map.span(), format!("the file needs `kind: {expected}`")),
        }
    }

    pub(super) fn name(&mut self, map: &MarkedMappingNode) -> String {
        let name = self.string(map, "name").unwrap_or_default();
        if let Some(n) = map.get_scalar("name")
            && (name.trim().is_empty() || name.len() > 128)
        {
            self.error_at(n.span(), "`name` must be 1 to 128 characters");
        }
        name
    }

    pub(super) fn finish<T>(self, value: T) -> Result<T, SpecErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(SpecErrors(self.errors))
        }
    }
}

/// Parses the text into its top-level mapping, or the syntax error, located.
pub(super) fn load(file: &str, text: &str) -> Result<(Node, Reader), SpecErrors> {
    let reader = Reader {
        file: file.to_string(),
        errors: Vec::new(),
    };
    let located = |line: usize, column: usize, message: String| {
        SpecErrors(vec![SpecError {
            file: file.to_string(),
            line,
            column,
            message,
        }])
    };
    if text.len() > MAX_FILE_BYTES {
        return Err(located(
            1,
            1,
            format!("the file is {} bytes; at most {MAX_FILE_BYTES}", text.len()),
        ));
    }
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .toplevel_mapping();
    match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(node) => Ok((node, reader)),
        Err(e) => {
            use marked_yaml::LoadError as L;
            let (line, column) = match &e {
                L::TopLevelMustBeMapping(m)
                | L::TopLevelMustBeSequence(m)
                | L::UnexpectedAnchor(m)
                | L::MappingKeyMustBeScalar(m)
                | L::UnexpectedTag(m)
                | L::ScanError(m, _) => (m.line(), m.column()),
                L::DuplicateKey(inner) => start(inner.key.span()),
            };
            // The loader's message starts with its own (source-numbered) location.
            let message = e.to_string();
            let message = match message.split_once(": ") {
                Some((loc, rest)) if loc.starts_with(|c: char| c.is_ascii_digit()) => {
                    rest.to_string()
                }
                _ => message,
            };
            Err(located(line, column, message))
        }
    }
}
