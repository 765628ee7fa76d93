//! Accounts and sessions: registration with user-interactive auth, password
//! login, logout, whoami, and access-token lookup.

use super::error::{ServiceError, ServiceResult};
use super::{random_string, Service};
use crate::http::auth::TokenResolver;
use crate::ids::{is_valid_localpart, UserId};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// The only user-interactive-auth stage we offer.
pub const DUMMY_STAGE: &str = "m.login.dummy";
const UIA_SESSION_TTL: Duration = Duration::from_secs(600);

/// A new session's credentials.
pub struct Session {
    pub user_id: UserId,
    pub access_token: String,
    pub device_id: String,
}

/// What `/register` needs from its request body.
pub struct Registration {
    pub username: Option<String>,
    pub password: Option<String>,
    pub device_id: Option<String>,
    pub inhibit_login: bool,
    /// The UIA stage and session the client completed, if any.
    pub auth: Option<(String, Option<String>)>,
}

/// The result of one `/register` call.
pub enum RegisterOutcome {
    /// More auth is needed: the 401 body's session.
    NeedsAuth {
        session: String,
    },
    Registered {
        user_id: UserId,
        session: Option<Session>,
    },
}

/// Tokens are stored only as their SHA-256, so a copied database yields no sessions.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hash_password(password: &str) -> ServiceResult<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ServiceError::internal)
}

fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

impl Service {
    fn new_uia_session(&self) -> String {
        let session = random_string(24);
        let mut sessions = self.uia_sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, started| now.duration_since(*started) < UIA_SESSION_TTL);
        sessions.insert(session.clone(), now);
        session
    }

    fn take_uia_session(&self, session: &str) -> bool {
        let mut sessions = self.uia_sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions
            .remove(session)
            .is_some_and(|started| started.elapsed() < UIA_SESSION_TTL)
    }

    /// Registers an account; the first call without `auth` only opens a UIA session.
    pub async fn register(&self, reg: Registration) -> ServiceResult<RegisterOutcome> {
        let localpart = match &reg.username {
            Some(name) => name.to_lowercase(),
            None => format!("u{}", random_string(10).to_lowercase()),
        };
        if !is_valid_localpart(&localpart) {
            return Err(ServiceError::new(
                400,
                "M_INVALID_USERNAME",
                format!("{localpart:?} is not a valid username: use only a-z, 0-9, '.', '_', '=', '-' and '/'"),
            ));
        }
        let user_id = UserId::new(&localpart, &self.server_name)
            .map_err(|e| ServiceError::new(400, "M_INVALID_USERNAME", e.0))?;
        if self.store.user_exists(&user_id).await? {
            return Err(ServiceError::new(
                400,
                "M_USER_IN_USE",
                format!("{user_id} is already taken"),
            ));
        }
        match &reg.auth {
            None => {
                return Ok(RegisterOutcome::NeedsAuth {
                    session: self.new_uia_session(),
                })
            }
            Some((stage, _)) if stage != DUMMY_STAGE => {
                return Err(ServiceError::new(
                    400,
                    "M_UNRECOGNIZED",
                    format!("auth type {stage:?} is not offered; use {DUMMY_STAGE}"),
                ))
            }
            Some((_, session)) => {
                if !session.as_deref().is_some_and(|s| self.take_uia_session(s)) {
                    return Ok(RegisterOutcome::NeedsAuth {
                        session: self.new_uia_session(),
                    });
                }
            }
        }
        // An account without a password (Matrix allows it) skips the deliberately
        // slow hash; it simply cannot log in with m.login.password.
        let hash = match reg.password.clone().filter(|p| !p.is_empty()) {
            None => String::new(),
            Some(password) => tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(ServiceError::internal)??,
        };
        if !self.store.create_user(&user_id, &hash).await? {
            return Err(ServiceError::new(
                400,
                "M_USER_IN_USE",
                format!("{user_id} is already taken"),
            ));
        }
        let session = if reg.inhibit_login {
            None
        } else {
            Some(self.open_session(&user_id, reg.device_id).await?)
        };
        Ok(RegisterOutcome::Registered { user_id, session })
    }

    /// Issues a new access token for `user`.
    pub async fn open_session(&self, user: &UserId, device_id: Option<String>) -> ServiceResult<Session> {
        let access_token = format!("mm_{}", random_string(40));
        let device_id = device_id.unwrap_or_else(|| random_string(10).to_uppercase());
        self.store
            .add_token(&token_hash(&access_token), user, &device_id)
            .await?;
        Ok(Session {
            user_id: user.clone(),
            access_token,
            device_id,
        })
    }

    /// Password login; `user` is a full user id or a localpart.
    pub async fn login(&self, user: &str, password: &str, device_id: Option<String>) -> ServiceResult<Session> {
        let forbidden = || ServiceError::forbidden("Invalid username or password");
        let user_id = if user.starts_with('@') {
            UserId::parse(user).map_err(|_| forbidden())?
        } else {
            UserId::new(&user.to_lowercase(), &self.server_name).map_err(|_| forbidden())?
        };
        let stored = self.store.password_hash(&user_id).await?.ok_or_else(forbidden)?;
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || !password.is_empty() && verify_password(&password, &stored))
            .await
            .map_err(ServiceError::internal)?;
        if !ok {
            return Err(forbidden());
        }
        self.open_session(&user_id, device_id).await
    }

    /// Ends the session of `token`.
    pub async fn logout(&self, token: &str) -> ServiceResult<()> {
        Ok(self.store.remove_token(&token_hash(token)).await?)
    }

    /// The user and device behind `token`.
    pub async fn whoami(&self, token: &str) -> ServiceResult<(UserId, String)> {
        self.store
            .token_user(&token_hash(token))
            .await?
            .ok_or_else(|| ServiceError::new(401, "M_UNKNOWN_TOKEN", "Unrecognised access token"))
    }
}

#[async_trait::async_trait]
impl TokenResolver for Service {
    async fn resolve_token(&self, token: &str) -> Result<Option<String>, String> {
        self.store
            .token_user(&token_hash(token))
            .await
            .map(|found| found.map(|(user, _)| user.to_string()))
            .map_err(|e| e.to_string())
    }
}
