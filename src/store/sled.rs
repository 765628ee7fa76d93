//! `Store` on sled 0.34.
//!
//! Tree names say key order and value (Conduit style). Key parts are joined
//! with 0xFF, which never occurs in UTF-8, so a prefix `room 0xFF` matches
//! exactly that room and never `room` followed by more characters.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `userid_password` | user | password hash |
//! | `tokenhash_userid` | sha256(token) | user 0xFF device_id |
//! | `userdeviceid_tokenhash` | user 0xFF device_id | sha256(token): the device's one token |
//! | `roomid_meta` | room | JSON `{creator}`; presence means the room exists |
//! | `roomuserid_membership` | room 0xFF user | membership byte, BE u64 pos of the member event |
//! | `userroomid_membership` | user 0xFF room | same |
//! | `roomid_state` | room 0xFF type 0xFF state_key | BE u64 pos of the current state event |
//! | `roompos_event` | room 0xFF BE u64 pos | event JSON |
//! | `pos_roomid` | BE u64 pos | room (global stream for sync) |
//! | `alias_roomid` | alias | room |
//! | `roomid_alias` | room 0xFF alias | empty |
//! | `userroomtxn_eventid` | user 0xFF room 0xFF txn_id | BE u64 pos, event id |
//! | `userfilterid_filter` | user 0xFF filter_id | filter JSON |
//! | `userid_displayname` | user | display name |

use super::commit::GroupCommit;
use super::{Event, NewEvent, Store, StoreError, WriteSeq};
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::state::Membership;
use ::sled::transaction::{ConflictableTransactionError, TransactionalTree};
use ::sled::{Transactional, Tree};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const SEP: u8 = 0xFF;
const MEMBER_EVENT: &str = "m.room.member";

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// The sled-backed store; cheap to share behind an `Arc`.
pub struct SledStore {
    userid_password: Tree,
    tokenhash_userid: Tree,
    userdeviceid_tokenhash: Tree,
    roomid_meta: Tree,
    roomuserid_membership: Tree,
    userroomid_membership: Tree,
    roomid_state: Tree,
    roompos_event: Tree,
    pos_roomid: Tree,
    alias_roomid: Tree,
    roomid_alias: Tree,
    userroomtxn_eventid: Tree,
    userfilterid_filter: Tree,
    userid_displayname: Tree,
    /// Hands out filter ids.
    db: ::sled::Db,
    /// Highest committed stream position. Held across "allocate positions +
    /// run transaction" so positions are strictly monotonic in commit order:
    /// a reader that sees position n can rely on every lower one existing.
    writer: Mutex<u64>,
    /// Room writes waiting for a combiner (see [`SledStore::room_write`]).
    queue: Mutex<Vec<Arc<Pending>>>,
    /// Copy of the committed position for lock-free `current_pos`.
    visible_pos: AtomicU64,
    commit: GroupCommit,
}

/// The trees a room write touches, inside one transaction.
struct RoomTx<'a> {
    meta: &'a TransactionalTree,
    state: &'a TransactionalTree,
    events: &'a TransactionalTree,
    pos_room: &'a TransactionalTree,
    room_user: &'a TransactionalTree,
    user_room: &'a TransactionalTree,
    txn: &'a TransactionalTree,
}

