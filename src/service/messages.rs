//! Message events: sending with idempotent transaction ids, paging through a
//! room's history (`/messages`) under its history visibility, and the stream
//! tokens both `/messages` and `/sync` hand out.

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::{RoomId, UserId};
use crate::membership::rules::{self, Decision, HistoryVisibility, Window};
use crate::membership::state::Membership;
use crate::store::Store as _;
use crate::store::{Event, NewEvent};
use serde_json::Value;

/// The most events one `/messages` or timeline answer carries.
pub const MAX_LIMIT: usize = 1000;

/// A stream token: the point just after the event at `pos` ("s" + position).
pub fn token(pos: u64) -> String {
    format!("s{pos}")
}

/// Reads a token made by [`token`].
pub fn parse_token(raw: &str, what: &str) -> ServiceResult<u64> {
    raw.strip_prefix('s')
        .and_then(|p| p.parse::<u64>().ok())
        .ok_or_else(|| ServiceError::invalid_param(format!("{what} {raw:?} is not a token this server handed out")))
}

/// `/messages` direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Backward,
    Forward,
}

/// One `/messages` batch.
pub struct Page {
    pub events: Vec<Event>,
    pub start: String,
    pub end: Option<String>,
}

/// A `limit` parameter: default when absent, 400 when negative, capped.
pub fn limit_of(limit: Option<i64>, default: usize) -> ServiceResult<usize> {
    match limit {
        None => Ok(default),
        Some(l) if l < 0 => Err(ServiceError::invalid_param("limit must not be negative")),
        Some(l) => Ok((l as usize).min(MAX_LIMIT)),
    }
}

impl Service {
    /// The room's history visibility setting, from current state.
    pub(super) fn history_visibility(&self, room: &RoomId) -> ServiceResult<HistoryVisibility> {
        let event = self.store.state_event(room, "m.room.history_visibility", "")?;
        Ok(HistoryVisibility::parse(
            event
                .as_ref()
                .and_then(|e| e.content.get("history_visibility"))
                .and_then(Value::as_str),
        ))
    }

    /// The user's membership events in the room, oldest first. Reads the
    /// room's log up to the current membership; only needed when the
    /// visibility setting or a former membership makes the past matter.
    fn member_history(&self, room: &RoomId, user: &UserId, upto: u64) -> ServiceResult<Vec<(u64, Membership)>> {
        Ok(self
            .store
            .room_events(room, 0, upto, usize::MAX, false)?
            .into_iter()
            .filter(|e| e.event_type == "m.room.member" && e.state_key.as_deref() == Some(user.as_str()))
            .filter_map(|e| {
                let m = serde_json::from_value::<Membership>(e.content.get("membership")?.clone()).ok()?;
                Some((e.stream_pos, m))
            })
            .collect())
    }

    /// Which of the room's events `user` may read (`None`: none).
    pub fn history_window_of(&self, room: &RoomId, user: &UserId) -> ServiceResult<Option<Window>> {
        let visibility = self.history_visibility(room)?;
        let membership = self.store.membership(room, user)?;
        let pos = self.store.membership_pos(room, user)?;
        let history = match (membership, pos) {
            // Joined under `shared`: the past does not matter.
            (Some(Membership::Join), Some(pos)) if visibility == HistoryVisibility::Shared => {
                vec![(pos, Membership::Join)]
            }
            (Some(_), Some(pos)) if visibility != HistoryVisibility::WorldReadable => {
                self.member_history(room, user, pos)?
            }
            _ => Vec::new(),
        };
        Ok(rules::history_window(visibility, &history))
    }

    /// Sends a message event; a repeated (sender, room, txn_id) returns the first event's id.
    pub async fn send_message(
        &self,
        room: &RoomId,
        sender: &UserId,
        event_type: &str,
        txn_id: &str,
        content: Value,
    ) -> ServiceResult<String> {
        self.require_room(room)?;
        if let Some(event_id) = self.store.txn_event(sender, room, txn_id)? {
            return Ok(event_id);
        }
        let (event, seq) = {
            let _guard = self.room_locks.lock(room).await;
            let rules = self.room_rules(room)?;
            let membership = self.store.membership(room, sender)?;
            if let Decision::Denied(why) = rules::may_send_message(rules.view(), sender, membership, event_type) {
                return Err(ServiceError::forbidden(why));
            }
            let new = NewEvent {
                sender: sender.clone(),
                event_type: event_type.to_string(),
                state_key: None,
                content,
            };
            self.store.append_with_txn(room, new, txn_id)?
        };
        self.durable(seq).await?;
        Ok(event.event_id)
    }

    /// One `/messages` batch.
    pub fn room_messages(
        &self,
        room: &RoomId,
        user: &UserId,
        from: Option<&str>,
        to: Option<&str>,
        dir: Direction,
        limit: usize,
    ) -> ServiceResult<Page> {
        self.require_room(room)?;
        let from = from.map(|f| parse_token(f, "from")).transpose()?;
        let to = to.map(|t| parse_token(t, "to")).transpose()?;
        let window = self.history_window_of(room, user)?.ok_or_else(|| {
            ServiceError::forbidden(format!(
                "You are not in room {room} and never were, so you cannot read its messages"
            ))
        })?;
        let now = self.store.current_pos();
        let low = window.after;
        let high = window.upto.unwrap_or(now).min(now);
        match dir {
            Direction::Backward => {
                let from = from.unwrap_or(now);
                let lower = low.max(to.unwrap_or(0));
                let mut events = self.store.room_events(room, lower, from.min(high), limit, true)?;
                events.reverse();
                let end = (events.len() == limit && limit > 0)
                    .then(|| events.last().map(|e| token(e.stream_pos - 1)))
                    .flatten();
                Ok(Page {
                    events,
                    start: token(from),
                    end,
                })
            }
            Direction::Forward => {
                let from = from.unwrap_or(low).max(low);
                let upper = high.min(to.unwrap_or(u64::MAX));
                let events = self.store.room_events(room, from, upper, limit, false)?;
                let end = (events.len() == limit && limit > 0)
                    .then(|| events.last().map(|e| token(e.stream_pos)))
                    .flatten();
                Ok(Page {
                    events,
                    start: token(from),
                    end,
                })
            }
        }
    }
}
