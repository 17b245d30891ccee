//! Model files in YAML (experiments, game days, threat models) read as located nodes
//! (marked-yaml, on the maintained yaml-rust2), then field by field, so that every problem is
//! collected with its file, line and column and reported at once.

use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode};
use marked_yaml::{LoaderOptions, Node};
use rampart_common::labels::Selector;

/// How large a file and its lists may be: files are small, a huge one is a mistake (or an attack
/// on the parser).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_items: usize,
}

/// One located problem in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

use std::fmt;

/// Collects errors while reading a file's nodes.
pub struct Reader {
    file: String,
    pub errors: Vec<SpecError>,
    /// The longest list `items` accepts.
    max_items: usize,
}

fn start(node_span: &marked_yaml::Span) -> (usize, usize) {
    node_span
        .start()
        .map(|m| (m.line(), m.column()))
        .unwrap_or((1, 1))
}

impl Reader {
    pub fn error_at(&mut self, span: &marked_yaml::Span, message: impl Into<String>) {
        let (line, column) = start(span);
        self.errors.push(SpecError {
            file: self.file.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// The node as a mapping whose keys are all in `allowed` and which has every `required` key.
    pub fn mapping<'n>(
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

    pub fn scalar<'n>(
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

    pub fn string(&mut self, map: &MarkedMappingNode, key: &str) -> Option<String> {
        self.scalar(map, key).map(|s| s.as_str().to_string())
    }

    pub fn number<T: std::str::FromStr>(
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

    pub fn duration(&mut self, map: &MarkedMappingNode, key: &str) -> Option<Duration> {
        let s = self.scalar(map, key)?;
        match rampart_common::time::parse_duration(s.as_str()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error_at(s.span(), format!("`{key}`: {e}"));
                None
            }
        }
    }

    pub fn millis(&mut self, map: &MarkedMappingNode, key: &str) -> u32 {
        self.duration(map, key)
            .map(|d| d.as_millis().min(u128::from(u32::MAX)) as u32)
            .unwrap_or(0)
    }

    pub fn selector(&mut self, map: &MarkedMappingNode, key: &str) -> Option<String> {
        let s = self.scalar(map, key)?;
        match Selector::parse(s.as_str()) {
            Ok(_) => Some(s.as_str().to_string()),
            Err(e) => {
                self.error_at(s.span(), e);
                None
            }
        }
    }

    pub fn items<'n>(&mut self, map: &'n MarkedMappingNode, key: &str) -> Vec<&'n Node> {
        let Some(node) = map.get_node(key) else {
            return Vec::new();
        };
        match node.as_sequence() {
            Some(seq) if seq.len() > self.max_items => {
                self.error_at(
                    node.span(),
                    format!(
                        "`{key}` has {} items; at most {}",
                        seq.len(),
                        self.max_items
                    ),
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
    pub fn kind(&mut self, map: &MarkedMappingNode, expected: &str) {
        match map.get_scalar("kind") {
            Some(k) if k.as_str() == expected => {}
            Some(k) => self.error_at(
                k.span(),
                format!("`kind` must be {expected}, not {:?}", k.as_str()),
            ),
            None => self.error_at(map.span(), format!("the file needs `kind: {expected}`")),
        }
    }

    pub fn name(&mut self, map: &MarkedMappingNode) -> String {
        let name = self.string(map, "name").unwrap_or_default();
        if let Some(n) = map.get_scalar("name")
            && (name.trim().is_empty() || name.len() > 128)
        {
            self.error_at(n.span(), "`name` must be 1 to 128 characters");
        }
        name
    }

    pub fn finish<T>(self, value: T) -> Result<T, SpecErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(SpecErrors(self.errors))
        }
    }
}

/// Parses the text into its top-level mapping, or the syntax error, located.
pub fn load(file: &str, text: &str, limits: Limits) -> Result<(Node, Reader), SpecErrors> {
    let reader = Reader {
        file: file.to_string(),
        errors: Vec::new(),
        max_items: limits.max_items,
    };
    let located = |line: usize, column: usize, message: String| {
        SpecErrors(vec![SpecError {
            file: file.to_string(),
            line,
            column,
            message,
        }])
    };
    if text.len() > limits.max_bytes {
        return Err(located(
            1,
            1,
            format!(
                "the file is {} bytes; at most {}",
                text.len(),
                limits.max_bytes
            ),
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
