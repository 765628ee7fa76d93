//! How values are encoded: membership entries, positions, and events.

use super::{Event, MemberEntry, StoreError};
use crate::membership::state::Membership;
use serde::{Deserialize, Serialize};
use std::ops::Range;

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

/// Several consecutive events of one room under one `K` key (see
/// [`super::event_log`]): per event its position (u64 BE), its length (u32
/// BE) and its stored form.
pub fn encode_chunk<'a>(events: impl Iterator<Item = (u64, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (pos, bytes) in events {
        out.extend_from_slice(&pos.to_be_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out
}

/// The events of a chunk stored under `first`, in position order, each as
/// its position and where its stored form lies in `bytes`.
pub fn decode_chunk(first: u64, bytes: &[u8]) -> Result<Vec<(u64, Range<usize>)>, StoreError> {
    let cut = || corrupt(format!("event chunk at {first} is cut short"));
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let pos = decode_u64(&bytes[at..])?;
        let len = bytes.get(at + 8..at + 12).ok_or_else(cut)?;
        let start = at + 12;
        let end = start + u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if end > bytes.len() {
            return Err(cut());
        }
        out.push((pos, start..end));
        at = end;
    }
    if out.first().map(|(p, _)| *p) != Some(first) {
        return Err(corrupt(format!("event chunk at {first} does not start there")));
    }
    Ok(out)
}

/// The position that ends a key of the event log or the state history.
pub fn decode_key_pos(key: &[u8]) -> Result<u64, StoreError> {
    decode_u64(&key[key.len().saturating_sub(8)..])
}

/// One change of a state key in a history list: its position and, for
/// member events, the membership.
pub type HistoryEntry = (u64, Option<Membership>);

/// Bytes per entry of a history list: position (u64 BE), then a membership
/// code or 0.
pub const HISTORY_ENTRY_BYTES: usize = 9;

/// Appends one entry to a history list.
pub fn push_history_entry(list: &mut Vec<u8>, pos: u64, membership: Option<Membership>) {
    list.extend_from_slice(&pos.to_be_bytes());
    list.push(membership.map(membership_code).unwrap_or(0));
}

/// The entries of one `H` value, oldest first. A value of 0 or 1 bytes is a
/// single change (layout 2 wrote only those): its position is the key's,
/// and its byte, if any, the membership.
pub fn decode_history(key_pos: u64, bytes: &[u8]) -> Result<Vec<HistoryEntry>, StoreError> {
    if bytes.len() <= 1 {
        let membership = bytes.first().map(|c| decode_membership_code(Some(c))).transpose()?;
        return Ok(vec![(key_pos, membership)]);
    }
    if !bytes.len().is_multiple_of(HISTORY_ENTRY_BYTES) {
        return Err(corrupt(format!(
            "state history list at {key_pos} has {} bytes",
            bytes.len()
        )));
    }
    bytes
        .chunks(HISTORY_ENTRY_BYTES)
        .map(|e| {
            let membership = match e[8] {
                0 => None,
                code => Some(decode_membership_code(Some(&code))?),
            };
            Ok((decode_u64(e)?, membership))
        })
        .collect()
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

    #[test]
    fn a_chunk_reads_back_as_the_events_it_holds() {
        let chunk = encode_chunk([(4, &b"{\"a\":1}"[..]), (6, &b"{}"[..])].into_iter());
        let events: Vec<(u64, &[u8])> = decode_chunk(4, &chunk)
            .unwrap()
            .into_iter()
            .map(|(pos, range)| (pos, &chunk[range]))
            .collect();
        assert_eq!(events, vec![(4, &b"{\"a\":1}"[..]), (6, &b"{}"[..])]);
        assert!(decode_chunk(5, &chunk).is_err(), "a chunk under another position");
        assert!(decode_chunk(4, &chunk[..chunk.len() - 1]).is_err());
    }

    #[test]
    fn history_lists_and_layout_2_singles_decode_alike() {
        assert_eq!(decode_history(7, b"").unwrap(), vec![(7, None)]);
        assert_eq!(decode_history(7, b"j").unwrap(), vec![(7, Some(Membership::Join))]);
        let mut list = Vec::new();
        push_history_entry(&mut list, 7, None);
        push_history_entry(&mut list, 9, Some(Membership::Ban));
        assert_eq!(
            decode_history(7, &list).unwrap(),
            vec![(7, None), (9, Some(Membership::Ban))]
        );
        assert!(decode_history(7, &list[..10]).is_err());
    }
}
