//! The writer's memory of each room's auth state (create event, power
//! levels, join rules), so that judging a write does not read and decode
//! those events again every time.
//!
//! Only the writer changes rooms, so what it remembers cannot go stale,
//! provided a job's or a batch's view is forgotten when that job or batch
//! writes nothing: hence three layers, committed, batch and job. The cache
//! holds no memberships (each write loads the ones it needs) and is bounded.

use crate::ids::RoomId;
use crate::membership::auth::AuthState;
use std::collections::HashMap;

/// Rooms remembered at most; past that the committed layer starts afresh.
const MAX_ROOMS: usize = 4096;

/// Auth states without memberships, by room.
#[derive(Default)]
pub struct AuthCache {
    committed: HashMap<RoomId, AuthState>,
    batch: HashMap<RoomId, AuthState>,
    job: HashMap<RoomId, AuthState>,
}

impl AuthCache {
    /// The room's auth state as the writes so far left it, if remembered.
    pub fn get(&self, room: &RoomId) -> Option<AuthState> {
        self.job
            .get(room)
            .or_else(|| self.batch.get(room))
            .or_else(|| self.committed.get(room))
            .cloned()
    }

    /// Remembers the room's auth state after the current job's writes.
    pub fn set(&mut self, state: &AuthState) {
        self.job.insert(state.room().clone(), state.without_members());
    }

    /// The current job wrote what it staged.
    pub fn keep_job(&mut self) {
        let job = std::mem::take(&mut self.job);
        self.batch.extend(job);
    }

    /// The current job wrote nothing.
    pub fn drop_job(&mut self) {
        self.job.clear();
    }

    /// The batch was applied.
    pub fn keep_batch(&mut self) {
        if self.committed.len() + self.batch.len() > MAX_ROOMS {
            self.committed.clear();
        }
        let batch = std::mem::take(&mut self.batch);
        self.committed.extend(batch);
    }

    /// The batch failed: nothing of it was written.
    pub fn drop_batch(&mut self) {
        for room in self.batch.keys() {
            self.committed.remove(room);
        }
        self.batch.clear();
        self.job.clear();
    }
}
