//! The room directory: aliases to room ids.

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::state::{Membership, PowerLevels};

impl Service {
    /// The room an alias names.
    pub async fn get_alias(&self, alias: &RoomAliasId) -> ServiceResult<RoomId> {
        self.resolve_alias_here(alias).await
    }

    /// Points a new local alias at an existing room; a member of the room must ask.
    pub async fn set_alias(&self, sender: &UserId, alias: &RoomAliasId, room: &RoomId) -> ServiceResult<()> {
        if alias.server_name() != self.server_name {
            return Err(ServiceError::invalid_param(format!(
                "Room alias {alias} must be on this server ({})",
                self.server_name
            )));
        }
        self.require_room(room).await?;
        if self.store.membership(room, sender).await?.map(|(m, _)| m) != Some(Membership::Join) {
            return Err(ServiceError::forbidden(format!(
                "You must be joined to {room} to give it an alias"
            )));
        }
        if !self.store.set_alias(alias, room).await? {
            return Err(ServiceError::new(
                409,
                "M_UNKNOWN",
                format!("Room alias {alias} already exists"),
            ));
        }
        Ok(())
    }

    /// Removes an alias; a member of its room with the canonical-alias power level must ask.
    pub async fn delete_alias(&self, sender: &UserId, alias: &RoomAliasId) -> ServiceResult<()> {
        let room = self.resolve_alias_here(alias).await?;
        let levels: PowerLevels = self
            .store
            .state_event(&room, "m.room.power_levels", "")
            .await?
            .and_then(|e| serde_json::from_value(e.content).ok())
            .unwrap_or_default();
        let needed = levels.state_level("m.room.canonical_alias");
        let level = levels.user_level(sender);
        let joined = self.store.membership(&room, sender).await?.map(|(m, _)| m) == Some(Membership::Join);
        if !joined || level < needed {
            return Err(ServiceError::forbidden(format!(
                "Deleting {alias} needs a joined member with power level {needed}; you have {level}"
            )));
        }
        if !self.store.delete_alias(alias).await? {
            return Err(ServiceError::not_found(format!("Room alias {alias} does not exist")));
        }
        Ok(())
    }
}
