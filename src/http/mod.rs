//! The HTTP edge: hyper 1 server, routing by the generated table, tokens,
//! body limits and Matrix JSON errors. Nothing here knows membership rules.

pub mod auth;
pub mod context;
pub mod cors;
pub mod error;
pub mod router;
pub mod server;
