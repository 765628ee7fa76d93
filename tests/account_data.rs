//! Account data (global and per room): who may read and write it, what a
//! body must be, and how `/sync` delivers it, through the generated client.

mod common;

use common::User;
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn obj(v: Value) -> models::JsonObject {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// A response's status and errcode ("" on success).
macro_rules! outcome {
    ($resp:expr) => {{
        let r = $resp;
        let body = r.to_json().unwrap();
        (r.status(), body["errcode"].as_str().unwrap_or("").to_string())
    }};
}

async fn sync(user: &User, since: Option<&str>, timeout: Option<i64>) -> models::SyncResponse {
    match user.client.sync(since, timeout, None, None, None).await.unwrap() {
        SyncResponse::Ok(ok) => ok,
        other => panic!("sync failed: {other:?}"),
    }
}

async fn put(user: &User, event_type: &str, content: Value) {
    let r = user
        .client
        .set_account_data(&user.id, event_type, &obj(content))
        .await
        .unwrap();
    assert_eq!(outcome!(r), (200, String::new()));
}

async fn put_room(user: &User, room: &str, event_type: &str, content: Value) {
    let r = user
        .client
        .set_room_account_data(&user.id, room, event_type, &obj(content))
        .await
        .unwrap();
    assert_eq!(outcome!(r), (200, String::new()));
}

/// The (type, content) pairs of an account data list.
fn entries(list: &models::EventList) -> Vec<(String, Value)> {
    list.events
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_string(), e["content"].clone()))
        .collect()
}

#[tokio::test]
async fn account_data_is_stored_and_read_back_globally_and_per_room_separately() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    put(&alice, "org.example.colour", json!({"colour": "teal"})).await;
    put_room(&alice, &room, "org.example.colour", json!({"colour": "red"})).await;

    match alice
        .client
        .get_account_data(&alice.id, "org.example.colour")
        .await
        .unwrap()
    {
        GetAccountDataResponse::Ok(c) => assert_eq!(Value::Object(c), json!({"colour": "teal"})),
        other => panic!("expected the global entry, got {other:?}"),
    }
    match alice
        .client
        .get_room_account_data(&alice.id, &room, "org.example.colour")
        .await
        .unwrap()
    {
        GetRoomAccountDataResponse::Ok(c) => assert_eq!(Value::Object(c), json!({"colour": "red"})),
        other => panic!("expected the room entry, got {other:?}"),
    }
    // A PUT replaces the whole content.
    put(&alice, "org.example.colour", json!({"shade": "dark"})).await;
    let r = alice
        .client
        .get_account_data(&alice.id, "org.example.colour")
        .await
        .unwrap();
    assert_eq!(r.to_json().unwrap(), json!({"shade": "dark"}));
}

#[tokio::test]
async fn unset_account_data_is_not_found() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    put(&alice, "org.example.global.only", json!({"x": 1})).await;
    let r = alice
        .client
        .get_account_data(&alice.id, "org.example.never")
        .await
        .unwrap();
    assert_eq!(outcome!(r), (404, "M_NOT_FOUND".into()));
    // Global data is not room data.
    let r = alice
        .client
        .get_room_account_data(&alice.id, &room, "org.example.global.only")
        .await
        .unwrap();
    assert_eq!(outcome!(r), (404, "M_NOT_FOUND".into()));
}

#[tokio::test]
async fn only_the_owner_may_read_or_write_their_account_data() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    put(&alice, "org.example.secret", json!({"pin": 1234})).await;
    put_room(&alice, &room, "org.example.secret", json!({"pin": 1})).await;

    let forbidden = (403, "M_FORBIDDEN".to_string());
    assert_eq!(
        outcome!(bob
            .client
            .get_account_data(&alice.id, "org.example.secret")
            .await
            .unwrap()),
        forbidden
    );
    assert_eq!(
        outcome!(bob
            .client
            .get_room_account_data(&alice.id, &room, "org.example.secret")
            .await
            .unwrap()),
        forbidden
    );
    let content = obj(json!({"pin": 0}));
    assert_eq!(
        outcome!(bob
            .client
            .set_account_data(&alice.id, "org.example.secret", &content)
            .await
            .unwrap()),
        forbidden
    );
    assert_eq!(
        outcome!(bob
            .client
            .set_room_account_data(&alice.id, &room, "org.example.secret", &content)
            .await
            .unwrap()),
        forbidden
    );
    let r = alice
        .client
        .get_account_data(&alice.id, "org.example.secret")
        .await
        .unwrap();
    assert_eq!(
        r.to_json().unwrap(),
        json!({"pin": 1234}),
        "bob's refused PUT changed nothing"
    );
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let auth = format!("Bearer {}", alice.client.access_token().unwrap());
    let path = format!("/_matrix/client/v3/user/{}/account_data/org.example.x", alice.id);
    for body in [&b"[1, 2]"[..], b"\"text\"", b"42", b"null"] {
        let r = s
            .raw(
                "PUT",
                &path,
                &[("authorization", &auth), ("content-type", "application/json")],
                body,
            )
            .await;
        assert_eq!(
            r.status,
            400,
            "body {}: {}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&r.bytes)
        );
        assert_eq!(r.errcode(), "M_BAD_JSON", "body {}", String::from_utf8_lossy(body));
    }
    let r = s.raw("PUT", &path, &[("authorization", &auth)], b"{not json").await;
    r.assert_error(400, "M_NOT_JSON");
    let r = alice.client.get_account_data(&alice.id, "org.example.x").await.unwrap();
    assert_eq!(outcome!(r), (404, "M_NOT_FOUND".into()), "nothing was stored");
}

