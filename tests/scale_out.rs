//! Several instances on one PostgreSQL database: membership changes to a room
//! are serialized across them, a long poll on one wakes for a change made
//! through the other, and a SIGKILLed instance loses no acknowledged write
//! while the other keeps serving. PostgreSQL only: on sled each test says it
//! was skipped and returns.

mod common;

use common::{TestServer, User};
use matrix_membership::generated::api::*;
use matrix_membership::generated::client::Client;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A fresh database for a pair of instances, or `None` (and a message) on sled.
fn shared_database() -> Option<String> {
    let url = common::fresh_database();
    if url.is_none() {
        eprintln!("skipped on sled: two instances need one PostgreSQL database; set MM_TEST_POSTGRES");
    }
    url
}

/// Two in-process instances on one database.
async fn two_instances(url: &str) -> (TestServer, TestServer) {
    let a = common::start_on_database(url, &["--no-rate-limits"]).await;
    let b = common::start_on_database(url, &["--no-rate-limits"]).await;
    (a, b)
}

/// The same user, through another instance (tokens live in the database).
fn through(server: &TestServer, user: &User) -> User {
    User {
        id: user.id.clone(),
        client: server
            .client()
            .with_access_token(user.client.access_token().unwrap().to_string()),
    }
}

fn change(user_id: &str) -> models::MembershipChange {
    models::MembershipChange {
        user_id: user_id.to_string(),
        reason: None,
    }
}

/// Every membership in the room as (user, membership), sorted.
async fn memberships(client: &Client, room: &str) -> Vec<(String, String)> {
    match client.get_members(room, None, None, None).await.unwrap() {
        GetMembersResponse::Ok(ok) => {
            let mut out: Vec<(String, String)> = ok
                .chunk
                .into_iter()
                .map(|e| {
                    let m = e.content.get("membership").and_then(|m| m.as_str()).unwrap_or("");
                    (e.state_key.unwrap_or_default(), m.to_string())
                })
                .collect();
            out.sort();
            out
        }
        other => panic!("members: {other:?}"),
    }
}

