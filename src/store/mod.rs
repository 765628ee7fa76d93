//! Persistence: the `Store` trait the service talks to, its data types, and
//! its two implementations: sled (embedded, the default) and PostgreSQL
//! (several instances on one database).
//!
//! The contract every backend keeps:
//! - **Durable on return.** A write method returns only once its change is
//!   on disk, so the service can acknowledge it at once. That includes a
//!   write that finds its change already made (a repeated transaction id, a
//!   re-join): it returns once the change it found is durable.
//! - **Read committed.** Read methods show only durable data, and
//!   [`Store::durable_pos`] is the stream position up to which every event
//!   is durable; a position once shown names the same event forever.
//! - **Authorized.** Room events are written only as [`Authorized`] events,
//!   decided by a [`Plan`] against the room's [`AuthState`] while the store
//!   holds every other write to that room off; a refused plan writes nothing.
//! - **Atomic.** Each write changes every index it touches, or none.

pub mod account_data;
pub mod auth_cache;
pub mod batch_log;
pub mod codec;
pub mod commit;
pub mod committed;
pub mod event_log;
pub mod export;
pub mod import;
pub mod indexes;
pub mod keys;
pub mod migrate;
pub mod packing;
pub mod pg;
pub mod room_write;
pub mod sled;
pub mod writer;

use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::auth::{AuthState, Authorized};
use crate::membership::state::Membership;
use std::fmt;

pub use self::account_data::AccountData;
pub use self::pg::PgStore;
pub use self::sled::SledStore;

/// A stored room event (client format).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `$` followed by random URL-safe characters; unique.
    pub event_id: String,
    /// The room the event belongs to.
    pub room_id: String,
    /// The user who sent it.
    pub sender: String,
    /// The event type, e.g. `m.room.member`.
    pub event_type: String,
    /// Present for state events.
    pub state_key: Option<String>,
    /// The event content (always an object).
    pub content: serde_json::Value,
    /// Milliseconds since the Unix epoch.
    pub origin_server_ts: u64,
    /// Global stream position, strictly increasing in commit order.
    pub stream_pos: u64,
}

/// What an account is besides its password: the flags an operator sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountFlags {
    /// May call the admin API (`/_matrix/membership/admin/v1`).
    #[serde(default)]
    pub admin: bool,
    /// Deactivated: no login, no tokens, left every room.
    #[serde(default)]
    pub deactivated: bool,
}

/// One account as an operator lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub user: UserId,
    pub flags: AccountFlags,
}

/// What an export or snapshot wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    /// Lines written, header and end record included.
    pub records: u64,
    /// The highest stream position the snapshot holds.
    pub stream_position: u64,
}

/// Identifies a write for durability; higher means later.
pub type WriteSeq = u64;

/// Why a plan refused to write: the service's own error, handed back as is.
pub type Refusal = Box<dyn std::error::Error + Send + Sync>;

/// Decides a room write from the room's auth state: the events to write
/// (empty: nothing to do), or a refusal. Runs while every other write to the
/// room waits, so it must be quick and must not block.
pub type Plan = Box<dyn FnOnce(&mut AuthState) -> Result<Vec<Authorized>, Refusal> + Send>;

/// A write to one room.
pub struct RoomWrite {
    pub room: RoomId,
    /// `Some` to create the room, which must not exist yet.
    pub create: Option<Creation>,
    /// Every user whose membership the plan reads (senders and targets).
    pub users: Vec<UserId>,
    /// Makes the write idempotent per (sender, transaction id): a repeat
    /// returns the first event's id and writes nothing.
    pub txn: Option<(UserId, String)>,
    pub plan: Plan,
}

/// What creating a room claims along with it.
#[derive(Debug, Clone, Default)]
pub struct Creation {
    /// An alias pointing at the new room, claimed in the same atomic write.
    pub alias: Option<RoomAliasId>,
}

/// What a room write did; whichever it is, it is durable.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomWritten {
    /// The plan's events, with their ids and positions.
    Written(Vec<Event>),
    /// The plan found nothing to write.
    Unchanged,
    /// The transaction id was used before: the event id it produced.
    Repeated(String),
}

