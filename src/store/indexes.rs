//! Every key an event is written under: the event log, and for state
//! events the current state, the state history and, for member events, the
//! membership both ways. The writer and the layout
//! migration both go through here, so the indexes cannot disagree on how
//! an event is laid out.

use super::codec::{encode_event, encode_membership};
use super::keys;
use super::{Event, StoreError};
use crate::ids::UserId;
use crate::membership::auth_state::membership_of;
use serde_json::Value;

/// A key and its value.
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// The key names a new position, so nothing was stored under it before.
    pub fresh: bool,
}

fn entry(key: Vec<u8>, value: Vec<u8>, fresh: bool) -> Entry {
    Entry { key, value, fresh }
}

/// The keys and values that store `event` and index it.
pub fn entries(event: &Event) -> Result<Vec<Entry>, StoreError> {
    let (room, pos) = (event.room_id.as_str(), event.stream_pos);
    let mut out = vec![entry(keys::room_event(room, pos), encode_event(event)?, true)];
    let Some(state_key) = &event.state_key else {
        return Ok(out);
    };
    let t = event.event_type.as_str();
    out.push(entry(
        keys::room_state(room, t, state_key),
        pos.to_be_bytes().to_vec(),
        false,
    ));
    let mut history_value = Vec::new();
    if t == "m.room.member" {
        let user = UserId::parse(state_key)
            .map_err(|e| StoreError::Internal(format!("member event {pos} in {room}: state key: {e}")))?;
        let content = match &event.content {
            Value::Object(map) => map,
            _ => {
                return Err(StoreError::Internal(format!(
                    "member event {pos} in {room} has no content object"
                )))
            }
        };
        let membership = membership_of(content)
            .ok_or_else(|| StoreError::Internal(format!("member event {pos} in {room} has no membership")))?;
        let value = encode_membership(membership, pos);
        history_value.push(value[0]);
        out.push(entry(keys::room_member(room, user.as_str()), value.clone(), false));
        out.push(entry(keys::user_room(user.as_str(), room), value, false));
    }
    out.push(entry(keys::state_history(room, t, state_key, pos), history_value, true));
    Ok(out)
}
