//! Room reads: memberships, current state, state at a position, and the
//! event stream. Stream reads stop at the persisted position.

use super::rows::{self, db, pos, sql_pos, EVENT_COLUMNS};
use super::PgStore;
use crate::ids::{RoomId, UserId};
use crate::membership::state::Membership;
use crate::store::{Event, MemberEntry, StoreError};
use tokio_postgres::Row;

fn events(found: &[Row]) -> Result<Vec<Event>, StoreError> {
    found.iter().map(rows::event).collect()
}

fn member_entry(row: &Row, at: usize) -> Result<MemberEntry, StoreError> {
    let membership: String = row.try_get(at).map_err(db)?;
    Ok((rows::membership(&membership)?, pos(row.try_get(at + 1).map_err(db)?)))
}

impl PgStore {
    pub(super) async fn membership_of(&self, room: &RoomId, user: &UserId) -> Result<Option<MemberEntry>, StoreError> {
        self.query_opt(
            "SELECT membership, stream_pos FROM memberships WHERE room_id = $1 AND user_id = $2",
            &[&room.as_str(), &user.as_str()],
        )
        .await?
        .map(|r| member_entry(&r, 0))
        .transpose()
    }

    pub(super) async fn current_state_event(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
    ) -> Result<Option<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM current_state c JOIN events e ON e.stream_pos = c.stream_pos \
             WHERE c.room_id = $1 AND c.event_type = $2 AND c.state_key = $3"
        );
        self.query_opt(&sql, &[&room.as_str(), &event_type, &state_key])
            .await?
            .map(|r| rows::event(&r))
            .transpose()
    }

    pub(super) async fn current_state_of(&self, room: &RoomId) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM current_state c JOIN events e ON e.stream_pos = c.stream_pos \
             WHERE c.room_id = $1 ORDER BY c.event_type, c.state_key"
        );
        events(&self.query(&sql, &[&room.as_str()]).await?)
    }

    /// For each state key, its newest change at or below `pos`: one index
    /// descent per key of the room's current state.
    pub(super) async fn state_at_pos(&self, room: &RoomId, pos: u64) -> Result<Vec<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM current_state c \
             CROSS JOIN LATERAL (SELECT h.stream_pos FROM state_history h WHERE h.room_id = c.room_id \
                 AND h.event_type = c.event_type AND h.state_key = c.state_key AND h.stream_pos <= $2 \
                 ORDER BY h.stream_pos DESC LIMIT 1) at \
             JOIN events e ON e.stream_pos = at.stream_pos \
             WHERE c.room_id = $1 ORDER BY c.event_type, c.state_key"
        );
        events(&self.query(&sql, &[&room.as_str(), &sql_pos(self.upto(pos))]).await?)
    }

    pub(super) async fn state_event_at_pos(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        pos: u64,
    ) -> Result<Option<Event>, StoreError> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM state_history h JOIN events e ON e.stream_pos = h.stream_pos \
             WHERE h.room_id = $1 AND h.event_type = $2 AND h.state_key = $3 AND h.stream_pos <= $4 \
             ORDER BY h.stream_pos DESC LIMIT 1"
        );
        self.query_opt(
            &sql,
            &[&room.as_str(), &event_type, &state_key, &sql_pos(self.upto(pos))],
        )
        .await?
        .map(|r| rows::event(&r))
        .transpose()
    }

    pub(super) async fn state_changes_of(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        upto: u64,
    ) -> Result<Vec<(u64, Option<Membership>)>, StoreError> {
        self.query(
            "SELECT stream_pos, membership FROM state_history WHERE room_id = $1 AND event_type = $2 \
             AND state_key = $3 AND stream_pos <= $4 ORDER BY stream_pos",
            &[&room.as_str(), &event_type, &state_key, &sql_pos(self.upto(upto))],
        )
        .await?
        .iter()
        .map(|r| {
            let membership: Option<String> = r.try_get(1).map_err(db)?;
            Ok((
                pos(r.try_get(0).map_err(db)?),
                membership.as_deref().map(rows::membership).transpose()?,
            ))
        })
        .collect()
    }

    pub(super) async fn event_at_pos(&self, room: &RoomId, at: u64) -> Result<Option<Event>, StoreError> {
        if at > self.upto(at) {
            return Ok(None);
        }
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events e WHERE e.stream_pos = $1 AND e.room_id = $2");
        self.query_opt(&sql, &[&sql_pos(at), &room.as_str()])
            .await?
            .map(|r| rows::event(&r))
            .transpose()
    }

    pub(super) async fn members_of(&self, room: &RoomId) -> Result<Vec<(UserId, Membership)>, StoreError> {
        self.query(
            "SELECT user_id, membership FROM memberships WHERE room_id = $1 ORDER BY user_id",
            &[&room.as_str()],
        )
        .await?
        .iter()
        .map(|r| {
            let user: String = r.try_get(0).map_err(db)?;
            let membership: String = r.try_get(1).map_err(db)?;
            Ok((rows::user(&user)?, rows::membership(&membership)?))
        })
        .collect()
    }

    pub(super) async fn rooms_of_user(&self, user: &UserId) -> Result<Vec<(RoomId, MemberEntry)>, StoreError> {
        self.query(
            "SELECT room_id, membership, stream_pos FROM memberships WHERE user_id = $1 ORDER BY room_id",
            &[&user.as_str()],
        )
        .await?
        .iter()
        .map(|r| {
            let room: String = r.try_get(0).map_err(db)?;
            Ok((rows::room(&room)?, member_entry(r, 1)?))
        })
        .collect()
    }

    pub(super) async fn room_events_between(
        &self,
        room: &RoomId,
        from: u64,
        to: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<Event>, StoreError> {
        let to = self.upto(to);
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let order = if newest { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e WHERE e.room_id = $1 AND e.stream_pos > $2 AND e.stream_pos <= $3 \
             ORDER BY e.stream_pos {order} LIMIT $4"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = events(
            &self
                .query(&sql, &[&room.as_str(), &sql_pos(from), &sql_pos(to), &limit])
                .await?,
        )?;
        if newest {
            out.reverse();
        }
        Ok(out)
    }
}
