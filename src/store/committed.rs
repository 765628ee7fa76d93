//! Read committed: what readers see is what is on disk.
//!
//! sled makes a write visible to every reader as soon as it is applied, long
//! before the group-commit flush makes it durable. A reader that saw such a
//! write could show a client an event that a crash then erases, and after
//! the restart its stream position would name a different event. So every
//! write registers here, before it is applied, the value each key had before
//! it (its before-image). Until a flush covers the write, readers see the
//! before-image instead of what sled returns: for them the write has not
//! happened yet. The flusher trims what became durable and only then moves
//! the durable stream position, which long-polling syncs watch.
//!
//! Readers consult this after reading sled, never before: a write registers
//! before it is applied, so whatever sled showed them is either durable or
//! still registered here.
//!
//! Only the writer thread registers, and it alone reads sled's newest values
//! (to decide and to take before-images), so writes see each other at once.

use super::WriteSeq;
use ::sled::IVec;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::watch;

/// The writes that are applied but not yet durable.
pub struct Committed {
    inner: Mutex<Inner>,
    /// Copy of `Inner::durable_pos` for lock-free reads.
    durable_pos: AtomicU64,
    /// Woken whenever the durable stream position moves.
    position: watch::Sender<u64>,
}

#[derive(Default)]
struct Inner {
    durable_pos: u64,
    /// Every key a pending write touched: (write, value before that write), oldest first.
    keys: BTreeMap<Vec<u8>, VecDeque<(WriteSeq, Option<IVec>)>>,
    /// Pending writes in order: (write, keys it touched, stream position after it).
    writes: VecDeque<(WriteSeq, Vec<Vec<u8>>, u64)>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // The data stays consistent across a panicking holder: every method
    // changes it in one step.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Committed {
    /// Starts with everything on disk durable, up to stream position `pos`.
    pub fn new(pos: u64) -> Self {
        Committed {
            inner: Mutex::new(Inner {
                durable_pos: pos,
                ..Inner::default()
            }),
            durable_pos: AtomicU64::new(pos),
            position: watch::Sender::new(pos),
        }
    }

    /// The highest stream position whose event, and every one before it, is durable.
    pub fn durable_pos(&self) -> u64 {
        self.durable_pos.load(Ordering::Acquire)
    }

    /// A receiver woken when the durable position moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.position.subscribe()
    }

    /// Wakes every subscriber without moving the position (shutdown).
    pub fn wake_all(&self) {
        self.position.send_modify(|_| {});
    }

    /// How many subscribers are waiting (metrics and tests).
    pub fn subscribers(&self) -> usize {
        self.position.receiver_count()
    }

    /// Records write `seq` before it is applied: each key with its value
    /// before the write, and the stream position once it is applied.
    pub fn register(&self, seq: WriteSeq, before: Vec<(Vec<u8>, Option<IVec>)>, pos_after: u64) {
        let mut inner = lock(&self.inner);
        let mut touched = Vec::with_capacity(before.len());
        for (key, value) in before {
            inner.keys.entry(key.clone()).or_default().push_back((seq, value));
            touched.push(key);
        }
        inner.writes.push_back((seq, touched, pos_after));
    }

    /// The before-images write `seq`, the newest registered, recorded, in
    /// the order it touched the keys (to undo it when applying it fails).
    pub fn before_images(&self, seq: WriteSeq) -> Vec<(Vec<u8>, Option<IVec>)> {
        let inner = lock(&self.inner);
        let Some((_, touched, _)) = inner.writes.back().filter(|(s, _, _)| *s == seq) else {
            return Vec::new();
        };
        touched
            .iter()
            .filter_map(|key| {
                let (s, before) = inner.keys.get(key)?.back()?;
                (*s == seq).then(|| (key.clone(), before.clone()))
            })
            .collect()
    }

    /// Forgets write `seq`, the newest registered, because applying it failed.
    pub fn unregister(&self, seq: WriteSeq) {
        let mut inner = lock(&self.inner);
        if inner.writes.back().is_some_and(|(s, _, _)| *s == seq) {
            let (_, touched, _) = inner.writes.pop_back().expect("checked above");
            for key in touched {
                pop_entry(&mut inner.keys, &key, |q| q.pop_back());
            }
        }
    }

    /// Everything up to write `seq` is on disk: show it, and move the durable position.
    pub fn durable_upto(&self, seq: WriteSeq) {
        let moved = {
            let mut inner = lock(&self.inner);
            let mut moved = None;
            while inner.writes.front().is_some_and(|(s, _, _)| *s <= seq) {
                let (_, touched, pos) = inner.writes.pop_front().expect("checked above");
                for key in touched {
                    pop_entry(&mut inner.keys, &key, |q| q.pop_front());
                }
                moved = Some(pos);
            }
            if let Some(pos) = moved {
                inner.durable_pos = inner.durable_pos.max(pos);
                self.durable_pos.store(inner.durable_pos, Ordering::Release);
            }
            moved.is_some()
        };
        if moved {
            self.position.send_replace(self.durable_pos());
        }
    }

    /// What a reader may see of `key`, given what sled returned for it.
    pub fn visible(&self, key: &[u8], from_sled: Option<IVec>) -> Option<IVec> {
        let inner = lock(&self.inner);
        match inner.keys.get(key).and_then(|q| q.front()) {
            Some((_, before)) => before.clone(),
            None => from_sled,
        }
    }

    /// What a reader may see of the keys in `[start, end)`, given what a sled
    /// scan of that range returned (in key order). Keys a pending write added
    /// disappear, keys it changed show their before-image, keys it removed
    /// come back.
    pub fn visible_range(&self, start: &[u8], end: &[u8], from_sled: Vec<(IVec, IVec)>) -> Vec<(IVec, IVec)> {
        let inner = lock(&self.inner);
        let pending: Vec<(&Vec<u8>, &Option<IVec>)> = inner
            .keys
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .filter_map(|(k, q)| q.front().map(|(_, before)| (k, before)))
            .collect();
        if pending.is_empty() {
            return from_sled;
        }
        let mut merged: BTreeMap<IVec, IVec> = from_sled.into_iter().collect();
        for (key, before) in pending {
            match before {
                Some(v) => merged.insert(IVec::from(key.as_slice()), v.clone()),
                None => merged.remove(key.as_slice()),
            };
        }
        merged.into_iter().collect()
    }

    /// How many keys are hidden right now (tests and metrics).
    pub fn pending_keys(&self) -> usize {
        lock(&self.inner).keys.len()
    }
}

