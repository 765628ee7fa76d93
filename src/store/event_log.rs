//! Reading a room's event log. Its newest events are single `E` keys; the
//! writer moves older ones, [`CHUNK`] at a time, into one `K` key (see
//! [`super::packing`]), because sled 0.34 keeps memory for every key ever
//! written (README, "What stands in the way").
//!
//! Readers read sled directly: an event at or below the durable position is
//! the same wherever it is stored, so read committed only asks them to
//! ignore the positions above it, as the callers do. sled's iterators are
//! no snapshot, though: the writer may move events a reader has not reached
//! yet. It writes the chunk before it removes the singles, so a reader that
//! reads the singles first and the chunks after finds every event in one or
//! the other, and keeps one copy if it meets both.

use super::codec::{decode_chunk, decode_event, decode_key_pos as key_pos};
use super::keys;
use super::{Event, StoreError};
use ::sled::{IVec, Tree};
use std::collections::BTreeMap;
use std::ops::Range;

/// How many events one chunk holds; small in unit tests, so that short
/// random histories pack many times. sled's memory grows per page written,
/// and 64 (with history lists of 64) halved that growth against 16: sled
/// alone, 1.6 bytes per op against 3.3; the server's 10-minute soaks went
/// from +17.7 % to within 10 % (README, "Chunks and lists of 64").
pub const CHUNK: usize = if cfg!(test) { 3 } else { 64 };

/// The event at `pos` in `room`, given what its single key holds (read by
/// the caller, who may see writes the tree does not hold yet).
pub fn event_at(tree: &Tree, room: &str, pos: u64, single: Option<IVec>) -> Result<Option<Event>, StoreError> {
    if let Some(bytes) = single {
        return decode_event(room, pos, &bytes).map(Some);
    }
    let Some(entry) = tree
        .range(keys::room_chunk(room, 0)..=keys::room_chunk(room, pos))
        .next_back()
    else {
        return Ok(None);
    };
    let (k, v) = entry?;
    let first = key_pos(&k)?;
    match decode_chunk(first, &v)?.into_iter().find(|(p, _)| *p == pos) {
        Some((_, range)) => decode_event(room, pos, &v[range]).map(Some),
        None => Ok(None),
    }
}

/// Events of `room` at positions in (from, to], at most `limit` of them:
/// the oldest, or with `newest` the newest, in position order either way.
pub fn events_between(
    tree: &Tree,
    room: &str,
    (from, to): (u64, u64),
    limit: usize,
    newest: bool,
) -> Result<Vec<Event>, StoreError> {
    if from >= to || limit == 0 {
        return Ok(Vec::new());
    }
    let mut found = Found::new(from, to);
    // Singles first, then chunks: see the module's comment.
    let singles = tree.range(keys::room_event(room, from + 1)..=keys::room_event(room, to));
    let singles: Vec<_> = if newest {
        singles.rev().take(limit).collect()
    } else {
        singles.take(limit).collect()
    };
    for entry in singles {
        let (k, v) = entry?;
        let len = v.len();
        found.add(key_pos(&k)?, v, 0..len);
    }
    if newest {
        for entry in tree.range(keys::room_chunk(room, 0)..=keys::room_chunk(room, to)).rev() {
            let (k, v) = entry?;
            let first = found.add_chunk(k, v)?;
            if found.in_chunks >= limit || first <= from + 1 {
                break;
            }
        }
    } else {
        let start = tree
            .range(keys::room_chunk(room, 0)..=keys::room_chunk(room, from + 1))
            .next_back()
            .transpose()?
            .map(|(k, _)| k.to_vec())
            .unwrap_or_else(|| keys::room_chunk(room, from + 1));
        for entry in tree.range(start..=keys::room_chunk(room, to)) {
            let (k, v) = entry?;
            found.add_chunk(k, v)?;
            if found.in_chunks >= limit {
                break;
            }
        }
    }
    found.decode(room, limit, newest)
}

/// Stored events met so far, by position, each as its value and the bytes
/// of it that hold the event.
struct Found {
    from: u64,
    to: u64,
    events: BTreeMap<u64, (IVec, Range<usize>)>,
    /// How many events in the range the chunks met so far held.
    in_chunks: usize,
}

impl Found {
    fn new(from: u64, to: u64) -> Self {
        Found {
            from,
            to,
            events: BTreeMap::new(),
            in_chunks: 0,
        }
    }

    /// Keeps the events of a chunk that lie in the range; returns the
    /// chunk's first position.
    fn add_chunk(&mut self, key: IVec, value: IVec) -> Result<u64, StoreError> {
        let first = key_pos(&key)?;
        for (pos, range) in decode_chunk(first, &value)? {
            self.in_chunks += self.add(pos, value.clone(), range) as usize;
        }
        Ok(first)
    }

    /// Keeps an event in the range; says whether it did.
    fn add(&mut self, pos: u64, value: IVec, range: Range<usize>) -> bool {
        if pos <= self.from || pos > self.to {
            return false;
        }
        self.events.entry(pos).or_insert((value, range));
        true
    }

    fn decode(self, room: &str, limit: usize, newest: bool) -> Result<Vec<Event>, StoreError> {
        let decode = |(pos, (value, range)): (u64, (IVec, Range<usize>))| decode_event(room, pos, &value[range]);
        if newest {
            let skip = self.events.len().saturating_sub(limit);
            self.events.into_iter().skip(skip).map(decode).collect()
        } else {
            self.events.into_iter().take(limit).map(decode).collect()
        }
    }
}
