//! Access tokens, from the credential a request carries to the (user, device)
//! that holds it. Both the HTTP edge and the service authenticate through
//! [`authenticate`], so a missing, logged-out or unknown token fails the same
//! way wherever it is checked. This sits below both layers (imports run
//! downward); how a token travels over HTTP (header or query) is the edge's
//! business, in `http::auth`.

use crate::ids::UserId;
use sha2::{Digest, Sha256};
use swagger::auth::AuthData;

/// A token's SHA-256: the store never sees a token itself, so a copied
/// database yields no sessions.
pub type TokenHash = [u8; 32];

/// The hash under which `token` is stored.
pub fn token_hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// The token inside a credential; Basic auth carries none.
pub fn token_of(auth: &AuthData) -> Option<&str> {
    match auth {
        AuthData::Bearer(t) | AuthData::ApiKey(t) => Some(t),
        AuthData::Basic(..) => None,
    }
}

/// Looks up who holds a token; implemented by the service over the store.
#[async_trait::async_trait]
pub trait TokenResolver: Send + Sync {
    /// The user and device holding the token with this hash, `Ok(None)` if
    /// nobody does (never issued, logged out, or replaced by a newer login
    /// on the same device).
    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<(UserId, String)>, String>;
}

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub device_id: String,
    /// The hash of the token presented, for logout.
    pub token_hash: TokenHash,
}

/// Why a credential did not authenticate anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialError {
    /// No token, an empty one, or Basic auth.
    Missing,
    /// A token nobody holds.
    Unknown,
    /// The lookup itself failed (a storage error, not the client's fault).
    Lookup(String),
}

impl CredentialError {
    /// The HTTP status the client is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::Missing | Self::Unknown => 401,
            Self::Lookup(_) => 500,
        }
    }

    /// The Matrix errcode.
    pub fn errcode(&self) -> &'static str {
        match self {
            Self::Missing => "M_MISSING_TOKEN",
            Self::Unknown => "M_UNKNOWN_TOKEN",
            Self::Lookup(_) => "M_UNKNOWN",
        }
    }

    /// The `error` sentence.
    pub fn message(&self) -> String {
        match self {
            Self::Missing => "Missing access token".into(),
            Self::Unknown => "Unrecognised access token".into(),
            Self::Lookup(e) => format!("Internal server error: looking up the access token failed: {e}"),
        }
    }
}

/// The caller behind a credential, or why there is none.
pub async fn authenticate(resolver: &dyn TokenResolver, auth: Option<&AuthData>) -> Result<Caller, CredentialError> {
    let token = auth
        .and_then(token_of)
        .filter(|t| !t.is_empty())
        .ok_or(CredentialError::Missing)?;
    let hash = token_hash(token);
    match resolver.token_owner(&hash).await {
        Ok(Some((user, device_id))) => Ok(Caller {
            user,
            device_id,
            token_hash: hash,
        }),
        Ok(None) => Err(CredentialError::Unknown),
        Err(e) => Err(CredentialError::Lookup(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneToken;

    #[async_trait::async_trait]
    impl TokenResolver for OneToken {
        async fn token_owner(&self, hash: &TokenHash) -> Result<Option<(UserId, String)>, String> {
            Ok((*hash == token_hash("good")).then(|| (UserId::parse("@a:l").unwrap(), "DEV".to_string())))
        }
    }

    #[tokio::test]
    async fn a_known_token_names_its_user_device_and_hash() {
        let caller = authenticate(&OneToken, Some(&AuthData::Bearer("good".into())))
            .await
            .unwrap();
        assert_eq!(caller.user.as_str(), "@a:l");
        assert_eq!(caller.device_id, "DEV");
        assert_eq!(caller.token_hash, token_hash("good"));
        let via_query = authenticate(&OneToken, Some(&AuthData::ApiKey("good".into())))
            .await
            .unwrap();
        assert_eq!(via_query, caller);
    }

    #[tokio::test]
    async fn missing_empty_and_basic_credentials_are_missing_tokens() {
        for auth in [
            None,
            Some(AuthData::Bearer(String::new())),
            Some(AuthData::basic("a", "b")),
        ] {
            let err = authenticate(&OneToken, auth.as_ref()).await.unwrap_err();
            assert_eq!((err.status(), err.errcode()), (401, "M_MISSING_TOKEN"), "{auth:?}");
        }
    }

    #[tokio::test]
    async fn a_token_nobody_holds_is_unknown() {
        let err = authenticate(&OneToken, Some(&AuthData::Bearer("stale".into())))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.errcode()), (401, "M_UNKNOWN_TOKEN"));
    }
}
