//! The key-value layout: one sled tree, every key starting with a one-byte
//! tag that says what the key holds (Conduit style: the name says key order
//! and value). One tree, because sled makes a write atomic across keys only
//! within a tree (`apply_batch`), and a write here always spans several
//! indexes. (sled's own atomic batches cost two synchronous disk writes
//! each, so batches are made atomic by the batch log instead.)
//!
//! Key parts are joined with 0xFF, which never occurs in UTF-8, so a prefix
//! `room 0xFF` matches exactly that room and never `room` followed by more
//! characters. Numbers are big-endian u64, so they sort.
//!
//! | tag | name | key | value |
//! |---|---|---|---|
//! | `U` | userid_password | user | argon2 hash ("" for no password) |
//! | `T` | tokenhash_userdevice | sha256(token) | user 0xFF device_id |
//! | `D` | userdevice_tokenhash | user 0xFF device_id | sha256(token) |
//! | `R` | roomid_meta | room | JSON `{creator}`; presence means the room exists |
//! | `M` | roomuser_membership | room 0xFF user | membership byte, pos of the member event |
//! | `N` | userroom_membership | user 0xFF room | same |
//! | `S` | roomstate_pos | room 0xFF type 0xFF state_key | pos of the current state event |
//! | `H` | roomstate_history | room 0xFF type 0xFF state_key 0xFF pos of its first entry | up to 64 changes of that key (`packing::HISTORY_LIST`), 9 bytes each: pos, membership byte or 0 (layout 2: one change, its membership byte or empty) |
//! | `E` | roompos_event | room 0xFF pos | event JSON (without room and pos, which the key holds); the room's newest events |
//! | `K` | roompos_chunk | room 0xFF pos of its first event | older events of the room, several per key (see `event_log`) |
//! | `A` | alias_roomid | alias | room |
//! | `B` | roomalias | room 0xFF alias | empty |
//! | `X` | userroomtxn_event | user 0xFF room 0xFF txn_id | pos, event id |
//! | `F` | userfilter_json | user 0xFF filter_id | filter JSON |
//! | `Y` | userid_displayname | user | display name |
//! | `G` | userid_flags | user | JSON `{admin, deactivated}`; absent when both are false |
//! | `C` | userroomtype_accountdata | user 0xFF room ("" for global) 0xFF type | BE u64 pos of the change, then the content JSON |
//! | `Q` | userpos_accountdata | user 0xFF pos | room 0xFF type: which entry changed at that position (one per entry, its newest) |
//! | `O` | userroom_forgotten | user 0xFF room | BE u64 pos of the member event the user forgot the room at |
//! | `Z` | stream_end | (empty) | BE u64: the highest position written, set in every batch that writes events |
//! | `V` | layout_version | (empty) | the layout's version, ASCII |
//! | `W` | batch_log | BE u64 write number | every change of that batch, until a flush covers them (see `batch_log`) |

/// The separator between key parts.
pub const SEP: u8 = 0xFF;

/// The layout this code reads and writes.
pub const LAYOUT_VERSION: &[u8] = b"3";

/// An older layout this code reads as it is: layout 3 only added event
/// chunks and history lists, and reads both forms.
pub const READABLE_LAYOUT: &[u8] = b"2";

/// What a key holds, as its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    UserPassword = b'U',
    TokenUserDevice = b'T',
    UserDeviceToken = b'D',
    RoomMeta = b'R',
    RoomUserMembership = b'M',
    UserRoomMembership = b'N',
    RoomStatePos = b'S',
    RoomStateHistory = b'H',
    RoomPosEvent = b'E',
    RoomPosChunk = b'K',
    AliasRoom = b'A',
    RoomAlias = b'B',
    UserRoomTxn = b'X',
    UserFilter = b'F',
    UserDisplayname = b'Y',
    UserFlags = b'G',
    UserRoomAccountData = b'C',
    UserPosAccountData = b'Q',
    UserRoomForgotten = b'O',
    StreamEnd = b'Z',
    LayoutVersion = b'V',
    BatchLog = b'W',
}

/// `tag part 0xFF part 0xFF …`.
pub fn key(tag: Tag, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
    k.push(tag as u8);
    push_joined(&mut k, parts);
    k
}

