//! Access tokens over HTTP: from `?access_token=` (the seed's apiKey) or
//! `Authorization: Bearer`. Who holds a token is decided in
//! `caller::credentials`, not here.

use super::error::MatrixError;
use crate::caller::credentials::{self, CredentialError};
use http::{HeaderMap, StatusCode};
use swagger::auth::AuthData;

pub use crate::caller::credentials::TokenResolver;

/// The credential a request carries. A header and a query token that disagree
/// are refused, as Synapse does, rather than silently picking one.
pub fn credential(headers: &HeaderMap, query: &[(String, String)]) -> Result<Option<AuthData>, MatrixError> {
    let from_query = query.iter().find(|(k, _)| k == "access_token").map(|(_, v)| v.clone());
    let from_header = match headers.get(http::header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value.to_str().unwrap_or("");
            match value.strip_prefix("Bearer ") {
                Some(token) => Some(token.trim().to_string()),
                None => {
                    return Err(MatrixError::new(
                        StatusCode::UNAUTHORIZED,
                        "M_MISSING_TOKEN",
                        "The Authorization header must have the form 'Bearer <access token>'",
                    ))
                }
            }
        }
    };
    match (from_header, from_query) {
        (Some(h), Some(q)) if h != q => Err(MatrixError::new(
            StatusCode::BAD_REQUEST,
            "M_MISSING_TOKEN",
            "Mixing an Authorization header and an access_token query parameter with different tokens",
        )),
        (Some(h), _) => Ok(Some(AuthData::Bearer(h))),
        (None, Some(q)) => Ok(Some(AuthData::ApiKey(q))),
        (None, None) => Ok(None),
    }
}

/// The user id behind an operation's credential, or the credentials module's
/// 401 as an edge error.
pub async fn authenticate(resolver: &dyn TokenResolver, auth: Option<&AuthData>) -> Result<String, MatrixError> {
    credentials::authenticate(resolver, auth)
        .await
        .map(|caller| caller.user.to_string())
        .map_err(|e| edge_error(&e))
}

fn edge_error(e: &CredentialError) -> MatrixError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    MatrixError::new(status, e.errcode(), e.message())
}
