//! Config files (TOML) that report *every* problem at once, each with file, line and column,
//! instead of stopping at the first. Callers read fields through [`Section`]; whatever they never
//! asked for is reported as an unknown field (the `deny_unknown_fields` rule).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    /// 1-based; 0 when the problem has no place (e.g. the file cannot be read).
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.col,
                self.message
            )
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} error(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and parses `path`, then lets `read` pull the fields out. Returns every syntax and field
/// error together.
pub fn load<T>(
    path: &Path,
    read: impl FnOnce(&mut Section<'_, '_>) -> T,
) -> Result<T, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            path: path.to_path_buf(),
            line: 0,
            col: 0,
            message: format!("cannot read config file: {e}"),
        }])
    })?;
    parse(path, &text, read)
}

/// Like [`load`] on text already in memory (`path` is only used in messages).
pub fn parse<T>(
    path: &Path,
    text: &str,
    read: impl FnOnce(&mut Section<'_, '_>) -> T,
) -> Result<T, ConfigErrors> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let mut sink = Sink {
        path,
        text,
        errors: Vec::new(),
    };
    for e in syntax {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        sink.push(at, e.message().trim().to_string());
    }
    let table = doc.into_inner();
    let value = {
        let mut section = Section {
            table: &table,
            prefix: String::new(),
            used: Vec::new(),
            sink: &mut sink,
        };
        let v = read(&mut section);
        section.report_unknown();
        v
    };
    if sink.errors.is_empty() {
        Ok(value)
    } else {
        sink.errors.sort_by_key(|e| (e.line, e.col));
        Err(ConfigErrors(sink.errors))
    }
}

struct Sink<'a> {
    path: &'a Path,
    text: &'a str,
    errors: Vec<ConfigError>,
}

impl Sink<'_> {
    fn push(&mut self, offset: usize, message: String) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        self.errors.push(ConfigError {
            path: self.path.to_path_buf(),
            line,
            col,
            message,
        });
    }
}

/// A table of the config file being read.
pub struct Section<'t, 's> {
    table: &'t DeTable<'t>,
    /// Dotted path of this table, for messages (`""` at the top).
    prefix: String,
    used: Vec<String>,
    sink: &'s mut Sink<'t>,
}

