//! Matrix error responses: `{"errcode": "M_…", "error": "…"}` with the right status.

use http::StatusCode;
use serde_json::json;

/// An error answered by the edge itself, before or instead of an `Api` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixError {
    pub status: StatusCode,
    pub errcode: &'static str,
    pub error: String,
}

impl MatrixError {
    /// Builds an error from its parts.
    pub fn new(status: StatusCode, errcode: &'static str, error: impl Into<String>) -> Self {
        MatrixError {
            status,
            errcode,
            error: error.into(),
        }
    }

    /// 404 `M_UNRECOGNIZED`: no route for this path.
    pub fn unrecognized(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "M_UNRECOGNIZED",
            format!("Unrecognized request: no endpoint at {path}"),
        )
    }

    /// 500 `M_UNKNOWN`: our fault, never the client's.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "M_UNKNOWN",
            format!("Internal server error: {what}"),
        )
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({ "errcode": self.errcode, "error": self.error })
    }
}
