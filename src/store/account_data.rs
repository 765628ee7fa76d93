//! Account data and forgotten rooms: what a user keeps for themself, not in
//! any room's history.
//!
//! Each account data change takes a stream position, like an event, so a
//! sync token covers it: `/sync` delivers the entries whose newest change
//! lies after `since`, and a change moves the durable position, which wakes
//! waiting syncs. The `Q` index holds one key per entry, at its newest
//! change, so "changed since" is one range scan over the user's keys.

use super::codec::{corrupt, decode_str, decode_u64};
use super::keys::{self, Tag, SEP};
use super::writer::Staged;
use super::StoreError;
use crate::ids::{RoomId, UserId};
use serde_json::Value;

/// One stored piece of account data.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountData {
    /// `None` for global account data.
    pub room: Option<RoomId>,
    pub event_type: String,
    pub content: Value,
    /// The stream position of its newest change.
    pub stream_pos: u64,
}

fn room_part(room: Option<&RoomId>) -> &[u8] {
    room.map_or(&[][..], |r| r.as_str().as_bytes())
}

/// `user 0xFF room 0xFF type` under `C`.
pub fn entry_key(user: &UserId, room: Option<&RoomId>, event_type: &str) -> Vec<u8> {
    keys::key(
        Tag::UserRoomAccountData,
        &[user.as_str().as_bytes(), room_part(room), event_type.as_bytes()],
    )
}

/// `user 0xFF pos` under `Q`.
pub fn change_key(user: &UserId, pos: u64) -> Vec<u8> {
    keys::key(Tag::UserPosAccountData, &[user.as_str().as_bytes(), &pos.to_be_bytes()])
}

/// `user 0xFF room` under `O`.
pub fn forgotten_key(user: &UserId, room: &RoomId) -> Vec<u8> {
    keys::key(
        Tag::UserRoomForgotten,
        &[user.as_str().as_bytes(), room.as_str().as_bytes()],
    )
}

/// Stages `content` as the newest value of the entry at a new position,
/// moving the entry's change index there; returns the position.
pub fn stage_set(
    st: &mut Staged<'_>,
    user: &UserId,
    room: Option<&RoomId>,
    event_type: &str,
    content: &Value,
) -> Result<u64, StoreError> {
    let key = entry_key(user, room, event_type);
    if let Some(old) = st.get(&key)? {
        st.remove(change_key(user, decode_u64(&old)?));
    }
    let pos = st.next_pos();
    stage_at(st, user, room, event_type, content, pos)?;
    Ok(pos)
}

/// Stages the entry as changed at `pos`, a position nothing holds yet
/// (handed out now, or an imported one).
pub fn stage_at(
    st: &mut Staged<'_>,
    user: &UserId,
    room: Option<&RoomId>,
    event_type: &str,
    content: &Value,
    pos: u64,
) -> Result<(), StoreError> {
    let json = serde_json::to_vec(content).map_err(|e| StoreError::Internal(format!("unserialisable content: {e}")))?;
    let mut value = pos.to_be_bytes().to_vec();
    value.extend_from_slice(&json);
    st.put(entry_key(user, room, event_type), value);
    st.put_fresh(
        change_key(user, pos),
        keys::joined(&[room_part(room), event_type.as_bytes()]),
    );
    Ok(())
}

/// Reads a `C` value: (position, content).
pub fn decode_entry(v: &[u8]) -> Result<(u64, Value), StoreError> {
    let pos = decode_u64(v)?;
    let content = serde_json::from_slice(&v[8..]).map_err(|e| corrupt(format!("undecodable account data: {e}")))?;
    Ok((pos, content))
}

/// Reads a `Q` value: (room, type).
pub fn decode_change(v: &[u8]) -> Result<(Option<RoomId>, String), StoreError> {
    let at = v
        .iter()
        .position(|&b| b == SEP)
        .ok_or_else(|| corrupt("account data change without a type separator"))?;
    let room = match &v[..at] {
        [] => None,
        raw => Some(RoomId::parse(decode_str(raw)?).map_err(|e| corrupt(e.0))?),
    };
    Ok((room, decode_str(&v[at + 1..])?.to_owned()))
}
