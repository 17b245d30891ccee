//! Rampart's agent: one per Linux host. It enrols once (CSR → certificate, CA pinned by
//! fingerprint), then keeps one mTLS session to the coordinator, heartbeats, and answers commands.
//! `main.rs` only calls [`cli::main_with`].
//!
//! Kept small on purpose: no SQL, no Rego, no web framework; a single-threaded runtime.

pub mod cli;
pub mod config;
pub mod enroll;
pub mod error;
pub mod executor;
pub mod facts;
pub mod faults;
pub mod host;
pub mod metrics;
pub mod probes;
pub mod remediate;
mod renewal;
pub mod session;
pub mod state;

pub use error::AgentError;