/// The room's whole timeline, oldest first, as (event id, type, state key, membership).
async fn timeline(client: &Client, room: &str) -> Vec<(String, String, String, String)> {
    let mut events = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let page = match client
            .get_room_events(room, from.as_deref(), None, "b", Some(100), None)
            .await
            .unwrap()
        {
            GetRoomEventsResponse::Ok(page) => page,
            other => panic!("messages: {other:?}"),
        };
        let done = page.chunk.is_empty() || page.end.is_none();
        for e in page.chunk {
            let m = e.content.get("membership").and_then(|m| m.as_str()).unwrap_or("");
            events.push((e.event_id, e.r#type, e.state_key.unwrap_or_default(), m.to_string()));
        }
        if done {
            break;
        }
        from = page.end;
    }
    events.reverse();
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_and_a_ban_sent_at_once_through_two_instances_end_consistent() {
    let Some(url) = shared_database() else { return };
    let (a, b) = two_instances(&url).await;
    let alice = a.register("alice").await;
    let mut joins_accepted = 0;
    for round in 0..30 {
        let room = alice.create_room(Preset::PublicChat).await;
        let bob = b.register(&format!("bob{round}")).await;
        // The ban through A, the join through B, at the same moment.
        let ban_bob = change(&bob.id);
        let (join, ban) = tokio::join!(
            bob.client.post_rooms_room_id_join(&room, None),
            alice.client.ban(&room, &ban_bob)
        );
        let join = join.unwrap().status();
        assert_eq!(ban.unwrap().status(), 200, "round {round}: the ban");
        assert!(join == 200 || join == 403, "round {round}: the join got {join}");
        joins_accepted += usize::from(join == 200);

        let on_a = memberships(&alice.client, &room).await;
        let on_b = memberships(&through(&b, &alice).client, &room).await;
        assert_eq!(on_a, on_b, "round {round}: the instances disagree on the members");
        let expected = vec![
            (alice.id.clone(), "join".to_string()),
            (bob.id.clone(), "ban".to_string()),
        ];
        assert_eq!(
            on_a, expected,
            "round {round}: the ban, the last accepted change, holds"
        );

        let order_a = timeline(&alice.client, &room).await;
        let order_b = timeline(&through(&b, &alice).client, &room).await;
        assert_eq!(
            order_a, order_b,
            "round {round}: the instances order the events differently"
        );
        let bobs: Vec<&str> = order_a
            .iter()
            .filter(|(_, ty, key, _)| ty == "m.room.member" && *key == bob.id)
            .map(|(_, _, _, m)| m.as_str())
            .collect();
        let want: &[&str] = if join == 200 { &["join", "ban"] } else { &["ban"] };
        assert_eq!(
            bobs, want,
            "round {round}: bob's memberships in order (join answered {join})"
        );
    }
    eprintln!("join accepted before the ban in {joins_accepted} of 30 rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_one_instance_returns_the_invite_made_through_the_other() {
    let Some(url) = shared_database() else { return };
    let (a, b) = two_instances(&url).await;
    let alice = b.register("alice").await;
    let bob = a.register("bob").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    let since = match bob.client.sync(None, Some(0), None, None, None).await.unwrap() {
        SyncResponse::Ok(ok) => ok.next_batch,
        other => panic!("{other:?}"),
    };
    let client = bob.client.clone();
    let since_in_poll = since.clone();
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let resp = client
            .sync(Some(&since_in_poll), Some(30_000), None, None, None)
            .await
            .unwrap();
        (resp, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "the long poll returned before there was anything to return"
    );
    let invite = models::PostRoomsRoomIdInviteBody {
        user_id: Some(bob.id.clone()),
        reason: None,
        id_server: None,
        id_access_token: None,
        medium: None,
        address: None,
    };
    assert_eq!(
        alice
            .client
            .post_rooms_room_id_invite(&room, &invite)
            .await
            .unwrap()
            .status(),
        200
    );
    let (resp, waited) = waiting.await.unwrap();
    eprintln!("the long poll on A returned {waited:?} after it began, 300 ms of it before the invite through B");
    assert!(
        waited < Duration::from_secs(5),
        "the long poll waited {waited:?}: no wake-up across instances"
    );
    match resp {
        SyncResponse::Ok(ok) => {
            assert!(ok.rooms.invite.contains_key(&room), "{:?}", ok.rooms);
            assert_ne!(ok.next_batch, since);
        }
        other => panic!("{other:?}"),
    }
}

/// A server process on one database.
struct Process {
    child: Child,
    base_url: String,
    _data: tempfile::TempDir,
}

fn spawn(database_url: &str) -> Process {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_matrix-membership"))
        .args(["--bind", "127.0.0.1:0", "--no-rate-limits", "--data-dir"])
        .arg(data.path())
        .args(["--database-url", database_url])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base_url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in the start-up line {line:?}"))
        .to_string();
    Process {
        child,
        base_url,
        _data: data,
    }
}

impl Process {
    fn client(&self) -> Client {
        common::checked_client(&self.base_url, Default::default())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn message(text: &str) -> models::JsonObject {
    let mut body = models::JsonObject::new();
    body.insert("msgtype".into(), "m.text".into());
    body.insert("body".into(), text.into());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_of_one_instance_loses_no_acknowledged_write_and_the_other_keeps_serving() {
    let Some(url) = shared_database() else { return };
    let mut a = spawn(&url);
    let b = spawn(&url);
    let alice = common::register_on(&a.client(), "alice").await;
    let token = alice.access_token().unwrap().to_string();
    let room = match alice.create_room(&common::room_request()).await.unwrap() {
        CreateRoomResponse::Ok(ok) => ok.room_id,
        other => panic!("{other:?}"),
    };
    // Writers on A, each recording what A acknowledged, until A is gone.
    let acked: Arc<Mutex<Vec<String>>> = Default::default();
    let mut writers = Vec::new();
    for writer in 0..3 {
        let (alice, room, acked) = (alice.clone(), room.clone(), acked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let txn = format!("w{writer}-{i}");
                match alice.send_message(&room, "m.room.message", &txn, &message(&txn)).await {
                    Ok(SendMessageResponse::Ok(ok)) => acked.lock().unwrap().push(ok.event_id),
                    Ok(other) => panic!("A refused a message: {other:?}"),
                    Err(_) => break, // A was killed under this request: not acknowledged
                }
            }
        }));
    }
    let began = Instant::now();
    while acked.lock().unwrap().len() < 30 {
        assert!(began.elapsed() < Duration::from_secs(60), "A acknowledged too little");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.child.kill().unwrap(); // SIGKILL, with writes in flight
    a.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let alice_b = b.client().with_access_token(token);
    let seen: std::collections::HashSet<String> =
        timeline(&alice_b, &room).await.into_iter().map(|(id, ..)| id).collect();
    let lost: Vec<&String> = acked.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {lost:?}",
        lost.len(),
        acked.len()
    );
    eprintln!("{} acknowledged writes through A, all visible through B", acked.len());

    // B keeps serving: a new write, and a new account.
    match alice_b
        .send_message(&room, "m.room.message", "after-the-kill", &message("still here"))
        .await
        .unwrap()
    {
        SendMessageResponse::Ok(_) => {}
        other => panic!("B refused a write after A died: {other:?}"),
    }
    let bob = common::register_on(&b.client(), "bob").await;
    assert_eq!(
        bob.post_rooms_room_id_join(&room, None).await.unwrap().status(),
        403,
        "a private room"
    );
}
