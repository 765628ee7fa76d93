//! Packing: the writer's last step before it applies a batch, which turns
//! the batch's new single keys into fewer keys.
//!
//! sled 0.34 keeps a page-table entry and a list of fragments for every
//! page ever written, and splits a leaf at 16 keys, so its memory grows
//! with the number of new keys ever written, not with the data (measured
//! with `cargo bench --bench sled_layout`: 64 bytes per op with one event
//! key and one history key per op, about 3 with both packed). So:
//! - a room's events stay single `E` keys until it has `2 × CHUNK` of them;
//!   then its oldest [`CHUNK`] move into one `K` key (the chunk is written
//!   before the singles are removed: see [`super::event_log`]);
//! - a state key's changes go into history lists of up to
//!   [`HISTORY_LIST`] entries under `H`, keyed by their first position; a
//!   full list stays as it is, and a new one starts.
//!
//! Packing only changes how the batch stores its data, not what it stores,
//! and happens inside the batch, so it is as atomic and as durable as the
//! batch itself. Readers bound what they read by the durable position, so
//! the entries a list gains in a batch that is not durable yet stay unseen.

use super::codec::{
    decode_history, decode_key_pos as key_pos, decode_str, encode_chunk, push_history_entry, HistoryEntry,
    HISTORY_ENTRY_BYTES,
};
use super::event_log::CHUNK;
use super::keys::{self, Tag};
use super::writer::Writes;
use super::StoreError;
use ::sled::{IVec, Tree};
use foldhash::{HashMap, HashSet};

/// How many changes one history list holds (small in unit tests, as
/// [`CHUNK`] is; 64 for the same reason as it).
pub const HISTORY_LIST: usize = if cfg!(test) { 3 } else { 64 };

/// The most single events counted per room when a room is first met. A
/// room from an older layout may have many more: they move into chunks
/// as fast as the room gets new events.
const COUNT_AT_MOST: usize = 1024;

/// The most rooms whose single events are counted; beyond it the counts
/// are dropped and counted again as rooms are met.
const ROOMS_COUNTED: usize = 65_536;

/// What packing knows between batches.
#[derive(Default)]
pub struct Packer {
    /// Per room (its key prefix under `E`), how many of its events are single keys.
    singles: HashMap<Vec<u8>, usize>,
}

/// What the tree held for keys the batch changes: their before-images.
pub type Read = HashMap<Vec<u8>, Option<IVec>>;

impl Packer {
    /// Packs `batch`, read against `tree` (which holds every earlier batch).
    pub fn pack(&mut self, tree: &Tree, batch: &mut Writes, read: &mut Read) -> Result<(), StoreError> {
        self.pack_events(tree, batch, read)?;
        pack_history(tree, batch, read)
    }

    /// Forgets the counts: a batch that failed to apply may have changed them.
    pub fn forget(&mut self) {
        self.singles.clear();
    }

    fn pack_events(&mut self, tree: &Tree, batch: &mut Writes, read: &mut Read) -> Result<(), StoreError> {
        let new = group_by_prefix(batch.fresh_keys(Tag::RoomPosEvent));
        if self.singles.len() > ROOMS_COUNTED {
            self.singles.clear();
        }
        let mut discard = HashSet::default();
        for (room, added) in new {
            let known = match self.singles.get(&room) {
                Some(n) => *n,
                None => tree.scan_prefix(&room).take(COUNT_AT_MOST).count(),
            };
            let count = known + added.len();
            // Leave between CHUNK and 2 × CHUNK - 1 single: a batch may add many.
            let chunks = if count >= 2 * CHUNK { (count - CHUNK) / CHUNK } else { 0 };
            let moved = move_chunks(tree, batch, read, &room, &added, chunks, &mut discard)?;
            self.singles.insert(room, count - moved);
        }
        batch.discard(&discard);
        Ok(())
    }
}

