//! Account data: JSON objects a user keeps on the server for their clients,
//! global or per room, delivered by `/sync`; and the one entry the server
//! itself reads, `m.invite_permission_config` (invite blocking, spec v1.18).

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::{RoomId, UserId};
use serde_json::{Map, Value};

/// The account data type that decides whether the user accepts invites.
pub const INVITE_PERMISSION_CONFIG: &str = "m.invite_permission_config";

/// Types the account data API does not set, as the spec and Synapse say:
/// the read marker has its own endpoint, push rules their own API.
fn refused_type(room: Option<&RoomId>, event_type: &str) -> Option<ServiceError> {
    match (room, event_type) {
        (Some(_), "m.fully_read") => Some(ServiceError::new(
            405,
            "M_BAD_JSON",
            "m.fully_read cannot be set as room account data; use /rooms/{roomId}/read_markers",
        )),
        (None, "m.push_rules") => Some(ServiceError::new(
            400,
            "M_BAD_JSON",
            "m.push_rules cannot be set as account data; push rules have their own API",
        )),
        _ => None,
    }
}

/// Whether an `m.invite_permission_config` content blocks every invite.
/// Anything but `default_action: "block"` (missing, unknown, not a string)
/// means the user accepts invites as usual, as the spec says.
pub fn blocks_invites(config: &Value) -> bool {
    config.get("default_action").and_then(Value::as_str) == Some("block")
}

impl Service {
    /// Stores `sender`'s account data of `event_type`; answers once durable.
    pub async fn set_account_data(
        &self,
        sender: &UserId,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
        content: Map<String, Value>,
    ) -> ServiceResult<()> {
        self.require_self(sender, user, "set account data")?;
        if let Some(refusal) = refused_type(room, event_type) {
            return Err(refusal);
        }
        if let Some(room) = room {
            self.require_room(room).await?;
        }
        self.store
            .set_account_data(user, room, event_type, &Value::Object(content))
            .await?;
        Ok(())
    }

    /// `sender`'s account data of `event_type`, or 404.
    pub async fn account_data(
        &self,
        sender: &UserId,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
    ) -> ServiceResult<Value> {
        self.require_self(sender, user, "read account data")?;
        let where_ = room.map_or_else(String::new, |r| format!(" for room {r}"));
        self.store
            .account_data(user, room, event_type)
            .await?
            .map(|d| d.content)
            .ok_or_else(|| {
                ServiceError::not_found(format!("{user} has no account data of type {event_type:?}{where_}"))
            })
    }

    /// Whether `user` blocks every invite (their `m.invite_permission_config`).
    pub async fn invites_blocked(&self, user: &UserId) -> ServiceResult<bool> {
        Ok(self
            .store
            .account_data(user, None, INVITE_PERMISSION_CONFIG)
            .await?
            .is_some_and(|d| blocks_invites(&d.content)))
    }

    /// 403 `M_INVITE_BLOCKED` if `invitee` blocks invites. Checked before the
    /// invite is proposed, so the gate stays a pure function of room state.
    pub async fn require_invites_allowed(&self, invitee: &UserId) -> ServiceResult<()> {
        if self.invites_blocked(invitee).await? {
            return Err(ServiceError::new(
                403,
                "M_INVITE_BLOCKED",
                format!("{invitee} does not accept invites"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_default_action_block_blocks_invites() {
        assert!(blocks_invites(&json!({"default_action": "block"})));
        assert!(!blocks_invites(&json!({"default_action": "allow"})));
        assert!(!blocks_invites(&json!({"default_action": true})));
        assert!(!blocks_invites(&json!({})));
    }

    #[test]
    fn the_read_marker_is_refused_only_as_room_account_data() {
        let room = RoomId::parse("!r:l").unwrap();
        let refusal = refused_type(Some(&room), "m.fully_read").expect("refused");
        assert_eq!((refusal.status, refusal.errcode), (405, "M_BAD_JSON"));
        assert!(refused_type(None, "m.fully_read").is_none());
        assert!(refused_type(Some(&room), "m.tag").is_none());
    }
}
