//! matrix-membership: a spec-first Matrix room-membership server.
//!
//! Data flows one way: `generated` (from `api-spec/` by `build.rs`) → `http`
//! → `service` (the `Api` implementation) → `membership` rules and `store`.

pub mod admin;
pub mod caller;
pub mod cli;
pub mod config;
pub mod generated;
pub mod http;
pub mod ids;
pub mod logging;
pub mod membership;
pub mod metrics;
pub mod service;
pub mod store;
