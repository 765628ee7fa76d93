//! Domain failures, each with the Matrix errcode and status it is answered with.

use crate::generated::models;
use crate::membership::auth::Denial;
use crate::store::StoreError;

/// A failed domain call: what the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    pub status: u16,
    pub errcode: &'static str,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

/// Result of a domain call.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    /// An error with the given status and errcode.
    pub fn new(status: u16, errcode: &'static str, message: impl Into<String>) -> Self {
        ServiceError {
            status,
            errcode,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// 403 `M_FORBIDDEN`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "M_FORBIDDEN", message)
    }

    /// 404 `M_NOT_FOUND`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "M_NOT_FOUND", message)
    }

    /// 400 `M_INVALID_PARAM`.
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(400, "M_INVALID_PARAM", message)
    }

    /// 429 `M_LIMIT_EXCEEDED` with the time to wait.
    pub fn limit_exceeded(retry_after_ms: u64) -> Self {
        ServiceError {
            retry_after_ms: Some(retry_after_ms),
            ..Self::new(429, "M_LIMIT_EXCEEDED", "Too many requests; slow down")
        }
    }

    /// 500 `M_UNKNOWN`.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        Self::new(500, "M_UNKNOWN", format!("Internal server error: {what}"))
    }

    /// The error as the spec's Matrix error model.
    pub fn to_model(&self) -> models::Error {
        models::Error {
            errcode: self.errcode.to_string(),
            error: Some(self.message.clone()),
            retry_after_ms: self.retry_after_ms.map(|ms| ms as i64),
        }
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.errcode, self.message)
    }
}

/// So that a plan can hand a service error through the store unchanged.
impl std::error::Error for ServiceError {}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused(refusal) => match refusal.downcast::<ServiceError>() {
                Ok(e) => *e,
                Err(other) => Self::internal(other),
            },
            StoreError::UnknownRoom(room) => Self::not_found(format!("Room {room} does not exist")),
            StoreError::AliasTaken(alias) => {
                Self::new(400, "M_ROOM_IN_USE", format!("Room alias {alias} is already taken"))
            }
            StoreError::Deactivated(_) => Self::new(403, "M_USER_DEACTIVATED", "This account has been deactivated"),
            other => Self::internal(other),
        }
    }
}

impl From<Denial> for ServiceError {
    fn from(d: Denial) -> Self {
        match d {
            Denial::Forbidden(why) => Self::forbidden(why),
            Denial::Invalid(why) => Self::new(400, "M_BAD_JSON", why),
            Denial::TooLarge(why) => Self::new(413, "M_TOO_LARGE", why),
            Denial::Internal(why) => Self::internal(why),
        }
    }
}

/// Turns a domain result into an operation's response enum. A status the
/// operation does not document (a bug, or a 500) becomes an `ApiError`, which
/// the edge answers as 500 `M_UNKNOWN`.
pub fn respond<R>(
    operation: &str,
    result: ServiceResult<R>,
    from_error: fn(u16, models::Error) -> Option<R>,
) -> Result<R, swagger::ApiError> {
    match result {
        Ok(r) => Ok(r),
        Err(e) => from_error(e.status, e.to_model())
            .ok_or_else(|| swagger::ApiError(format!("{operation}: {} {} ({})", e.status, e.errcode, e.message))),
    }
}