/// Moves the room's oldest single events (the tree's first, then the
/// batch's `added`) into `chunks` chunk keys, [`CHUNK`] events each;
/// returns how many events it moved (fewer if it found fewer).
fn move_chunks(
    tree: &Tree,
    batch: &mut Writes,
    read: &mut Read,
    room: &[u8],
    added: &[Vec<u8>],
    chunks: usize,
    discard: &mut HashSet<Vec<u8>>,
) -> Result<usize, StoreError> {
    if chunks == 0 {
        return Ok(0);
    }
    let mut oldest: Vec<(Vec<u8>, IVec, bool)> = Vec::with_capacity(chunks * CHUNK);
    for entry in tree.scan_prefix(room).take(chunks * CHUNK) {
        let (k, v) = entry?;
        oldest.push((k.to_vec(), v, false));
    }
    for key in added.iter().take(chunks * CHUNK - oldest.len()) {
        let value = batch
            .get(key)
            .cloned()
            .flatten()
            .ok_or_else(|| StoreError::Internal("a new event key has no value".into()))?;
        oldest.push((key.clone(), value, true));
    }
    oldest.truncate(oldest.len() / CHUNK * CHUNK);
    // `E room 0xFF`: the room is what lies between the tag and the separator.
    let room_id = decode_str(&room[1..room.len() - 1])?;
    for events in oldest.chunks(CHUNK) {
        let positions = events
            .iter()
            .map(|(k, _, _)| key_pos(k))
            .collect::<Result<Vec<_>, _>>()?;
        let chunk = encode_chunk(positions.iter().zip(events).map(|(pos, (_, v, _))| (*pos, v.as_ref())));
        batch.put_fresh(keys::room_chunk(room_id, positions[0]), chunk.into());
    }
    // After the chunks, so a reader never finds an event in neither.
    let moved = oldest.len();
    for (key, value, in_batch) in oldest {
        if in_batch {
            discard.insert(key);
        } else {
            read.insert(key.clone(), Some(value));
            batch.remove(key);
        }
    }
    Ok(moved)
}

/// A history list being built: its key, entries, and whether the tree holds it.
struct List {
    key: Vec<u8>,
    entries: Vec<HistoryEntry>,
    stored: Option<IVec>,
}

/// Puts the batch's new single history entries into lists.
fn pack_history(tree: &Tree, batch: &mut Writes, read: &mut Read) -> Result<(), StoreError> {
    let groups = group_by_prefix(batch.fresh_keys(Tag::RoomStateHistory));
    let mut discard = HashSet::default();
    for (prefix, singles) in groups {
        let mut lists: Vec<List> = Vec::new();
        if let Some(entry) = tree.scan_prefix(&prefix).next_back() {
            let (k, v) = entry?;
            lists.push(List {
                entries: decode_history(key_pos(&k)?, &v)?,
                key: k.to_vec(),
                stored: Some(v),
            });
        }
        for key in singles {
            let value = batch.get(&key).cloned().flatten().unwrap_or_default();
            let entry = decode_history(key_pos(&key)?, &value)?;
            let (pos, _) = entry[0];
            match lists.last_mut() {
                Some(list)
                    if list.entries.len() < HISTORY_LIST && list.entries.last().is_some_and(|(p, _)| *p < pos) =>
                {
                    list.entries.extend(entry);
                    discard.insert(key);
                }
                _ => lists.push(List {
                    key,
                    entries: entry,
                    stored: None,
                }),
            }
        }
        for list in lists {
            let mut bytes = Vec::with_capacity(list.entries.len() * HISTORY_ENTRY_BYTES);
            for (pos, membership) in &list.entries {
                push_history_entry(&mut bytes, *pos, *membership);
            }
            match list.stored {
                Some(old) if old.as_ref() == bytes.as_slice() => {}
                Some(old) => {
                    read.insert(list.key.clone(), Some(old));
                    batch.put(list.key, bytes.into());
                }
                // A single of this batch: it stays fresh.
                None => batch.put(list.key, bytes.into()),
            }
        }
    }
    batch.discard(&discard);
    Ok(())
}

/// Keys that end in a position, grouped by what precedes it (a room's
/// events, a state key's history), groups and keys in their first order.
fn group_by_prefix(keys: Vec<Vec<u8>>) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut groups: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::default();
    for key in keys {
        let prefix = key[..key.len() - 8].to_vec();
        match index.get(&prefix) {
            Some(&i) => groups[i].1.push(key),
            None => {
                index.insert(prefix.clone(), groups.len());
                groups.push((prefix, vec![key]));
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::super::keys;

    #[test]
    fn keys_of_one_list_share_the_prefix_packing_groups_by() {
        let a = keys::state_history("!r:l", "m.room.member", "@a:l", 5);
        let b = keys::state_history("!r:l", "m.room.member", "@a:l", 900);
        assert_eq!(a[..a.len() - 8], b[..b.len() - 8]);
        assert_eq!(
            &a[..a.len() - 8],
            keys::state_history_prefix("!r:l", "m.room.member", "@a:l").as_slice()
        );
    }
}
