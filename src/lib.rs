//! matrix-membership: a spec-first Matrix room-membership server.
//!
//! Data flows one way: `generated` (from `api-spec/` by `build.rs`) → `http`
//! → `service` (the `Api` implementation) → `membership` rules and `store`.

pub mod generated;
pub mod ids;
pub mod membership;
pub mod store;
