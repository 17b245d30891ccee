//! Small pieces that the coordinator, the agent and the end-to-end tests share: dialing the
//! coordinator over TLS (with CA pinning), label selectors, config files that report every error
//! with its line, logging set-up for the binaries, and time formatting.
//!
//! It must stay light: the agent links it, and the agent is meant to be small. No SQL, no Rego,
//! no web frameworks here.

pub mod config;
pub mod labels;
pub mod logging;
pub mod metrics;
pub mod signals;
pub mod time;
pub mod tls;

/// Renders an error with every `source()` in its chain, so a transport error says *why*.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// A credential (join or operator token). Debug and Display print `[redacted]`, so it cannot
/// reach a log line or an error message by accident; [`Secret::expose`] is the one way to read it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, to put on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.trim().to_string()))
    }
}

#[cfg(test)]
mod secret_tests {
    use super::Secret;

    #[test]
    fn secrets_do_not_print() {
        let s: Secret = " rpo_abc ".parse().unwrap();
        assert_eq!(s.expose(), "rpo_abc");
        assert_eq!(format!("{s} {s:?}"), "[redacted] [redacted]");
    }
}