/// Why a store operation failed.
#[derive(Debug)]
pub enum StoreError {
    /// sled reported an I/O, corruption or usage error.
    Db(::sled::Error),
    /// PostgreSQL reported an error, or no connection could be had.
    Postgres(String),
    /// A stored value could not be decoded; the database is damaged or was
    /// written by an incompatible version.
    Corrupt(String),
    /// A room to create already exists.
    RoomExists(String),
    /// The room does not exist.
    UnknownRoom(String),
    /// The alias a room creation wanted to claim is taken.
    AliasTaken(String),
    /// The plan refused the write; nothing was written.
    Refused(Refusal),
    /// A group-commit flush failed, so the write may not be durable.
    Flush(String),
    /// The writer is gone (shutdown) or failed unexpectedly.
    Internal(String),
    /// Another process (a running server) holds the data folder's lock.
    InUse(std::path::PathBuf),
    /// The account is deactivated, so it cannot be given a token.
    Deactivated(String),
    /// Writing or reading an export file failed.
    Io(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Db(e) => write!(f, "database error: {e}"),
            Self::Postgres(e) => write!(f, "database error: {e}"),
            Self::Corrupt(what) => write!(f, "corrupt stored data: {what}"),
            Self::RoomExists(room) => write!(f, "room {room} already exists"),
            Self::UnknownRoom(room) => write!(f, "room {room} does not exist"),
            Self::AliasTaken(alias) => write!(f, "room alias {alias} is already taken"),
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Flush(why) => write!(f, "flushing the database failed: {why}"),
            Self::Internal(why) => write!(f, "store failure: {why}"),
            Self::InUse(path) => write!(
                f,
                "the data folder {} is in use by a running server; stop it first, or use `backup` against the \
                 running server",
                path.display()
            ),
            Self::Deactivated(user) => write!(f, "the account {user} has been deactivated"),
            Self::Io(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Db(e) => Some(e),
            _ => None,
        }
    }
}

impl From<::sled::Error> for StoreError {
    fn from(e: ::sled::Error) -> Self {
        Self::Db(e)
    }
}

/// A user's membership in a room and the stream position of the event that set it.
pub type MemberEntry = (Membership, u64);

