//! The single writer: one thread applies every write, in arrival order.
//!
//! One writer makes the store's guarantees simple to keep:
//! - writes to a room are serialized without room locks: a plan reads the
//!   room's newest state and nothing else writes in between;
//! - stream positions are handed out in the order writes are applied, so a
//!   reader that sees position n can rely on every lower one existing;
//! - writes waiting together are applied as ONE sled batch (sled makes two
//!   synchronous buffer writes per batch however small it is), each job
//!   seeing what the jobs before it in the batch wrote.
//!
//! A job that fails writes nothing and does not affect its neighbours. Before
//! a batch is applied its keys' old values are registered with
//! [`Committed`], so readers keep seeing those until a flush makes the batch
//! durable; a job's caller is answered only after that flush.

use super::auth_cache::AuthCache;
use super::batch_log::{self, Change};
use super::commit::GroupCommit;
use super::committed::Committed;
use super::keys;
use super::packing::Packer;
use super::{RoomWritten, StoreError, WriteSeq};
use ::sled::{IVec, Tree};
use foldhash::HashMap;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// The most jobs one batch takes; more wait for the next.
const MAX_BATCH: usize = 256;

/// What a job answers.
#[derive(Debug)]
pub enum Output {
    Room(RoomWritten),
    Flag(bool),
    Id(String),
    Exported(super::ExportSummary),
    /// A stream position a write took.
    Pos(u64),
    /// A membership a write found.
    Member(Option<crate::membership::state::Membership>),
    Done,
}

/// A job: decides and stages its writes against the newest data.
pub type JobFn = Box<dyn FnOnce(&mut Staged<'_>) -> Result<Output, StoreError> + Send>;

/// A job's answer and the write whose durability it waits for: a refusal
/// too, since it may rest on a write that is not durable yet.
type Answer = (Result<Output, StoreError>, WriteSeq);

struct Job {
    run: JobFn,
    reply: oneshot::Sender<Answer>,
}

/// A staged value: `None` removes the key.
#[derive(Clone)]
struct Value {
    new: Option<IVec>,
    /// The key names a new position: nothing was stored under it before.
    fresh: bool,
}

/// Keys written so far, in order, with their new values.
#[derive(Default)]
pub struct Writes {
    order: Vec<Vec<u8>>,
    values: HashMap<Vec<u8>, Value>,
}

impl Writes {
    fn set(&mut self, key: Vec<u8>, value: Value) {
        match self.values.get_mut(&key) {
            Some(old) => {
                // Still fresh if the first write under it was.
                old.new = value.new;
            }
            None => {
                self.order.push(key.clone());
                self.values.insert(key, value);
            }
        }
    }

    /// The staged value of `key`, if the batch changes it (`Some(None)`: removes it).
    pub fn get(&self, key: &[u8]) -> Option<&Option<IVec>> {
        self.values.get(key).map(|v| &v.new)
    }

    /// Stages `key = value`.
    pub fn put(&mut self, key: Vec<u8>, value: IVec) {
        self.set(
            key,
            Value {
                new: Some(value),
                fresh: false,
            },
        );
    }

    /// Stages `key = value` for a key nothing is stored under yet.
    pub fn put_fresh(&mut self, key: Vec<u8>, value: IVec) {
        self.set(
            key,
            Value {
                new: Some(value),
                fresh: true,
            },
        );
    }

    /// Stages the removal of `key`.
    pub fn remove(&mut self, key: Vec<u8>) {
        self.set(
            key,
            Value {
                new: None,
                fresh: false,
            },
        );
    }

    /// The keys under `tag` that name new positions, in the order staged.
    pub fn fresh_keys(&self, tag: keys::Tag) -> Vec<Vec<u8>> {
        self.order
            .iter()
            .filter(|k| k.first() == Some(&(tag as u8)) && self.values[*k].fresh)
            .cloned()
            .collect()
    }

    /// Drops fresh keys from the batch, as if they had never been staged:
    /// nothing was stored under them, so nothing is to be undone.
    pub fn discard(&mut self, keys: &foldhash::HashSet<Vec<u8>>) {
        if keys.is_empty() {
            return;
        }
        self.order.retain(|k| !keys.contains(k));
        self.values.retain(|k, _| !keys.contains(k));
    }

    fn absorb(&mut self, other: Writes) {
        let Writes { order, mut values } = other;
        for key in order {
            if let Some(value) = values.remove(&key) {
                self.set(key, value);
            }
        }
    }
}

/// One job's view while it runs: its own writes over the batch's over the tree.
pub struct Staged<'a> {
    tree: &'a Tree,
    batch: &'a Writes,
    /// What the tree held for keys read during this batch; the tree does not
    /// change until the batch is applied, so these are its before-images too.
    read: &'a mut HashMap<Vec<u8>, Option<IVec>>,
    own: Writes,
    next_pos: u64,
    /// Rooms' auth states as the writes so far left them.
    pub auth: &'a mut AuthCache,
}