#[tokio::test]
async fn the_read_marker_cannot_be_set_as_room_account_data_nor_push_rules_as_global() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    let content = obj(json!({"event_id": "$x"}));
    let r = alice
        .client
        .set_room_account_data(&alice.id, &room, "m.fully_read", &content)
        .await
        .unwrap();
    assert_eq!(outcome!(r), (405, "M_BAD_JSON".into()));
    let r = alice
        .client
        .set_account_data(&alice.id, "m.push_rules", &content)
        .await
        .unwrap();
    assert_eq!(outcome!(r), (400, "M_BAD_JSON".into()));
    // m.fully_read is only refused as room data.
    put(&alice, "m.fully_read", json!({"event_id": "$x"})).await;
}

#[tokio::test]
async fn room_account_data_for_an_unknown_room_is_not_found() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let r = alice
        .client
        .set_room_account_data(&alice.id, "!nowhere:localhost", "org.example.x", &obj(json!({})))
        .await
        .unwrap();
    assert_eq!(outcome!(r), (404, "M_NOT_FOUND".into()));
}

#[tokio::test]
async fn an_initial_sync_delivers_all_account_data_globally_and_in_joined_rooms() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    put(&alice, "org.example.a", json!({"n": 1})).await;
    put(&alice, "org.example.b", json!({"n": 2})).await;
    put_room(&alice, &room, "m.tag", json!({"tags": {"u.work": {}}})).await;

    let first = sync(&alice, None, None).await;
    let mut global = entries(&first.account_data);
    global.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        global,
        vec![
            ("org.example.a".to_string(), json!({"n": 1})),
            ("org.example.b".to_string(), json!({"n": 2}))
        ]
    );
    assert_eq!(
        entries(&first.rooms.join[&room].account_data),
        vec![("m.tag".to_string(), json!({"tags": {"u.work": {}}}))]
    );
}

#[tokio::test]
async fn an_incremental_sync_delivers_only_what_changed_since_its_token() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    put(&alice, "org.example.old", json!({"n": 0})).await;
    let first = sync(&alice, None, None).await;

    put(&alice, "org.example.new", json!({"n": 1})).await;
    put_room(&alice, &room, "org.example.room", json!({"r": true})).await;
    let second = sync(&alice, Some(&first.next_batch), None).await;
    assert_eq!(
        entries(&second.account_data),
        vec![("org.example.new".to_string(), json!({"n": 1}))]
    );
    let joined = &second.rooms.join[&room];
    assert_eq!(
        entries(&joined.account_data),
        vec![("org.example.room".to_string(), json!({"r": true}))]
    );
    assert!(
        joined.timeline.events.is_empty(),
        "no room event happened, only account data"
    );

    // Nothing since: nothing again.
    let third = sync(&alice, Some(&second.next_batch), None).await;
    assert!(third.account_data.events.is_empty());
    assert!(third.rooms.join.is_empty());

    // An entry changed twice in one window is delivered once, with its newest content.
    put(&alice, "org.example.old", json!({"n": 10})).await;
    put(&alice, "org.example.old", json!({"n": 11})).await;
    let fourth = sync(&alice, Some(&third.next_batch), None).await;
    assert_eq!(
        entries(&fourth.account_data),
        vec![("org.example.old".to_string(), json!({"n": 11}))]
    );
}

#[tokio::test]
async fn another_users_account_data_never_reaches_my_sync() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    put(&alice, "org.example.mine", json!({"a": 1})).await;
    put_room(&alice, &room, "org.example.mine", json!({"a": 2})).await;
    let bobs = sync(&bob, None, None).await;
    assert!(bobs.account_data.events.is_empty());
    assert!(bobs.rooms.join[&room].account_data.events.is_empty());
}

#[tokio::test]
async fn a_put_wakes_a_waiting_sync_at_once() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let first = sync(&alice, None, None).await;
    let waiting = {
        let client = alice.client.clone();
        let since = first.next_batch.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client.sync(Some(&since), Some(20_000), None, None, None).await.unwrap();
            (started.elapsed(), r)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.service.waiting_syncs() == 0 {
        assert!(Instant::now() < deadline, "the sync never started waiting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    put(&alice, "org.example.wake", json!({"now": true})).await;
    let (took, r) = waiting.await.unwrap();
    let SyncResponse::Ok(r) = r else {
        panic!("sync failed: {r:?}")
    };
    assert!(
        took < Duration::from_secs(10),
        "the sync waited {took:?} despite the PUT"
    );
    assert_eq!(
        entries(&r.account_data),
        vec![("org.example.wake".to_string(), json!({"now": true}))]
    );
}

#[tokio::test]
async fn account_data_survives_a_restart_and_old_tokens_still_work() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    put(&alice, "org.example.kept", json!({"v": 1})).await;
    let token = sync(&alice, None, None).await.next_batch;
    let s = s.restart().await;
    let alice = User {
        id: alice.id.clone(),
        client: s
            .client()
            .with_access_token(alice.client.access_token().unwrap().to_string()),
    };
    let r = alice
        .client
        .get_account_data(&alice.id, "org.example.kept")
        .await
        .unwrap();
    assert_eq!(r.to_json().unwrap(), json!({"v": 1}));
    put(&alice, "org.example.after", json!({"v": 2})).await;
    let next = sync(&alice, Some(&token), None).await;
    assert_eq!(
        entries(&next.account_data),
        vec![("org.example.after".to_string(), json!({"v": 2}))]
    );
}
