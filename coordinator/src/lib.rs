//! Rampart's coordinator: hosts the fleet registry, the PKI and the operator API. `main.rs` only
//! parses arguments and calls [`cli::run`].

pub mod api;
pub mod chaos;
pub mod cli;
pub mod compliance;
pub mod config;
pub mod fleet;
pub mod peers;
pub mod pki;
pub mod report;
pub mod server;
pub mod store;
pub mod threat;
pub mod web;
pub mod yaml;
