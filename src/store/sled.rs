//! `Store` on sled 0.34: one tree in the layout of [`super::keys`], one
//! writer thread ([`super::writer`]), group commit ([`super::commit`]), and
//! reads through [`Committed`] so that they show only durable data.

use super::account_data::{self, AccountData};
use super::codec::{corrupt, decode_history, decode_membership, decode_str, decode_u64};
use super::commit::{FlushObserver, GroupCommit};
use super::committed::Committed;
use super::event_log;
use super::export::{self, Record};
use super::import::{self, encode_flags};
use super::keys::{self, Tag, SEP};
use super::writer::{JobFn, Output, Staged, Writer};
use super::{
    room_write, AccountFlags, AccountSummary, Event, ExportSummary, MemberEntry, RoomWrite, RoomWritten, Store,
    StoreError,
};
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::state::Membership;
use ::sled::{IVec, Tree};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How the sled store is opened.
#[derive(Clone)]
pub struct SledOptions {
    /// Test only: a pause before every group-commit flush (crash tests).
    pub flush_delay: Duration,
    /// How much memory sled's page cache may hold.
    pub cache_bytes: u64,
    /// Told about every group-commit flush (the metrics), if anyone listens.
    pub flush_observer: Option<Arc<dyn FlushObserver>>,
}

impl std::fmt::Debug for SledOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledOptions")
            .field("flush_delay", &self.flush_delay)
            .field("cache_bytes", &self.cache_bytes)
            .field("flush_observer", &self.flush_observer.is_some())
            .finish()
    }
}

impl Default for SledOptions {
    fn default() -> Self {
        SledOptions {
            flush_delay: Duration::ZERO,
            cache_bytes: DEFAULT_CACHE_BYTES,
            flush_observer: None,
        }
    }
}

/// The cache the server opens with unless told otherwise (`--cache-mib`).
/// 24 MiB, not 32: the default benchmark's peak RSS sat at 143–154 MiB
/// with 32, around its 150 MiB bound; one run with 24 peaked at 141.9 MiB
/// at the same ratio to the floor (README, "Segment size").
pub const DEFAULT_CACHE_BYTES: u64 = 24 * 1024 * 1024;

/// The sled-backed store; cheap to share behind an `Arc`.
pub struct SledStore {
    inner: Arc<Inner>,
}

/// How often sled's background thread runs. Durability does not depend on
/// it (the group commit flushes before each answer), but it is the only
/// place sled reclaims log segments, spending at most half of each period
/// rewriting live pages out of mostly-dead segments. At sled's default of
/// 500 ms that fell behind our write rate and the folder grew without bound
/// (10× the logical data after a few minutes of the benchmark's mix);
/// measured with sled alone on the same write pattern: 500 ms 3.4×, 100 ms
/// 2.6×, 50 ms 2.0×, 10 ms 1.5×, at the same throughput. Packing (see
/// `packing`) rewrites each event once more, and on the server's mix after
/// it 10 ms fell behind again (7.4× after 2 minutes, 6.4× after 10); 10-minute
/// soaks at 2 ms and 5 ms both ended at 1.6×, and 5 ms cost less throughput
/// (0.63× the floor in the default run against 0.60× at 2 ms). Under jemalloc
/// (see `main.rs`) the default run gave 0.98× the floor and 2.08× the logical
/// data at 5 ms, 0.83× and 2.15× at 2 ms; a 5-minute soak at 5 ms ended at
/// 3.08× but a 10-minute one at 1.62×, so 5 ms holds the disk bound there
/// too.
const GC_EVERY_MS: u64 = 5;

/// sled's log segment for a new database: 4 MiB, not sled's 512 KiB. sled
/// keeps, for every segment, the set of pages with a fragment in it, and
/// scans its list of segments each time one fills; with small segments that
/// bookkeeping grew with the folder and the background thread fell behind.
/// 6-minute soaks of the mix, same session: 512 KiB ended at 4.72× and 6.38×
/// the logical data with RSS +32.6 % and +25.3 % from minute 2 to minute 6,
/// jemalloc's live heap rising with it (75 → 122 MiB); 8 MiB at 1.66× and
/// +4.0 %, at 7 % more ops/s. 4 MiB: see README, "Segment size".
pub const SEGMENT_BYTES: usize = 4 << 20;

