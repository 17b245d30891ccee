//! Small pieces that the coordinator, the agent and the end-to-end tests share: dialing the
//! coordinator over TLS (with CA pinning), label selectors, config files that report every error
//! with its line, logging set-up for the binaries, and time formatting.
//!
//! It must stay light: the agent links it, and the agent is meant to be small. No SQL, no Rego,
//! no web frameworks here.

pub mod config;
pub mod labels;
pub mod logging;
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
