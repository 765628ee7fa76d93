//! The code `build.rs` generates from `api-spec/`, compiled from `OUT_DIR`.
//! A readable copy is checked in under `generated/`; `tests/generated_code.rs`
//! fails when that copy is stale.

/// Serde models for every schema in the spec.
#[allow(clippy::all, missing_docs, dead_code)]
pub mod models {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

/// The `Api<C>` trait and one response enum per operation.
#[allow(clippy::all, missing_docs, dead_code)]
pub mod api {
    include!(concat!(env!("OUT_DIR"), "/api.rs"));
}

/// The route table and the dispatcher into `Api`.
#[allow(clippy::all, missing_docs, dead_code)]
pub mod routes {
    include!(concat!(env!("OUT_DIR"), "/routes.rs"));
}

/// A typed client for every operation.
#[allow(clippy::all, missing_docs, dead_code)]
pub mod client {
    include!(concat!(env!("OUT_DIR"), "/client.rs"));
}

/// The merged Swagger 2.0 document.
pub const SWAGGER_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/swagger.json"));