/// The segment size the database in `path` was made with, which sled
/// refuses to change: a folder made before [`SEGMENT_BYTES`] keeps sled's
/// default. `None` for a new folder. sled's `conf` file is lines of
/// `name: value` and a checksum after the last line.
fn existing_segment_size(path: &Path) -> Option<usize> {
    let conf = std::fs::read(path.join("conf")).ok()?;
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|line| line.strip_prefix("segment_size: ")?.trim().parse().ok())
}

/// sled's configuration for the folder at `path`, with the segment size it
/// must be opened with: the store's own open and tests that read the folder
/// as sled itself does both start here.
pub(super) fn folder_config(path: &Path) -> ::sled::Config {
    ::sled::Config::new()
        .path(path)
        .segment_size(existing_segment_size(path).unwrap_or(SEGMENT_BYTES))
}

/// Field order is drop order: the writer stops before the flusher, and both
/// before the database closes (which releases its file lock).
struct Inner {
    writer: Writer,
    commit: Arc<GroupCommit>,
    committed: Arc<Committed>,
    tree: Tree,
    db: ::sled::Db,
}

impl SledStore {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        Self::open_with(path, SledOptions::default())
    }

    /// Opens the database with `options`.
    pub fn open_with(path: &Path, options: SledOptions) -> Result<SledStore, StoreError> {
        let db = folder_config(path)
            .cache_capacity(options.cache_bytes)
            .flush_every_ms(Some(GC_EVERY_MS))
            .open()
            .map_err(|e| in_use(path, e))?;
        let tree = db.open_tree("kv")?;
        let replayed = super::batch_log::recover(&db, &tree)?;
        if replayed > 0 {
            tracing::info!("applied {replayed} batch-log records left by a crash");
        }
        super::migrate::to_current_layout(&db, &tree)?;
        // Set in the batch that writes the events, so after a restart it is
        // the highest position on disk.
        let pos = match tree.get(keys::stream_end())? {
            Some(v) => decode_u64(&v)?,
            None => 0,
        };
        let committed = Arc::new(Committed::new(pos));
        let commit = Arc::new(GroupCommit::new(
            db.clone(),
            committed.clone(),
            options.flush_delay,
            options.flush_observer,
        )?);
        let writer = Writer::start(tree.clone(), committed.clone(), commit.clone(), pos)?;
        Ok(SledStore {
            inner: Arc::new(Inner {
                writer,
                commit,
                committed,
                tree,
                db,
            }),
        })
    }

    /// How many flushes have run since open (tests and metrics).
    pub fn flush_count(&self) -> u64 {
        self.inner.commit.flush_count()
    }

    /// Test only: makes the group-commit flusher thread panic and waits for
    /// it to end, so health can be tested in its failing state.
    #[doc(hidden)]
    pub fn crash_flusher(&self) {
        self.inner.commit.crash_flusher();
    }

    /// How many keys readers are kept from seeing right now (tests and metrics).
    pub fn hidden_keys(&self) -> usize {
        self.inner.committed.pending_keys()
    }

    async fn write(&self, job: JobFn) -> Result<Output, StoreError> {
        self.inner.writer.submit(job).await
    }

    async fn write_flag(&self, job: JobFn) -> Result<bool, StoreError> {
        match self.write(job).await? {
            Output::Flag(flag) => Ok(flag),
            other => Err(StoreError::Internal(format!("expected a flag, got {other:?}"))),
        }
    }

    async fn write_done(&self, job: JobFn) -> Result<(), StoreError> {
        self.write(job).await.map(|_| ())
    }

    /// Runs a scan on the blocking pool: it may take longer than a point read.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::Internal(format!("a read task failed: {e}")))?
    }
}

