//! The PostgreSQL backend: the same [`Store`] contract as sled, for several
//! stateless instances on one database.
//!
//! - **Durable on return:** every connection commits with
//!   `synchronous_commit = on`, and a write returns after its commit.
//! - **Serialized per room:** a room write locks the room's row for its
//!   transaction ([`room_write`]), so two instances cannot both accept a
//!   join and a ban of one user.
//! - **Read committed, in stream order:** stream reads stop at the
//!   persisted position ([`positions`]), below which every position is
//!   committed; waiting syncs on every instance wake through `LISTEN`/`NOTIFY`.
//! - **Atomic:** each write is one transaction.

mod accounts;
mod connect;
mod export;
mod positions;
mod reads;
mod room_write;
mod rows;
mod user_data;

use self::positions::Positions;
use self::rows::{db, pool};
use super::export::Record;
use super::{
    AccountData, AccountFlags, AccountSummary, Event, ExportSummary, MemberEntry, RoomWrite, RoomWritten, Store,
    StoreError,
};
use crate::ids::{RoomAliasId, RoomId, UserId};
use crate::membership::state::Membership;
use deadpool_postgres::{Object, Pool};
use std::sync::Arc;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub use self::connect::schema_version;

/// The database URL with any password replaced by `***`, for logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// Connections a store keeps for its queries (besides its three own ones:
/// handing out positions, following the stream, announcing commits).
pub const DEFAULT_POOL_SIZE: usize = 16;

