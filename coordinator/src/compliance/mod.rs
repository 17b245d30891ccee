//! Continuous compliance on the coordinator: policy packs (Rego, evaluated with regorus over the
//! JSON form of an agent's facts) and their verdicts. Policies run here, not on agents, so stored
//! facts can be evaluated again when a pack changes.
//!
//! This module never talks to agents or the database itself: callers hand it facts and store
//! what it returns.

pub mod history;
pub mod pack;
pub mod schedule;
pub mod sweep;

pub use pack::{CheckMeta, Pack, PackError, Packs, RuleResult, Severity, Status};
