//! What clients read at start-up besides sync: filters, profiles,
//! capabilities, push rules and discovery.

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::UserId;
use crate::membership::auth::{DEFAULT_ROOM_VERSION, SUPPORTED_ROOM_VERSIONS};
use serde_json::{json, Value};

impl Service {
    pub(super) fn require_self(&self, sender: &UserId, user: &UserId, what: &str) -> ServiceResult<()> {
        if sender == user {
            Ok(())
        } else {
            Err(ServiceError::forbidden(format!(
                "You can only {what} for yourself, not for {user}"
            )))
        }
    }

    /// Stores a sync filter of `user` and returns its id.
    pub async fn define_filter(&self, sender: &UserId, user: &UserId, filter: Value) -> ServiceResult<String> {
        self.require_self(sender, user, "create filters")?;
        Ok(self.store.put_filter(user, &filter).await?)
    }

    /// A filter `user` stored.
    pub async fn get_filter(&self, sender: &UserId, user: &UserId, filter_id: &str) -> ServiceResult<Value> {
        self.require_self(sender, user, "read filters")?;
        self.store
            .filter(user, filter_id)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("{user} has no filter with ID {filter_id:?}")))
    }

    /// The display name of a local user: the one they set, else their localpart.
    pub async fn display_name(&self, user: &UserId) -> ServiceResult<String> {
        if user.server_name() != self.server_name || !self.store.user_exists(user).await? {
            return Err(ServiceError::not_found(format!(
                "There is no user {user} on this server"
            )));
        }
        Ok(self
            .store
            .displayname(user)
            .await?
            .unwrap_or_else(|| user.localpart().to_string()))
    }

    /// Sets (or, with `None` or "", clears) the sender's display name.
    pub async fn set_display_name(&self, sender: &UserId, user: &UserId, name: Option<&str>) -> ServiceResult<()> {
        self.require_self(sender, user, "set a display name")?;
        if let Some(name) = name {
            check_display_name(name)?;
        }
        Ok(self.store.set_displayname(user, name.filter(|n| !n.is_empty())).await?)
    }

    /// `/capabilities`: no password changes; every room version the gate implements.
    pub fn capabilities(&self) -> Value {
        let available: serde_json::Map<String, Value> = SUPPORTED_ROOM_VERSIONS
            .iter()
            .map(|v| (v.to_string(), json!("stable")))
            .collect();
        json!({
            "m.change_password": {"enabled": false},
            "m.room_versions": {"default": DEFAULT_ROOM_VERSION, "available": available},
            "m.set_displayname": {"enabled": true},
            "m.set_avatar_url": {"enabled": false},
            "m.3pid_changes": {"enabled": false},
        })
    }

    /// `/pushrules/`: an empty rule set of every kind.
    pub fn push_rules(&self) -> Value {
        json!({"override": [], "content": [], "room": [], "sender": [], "underride": []})
    }

    /// `/.well-known/matrix/client`'s homeserver object.
    pub fn well_known_homeserver(&self) -> Value {
        json!({"base_url": self.public_base_url})
    }
}

/// Synapse's limit on a display name, in characters.
const MAX_DISPLAY_NAME_CHARS: usize = 256;

/// Refuses a display name Synapse refuses (too long) and one no store can
/// hold on every backend (U+0000: PostgreSQL `text` cannot).
fn check_display_name(name: &str) -> ServiceResult<()> {
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(ServiceError::new(
            400,
            "M_UNKNOWN",
            format!("Displayname is too long (max {MAX_DISPLAY_NAME_CHARS})"),
        ));
    }
    if name.contains('\0') {
        return Err(ServiceError::new(
            400,
            "M_UNKNOWN",
            "displayname may not contain U+0000",
        ));
    }
    Ok(())
}
