//! The PostgreSQL store's stream positions across instances: a position
//! handed out to one instance and committed after a higher one must never be
//! skipped by readers, and a position whose writer died must not hold the
//! stream back. Another instance's write is played here by a second
//! connection doing what the store does, so each step can be held still.
//! PostgreSQL only (`MM_TEST_POSTGRES`, an admin URL); skipped on sled.

use matrix_membership::ids::UserId;
use matrix_membership::store::{PgStore, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, NoTls};

/// A fresh database on the test cluster, or `None` (with a note) without one.
async fn fresh_database() -> Option<String> {
    let Ok(admin) = std::env::var("MM_TEST_POSTGRES") else {
        eprintln!("skipped: PostgreSQL only (set MM_TEST_POSTGRES, see tests/pg/cluster.sh)");
        return None;
    };
    let name = format!("mm_stream_{}", rand_suffix());
    let client = connect(&admin).await;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("an admin URL ends in /DATABASE");
    Some(format!("{base}/{name}"))
}

fn rand_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000)
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// Another instance's write, in flight: a transaction holding a position
/// handed out the way the store hands them out, not yet committed.
struct InFlight {
    writer: Client,
    pos: i64,
}

async fn start_foreign_write(url: &str) -> InFlight {
    let writer = connect(url).await;
    writer.batch_execute("BEGIN").await.unwrap();
    let xid: String = writer
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .unwrap()
        .get(0);
    let allocator = connect(url).await;
    let pos: i64 = allocator
        .query_one(
            "WITH h AS (UPDATE stream_head SET pos = pos + 1 RETURNING pos) \
             INSERT INTO stream_pending (pos, xid) SELECT pos, $1 FROM h RETURNING pos",
            &[&xid],
        )
        .await
        .unwrap()
        .get(0);
    InFlight { writer, pos }
}

impl InFlight {
    /// Commits account data at the held position, as the store would.
    async fn commit(self, user: &str) {
        let w = &self.writer;
        w.execute(
            "INSERT INTO account_data (user_id, room_id, event_type, content, stream_pos) \
             VALUES ($1, '', 'test.foreign', '{}', $2)",
            &[&user, &self.pos],
        )
        .await
        .unwrap();
        w.execute("DELETE FROM stream_pending WHERE pos = $1", &[&self.pos])
            .await
            .unwrap();
        w.batch_execute("SELECT pg_notify('matrix_membership_stream', ''); COMMIT")
            .await
            .unwrap();
    }
}

async fn changed_types(store: &PgStore, user: &UserId, after: u64) -> Vec<String> {
    store
        .account_data_changes(user, after, u64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.event_type)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_that_commits_after_a_higher_one_is_never_skipped() {
    let Some(url) = fresh_database().await else { return };
    let store = Arc::new(PgStore::open(&url, 4).unwrap());
    let user = UserId::parse("@reader:localhost").unwrap();
    let before = store
        .set_account_data(&user, None, "test.before", &json!({}))
        .await
        .unwrap();

    let foreign = start_foreign_write(&url).await;
    let held = foreign.pos as u64;
    let own = {
        let (store, user) = (store.clone(), user.clone());
        tokio::spawn(async move { store.set_account_data(&user, None, "test.own", &json!({})).await })
    };
    // Several polls and the own write's notification go by meanwhile.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        store.durable_pos() < held,
        "the stream moved to {} past position {held}, which is still being written",
        store.durable_pos()
    );
    assert!(
        changed_types(&store, &user, before).await.is_empty(),
        "a read showed a change above a position still being written"
    );
    assert!(
        !own.is_finished(),
        "the own write answered before the stream could show it"
    );

    foreign.commit(user.as_str()).await;
    let own_pos = tokio::time::timeout(Duration::from_secs(5), own)
        .await
        .expect("the own write answers once the lower position commits")
        .unwrap()
        .unwrap();
    assert!(own_pos > held);
    assert!(store.durable_pos() >= own_pos);
    assert_eq!(changed_types(&store, &user, before).await, ["test.foreign", "test.own"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_whose_writer_died_stops_holding_the_stream_back() {
    let Some(url) = fresh_database().await else { return };
    let store = Arc::new(PgStore::open(&url, 4).unwrap());
    let user = UserId::parse("@reader:localhost").unwrap();
    let before = store.durable_pos();

    let foreign = start_foreign_write(&url).await;
    let own = {
        let (store, user) = (store.clone(), user.clone());
        tokio::spawn(async move { store.set_account_data(&user, None, "test.own", &json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(store.durable_pos() < foreign.pos as u64);
    // The other instance is killed: its connection goes, its transaction aborts.
    let started = Instant::now();
    drop(foreign);
    let own_pos = tokio::time::timeout(Duration::from_secs(5), own)
        .await
        .expect("the dead writer's position is swept")
        .unwrap()
        .unwrap();
    eprintln!("the stream moved on {:?} after the writer died", started.elapsed());
    assert!(store.durable_pos() >= own_pos);
    assert_eq!(changed_types(&store, &user, before).await, ["test.own"]);
}