impl<'t> Section<'t, '_> {
    fn entry(&mut self, key: &str) -> Option<&'t Spanned<DeValue<'t>>> {
        self.used.push(key.to_string());
        self.table.get(key)
    }

    fn name(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    /// Records a problem with field `key` (at the field's value, or at the table if absent).
    pub fn error(&mut self, key: &str, message: impl fmt::Display) {
        let at = self.table.get(key).map(|v| v.span().start).unwrap_or(0);
        let name = self.name(key);
        self.sink.push(at, format!("`{name}`: {message}"));
    }

    fn typed<T>(
        &mut self,
        key: &str,
        what: &str,
        get: impl FnOnce(&DeValue<'t>) -> Option<T>,
    ) -> Option<T> {
        let v = self.entry(key)?;
        match get(v.get_ref()) {
            Some(t) => Some(t),
            None => {
                self.error(key, format!("expected {what}, found {}", kind(v.get_ref())));
                None
            }
        }
    }

    /// A string field.
    pub fn string(&mut self, key: &str) -> Option<String> {
        self.typed(key, "a string", |v| v.as_str().map(str::to_string))
    }

    /// A boolean field.
    pub fn bool(&mut self, key: &str) -> Option<bool> {
        self.typed(key, "true or false", DeValue::as_bool)
    }

    /// A non-negative integer field.
    pub fn u64(&mut self, key: &str) -> Option<u64> {
        let v = self.typed(key, "an integer", |v| {
            v.as_integer().map(|i| {
                i64::from_str_radix(
                    i.as_str().replace('_', "").trim_start_matches('+'),
                    i.radix(),
                )
            })
        })?;
        match v {
            Ok(n) if n >= 0 => Some(n as u64),
            _ => {
                self.error(key, "expected a non-negative integer");
                None
            }
        }
    }

    /// A string field parsed with `FromStr`; `what` names the expected form in the message.
    pub fn parsed<T: FromStr>(&mut self, key: &str, what: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        let s = self.string(key)?;
        match s.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(key, format!("{s:?} is not {what}: {e}"));
                None
            }
        }
    }

    /// A duration written as a string such as `"10s"` or `"1h"`.
    pub fn duration(&mut self, key: &str) -> Option<Duration> {
        let s = self.string(key)?;
        match crate::time::parse_duration(&s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(key, e);
                None
            }
        }
    }

    /// An array of strings.
    pub fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        let arr = self.typed(key, "an array of strings", |v| v.as_array().cloned())?;
        let mut out = Vec::new();
        for item in arr.iter() {
            match item.get_ref().as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    let name = self.name(key);
                    self.sink.push(
                        item.span().start,
                        format!("`{name}`: every item must be a string"),
                    );
                }
            }
        }
        Some(out)
    }

    /// A table whose values are all strings (e.g. labels).
    pub fn string_map(&mut self, key: &str) -> Option<BTreeMap<String, String>> {
        let table = self.typed(key, "a table of strings", |v| v.as_table().cloned())?;
        let mut out = BTreeMap::new();
        for (k, v) in table.iter() {
            match v.get_ref().as_str() {
                Some(s) => {
                    out.insert(k.get_ref().to_string(), s.to_string());
                }
                None => {
                    let name = format!("{}.{}", self.name(key), k.get_ref());
                    self.sink
                        .push(v.span().start, format!("`{name}`: expected a string"));
                }
            }
        }
        Some(out)
    }

    /// A sub-table (`[faults]`), read with `f`; its unknown fields are reported like the top's.
    pub fn section<T>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut Section<'t, '_>) -> T,
    ) -> Option<T> {
        let entry: &'t Spanned<DeValue<'t>> = self.entry(key)?;
        let Some(table) = entry.get_ref().as_table() else {
            self.error(
                key,
                format!("expected a table, found {}", kind(entry.get_ref())),
            );
            return None;
        };
        let prefix = self.name(key);
        let mut sub = Section {
            table,
            prefix,
            used: Vec::new(),
            sink: &mut *self.sink,
        };
        let out = f(&mut sub);
        sub.report_unknown();
        Some(out)
    }

    fn report_unknown(&mut self) {
        let mut unknown = Vec::new();
        for (k, _) in self.table.iter() {
            if !self.used.iter().any(|u| u == k.get_ref().as_ref()) {
                unknown.push((k.span().start, k.get_ref().to_string()));
            }
        }
        let known = self.used.join(", ");
        for (at, k) in unknown {
            let name = self.name(&k);
            self.sink
                .push(at, format!("unknown field `{name}`; known fields: {known}"));
        }
    }
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Conf {
        listen: Option<std::net::SocketAddr>,
        names: Vec<String>,
        interval: Option<Duration>,
        labels: BTreeMap<String, String>,
        max: Option<u64>,
    }

    fn read(s: &mut Section<'_, '_>) -> Conf {
        Conf {
            listen: s.parsed("listen", "an address such as 0.0.0.0:7443"),
            names: s.string_list("names").unwrap_or_default(),
            interval: s.duration("interval"),
            labels: s.string_map("labels").unwrap_or_default(),
            max: s.u64("max"),
        }
    }

    #[test]
    fn reads_valid_file() {
        let text = "listen = \"127.0.0.1:7443\"\nnames = [\"a\", \"b\"]\ninterval = \"10s\"\nmax = 1_000\n[labels]\nenv = \"prod\"\n";
        let c = parse(Path::new("c.toml"), text, read).unwrap();
        assert_eq!(c.listen.unwrap().port(), 7443);
        assert_eq!(c.names, ["a", "b"]);
        assert_eq!(c.interval, Some(Duration::from_secs(10)));
        assert_eq!(c.max, Some(1000));
        assert_eq!(c.labels["env"], "prod");
    }

    #[test]
    fn reports_every_error_with_its_line() {
        let text = "listen = \"nowhere\"\nnames = [\"a\", 3]\ninterval = 5\nbogus = true\n[labels]\nenv = 1\n";
        let errs = parse(Path::new("c.toml"), text, read).unwrap_err();
        let lines: Vec<(usize, &str)> = errs
            .0
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(errs.0.len(), 5, "{errs}");
        assert_eq!(lines[0].0, 1);
        assert!(lines[0].1.contains("not an address"));
        assert_eq!(lines[1].0, 2);
        assert!(lines[1].1.contains("every item must be a string"));
        assert_eq!(lines[2].0, 3);
        assert!(lines[2].1.contains("expected a string, found an integer"));
        assert_eq!(lines[3].0, 4);
        assert!(lines[3].1.contains("unknown field `bogus`"));
        assert_eq!(lines[4].0, 6);
        assert!(errs.to_string().contains("c.toml:6:7:"), "{errs}");
    }

    #[test]
    fn reports_syntax_errors() {
        let errs = parse(Path::new("c.toml"), "a = \nb = \"x\"\n", read).unwrap_err();
        assert!(errs.0.iter().any(|e| e.line == 1), "{errs}");
    }
}
