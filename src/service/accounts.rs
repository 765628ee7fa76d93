//! Sessions: password login, logout, whoami, and the access tokens behind
//! them. Registration is in `registration.rs`, hashing in `password.rs`.
//!
//! Login follows Synapse (`synapse/rest/client/login.py`,
//! `synapse/handlers/auth.py`): every request is charged to its client
//! address; an account with too many recent failures is refused before its
//! password is checked, and each failure is charged to it; a success is
//! charged to the account.

use super::error::{ServiceError, ServiceResult};
use super::registration::check_device_id;
use super::{random_string, Service};
use crate::caller::credentials::{self, Caller, CredentialError, TokenHash, TokenResolver};
use crate::caller::ClientAddr;
use crate::ids::UserId;
use swagger::auth::AuthData;

/// A new session's credentials.
pub struct Session {
    pub user_id: UserId,
    pub access_token: String,
    pub device_id: String,
}

/// A credential failure as the service answers it.
fn credential_error(e: CredentialError) -> ServiceError {
    ServiceError::new(e.status(), e.errcode(), e.message())
}

impl Service {
    /// Issues a new access token for `user`'s device, replacing any token the device had.
    pub async fn open_session(&self, user: &UserId, device_id: Option<String>) -> ServiceResult<Session> {
        let access_token = format!("mm_{}", random_string(40));
        let device_id = device_id.unwrap_or_else(|| random_string(10).to_uppercase());
        self.store
            .add_token(&credentials::token_hash(&access_token), user, &device_id)
            .await?;
        Ok(Session {
            user_id: user.clone(),
            access_token,
            device_id,
        })
    }

    /// Password login; `user` is a full user id or a localpart.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        device_id: Option<String>,
        client: Option<ClientAddr>,
    ) -> ServiceResult<Session> {
        if let Some(ClientAddr(address)) = &client {
            self.limits.login_address.check(address)?;
        }
        let forbidden = || ServiceError::forbidden("Invalid username or password");
        let user_id = if user.starts_with('@') {
            UserId::parse(user).map_err(|_| forbidden())?
        } else {
            UserId::new(&user.to_lowercase(), &self.server_name).map_err(|_| forbidden())?
        };
        let account = user_id.as_str().to_lowercase();
        self.limits.login_failed.peek(&account)?;
        check_device_id(device_id.as_deref())?;
        let stored = self.store.password_hash(&user_id).await?.filter(|h| !h.is_empty());
        // No stored hash still costs a check (of a dummy), so a missing
        // account is neither cheaper nor faster than a wrong password.
        let valid = !password.is_empty() && self.passwords.verify(password.to_string(), stored).await?;
        if !valid {
            // Charged without refusing: the refusal happened above, and the
            // client should learn the password was wrong.
            let _ = self.limits.login_failed.check(&account);
            return Err(forbidden());
        }
        // As Synapse: a deactivated account learns so only with its right password.
        if self.store.account_flags(&user_id).await?.is_some_and(|f| f.deactivated) {
            return Err(ServiceError::new(
                403,
                "M_USER_DEACTIVATED",
                "This account has been deactivated",
            ));
        }
        self.limits.login_account.check(&account)?;
        self.open_session(&user_id, device_id).await
    }

    /// The caller behind a request's credential.
    pub async fn caller(&self, auth: Option<&AuthData>) -> ServiceResult<Caller> {
        credentials::authenticate(self, auth).await.map_err(credential_error)
    }

    /// Ends the caller's session.
    pub async fn logout(&self, caller: &Caller) -> ServiceResult<()> {
        Ok(self.store.remove_token(&caller.token_hash).await?)
    }
}

#[async_trait::async_trait]
impl TokenResolver for Service {
    async fn token_owner(&self, hash: &TokenHash) -> Result<Option<(UserId, String)>, String> {
        self.store.token_user(hash).await.map_err(|e| e.to_string())
    }
}
