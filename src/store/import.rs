//! Writing export records back into the key layout (the other half of
//! [`super::export`]): what was derived is derived again, through
//! [`super::indexes`], so an imported database is laid out exactly as the
//! writer would have laid it out.

use super::export::{unhex32, Record};
use super::indexes;
use super::keys::{self, Tag};
use super::writer::Staged;
use super::{AccountFlags, Event, StoreError};
use crate::ids::{RoomAliasId, RoomId, UserId};

pub fn invalid(what: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("the export holds an invalid record: {what}"))
}

fn user(raw: &str) -> Result<UserId, StoreError> {
    UserId::parse(raw).map_err(|e| invalid(format!("user id {raw:?}: {e}")))
}

fn room(raw: &str) -> Result<RoomId, StoreError> {
    RoomId::parse(raw).map_err(|e| invalid(format!("room id {raw:?}: {e}")))
}

fn json(value: &serde_json::Value) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Internal(format!("unserialisable JSON: {e}")))
}

/// Checks every user, room and alias id a record names, as [`stage`] does
/// while it writes, for a backend that stores ids as given (PostgreSQL).
pub fn check_ids(record: &Record) -> Result<(), StoreError> {
    match record {
        Record::Header { .. } | Record::End { .. } => {}
        Record::Account { user_id, .. } | Record::Token { user_id, .. } | Record::Filter { user_id, .. } => {
            user(user_id)?;
        }
        Record::Room { room_id, .. } => {
            room(room_id)?;
        }
        Record::Alias { alias, room_id } => {
            RoomAliasId::parse(alias).map_err(|e| invalid(format!("alias {alias:?}: {e}")))?;
            room(room_id)?;
        }
        Record::Event { room_id, sender, .. } => {
            room(room_id)?;
            user(sender)?;
        }
        Record::Txn { user_id, room_id, .. } | Record::Forgotten { user_id, room_id, .. } => {
            user(user_id)?;
            room(room_id)?;
        }
        Record::AccountData { user_id, room_id, .. } => {
            user(user_id)?;
            room_id.as_deref().map(room).transpose()?;
        }
    }
    Ok(())
}

/// Stages one record.
pub fn stage(st: &mut Staged<'_>, record: Record) -> Result<(), StoreError> {
    match record {
        Record::Header { stream_end, .. } => st.claim_through(stream_end),
        Record::End { .. } => {}
        Record::Account {
            user_id,
            password_hash,
            admin,
            deactivated,
            displayname,
        } => {
            let u = user(&user_id)?;
            let id = u.as_str().as_bytes();
            st.put(keys::key(Tag::UserPassword, &[id]), password_hash.into_bytes());
            let flags = AccountFlags { admin, deactivated };
            if flags != AccountFlags::default() {
                st.put(keys::key(Tag::UserFlags, &[id]), encode_flags(flags)?);
            }
            if let Some(name) = displayname {
                st.put(keys::key(Tag::UserDisplayname, &[id]), name.into_bytes());
            }
        }
        Record::Token {
            token_hash,
            user_id,
            device_id,
        } => {
            let hash = unhex32(&token_hash).map_err(|e| invalid(format!("token hash: {e}")))?;
            let u = user(&user_id)?;
            let (id, device) = (u.as_str().as_bytes(), device_id.as_bytes());
            st.put(keys::key(Tag::TokenUserDevice, &[&hash]), keys::joined(&[id, device]));
            st.put(keys::key(Tag::UserDeviceToken, &[id, device]), &hash[..]);
        }
        Record::Room { room_id, meta } => {
            let r = room(&room_id)?;
            st.put(keys::key(Tag::RoomMeta, &[r.as_str().as_bytes()]), json(&meta)?);
        }
        Record::Alias { alias, room_id } => {
            let a = RoomAliasId::parse(&alias).map_err(|e| invalid(format!("alias {alias:?}: {e}")))?;
            let r = room(&room_id)?;
            let (a, r) = (a.as_str().as_bytes(), r.as_str().as_bytes());
            st.put(keys::key(Tag::AliasRoom, &[a]), r);
            st.put(keys::key(Tag::RoomAlias, &[r, a]), &[][..]);
        }
        Record::Event {
            room_id,
            stream_pos,
            event_id,
            sender,
            event_type,
            state_key,
            content,
            origin_server_ts,
        } => {
            let event = Event {
                event_id,
                room_id: room(&room_id)?.to_string(),
                sender: user(&sender)?.to_string(),
                event_type,
                state_key,
                content,
                origin_server_ts,
                stream_pos,
            };
            for e in indexes::entries(&event)? {
                if e.fresh {
                    st.put_fresh(e.key, e.value);
                } else {
                    st.put(e.key, e.value);
                }
            }
            st.claim_through(stream_pos);
        }
        Record::Txn {
            user_id,
            room_id,
            txn_id,
            stream_pos,
            event_id,
        } => {
            let (u, r) = (user(&user_id)?, room(&room_id)?);
            let mut value = stream_pos.to_be_bytes().to_vec();
            value.extend_from_slice(event_id.as_bytes());
            st.put(keys::txn(u.as_str(), r.as_str(), &txn_id), value);
        }
        Record::Filter {
            user_id,
            filter_id,
            filter,
        } => {
            let u = user(&user_id)?;
            st.put(
                keys::key(Tag::UserFilter, &[u.as_str().as_bytes(), filter_id.as_bytes()]),
                json(&filter)?,
            );
        }
        Record::AccountData {
            user_id,
            room_id,
            event_type,
            content,
            stream_pos,
        } => {
            let (u, r) = (user(&user_id)?, room_id.as_deref().map(room).transpose()?);
            super::account_data::stage_at(st, &u, r.as_ref(), &event_type, &content, stream_pos)?;
            st.claim_through(stream_pos);
        }
        Record::Forgotten {
            user_id,
            room_id,
            stream_pos,
        } => {
            let (u, r) = (user(&user_id)?, room(&room_id)?);
            st.put(
                super::account_data::forgotten_key(&u, &r),
                &stream_pos.to_be_bytes()[..],
            );
        }
    }
    Ok(())
}

/// The stored form of account flags.
pub fn encode_flags(flags: AccountFlags) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&flags).map_err(|e| StoreError::Internal(format!("unserialisable flags: {e}")))
}
