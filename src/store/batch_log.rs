//! The batch log: what makes a batch of plain inserts atomic.
//!
//! sled makes several keys change at once only through `apply_batch` or a
//! transaction, and in 0.34 both write their batch manifest with two
//! synchronous buffer writes of their own (`pwrite` and `sync_file_range`,
//! besides the group commit's flush): measured, nine in ten of the server's
//! disk writes and most of its futex traffic. A single-key insert has no such
//! cost, and sled recovers its log as a prefix: a write is never recovered
//! without every write made before it.
//!
//! So the writer first inserts the whole batch as one value under
//! `W seq`, then applies its keys with plain inserts. After a crash either
//! that record is lost, and with it every later insert of the batch, or it
//! survives, and opening the database applies it again (its values are the
//! batch's final ones, so applying twice is harmless). Records whose inserts
//! are known durable are removed by later batches; the ones left form a
//! suffix of the batches, and applying them in order gives each key its last
//! value.

use super::keys::{self, Tag};
use super::StoreError;
use ::sled::{IVec, Tree};

/// One key's change in a batch: its new value, or `None` to remove it.
pub type Change = (Vec<u8>, Option<IVec>);

const PUT: u8 = 1;
const REMOVE: u8 = 0;

/// `W seq` for batch `seq`.
pub fn key(seq: u64) -> Vec<u8> {
    keys::key(Tag::BatchLog, &[&seq.to_be_bytes()])
}

/// Every record: the tag alone, since the write number is the key's only part.
pub fn prefix() -> Vec<u8> {
    vec![Tag::BatchLog as u8]
}

/// `op, key length (u32 BE), key[, value length (u32 BE), value]` per change.
pub fn encode<'a>(changes: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in changes {
        out.push(if v.is_some() { PUT } else { REMOVE });
        push_part(&mut out, k);
        if let Some(v) = v {
            push_part(&mut out, v);
        }
    }
    out
}

fn push_part(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u32).to_be_bytes());
    out.extend_from_slice(part);
}

/// The changes of one record, in the order they were made.
pub fn decode(record: &[u8]) -> Result<Vec<Change>, StoreError> {
    let mut rest = record;
    let mut out = Vec::new();
    while let Some((&op, after)) = rest.split_first() {
        rest = after;
        let k = take_part(&mut rest)?;
        let v = match op {
            PUT => Some(IVec::from(take_part(&mut rest)?)),
            REMOVE => None,
            other => return Err(corrupt(format!("unknown change kind {other}"))),
        };
        out.push((k.to_vec(), v));
    }
    Ok(out)
}

fn take_part<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
    if rest.len() < 4 {
        return Err(corrupt("a length is cut short".into()));
    }
    let (len, after) = rest.split_at(4);
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if after.len() < len {
        return Err(corrupt("a part is cut short".into()));
    }
    let (part, after) = after.split_at(len);
    *rest = after;
    Ok(part)
}

fn corrupt(why: String) -> StoreError {
    StoreError::Corrupt(format!("batch log record: {why}"))
}

/// Applies `changes` with plain inserts, in order.
pub fn apply(tree: &Tree, changes: Vec<Change>) -> Result<(), StoreError> {
    for (k, v) in changes {
        match v {
            Some(v) => tree.insert(k, v)?,
            None => tree.remove(k)?,
        };
    }
    Ok(())
}

/// On open, before anything reads: applies every record a crash may have
/// left, makes that durable, then drops the records. Returns how many there were.
pub fn recover(db: &::sled::Db, tree: &Tree) -> Result<usize, StoreError> {
    let mut records = Vec::new();
    for item in tree.scan_prefix(prefix()) {
        let (k, record) = item?;
        apply(tree, decode(&record)?)?;
        records.push(k);
    }
    if records.is_empty() {
        return Ok(0);
    }
    db.flush()?;
    for k in &records {
        tree.remove(k)?;
    }
    db.flush()?;
    Ok(records.len())
}