/// `part 0xFF part …`, for values that hold several parts.
pub fn joined(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    push_joined(&mut v, parts);
    v
}

fn push_joined(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(SEP);
        }
        out.extend_from_slice(part);
    }
}

/// `tag part 0xFF … part 0xFF`: every key whose leading parts are `parts`.
pub fn prefix(tag: Tag, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = key(tag, parts);
    k.push(SEP);
    k
}

/// `room 0xFF pos` under `E`.
pub fn room_event(room: &str, pos: u64) -> Vec<u8> {
    key(Tag::RoomPosEvent, &[room.as_bytes(), &pos.to_be_bytes()])
}

/// `room 0xFF pos` under `K`: the chunk whose first event is at `pos`.
pub fn room_chunk(room: &str, pos: u64) -> Vec<u8> {
    key(Tag::RoomPosChunk, &[room.as_bytes(), &pos.to_be_bytes()])
}

/// `room 0xFF type 0xFF state_key` under `S`.
pub fn room_state(room: &str, event_type: &str, state_key: &str) -> Vec<u8> {
    key(
        Tag::RoomStatePos,
        &[room.as_bytes(), event_type.as_bytes(), state_key.as_bytes()],
    )
}

/// Every change of one state key, `room 0xFF type 0xFF state_key 0xFF` under `H`;
/// the position of a list's first entry (8 bytes) follows. State at a
/// position is then one seek per key.
pub fn state_history_prefix(room: &str, event_type: &str, state_key: &str) -> Vec<u8> {
    prefix(
        Tag::RoomStateHistory,
        &[room.as_bytes(), event_type.as_bytes(), state_key.as_bytes()],
    )
}

/// The history list of a state key whose first entry is at `pos`, under `H`.
pub fn state_history(room: &str, event_type: &str, state_key: &str, pos: u64) -> Vec<u8> {
    let mut k = state_history_prefix(room, event_type, state_key);
    k.extend_from_slice(&pos.to_be_bytes());
    k
}

/// `room 0xFF user` under `M`.
pub fn room_member(room: &str, user: &str) -> Vec<u8> {
    key(Tag::RoomUserMembership, &[room.as_bytes(), user.as_bytes()])
}

/// `user 0xFF room` under `N`.
pub fn user_room(user: &str, room: &str) -> Vec<u8> {
    key(Tag::UserRoomMembership, &[user.as_bytes(), room.as_bytes()])
}

/// The one key that holds the highest position written.
pub fn stream_end() -> Vec<u8> {
    key(Tag::StreamEnd, &[])
}

/// `user 0xFF room 0xFF txn_id` under `X`.
pub fn txn(user: &str, room: &str, txn_id: &str) -> Vec<u8> {
    key(Tag::UserRoomTxn, &[user.as_bytes(), room.as_bytes(), txn_id.as_bytes()])
}

/// The key range `[prefix, prefix with its last byte incremented)`: every key
/// starting with `prefix`. Prefixes here end in a tag or 0xFF, so the
/// increment never overflows except for a 0xFF end, which becomes a bound
/// one byte longer.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xFF: nothing sorts after it except longer keys, so bound by "infinity".
    vec![0xFF; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_room_never_match_a_room_whose_id_extends_it() {
        let short = prefix(Tag::RoomUserMembership, &[b"!a:l"]);
        let long = room_member("!a:l.org", "@u:l");
        assert!(!long.starts_with(&short));
        assert!(room_member("!a:l", "@u:l").starts_with(&short));
    }

    #[test]
    fn event_keys_sort_by_position() {
        assert!(room_event("!r:l", 2) < room_event("!r:l", 256));
    }

    #[test]
    fn a_prefix_end_bounds_exactly_the_keys_with_that_prefix() {
        let p = prefix(Tag::RoomStatePos, &[b"!r:l"]);
        let end = prefix_end(&p);
        let inside = room_state("!r:l", "m.room.name", "");
        assert!(p.as_slice() <= inside.as_slice() && inside < end);
        let next_tag = key(Tag::UserRoomTxn, &[b"x"]);
        assert!(next_tag >= end || !next_tag.starts_with(&p));
        assert_eq!(prefix_end(b"a\xFF"), b"b".to_vec());
    }
}
