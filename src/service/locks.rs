//! Serializes changes to one room: read state, decide, write, as one step.

use crate::ids::RoomId;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use tokio::sync::{Mutex, MutexGuard};

/// A fixed set of striped locks: memory does not grow with the number of
/// rooms, and two rooms sharing a stripe only wait a little for each other.
pub struct RoomLocks {
    stripes: Vec<Mutex<()>>,
}

impl RoomLocks {
    /// `n` stripes.
    pub fn new(n: usize) -> Self {
        RoomLocks {
            stripes: (0..n.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Holds the lock for `room` until the guard drops.
    pub async fn lock(&self, room: &RoomId) -> MutexGuard<'_, ()> {
        let mut h = DefaultHasher::new();
        room.hash(&mut h);
        self.stripes[(h.finish() % self.stripes.len() as u64) as usize]
            .lock()
            .await
    }
}
