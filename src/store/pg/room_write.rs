//! A room write in one transaction: lock the room's row (which serializes
//! writes to the room across every instance), load the auth state the plan
//! needs, ask the plan, and write its authorized events with every index
//! they change, at positions handed out while the lock is held.

use super::positions::Positions;
use super::rows::{self, db, sql_pos, EVENT_COLUMNS};
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::auth::{AuthState, Authorized};
use crate::membership::auth_state::membership_of;
use crate::membership::state::Membership;
use crate::membership::third_party::THIRD_PARTY_INVITE;
use crate::store::codec::corrupt;
use crate::store::room_write::{new_event_id, now_ms};
use crate::store::{Event, RoomWrite, RoomWritten, StoreError};
use deadpool_postgres::Transaction;
use serde_json::{Map, Value};
use std::collections::HashMap;
use tokio_postgres::types::ToSql;

/// What the plan decided, to be written by [`write`].
struct Decided {
    events: Vec<Authorized>,
    creator: Option<String>,
}

/// Runs `write` in `tx` and commits; on any error nothing is written.
pub async fn run(tx: Transaction<'_>, positions: &Positions, write: RoomWrite) -> Result<RoomWritten, StoreError> {
    // Taken apart: the plan is not `Sync`, so no reference to the whole may live across an await.
    let RoomWrite {
        room: room_id,
        create,
        users,
        txn,
        plan,
    } = write;
    let room = room_id.as_str().to_owned();
    let (xid, mut auth) = match &create {
        Some(creation) => {
            claim_room(&tx, &room, creation.alias.as_ref()).await?;
            // A new room has no members and no transaction ids yet.
            (current_xid(&tx).await?, AuthState::new_room(room_id.clone()))
        }
        None => {
            let locked = tx
                .query_opt(
                    "SELECT pg_current_xact_id()::text FROM rooms WHERE room_id = $1 FOR UPDATE",
                    &[&room],
                )
                .await
                .map_err(db)?
                .ok_or_else(|| StoreError::UnknownRoom(room.clone()))?;
            // Pipelined: the three reads go out together, under the lock.
            let (mut auth, seen, members) = futures::try_join!(
                load_auth_state(&tx, &room_id),
                repeated(&tx, &room, txn.as_ref()),
                memberships(&tx, &room, &users),
            )?;
            if let Some(event_id) = seen {
                return Ok(RoomWritten::Repeated(event_id));
            }
            for user in &users {
                auth.load_member(user.clone(), members.get(user.as_str()).copied());
            }
            (locked.try_get(0).map_err(db)?, auth)
        }
    };
    if create.is_some() {
        for user in &users {
            auth.load_member(user.clone(), None);
        }
    }
    let events = plan(&mut auth).map_err(StoreError::Refused)?;
    if events.is_empty() {
        return Ok(RoomWritten::Unchanged);
    }
    if let Some(wrong) = events.iter().find(|a| a.room() != &room_id) {
        return Err(StoreError::Internal(format!(
            "a plan for {room} returned an event authorized for {}",
            wrong.room()
        )));
    }
    let creator = create
        .as_ref()
        .and_then(|_| events.first().map(|a| a.event().sender.to_string()));
    let decided = Decided { events, creator };
    let written = commit(tx, positions, &xid, &room, txn.as_ref(), decided).await?;
    Ok(RoomWritten::Written(written))
}

/// Writes what the plan decided at new positions, and commits.
async fn commit(
    tx: Transaction<'_>,
    positions: &Positions,
    xid: &str,
    room: &str,
    txn: Option<&(UserId, String)>,
    decided: Decided,
) -> Result<Vec<Event>, StoreError> {
    let at = positions.allocate(decided.events.len(), xid).await?;
    let result = async {
        let now = now_ms();
        let mut written = Vec::with_capacity(at.len());
        for (authorized, pos) in decided.events.into_iter().zip(&at) {
            let event = to_event(authorized, *pos, now);
            insert_event(&tx, &event).await?;
            written.push(event);
        }
        if let Some(creator) = &decided.creator {
            tx.execute("UPDATE rooms SET creator = $2 WHERE room_id = $1", &[&room, creator])
                .await
                .map_err(db)?;
        }
        if let Some((sender, txn_id)) = txn {
            let first = &written[0];
            tx.execute(
                "INSERT INTO txns (user_id, room_id, txn_id, stream_pos, event_id) VALUES ($1, $2, $3, $4, $5)",
                &[
                    &sender.as_str(),
                    &room,
                    txn_id,
                    &sql_pos(first.stream_pos),
                    &first.event_id,
                ],
            )
            .await
            .map_err(db)?;
        }
        finish(tx, &at).await?;
        Ok::<_, StoreError>(written)
    }
    .await;
    match result {
        Ok(written) => {
            positions.await_own(*at.last().expect("at least one event")).await;
            Ok(written)
        }
        Err(e) => {
            positions.abandon(&at).await;
            Err(e)
        }
    }
}