/// Query parameters.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A store on a PostgreSQL database.
pub struct PgStore {
    pool: Pool,
    positions: Arc<Positions>,
    /// The tasks that follow the stream and announce own commits.
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for PgStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PgStore {
    /// Connects to `url`, brings the schema up to date, and starts following
    /// the stream. Must be called inside a tokio runtime, which the store's
    /// connections then run on.
    pub fn open(url: &str, pool_size: usize) -> Result<PgStore, StoreError> {
        let config = connect::config(url)?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::Internal("the PostgreSQL store must be opened inside a tokio runtime".into()))?;
        let setup = config.clone();
        let persisted = connect::on_own_runtime(async move {
            let mut connected = connect::dedicated(&setup, None).await?;
            connect::migrate(&mut connected.client).await?;
            positions::read_persisted(&connected.client).await
        })?;
        let positions = Positions::new(config.clone(), persisted);
        let tasks = [
            runtime.spawn(positions.clone().track()),
            runtime.spawn(positions.clone().announce()),
        ];
        Ok(PgStore {
            pool: connect::pool(config, pool_size.max(1))?,
            positions,
            tasks,
        })
    }

    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pool)
    }

    async fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.query(&statement, params).await.map_err(db)
    }

    async fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(db)?;
        client.execute(&statement, params).await.map_err(db)
    }

    /// The persisted position: stream reads go no further.
    fn upto(&self, pos: u64) -> u64 {
        pos.min(self.positions.persisted())
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn create_user(&self, user: &UserId, password_hash: &str) -> Result<bool, StoreError> {
        self.create_account(user, password_hash, AccountFlags::default()).await
    }
    async fn password_hash(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.password_hash_of(user).await
    }
    async fn user_exists(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.password_hash_of(user).await?.is_some())
    }
    async fn add_token(&self, token_hash: &[u8; 32], user: &UserId, device_id: &str) -> Result<(), StoreError> {
        self.insert_token(token_hash, user, device_id).await
    }
    async fn token_user(&self, token_hash: &[u8; 32]) -> Result<Option<(UserId, String)>, StoreError> {
        self.token_owner(token_hash).await
    }
    async fn remove_token(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        self.execute("DELETE FROM tokens WHERE token_hash = $1", &[&&token_hash[..]])
            .await
            .map(|_| ())
    }

    async fn write_room(&self, write: RoomWrite) -> Result<RoomWritten, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        room_write::run(tx, &self.positions, write).await
    }
    async fn room_exists(&self, room: &RoomId) -> Result<bool, StoreError> {
        Ok(self
            .query_opt("SELECT 1 FROM rooms WHERE room_id = $1", &[&room.as_str()])
            .await?
            .is_some())
    }
    async fn membership(&self, room: &RoomId, user: &UserId) -> Result<Option<MemberEntry>, StoreError> {
        self.membership_of(room, user).await
    }
    async fn state_event(&self, room: &RoomId, event_type: &str, state_key: &str) -> Result<Option<Event>, StoreError> {
        self.current_state_event(room, event_type, state_key).await
    }
    async fn current_state(&self, room: &RoomId) -> Result<Vec<Event>, StoreError> {
        self.current_state_of(room).await
    }
    async fn state_at(&self, room: &RoomId, pos: u64) -> Result<Vec<Event>, StoreError> {
        self.state_at_pos(room, pos).await
    }
    async fn state_event_at(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        pos: u64,
    ) -> Result<Option<Event>, StoreError> {
        self.state_event_at_pos(room, event_type, state_key, pos).await
    }
    async fn state_changes(
        &self,
        room: &RoomId,
        event_type: &str,
        state_key: &str,
        upto: u64,
    ) -> Result<Vec<(u64, Option<Membership>)>, StoreError> {
        self.state_changes_of(room, event_type, state_key, upto).await
    }
    async fn event_at(&self, room: &RoomId, pos: u64) -> Result<Option<Event>, StoreError> {
        self.event_at_pos(room, pos).await
    }
    async fn members(&self, room: &RoomId) -> Result<Vec<(UserId, Membership)>, StoreError> {
        self.members_of(room).await
    }
    async fn rooms_of(&self, user: &UserId) -> Result<Vec<(RoomId, MemberEntry)>, StoreError> {
        self.rooms_of_user(user).await
    }
    async fn room_events(
        &self,
        room: &RoomId,
        from: u64,
        to: u64,
        limit: usize,
        newest: bool,
    ) -> Result<Vec<Event>, StoreError> {
        self.room_events_between(room, from, to, limit, newest).await
    }
    fn durable_pos(&self) -> u64 {
        self.positions.persisted()
    }
    fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.positions.subscribe()
    }
    fn wake_subscribers(&self) {
        self.positions.wake_all();
    }
    fn subscriber_count(&self) -> usize {
        self.positions.subscribers()
    }

    async fn set_alias(&self, alias: &RoomAliasId, room: &RoomId) -> Result<bool, StoreError> {
        self.claim_alias(alias, room).await
    }
    async fn resolve_alias(&self, alias: &RoomAliasId) -> Result<Option<RoomId>, StoreError> {
        self.query_opt("SELECT room_id FROM aliases WHERE alias = $1", &[&alias.as_str()])
            .await?
            .map(|r| rows::room(&r.try_get::<_, String>(0).map_err(db)?))
            .transpose()
    }
    async fn delete_alias(&self, alias: &RoomAliasId) -> Result<bool, StoreError> {
        Ok(self
            .execute("DELETE FROM aliases WHERE alias = $1", &[&alias.as_str()])
            .await?
            > 0)
    }

    async fn txn_event(&self, user: &UserId, room: &RoomId, txn_id: &str) -> Result<Option<String>, StoreError> {
        self.query_opt(
            "SELECT event_id FROM txns WHERE user_id = $1 AND room_id = $2 AND txn_id = $3",
            &[&user.as_str(), &room.as_str(), &txn_id],
        )
        .await?
        .map(|r| r.try_get(0).map_err(db))
        .transpose()
    }
    async fn put_filter(&self, user: &UserId, filter: &serde_json::Value) -> Result<String, StoreError> {
        let row = self
            .query_opt(
                "INSERT INTO filters (user_id, body) VALUES ($1, $2) RETURNING filter_id::text",
                &[&user.as_str(), &rows::json(filter)?],
            )
            .await?
            .ok_or_else(|| StoreError::Internal("storing a filter returned no id".into()))?;
        row.try_get(0).map_err(db)
    }
    async fn filter(&self, user: &UserId, filter_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.stored_filter(user, filter_id).await
    }
    async fn set_displayname(&self, user: &UserId, name: Option<&str>) -> Result<(), StoreError> {
        self.store_displayname(user, name).await
    }
    async fn displayname(&self, user: &UserId) -> Result<Option<String>, StoreError> {
        self.query_opt("SELECT displayname FROM profiles WHERE user_id = $1", &[&user.as_str()])
            .await?
            .map(|r| r.try_get(0).map_err(db))
            .transpose()
    }

    async fn set_account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
        content: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        self.store_account_data(user, room, event_type, content).await
    }
    async fn account_data(
        &self,
        user: &UserId,
        room: Option<&RoomId>,
        event_type: &str,
    ) -> Result<Option<AccountData>, StoreError> {
        self.account_data_entry(user, room, event_type).await
    }
    async fn account_data_changes(&self, user: &UserId, after: u64, upto: u64) -> Result<Vec<AccountData>, StoreError> {
        self.account_data_between(user, after, upto).await
    }
    async fn forget_room(&self, user: &UserId, room: &RoomId) -> Result<Option<Membership>, StoreError> {
        self.mark_forgotten(user, room).await
    }
    async fn forgotten(&self, user: &UserId, room: &RoomId) -> Result<bool, StoreError> {
        // A membership change after the forgetting (a new invite or join) clears it.
        Ok(self
            .query_opt(
                "SELECT 1 FROM forgotten f JOIN memberships m ON m.room_id = f.room_id AND m.user_id = f.user_id \
                 WHERE f.user_id = $1 AND f.room_id = $2 AND m.stream_pos = f.stream_pos",
                &[&user.as_str(), &room.as_str()],
            )
            .await?
            .is_some())
    }

    async fn create_account(
        &self,
        user: &UserId,
        password_hash: &str,
        flags: AccountFlags,
    ) -> Result<bool, StoreError> {
        Ok(self
            .execute(
                "INSERT INTO users (user_id, password_hash, admin, deactivated) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                &[&user.as_str(), &password_hash, &flags.admin, &flags.deactivated],
            )
            .await?
            > 0)
    }
    async fn account_flags(&self, user: &UserId) -> Result<Option<AccountFlags>, StoreError> {
        self.flags_of(user).await
    }
    async fn set_admin(&self, user: &UserId, admin: bool) -> Result<bool, StoreError> {
        Ok(self
            .execute(
                "UPDATE users SET admin = $2 WHERE user_id = $1",
                &[&user.as_str(), &admin],
            )
            .await?
            > 0)
    }
    async fn set_password_hash(&self, user: &UserId, password_hash: &str, logout: bool) -> Result<bool, StoreError> {
        self.replace_password(user, password_hash, logout).await
    }
    async fn deactivate(&self, user: &UserId) -> Result<bool, StoreError> {
        self.deactivate_account(user).await
    }
    async fn accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        self.all_accounts().await
    }
    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
        self.query("SELECT room_id FROM rooms ORDER BY room_id", &[])
            .await?
            .iter()
            .map(|r| rows::room(&r.try_get::<_, String>(0).map_err(db)?))
            .collect()
    }
    async fn room_aliases(&self, room: &RoomId) -> Result<Vec<RoomAliasId>, StoreError> {
        self.query(
            "SELECT alias FROM aliases WHERE room_id = $1 ORDER BY alias",
            &[&room.as_str()],
        )
        .await?
        .iter()
        .map(|r| rows::alias(&r.try_get::<_, String>(0).map_err(db)?))
        .collect()
    }
    async fn export(&self, file: std::fs::File) -> Result<ExportSummary, StoreError> {
        self.export_to(file).await
    }
    async fn is_empty(&self) -> Result<bool, StoreError> {
        let row = self
            .query_opt(
                "SELECT NOT (EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM tokens) \
                 OR EXISTS (SELECT 1 FROM rooms) OR EXISTS (SELECT 1 FROM filters) \
                 OR EXISTS (SELECT 1 FROM profiles) OR EXISTS (SELECT 1 FROM account_data))",
                &[],
            )
            .await?;
        Ok(row.map(|r| r.try_get(0).unwrap_or(false)).unwrap_or(false))
    }
    async fn import(&self, records: Vec<Record>) -> Result<(), StoreError> {
        self.import_records(records).await
    }

    /// Every acknowledged write is committed, and a commit is on disk.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn health(&self) -> Result<(), String> {
        self.positions.health()
    }
    fn disk_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.positions.disk_bytes())
    }
}
