//! Who is calling: what the HTTP edge learns about a request's origin and
//! credentials, in types both the edge and the service can name (imports run
//! downward, so this sits below both).

pub mod credentials;

use std::net::IpAddr;

/// The address a request came from (the TCP peer), for per-address limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);
