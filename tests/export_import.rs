//! `export` and `import`: an export imported into a new folder exports
//! byte for byte the same, and a server on the imported folder serves the
//! same accounts, tokens, rooms, history and filters.

mod common;
mod operator;

use matrix_membership::generated::api::*;
use matrix_membership::generated::client::Client;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use operator::{admin, admin_ok, create_room, login, members, spawn, token_works};
use serde_json::json;
use std::path::Path;

fn object(value: serde_json::Value) -> models::JsonObject {
    value.as_object().unwrap().clone()
}

async fn send(client: &Client, room: &str, txn: &str, body: &str) -> String {
    match client
        .send_message(
            room,
            "m.room.message",
            txn,
            &object(json!({"msgtype": "m.text", "body": body})),
        )
        .await
        .unwrap()
    {
        SendMessageResponse::Ok(ok) => ok.event_id,
        other => panic!("send: {other:?}"),
    }
}

/// Everything a client can see of a room: its members and its whole history.
async fn room_view(client: &Client, room: &str) -> (Vec<(String, String)>, Vec<String>) {
    let GetRoomEventsResponse::Ok(page) = client
        .get_room_events(room, None, None, "b", Some(1000), None)
        .await
        .unwrap()
    else {
        panic!("messages")
    };
    (
        members(client, room).await,
        page.chunk.into_iter().map(|e| e.event_id).collect(),
    )
}

async fn joined_rooms(client: &Client) -> Vec<String> {
    let SyncResponse::Ok(sync) = client.sync(None, Some(0), None, None, None).await.unwrap() else {
        panic!("sync")
    };
    sync.rooms.join.into_keys().collect()
}

