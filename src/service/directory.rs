//! The room directory: aliases to room ids.

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::state::Membership;
use crate::store::Store as _;

impl Service {
    /// The room an alias names.
    pub fn get_alias(&self, alias: &RoomAliasId) -> ServiceResult<RoomId> {
        self.resolve_alias_here(alias)
    }

    /// Points a new local alias at an existing room; a member of the room must ask.
    pub async fn set_alias(&self, sender: &UserId, alias: &RoomAliasId, room: &RoomId) -> ServiceResult<()> {
        if alias.server_name() != self.server_name {
            return Err(ServiceError::invalid_param(format!(
                "Room alias {alias} must be on this server ({})",
                self.server_name
            )));
        }
        self.require_room(room)?;
        if self.store.membership(room, sender)? != Some(Membership::Join) {
            return Err(ServiceError::forbidden(format!(
                "You must be joined to {room} to give it an alias"
            )));
        }
        let seq = self
            .store
            .set_alias(alias, room)?
            .ok_or_else(|| ServiceError::new(409, "M_UNKNOWN", format!("Room alias {alias} already exists")))?;
        self.durable(seq).await
    }

    /// Removes an alias; a member of its room with the canonical-alias power level must ask.
    pub async fn delete_alias(&self, sender: &UserId, alias: &RoomAliasId) -> ServiceResult<()> {
        let room = self.resolve_alias_here(alias)?;
        let rules = self.room_rules(&room)?;
        let needed = rules.power_levels.state_level("m.room.canonical_alias");
        let level = rules.power_levels.user_level(sender);
        if self.store.membership(&room, sender)? != Some(Membership::Join) || level < needed {
            return Err(ServiceError::forbidden(format!(
                "Deleting {alias} needs a joined member with power level {needed}; you have {level}"
            )));
        }
        let seq = self
            .store
            .delete_alias(alias)?
            .ok_or_else(|| ServiceError::not_found(format!("Room alias {alias} does not exist")))?;
        self.durable(seq).await
    }
}
