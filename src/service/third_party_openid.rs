//! OpenID tokens: a user asks for one, hands it to a third party (an
//! identity server registering them), which exchanges it here for the user's
//! ID.
//!
//! They live in memory, not in the store: each is good for an hour and is
//! used once or twice within seconds of being issued, so losing them on a
//! restart costs a client one retry, while storing them would put a write
//! (and its fsync) on a path that changes nothing durable. Their number is
//! capped, so asking for tokens cannot grow memory without bound.

use super::error::{ServiceError, ServiceResult};
use super::random_string;
use crate::ids::UserId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a token is good for (the lifetime Synapse gives them).
pub const LIFETIME: Duration = Duration::from_secs(3600);
/// The most tokens held at once, all users together.
const MAX_TOKENS: usize = 100_000;

/// The outstanding tokens and whom they were issued to.
#[derive(Default)]
pub struct OpenIdTokens {
    tokens: Mutex<HashMap<String, (UserId, Instant)>>,
}

impl OpenIdTokens {
    /// Issues a token for `user`; 429 while too many are outstanding.
    pub fn issue(&self, user: &UserId) -> ServiceResult<String> {
        let mut tokens = self.tokens.lock().map_err(ServiceError::internal)?;
        let now = Instant::now();
        if tokens.len() >= MAX_TOKENS {
            tokens.retain(|_, (_, expires)| *expires > now);
        }
        if tokens.len() >= MAX_TOKENS {
            return Err(ServiceError::new(
                429,
                "M_LIMIT_EXCEEDED",
                "Too many OpenID tokens are outstanding; try again later",
            ));
        }
        let token = random_string(32);
        tokens.insert(token.clone(), (user.clone(), now + LIFETIME));
        Ok(token)
    }

    /// The user a live token was issued to.
    pub fn user_of(&self, token: &str) -> ServiceResult<UserId> {
        let tokens = self.tokens.lock().map_err(ServiceError::internal)?;
        match tokens.get(token) {
            Some((user, expires)) if *expires > Instant::now() => Ok(user.clone()),
            _ => Err(ServiceError::new(
                401,
                "M_UNKNOWN_TOKEN",
                "OpenID token unknown or expired",
            )),
        }
    }
}
