//! What a user keeps outside room history: aliases they point, filters, the
//! profile name, account data and forgotten rooms.

use super::room_write::{current_xid, finish};
use super::rows::{self, db, pos, sql_pos};
use super::PgStore;
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::state::Membership;
use crate::store::{AccountData, StoreError};

/// Global account data is stored under the empty room id.
fn room_key(room: Option<&RoomId>) -> &str {
    room.map_or("", |r| r.as_str())
}

impl PgStore {
    pub(super) async fn claim_alias(&self, alias: &RoomAliasId, room: &RoomId) -> Result<bool, StoreError> {
        if !crate::store::Store::room_exists(self, room).await? {
            return Err(StoreError::UnknownRoom(room.to_string()));
        }
        Ok(self
            .execute(
                "INSERT INTO aliases (alias, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&alias.as_str(), &room.as_str()],
            )
            .await?
            > 0)
    }

    pub(super) async fn stored_filter(
        &self,
        user: &UserId,
        filter_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let Ok(id) = filter_id.parse::<i64>() else {
            return Ok(None);
        };
        self.query_opt(
            "SELECT body FROM filters WHERE filter_id = $1 AND user_id = $2",
            &[&id, &user.as_str()],
        )
        .await?
        .map(|r| rows::parse_json(&r.try_get::<_, String>(0).map_err(db)?, "filter"))
        .transpose()
    }

    pub(super) async fn store_displayname(&self, user: &UserId, name: Option<&str>) -> Result<(), StoreError> {
        let user = user.as_str();
        match name {
            Some(name) => {
                self.execute(
                    "INSERT INTO profiles (user_id, displayname) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET displayname = EXCLUDED.displayname",
                    &[&user, &name],
                )
                .await?
            }
            None => {
                self.execute("DELETE FROM profiles WHERE user_id = $1", &[&user])
                    .await?
            }
        };
        Ok(())
    }

    /// Takes a stream position like an event, so a sync token covers it.
    pub(super) async fn store_account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        let content = rows::json(content)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let xid = current_xid(&tx).await?;
        let at = self.positions.allocate(1, &xid).await?;
        let written = async {
            tx.execute(
                "INSERT INTO account_data (user_id, room_id, event_type, content, stream_pos) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, room_id, event_type) \
                 DO UPDATE SET content = EXCLUDED.content, stream_pos = EXCLUDED.stream_pos",
                &[&user.as_str(), &room_key(room), &event_type, &content, &sql_pos(at[0])],
            )
            .await
            .map_err(db)?;
            finish(tx, &at).await
        }
        .await;
        match written {
            Ok(()) => {
                self.positions.await_own(at[0]).await;
                Ok(at[0])
            }
            Err(e) => {
                self.positions.abandon(&at).await;
                Err(e)
            }
        }
    }

    pub(super) async fn account_data_entry(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
    ) -> Result<Option<AccountData>, StoreError> {
        self.query_opt(
            "SELECT content, stream_pos FROM account_data WHERE user_id = $1 AND room_id = $2 AND event_type = $3",
            &[&user.as_str(), &room_key(room), &event_type],
        )
        .await?
        .map(|r| {
            Ok(AccountData {
                room: room.cloned(),
                event_type: event_type.to_owned(),
                content: rows::parse_json(&r.try_get::<_, String>(0).map_err(db)?, "account data")?,
                stream_pos: pos(r.try_get(1).map_err(db)?),
            })
        })
        .transpose()
    }

    /// Entries whose newest change lies in (after, upto]; one changed again
    /// after `upto` is left for the next sync.
    pub(super) async fn account_data_between(
        &self,
        user: &UserId,
        after: u64,
        upto: u64,
    ) -> Result<Vec<AccountData>, StoreError> {
        let upto = self.upto(upto);
        if after >= upto {
            return Ok(Vec::new());
        }
        self.query(
            "SELECT room_id, event_type, content, stream_pos FROM account_data \
             WHERE user_id = $1 AND stream_pos > $2 AND stream_pos <= $3 ORDER BY stream_pos",
            &[&user.as_str(), &sql_pos(after), &sql_pos(upto)],
        )
        .await?
        .iter()
        .map(|r| {
            let room: String = r.try_get(0).map_err(db)?;
            Ok(AccountData {
                room: (!room.is_empty()).then(|| rows::room(&room)).transpose()?,
                event_type: r.try_get(1).map_err(db)?,
                content: rows::parse_json(&r.try_get::<_, String>(2).map_err(db)?, "account data")?,
                stream_pos: pos(r.try_get(3).map_err(db)?),
            })
        })
        .collect()
    }

    /// Marks the room forgotten at the user's current member event, if it
    /// is a leave or a ban; the membership row is locked meanwhile, so a new
    /// join cannot slip between the check and the mark.
    pub(super) async fn mark_forgotten(&self, user: &UserId, room: &RoomId) -> Result<Option<Membership>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let Some(row) = tx
            .query_opt(
                "SELECT membership, stream_pos FROM memberships WHERE room_id = $1 AND user_id = $2 FOR SHARE",
                &[&room.as_str(), &user.as_str()],
            )
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let membership = rows::membership(&row.try_get::<_, String>(0).map_err(db)?)?;
        let at: i64 = row.try_get(1).map_err(db)?;
        if matches!(membership, Membership::Leave | Membership::Ban) {
            tx.execute(
                "INSERT INTO forgotten (user_id, room_id, stream_pos) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, room_id) DO UPDATE SET stream_pos = EXCLUDED.stream_pos",
                &[&user.as_str(), &room.as_str(), &at],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(Some(membership))
    }
}
