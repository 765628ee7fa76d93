//! Export and import in the backend-neutral format of [`crate::store::export`]:
//! the same file moves a server from sled to PostgreSQL and back.

use super::room_write::{finish, insert_event};
use super::rows::{self, db, pos, sql_pos};
use super::PgStore;
use crate::store::export::{hex, unhex32, Lines, Record, FORMAT, VERSION};
use crate::store::{Event, ExportSummary, StoreError};
use deadpool_postgres::Transaction;
use std::io::Write;

/// The highest position the snapshot holds.
const STREAM_END: &str = "SELECT GREATEST(COALESCE((SELECT max(stream_pos) FROM events), 0), \
    COALESCE((SELECT max(stream_pos) FROM account_data), 0), (SELECT pos FROM stream_floor))";

impl PgStore {
    /// One `REPEATABLE READ` snapshot: every write committed before it, no
    /// part of a later one.
    pub(super) async fn export_to(&self, file: std::fs::File) -> Result<ExportSummary, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let mut lines = Lines {
            out: std::io::BufWriter::new(file),
            count: 0,
        };
        let stream_end = pos(tx
            .query_one(STREAM_END, &[])
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(db)?);
        lines.put(&Record::Header {
            format: FORMAT.into(),
            version: VERSION,
            layout: format!("postgres-{}", super::schema_version()),
            stream_end,
        })?;
        export_accounts(&tx, &mut lines).await?;
        export_rooms(&tx, &mut lines).await?;
        export_user_data(&tx, &mut lines).await?;
        let records = lines.count + 1;
        lines.put(&Record::End { records })?;
        let file = lines
            .out
            .into_inner()
            .map_err(|e| StoreError::Io(format!("writing the export failed: {e}")))?;
        file.sync_all()
            .map_err(|e| StoreError::Io(format!("syncing the export failed: {e}")))?;
        tx.commit().await.map_err(db)?;
        Ok(ExportSummary {
            records,
            stream_position: stream_end,
        })
    }

    /// One chunk of records, in one transaction.
    pub(super) async fn import_records(&self, records: Vec<Record>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        for record in records {
            import_record(&tx, record).await?;
        }
        tx.execute(
            "SELECT setval(pg_get_serial_sequence('filters', 'filter_id'), \
             GREATEST((SELECT max(filter_id) FROM filters), 1))",
            &[],
        )
        .await
        .map_err(db)?;
        finish(tx, &[]).await?;
        self.positions.await_own(0).await;
        Ok(())
    }
}

async fn export_accounts<W: Write>(tx: &Transaction<'_>, lines: &mut Lines<W>) -> Result<(), StoreError> {
    let accounts = tx
        .query(
            "SELECT u.user_id, u.password_hash, u.admin, u.deactivated, p.displayname FROM users u \
             LEFT JOIN profiles p ON p.user_id = u.user_id ORDER BY u.user_id",
            &[],
        )
        .await
        .map_err(db)?;
    for r in &accounts {
        lines.put(&Record::Account {
            user_id: r.try_get(0).map_err(db)?,
            password_hash: r.try_get(1).map_err(db)?,
            admin: r.try_get(2).map_err(db)?,
            deactivated: r.try_get(3).map_err(db)?,
            displayname: r.try_get(4).map_err(db)?,
        })?;
    }
    for r in &tx
        .query(
            "SELECT token_hash, user_id, device_id FROM tokens ORDER BY token_hash",
            &[],
        )
        .await
        .map_err(db)?
    {
        let hash: Vec<u8> = r.try_get(0).map_err(db)?;
        lines.put(&Record::Token {
            token_hash: hex(&hash),
            user_id: r.try_get(1).map_err(db)?,
            device_id: r.try_get(2).map_err(db)?,
        })?;
    }
    Ok(())
}

