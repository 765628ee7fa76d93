//! Accounts and access tokens.

use super::rows::{self, db};
use super::PgStore;
use crate::ids::UserId;
use crate::store::{AccountFlags, AccountSummary, StoreError};

impl PgStore {
    pub(super) async fn password_hash_of(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.query_opt("SELECT password_hash FROM users WHERE user_id = $1", &[&user.as_str()])
            .await?
            .map(|r| r.try_get(0).map_err(db))
            .transpose()
    }

    /// The device's previous token goes in the same statement. The user's
    /// row is read `FOR SHARE`, so a deactivation running at the same time
    /// either comes first (and this fails) or waits and revokes this token.
    pub(super) async fn insert_token(&self, hash: &[u8; 32], user: &UserId, device: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let flags = tx
            .query_opt(
                "SELECT deactivated FROM users WHERE user_id = $1 FOR SHARE",
                &[&user.as_str()],
            )
            .await
            .map_err(db)?;
        if let Some(row) = flags {
            if row.try_get::<_, bool>(0).map_err(db)? {
                return Err(StoreError::Deactivated(user.to_string()));
            }
        }
        tx.execute(
            "INSERT INTO tokens (token_hash, user_id, device_id) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, device_id) DO UPDATE SET token_hash = EXCLUDED.token_hash",
            &[&&hash[..], &user.as_str(), &device],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    pub(super) async fn token_owner(&self, hash: &[u8; 32]) -> Result<Option<(UserId, String)>, StoreError> {
        self.query_opt(
            "SELECT user_id, device_id FROM tokens WHERE token_hash = $1",
            &[&&hash[..]],
        )
        .await?
        .map(|r| {
            let user: String = r.try_get(0).map_err(db)?;
            Ok((rows::user(&user)?, r.try_get(1).map_err(db)?))
        })
        .transpose()
    }

    pub(super) async fn flags_of(&self, user: &UserId) -> Result<Option<AccountFlags>, StoreError> {
        self.query_opt(
            "SELECT admin, deactivated FROM users WHERE user_id = $1",
            &[&user.as_str()],
        )
        .await?
        .map(|r| {
            Ok(AccountFlags {
                admin: r.try_get(0).map_err(db)?,
                deactivated: r.try_get(1).map_err(db)?,
            })
        })
        .transpose()
    }

    pub(super) async fn replace_password(&self, user: &UserId, hash: &str, logout: bool) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let changed = tx
            .execute(
                "UPDATE users SET password_hash = $2 WHERE user_id = $1",
                &[&user.as_str(), &hash],
            )
            .await
            .map_err(db)?;
        if changed == 0 {
            return Ok(false);
        }
        if logout {
            tx.execute("DELETE FROM tokens WHERE user_id = $1", &[&user.as_str()])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    pub(super) async fn deactivate_account(&self, user: &UserId) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let changed = tx
            .execute(
                "UPDATE users SET deactivated = true WHERE user_id = $1",
                &[&user.as_str()],
            )
            .await
            .map_err(db)?;
        if changed == 0 {
            return Ok(false);
        }
        tx.execute("DELETE FROM tokens WHERE user_id = $1", &[&user.as_str()])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    pub(super) async fn all_accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        self.query("SELECT user_id, admin, deactivated FROM users ORDER BY user_id", &[])
            .await?
            .iter()
            .map(|r| {
                let user: String = r.try_get(0).map_err(db)?;
                Ok(AccountSummary {
                    user: rows::user(&user)?,
                    flags: AccountFlags {
                        admin: r.try_get(1).map_err(db)?,
                        deactivated: r.try_get(2).map_err(db)?,
                    },
                })
            })
            .collect()
    }
}