impl Inner {
    /// A committed point read.
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        let raw = self.tree.get(key)?;
        Ok(self.committed.visible(key, raw))
    }

    /// A committed prefix scan, in key order.
    fn scan(&self, prefix: &[u8]) -> Result<Vec<(IVec, IVec)>, StoreError> {
        let raw = self.tree.scan_prefix(prefix).collect::<Result<Vec<_>, _>>()?;
        Ok(self.committed.visible_range(prefix, &keys::prefix_end(prefix), raw))
    }

    /// An event by position: an event at or below the durable position is
    /// durable wherever it is stored (see [`event_log`]), so bounding the
    /// position is all read committed asks.
    fn event_at(&self, room: &str, pos: u64) -> Result<Option<Event>, StoreError> {
        if pos > self.committed.durable_pos() {
            return Ok(None);
        }
        let single = self.tree.get(keys::room_event(room, pos))?;
        event_log::event_at(&self.tree, room, pos, single)
    }

    fn state_event_at_key(&self, room: &str, key: &[u8]) -> Result<Option<Event>, StoreError> {
        let Some(pos) = self.get(key)? else {
            return Ok(None);
        };
        let pos = decode_u64(&pos)?;
        self.event_at(room, pos)?
            .map(Some)
            .ok_or_else(|| corrupt(format!("state of {room} points at missing event {pos}")))
    }

    fn current_state(&self, room: &RoomId) -> Result<Vec<Event>, StoreError> {
        let r = room.as_str();
        let mut out = Vec::new();
        for (_, pos) in self.scan(&keys::prefix(Tag::RoomStatePos, &[r.as_bytes()]))? {
            let pos = decode_u64(&pos)?;
            let event = self
                .event_at(r, pos)?
                .ok_or_else(|| corrupt(format!("state of {r} points at missing event {pos}")))?;
            out.push(event);
        }
        Ok(out)
    }

    /// The position of the state event for one key right after `pos`: one
    /// seek in the state history, to the list that holds it. A list gains
    /// entries only at new positions, so those at or below the durable one
    /// are what was durable.
    fn state_pos_at(&self, room: &str, event_type: &str, state_key: &str, pos: u64) -> Result<Option<u64>, StoreError> {
        let pos = pos.min(self.committed.durable_pos());
        let start = keys::state_history_prefix(room, event_type, state_key);
        let end = keys::state_history(room, event_type, state_key, pos);
        let Some(entry) = self.tree.range(start.clone()..=end).next_back() else {
            return Ok(None);
        };
        let (k, v) = entry?;
        let entries = decode_history(decode_u64(&k[start.len()..])?, &v)?;
        Ok(entries.into_iter().map(|(p, _)| p).take_while(|p| *p <= pos).last())
    }

    /// State right after `pos`: the current state's keys (a key never
    /// leaves the state once set), each looked up in the history.
    fn state_at(&self, room: &RoomId, pos: u64) -> Result<Vec<Event>, StoreError> {
        let r = room.as_str();
        let prefix = keys::prefix(Tag::RoomStatePos, &[r.as_bytes()]);
        let mut out = Vec::new();
        for (k, _) in self.scan(&prefix)? {
            let (event_type, state_key) = split_state_key(&k[prefix.len()..])?;
            if let Some(at) = self.state_pos_at(r, event_type, state_key, pos)? {
                let event = self
                    .event_at(r, at)?
                    .ok_or_else(|| corrupt(format!("state history of {r} points at missing event {at}")))?;
                out.push(event);
            }
        }
        Ok(out)
    }

    fn state_changes(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        upto: u64,
    ) -> Result<Vec<(u64, Option<Membership>)>, StoreError> {
        let r = room.as_str();
        let upto = upto.min(self.committed.durable_pos());
        let start = keys::state_history_prefix(r, event_type, state_key);
        let end = keys::state_history(r, event_type, state_key, upto);
        let mut out = Vec::new();
        for entry in self.tree.range(start.clone()..=end) {
            let (k, v) = entry?;
            let entries = decode_history(decode_u64(&k[start.len()..])?, &v)?;
            out.extend(entries.into_iter().take_while(|(p, _)| *p <= upto));
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
        let to = to.min(self.committed.durable_pos());
        event_log::events_between(&self.tree, room.as_str(), (from, to), limit, newest)
    }

    fn members(&self, room: &RoomId) -> Result<Vec<(UserId, Membership)>, StoreError> {
        let prefix = keys::prefix(Tag::RoomUserMembership, &[room.as_str().as_bytes()]);
        self.scan(&prefix)?
            .into_iter()
            .map(|(k, v)| {
                let user = UserId::parse(decode_str(&k[prefix.len()..])?).map_err(|e| corrupt(e.0))?;
                Ok((user, decode_membership(&v)?.0))
            })
            .collect()
    }

    /// Account data whose newest change lies in (after, upto]: positions at
    /// or below the durable one are durable, and a newer change of an entry
    /// removes its older `Q` key, so each entry appears at most once.
    fn account_data_changes(&self, user: &UserId, after: u64, upto: u64) -> Result<Vec<AccountData>, StoreError> {
        let upto = upto.min(self.committed.durable_pos());
        if after >= upto {
            return Ok(Vec::new());
        }
        let start = account_data::change_key(user, after + 1);
        let end = account_data::change_key(user, upto);
        let prefix_len = start.len() - 8;
        let raw = self
            .tree
            .range(start.clone()..=end.clone())
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for (k, v) in self.committed.visible_range(&start, &keys::prefix_end(&end), raw) {
            let pos = decode_u64(&k[prefix_len..])?;
            let (room, event_type) = account_data::decode_change(&v)?;
            let Some(entry) = self.get(&account_data::entry_key(user, room.as_ref(), &event_type))? else {
                continue;
            };
            let (stream_pos, content) = account_data::decode_entry(&entry)?;
            // Changed again after `upto`: the next sync delivers it.
            if stream_pos == pos {
                out.push(AccountData {
                    room,
                    event_type,
                    content,
                    stream_pos,
                });
            }
        }
        Ok(out)
    }

    fn rooms_of(&self, user: &UserId) -> Result<Vec<(RoomId, MemberEntry)>, StoreError> {
        let prefix = keys::prefix(Tag::UserRoomMembership, &[user.as_str().as_bytes()]);
        self.scan(&prefix)?
            .into_iter()
            .map(|(k, v)| {
                let room = RoomId::parse(decode_str(&k[prefix.len()..])?).map_err(|e| corrupt(e.0))?;
                Ok((room, decode_membership(&v)?))
            })
            .collect()
    }
}

