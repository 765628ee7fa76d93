//! CORS headers, as the Matrix spec asks of servers so browser clients can call them.

use http::header::{HeaderMap, HeaderValue};

/// Adds the CORS headers the Matrix spec lists to every response.
pub fn add_headers(headers: &mut HeaderMap) {
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, PUT, DELETE, OPTIONS"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("X-Requested-With, Content-Type, Authorization"),
    );
}
