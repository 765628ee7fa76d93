//! Message events: sending with idempotent transaction ids, paging through a
//! room's history (`/messages`) under its history visibility, and the stream
//! tokens both `/messages` and `/sync` hand out.

use super::error::{ServiceError, ServiceResult};
use super::membership::plan_all;
use super::Service;
use crate::ids::{RoomId, UserId};
use crate::membership::auth::ProposedEvent;
use crate::membership::rules::{self, HistoryVisibility, Window};
use crate::membership::state::Membership;
use crate::store::{Event, RoomWrite, RoomWritten};
use serde_json::{Map, Value};

/// The most events one `/messages` or timeline answer carries.
pub const MAX_LIMIT: usize = 1000;

/// A stream token: the point just after the event at `pos` ("s" + position).
pub fn token(pos: u64) -> String {
    format!("s{pos}")
}

/// Reads a token made by [`token`], which must not point beyond `now`:
/// every token handed out names a durable position, so one from beyond the
/// stream was never ours (or names data this server lost), and silently
/// serving it would skip whatever later takes those positions.
pub fn parse_token(raw: &str, what: &str, now: u64) -> ServiceResult<u64> {
    // Only what `token` writes: ASCII digits, at most 19 (no sign, which
    // u64's parser would take).
    let pos = raw
        .strip_prefix('s')
        .filter(|p| (1..=19).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|p| p.parse::<u64>().ok())
        .ok_or_else(|| ServiceError::invalid_param(format!("{what} {raw:?} is not a token this server handed out")))?;
    if pos > now {
        return Err(ServiceError::invalid_param(format!(
            "{what} {raw:?} is beyond this server's stream, which ends at {}; it was not handed out by this server",
            token(now)
        )));
    }
    Ok(pos)
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
    /// The parts of the room's history `user` may read as of position `now`
    /// (empty: none), from the room's history visibility changes and the
    /// user's membership changes, both read from the state history: the
    /// cost follows those changes, not the room's history. See
    /// `rules::visible_windows`.
    pub async fn history_windows_of(&self, room: &RoomId, user: &UserId, now: u64) -> ServiceResult<Vec<Window>> {
        let mut settings = Vec::new();
        for (pos, _) in self
            .store
            .state_changes(room, "m.room.history_visibility", "", now)
            .await?
        {
            if let Some(e) = self.store.event_at(room, pos).await? {
                let setting = e.content.get("history_visibility").and_then(Value::as_str);
                settings.push((pos, HistoryVisibility::parse(setting)));
            }
        }
        let history: Vec<(u64, Membership)> = self
            .store
            .state_changes(room, "m.room.member", user.as_str(), now)
            .await?
            .into_iter()
            .filter_map(|(pos, m)| Some((pos, m?)))
            .collect();
        Ok(rules::visible_windows(&settings, &history))
    }

    /// Up to `limit` events inside `windows` and in (after, upto], oldest
    /// first; the newest ones when `newest`, else the oldest ones.
    pub(super) async fn visible_events(
        &self,
        room: &RoomId,
        windows: &[Window],
        after: u64,
        upto: u64,
        limit: usize,
        newest: bool,
    ) -> ServiceResult<Vec<Event>> {
        let ranges: Vec<(u64, u64)> = windows
            .iter()
            .filter_map(|w| {
                let (a, u) = (w.after.max(after), w.upto.unwrap_or(upto).min(upto));
                (u > a).then_some((a, u))
            })
            .collect();
        let mut out: Vec<Event> = Vec::new();
        if newest {
            for &(a, u) in ranges.iter().rev() {
                if out.len() >= limit {
                    break;
                }
                let mut chunk = self.store.room_events(room, a, u, limit - out.len(), true).await?;
                chunk.append(&mut out);
                out = chunk;
            }
        } else {
            for &(a, u) in &ranges {
                if out.len() >= limit {
                    break;
                }
                out.extend(self.store.room_events(room, a, u, limit - out.len(), false).await?);
            }
        }
        Ok(out)
    }

    /// Sends a message event; a repeated (sender, room, txn_id) returns the
    /// first event's id, once that event is durable.
    pub async fn send_message(
        &self,
        room: &RoomId,
        sender: &UserId,
        event_type: &str,
        txn_id: &str,
        content: Map<String, Value>,
    ) -> ServiceResult<String> {
        self.require_room(room).await?;
        // What a committed read shows is durable already.
        if let Some(event_id) = self.store.txn_event(sender, room, txn_id).await? {
            return Ok(event_id);
        }
        let proposed = ProposedEvent {
            sender: sender.clone(),
            event_type: event_type.to_string(),
            state_key: None,
            content,
        };
        let written = self
            .store
            .write_room(RoomWrite {
                room: room.clone(),
                create: None,
                users: vec![sender.clone()],
                txn: Some((sender.clone(), txn_id.to_string())),
                plan: plan_all(vec![proposed]),
            })
            .await?;
        match written {
            RoomWritten::Written(events) if !events.is_empty() => Ok(events[0].event_id.clone()),
            RoomWritten::Repeated(event_id) => Ok(event_id),
            other => Err(ServiceError::internal(format!("a message write answered {other:?}"))),
        }
    }

    /// One `/messages` batch.
    pub async fn room_messages(
        &self,
        room: &RoomId,
        user: &UserId,
        from: Option<&str>,
        to: Option<&str>,
        dir: Direction,
        limit: usize,
    ) -> ServiceResult<Page> {
        self.require_room(room).await?;
        self.require_not_forgotten(room, user).await?;
        let now = self.store.durable_pos();
        let from = from.map(|f| parse_token(f, "from", now)).transpose()?;
        let to = to.map(|t| parse_token(t, "to", now)).transpose()?;
        let windows = self.history_windows_of(room, user, now).await?;
        if windows.is_empty() {
            return Err(ServiceError::forbidden(format!(
                "You are not in room {room} and never were, so you cannot read its messages"
            )));
        }
        match dir {
            Direction::Backward => {
                let from = from.unwrap_or(now).min(now);
                let mut events = self
                    .visible_events(room, &windows, to.unwrap_or(0), from, limit, true)
                    .await?;
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
                let from = from.unwrap_or(0);
                let upper = to.unwrap_or(now).min(now);
                let events = self.visible_events(room, &windows, from, upper, limit, false).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_s_and_up_to_19_digits_not_beyond_now() {
        assert_eq!(parse_token("s0", "since", 5).unwrap(), 0);
        assert_eq!(parse_token("s5", "since", 5).unwrap(), 5);
        for bad in ["5", "s", "s+5", "s-1", "s 5", "s5x", "s00000000000000000001", "t5"] {
            assert!(parse_token(bad, "since", u64::MAX).is_err(), "{bad}");
        }
        let beyond = parse_token("s6", "since", 5).unwrap_err();
        assert!(beyond.message.contains("beyond"), "{beyond:?}");
    }
}
