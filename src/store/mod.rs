//! Persistence: the `Store` trait the service talks to, its data types, and
//! the sled implementation with group commit.
//!
//! The trait is synchronous because sled is; callers on async threads should
//! treat every method as a short blocking call (microseconds, no fsync). Only
//! durability waits are async (`SledStore::durable`), so that many requests
//! share one `fsync`.

pub mod commit;
pub mod sled;

use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::state::Membership;
use std::fmt;

pub use self::sled::SledStore;

/// A stored room event (client format).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// `$` followed by random URL-safe characters; unique.
    pub event_id: String,
    /// The room the event belongs to.
    pub room_id: String,
    /// The user who sent it.
    pub sender: String,
    /// The event type, e.g. `m.room.member`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Present for state events.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub state_key: Option<String>,
    /// The event content.
    pub content: serde_json::Value,
    /// Milliseconds since the Unix epoch.
    pub origin_server_ts: u64,
    /// Global stream position, strictly increasing in commit order.
    pub stream_pos: u64,
}

/// An event to append (the store assigns event_id, origin_server_ts, stream_pos).
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The user sending the event.
    pub sender: UserId,
    /// The event type.
    pub event_type: String,
    /// `Some` for state events.
    pub state_key: Option<String>,
    /// The event content.
    pub content: serde_json::Value,
}

/// Identifies a write for `SledStore::durable`; higher means later.
pub type WriteSeq = u64;

/// Why a store operation failed.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// sled reported an I/O, corruption or usage error.
    Db(::sled::Error),
    /// A stored value could not be decoded; the database is damaged or was
    /// written by an incompatible version.
    Corrupt(String),
    /// `create_room` was asked to create a room that already exists.
    RoomExists(String),
    /// The room does not exist.
    UnknownRoom(String),
    /// An event was rejected before anything was written (e.g. a member
    /// event whose state_key is not a user id or whose membership is unknown).
    Invalid(String),
    /// A group-commit flush failed, so the write may not be durable.
    Flush(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Db(e) => write!(f, "database error: {e}"),
            Self::Corrupt(what) => write!(f, "corrupt stored data: {what}"),
            Self::RoomExists(room) => write!(f, "room {room} already exists"),
            Self::UnknownRoom(room) => write!(f, "room {room} does not exist"),
            Self::Invalid(why) => write!(f, "invalid event: {why}"),
            Self::Flush(why) => write!(f, "flushing the database failed: {why}"),
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

impl From<::sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: ::sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            ::sled::transaction::TransactionError::Abort(e) => e,
            ::sled::transaction::TransactionError::Storage(e) => Self::Db(e),
        }
    }
}

/// Everything the service persists. Object-safe; all methods are short
/// blocking calls that never wait for an fsync.
pub trait Store: Send + Sync {
    /// Registers a user; `false` if the id is taken. Atomic.
    fn create_user(&self, user: &UserId, password_hash: &str) -> Result<bool, StoreError>;
    /// The stored password hash, if the user exists.
    fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError>;
    /// Whether the user is registered.
    fn user_exists(&self, user: &UserId) -> Result<bool, StoreError>;
    /// Stores an access token (by hash) for a user's device.
    fn add_token(&self, token_hash: &[u8; 32], user: &UserId, device_id: &str) -> Result<WriteSeq, StoreError>;
    /// The (user, device_id) owning a token hash.
    fn token_user(&self, token_hash: &[u8; 32]) -> Result<Option<(UserId, String)>, StoreError>;
    /// Forgets a token hash (logout).
    fn remove_token(&self, token_hash: &[u8; 32]) -> Result<WriteSeq, StoreError>;

    /// Creates a room with its initial events, all or nothing; errors if the room exists.
    fn create_room(
        &self,
        room: &RoomId,
        creator: &UserId,
        initial: &[NewEvent],
    ) -> Result<(Vec<Event>, WriteSeq), StoreError>;
    /// Whether the room exists.
    fn room_exists(&self, room: &RoomId) -> Result<bool, StoreError>;
    /// Appends events to a room in one transaction; state events (state_key Some) replace current state; m.room.member events also update both membership indexes.
    fn append(&self, room: &RoomId, events: &[NewEvent]) -> Result<(Vec<Event>, WriteSeq), StoreError>;
    /// The user's current membership in the room (one point read).
    fn membership(&self, room: &RoomId, user: &UserId) -> Result<Option<Membership>, StoreError>;
    /// The current state event for (type, state_key).
    fn state_event(&self, room: &RoomId, event_type: &str, state_key: &str) -> Result<Option<Event>, StoreError>;
    /// All current state events, ordered by (type, state_key).
    fn current_state(&self, room: &RoomId) -> Result<Vec<Event>, StoreError>;
    /// State as it was right after the event at `pos` (replay of the room log up to pos; used for members who left).
    fn state_at(&self, room: &RoomId, pos: u64) -> Result<Vec<Event>, StoreError>;
    /// The stream position of the user's current member event in the room.
    fn membership_pos(&self, room: &RoomId, user: &UserId) -> Result<Option<u64>, StoreError>;
    /// Every user with a member event in the room and their membership.
    fn members(&self, room: &RoomId) -> Result<Vec<(UserId, Membership)>, StoreError>;
    /// Every room the user has a member event in and their membership.
    fn rooms_of(&self, user: &UserId) -> Result<Vec<(RoomId, Membership)>, StoreError>;
    /// Room events with from < stream_pos <= to, oldest first, at most limit (newest limit if `newest`).
    fn room_events(
        &self,
        room: &RoomId,
        from: u64,
        to: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<Event>, StoreError>;
    /// The highest committed stream position; every event at or below it is readable.
    fn current_pos(&self) -> u64;

    /// Points an alias at a room; `None` if the alias is taken.
    fn set_alias(&self, alias: &RoomAliasId, room: &RoomId) -> Result<Option<WriteSeq>, StoreError>;
    /// The room an alias points at.
    fn resolve_alias(&self, alias: &RoomAliasId) -> Result<Option<RoomId>, StoreError>;
    /// Removes an alias; `None` if it did not exist.
    fn delete_alias(&self, alias: &RoomAliasId) -> Result<Option<WriteSeq>, StoreError>;

    /// The event id already sent by `user` in `room` with this transaction id.
    fn txn_event(&self, user: &UserId, room: &RoomId, txn_id: &str) -> Result<Option<String>, StoreError>;
    /// Appends one event unless (sender, room, txn_id) was seen, in which case
    /// the earlier event is returned and nothing is written.
    fn append_with_txn(&self, room: &RoomId, event: NewEvent, txn_id: &str) -> Result<(Event, WriteSeq), StoreError>;

    /// Stores a sync filter of `user` and returns its new id (unique per database).
    fn put_filter(&self, user: &UserId, filter: &serde_json::Value) -> Result<(String, WriteSeq), StoreError>;
    /// A filter `user` stored earlier.
    fn filter(&self, user: &UserId, filter_id: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// Sets (`Some`) or clears (`None`) the user's profile display name.
    fn set_displayname(&self, user: &UserId, name: Option<&str>) -> Result<WriteSeq, StoreError>;
    /// The display name the user set, if any.
    fn displayname(&self, user: &UserId) -> Result<Option<String>, StoreError>;
}