fn pop_entry(
    keys: &mut BTreeMap<Vec<u8>, VecDeque<(WriteSeq, Option<IVec>)>>,
    key: &[u8],
    pop: impl FnOnce(&mut VecDeque<(WriteSeq, Option<IVec>)>) -> Option<(WriteSeq, Option<IVec>)>,
) {
    if let Some(q) = keys.get_mut(key) {
        pop(q);
        if q.is_empty() {
            keys.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<IVec> {
        Some(IVec::from(s.as_bytes()))
    }

    #[test]
    fn a_pending_write_shows_its_before_image_until_it_is_durable() {
        let c = Committed::new(10);
        c.register(1, vec![(b"k".to_vec(), v("old")), (b"new".to_vec(), None)], 11);
        assert_eq!(c.visible(b"k", v("fresh")), v("old"));
        assert_eq!(c.visible(b"new", v("x")), None, "an added key is hidden");
        assert_eq!(c.visible(b"other", v("y")), v("y"));
        assert_eq!(c.durable_pos(), 10);
        c.durable_upto(1);
        assert_eq!(c.visible(b"k", v("fresh")), v("fresh"));
        assert_eq!(c.durable_pos(), 11);
        assert_eq!(c.pending_keys(), 0);
    }

    #[test]
    fn two_pending_writes_to_one_key_reveal_in_order() {
        let c = Committed::new(0);
        c.register(1, vec![(b"k".to_vec(), v("a"))], 1);
        c.register(2, vec![(b"k".to_vec(), v("b"))], 2);
        assert_eq!(c.visible(b"k", v("c")), v("a"));
        c.durable_upto(1);
        assert_eq!(c.visible(b"k", v("c")), v("b"), "the value after write 1");
        assert_eq!(c.durable_pos(), 1);
        c.durable_upto(5);
        assert_eq!(c.visible(b"k", v("c")), v("c"));
        assert_eq!(c.durable_pos(), 2);
    }

    #[test]
    fn a_range_hides_added_keys_restores_removed_ones_and_keeps_order() {
        let c = Committed::new(0);
        c.register(
            1,
            vec![
                (b"a2".to_vec(), None),       // added
                (b"a3".to_vec(), v("three")), // removed by the write
                (b"a4".to_vec(), v("four")),  // changed
            ],
            0,
        );
        let from_sled = vec![
            (IVec::from(&b"a1"[..]), IVec::from(&b"one"[..])),
            (IVec::from(&b"a2"[..]), IVec::from(&b"two"[..])),
            (IVec::from(&b"a4"[..]), IVec::from(&b"FOUR"[..])),
        ];
        let seen = c.visible_range(b"a", b"b", from_sled);
        let seen: Vec<(&[u8], &[u8])> = seen.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(
            seen,
            vec![
                (&b"a1"[..], &b"one"[..]),
                (&b"a3"[..], &b"three"[..]),
                (&b"a4"[..], &b"four"[..])
            ]
        );
    }

    #[test]
    fn a_failed_write_is_forgotten() {
        let c = Committed::new(0);
        c.register(1, vec![(b"k".to_vec(), v("a"))], 1);
        c.unregister(1);
        assert_eq!(c.visible(b"k", v("z")), v("z"));
        assert_eq!(c.pending_keys(), 0);
    }
}
