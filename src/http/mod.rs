//! The HTTP edge: hyper 1 server, routing by the generated table, tokens,
//! limits on what a client can hold (bytes, time, connections) and Matrix
//! JSON errors. Nothing here knows membership rules.

pub mod accept;
pub mod auth;
pub mod connection;
pub mod context;
pub mod cors;
pub mod error;
pub mod limits;
pub mod request_id;
pub mod router;
pub mod server;