/// Releases the transaction's pending positions and commits: both land at
/// once or not at all. Other instances are told afterwards
/// ([`Positions::announce`]): a `NOTIFY` inside the transaction would take
/// PostgreSQL's global notify lock until the commit is on disk, one commit
/// at a time for the whole cluster.
pub async fn finish(tx: Transaction<'_>, at: &[u64]) -> Result<(), StoreError> {
    let at: Vec<i64> = at.iter().map(|p| sql_pos(*p)).collect();
    tx.execute("DELETE FROM stream_pending WHERE pos = ANY($1)", &[&at])
        .await
        .map_err(db)?;
    tx.commit().await.map_err(db)
}

/// An authorized event as stored, at `pos`.
fn to_event(authorized: Authorized, pos: u64, now: u64) -> Event {
    let room_id = authorized.room().to_string();
    let proposed = authorized.into_event();
    Event {
        event_id: new_event_id(),
        room_id,
        sender: proposed.sender.to_string(),
        event_type: proposed.event_type,
        state_key: proposed.state_key,
        content: Value::Object(proposed.content),
        origin_server_ts: now,
        stream_pos: pos,
    }
}

/// Inserts an event and, for a state event, its current state, state
/// history and (for a member event) membership rows. Import uses it too.
pub async fn insert_event(tx: &Transaction<'_>, event: &Event) -> Result<(), StoreError> {
    let pos = sql_pos(event.stream_pos);
    let content = rows::json(&event.content)?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO events (stream_pos, room_id, event_id, sender, event_type, state_key, content, \
             origin_server_ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await
        .map_err(db)?;
    tx.execute(
        &insert,
        &[
            &pos,
            &event.room_id,
            &event.event_id,
            &event.sender,
            &event.event_type,
            &event.state_key,
            &content,
            &sql_pos(event.origin_server_ts),
        ],
    )
    .await
    .map_err(db)?;
    let Some(state_key) = &event.state_key else {
        return Ok(());
    };
    let membership = member_change(event)?;
    let current = tx
        .prepare_cached(
            "INSERT INTO current_state (room_id, event_type, state_key, stream_pos) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id, event_type, state_key) DO UPDATE SET stream_pos = EXCLUDED.stream_pos",
        )
        .await
        .map_err(db)?;
    let history = tx
        .prepare_cached(
            "INSERT INTO state_history (room_id, event_type, state_key, stream_pos, membership) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(db)?;
    let m = membership.map(|m| m.as_str());
    let current_params: [&(dyn ToSql + Sync); 4] = [&event.room_id, &event.event_type, state_key, &pos];
    let history_params: [&(dyn ToSql + Sync); 5] = [&event.room_id, &event.event_type, state_key, &pos, &m];
    // Pipelined: both go out before either answer is awaited.
    let (a, b) = futures::join!(
        tx.execute(&current, &current_params),
        tx.execute(&history, &history_params),
    );
    a.map_err(db)?;
    b.map_err(db)?;
    if let Some(m) = m {
        let member = tx
            .prepare_cached(
                "INSERT INTO memberships (room_id, user_id, membership, stream_pos) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (room_id, user_id) DO UPDATE SET membership = EXCLUDED.membership, \
                 stream_pos = EXCLUDED.stream_pos",
            )
            .await
            .map_err(db)?;
        tx.execute(&member, &[&event.room_id, state_key, &m, &pos])
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// The membership a member event sets; `None` for other state.
fn member_change(event: &Event) -> Result<Option<Membership>, StoreError> {
    if event.event_type != "m.room.member" {
        return Ok(None);
    }
    let bad = |what: &str| StoreError::Internal(format!("member event {} {what}", event.stream_pos));
    let state_key = event.state_key.as_deref().unwrap_or_default();
    UserId::parse(state_key).map_err(|e| bad(&format!("has a state key that is no user id: {e}")))?;
    let Value::Object(content) = &event.content else {
        return Err(bad("has no content object"));
    };
    membership_of(content).map(Some).ok_or_else(|| bad("has no membership"))
}

/// The auth state of the locked room: its create event, power levels, join
/// rules and third-party invites, read in one query.
async fn load_auth_state(tx: &Transaction<'_>, room_id: &RoomId) -> Result<AuthState, StoreError> {
    let room = room_id.as_str();
    let query = tx
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM current_state c JOIN events e ON e.stream_pos = c.stream_pos \
             WHERE c.room_id = $1 AND ((c.state_key = '' AND c.event_type IN \
             ('m.room.create', 'm.room.power_levels', 'm.room.join_rules')) OR c.event_type = $2)"
        ))
        .await
        .map_err(db)?;
    let found = tx.query(&query, &[&room, &THIRD_PARTY_INVITE]).await.map_err(db)?;
    let mut create = None;
    let mut power_levels = None;
    let mut join_rules = None;
    let mut invites = Vec::new();
    for row in &found {
        let event = rows::event(row)?;
        match event.event_type.as_str() {
            "m.room.create" => create = Some(event),
            "m.room.power_levels" => power_levels = Some(object(room, event)?),
            "m.room.join_rules" => join_rules = Some(object(room, event)?),
            _ => invites.push(event),
        }
    }
    let create = create.ok_or_else(|| corrupt(format!("room {room} has no m.room.create")))?;
    // From room version 11 the create event's sender is the creator.
    let create_sender =
        UserId::parse(&create.sender).map_err(|e| corrupt(format!("{room}: m.room.create sender: {e}")))?;
    let create = object(room, create)?;
    let mut auth = AuthState::existing(
        room_id.clone(),
        (&create, &create_sender),
        power_levels.as_ref(),
        join_rules.as_ref(),
    )
    .map_err(|e| corrupt(e.0))?;
    for event in invites {
        let (Some(token), Value::Object(content)) = (event.state_key.as_deref(), &event.content) else {
            continue;
        };
        let sender = UserId::parse(&event.sender).map_err(|e| corrupt(format!("event {}: {e}", event.stream_pos)))?;
        auth.load_third_party_invite(token, sender, content);
    }
    Ok(auth)
}

/// Claims a new room's id and its alias; either taken refuses the creation.
async fn claim_room(tx: &Transaction<'_>, room: &str, alias: Option<&RoomAliasId>) -> Result<(), StoreError> {
    let created = tx
        .execute(
            "INSERT INTO rooms (room_id, creator) VALUES ($1, '') ON CONFLICT DO NOTHING",
            &[&room],
        )
        .await
        .map_err(db)?;
    if created == 0 {
        return Err(StoreError::RoomExists(room.to_owned()));
    }
    if let Some(alias) = alias {
        let claimed = tx
            .execute(
                "INSERT INTO aliases (alias, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&alias.as_str(), &room],
            )
            .await
            .map_err(db)?;
        if claimed == 0 {
            return Err(StoreError::AliasTaken(alias.to_string()));
        }
    }
    Ok(())
}

/// The id of the transaction `tx`, which its pending positions name.
pub async fn current_xid(tx: &Transaction<'_>) -> Result<String, StoreError> {
    tx.query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(db)
}

/// The event a repeated transaction id produced, if it is one.
async fn repeated(
    tx: &Transaction<'_>,
    room: &str,
    txn: Option<&(UserId, String)>,
) -> Result<Option<String>, StoreError> {
    let Some((sender, txn_id)) = txn else {
        return Ok(None);
    };
    let query = tx
        .prepare_cached("SELECT event_id FROM txns WHERE user_id = $1 AND room_id = $2 AND txn_id = $3")
        .await
        .map_err(db)?;
    tx.query_opt(&query, &[&sender.as_str(), &room, txn_id])
        .await
        .map_err(db)?
        .map(|r| r.try_get(0).map_err(db))
        .transpose()
}

/// The current memberships of the users the plan reads.
async fn memberships(
    tx: &Transaction<'_>,
    room: &str,
    users: &[UserId],
) -> Result<HashMap<String, Membership>, StoreError> {
    let mut found = HashMap::new();
    if users.is_empty() {
        return Ok(found);
    }
    let names: Vec<&str> = users.iter().map(|u| u.as_str()).collect();
    let query = tx
        .prepare_cached("SELECT user_id, membership FROM memberships WHERE room_id = $1 AND user_id = ANY($2)")
        .await
        .map_err(db)?;
    for row in tx.query(&query, &[&room, &names]).await.map_err(db)? {
        let user: String = row.try_get(0).map_err(db)?;
        let membership: String = row.try_get(1).map_err(db)?;
        found.insert(user, rows::membership(&membership)?);
    }
    Ok(found)
}

fn object(room: &str, event: Event) -> Result<Map<String, Value>, StoreError> {
    match event.content {
        Value::Object(map) => Ok(map),
        other => Err(corrupt(format!(
            "event {} in {room} has non-object content {other}",
            event.stream_pos
        ))),
    }
}
