//! Reading and writing room state: `/state`, `/members`, `joined_members`, `joined_rooms`.

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::{RoomId, UserId};
use crate::membership::rules::{self, Decision, ReadAccess};
use crate::membership::state::{Membership, PowerLevels};
use crate::store::Store as _;
use crate::store::{Event, NewEvent};
use serde_json::Value;

impl Service {
    /// The state `user` may see: current for members, as of leaving for former members.
    pub fn visible_state(&self, room: &RoomId, user: &UserId) -> ServiceResult<Vec<Event>> {
        self.require_room(room)?;
        let membership = self.store.membership(room, user)?;
        match rules::may_read_state(membership) {
            ReadAccess::Current => Ok(self.store.current_state(room)?),
            ReadAccess::AsOfLeave => {
                let pos = self.store.membership_pos(room, user)?.unwrap_or(0);
                Ok(self.store.state_at(room, pos)?)
            }
            ReadAccess::Denied => Err(ServiceError::forbidden(format!(
                "You are not in room {room} and never were, so you cannot read its state"
            ))),
        }
    }

    /// One state event's content.
    pub fn state_content(
        &self,
        room: &RoomId,
        user: &UserId,
        event_type: &str,
        state_key: &str,
    ) -> ServiceResult<Value> {
        self.visible_state(room, user)?
            .into_iter()
            .find(|e| e.event_type == event_type && e.state_key.as_deref() == Some(state_key))
            .map(|e| e.content)
            .ok_or_else(|| {
                ServiceError::not_found(format!("Room {room} has no state event ({event_type}, {state_key:?})"))
            })
    }

    /// Member events, filtered by membership as `/members` allows.
    pub fn member_events(
        &self,
        room: &RoomId,
        user: &UserId,
        membership: Option<&str>,
        not_membership: Option<&str>,
    ) -> ServiceResult<Vec<Event>> {
        let of = |e: &Event| e.content.get("membership").and_then(Value::as_str).map(str::to_string);
        Ok(self
            .visible_state(room, user)?
            .into_iter()
            .filter(|e| e.event_type == "m.room.member")
            .filter(|e| membership.is_none_or(|m| of(e).as_deref() == Some(m)))
            .filter(|e| not_membership.is_none_or(|m| of(e).as_deref() != Some(m)))
            .collect())
    }

    /// Rooms `user` is joined to.
    pub fn joined_rooms(&self, user: &UserId) -> ServiceResult<Vec<RoomId>> {
        Ok(self
            .store
            .rooms_of(user)?
            .into_iter()
            .filter(|(_, m)| *m == Membership::Join)
            .map(|(r, _)| r)
            .collect())
    }

    /// Sends a state event other than a membership change.
    pub async fn set_state(
        &self,
        room: &RoomId,
        sender: &UserId,
        event_type: &str,
        state_key: &str,
        content: Value,
    ) -> ServiceResult<String> {
        if event_type == "m.room.member" {
            return Err(ServiceError::forbidden(
                "Membership changes go through /join, /invite, /leave, /kick, /ban and /unban",
            ));
        }
        if event_type == "m.room.create" {
            return Err(ServiceError::forbidden(
                "m.room.create cannot be changed after the room exists",
            ));
        }
        self.require_room(room)?;
        let new_levels = if event_type == "m.room.power_levels" {
            Some(serde_json::from_value::<PowerLevels>(content.clone()).map_err(|e| {
                ServiceError::new(
                    400,
                    "M_BAD_JSON",
                    format!("m.room.power_levels content is invalid: {e}"),
                )
            })?)
        } else {
            None
        };
        if event_type == "m.room.join_rules"
            && content
                .get("join_rule")
                .and_then(|j| serde_json::from_value::<crate::membership::state::JoinRule>(j.clone()).ok())
                .is_none()
        {
            return Err(ServiceError::new(
                400,
                "M_BAD_JSON",
                "m.room.join_rules needs a known join_rule",
            ));
        }
        let (event_id, seq) = {
            let _guard = self.room_locks.lock(room).await;
            let rules = self.room_rules(room)?;
            let sender_m = self.store.membership(room, sender)?;
            if let Decision::Denied(why) = rules::may_send_state(
                rules.view(),
                sender,
                sender_m,
                event_type,
                state_key,
                new_levels.as_ref(),
            ) {
                return Err(ServiceError::forbidden(why));
            }
            let event = NewEvent {
                sender: sender.clone(),
                event_type: event_type.to_string(),
                state_key: Some(state_key.to_string()),
                content,
            };
            let room = room.clone();
            let (events, seq) = self.write(move |store| store.append(&room, &[event])).await?;
            (events.into_iter().next().map(|e| e.event_id).unwrap_or_default(), seq)
        };
        self.durable(seq).await?;
        Ok(event_id)
    }
}
