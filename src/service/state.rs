//! Reading and writing room state: `/state`, `/members`, `joined_members`, `joined_rooms`.

use super::error::{ServiceError, ServiceResult};
use super::membership::plan_all;
use super::Service;
use crate::ids::{RoomId, UserId};
use crate::membership::auth::ProposedEvent;
use crate::membership::rules::{self, ReadAccess};
use crate::membership::state::Membership;
use crate::store::{Event, RoomWrite, RoomWritten};
use serde_json::{Map, Value};

impl Service {
    /// The state `user` may see: current for members, as of leaving for former members.
    pub async fn visible_state(&self, room: &RoomId, user: &UserId) -> ServiceResult<Vec<Event>> {
        self.require_room(room).await?;
        let entry = self.store.membership(room, user).await?;
        match rules::may_read_state(entry.map(|(m, _)| m)) {
            ReadAccess::Current => Ok(self.store.current_state(room).await?),
            ReadAccess::AsOfLeave => {
                let pos = entry.map_or(0, |(_, pos)| pos);
                Ok(self.store.state_at(room, pos).await?)
            }
            ReadAccess::Denied => Err(ServiceError::forbidden(format!(
                "You are not in room {room} and never were, so you cannot read its state"
            ))),
        }
    }

    /// One state event's content.
    pub async fn state_content(
        &self,
        room: &RoomId,
        user: &UserId,
        event_type: &str,
        state_key: &str,
    ) -> ServiceResult<Value> {
        self.visible_state(room, user)
            .await?
            .into_iter()
            .find(|e| e.event_type == event_type && e.state_key.as_deref() == Some(state_key))
            .map(|e| e.content)
            .ok_or_else(|| {
                ServiceError::not_found(format!("Room {room} has no state event ({event_type}, {state_key:?})"))
            })
    }

    /// Member events, filtered by membership as `/members` allows.
    pub async fn member_events(
        &self,
        room: &RoomId,
        user: &UserId,
        membership: Option<&str>,
        not_membership: Option<&str>,
    ) -> ServiceResult<Vec<Event>> {
        let of = |e: &Event| e.content.get("membership").and_then(Value::as_str).map(str::to_string);
        Ok(self
            .visible_state(room, user)
            .await?
            .into_iter()
            .filter(|e| e.event_type == "m.room.member")
            .filter(|e| membership.is_none_or(|m| of(e).as_deref() == Some(m)))
            .filter(|e| not_membership.is_none_or(|m| of(e).as_deref() != Some(m)))
            .collect())
    }

    /// Rooms `user` is joined to.
    pub async fn joined_rooms(&self, user: &UserId) -> ServiceResult<Vec<RoomId>> {
        Ok(self
            .store
            .rooms_of(user)
            .await?
            .into_iter()
            .filter(|(_, (m, _))| *m == Membership::Join)
            .map(|(r, _)| r)
            .collect())
    }

    /// Sends a state event; the gate judges it like any other, member events included.
    pub async fn set_state(
        &self,
        room: &RoomId,
        sender: &UserId,
        event_type: &str,
        state_key: &str,
        content: Map<String, Value>,
    ) -> ServiceResult<String> {
        self.require_room(room).await?;
        let mut users = vec![sender.clone()];
        if event_type == "m.room.member" {
            if let Ok(target) = UserId::parse(state_key) {
                if target != *sender {
                    users.push(target);
                }
            }
        }
        let proposed = ProposedEvent {
            sender: sender.clone(),
            event_type: event_type.to_string(),
            state_key: Some(state_key.to_string()),
            content,
        };
        let written = self
            .store
            .write_room(RoomWrite {
                room: room.clone(),
                create: None,
                users,
                txn: None,
                plan: plan_all(vec![proposed]),
            })
            .await?;
        match written {
            RoomWritten::Written(events) if !events.is_empty() => Ok(events[0].event_id.clone()),
            other => Err(ServiceError::internal(format!("a state write answered {other:?}"))),
        }
    }
}
