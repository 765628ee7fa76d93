//! Reading and writing room state: `/state`, `/members`, `joined_members`, `joined_rooms`.

use super::error::{ServiceError, ServiceResult};
use super::membership::authorize_all;
use super::Service;
use crate::ids::{RoomId, UserId};
use crate::membership::auth::ProposedEvent;
use crate::membership::restricted;
use crate::membership::rules::{self, ReadAccess};
use crate::membership::state::Membership;
use crate::store::{Event, Plan, RoomWrite, RoomWritten};
use serde_json::{Map, Value};

/// Which state a user may read.
enum StateView {
    /// The current state (joined members).
    Current,
    /// The state right after this position (former members: when they left).
    At(u64),
}

impl Service {
    /// Which state `user` may read in `room`, or 403.
    async fn state_view(&self, room: &RoomId, user: &UserId) -> ServiceResult<StateView> {
        self.require_room(room).await?;
        let entry = self.store.membership(room, user).await?;
        match rules::may_read_state(entry.map(|(m, _)| m)) {
            ReadAccess::Current => Ok(StateView::Current),
            ReadAccess::AsOfLeave => Ok(StateView::At(entry.map_or(0, |(_, pos)| pos))),
            ReadAccess::Denied => Err(ServiceError::forbidden(format!(
                "You are not in room {room} and never were, so you cannot read its state"
            ))),
        }
    }

    /// The state `user` may see: current for members, as of leaving for former members.
    pub async fn visible_state(&self, room: &RoomId, user: &UserId) -> ServiceResult<Vec<Event>> {
        Ok(match self.state_view(room, user).await? {
            StateView::Current => self.store.current_state(room).await?,
            StateView::At(pos) => self.store.state_at(room, pos).await?,
        })
    }

    /// One state event's content, by one lookup.
    pub async fn state_content(
        &self,
        room: &RoomId,
        user: &UserId,
        event_type: &str,
        state_key: &str,
    ) -> ServiceResult<Value> {
        let event = match self.state_view(room, user).await? {
            StateView::Current => self.store.state_event(room, event_type, state_key).await?,
            StateView::At(pos) => self.store.state_event_at(room, event_type, state_key, pos).await?,
        };
        event.map(|e| e.content).ok_or_else(|| {
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
        // A member event of one's own may be a restricted join: the gate then
        // needs the sender's other rooms and the authoriser it names.
        let mut rooms_of_sender = None;
        if event_type == "m.room.member" {
            if let Ok(target) = UserId::parse(state_key) {
                if target != *sender {
                    users.push(target);
                } else {
                    rooms_of_sender = Some(self.joined_rooms(sender).await?.into_iter().collect());
                }
            }
            if let Ok(Some(authoriser)) = restricted::authoriser_of(&content) {
                if !users.contains(&authoriser) {
                    users.push(authoriser);
                }
            }
        }
        let proposed = ProposedEvent {
            sender: sender.clone(),
            event_type: event_type.to_string(),
            state_key: Some(state_key.to_string()),
            content,
        };
        let joiner = sender.clone();
        let plan: Plan = Box::new(move |auth| {
            if let Some(rooms) = rooms_of_sender {
                auth.load_rooms_of(joiner, rooms);
            }
            authorize_all(auth, vec![proposed])
        });
        let written = self
            .store
            .write_room(RoomWrite {
                room: room.clone(),
                create: None,
                users,
                txn: None,
                plan,
            })
            .await?;
        match written {
            RoomWritten::Written(events) if !events.is_empty() => Ok(events[0].event_id.clone()),
            other => Err(ServiceError::internal(format!("a state write answered {other:?}"))),
        }
    }
}
