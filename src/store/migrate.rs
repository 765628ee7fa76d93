//! Bringing a data folder to the current key layout on open.
//!
//! Layout 1 (the first releases) kept one sled tree per index; layout 2 keeps
//! them all in one tree under one-byte tags (see [`super::keys`]) and adds
//! the state history. Opening a layout-1 folder copies what is not derived
//! (accounts, tokens, rooms, aliases, transactions, filters, profiles),
//! rebuilds every event index from the event log through the same code the
//! writer uses, marks the layout version only once all of it is on disk,
//! and then drops the old trees. An interrupted copy has no version mark, so
//! it is simply redone.
//!
//! Layout 3 adds event chunks (`K`) and history lists; it reads layout-2
//! keys as they are, so a layout-2 folder only gets the new mark.

use super::codec::{corrupt, decode_u64};
use super::keys::{self, Tag, LAYOUT_VERSION, READABLE_LAYOUT};
use super::{indexes, Event, StoreError};
use ::sled::{Db, Tree};

/// Layout-1 trees that are not derived from events, and the tag their keys
/// move under, keys and values unchanged.
const SAME_SHAPE: &[(&str, Tag)] = &[
    ("userid_password", Tag::UserPassword),
    ("tokenhash_userid", Tag::TokenUserDevice),
    ("roomid_meta", Tag::RoomMeta),
    ("alias_roomid", Tag::AliasRoom),
    ("roomid_alias", Tag::RoomAlias),
    ("userroomtxn_eventid", Tag::UserRoomTxn),
    ("userfilterid_filter", Tag::UserFilter),
    ("userid_displayname", Tag::UserDisplayname),
];
/// Layout-1 event indexes, rebuilt from the event log instead of copied.
const DERIVED: &[&str] = &[
    "roomuserid_membership",
    "userroomid_membership",
    "roomid_state",
    "pos_roomid",
];
/// The layout-1 event log.
const EVENTS: &str = "roompos_event";

const BATCH: usize = 1000;

/// Makes `tree` hold the current layout, migrating from layout 1 if needed.
pub fn to_current_layout(db: &Db, tree: &Tree) -> Result<(), StoreError> {
    let version_key = keys::key(Tag::LayoutVersion, &[]);
    match tree.get(&version_key)? {
        Some(v) if v.as_ref() == LAYOUT_VERSION => return Ok(()),
        Some(v) if v.as_ref() == READABLE_LAYOUT => {
            tree.insert(version_key, LAYOUT_VERSION)?;
            db.flush()?;
            return Ok(());
        }
        Some(v) => {
            return Err(corrupt(format!(
                "the data folder has key layout {:?}; this version reads layout {:?}",
                String::from_utf8_lossy(&v),
                String::from_utf8_lossy(LAYOUT_VERSION)
            )))
        }
        None => {}
    }
    let names = db.tree_names();
    let has_old = names.iter().any(|n| n.as_ref() == EVENTS.as_bytes());
    if has_old {
        tree.clear()?;
        migrate_layout_1(db, tree)?;
    }
    tree.insert(version_key, LAYOUT_VERSION)?;
    db.flush()?;
    if has_old {
        for name in SAME_SHAPE.iter().map(|(name, _)| *name).chain(DERIVED.iter().copied()) {
            db.drop_tree(name)?;
        }
        db.drop_tree(EVENTS)?;
        db.flush()?;
    }
    Ok(())
}

fn migrate_layout_1(db: &Db, tree: &Tree) -> Result<(), StoreError> {
    let mut batch = Batcher::new(tree);
    for (name, tag) in SAME_SHAPE {
        for entry in db.open_tree(name)?.iter() {
            let (k, v) = entry?;
            batch.put(keys::key(*tag, &[&k]), v.to_vec())?;
            if *tag == Tag::TokenUserDevice {
                // Layout 1 had no device index: build it from the tokens.
                batch.put(keys::key(Tag::UserDeviceToken, &[&v]), k.to_vec())?;
            }
        }
    }
    // Keys are room then position, so each room's events come in order and
    // its current state and memberships end as the last event left them.
    let mut end = 0;
    for entry in db.open_tree(EVENTS)?.iter() {
        let (k, v) = entry?;
        let mut event = legacy_event(&v)?;
        event.stream_pos = decode_u64(k.get(k.len().saturating_sub(8)..).unwrap_or_default())?;
        end = end.max(event.stream_pos);
        for e in indexes::entries(&event)? {
            batch.put(e.key, e.value)?;
        }
    }
    batch.put(keys::stream_end(), end.to_be_bytes().to_vec())?;
    batch.finish()?;
    db.flush()?;
    Ok(())
}

/// A layout-1 event: the client format with `room_id` and `stream_pos`.
fn legacy_event(bytes: &[u8]) -> Result<Event, StoreError> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("undecodable layout-1 event: {e}")))?;
    let text = |k: &str| -> Result<String, StoreError> {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .ok_or_else(|| corrupt(format!("layout-1 event without {k}")))
    };
    Ok(Event {
        event_id: text("event_id")?,
        room_id: text("room_id")?,
        sender: text("sender")?,
        event_type: text("type")?,
        state_key: v.get("state_key").and_then(|x| x.as_str()).map(str::to_owned),
        content: v.get("content").cloned().unwrap_or_default(),
        origin_server_ts: v.get("origin_server_ts").and_then(|x| x.as_u64()).unwrap_or(0),
        stream_pos: v.get("stream_pos").and_then(|x| x.as_u64()).unwrap_or(0),
    })
}

/// Writes in batches of [`BATCH`] keys.
struct Batcher<'a> {
    tree: &'a Tree,
    batch: ::sled::Batch,
    len: usize,
}

impl<'a> Batcher<'a> {
    fn new(tree: &'a Tree) -> Self {
        Batcher {
            tree,
            batch: ::sled::Batch::default(),
            len: 0,
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
        self.batch.insert(key, value);
        self.len += 1;
        if self.len >= BATCH {
            self.finish()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        self.tree.apply_batch(std::mem::take(&mut self.batch))?;
        self.len = 0;
        Ok(())
    }
}