async fn export_rooms<W: Write>(tx: &Transaction<'_>, lines: &mut Lines<W>) -> Result<(), StoreError> {
    let rooms = tx
        .query("SELECT room_id, creator FROM rooms ORDER BY room_id", &[])
        .await
        .map_err(db)?;
    for r in &rooms {
        let room_id: String = r.try_get(0).map_err(db)?;
        let creator: String = r.try_get(1).map_err(db)?;
        lines.put(&Record::Room {
            room_id: room_id.clone(),
            meta: serde_json::json!({ "creator": creator }),
        })?;
        for a in &tx
            .query(
                "SELECT alias FROM aliases WHERE room_id = $1 ORDER BY alias",
                &[&room_id],
            )
            .await
            .map_err(db)?
        {
            lines.put(&Record::Alias {
                alias: a.try_get(0).map_err(db)?,
                room_id: room_id.clone(),
            })?;
        }
        let sql = format!(
            "SELECT {} FROM events e WHERE e.room_id = $1 ORDER BY e.stream_pos",
            rows::EVENT_COLUMNS
        );
        for e in &tx.query(&sql, &[&room_id]).await.map_err(db)? {
            lines.put(&Record::from(rows::event(e)?))?;
        }
    }
    for r in &tx
        .query(
            "SELECT user_id, room_id, txn_id, stream_pos, event_id FROM txns ORDER BY user_id, room_id, txn_id",
            &[],
        )
        .await
        .map_err(db)?
    {
        lines.put(&Record::Txn {
            user_id: r.try_get(0).map_err(db)?,
            room_id: r.try_get(1).map_err(db)?,
            txn_id: r.try_get(2).map_err(db)?,
            stream_pos: pos(r.try_get(3).map_err(db)?),
            event_id: r.try_get(4).map_err(db)?,
        })?;
    }
    Ok(())
}

async fn export_user_data<W: Write>(tx: &Transaction<'_>, lines: &mut Lines<W>) -> Result<(), StoreError> {
    for r in &tx
        .query(
            "SELECT user_id, filter_id::text, body FROM filters ORDER BY filter_id",
            &[],
        )
        .await
        .map_err(db)?
    {
        lines.put(&Record::Filter {
            user_id: r.try_get(0).map_err(db)?,
            filter_id: r.try_get(1).map_err(db)?,
            filter: rows::parse_json(&r.try_get::<_, String>(2).map_err(db)?, "filter")?,
        })?;
    }
    for r in &tx
        .query(
            "SELECT user_id, room_id, event_type, content, stream_pos FROM account_data \
             ORDER BY user_id, room_id, event_type",
            &[],
        )
        .await
        .map_err(db)?
    {
        let room: String = r.try_get(1).map_err(db)?;
        lines.put(&Record::AccountData {
            user_id: r.try_get(0).map_err(db)?,
            room_id: (!room.is_empty()).then_some(room),
            event_type: r.try_get(2).map_err(db)?,
            content: rows::parse_json(&r.try_get::<_, String>(3).map_err(db)?, "account data")?,
            stream_pos: pos(r.try_get(4).map_err(db)?),
        })?;
    }
    for r in &tx
        .query(
            "SELECT user_id, room_id, stream_pos FROM forgotten ORDER BY user_id, room_id",
            &[],
        )
        .await
        .map_err(db)?
    {
        lines.put(&Record::Forgotten {
            user_id: r.try_get(0).map_err(db)?,
            room_id: r.try_get(1).map_err(db)?,
            stream_pos: pos(r.try_get(2).map_err(db)?),
        })?;
    }
    Ok(())
}

use crate::store::import::{check_ids, invalid};

