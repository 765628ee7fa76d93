//! What the server under test acknowledged: the writes the bytes-per-op
//! figure divides by, and the account and alias bytes that count as logical
//! data besides the events.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every connection to the server under test (never the floor's).
#[derive(Debug, Default)]
pub struct Ledger {
    writes: AtomicU64,
    accounts: AtomicU64,
    account_bytes: AtomicU64,
    alias_bytes: AtomicU64,
}

impl Ledger {
    /// A write request (POST or PUT) the server answered with 2xx.
    pub fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// A registered account: user id, access token and device id, as the
    /// server answered them, are what it has to remember of it.
    pub fn account(&self, bytes: usize) {
        self.accounts.fetch_add(1, Ordering::Relaxed);
        self.account_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A room alias the server now maps to a room.
    pub fn alias(&self, bytes: usize) {
        self.alias_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    pub fn accounts(&self) -> u64 {
        self.accounts.load(Ordering::Relaxed)
    }

    pub fn account_bytes(&self) -> u64 {
        self.account_bytes.load(Ordering::Relaxed)
    }

    pub fn alias_bytes(&self) -> u64 {
        self.alias_bytes.load(Ordering::Relaxed)
    }
}
