//! Continuous compliance on the coordinator: policy packs (Rego, evaluated with regorus over the
//! JSON form of an agent's facts) and their verdicts. Policies run here, not on agents, so stored
//! facts can be evaluated again when a pack changes.
//!
//! `action`, `pack` and `history` are pure (facts and rows in, verdicts out); `facts`, `sweep`,
//! `schedule` and `remediate` drive agents through the fleet and record through the store, never with SQL.

pub mod action;
mod builtin;
pub mod facts;
pub mod history;
pub mod indexes;
mod input;
pub mod pack;
pub mod pack_test;
mod pack_vm;
mod pool;
mod reads;
pub mod remediate;
pub mod schedule;
pub mod sweep;
mod target;
pub mod waiver;

pub use pack::{CheckMeta, Pack, PackError, Packs, RuleResult, Severity, Status};
