//! Applying a room write on the writer thread: load the auth state the plan
//! needs, ask the plan, and stage its authorized events with every index
//! they change (event log, stream, current state, membership both ways).

use super::codec::{corrupt, decode_membership, decode_str, decode_u64};
use super::event_log;
use super::indexes;
use super::keys::{self, Tag};
use super::writer::Staged;
use super::{Event, RoomWrite, RoomWritten, StoreError};
use crate::ids::{RoomId, UserId};
use crate::membership::auth::{AuthState, Authorized};
use crate::membership::third_party::THIRD_PARTY_INVITE;
use serde_json::{Map, Value};

/// Runs `write` against the newest data and stages what it writes.
pub fn run(st: &mut Staged<'_>, write: RoomWrite) -> Result<RoomWritten, StoreError> {
    let room = write.room.as_str();
    if let Some((sender, txn_id)) = &write.txn {
        if let Some(seen) = st.get(&keys::txn(sender.as_str(), room, txn_id))? {
            let event_id = decode_str(seen.get(8..).unwrap_or_default())?;
            return Ok(RoomWritten::Repeated(event_id.to_owned()));
        }
    }
    let mut auth = match &write.create {
        Some(creation) => {
            if st.get(&keys::key(Tag::RoomMeta, &[room.as_bytes()]))?.is_some() {
                return Err(StoreError::RoomExists(room.to_owned()));
            }
            if let Some(alias) = &creation.alias {
                if st
                    .get(&keys::key(Tag::AliasRoom, &[alias.as_str().as_bytes()]))?
                    .is_some()
                {
                    return Err(StoreError::AliasTaken(alias.to_string()));
                }
            }
            AuthState::new_room(write.room.clone())
        }
        None => match st.auth.get(&write.room) {
            Some(cached) => cached,
            None => {
                let loaded = load_auth_state(st, &write.room)?;
                st.auth.set(&loaded);
                loaded
            }
        },
    };
    for user in &write.users {
        let entry = st.get(&keys::room_member(room, user.as_str()))?;
        let membership = entry.map(|v| decode_membership(&v)).transpose()?.map(|(m, _)| m);
        auth.load_member(user.clone(), membership);
    }
    let events = (write.plan)(&mut auth).map_err(StoreError::Refused)?;
    if events.is_empty() {
        return Ok(RoomWritten::Unchanged);
    }
    st.auth.set(&auth);
    if let Some(creation) = &write.create {
        let creator = events.first().map(|a| a.event().sender.to_string()).unwrap_or_default();
        let meta = serde_json::json!({ "creator": creator }).to_string();
        st.put(keys::key(Tag::RoomMeta, &[room.as_bytes()]), meta.into_bytes());
        if let Some(alias) = &creation.alias {
            st.put(keys::key(Tag::AliasRoom, &[alias.as_str().as_bytes()]), room.as_bytes());
            st.put(
                keys::key(Tag::RoomAlias, &[room.as_bytes(), alias.as_str().as_bytes()]),
                &[][..],
            );
        }
    }
    let now = now_ms();
    let mut written = Vec::with_capacity(events.len());
    for authorized in events {
        if authorized.room() != &write.room {
            return Err(StoreError::Internal(format!(
                "a plan for {room} returned an event authorized for {}",
                authorized.room()
            )));
        }
        written.push(stage_event(st, authorized, now)?);
    }
    if let Some((sender, txn_id)) = &write.txn {
        let first = &written[0];
        let mut value = first.stream_pos.to_be_bytes().to_vec();
        value.extend_from_slice(first.event_id.as_bytes());
        st.put(keys::txn(sender.as_str(), room, txn_id), value);
    }
    Ok(RoomWritten::Written(written))
}

/// The current state event of a type (empty state key), read through `st`.
fn state_event(st: &mut Staged<'_>, room: &str, event_type: &str) -> Result<Option<Event>, StoreError> {
    let Some(pos) = st.get(&keys::room_state(room, event_type, ""))? else {
        return Ok(None);
    };
    staged_event(st, room, decode_u64(&pos)?).map(Some)
}

