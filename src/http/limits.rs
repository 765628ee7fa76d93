//! What the edge lets one client make the server hold: bytes, time and connections.
//!
//! Every bound here has a test in `tests/http_limits.rs` (or `tests/http_edge.rs`
//! for the body size) that fails when the bound is removed.

use crate::config::ServerSettings;
use std::time::Duration;

/// Limits the edge enforces.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest the body of one request may take to arrive (`read_body`).
    pub body_timeout: Duration,
    /// Longest a request head may take to arrive (`connection::Watched`).
    pub header_timeout: Duration,
    /// Longest a connection may sit with nothing in flight, or with a response
    /// its client does not read (`connection::Watched`).
    pub idle_timeout: Duration,
    /// Largest request head, request line included, in bytes (hyper's parser).
    pub max_header_bytes: usize,
    /// Most header fields in one request (hyper's parser).
    pub max_headers: usize,
    /// Most connections served at once (`accept::Acceptor`).
    pub max_connections: usize,
}

impl From<&ServerSettings> for EdgeConfig {
    fn from(config: &ServerSettings) -> Self {
        EdgeConfig {
            body_limit: config.body_limit,
            body_timeout: config.body_timeout,
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_header_bytes: config.max_header_bytes,
            max_headers: config.max_headers,
            max_connections: config.max_connections,
        }
    }
}
