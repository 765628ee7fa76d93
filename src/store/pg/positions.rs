//! Stream positions shared by every instance on one database, and the
//! "persisted up to" position each instance serves reads up to.
//!
//! Positions come from one counter row (`stream_head`), bumped by a short
//! transaction of its own that also records each new position in
//! `stream_pending` with the id of the transaction that will write it. The
//! writing transaction deletes those rows when it commits. So positions are
//! handed out in order but commit in any order, across instances, and a
//! reader must not skip one that commits later. The persisted position is
//!
//! ```text
//! min(lowest pending - 1, highest committed)
//! ```
//!
//! read in one statement, so in one snapshot: every position at or below it
//! is committed or will never be. The counter's transaction need not wait
//! for the disk (`synchronous_commit = off`): a committed event's own commit
//! flushes the log up to itself, and with it every earlier bump, so no
//! position at or below a committed one can be handed out again after a
//! crash. A transaction that dies (its instance killed) leaves its pending
//! rows behind; a sweep deletes rows whose transaction is no longer in
//! progress (`pg_xact_status`).
//!
//! Each instance keeps the persisted position in a watch channel. After a
//! commit a writer sends `NOTIFY`; every instance `LISTEN`s and reads the
//! position again when told, and at least every [`POLL`] regardless.

use super::connect::{self, Connected};
use super::rows::{db, describe, pos, sql_pos};
use crate::store::StoreError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tokio_postgres::{Client, Statement};

/// The channel writers notify and every instance listens on.
pub const CHANNEL: &str = "matrix_membership_stream";

/// How often the position is read when no notification comes (and pending
/// rows of dead transactions are swept).
const POLL: Duration = Duration::from_millis(500);

/// How long a write waits for the persisted position to reach its own
/// before it answers anyway (its change is committed; only a lower position
/// another instance still writes holds the stream back).
const OWN_WRITE_WAIT: Duration = Duration::from_secs(10);

/// How often the database's size is read (metrics).
const SIZE_EVERY: Duration = Duration::from_secs(10);

const PERSISTED: &str = "SELECT LEAST(\
        COALESCE((SELECT min(pos) FROM stream_pending) - 1, 9223372036854775807), \
        GREATEST(COALESCE((SELECT max(stream_pos) FROM events), 0), \
                 COALESCE((SELECT max(stream_pos) FROM account_data), 0), \
                 (SELECT pos FROM stream_floor))), \
    EXISTS (SELECT 1 FROM stream_pending)";

const SWEEP: &str = "DELETE FROM stream_pending WHERE pg_xact_status(xid::xid8) IS DISTINCT FROM 'in progress'";

const ALLOCATE: &str = "WITH h AS (UPDATE stream_head SET pos = pos + $1 RETURNING pos) \
    INSERT INTO stream_pending (pos, xid) SELECT g, $2 FROM h, generate_series(h.pos - $1 + 1, h.pos) AS g \
    RETURNING pos";

/// This instance's view of the shared stream.
pub struct Positions {
    config: tokio_postgres::Config,
    persisted: watch::Sender<u64>,
    /// Read the position again now (a notification, or an own commit).
    wake: Arc<Notify>,
    /// Tell the other instances the stream moved (after an own commit).
    announce: Notify,
    /// The connection that hands out positions, and its prepared
    /// statement; one allocation at a time.
    allocator: tokio::sync::Mutex<Option<(Client, Statement)>>,
    /// `Err` while the database cannot be read.
    health: Mutex<Result<Instant, String>>,
    disk_bytes: AtomicU64,
}

impl Positions {
    pub fn new(config: tokio_postgres::Config, persisted: u64) -> Arc<Positions> {
        Arc::new(Positions {
            config,
            persisted: watch::channel(persisted).0,
            wake: Arc::new(Notify::new()),
            announce: Notify::new(),
            allocator: tokio::sync::Mutex::new(None),
            health: Mutex::new(Ok(Instant::now())),
            disk_bytes: AtomicU64::new(0),
        })
    }

    pub fn persisted(&self) -> u64 {
        *self.persisted.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.persisted.subscribe()
    }

    pub fn wake_all(&self) {
        self.persisted.send_modify(|_| {});
    }