/// The event at `pos`, as the writes so far left it: a single key the batch
/// or the tree holds, or a chunk in the tree (packing runs only as a batch
/// is applied, so the batch holds none).
fn staged_event(st: &mut Staged<'_>, room: &str, pos: u64) -> Result<Event, StoreError> {
    let single = st.get(&keys::room_event(room, pos))?;
    event_log::event_at(st.applied_tree(), room, pos, single)?
        .ok_or_else(|| corrupt(format!("state of {room} points at missing event {pos}")))
}

/// The content of `event`, which must be an object.
fn object_content(room: &str, event: Event) -> Result<Map<String, Value>, StoreError> {
    match event.content {
        Value::Object(map) => Ok(map),
        other => Err(corrupt(format!(
            "event {} in {room} has non-object content {other}",
            event.stream_pos
        ))),
    }
}

/// The current content of a state event, read through `st`.
fn state_content(st: &mut Staged<'_>, room: &str, event_type: &str) -> Result<Option<Map<String, Value>>, StoreError> {
    state_event(st, room, event_type)?
        .map(|e| object_content(room, e))
        .transpose()
}

/// The auth state of an existing room: create, power levels, join rules.
fn load_auth_state(st: &mut Staged<'_>, room: &RoomId) -> Result<AuthState, StoreError> {
    let r = room.as_str();
    if st.get(&keys::key(Tag::RoomMeta, &[r.as_bytes()]))?.is_none() {
        return Err(StoreError::UnknownRoom(r.to_owned()));
    }
    let create =
        state_event(st, r, "m.room.create")?.ok_or_else(|| corrupt(format!("room {r} has no m.room.create")))?;
    // From room version 11 the create event's sender is the creator.
    let create_sender =
        UserId::parse(&create.sender).map_err(|e| corrupt(format!("{r}: m.room.create sender: {e}")))?;
    let create = object_content(r, create)?;
    let power_levels = state_content(st, r, "m.room.power_levels")?;
    let join_rules = state_content(st, r, "m.room.join_rules")?;
    let mut auth = AuthState::existing(
        room.clone(),
        (&create, &create_sender),
        power_levels.as_ref(),
        join_rules.as_ref(),
    )
    .map_err(|e| corrupt(e.0))?;
    load_third_party_invites(st, r, &mut auth)?;
    Ok(auth)
}

/// Every current `m.room.third_party_invite` of the room, for the gate to
/// judge third-party member invites; a room holds few, and the auth cache
/// keeps them once loaded.
fn load_third_party_invites(st: &mut Staged<'_>, room: &str, auth: &mut AuthState) -> Result<(), StoreError> {
    let prefix = keys::prefix(Tag::RoomStatePos, &[room.as_bytes(), THIRD_PARTY_INVITE.as_bytes()]);
    for key in st.keys_with_prefix(&prefix)? {
        let Some(pos) = st.get(&key)? else { continue };
        let pos = decode_u64(&pos)?;
        let event = staged_event(st, room, pos)?;
        let (Some(token), Value::Object(content)) = (event.state_key.as_deref(), &event.content) else {
            continue;
        };
        let sender = crate::ids::UserId::parse(&event.sender).map_err(|e| corrupt(format!("event {pos}: {e}")))?;
        auth.load_third_party_invite(token, sender, content);
    }
    Ok(())
}

/// Stages one authorized event at the next position, with its indexes.
fn stage_event(st: &mut Staged<'_>, authorized: Authorized, now: u64) -> Result<Event, StoreError> {
    let room_id = authorized.room().to_string();
    let proposed = authorized.into_event();
    let event = Event {
        event_id: new_event_id(),
        room_id,
        sender: proposed.sender.to_string(),
        event_type: proposed.event_type,
        state_key: proposed.state_key,
        content: Value::Object(proposed.content),
        origin_server_ts: now,
        stream_pos: st.next_pos(),
    };
    for e in indexes::entries(&event)? {
        if e.fresh {
            st.put_fresh(e.key, e.value);
        } else {
            st.put(e.key, e.value);
        }
    }
    Ok(event)
}

/// Milliseconds since the Unix epoch (an event's `origin_server_ts`); both backends stamp events with it.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `$` + 24 alphanumerics (~143 bits: collisions are not a practical concern).
pub fn new_event_id() -> String {
    use rand::Rng;
    let opaque: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(crate::membership::limits::EVENT_ID_BYTES - 1)
        .map(char::from)
        .collect();
    format!("${opaque}")
}
