//! Group commit: many requests waiting for durability share one `fsync`.
//!
//! Every write is numbered (`WriteSeq`), and the number is published once the
//! write has been applied. A single flusher thread, woken only when someone
//! waits, reads the highest published number, runs a blocking `Db::flush`,
//! and then publishes that number through a `watch` channel, after telling
//! [`Committed`] so that readers may see those writes. Because the number was read before the flush started,
//! every write with a number at or below it was applied before the flush
//! began and is therefore on disk when it completes. Waiters that arrive
//! while a flush is running are served by the next one, which covers all of
//! them at once: the number of flushes tracks the flush latency, not the
//! request rate. (Measured before this design: `flush_async().await` per
//! request fell below 1 request/s at 64 concurrent requests.)
//!
//! A dedicated std thread rather than `spawn_blocking` keeps the store usable
//! without a runtime (tests, shutdown) and never ties up async workers.
//!
//! Each flush is reported to a [`FlushObserver`] the store is given (the
//! metrics), so the store knows nothing of how it is measured. The thread's
//! end, by panic or otherwise, is recorded and published to the waiters:
//! a wait the dead thread would never answer fails at once with
//! [`STOPPED`], and [`GroupCommit::health`] tells why.

use super::committed::Committed;
use super::{StoreError, WriteSeq};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Told about every flush, on the thread that ran it; must be quick.
pub trait FlushObserver: Send + Sync {
    /// A flush took `took` and covered `writes` writes not durable before it; `ok` unless it failed.
    fn flushed(&self, took: Duration, writes: u64, ok: bool);
}

/// Why a durability wait fails once the flusher thread has ended.
pub const STOPPED: &str = "the flusher thread has stopped";

/// The flusher thread's life, as `Shared::thread_state` holds it.
const RUNNING: u8 = 0;
const EXITED: u8 = 1;
const PANICKED: u8 = 2;

/// What the flusher last achieved, as seen by waiters.
#[derive(Debug, Clone, Default)]
struct Flushed {
    /// Every write numbered at or below this is durable.
    upto: WriteSeq,
    /// The last flush failed: (the number it tried to cover, why). Cleared by
    /// the next success so that a transient error does not poison later waits.
    failed: Option<(WriteSeq, String)>,
    /// The flusher thread has ended: nothing will be made durable any more.
    stopped: bool,
}

/// Requests from waiters to the flusher thread.
#[derive(Debug, Default)]
struct Wanted {
    upto: WriteSeq,
    shutdown: bool,
    /// Test only: the flusher panics when it next wakes (see `crash_flusher`).
    crash: bool,
}

struct Shared {
    db: ::sled::Db,
    /// The highest write number that has been applied.
    written: AtomicU64,
    committed: Arc<Committed>,
    wanted: Mutex<Wanted>,
    wake: Condvar,
    flushed: watch::Sender<Flushed>,
    flushes: AtomicU64,
    /// Test only: a pause before each flush (see `Config::test_flush_delay_ms`).
    delay: Duration,
    observer: Option<Arc<dyn FlushObserver>>,
    /// `RUNNING`, `EXITED` or `PANICKED`: set when the flusher thread ends.
    thread_state: AtomicU8,
}

/// Records how the flusher thread ended, whichever way it does, and wakes
/// every waiter: a drop guard runs while a panic unwinds, where code after
/// the loop would not.
struct ThreadEnd<'a>(&'a Shared);

impl Drop for ThreadEnd<'_> {
    fn drop(&mut self) {
        let state = if std::thread::panicking() { PANICKED } else { EXITED };
        self.0.thread_state.store(state, Ordering::SeqCst);
        self.0.flushed.send_modify(|f| f.stopped = true);
    }
}