    pub fn subscribers(&self) -> usize {
        self.persisted.receiver_count()
    }

    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes.load(Ordering::Relaxed)
    }

    /// `Ok` while the position was read lately.
    pub fn health(&self) -> Result<(), String> {
        match &*self.health.lock().unwrap_or_else(|p| p.into_inner()) {
            Ok(at) if at.elapsed() < POLL * 10 => Ok(()),
            Ok(at) => Err(format!(
                "the database has not answered for {} s",
                at.elapsed().as_secs()
            )),
            Err(why) => Err(why.clone()),
        }
    }

    /// `n` new positions, ascending, recorded as pending for the
    /// transaction `xid` (which must be in progress).
    pub async fn allocate(&self, n: usize, xid: &str) -> Result<Vec<u64>, StoreError> {
        let mut slot = self.allocator.lock().await;
        if slot.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            let Connected { client, .. } = connect::dedicated(&self.config, None).await?;
            client.batch_execute("SET synchronous_commit = off").await.map_err(db)?;
            let statement = client.prepare(ALLOCATE).await.map_err(db)?;
            *slot = Some((client, statement));
        }
        let (client, statement) = slot.as_ref().expect("connected above");
        let rows = client.query(statement, &[&sql_pos(n as u64), &xid]).await.map_err(db)?;
        let mut out = rows
            .iter()
            .map(|r| r.try_get::<_, i64>(0).map(pos).map_err(db))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable();
        Ok(out)
    }

    /// Forgets pending rows a failed write left (the sweep would too, later).
    pub async fn abandon(&self, positions: &[u64]) {
        let slot = self.allocator.lock().await;
        if let Some((client, _)) = slot.as_ref() {
            let positions: Vec<i64> = positions.iter().map(|p| sql_pos(*p)).collect();
            let _ = client
                .execute("DELETE FROM stream_pending WHERE pos = ANY($1)", &[&positions])
                .await;
        }
        drop(slot);
        self.wake.notify_one();
    }

    /// After an own commit at `upto`: reads the position again and waits
    /// until it reaches `upto`, so the writer's client sees its own change in
    /// the stream as soon as it is answered.
    pub async fn await_own(&self, upto: u64) {
        self.wake.notify_one();
        self.announce.notify_one();
        let mut rx = self.persisted.subscribe();
        if tokio::time::timeout(OWN_WRITE_WAIT, rx.wait_for(|p| *p >= upto))
            .await
            .is_err()
        {
            tracing::warn!(
                position = upto,
                persisted = self.persisted(),
                "a lower stream position is still being written elsewhere; answering a committed write before \
                 the stream shows it"
            );
        }
    }

    /// Sends `NOTIFY` after own commits until the store is dropped: once
    /// per wake-up however many commits asked meanwhile, in a transaction of
    /// its own that need not wait for the disk (a lost notification costs at
    /// most one [`POLL`]).
    pub async fn announce(self: Arc<Self>) {
        loop {
            let Ok(Connected { client, driver }) = connect::dedicated(&self.config, None).await else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let _driver = AbortOnDrop(Some(driver));
            if client.batch_execute("SET synchronous_commit = off").await.is_err() {
                tokio::time::sleep(POLL).await;
                continue;
            }
            loop {
                self.announce.notified().await;
                if let Err(e) = client.execute("SELECT pg_notify($1, '')", &[&CHANNEL]).await {
                    tracing::warn!(error = %describe(&e), "notifying other instances failed; they poll meanwhile");
                    break;
                }
            }
        }
    }

    fn set_health(&self, state: Result<Instant, String>) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// Reads the position until the store is dropped (the task is aborted
    /// then): on every notification, on own commits, and every [`POLL`].
    pub async fn track(self: Arc<Self>) {
        loop {
            let Connected { client, driver } = match connect::dedicated(&self.config, Some(self.wake.clone())).await {
                Ok(c) => c,
                Err(e) => {
                    self.set_health(Err(format!("cannot reach the database: {e}")));
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if let Err(e) = client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                self.set_health(Err(format!("cannot listen for stream changes: {}", describe(&e))));
                tokio::time::sleep(POLL).await;
                continue;
            }
            let why = self.follow(&client, driver).await;
            self.set_health(Err(why));
            tokio::time::sleep(POLL).await;
        }
    }

    /// Follows the stream on one connection until it fails; returns why.
    async fn follow(&self, client: &Client, driver: tokio::task::JoinHandle<()>) -> String {
        let _driver = AbortOnDrop(Some(driver));
        let mut last_size = Instant::now() - SIZE_EVERY;
        loop {
            let timed_out = tokio::select! {
                _ = self.wake.notified() => false,
                _ = tokio::time::sleep(POLL) => true,
            };
            let row = match client.query_one(PERSISTED, &[]).await {
                Ok(row) => row,
                Err(e) => return format!("reading the stream position failed: {}", describe(&e)),
            };
            let (persisted, pending): (i64, bool) = match (row.try_get(0), row.try_get(1)) {
                (Ok(p), Ok(q)) => (p, q),
                _ => return "the stream position query returned no position".into(),
            };
            self.persisted.send_if_modified(|current| {
                let next = pos(persisted);
                // Never backwards: a position once shown stays shown.
                (next > *current).then(|| *current = next).is_some()
            });
            self.set_health(Ok(Instant::now()));
            if timed_out && pending {
                if let Err(e) = client.execute(SWEEP, &[]).await {
                    return format!("sweeping abandoned positions failed: {}", describe(&e));
                }
            }
            if last_size.elapsed() >= SIZE_EVERY {
                last_size = Instant::now();
                if let Ok(row) = client
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .await
                {
                    let size: i64 = row.try_get(0).unwrap_or(0);
                    self.disk_bytes.store(pos(size), Ordering::Relaxed);
                }
            }
        }
    }
}

/// Reads the persisted position once (at open).
pub async fn read_persisted(client: &Client) -> Result<u64, StoreError> {
    let row = client.query_one(PERSISTED, &[]).await.map_err(db)?;
    Ok(pos(row.try_get(0).map_err(db)?))
}

struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}