impl SledStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        Self::open_with_flush_delay(path, std::time::Duration::ZERO)
    }

    /// Opens the database with a pause before every group-commit flush (crash tests only).
    pub fn open_with_flush_delay(path: &Path, delay: std::time::Duration) -> Result<SledStore, StoreError> {
        let db = ::sled::open(path)?;
        let tree = |name: &str| db.open_tree(name);
        let pos_roomid = tree("pos_roomid")?;
        // Every event is indexed in pos_roomid inside its own transaction, so
        // its last key is the highest position ever committed.
        let pos = match pos_roomid.last()? {
            Some((k, _)) => decode_u64(&k)?,
            None => 0,
        };
        Ok(SledStore {
            userid_password: tree("userid_password")?,
            tokenhash_userid: tree("tokenhash_userid")?,
            userdeviceid_tokenhash: tree("userdeviceid_tokenhash")?,
            roomid_meta: tree("roomid_meta")?,
            roomuserid_membership: tree("roomuserid_membership")?,
            userroomid_membership: tree("userroomid_membership")?,
            roomid_state: tree("roomid_state")?,
            roompos_event: tree("roompos_event")?,
            pos_roomid,
            alias_roomid: tree("alias_roomid")?,
            roomid_alias: tree("roomid_alias")?,
            userroomtxn_eventid: tree("userroomtxn_eventid")?,
            userfilterid_filter: tree("userfilterid_filter")?,
            userid_displayname: tree("userid_displayname")?,
            db: db.clone(),
            writer: Mutex::new(pos),
            queue: Mutex::new(Vec::new()),
            visible_pos: AtomicU64::new(pos),
            commit: GroupCommit::new(db.clone(), delay)?,
        })
    }

    /// Resolves once a flush that started after write `seq` has completed.
    pub async fn durable(&self, seq: WriteSeq) -> Result<(), StoreError> {
        self.commit.durable(seq).await
    }

    /// Flushes everything written so far, blocking (shutdown).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.commit.flush()
    }

    /// The number of the latest write, for operations that return no `WriteSeq` (`create_user`).
    pub fn last_write_seq(&self) -> WriteSeq {
        self.commit.last_write()
    }

    /// How many flushes have run since open (tests and metrics).
    pub fn flush_count(&self) -> u64 {
        self.commit.flush_count()
    }

    /// Applies one room write and returns its events and write number.
    ///
    /// Writes are combined: every sled transaction costs two synchronous
    /// buffer writes however small it is, so the caller that takes the writer
    /// lock applies every write queued so far in ONE transaction, and the
    /// others find their answer waiting when they get the lock. Positions stay
    /// strictly monotonic in commit order because the lock is held across
    /// "allocate positions + run transaction".
    fn room_write(&self, op: RoomOp) -> WriteResult {
        let pending = Arc::new(Pending {
            op,
            done: Mutex::new(None),
        });
        lock(&self.queue).push(pending.clone());
        let mut pos = lock(&self.writer);
        // A combiner that took our job finished before releasing the lock.
        if let Some(done) = lock(&pending.done).take() {
            return done;
        }
        let batch = std::mem::take(&mut *lock(&self.queue));
        self.run_batch(&mut pos, batch);
        let done = lock(&pending.done).take();
        done.expect("the combiner answers every job it took")
    }

    /// Runs `batch` in one transaction; a job that aborts is answered with its
    /// error and the rest are retried without it, so one bad write never
    /// fails its neighbours.
    fn run_batch(&self, pos: &mut u64, mut live: Vec<Arc<Pending>>) {
        while !live.is_empty() {
            let failed = Cell::new(None);
            let result = (
                &self.roomid_meta,
                &self.roomid_state,
                &self.roompos_event,
                &self.pos_roomid,
                &self.roomuserid_membership,
                &self.userroomid_membership,
                &self.userroomtxn_eventid,
            )
                .transaction(|(meta, state, events, pos_room, room_user, user_room, txn)| {
                    let tx = RoomTx {
                        meta,
                        state,
                        events,
                        pos_room,
                        room_user,
                        user_room,
                        txn,
                    };
                    let mut next = *pos + 1;
                    let mut outputs = Vec::with_capacity(live.len());
                    for (i, job) in live.iter().enumerate() {
                        match apply(&tx, &job.op, next) {
                            Ok((written, used)) => {
                                next += used;
                                outputs.push(written);
                            }
                            Err(e) => {
                                failed.set(Some(i));
                                return Err(e);
                            }
                        }
                    }
                    Ok((outputs, next - 1 - *pos))
                });
            match result {
                Ok((outputs, used)) => {
                    *pos += used;
                    self.visible_pos.store(*pos, Ordering::Release);
                    // Numbered while still holding the lock: a duplicate transaction
                    // id handled later gets a number at least as high, so waiting on
                    // it also covers the original write.
                    let seq = self.commit.note_write();
                    for (job, written) in live.iter().zip(outputs) {
                        *lock(&job.done) = Some(Ok((written, seq)));
                    }
                    return;
                }
                Err(e) => {
                    let e = StoreError::from(e);
                    match failed.get() {
                        Some(i) => {
                            let job = live.remove(i);
                            *lock(&job.done) = Some(Err(e));
                        }
                        None => {
                            for job in &live {
                                *lock(&job.done) = Some(Err(e.clone()));
                            }
                            return;
                        }
                    }
                }
            }
        }
    }

    fn event_at(&self, room: &str, pos: u64) -> Result<Option<Event>, StoreError> {
        self.roompos_event
            .get(room_pos_key(room, pos))?
            .map(|v| decode_event(&v))
            .transpose()
    }

    fn membership_entry(&self, room: &RoomId, user: &UserId) -> Result<Option<(Membership, u64)>, StoreError> {
        self.roomuserid_membership
            .get(join(&[room.as_str().as_bytes(), user.as_str().as_bytes()]))?
            .map(|v| decode_membership(&v))
            .transpose()
    }
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut key = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push(SEP);
        }
        key.extend_from_slice(part);
    }
    key
}

fn prefix(s: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(s.len() + 1);
    key.extend_from_slice(s.as_bytes());
    key.push(SEP);
    key
}

fn room_pos_key(room: &str, pos: u64) -> Vec<u8> {
    let mut key = prefix(room);
    key.extend_from_slice(&pos.to_be_bytes());
    key
}

