//! Membership changes: read the room under its lock, ask the rules, append
//! one `m.room.member` event, and acknowledge only once it is durable.

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::{RoomAliasId, RoomId, RoomOrAlias, UserId};
use crate::membership::rules::{self, Decision, RoomView};
use crate::membership::state::{JoinRule, Membership, PowerLevels};
use crate::store::NewEvent;
use crate::store::Store as _;
use serde_json::{json, Value};

/// A membership change one user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Join,
    Invite,
    Leave,
    Kick,
    Ban,
    Unban,
}

impl Action {
    /// The membership the target has afterwards.
    fn resulting(self) -> Membership {
        match self {
            Action::Join => Membership::Join,
            Action::Invite => Membership::Invite,
            Action::Leave | Action::Kick | Action::Unban => Membership::Leave,
            Action::Ban => Membership::Ban,
        }
    }
}

/// What the rules read about a room, owned.
pub struct RoomRules {
    pub join_rule: JoinRule,
    pub power_levels: PowerLevels,
}

impl RoomRules {
    /// Borrowed view for the pure rules.
    pub fn view(&self) -> RoomView<'_> {
        RoomView {
            join_rule: self.join_rule,
            power_levels: &self.power_levels,
        }
    }
}

impl Service {
    /// 404 unless the room exists here; rooms elsewhere get a federation message.
    pub(super) fn require_room(&self, room: &RoomId) -> ServiceResult<()> {
        if self.store.room_exists(room)? {
            return Ok(());
        }
        if room.server_name() != self.server_name {
            return Err(ServiceError::not_found(format!(
                "Room {room} is on server {}; this server does not support federation",
                room.server_name()
            )));
        }
        Err(ServiceError::not_found(format!("Room {room} does not exist")))
    }

    /// Join rule and power levels from current state (invite-only if unreadable).
    pub(super) fn room_rules(&self, room: &RoomId) -> ServiceResult<RoomRules> {
        let join_rule = self
            .store
            .state_event(room, "m.room.join_rules", "")?
            .and_then(|e| serde_json::from_value(e.content.get("join_rule")?.clone()).ok())
            .unwrap_or(JoinRule::Invite);
        let power_levels = self
            .store
            .state_event(room, "m.room.power_levels", "")?
            .and_then(|e| serde_json::from_value(e.content).ok())
            .unwrap_or_default();
        Ok(RoomRules {
            join_rule,
            power_levels,
        })
    }

    /// Resolves `/join/{roomIdOrAlias}`'s parameter to a room id.
    pub fn resolve_room(&self, target: &RoomOrAlias) -> ServiceResult<RoomId> {
        match target {
            RoomOrAlias::Room(room) => Ok(room.clone()),
            RoomOrAlias::Alias(alias) => self.resolve_alias_here(alias),
        }
    }

    /// Looks an alias up in our directory; aliases of other servers need federation.
    pub(super) fn resolve_alias_here(&self, alias: &RoomAliasId) -> ServiceResult<RoomId> {
        if alias.server_name() != self.server_name {
            return Err(ServiceError::not_found(format!(
                "Room alias {alias} is on server {}; this server does not support federation",
                alias.server_name()
            )));
        }
        self.store
            .resolve_alias(alias)?
            .ok_or_else(|| ServiceError::not_found(format!("Room alias {alias} does not exist")))
    }

    /// Joins `user` to `room`; joining again changes nothing and writes nothing.
    pub async fn join(&self, room: &RoomId, user: &UserId, reason: Option<String>) -> ServiceResult<()> {
        self.change_membership(room, user, user, Action::Join, reason).await
    }

    /// Applies one membership change by `sender` to `target`.
    pub async fn change_membership(
        &self,
        room: &RoomId,
        sender: &UserId,
        target: &UserId,
        action: Action,
        reason: Option<String>,
    ) -> ServiceResult<()> {
        self.require_room(room)?;
        if action != Action::Join && action != Action::Leave && sender != target {
            self.require_local(target, "User")?;
            if !self.store.user_exists(target)? {
                return Err(ServiceError::not_found(format!(
                    "User {target} does not exist on this server"
                )));
            }
        }
        let seq = {
            let _guard = self.room_locks.lock(room).await;
            let rules = self.room_rules(room)?;
            let sender_m = self.store.membership(room, sender)?;
            let target_m = if sender == target {
                sender_m
            } else {
                self.store.membership(room, target)?
            };
            let decision = match action {
                Action::Join => rules::may_join(rules.view(), sender, sender_m),
                Action::Invite => rules::may_invite(rules.view(), sender, sender_m, target, target_m),
                Action::Leave => rules::may_leave(sender_m),
                Action::Kick => rules::may_kick(rules.view(), sender, sender_m, target, target_m),
                Action::Ban => rules::may_ban(rules.view(), sender, sender_m, target, target_m),
                Action::Unban => rules::may_unban(rules.view(), sender, sender_m, target, target_m),
            };
            if let Decision::Denied(why) = decision {
                return Err(ServiceError::forbidden(why));
            }
            let unchanged = target_m == Some(action.resulting())
                && matches!(action, Action::Join | Action::Invite | Action::Ban)
                && reason.is_none();
            if unchanged {
                // Idempotent: re-joining, re-inviting or re-banning writes no event and is not charged.
                return Ok(());
            }
            let limit = if action == Action::Join {
                &self.limits.join
            } else {
                &self.limits.invite
            };
            if action != Action::Leave {
                limit.check(sender.as_str())?;
            }
            let mut content = json!({ "membership": action.resulting().as_str() });
            if action == Action::Join {
                content["displayname"] = Value::String(target.localpart().to_string());
            }
            if let Some(reason) = reason {
                content["reason"] = Value::String(reason);
            }
            let event = NewEvent {
                sender: sender.clone(),
                event_type: "m.room.member".into(),
                state_key: Some(target.to_string()),
                content,
            };
            let room = room.clone();
            self.write(move |store| store.append(&room, &[event])).await?.1
        };
        self.durable(seq).await
    }
}
