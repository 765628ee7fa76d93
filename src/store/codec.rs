//! How values are encoded: membership entries, positions, and events.

use super::{Event, MemberEntry, StoreError};
use crate::membership::state::Membership;
use serde::{Deserialize, Serialize};

/// A stored value that does not decode.
pub fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

/// The leading big-endian u64 of `bytes`.
pub fn decode_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(format!("expected a big-endian u64, found {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(head))
}

/// `bytes` as UTF-8.
pub fn decode_str(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(|e| corrupt(format!("non-UTF-8 string: {e}")))
}

fn membership_code(m: Membership) -> u8 {
    match m {
        Membership::Join => b'j',
        Membership::Invite => b'i',
        Membership::Leave => b'l',
        Membership::Ban => b'b',
        Membership::Knock => b'k',
    }
}

/// A membership byte followed by the big-endian position of its event.
pub fn encode_membership(m: Membership, pos: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(9);
    v.push(membership_code(m));
    v.extend_from_slice(&pos.to_be_bytes());
    v
}

/// The membership a code byte of [`encode_membership`] stands for.
pub fn decode_membership_code(code: Option<&u8>) -> Result<Membership, StoreError> {
    Ok(match code {
        Some(b'j') => Membership::Join,
        Some(b'i') => Membership::Invite,
        Some(b'l') => Membership::Leave,
        Some(b'b') => Membership::Ban,
        Some(b'k') => Membership::Knock,
        other => return Err(corrupt(format!("unknown membership code {other:?}"))),
    })
}

/// Reads [`encode_membership`].
pub fn decode_membership(v: &[u8]) -> Result<MemberEntry, StoreError> {
    Ok((
        decode_membership_code(v.first())?,
        decode_u64(v.get(1..).unwrap_or_default())?,
    ))
}

/// An event as stored, borrowed for writing: the room and position are in its key.
#[derive(Serialize)]
struct StoredRef<'a> {
    event_id: &'a str,
    sender: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_key: Option<&'a str>,
    content: &'a serde_json::Value,
    origin_server_ts: u64,
}

/// An event as stored, read back.
#[derive(Deserialize)]
struct Stored {
    event_id: String,
    sender: String,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    state_key: Option<String>,
    content: serde_json::Value,
    origin_server_ts: u64,
}

/// The stored form of `event`.
pub fn encode_event(event: &Event) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&StoredRef {
        event_id: &event.event_id,
        sender: &event.sender,
        event_type: &event.event_type,
        state_key: event.state_key.as_deref(),
        content: &event.content,
        origin_server_ts: event.origin_server_ts,
    })
    .map_err(|e| StoreError::Internal(format!("unserialisable event: {e}")))
}

/// Reads an event stored by [`encode_event`] under (room, pos).
pub fn decode_event(room: &str, pos: u64, bytes: &[u8]) -> Result<Event, StoreError> {
    let s: Stored =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("undecodable event {pos} in {room}: {e}")))?;
    Ok(Event {
        event_id: s.event_id,
        room_id: room.to_owned(),
        sender: s.sender,
        event_type: s.event_type,
        state_key: s.state_key,
        content: s.content,
        origin_server_ts: s.origin_server_ts,
        stream_pos: pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_and_events_round_trip() {
        for m in [
            Membership::Join,
            Membership::Invite,
            Membership::Leave,
            Membership::Ban,
            Membership::Knock,
        ] {
            assert_eq!(decode_membership(&encode_membership(m, 77)).unwrap(), (m, 77));
        }
        let event = Event {
            event_id: "$abc".into(),
            room_id: "!r:l".into(),
            sender: "@a:l".into(),
            event_type: "m.room.member".into(),
            state_key: Some("@a:l".into()),
            content: serde_json::json!({"membership": "join", "x": "\"quoted\""}),
            origin_server_ts: 5,
            stream_pos: 9,
        };
        assert_eq!(decode_event("!r:l", 9, &encode_event(&event).unwrap()).unwrap(), event);
        assert!(decode_membership(b"z").is_err());
        assert!(decode_event("!r:l", 1, b"[]").is_err());
    }
}