/// A data folder with a bit of everything the store holds.
async fn populate(dir: &Path) -> (String, String, String) {
    admin_ok(
        dir,
        &["user", "create", "alice", "--password-stdin", "--admin"],
        "alice-pw\n",
    );
    admin_ok(dir, &["user", "create", "bob", "--password-stdin"], "bob-pw\n");
    admin_ok(dir, &["user", "create", "gone", "--password-stdin"], "gone-pw\n");
    let server = spawn(dir);
    let alice = login(&server.client(), "alice", "alice-pw").await.unwrap();
    let bob = login(&server.client(), "bob", "bob-pw").await.unwrap();
    let public = create_room(&alice, "square", "Town Square", Preset::PublicChat).await;
    let private = create_room(&bob, "den", "Den", Preset::PrivateChat).await;
    assert!(matches!(
        bob.post_rooms_room_id_join(&public, None).await.unwrap(),
        PostRoomsRoomIdJoinResponse::Ok(_)
    ));
    send(&alice, &public, "t1", "hello").await;
    send(&bob, &public, "t1", "hi alice").await;
    let alias = models::SetRoomAliasBody {
        room_id: public.clone(),
    };
    assert!(matches!(
        alice.set_room_alias("#plaza:localhost", &alias).await.unwrap(),
        SetRoomAliasResponse::Ok(_)
    ));
    let name = models::SetDisplayNameBody {
        displayname: Some("Alice A.".into()),
    };
    assert!(matches!(
        alice.set_display_name("@alice:localhost", &name).await.unwrap(),
        SetDisplayNameResponse::Ok(_)
    ));
    let filter = object(json!({"room": {"timeline": {"limit": 5}}}));
    let DefineFilterResponse::Ok(defined) = alice.define_filter("@alice:localhost", &filter).await.unwrap() else {
        panic!("filter")
    };
    let colour = object(json!({"colour": "teal"}));
    assert_eq!(
        alice
            .set_account_data("@alice:localhost", "org.example.colour", &colour)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        alice
            .set_room_account_data("@alice:localhost", &public, "m.tag", &object(json!({"tags": {}})))
            .await
            .unwrap()
            .status(),
        200
    );
    let left = create_room(&alice, "attic", "Attic", Preset::PublicChat).await;
    assert_eq!(bob.post_rooms_room_id_join(&left, None).await.unwrap().status(), 200);
    assert_eq!(bob.leave_room(&left, None).await.unwrap().status(), 200);
    assert_eq!(bob.forget_room(&left).await.unwrap().status(), 200);
    let token = bob.access_token().unwrap().to_string();
    server.stop();
    admin_ok(dir, &["user", "deactivate", "gone"], "");
    (public, private, format!("{token} {}", defined.filter_id))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_export_exports_identically_and_serves_the_same_state() {
    let original = tempfile::tempdir().unwrap();
    let (public, private, extra) = populate(original.path()).await;
    let (bob_token, filter_id) = extra.split_once(' ').unwrap();
    let files = tempfile::tempdir().unwrap();
    let first = files.path().join("first.jsonl");
    let out = admin_ok(original.path(), &["export", first.to_str().unwrap()], "");
    assert!(out.contains("exported"), "{out}");

    let text = std::fs::read_to_string(&first).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("header"));
    assert_eq!(kinds.last().map(String::as_str), Some("end"));
    for kind in [
        "account",
        "token",
        "room",
        "alias",
        "event",
        "txn",
        "filter",
        "account_data",
        "forgotten",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no {kind} record in\n{text}");
    }
    assert!(text.contains(r#""displayname":"Alice A.""#) && text.contains(r#""admin":true"#));
    assert!(text.contains(r#""deactivated":true"#) && text.contains("$argon2id$"));

    let imported = tempfile::tempdir().unwrap();
    let target = imported.path().join("data");
    let out = admin_ok(&target, &["import", first.to_str().unwrap()], "");
    assert!(out.contains(&format!("imported {} records", kinds.len())), "{out}");
    let second = files.path().join("second.jsonl");
    admin_ok(&target, &["export", second.to_str().unwrap()], "");
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap(),
        "export → import → export changed the file"
    );

    let before = spawn(original.path());
    let alice_before = login(&before.client(), "alice", "alice-pw").await.unwrap();
    let view_before = (
        room_view(&alice_before, &public).await,
        joined_rooms(&alice_before).await,
    );
    before.stop();

    let after = spawn(&target);
    let alice = login(&after.client(), "alice", "alice-pw")
        .await
        .expect("the old password works");
    assert_eq!(
        (room_view(&alice, &public).await, joined_rooms(&alice).await),
        view_before
    );
    let bob = after.client().with_access_token(bob_token);
    assert!(token_works(&bob).await, "tokens survive the round trip");
    assert!(joined_rooms(&bob).await.contains(&private));
    assert_eq!(
        login(&after.client(), "gone", "gone-pw").await.err(),
        Some((403, "M_USER_DEACTIVATED".into()))
    );
    // A repeated transaction id is still recognised, and new writes continue the stream.
    let repeat = send(&alice, &public, "t1", "hello").await;
    assert!(room_view(&alice, &public).await.1.contains(&repeat));
    let GetFilterResponse::Ok(_) = alice.get_filter("@alice:localhost", filter_id).await.unwrap() else {
        panic!("the filter survives")
    };
    let GetAccountDataResponse::Ok(colour) = alice
        .get_account_data("@alice:localhost", "org.example.colour")
        .await
        .unwrap()
    else {
        panic!("the account data survives")
    };
    assert_eq!(colour["colour"], "teal");
    let SyncResponse::Ok(synced) = alice.sync(None, None, None, None, None).await.unwrap() else {
        panic!("sync")
    };
    assert_eq!(
        synced.account_data.events.len(),
        1,
        "imported account data is delivered by /sync"
    );
    assert_eq!(synced.rooms.join[&public].account_data.events[0]["type"], "m.tag");
    let newer = object(json!({"room": {"timeline": {"limit": 7}}}));
    let DefineFilterResponse::Ok(defined) = alice.define_filter("@alice:localhost", &newer).await.unwrap() else {
        panic!("filter")
    };
    assert_ne!(
        defined.filter_id, filter_id,
        "a new filter must not take an imported id"
    );
    let fresh = send(&alice, &public, "t2", "after the import").await;
    let (_, history) = room_view(&alice, &public).await;
    assert_eq!(history.first(), Some(&fresh), "the new event is the newest");
    assert_eq!(history.len(), view_before.0 .1.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_a_folder_with_data_and_a_truncated_file() {
    let original = tempfile::tempdir().unwrap();
    admin_ok(
        original.path(),
        &["user", "create", "alice", "--password-stdin"],
        "pw\n",
    );
    let files = tempfile::tempdir().unwrap();
    let export = files.path().join("all.jsonl");
    admin_ok(original.path(), &["export", export.to_str().unwrap()], "");

    let out = admin(original.path(), &["import", export.to_str().unwrap()], "");
    assert!(!out.ok && out.stderr.contains("is not empty"), "{}", out.stderr);

    let text = std::fs::read_to_string(&export).unwrap();
    let truncated = files.path().join("truncated.jsonl");
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&truncated, lines[..lines.len() - 1].join("\n")).unwrap();
    let target = files.path().join("new");
    let out = admin(&target, &["import", truncated.to_str().unwrap()], "");
    assert!(!out.ok && out.stderr.contains("truncated"), "{}", out.stderr);
    assert!(!target.exists(), "a refused import leaves nothing behind");

    let out = admin(original.path(), &["export", export.to_str().unwrap()], "");
    assert!(!out.ok && out.stderr.contains("exists already"), "{}", out.stderr);
}

/// An import applies its records in batches of 1,000: a file longer than
/// one batch (here about 1,200 records) must import whole. Taking the first
/// full batch once panicked ("already borrowed"), which no shorter file showed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_longer_than_one_import_batch_round_trips() {
    let original = tempfile::tempdir().unwrap();
    admin_ok(
        original.path(),
        &["user", "create", "alice", "--password-stdin"],
        "alice-pw\n",
    );
    let server = spawn(original.path());
    let alice = login(&server.client(), "alice", "alice-pw").await.unwrap();
    let room = create_room(&alice, "long", "Long", Preset::PublicChat).await;
    for round in 0..40 {
        futures::future::join_all((0..30).map(|i| {
            let (alice, room) = (&alice, &room);
            async move { send(alice, room, &format!("t{round}-{i}"), "line").await }
        }))
        .await;
    }
    server.stop();
    let files = tempfile::tempdir().unwrap();
    let first = files.path().join("first.jsonl");
    admin_ok(original.path(), &["export", first.to_str().unwrap()], "");
    let records = std::fs::read_to_string(&first).unwrap().lines().count();
    assert!(records > 1000, "only {records} records: not longer than one batch");
    let imported = tempfile::tempdir().unwrap();
    let target = imported.path().join("data");
    let out = admin_ok(&target, &["import", first.to_str().unwrap()], "");
    assert!(out.contains(&format!("imported {records} records")), "{out}");
    let second = files.path().join("second.jsonl");
    admin_ok(&target, &["export", second.to_str().unwrap()], "");
    assert_eq!(std::fs::read(&first).unwrap(), std::fs::read(&second).unwrap());
}
