//! Turning rows into the store's types, and PostgreSQL errors into store errors.

use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::state::Membership;
use crate::store::codec::corrupt;
use crate::store::{Event, StoreError};
use tokio_postgres::Row;

/// The columns [`event`] reads, in its order; `e` is the events table.
pub const EVENT_COLUMNS: &str =
    "e.stream_pos, e.room_id, e.event_id, e.sender, e.event_type, e.state_key, e.content, e.origin_server_ts";

pub fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(describe(&e))
}

pub fn pool(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Postgres(format!("no database connection: {e}"))
}

/// The server's own message where there is one (`duplicate key …`), not just "db error".
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Positions are `u64` in the store and `bigint` in the database.
pub fn pos(v: i64) -> u64 {
    v.max(0) as u64
}

pub fn sql_pos(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An event from the columns [`EVENT_COLUMNS`] names.
pub fn event(row: &Row) -> Result<Event, StoreError> {
    let stream_pos = pos(row.try_get(0).map_err(db)?);
    let content: String = row.try_get(6).map_err(db)?;
    let content =
        serde_json::from_str(&content).map_err(|e| corrupt(format!("event {stream_pos}: undecodable content: {e}")))?;
    Ok(Event {
        stream_pos,
        room_id: row.try_get(1).map_err(db)?,
        event_id: row.try_get(2).map_err(db)?,
        sender: row.try_get(3).map_err(db)?,
        event_type: row.try_get(4).map_err(db)?,
        state_key: row.try_get(5).map_err(db)?,
        content,
        origin_server_ts: pos(row.try_get(7).map_err(db)?),
    })
}

pub fn membership(text: &str) -> Result<Membership, StoreError> {
    Ok(match text {
        "join" => Membership::Join,
        "invite" => Membership::Invite,
        "leave" => Membership::Leave,
        "ban" => Membership::Ban,
        "knock" => Membership::Knock,
        other => return Err(corrupt(format!("unknown membership {other:?}"))),
    })
}

pub fn user(text: &str) -> Result<UserId, StoreError> {
    UserId::parse(text).map_err(|e| corrupt(e.0))
}

pub fn room(text: &str) -> Result<RoomId, StoreError> {
    RoomId::parse(text).map_err(|e| corrupt(e.0))
}

pub fn alias(text: &str) -> Result<RoomAliasId, StoreError> {
    RoomAliasId::parse(text).map_err(|e| corrupt(e.0))
}

pub fn json(value: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Internal(format!("unserialisable JSON: {e}")))
}

pub fn parse_json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt(format!("undecodable {what}: {e}")))
}
