//! Access tokens: from `?access_token=` (the seed's apiKey) or `Authorization: Bearer`.

use super::error::MatrixError;
use http::{HeaderMap, StatusCode};
use swagger::auth::AuthData;

/// Looks up who holds an access token; implemented by the service over the store.
#[async_trait::async_trait]
pub trait TokenResolver: Send + Sync {
    /// The user id holding `token`, `Ok(None)` if nobody does.
    async fn resolve_token(&self, token: &str) -> Result<Option<String>, String>;
}

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

/// The token inside a credential.
pub fn token_of(auth: &AuthData) -> Option<&str> {
    match auth {
        AuthData::Bearer(t) | AuthData::ApiKey(t) => Some(t),
        AuthData::Basic(..) => None,
    }
}

/// Resolves the credential for an operation that requires one: 401s for a missing or unknown token.
pub async fn authenticate(resolver: &dyn TokenResolver, auth: Option<&AuthData>) -> Result<String, MatrixError> {
    let token = auth
        .and_then(token_of)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| MatrixError::new(StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN", "Missing access token"))?;
    match resolver.resolve_token(token).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(MatrixError::new(
            StatusCode::UNAUTHORIZED,
            "M_UNKNOWN_TOKEN",
            "Unrecognised access token",
        )),
        Err(e) => Err(MatrixError::internal(e)),
    }
}