/// sled reports a folder another process holds as an I/O error with this
/// message (0.34's `Config::open_file`); anything else stays a database error.
fn in_use(path: &Path, e: ::sled::Error) -> StoreError {
    match &e {
        ::sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::InUse(path.to_path_buf())
        }
        _ => StoreError::Db(e),
    }
}

/// The flags stored for a user (absent: none set).
fn stage_flags(st: &mut Staged<'_>, user: &UserId) -> Result<AccountFlags, StoreError> {
    match st.get(&user_key(Tag::UserFlags, user))? {
        Some(v) => decode_flags(&v),
        None => Ok(AccountFlags::default()),
    }
}

fn decode_flags(v: &[u8]) -> Result<AccountFlags, StoreError> {
    serde_json::from_slice(v).map_err(|e| corrupt(format!("undecodable account flags: {e}")))
}

fn put_flags(st: &mut Staged<'_>, user: &UserId, flags: AccountFlags) -> Result<(), StoreError> {
    let key = user_key(Tag::UserFlags, user);
    if flags == AccountFlags::default() {
        st.remove(key);
    } else {
        st.put(key, encode_flags(flags)?);
    }
    Ok(())
}

/// Stages the removal of every token of `user`.
fn revoke_tokens(st: &mut Staged<'_>, user: &UserId) -> Result<(), StoreError> {
    let prefix = keys::prefix(Tag::UserDeviceToken, &[user.as_str().as_bytes()]);
    // Tokens staged earlier in this batch (a login racing the revocation) count too.
    for device_key in st.keys_with_prefix(&prefix)? {
        if let Some(hash) = st.get(&device_key)? {
            st.remove(keys::key(Tag::TokenUserDevice, &[&hash]));
        }
        st.remove(device_key);
    }
    Ok(())
}

/// Splits `type 0xFF state_key` (neither holds 0xFF: both are UTF-8).
fn split_state_key(k: &[u8]) -> Result<(&str, &str), StoreError> {
    let at = k
        .iter()
        .position(|&b| b == SEP)
        .ok_or_else(|| corrupt("state key without a type separator"))?;
    Ok((decode_str(&k[..at])?, decode_str(&k[at + 1..])?))
}

/// Splits `user 0xFF device`.
fn user_device(v: &[u8]) -> Result<(UserId, String), StoreError> {
    let at = v
        .iter()
        .position(|&b| b == SEP)
        .ok_or_else(|| corrupt("token entry without a device separator"))?;
    let user = UserId::parse(decode_str(&v[..at])?).map_err(|e| corrupt(e.0))?;
    Ok((user, decode_str(&v[at + 1..])?.to_owned()))
}

fn user_key(tag: Tag, user: &UserId) -> Vec<u8> {
    keys::key(tag, &[user.as_str().as_bytes()])
}

/// Stages a token for (user, device), dropping the device's previous one.
fn stage_token(st: &mut Staged<'_>, hash: [u8; 32], user: &UserId, device: &str) -> Result<(), StoreError> {
    let device_key = keys::key(Tag::UserDeviceToken, &[user.as_str().as_bytes(), device.as_bytes()]);
    if let Some(old) = st.get(&device_key)? {
        st.remove(keys::key(Tag::TokenUserDevice, &[&old]));
    }
    st.put(
        keys::key(Tag::TokenUserDevice, &[&hash]),
        keys::joined(&[user.as_str().as_bytes(), device.as_bytes()]),
    );
    st.put(device_key, &hash[..]);
    Ok(())
}