/// Everything the service persists. Object-safe; see the module docs for
/// the contract (durable on return, read committed, authorized, atomic).
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    // -- accounts ------------------------------------------------------------

    /// Registers a user; `false` if the id is taken.
    async fn create_user(&self, user: &UserId, password_hash: &str) -> Result<bool, StoreError>;
    /// The stored password hash, if the user exists.
    async fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError>;
    /// Whether the user is registered.
    async fn user_exists(&self, user: &UserId) -> Result<bool, StoreError>;
    /// Stores an access token (by hash) for a user's device; the device's
    /// previous token, if any, stops working in the same write.
    async fn add_token(&self, token_hash: &[u8; 32], user: &UserId, device_id: &str) -> Result<(), StoreError>;
    /// The (user, device_id) owning a token hash.
    async fn token_user(&self, token_hash: &[u8; 32]) -> Result<Option<(UserId, String)>, StoreError>;
    /// Forgets a token hash (logout).
    async fn remove_token(&self, token_hash: &[u8; 32]) -> Result<(), StoreError>;

    // -- rooms ---------------------------------------------------------------

    /// Runs a room write: loads the room's auth state, asks the plan, and
    /// writes what it returns, all while no other write to the room runs.
    async fn write_room(&self, write: RoomWrite) -> Result<RoomWritten, StoreError>;
    /// Whether the room exists.
    async fn room_exists(&self, room: &RoomId) -> Result<bool, StoreError>;
    /// The user's current membership in the room and the position that set it.
    async fn membership(&self, room: &RoomId, user: &UserId) -> Result<Option<MemberEntry>, StoreError>;
    /// The current state event for (type, state_key).
    async fn state_event(&self, room: &RoomId, event_type: &str, state_key: &str) -> Result<Option<Event>, StoreError>;
    /// All current state events, ordered by (type, state_key).
    async fn current_state(&self, room: &RoomId) -> Result<Vec<Event>, StoreError>;
    /// State as it was right after the event at `pos`; one seek per state key.
    async fn state_at(&self, room: &RoomId, pos: u64) -> Result<Vec<Event>, StoreError>;
    /// The state event for (type, state_key) as it was right after the event at `pos`.
    async fn state_event_at(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        pos: u64,
    ) -> Result<Option<Event>, StoreError>;
    /// Every change of one state key up to `upto`, oldest first: its
    /// position, and the membership it set for member events.
    async fn state_changes(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        upto: u64,
    ) -> Result<Vec<(u64, Option<Membership>)>, StoreError>;
    /// The room's event at `pos`, if it is one and is durable.
    async fn event_at(&self, room: &RoomId, pos: u64) -> Result<Option<Event>, StoreError>;
    /// Every user with a member event in the room and their membership.
    async fn members(&self, room: &RoomId) -> Result<Vec<(UserId, Membership)>, StoreError>;
    /// Every room the user has a member event in, with membership and position.
    async fn rooms_of(&self, user: &UserId) -> Result<Vec<(RoomId, MemberEntry)>, StoreError>;
    /// Room events with from < stream_pos <= to (and <= the durable
    /// position), oldest first, at most `limit` (the newest ones if `newest`).
    async fn room_events(
        &self,
        room: &RoomId,
        from: u64,
        to: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<Event>, StoreError>;
    /// Every event at or below this position, and no event above it, is durable and readable.
    fn durable_pos(&self) -> u64;
    /// A receiver woken whenever [`Store::durable_pos`] moves.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Wakes every subscriber at once (shutdown).
    fn wake_subscribers(&self);
    /// How many receivers from [`Store::subscribe`] exist (waiting syncs).
    fn subscriber_count(&self) -> usize;

    // -- directory -----------------------------------------------------------

    /// Points an alias at an existing room; `false` if the alias is taken.
    async fn set_alias(&self, alias: &RoomAliasId, room: &RoomId) -> Result<bool, StoreError>;
    /// The room an alias points at.
    async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<Option<RoomId>, StoreError>;
    /// Removes an alias; `false` if it did not exist.
    async fn delete_alias(&self, alias: &RoomAliasId) -> Result<bool, StoreError>;

    // -- transactions, filters, profiles -------------------------------------

    /// The event id already sent by `user` in `room` with this transaction id.
    async fn txn_event(&self, user: &UserId, room: &RoomId, txn_id: &str) -> Result<Option<String>, StoreError>;
    /// Stores a sync filter of `user` and returns its new id (unique per database).
    async fn put_filter(&self, user: &UserId, filter: &serde_json::Value) -> Result<String, StoreError>;
    /// A filter `user` stored earlier.
    async fn filter(&self, user: &UserId, filter_id: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Sets (`Some`) or clears (`None`) the user's profile display name.
    async fn set_displayname(&self, user: &UserId, name: Option<&str>) -> Result<(), StoreError>;
    /// The display name the user set, if any.
    async fn displayname(&self, user: &UserId) -> Result<Option<String>, StoreError>;

    // -- account data and forgotten rooms -------------------------------------

    /// Stores `content` (an object) as the user's account data of
    /// `event_type`, global (`room` `None`) or for a room, at a new stream
    /// position, which it returns once durable.
    async fn set_account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<u64, StoreError>;
    /// The user's account data of `event_type`, global or for a room.
    async fn account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
    ) -> Result<Option<AccountData>, StoreError>;
    /// Every entry of the user's account data whose newest change lies in
    /// (after, upto], in position order (`after` 0: all of them).
    async fn account_data_changes(&self, user: &UserId, after: u64, upto: u64) -> Result<Vec<AccountData>, StoreError>;
    /// Forgets the room for the user if their membership is leave or ban:
    /// it stays forgotten until their membership changes. Returns the
    /// membership found (`None`: never a member, nothing written).
    async fn forget_room(&self, user: &UserId, room: &RoomId) -> Result<Option<Membership>, StoreError>;
    /// Whether the user forgot the room at their current membership.
    async fn forgotten(&self, user: &UserId, room: &RoomId) -> Result<bool, StoreError>;

    // -- administration ------------------------------------------------------

    /// Registers a user with flags, in one write; `false` if the id is taken.
    async fn create_account(&self, user: &UserId, password_hash: &str, flags: AccountFlags)
        -> Result<bool, StoreError>;
    /// The account's flags, if the user exists.
    async fn account_flags(&self, user: &UserId) -> Result<Option<AccountFlags>, StoreError>;
    /// Sets or clears the admin flag; `false` if the user does not exist.
    async fn set_admin(&self, user: &UserId, admin: bool) -> Result<bool, StoreError>;
    /// Replaces the password hash; with `logout`, every token of the user
    /// stops working in the same write. `false` if the user does not exist.
    async fn set_password_hash(&self, user: &UserId, password_hash: &str, logout: bool) -> Result<bool, StoreError>;
    /// Marks the account deactivated and revokes every token, in one write;
    /// from then on no token can be added for it. `false` if no such user.
    async fn deactivate(&self, user: &UserId) -> Result<bool, StoreError>;
    /// Every account, in user id order.
    async fn accounts(&self) -> Result<Vec<AccountSummary>, StoreError>;
    /// Every room, in room id order.
    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError>;
    /// The aliases pointing at the room.
    async fn room_aliases(&self, room: &RoomId) -> Result<Vec<RoomAliasId>, StoreError>;
    /// Writes a consistent snapshot of everything into `file` in the export
    /// format ([`export`]): taken between two batches of writes, so it holds
    /// every write acknowledged before the call and no part of a later one;
    /// returns once the file is synced and everything it holds is durable.
    async fn export(&self, file: std::fs::File) -> Result<ExportSummary, StoreError>;
    /// Whether the store holds nothing yet (an import needs that).
    async fn is_empty(&self) -> Result<bool, StoreError>;
    /// Writes export records (one chunk of an import) into the store;
    /// events must come in stream order per room.
    async fn import(&self, records: Vec<export::Record>) -> Result<(), StoreError>;

    // -- lifecycle -----------------------------------------------------------

    /// Makes everything written so far durable (shutdown).
    fn flush(&self) -> Result<(), StoreError>;
    /// `Ok` while the store can read and make writes durable; otherwise why not.
    fn health(&self) -> Result<(), String>;
    /// What the database occupies on disk, in bytes (metrics).
    fn disk_bytes(&self) -> Result<u64, StoreError>;
    /// Test only: stops what makes writes durable the way a crash would
    /// (the sled store's flusher thread panics), so a test can see
    /// [`Store::health`] fail for real.
    #[doc(hidden)]
    fn crash_flusher(&self) {}
}

#[cfg(test)]
mod admin_tests;
#[cfg(test)]
mod tests;