fn state_tree_key(room: &str, event_type: &str, state_key: &str) -> Vec<u8> {
    join(&[room.as_bytes(), event_type.as_bytes(), state_key.as_bytes()])
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

fn decode_u64(bytes: &[u8]) -> Result<u64, StoreError> {
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| corrupt(format!("expected a big-endian u64, found {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(head))
}

fn decode_str(bytes: &[u8]) -> Result<&str, StoreError> {
    std::str::from_utf8(bytes).map_err(|e| corrupt(format!("non-UTF-8 string: {e}")))
}

fn decode_event(bytes: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(format!("undecodable event: {e}")))
}

fn membership_code(m: Membership) -> u8 {
    match m {
        Membership::Join => b'j',
        Membership::Invite => b'i',
        Membership::Leave => b'l',
        Membership::Ban => b'b',
        Membership::Knock => b'k',
    }
}

fn encode_membership(m: Membership, pos: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(9);
    v.push(membership_code(m));
    v.extend_from_slice(&pos.to_be_bytes());
    v
}

fn decode_membership(v: &[u8]) -> Result<(Membership, u64), StoreError> {
    let m = match v.first() {
        Some(b'j') => Membership::Join,
        Some(b'i') => Membership::Invite,
        Some(b'l') => Membership::Leave,
        Some(b'b') => Membership::Ban,
        Some(b'k') => Membership::Knock,
        other => return Err(corrupt(format!("unknown membership code {other:?}"))),
    };
    Ok((m, decode_u64(&v[1..])?))
}

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Lifts a decoding result into a transaction, aborting it on error.
fn in_tx<T>(r: Result<T, StoreError>) -> TxResult<T> {
    r.map_err(ConflictableTransactionError::Abort)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn new_event_id() -> String {
    use rand::Rng;
    // 24 alphanumerics carry ~143 bits: collisions are not a practical concern.
    let opaque: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("${opaque}")
}

/// The (target, membership) a member event sets; rejected events abort the
/// whole transaction, so an invalid one anywhere in a batch writes nothing.
fn member_change(new: &NewEvent, state_key: &str) -> Result<(UserId, Membership), StoreError> {
    let user = UserId::parse(state_key).map_err(|e| StoreError::Invalid(format!("member event state_key: {e}")))?;
    let membership = new
        .content
        .get("membership")
        .cloned()
        .ok_or_else(|| StoreError::Invalid("member event without content.membership".into()))
        .and_then(|v| {
            serde_json::from_value::<Membership>(v)
                .map_err(|e| StoreError::Invalid(format!("member event content.membership: {e}")))
        })?;
    Ok((user, membership))
}

/// Writes `events` at positions `first..`, updating state and membership indexes.
fn write_events(tx: &RoomTx<'_>, room: &RoomId, first: u64, events: &[NewEvent]) -> TxResult<Vec<Event>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(events.len());
    for (pos, new) in (first..).zip(events) {
        let event = Event {
            event_id: new_event_id(),
            room_id: room.as_str().to_owned(),
            sender: new.sender.as_str().to_owned(),
            event_type: new.event_type.clone(),
            state_key: new.state_key.clone(),
            content: new.content.clone(),
            origin_server_ts: now,
            stream_pos: pos,
        };
        let json = match serde_json::to_vec(&event) {
            Ok(json) => json,
            Err(e) => return abort(StoreError::Invalid(format!("unserialisable event: {e}"))),
        };
        tx.events.insert(room_pos_key(room.as_str(), pos), json)?;
        tx.pos_room.insert(&pos.to_be_bytes(), room.as_str().as_bytes())?;
        if let Some(sk) = &new.state_key {
            tx.state
                .insert(state_tree_key(room.as_str(), &new.event_type, sk), &pos.to_be_bytes())?;
            if new.event_type == MEMBER_EVENT {
                let (user, membership) = match member_change(new, sk) {
                    Ok(change) => change,
                    Err(e) => return abort(e),
                };
                let value = encode_membership(membership, pos);
                tx.room_user.insert(
                    join(&[room.as_str().as_bytes(), user.as_str().as_bytes()]),
                    value.clone(),
                )?;
                tx.user_room
                    .insert(join(&[user.as_str().as_bytes(), room.as_str().as_bytes()]), value)?;
            }
        }
        out.push(event);
    }
    Ok(out)
}

/// A room write waiting to be applied by a combiner.
enum RoomOp {
    Create {
        room: RoomId,
        meta: String,
        events: Vec<NewEvent>,
    },
    Append {
        room: RoomId,
        events: Vec<NewEvent>,
    },
    AppendTxn {
        room: RoomId,
        event: NewEvent,
        key: Vec<u8>,
        txn_id: String,
    },
}

/// What a room write answers: its events and write number.
type WriteResult = Result<(Vec<Event>, WriteSeq), StoreError>;

/// A queued write and, once applied, its answer.
struct Pending {
    op: RoomOp,
    done: Mutex<Option<WriteResult>>,
}

/// A poisoned lock only means another writer panicked; the data it guards is
/// still consistent because sled transactions are all-or-nothing.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Applies one write at positions `first..`; returns its events and how many positions it used.
fn apply(tx: &RoomTx<'_>, op: &RoomOp, first: u64) -> TxResult<(Vec<Event>, u64)> {
    match op {
        RoomOp::Create { room, meta, events } => {
            if tx.meta.get(room.as_str().as_bytes())?.is_some() {
                return abort(StoreError::RoomExists(room.as_str().to_owned()));
            }
            tx.meta.insert(room.as_str().as_bytes(), meta.as_bytes())?;
            Ok((write_events(tx, room, first, events)?, events.len() as u64))
        }
        RoomOp::Append { room, events } => {
            require_room(tx, room)?;
            Ok((write_events(tx, room, first, events)?, events.len() as u64))
        }
        RoomOp::AppendTxn {
            room,
            event,
            key,
            txn_id,
        } => {
            require_room(tx, room)?;
            // Checked inside the transaction, under the writer lock, so two
            // retries of the same request cannot both append.
            if let Some(seen) = tx.txn.get(key)? {
                let pos = in_tx(decode_u64(&seen))?;
                let Some(json) = tx.events.get(room_pos_key(room.as_str(), pos))? else {
                    return abort(corrupt(format!("transaction {txn_id} points at missing event {pos}")));
                };
                return Ok((vec![in_tx(decode_event(&json))?], 0));
            }
            let written = write_events(tx, room, first, std::slice::from_ref(event))?;
            let mut value = first.to_be_bytes().to_vec();
            value.extend_from_slice(written[0].event_id.as_bytes());
            tx.txn.insert(key.as_slice(), value)?;
            Ok((written, 1))
        }
    }
}

fn require_room(tx: &RoomTx<'_>, room: &RoomId) -> TxResult<()> {
    if tx.meta.get(room.as_str().as_bytes())?.is_none() {
        return abort(StoreError::UnknownRoom(room.as_str().to_owned()));
    }
    Ok(())
}

impl Store for SledStore {
    fn create_user(&self, user: &UserId, password_hash: &str) -> Result<bool, StoreError> {
        // Compare-and-swap from "absent" makes concurrent registrations of the
        // same id race safely: exactly one wins.
        let swapped = self.userid_password.compare_and_swap(
            user.as_str().as_bytes(),
            None as Option<&[u8]>,
            Some(password_hash.as_bytes()),
        )?;
        if swapped.is_ok() {
            self.commit.note_write();
        }
        Ok(swapped.is_ok())
    }

    fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.userid_password
            .get(user.as_str().as_bytes())?
            .map(|v| decode_str(&v).map(str::to_owned))
            .transpose()
    }

    fn user_exists(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.userid_password.contains_key(user.as_str().as_bytes())?)
    }

    fn add_token(&self, token_hash: &[u8; 32], user: &UserId, device_id: &str) -> Result<WriteSeq, StoreError> {
        let device = join(&[user.as_str().as_bytes(), device_id.as_bytes()]);
        (&self.tokenhash_userid, &self.userdeviceid_tokenhash).transaction(|(tokens, devices)| -> TxResult<()> {
            // A device has one token: logging in on it again ends its old session.
            if let Some(old) = devices.insert(device.as_slice(), &token_hash[..])? {
                if old.as_ref() != token_hash {
                    tokens.remove(old)?;
                }
            }
            tokens.insert(&token_hash[..], device.as_slice())?;
            Ok(())
        })?;
        Ok(self.commit.note_write())
    }

    fn token_user(&self, token_hash: &[u8; 32]) -> Result<Option<(UserId, String)>, StoreError> {
        let Some(v) = self.tokenhash_userid.get(token_hash)? else {
            return Ok(None);
        };
        let at = v
            .iter()
            .position(|&b| b == SEP)
            .ok_or_else(|| corrupt("token entry without a device separator"))?;
        let (user, device) = (&v[..at], &v[at + 1..]);
        let user = UserId::parse(decode_str(user)?).map_err(|e| corrupt(e.0))?;
        Ok(Some((user, decode_str(device)?.to_owned())))
    }

    fn remove_token(&self, token_hash: &[u8; 32]) -> Result<WriteSeq, StoreError> {
        (&self.tokenhash_userid, &self.userdeviceid_tokenhash).transaction(|(tokens, devices)| -> TxResult<()> {
            let Some(device) = tokens.remove(&token_hash[..])? else {
                return Ok(());
            };
            if devices
                .get(&device)?
                .is_some_and(|current| current.as_ref() == token_hash)
            {
                devices.remove(device)?;
            }
            Ok(())
        })?;
        Ok(self.commit.note_write())
    }

    fn create_room(
        &self,
        room: &RoomId,
        creator: &UserId,
        initial: &[NewEvent],
    ) -> Result<(Vec<Event>, WriteSeq), StoreError> {
        let meta = serde_json::json!({ "creator": creator.as_str() }).to_string();
        self.room_write(RoomOp::Create {
            room: room.clone(),
            meta,
            events: initial.to_vec(),
        })
    }

    fn room_exists(&self, room: &RoomId) -> Result<bool, StoreError> {
        Ok(self.roomid_meta.contains_key(room.as_str().as_bytes())?)
    }

    fn append(&self, room: &RoomId, events: &[NewEvent]) -> Result<(Vec<Event>, WriteSeq), StoreError> {
        self.room_write(RoomOp::Append {
            room: room.clone(),
            events: events.to_vec(),
        })
    }

    fn membership(&self, room: &RoomId, user: &UserId) -> Result<Option<Membership>, StoreError> {
        Ok(self.membership_entry(room, user)?.map(|(m, _)| m))
    }

    fn state_event(&self, room: &RoomId, event_type: &str, state_key: &str) -> Result<Option<Event>, StoreError> {
        let Some(pos) = self
            .roomid_state
            .get(state_tree_key(room.as_str(), event_type, state_key))?
        else {
            return Ok(None);
        };
        let pos = decode_u64(&pos)?;
        match self.event_at(room.as_str(), pos)? {
            Some(event) => Ok(Some(event)),
            None => Err(corrupt(format!("state points at missing event {pos} in {room}"))),
        }
    }

    fn current_state(&self, room: &RoomId) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for entry in self.roomid_state.scan_prefix(prefix(room.as_str())) {
            let (_, pos) = entry?;
            let pos = decode_u64(&pos)?;
            let event = self
                .event_at(room.as_str(), pos)?
                .ok_or_else(|| corrupt(format!("state points at missing event {pos} in {room}")))?;
            out.push(event);
        }
        Ok(out)
    }

    fn state_at(&self, room: &RoomId, pos: u64) -> Result<Vec<Event>, StoreError> {
        let mut state: BTreeMap<(String, String), Event> = BTreeMap::new();
        let range = room_pos_key(room.as_str(), 0)..=room_pos_key(room.as_str(), pos);
        for entry in self.roompos_event.range(range) {
            let (_, v) = entry?;
            let event = decode_event(&v)?;
            if let Some(sk) = &event.state_key {
                state.insert((event.event_type.clone(), sk.clone()), event);
            }
        }
        Ok(state.into_values().collect())
    }

    fn membership_pos(&self, room: &RoomId, user: &UserId) -> Result<Option<u64>, StoreError> {
        Ok(self.membership_entry(room, user)?.map(|(_, pos)| pos))
    }

    fn members(&self, room: &RoomId) -> Result<Vec<(UserId, Membership)>, StoreError> {
        let prefix = prefix(room.as_str());
        let mut out = Vec::new();
        for entry in self.roomuserid_membership.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let user = UserId::parse(decode_str(&k[prefix.len()..])?).map_err(|e| corrupt(e.0))?;
            out.push((user, decode_membership(&v)?.0));
        }
        Ok(out)
    }

    fn rooms_of(&self, user: &UserId) -> Result<Vec<(RoomId, Membership)>, StoreError> {
        let prefix = prefix(user.as_str());
        let mut out = Vec::new();
        for entry in self.userroomid_membership.scan_prefix(&prefix) {
            let (k, v) = entry?;
            let room = RoomId::parse(decode_str(&k[prefix.len()..])?).map_err(|e| corrupt(e.0))?;
            out.push((room, decode_membership(&v)?.0));
        }
        Ok(out)
    }

    fn room_events(
        &self,
        room: &RoomId,
        from: u64,
        to: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<Event>, StoreError> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let range = self
            .roompos_event
            .range(room_pos_key(room.as_str(), from + 1)..=room_pos_key(room.as_str(), to));
        let decode = |entry: ::sled::Result<(::sled::IVec, ::sled::IVec)>| -> Result<Event, StoreError> {
            decode_event(&entry?.1)
        };
        if newest {
            let mut out = range.rev().take(limit).map(decode).collect::<Result<Vec<_>, _>>()?;
            out.reverse();
            Ok(out)
        } else {
            range.take(limit).map(decode).collect()
        }
    }

    fn current_pos(&self) -> u64 {
        self.visible_pos.load(Ordering::Acquire)
    }

    fn set_alias(&self, alias: &RoomAliasId, room: &RoomId) -> Result<Option<WriteSeq>, StoreError> {
        let set = (&self.alias_roomid, &self.roomid_alias, &self.roomid_meta).transaction(
            |(alias_room, room_alias, meta)| -> TxResult<bool> {
                if meta.get(room.as_str().as_bytes())?.is_none() {
                    return abort(StoreError::UnknownRoom(room.as_str().to_owned()));
                }
                if alias_room.get(alias.as_str().as_bytes())?.is_some() {
                    return Ok(false);
                }
                alias_room.insert(alias.as_str().as_bytes(), room.as_str().as_bytes())?;
                room_alias.insert(join(&[room.as_str().as_bytes(), alias.as_str().as_bytes()]), &[][..])?;
                Ok(true)
            },
        )?;
        Ok(set.then(|| self.commit.note_write()))
    }

    fn resolve_alias(&self, alias: &RoomAliasId) -> Result<Option<RoomId>, StoreError> {
        self.alias_roomid
            .get(alias.as_str().as_bytes())?
            .map(|v| RoomId::parse(decode_str(&v)?).map_err(|e| corrupt(e.0)))
            .transpose()
    }

    fn delete_alias(&self, alias: &RoomAliasId) -> Result<Option<WriteSeq>, StoreError> {
        let deleted =
            (&self.alias_roomid, &self.roomid_alias).transaction(|(alias_room, room_alias)| -> TxResult<bool> {
                let Some(room) = alias_room.remove(alias.as_str().as_bytes())? else {
                    return Ok(false);
                };
                room_alias.remove(join(&[&room, alias.as_str().as_bytes()]))?;
                Ok(true)
            })?;
        Ok(deleted.then(|| self.commit.note_write()))
    }

    fn txn_event(&self, user: &UserId, room: &RoomId, txn_id: &str) -> Result<Option<String>, StoreError> {
        let key = join(&[user.as_str().as_bytes(), room.as_str().as_bytes(), txn_id.as_bytes()]);
        self.userroomtxn_eventid
            .get(key)?
            .map(|v| decode_str(v.get(8..).unwrap_or_default()).map(str::to_owned))
            .transpose()
    }

    fn append_with_txn(&self, room: &RoomId, event: NewEvent, txn_id: &str) -> Result<(Event, WriteSeq), StoreError> {
        let key = join(&[
            event.sender.as_str().as_bytes(),
            room.as_str().as_bytes(),
            txn_id.as_bytes(),
        ]);
        let op = RoomOp::AppendTxn {
            room: room.clone(),
            event,
            key,
            txn_id: txn_id.to_owned(),
        };
        let (mut events, seq) = self.room_write(op)?;
        let event = events
            .pop()
            .ok_or_else(|| corrupt("a transaction write returned no event"))?;
        Ok((event, seq))
    }

    fn put_filter(&self, user: &UserId, filter: &serde_json::Value) -> Result<(String, WriteSeq), StoreError> {
        let id = self.db.generate_id()?.to_string();
        let json =
            serde_json::to_vec(filter).map_err(|e| StoreError::Invalid(format!("unserialisable filter: {e}")))?;
        self.userfilterid_filter
            .insert(join(&[user.as_str().as_bytes(), id.as_bytes()]), json)?;
        Ok((id, self.commit.note_write()))
    }

    fn filter(&self, user: &UserId, filter_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.userfilterid_filter
            .get(join(&[user.as_str().as_bytes(), filter_id.as_bytes()]))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(format!("undecodable filter: {e}"))))
            .transpose()
    }

    fn set_displayname(&self, user: &UserId, name: Option<&str>) -> Result<WriteSeq, StoreError> {
        match name {
            Some(name) => self
                .userid_displayname
                .insert(user.as_str().as_bytes(), name.as_bytes())?,
            None => self.userid_displayname.remove(user.as_str().as_bytes())?,
        };
        Ok(self.commit.note_write())
    }

    fn displayname(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.userid_displayname
            .get(user.as_str().as_bytes())?
            .map(|v| decode_str(&v).map(str::to_owned))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    fn room(s: &str) -> RoomId {
        RoomId::parse(s).unwrap()
    }

    fn member(sender: &str, target: &str, membership: &str) -> NewEvent {
        NewEvent {
            sender: user(sender),
            event_type: MEMBER_EVENT.into(),
            state_key: Some(target.into()),
            content: json!({ "membership": membership }),
        }
    }

    fn message(sender: &str, body: &str) -> NewEvent {
        NewEvent {
            sender: user(sender),
            event_type: "m.room.message".into(),
            state_key: None,
            content: json!({ "msgtype": "m.text", "body": body }),
        }
    }

    fn create(sender: &str) -> NewEvent {
        NewEvent {
            sender: user(sender),
            event_type: "m.room.create".into(),
            state_key: Some(String::new()),
            content: json!({ "creator": sender }),
        }
    }

    fn open() -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        (dir, store)
    }

    const ALICE: &str = "@alice:localhost";
    const BOB: &str = "@bob:localhost";
    const ROOM: &str = "!room:localhost";

    fn with_room(store: &SledStore) -> RoomId {
        let r = room(ROOM);
        store
            .create_room(&r, &user(ALICE), &[create(ALICE), member(ALICE, ALICE, "join")])
            .unwrap();
        r
    }

    #[test]
    fn a_membership_change_updates_both_indexes_and_current_state_together() {
        let (_dir, store) = open();
        let r = with_room(&store);
        let (bob, alice) = (user(BOB), user(ALICE));
        assert_eq!(store.membership(&r, &bob).unwrap(), None);

        let (events, _) = store.append(&r, &[member(ALICE, BOB, "invite")]).unwrap();
        let invite_pos = events[0].stream_pos;
        assert_eq!(store.membership(&r, &bob).unwrap(), Some(Membership::Invite));
        assert_eq!(store.rooms_of(&bob).unwrap(), vec![(r.clone(), Membership::Invite)]);
        assert_eq!(store.membership_pos(&r, &bob).unwrap(), Some(invite_pos));

        let (events, _) = store.append(&r, &[member(BOB, BOB, "join")]).unwrap();
        let join = &events[0];
        assert_eq!(store.membership(&r, &bob).unwrap(), Some(Membership::Join));
        assert_eq!(store.rooms_of(&bob).unwrap(), vec![(r.clone(), Membership::Join)]);
        assert_eq!(store.membership_pos(&r, &bob).unwrap(), Some(join.stream_pos));
        assert_eq!(store.state_event(&r, MEMBER_EVENT, BOB).unwrap().as_ref(), Some(join));
        let mut members = store.members(&r).unwrap();
        members.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            members,
            vec![(alice, Membership::Join), (bob.clone(), Membership::Join)]
        );
        let state = store.current_state(&r).unwrap();
        assert_eq!(state.len(), 3, "create + two member events: {state:?}");
        assert!(state.contains(join));

        // The state before the join still shows the invite.
        let before = store.state_at(&r, invite_pos).unwrap();
        let bob_then = before.iter().find(|e| e.state_key.as_deref() == Some(BOB)).unwrap();
        assert_eq!(bob_then.content["membership"], "invite");
    }

    #[test]
    fn a_prefix_scan_never_mixes_a_room_with_one_whose_id_extends_it() {
        let (_dir, store) = open();
        let short = room("!a:localhost");
        let long = room("!a:localhost.org");
        store
            .create_room(&short, &user(ALICE), &[member(ALICE, ALICE, "join")])
            .unwrap();
        store
            .create_room(&long, &user(BOB), &[member(BOB, BOB, "join")])
            .unwrap();
        assert_eq!(store.members(&short).unwrap(), vec![(user(ALICE), Membership::Join)]);
        assert_eq!(store.current_state(&short).unwrap().len(), 1);
        assert_eq!(store.room_events(&short, 0, u64::MAX, 10, false).unwrap().len(), 1);
    }

    #[test]
    fn reopening_the_database_after_drop_finds_every_change_and_positions_continue() {
        let dir = tempfile::tempdir().unwrap();
        let r = room(ROOM);
        let token = [7u8; 32];
        let last_pos;
        {
            let store = SledStore::open(dir.path()).unwrap();
            with_room(&store);
            assert!(store.create_user(&user(ALICE), "hash").unwrap());
            store.add_token(&token, &user(ALICE), "DEVICE").unwrap();
            store
                .append(&r, &[member(ALICE, BOB, "invite"), message(ALICE, "hi")])
                .unwrap();
            store
                .set_alias(&RoomAliasId::parse("#a:localhost").unwrap(), &r)
                .unwrap()
                .unwrap();
            last_pos = store.current_pos();
            assert_eq!(last_pos, 4);
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.current_pos(), last_pos);
        assert_eq!(store.password_hash(&user(ALICE)).unwrap().as_deref(), Some("hash"));
        assert_eq!(store.token_user(&token).unwrap(), Some((user(ALICE), "DEVICE".into())));
        assert_eq!(store.membership(&r, &user(BOB)).unwrap(), Some(Membership::Invite));
        assert_eq!(
            store
                .resolve_alias(&RoomAliasId::parse("#a:localhost").unwrap())
                .unwrap(),
            Some(r.clone())
        );
        let events = store.room_events(&r, 0, last_pos, 100, false).unwrap();
        assert_eq!(
            events.iter().map(|e| e.stream_pos).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        let (next, _) = store.append(&r, &[message(ALICE, "again")]).unwrap();
        assert_eq!(next[0].stream_pos, last_pos + 1);
    }

    #[test]
    fn an_append_that_fails_validation_inside_the_transaction_leaves_no_trace() {
        let (_dir, store) = open();
        let missing = room("!missing:localhost");
        let err = store.append(&missing, &[member(ALICE, ALICE, "join")]).unwrap_err();
        assert!(matches!(err, StoreError::UnknownRoom(_)), "{err}");
        assert_eq!(store.current_pos(), 0);
        assert_eq!(store.rooms_of(&user(ALICE)).unwrap(), vec![]);
        assert!(store.room_events(&missing, 0, u64::MAX, 10, false).unwrap().is_empty());

        // A valid message followed by an invalid member event: the message,
        // written first inside the transaction, must be rolled back too.
        let r = with_room(&store);
        let pos = store.current_pos();
        let bad = member(ALICE, BOB, "dancing");
        let err = store.append(&r, &[message(ALICE, "first"), bad]).unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert_eq!(store.current_pos(), pos);
        assert_eq!(store.room_events(&r, 0, u64::MAX, 100, false).unwrap().len(), 2);
        assert_eq!(store.membership(&r, &user(BOB)).unwrap(), None);
        assert!(store.state_event(&r, MEMBER_EVENT, BOB).unwrap().is_none());
        assert!(store.pos_roomid.get((pos + 1).to_be_bytes()).unwrap().is_none());

        // Creating an existing room changes nothing either.
        let err = store.create_room(&r, &user(BOB), &[create(BOB)]).unwrap_err();
        assert!(matches!(err, StoreError::RoomExists(_)), "{err}");
        assert_eq!(store.current_pos(), pos);
        assert_eq!(
            store.state_event(&r, "m.room.create", "").unwrap().unwrap().sender,
            ALICE
        );
    }

    #[test]
    fn concurrent_appends_from_many_threads_get_unique_increasing_positions_all_readable() {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let r = with_room(&store);
        let base = store.current_pos();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (store, r) = (Arc::clone(&store), r.clone());
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    for i in 0..50 {
                        let (events, _) = store.append(&r, &[message(ALICE, &format!("{t}/{i}"))]).unwrap();
                        seen.push(events[0].stream_pos);
                        // What a thread has written is visible to it at once.
                        assert!(store.current_pos() >= events[0].stream_pos);
                    }
                    seen
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in threads {
            let seen = t.join().unwrap();
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "per-thread order: {seen:?}");
            all.extend(seen);
        }
        all.sort_unstable();
        let expected: Vec<u64> = (base + 1..=base + 400).collect();
        assert_eq!(all, expected, "positions are unique and gap-free");
        assert_eq!(store.current_pos(), base + 400);
        let events = store.room_events(&r, base, base + 400, 1000, false).unwrap();
        assert_eq!(events.iter().map(|e| e.stream_pos).collect::<Vec<_>>(), expected);
        let newest = store.room_events(&r, base, base + 400, 10, true).unwrap();
        assert_eq!(newest.first().unwrap().stream_pos, base + 391);
        assert_eq!(newest.last().unwrap().stream_pos, base + 400);
    }

    #[test]
    fn a_failing_write_combined_with_others_fails_alone() {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let r = with_room(&store);
        let base = store.current_pos();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (store, r) = (Arc::clone(&store), r.clone());
                std::thread::spawn(move || {
                    let mut ok = 0;
                    for i in 0..40 {
                        if (t + i) % 4 == 0 {
                            let err = store
                                .append(&room("!missing:localhost"), &[message(ALICE, "x")])
                                .unwrap_err();
                            assert!(matches!(err, StoreError::UnknownRoom(_)), "{err:?}");
                        } else {
                            store.append(&r, &[message(ALICE, &format!("{t}/{i}"))]).unwrap();
                            ok += 1;
                        }
                    }
                    ok
                })
            })
            .collect();
        let ok: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            store.current_pos(),
            base + ok,
            "every good write landed, no bad one used a position"
        );
        assert_eq!(
            store.room_events(&r, base, base + ok, 1000, false).unwrap().len() as u64,
            ok
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn durable_resolves_after_a_flush_and_200_concurrent_waiters_share_flushes() {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let r = with_room(&store);

        let before = store.flush_count();
        let (_, seq) = store.append(&r, &[message(ALICE, "one")]).unwrap();
        store.durable(seq).await.unwrap();
        assert!(store.flush_count() > before, "durable ran a flush");
        let after_one = store.flush_count();
        store.durable(seq).await.unwrap();
        assert_eq!(
            store.flush_count(),
            after_one,
            "an already durable write needs no flush"
        );

        let start = Instant::now();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (store, r) = (Arc::clone(&store), r.clone());
                tokio::spawn(async move {
                    let (_, seq) = store.append(&r, &[message(ALICE, &format!("{i}"))]).unwrap();
                    store.durable(seq).await.unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        let flushes = store.flush_count() - after_one;
        eprintln!("200 durable writes: {flushes} flushes in {elapsed:?}");
        assert!(flushes < 100, "flushes are shared: {flushes}");
        assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    }

    /// Not a correctness test: prints durable writes per second at 64
    /// concurrent requests (`cargo test --release -- --ignored --nocapture`).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn group_commit_throughput_at_64_concurrent_requests() {
        let (_dir, store) = open();
        let store = Arc::new(store);
        let r = with_room(&store);
        let flushes_before = store.flush_count();
        let deadline = Instant::now() + Duration::from_secs(3);
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let (store, r) = (Arc::clone(&store), r.clone());
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        let (_, seq) = store.append(&r, &[message(ALICE, &format!("{i}"))]).unwrap();
                        store.durable(seq).await.unwrap();
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        let flushes = store.flush_count() - flushes_before;
        eprintln!(
            "{total} durable appends in 3s ({} req/s), {flushes} flushes, {:.1} writes per flush",
            total / 3,
            total as f64 / flushes.max(1) as f64
        );
        assert!(total > 0);
    }

    #[test]
    fn aliases_set_resolve_and_delete_and_a_taken_alias_is_refused() {
        let (_dir, store) = open();
        let r = with_room(&store);
        let other = room("!other:localhost");
        store.create_room(&other, &user(BOB), &[create(BOB)]).unwrap();
        let alias = RoomAliasId::parse("#hall:localhost").unwrap();

        assert_eq!(store.resolve_alias(&alias).unwrap(), None);
        assert!(store.set_alias(&alias, &r).unwrap().is_some());
        assert_eq!(store.resolve_alias(&alias).unwrap(), Some(r.clone()));
        assert_eq!(store.set_alias(&alias, &other).unwrap(), None, "taken");
        assert_eq!(store.resolve_alias(&alias).unwrap(), Some(r.clone()));
        assert!(store
            .roomid_alias
            .contains_key(join(&[ROOM.as_bytes(), alias.as_str().as_bytes()]))
            .unwrap());

        assert!(store.delete_alias(&alias).unwrap().is_some());
        assert_eq!(store.resolve_alias(&alias).unwrap(), None);
        assert!(store.roomid_alias.is_empty());
        assert_eq!(store.delete_alias(&alias).unwrap(), None, "already gone");
        assert!(store.set_alias(&alias, &other).unwrap().is_some(), "free again");

        let nowhere = room("!nowhere:localhost");
        let taken = RoomAliasId::parse("#x:localhost").unwrap();
        assert!(matches!(
            store.set_alias(&taken, &nowhere),
            Err(StoreError::UnknownRoom(_))
        ));
    }

    #[test]
    fn a_repeated_transaction_id_returns_the_first_event_and_appends_nothing() {
        let (_dir, store) = open();
        let r = with_room(&store);
        let alice = user(ALICE);
        assert_eq!(store.txn_event(&alice, &r, "t1").unwrap(), None);
        let (first, _) = store.append_with_txn(&r, message(ALICE, "once"), "t1").unwrap();
        let pos = store.current_pos();
        assert_eq!(store.txn_event(&alice, &r, "t1").unwrap(), Some(first.event_id.clone()));

        let (again, _) = store.append_with_txn(&r, message(ALICE, "once"), "t1").unwrap();
        assert_eq!(again, first);
        assert_eq!(store.current_pos(), pos, "nothing appended");

        // The same id from another sender is a different transaction.
        let (bobs, _) = store.append_with_txn(&r, message(BOB, "mine"), "t1").unwrap();
        assert_ne!(bobs.event_id, first.event_id);
        assert_eq!(store.txn_event(&user(BOB), &r, "t1").unwrap(), Some(bobs.event_id));
    }

    #[test]
    fn filters_and_display_names_are_kept_per_user_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, bob) = (user(ALICE), user(BOB));
        let filter = json!({"room": {"timeline": {"limit": 3}}});
        let (first, second);
        {
            let store = SledStore::open(dir.path()).unwrap();
            first = store.put_filter(&alice, &filter).unwrap().0;
            second = store.put_filter(&alice, &json!({})).unwrap().0;
            assert_ne!(first, second, "each filter gets its own id");
            assert_eq!(store.filter(&bob, &first).unwrap(), None, "filters are per user");
            assert_eq!(store.displayname(&alice).unwrap(), None);
            store.set_displayname(&alice, Some("Alice A.")).unwrap();
            store.set_displayname(&bob, Some("Bob")).unwrap();
            store.set_displayname(&bob, None).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.filter(&alice, &first).unwrap(), Some(filter));
        assert_eq!(store.filter(&alice, &second).unwrap(), Some(json!({})));
        assert_eq!(store.filter(&alice, "nope").unwrap(), None);
        assert_eq!(store.displayname(&alice).unwrap().as_deref(), Some("Alice A."));
        assert_eq!(store.displayname(&bob).unwrap(), None);
    }

    #[test]
    fn accounts_register_once_and_tokens_map_to_their_device_until_removed() {
        let (_dir, sled_store) = open();
        // Object safety: the service holds the store as a trait object.
        let store: &dyn Store = &sled_store;
        let alice = user(ALICE);
        assert!(!store.user_exists(&alice).unwrap());
        assert!(store.create_user(&alice, "h1").unwrap());
        assert!(!store.create_user(&alice, "h2").unwrap(), "taken");
        assert_eq!(store.password_hash(&alice).unwrap().as_deref(), Some("h1"));
        assert!(store.user_exists(&alice).unwrap());

        let token = [1u8; 32];
        let s1 = store.add_token(&token, &alice, "DEV").unwrap();
        assert_eq!(store.token_user(&token).unwrap(), Some((alice.clone(), "DEV".into())));
        let s2 = store.remove_token(&token).unwrap();
        assert!(s2 > s1);
        assert_eq!(store.token_user(&token).unwrap(), None);
    }

    #[test]
    fn a_new_token_for_a_device_replaces_its_old_one_and_logout_forgets_both_entries() {
        let (_dir, store) = open();
        let alice = user(ALICE);
        let (first, second, other) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        store.add_token(&first, &alice, "PHONE").unwrap();
        store.add_token(&other, &alice, "LAPTOP").unwrap();
        store.add_token(&second, &alice, "PHONE").unwrap();
        assert_eq!(store.token_user(&first).unwrap(), None, "replaced");
        assert_eq!(
            store.token_user(&second).unwrap(),
            Some((alice.clone(), "PHONE".into()))
        );
        assert_eq!(
            store.token_user(&other).unwrap(),
            Some((alice.clone(), "LAPTOP".into()))
        );
        // The same device id of another user is another device.
        store.add_token(&[4u8; 32], &user(BOB), "PHONE").unwrap();
        assert_eq!(
            store.token_user(&second).unwrap(),
            Some((alice.clone(), "PHONE".into()))
        );

        store.remove_token(&second).unwrap();
        assert_eq!(store.token_user(&second).unwrap(), None);
        assert!(store
            .userdeviceid_tokenhash
            .get(join(&[ALICE.as_bytes(), b"PHONE"]))
            .unwrap()
            .is_none());
        // Removing a replaced token leaves the device's current one alone.
        let (old, new) = ([5u8; 32], [6u8; 32]);
        store.add_token(&old, &alice, "TABLET").unwrap();
        store.add_token(&new, &alice, "TABLET").unwrap();
        store.remove_token(&old).unwrap();
        assert_eq!(store.token_user(&new).unwrap(), Some((alice, "TABLET".into())));
    }
}