impl Staged<'_> {
    /// The newest value of `key`, including writes staged before this read.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        if let Some(v) = self.own.get(key).or_else(|| self.batch.get(key)) {
            return Ok(v.clone());
        }
        if let Some(v) = self.read.get(key) {
            return Ok(v.clone());
        }
        let v = self.tree.get(key)?;
        self.read.insert(key.to_vec(), v.clone());
        Ok(v)
    }

    /// Stages `key = value`.
    pub fn put(&mut self, key: Vec<u8>, value: impl Into<IVec>) {
        self.own.put(key, value.into());
    }

    /// Stages `key = value` for a key that names a position this batch
    /// handed out, under which nothing can be stored yet.
    pub fn put_fresh(&mut self, key: Vec<u8>, value: impl Into<IVec>) {
        self.own.put_fresh(key, value.into());
    }

    /// Stages the removal of `key`.
    pub fn remove(&mut self, key: Vec<u8>) {
        self.own.remove(key);
    }

    /// Every key starting with `prefix` that exists as the writes so far
    /// left it (the tree, this batch's jobs before this one, this job), in
    /// key order.
    pub fn keys_with_prefix(&mut self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut candidates = std::collections::BTreeSet::new();
        for entry in self.tree.scan_prefix(prefix) {
            candidates.insert(entry?.0.to_vec());
        }
        for key in self.batch.order.iter().chain(self.own.order.iter()) {
            if key.starts_with(prefix) {
                candidates.insert(key.clone());
            }
        }
        let mut out = Vec::with_capacity(candidates.len());
        for key in candidates {
            if self.get(&key)?.is_some() {
                out.push(key);
            }
        }
        Ok(out)
    }

    /// Marks every position up to `pos` as handed out (an import writes
    /// events at the positions they had), so later writes continue after it.
    pub fn claim_through(&mut self, pos: u64) {
        self.next_pos = self.next_pos.max(pos + 1);
    }

    /// The tree as every batch before this one left it, without what this
    /// batch stages: a consistent cut, since only the writer applies
    /// batches and it is running this job.
    pub fn applied_tree(&self) -> &Tree {
        self.tree
    }

    /// Hands out the next stream position.
    pub fn next_pos(&mut self) -> u64 {
        let pos = self.next_pos;
        self.next_pos += 1;
        pos
    }
}