/// Stages a new account's password hash; `false`, staging nothing, if the user exists.
fn stage_new_account(st: &mut Staged<'_>, user: &UserId, hash: String) -> Result<bool, StoreError> {
    let key = user_key(Tag::UserPassword, user);
    if st.get(&key)?.is_some() {
        return Ok(false);
    }
    st.put(key, hash.into_bytes());
    Ok(true)
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn create_user(&self, user: &UserId, password_hash: &str) -> Result<bool, StoreError> {
        let (user, hash) = (user.clone(), password_hash.to_owned());
        self.write_flag(Box::new(move |st| {
            Ok(Output::Flag(stage_new_account(st, &user, hash)?))
        }))
        .await
    }

    async fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.inner
            .get(&user_key(Tag::UserPassword, user))?
            .map(|v| decode_str(&v).map(str::to_owned))
            .transpose()
    }

    async fn user_exists(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.inner.get(&user_key(Tag::UserPassword, user))?.is_some())
    }

    async fn add_token(&self, token_hash: &[u8; 32], user: &UserId, device_id: &str) -> Result<(), StoreError> {
        let (hash, user, device) = (*token_hash, user.clone(), device_id.to_owned());
        self.write_done(Box::new(move |st| {
            if stage_flags(st, &user)?.deactivated {
                return Err(StoreError::Deactivated(user.to_string()));
            }
            stage_token(st, hash, &user, &device)?;
            Ok(Output::Done)
        }))
        .await
    }

    async fn token_user(&self, token_hash: &[u8; 32]) -> Result<Option<(UserId, String)>, StoreError> {
        self.inner
            .get(&keys::key(Tag::TokenUserDevice, &[token_hash]))?
            .map(|v| user_device(&v))
            .transpose()
    }

    async fn remove_token(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        let hash = *token_hash;
        self.write_done(Box::new(move |st| {
            let token_key = keys::key(Tag::TokenUserDevice, &[&hash]);
            if let Some(owner) = st.get(&token_key)? {
                let (user, device) = user_device(&owner)?;
                let device_key = keys::key(Tag::UserDeviceToken, &[user.as_str().as_bytes(), device.as_bytes()]);
                if st.get(&device_key)?.is_some_and(|h| h.as_ref() == hash) {
                    st.remove(device_key);
                }
                st.remove(token_key);
            }
            Ok(Output::Done)
        }))
        .await
    }

    async fn write_room(&self, write: RoomWrite) -> Result<RoomWritten, StoreError> {
        match self
            .write(Box::new(move |st| room_write::run(st, write).map(Output::Room)))
            .await?
        {
            Output::Room(written) => Ok(written),
            other => Err(StoreError::Internal(format!("expected a room write, got {other:?}"))),
        }
    }

    async fn room_exists(&self, room: &RoomId) -> Result<bool, StoreError> {
        Ok(self
            .inner
            .get(&keys::key(Tag::RoomMeta, &[room.as_str().as_bytes()]))?
            .is_some())
    }

    async fn membership(&self, room: &RoomId, user: &UserId) -> Result<Option<MemberEntry>, StoreError> {
        self.inner
            .get(&keys::room_member(room.as_str(), user.as_str()))?
            .map(|v| decode_membership(&v))
            .transpose()
    }

    async fn state_event(&self, room: &RoomId, event_type: &str, state_key: &str) -> Result<Option<Event>, StoreError> {
        self.inner
            .state_event_at_key(room.as_str(), &keys::room_state(room.as_str(), event_type, state_key))
    }

    async fn current_state(&self, room: &RoomId) -> Result<Vec<Event>, StoreError> {
        let room = room.clone();
        self.blocking(move |s| s.current_state(&room)).await
    }

    async fn state_at(&self, room: &RoomId, pos: u64) -> Result<Vec<Event>, StoreError> {
        let room = room.clone();
        self.blocking(move |s| s.state_at(&room, pos)).await
    }

    async fn state_event_at(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        pos: u64,
    ) -> Result<Option<Event>, StoreError> {
        let r = room.as_str();
        match self.inner.state_pos_at(r, event_type, state_key, pos)? {
            Some(at) => self.inner.event_at(r, at),
            None => Ok(None),
        }
    }

    async fn state_changes(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        upto: u64,
    ) -> Result<Vec<(u64, Option<Membership>)>, StoreError> {
        let (room, event_type, state_key) = (room.clone(), event_type.to_owned(), state_key.to_owned());
        self.blocking(move |s| s.state_changes(&room, &event_type, &state_key, upto))
            .await
    }

    async fn event_at(&self, room: &RoomId, pos: u64) -> Result<Option<Event>, StoreError> {
        self.inner.event_at(room.as_str(), pos)
    }

    async fn members(&self, room: &RoomId) -> Result<Vec<(UserId, Membership)>, StoreError> {
        let room = room.clone();
        self.blocking(move |s| s.members(&room)).await
    }

    async fn rooms_of(&self, user: &UserId) -> Result<Vec<(RoomId, MemberEntry)>, StoreError> {
        let user = user.clone();
        self.blocking(move |s| s.rooms_of(&user)).await
    }

    async fn room_events(
        &self,
        room: &RoomId,
        from: u64,
        to: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<Event>, StoreError> {
        let room = room.clone();
        self.blocking(move |s| s.room_events(&room, from, to, limit, newest))
            .await
    }

    fn durable_pos(&self) -> u64 {
        self.inner.committed.durable_pos()
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.committed.subscribe()
    }

    fn wake_subscribers(&self) {
        self.inner.committed.wake_all();
    }

    fn subscriber_count(&self) -> usize {
        self.inner.committed.subscribers()
    }

    async fn set_alias(&self, alias: &RoomAliasId, room: &RoomId) -> Result<bool, StoreError> {
        let (alias, room) = (alias.clone(), room.clone());
        self.write_flag(Box::new(move |st| {
            if st
                .get(&keys::key(Tag::RoomMeta, &[room.as_str().as_bytes()]))?
                .is_none()
            {
                return Err(StoreError::UnknownRoom(room.to_string()));
            }
            let alias_key = keys::key(Tag::AliasRoom, &[alias.as_str().as_bytes()]);
            if st.get(&alias_key)?.is_some() {
                return Ok(Output::Flag(false));
            }
            st.put(alias_key, room.as_str().as_bytes());
            st.put(
                keys::key(Tag::RoomAlias, &[room.as_str().as_bytes(), alias.as_str().as_bytes()]),
                &[][..],
            );
            Ok(Output::Flag(true))
        }))
        .await
    }

    async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<Option<RoomId>, StoreError> {
        self.inner
            .get(&keys::key(Tag::AliasRoom, &[alias.as_str().as_bytes()]))?
            .map(|v| RoomId::parse(decode_str(&v)?).map_err(|e| corrupt(e.0)))
            .transpose()
    }

    async fn delete_alias(&self, alias: &RoomAliasId) -> Result<bool, StoreError> {
        let alias = alias.clone();
        self.write_flag(Box::new(move |st| {
            let alias_key = keys::key(Tag::AliasRoom, &[alias.as_str().as_bytes()]);
            let Some(room) = st.get(&alias_key)? else {
                return Ok(Output::Flag(false));
            };
            st.remove(alias_key);
            st.remove(keys::key(Tag::RoomAlias, &[&room, alias.as_str().as_bytes()]));
            Ok(Output::Flag(true))
        }))
        .await
    }

    async fn txn_event(&self, user: &UserId, room: &RoomId, txn_id: &str) -> Result<Option<String>, StoreError> {
        self.inner
            .get(&keys::txn(user.as_str(), room.as_str(), txn_id))?
            .map(|v| decode_str(v.get(8..).unwrap_or_default()).map(str::to_owned))
            .transpose()
    }

    async fn put_filter(&self, user: &UserId, filter: &serde_json::Value) -> Result<String, StoreError> {
        let id = self.inner.db.generate_id()?.to_string();
        let json =
            serde_json::to_vec(filter).map_err(|e| StoreError::Internal(format!("unserialisable filter: {e}")))?;
        let key = keys::key(Tag::UserFilter, &[user.as_str().as_bytes(), id.as_bytes()]);
        self.write_done(Box::new(move |st| {
            st.put(key, json);
            Ok(Output::Done)
        }))
        .await?;
        Ok(id)
    }

    async fn filter(&self, user: &UserId, filter_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.inner
            .get(&keys::key(
                Tag::UserFilter,
                &[user.as_str().as_bytes(), filter_id.as_bytes()],
            ))?
            .map(|v| serde_json::from_slice(&v).map_err(|e| corrupt(format!("undecodable filter: {e}"))))
            .transpose()
    }

    async fn set_displayname(&self, user: &UserId, name: Option<&str>) -> Result<(), StoreError> {
        let key = user_key(Tag::UserDisplayname, user);
        let name = name.map(str::to_owned);
        self.write_done(Box::new(move |st| {
            match name {
                Some(name) => st.put(key, name.into_bytes()),
                None => st.remove(key),
            }
            Ok(Output::Done)
        }))
        .await
    }

    async fn displayname(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.inner
            .get(&user_key(Tag::UserDisplayname, user))?
            .map(|v| decode_str(&v).map(str::to_owned))
            .transpose()
    }

    async fn set_account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        let (user, room, event_type, content) = (user.clone(), room.cloned(), event_type.to_owned(), content.clone());
        match self
            .write(Box::new(move |st| {
                let pos = account_data::stage_set(st, &user, room.as_ref(), &event_type, &content)?;
                Ok(Output::Pos(pos))
            }))
            .await?
        {
            Output::Pos(pos) => Ok(pos),
            other => Err(StoreError::Internal(format!("expected a position, got {other:?}"))),
        }
    }

    async fn account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
    ) -> Result<Option<AccountData>, StoreError> {
        let Some(v) = self.inner.get(&account_data::entry_key(user, room, event_type))? else {
            return Ok(None);
        };
        let (stream_pos, content) = account_data::decode_entry(&v)?;
        Ok(Some(AccountData {
            room: room.cloned(),
            event_type: event_type.to_owned(),
            content,
            stream_pos,
        }))
    }

    async fn account_data_changes(&self, user: &UserId, after: u64, upto: u64) -> Result<Vec<AccountData>, StoreError> {
        let user = user.clone();
        self.blocking(move |s| s.account_data_changes(&user, after, upto)).await
    }

    async fn forget_room(&self, user: &UserId, room: &RoomId) -> Result<Option<Membership>, StoreError> {
        let (user, room) = (user.clone(), room.clone());
        let found = self
            .write(Box::new(move |st| {
                let Some(entry) = st.get(&keys::room_member(room.as_str(), user.as_str()))? else {
                    return Ok(Output::Member(None));
                };
                let (membership, pos) = decode_membership(&entry)?;
                if matches!(membership, Membership::Leave | Membership::Ban) {
                    st.put(account_data::forgotten_key(&user, &room), &pos.to_be_bytes()[..]);
                }
                Ok(Output::Member(Some(membership)))
            }))
            .await?;
        match found {
            Output::Member(found) => Ok(found),
            other => Err(StoreError::Internal(format!("expected a membership, got {other:?}"))),
        }
    }

    async fn forgotten(&self, user: &UserId, room: &RoomId) -> Result<bool, StoreError> {
        let Some(at) = self.inner.get(&account_data::forgotten_key(user, room))? else {
            return Ok(false);
        };
        let current = self
            .inner
            .get(&keys::room_member(room.as_str(), user.as_str()))?
            .map(|v| decode_membership(&v))
            .transpose()?;
        // A membership change after the forgetting (a new invite or join) clears it.
        Ok(current.is_some_and(|(_, pos)| pos == decode_u64(&at).unwrap_or(0)))
    }

    async fn create_account(
        &self,
        user: &UserId,
        password_hash: &str,
        flags: AccountFlags,
    ) -> Result<bool, StoreError> {
        let (user, hash) = (user.clone(), password_hash.to_owned());
        self.write_flag(Box::new(move |st| {
            let created = stage_new_account(st, &user, hash)?;
            if created {
                put_flags(st, &user, flags)?;
            }
            Ok(Output::Flag(created))
        }))
        .await
    }

    async fn account_flags(&self, user: &UserId) -> Result<Option<AccountFlags>, StoreError> {
        if !self.user_exists(user).await? {
            return Ok(None);
        }
        match self.inner.get(&user_key(Tag::UserFlags, user))? {
            Some(v) => decode_flags(&v).map(Some),
            None => Ok(Some(AccountFlags::default())),
        }
    }

    async fn set_admin(&self, user: &UserId, admin: bool) -> Result<bool, StoreError> {
        let user = user.clone();
        self.write_flag(Box::new(move |st| {
            if st.get(&user_key(Tag::UserPassword, &user))?.is_none() {
                return Ok(Output::Flag(false));
            }
            let flags = AccountFlags {
                admin,
                ..stage_flags(st, &user)?
            };
            put_flags(st, &user, flags)?;
            Ok(Output::Flag(true))
        }))
        .await
    }

    async fn set_password_hash(&self, user: &UserId, password_hash: &str, logout: bool) -> Result<bool, StoreError> {
        let (user, hash) = (user.clone(), password_hash.to_owned());
        self.write_flag(Box::new(move |st| {
            let key = user_key(Tag::UserPassword, &user);
            if st.get(&key)?.is_none() {
                return Ok(Output::Flag(false));
            }
            st.put(key, hash.into_bytes());
            if logout {
                revoke_tokens(st, &user)?;
            }
            Ok(Output::Flag(true))
        }))
        .await
    }

    async fn deactivate(&self, user: &UserId) -> Result<bool, StoreError> {
        let user = user.clone();
        self.write_flag(Box::new(move |st| {
            if st.get(&user_key(Tag::UserPassword, &user))?.is_none() {
                return Ok(Output::Flag(false));
            }
            let flags = AccountFlags {
                deactivated: true,
                ..stage_flags(st, &user)?
            };
            put_flags(st, &user, flags)?;
            revoke_tokens(st, &user)?;
            Ok(Output::Flag(true))
        }))
        .await
    }

    async fn accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        self.blocking(|s| {
            let flags: std::collections::HashMap<Vec<u8>, AccountFlags> = s
                .scan(&[Tag::UserFlags as u8])?
                .into_iter()
                .map(|(k, v)| Ok((k[1..].to_vec(), decode_flags(&v)?)))
                .collect::<Result<_, StoreError>>()?;
            s.scan(&[Tag::UserPassword as u8])?
                .into_iter()
                .map(|(k, _)| {
                    let user = UserId::parse(decode_str(&k[1..])?).map_err(|e| corrupt(e.0))?;
                    let flags = flags.get(&k[1..]).copied().unwrap_or_default();
                    Ok(AccountSummary { user, flags })
                })
                .collect()
        })
        .await
    }

    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
        self.blocking(|s| {
            s.scan(&[Tag::RoomMeta as u8])?
                .into_iter()
                .map(|(k, _)| RoomId::parse(decode_str(&k[1..])?).map_err(|e| corrupt(e.0)))
                .collect()
        })
        .await
    }

    async fn room_aliases(&self, room: &RoomId) -> Result<Vec<RoomAliasId>, StoreError> {
        let prefix = keys::prefix(Tag::RoomAlias, &[room.as_str().as_bytes()]);
        self.inner
            .scan(&prefix)?
            .into_iter()
            .map(|(k, _)| RoomAliasId::parse(decode_str(&k[prefix.len()..])?).map_err(|e| corrupt(e.0)))
            .collect()
    }

    async fn export(&self, file: std::fs::File) -> Result<ExportSummary, StoreError> {
        let output = self
            .write(Box::new(move |st| {
                let mut out = std::io::BufWriter::new(file);
                let summary = export::write_snapshot(st.applied_tree(), &mut out)?;
                let file = out
                    .into_inner()
                    .map_err(|e| StoreError::Io(format!("writing the export failed: {e}")))?;
                file.sync_all()
                    .map_err(|e| StoreError::Io(format!("syncing the export failed: {e}")))?;
                Ok(Output::Exported(summary))
            }))
            .await?;
        match output {
            Output::Exported(summary) => Ok(summary),
            other => Err(StoreError::Internal(format!("expected an export, got {other:?}"))),
        }
    }

    async fn is_empty(&self) -> Result<bool, StoreError> {
        let version = keys::key(Tag::LayoutVersion, &[]);
        for entry in self.inner.tree.iter() {
            if entry?.0.as_ref() != version.as_slice() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn import(&self, records: Vec<Record>) -> Result<(), StoreError> {
        // Filter ids come from sled's id generator, which lives outside the
        // tree: move it past every imported id so a new filter never reuses one.
        let highest_filter = records
            .iter()
            .filter_map(|r| match r {
                Record::Filter { filter_id, .. } => filter_id.parse::<u64>().ok(),
                _ => None,
            })
            .max();
        self.write_done(Box::new(move |st| {
            for record in records {
                import::stage(st, record)?;
            }
            Ok(Output::Done)
        }))
        .await?;
        if let Some(highest) = highest_filter {
            while self.inner.db.generate_id()? <= highest {}
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.commit.flush()
    }

    fn health(&self) -> Result<(), String> {
        self.inner.commit.health()?;
        // A point read proves sled still answers (it has not hit an I/O error it keeps).
        self.inner
            .tree
            .get(keys::stream_end())
            .map(|_| ())
            .map_err(|e| format!("the database does not answer reads: {e}"))
    }

    fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.inner.db.size_on_disk()?)
    }

    fn crash_flusher(&self) {
        SledStore::crash_flusher(self);
    }
}