/// Numbers writes and coalesces durability waits into shared flushes.
pub struct GroupCommit {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`.
    pub fn new(
        db: ::sled::Db,
        committed: Arc<Committed>,
        delay: Duration,
        observer: Option<Arc<dyn FlushObserver>>,
    ) -> Result<Self, StoreError> {
        let (flushed, _) = watch::channel(Flushed::default());
        let shared = Arc::new(Shared {
            db,
            written: AtomicU64::new(0),
            committed,
            wanted: Mutex::new(Wanted::default()),
            wake: Condvar::new(),
            flushed,
            flushes: AtomicU64::new(0),
            delay,
            observer,
            thread_state: AtomicU8::new(RUNNING),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sled-group-commit".into())
            .spawn(move || {
                let _end = ThreadEnd(&for_thread);
                flusher(&for_thread)
            })
            .map_err(|e| StoreError::Flush(format!("cannot start the flusher thread: {e}")))?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Publishes write `seq` (the next number) once it has been applied.
    pub fn publish(&self, seq: WriteSeq) {
        // SeqCst pairs with the flusher's load: a write numbered n happens
        // before any flush that observed n.
        self.shared.written.store(seq, Ordering::SeqCst);
    }

    /// The number of the most recent applied write (0 if none since open).
    pub fn last_write(&self) -> WriteSeq {
        self.shared.written.load(Ordering::SeqCst)
    }

    /// Every write numbered at or below this is durable.
    pub fn durable_seq(&self) -> WriteSeq {
        self.shared.flushed.borrow().upto
    }

    /// How many flushes the flusher (and `flush`) ran; for tests and metrics.
    pub fn flush_count(&self) -> u64 {
        self.shared.flushes.load(Ordering::SeqCst)
    }

    /// Resolves once a flush that started after write `seq` has completed.
    pub async fn durable(&self, seq: WriteSeq) -> Result<(), StoreError> {
        // A number not yet handed out would make the flusher chase a write
        // that may never come; waiting for everything written so far is the
        // closest honest meaning.
        let seq = seq.min(self.last_write());
        let mut rx = self.shared.flushed.subscribe();
        if rx.borrow().upto >= seq {
            return Ok(());
        }
        {
            let mut wanted = lock(&self.shared.wanted);
            if wanted.upto < seq {
                wanted.upto = seq;
                self.shared.wake.notify_one();
            }
        }
        // wait_for looks at the current value first, so a flush that finished
        // between subscribe and here is not missed.
        let state = rx
            .wait_for(|f| f.upto >= seq || f.stopped || f.failed.as_ref().is_some_and(|(t, _)| *t >= seq))
            .await
            .map_err(|_| StoreError::Flush(STOPPED.into()))?;
        if state.upto >= seq {
            return Ok(());
        }
        if state.stopped {
            return Err(StoreError::Flush(STOPPED.into()));
        }
        let why = state.failed.as_ref().map(|(_, why)| why.clone()).unwrap_or_default();
        Err(StoreError::Flush(why))
    }

    /// Flushes synchronously on the calling thread (shutdown, tests).
    pub fn flush(&self) -> Result<(), StoreError> {
        flush_once(&self.shared).1
    }

    /// `Err(why)` when durability waits cannot be answered: the flusher
    /// thread is gone, or the last flush failed (until one succeeds).
    pub fn health(&self) -> Result<(), String> {
        match self.shared.thread_state.load(Ordering::SeqCst) {
            RUNNING => {}
            PANICKED => return Err("the group-commit flusher thread panicked".into()),
            _ => return Err("the group-commit flusher thread has stopped".into()),
        }
        match &self.shared.flushed.borrow().failed {
            Some((_, why)) => Err(format!("the last group-commit flush failed: {why}")),
            None => Ok(()),
        }
    }

    /// Test only: makes the flusher thread panic, and waits until it has
    /// ended, so tests see a dead flusher for real.
    #[doc(hidden)]
    pub fn crash_flusher(&self) {
        lock(&self.shared.wanted).crash = true;
        self.shared.wake.notify_one();
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        lock(&self.shared.wanted).shutdown = true;
        self.shared.wake.notify_one();
        // Joining releases the thread's Db handle, so the database file lock
        // is gone by the time the store is dropped and it can be reopened.
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave their plain data
    // inconsistent, so poisoning is ignored.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs one flush; returns the write number it covered (on success) or tried to.
fn flush_once(shared: &Shared) -> (WriteSeq, Result<(), StoreError>) {
    let target = shared.written.load(Ordering::SeqCst);
    let before = shared.flushed.borrow().upto;
    let started = Instant::now();
    let result = shared.db.flush();
    shared.flushes.fetch_add(1, Ordering::SeqCst);
    if let Some(observer) = &shared.observer {
        observer.flushed(started.elapsed(), target.saturating_sub(before), result.is_ok());
    }
    match result {
        Ok(_) => {
            shared.committed.durable_upto(target);
            shared.flushed.send_modify(|f| {
                f.upto = f.upto.max(target);
                f.failed = None;
            });
            (target, Ok(()))
        }
        Err(e) => {
            let why = e.to_string();
            tracing::error!(error = %why, "flushing the database failed");
            shared.flushed.send_modify(|f| f.failed = Some((target, why.clone())));
            (target, Err(StoreError::Flush(why)))
        }
    }
}

/// Test only: what the flusher panics with when `crash_flusher` asks.
const CRASH: &str = "test only: the group-commit flusher was told to crash";

/// Test only: panics if `crash_flusher` asked for it (a lock the flusher
/// takes only when a test delays its flushes).
fn crash_if_told(shared: &Shared) {
    if lock(&shared.wanted).crash {
        panic!("{CRASH}");
    }
}

fn flusher(shared: &Shared) {
    // Highest number a finished attempt (successful or not) has answered.
    let mut answered: WriteSeq = 0;
    loop {
        {
            let mut wanted = lock(&shared.wanted);
            while !wanted.shutdown && !wanted.crash && wanted.upto <= answered {
                wanted = shared.wake.wait(wanted).unwrap_or_else(|e| e.into_inner());
            }
            if wanted.shutdown {
                return;
            }
            if wanted.crash {
                panic!("{CRASH}");
            }
        }
        // Errors are published to the waiters; the loop then sleeps until a
        // new wait arrives instead of retrying a failing disk in a hot loop.
        if !shared.delay.is_zero() {
            std::thread::sleep(shared.delay);
            // Told during the pause: the flusher dies with waits pending.
            crash_if_told(shared);
        }
        let (target, _) = flush_once(shared);
        answered = answered.max(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_commit(delay: Duration) -> Arc<GroupCommit> {
        let db = ::sled::Config::new().temporary(true).open().unwrap();
        Arc::new(GroupCommit::new(db, Arc::new(Committed::new(0)), delay, None).unwrap())
    }

    /// Kills the flusher from a blocking thread (it joins the flusher).
    async fn crash(commit: &Arc<GroupCommit>) {
        let commit = commit.clone();
        tokio::task::spawn_blocking(move || commit.crash_flusher())
            .await
            .unwrap();
    }

    fn assert_stopped(answer: Result<(), StoreError>) {
        match answer {
            Err(StoreError::Flush(why)) => assert_eq!(why, STOPPED),
            other => panic!("expected the stopped flusher's error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_wait_pending_when_the_flusher_dies_fails_instead_of_hanging() {
        // The pause keeps the flusher from answering before it is killed.
        let commit = group_commit(Duration::from_secs(2));
        commit.publish(1);
        let waiting = tokio::spawn({
            let commit = commit.clone();
            async move { commit.durable(1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        crash(&commit).await;
        let answer = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        assert_stopped(answer.expect("the pending wait was answered").unwrap());
        assert_eq!(
            commit.flush_count(),
            0,
            "nothing was flushed: the wait could not have succeeded"
        );
    }

    #[tokio::test]
    async fn a_wait_after_the_flusher_died_fails_at_once() {
        let commit = group_commit(Duration::ZERO);
        crash(&commit).await;
        commit.publish(1);
        let answer = tokio::time::timeout(Duration::from_secs(10), commit.durable(1)).await;
        assert_stopped(answer.expect("the wait was answered"));
        assert!(commit.health().unwrap_err().contains("panicked"));
    }
}