/// The writer thread's handle: submit jobs, wait for their durability.
pub struct Writer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    commit: Arc<GroupCommit>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    /// Starts the writer over `tree`, whose highest stream position is `pos`.
    pub fn start(
        tree: Tree,
        committed: Arc<Committed>,
        commit: Arc<GroupCommit>,
        pos: u64,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread_commit = commit.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let mut state = WriterState {
                    tree,
                    committed,
                    commit: thread_commit,
                    pos,
                    auth: AuthCache::default(),
                    packer: Packer::default(),
                    logged: VecDeque::new(),
                };
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
                    state.run_batch(jobs);
                }
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            commit,
        })
    }

    /// Runs `run` on the writer and returns its answer once everything it
    /// saw, and its own batch, is durable.
    pub async fn submit(&self, run: JobFn) -> Result<Output, StoreError> {
        let (reply, answer) = oneshot::channel();
        {
            let tx = lock(&self.tx);
            let tx = tx
                .as_ref()
                .ok_or_else(|| StoreError::Internal("the store is closed".into()))?;
            tx.send(Job { run, reply })
                .map_err(|_| StoreError::Internal("the writer thread has stopped".into()))?;
        }
        let (output, seq) = answer
            .await
            .map_err(|_| StoreError::Internal("the writer thread dropped a job".into()))?;
        self.commit.durable(seq).await?;
        output
    }

    /// Stops the writer after the jobs already sent, and waits for it.
    pub fn stop(&self) {
        drop(lock(&self.tx).take());
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

struct WriterState {
    tree: Tree,
    committed: Arc<Committed>,
    commit: Arc<GroupCommit>,
    /// The highest stream position applied.
    pos: u64,
    auth: AuthCache,
    packer: Packer,
    /// Batches whose batch-log record is still stored, oldest first.
    logged: VecDeque<WriteSeq>,
}

type Outcome = (oneshot::Sender<Answer>, Result<Output, StoreError>);

impl WriterState {
    fn run_batch(&mut self, jobs: Vec<Job>) {
        let mut batch = Writes::default();
        let mut read = HashMap::default();
        let mut next_pos = self.pos + 1;
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(jobs.len());
        for job in jobs {
            let mut staged = Staged {
                tree: &self.tree,
                batch: &batch,
                read: &mut read,
                own: Writes::default(),
                next_pos,
                auth: &mut self.auth,
            };
            let result = catch_unwind(AssertUnwindSafe(|| (job.run)(&mut staged))).unwrap_or_else(|_| {
                Err(StoreError::Internal(
                    "a write panicked; nothing of it was written".into(),
                ))
            });
            let (own, job_end) = (staged.own, staged.next_pos);
            if result.is_ok() {
                next_pos = job_end;
                batch.absorb(own);
                self.auth.keep_job();
            } else {
                self.auth.drop_job();
            }
            outcomes.push((job.reply, result));
        }
        // Nothing new: what the jobs saw is covered by the last write.
        let applied = if batch.order.is_empty() {
            Ok(self.commit.last_write())
        } else {
            self.apply(batch, read, next_pos - 1)
        };
        match applied {
            Ok(_) => self.auth.keep_batch(),
            Err(_) => self.auth.drop_batch(),
        }
        let seq = applied.as_ref().copied().unwrap_or_else(|_| self.commit.last_write());
        for (reply, result) in outcomes {
            let result = match (&applied, result) {
                (Err(e), Ok(_)) => Err(StoreError::Internal(format!("applying the write failed: {e}"))),
                (_, result) => result,
            };
            let _ = reply.send((result, seq));
        }
    }

    /// Applies a batch atomically, hidden from readers until it is durable.
    fn apply(
        &mut self,
        mut batch: Writes,
        mut read: HashMap<Vec<u8>, Option<IVec>>,
        pos_after: u64,
    ) -> Result<WriteSeq, StoreError> {
        if let Err(e) = self.packer.pack(&self.tree, &mut batch, &mut read) {
            self.packer.forget();
            return Err(e);
        }
        if pos_after > self.pos {
            batch.set(
                keys::stream_end(),
                Value {
                    new: Some(IVec::from(&pos_after.to_be_bytes()[..])),
                    fresh: false,
                },
            );
        }
        let seq = self.commit.last_write() + 1;
        let mut before = Vec::with_capacity(batch.order.len());
        for key in &batch.order {
            let old = match (batch.values[key].fresh, read.get(key)) {
                (true, _) => None,
                (false, Some(seen)) => seen.clone(),
                (false, None) => self.tree.get(key)?,
            };
            before.push((key.clone(), old));
        }
        self.committed.register(seq, before, pos_after);
        let Writes { order, mut values } = batch;
        let changes: Vec<Change> = order
            .into_iter()
            .map(|key| {
                let new = values.remove(&key).and_then(|v| v.new);
                (key, new)
            })
            .collect();
        if let Err(e) = self.write_logged(seq, changes) {
            self.committed.unregister(seq);
            self.packer.forget();
            return Err(e);
        }
        self.forget_durable_records();
        self.pos = pos_after;
        self.commit.publish(seq);
        Ok(seq)
    }

    /// The batch's record, then its keys with plain inserts (see `batch_log`).
    /// If an insert fails, the keys already changed get their old values back.
    fn write_logged(&mut self, seq: WriteSeq, changes: Vec<Change>) -> Result<(), StoreError> {
        let record = batch_log::encode(changes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())));
        self.tree.insert(batch_log::key(seq), record)?;
        self.logged.push_back(seq);
        let mut done = 0;
        let applied = changes.into_iter().try_for_each(|(k, v)| {
            match v {
                Some(v) => self.tree.insert(k, v)?,
                None => self.tree.remove(k)?,
            };
            done += 1;
            Ok::<(), ::sled::Error>(())
        });
        let Err(e) = applied else {
            return Ok(());
        };
        // Best effort: if sled fails again, the record is still there and
        // the next open applies the whole batch, which nobody was told of.
        let mut before = self.committed.before_images(seq);
        before.truncate(done);
        let undone = batch_log::apply(&self.tree, before)
            .and_then(|()| Ok(self.tree.remove(batch_log::key(seq)).map(|_| ())?));
        if undone.is_ok() {
            self.logged.pop_back();
        }
        Err(e.into())
    }

    /// Removes the records of batches whose inserts a flush has covered.
    fn forget_durable_records(&mut self) {
        let durable = self.commit.durable_seq();
        while let Some(&seq) = self.logged.front() {
            if seq > durable || self.tree.remove(batch_log::key(seq)).is_err() {
                return;
            }
            self.logged.pop_front();
        }
    }
}