async fn import_record(tx: &Transaction<'_>, record: Record) -> Result<(), StoreError> {
    // sled's import parses these ids as it writes its keys; here nothing
    // would, and a bad id would only show up later as corrupt data.
    check_ids(&record)?;
    match record {
        Record::Header { stream_end, .. } => {
            let end = sql_pos(stream_end);
            tx.execute("UPDATE stream_floor SET pos = GREATEST(pos, $1)", &[&end])
                .await
                .map_err(db)?;
            tx.execute("UPDATE stream_head SET pos = GREATEST(pos, $1)", &[&end])
                .await
                .map_err(db)?;
        }
        Record::End { .. } => {}
        Record::Account {
            user_id,
            password_hash,
            admin,
            deactivated,
            displayname,
        } => {
            tx.execute(
                "INSERT INTO users (user_id, password_hash, admin, deactivated) VALUES ($1, $2, $3, $4)",
                &[&user_id, &password_hash, &admin, &deactivated],
            )
            .await
            .map_err(db)?;
            if let Some(name) = displayname {
                tx.execute(
                    "INSERT INTO profiles (user_id, displayname) VALUES ($1, $2)",
                    &[&user_id, &name],
                )
                .await
                .map_err(db)?;
            }
        }
        Record::Token {
            token_hash,
            user_id,
            device_id,
        } => {
            let hash = unhex32(&token_hash).map_err(|e| invalid(format!("token hash: {e}")))?;
            tx.execute(
                "INSERT INTO tokens (token_hash, user_id, device_id) VALUES ($1, $2, $3)",
                &[&&hash[..], &user_id, &device_id],
            )
            .await
            .map_err(db)?;
        }
        Record::Room { room_id, meta } => {
            let creator = meta.get("creator").and_then(|c| c.as_str()).unwrap_or_default();
            tx.execute(
                "INSERT INTO rooms (room_id, creator) VALUES ($1, $2)",
                &[&room_id, &creator],
            )
            .await
            .map_err(db)?;
        }
        Record::Alias { alias, room_id } => {
            tx.execute(
                "INSERT INTO aliases (alias, room_id) VALUES ($1, $2)",
                &[&alias, &room_id],
            )
            .await
            .map_err(db)?;
        }
        Record::Event {
            room_id,
            stream_pos,
            event_id,
            sender,
            event_type,
            state_key,
            content,
            origin_server_ts,
        } => {
            let event = Event {
                event_id,
                room_id,
                sender,
                event_type,
                state_key,
                content,
                origin_server_ts,
                stream_pos,
            };
            insert_event(tx, &event).await?;
        }
        Record::Txn {
            user_id,
            room_id,
            txn_id,
            stream_pos,
            event_id,
        } => {
            tx.execute(
                "INSERT INTO txns (user_id, room_id, txn_id, stream_pos, event_id) VALUES ($1, $2, $3, $4, $5)",
                &[&user_id, &room_id, &txn_id, &sql_pos(stream_pos), &event_id],
            )
            .await
            .map_err(db)?;
        }
        Record::Filter {
            user_id,
            filter_id,
            filter,
        } => {
            let id: i64 = filter_id
                .parse()
                .map_err(|_| invalid(format!("filter id {filter_id:?} is not a number")))?;
            tx.execute(
                "INSERT INTO filters (filter_id, user_id, body) VALUES ($1, $2, $3)",
                &[&id, &user_id, &rows::json(&filter)?],
            )
            .await
            .map_err(db)?;
        }
        Record::AccountData {
            user_id,
            room_id,
            event_type,
            content,
            stream_pos,
        } => {
            tx.execute(
                "INSERT INTO account_data (user_id, room_id, event_type, content, stream_pos) VALUES ($1, $2, $3, $4, $5)",
                &[&user_id, &room_id.unwrap_or_default(), &event_type, &rows::json(&content)?, &sql_pos(stream_pos)],
            )
            .await
            .map_err(db)?;
        }
        Record::Forgotten {
            user_id,
            room_id,
            stream_pos,
        } => {
            tx.execute(
                "INSERT INTO forgotten (user_id, room_id, stream_pos) VALUES ($1, $2, $3)",
                &[&user_id, &room_id, &sql_pos(stream_pos)],
            )
            .await
            .map_err(db)?;
        }
    }
    Ok(())
}
