//! What is accepted can always be served: events at every size limit are
//! written and read back through every read endpoint (and after a restart);
//! one past a limit is refused and writes nothing.

mod common;

use common::{TestServer, User};
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use matrix_membership::membership::limits::{self, MAX_CONTENT_DEPTH, MAX_EVENT_BYTES, MAX_ID_BYTES};
use serde_json::{json, Map, Value};

fn nested(levels: usize) -> Map<String, Value> {
    let mut v = json!("leaf");
    for _ in 1..levels {
        v = json!({ "n": v });
    }
    json!({ "n": v }).as_object().unwrap().clone()
}

/// The longest `body` a message of `user` in `room` may carry, found with
/// the gate's own measure so the test tracks the rule, not a copy of it.
fn longest_body(room: &str, user: &str, event_type: &str) -> usize {
    let fits = |n: usize| {
        let content = json!({ "body": "x".repeat(n) }).as_object().unwrap().clone();
        limits::check_event(room, user, event_type, None, &content).is_ok()
    };
    let (mut lo, mut hi) = (0, MAX_EVENT_BYTES);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid
        } else {
            hi = mid - 1
        }
    }
    lo
}

/// Reads the room back through every read endpoint; each must answer 200
/// and parse (the typed client decodes with serde_json's own depth limit).
async fn read_everything(alice: &User, room: &str, expect_events: usize) {
    let c = &alice.client;
    match c
        .sync(None, None, Some(r#"{"room":{"timeline":{"limit":50}}}"#), None, None)
        .await
        .unwrap()
    {
        SyncResponse::Ok(sync) => {
            let joined = &sync.rooms.join[room];
            assert!(joined.timeline.events.len() + joined.state.events.len() >= expect_events);
        }
        other => panic!("sync: {other:?}"),
    }
    assert!(matches!(
        c.initial_sync(Some(50)).await.unwrap(),
        InitialSyncResponse::Ok(_)
    ));
    assert!(matches!(
        c.room_initial_sync(room).await.unwrap(),
        RoomInitialSyncResponse::Ok(_)
    ));
    match c.get_room_events(room, None, None, "b", Some(50), None).await.unwrap() {
        GetRoomEventsResponse::Ok(page) => assert!(page.chunk.len() >= expect_events),
        other => panic!("messages: {other:?}"),
    }
    assert!(matches!(
        c.get_room_state(room).await.unwrap(),
        GetRoomStateResponse::Ok(_)
    ));
    assert!(matches!(
        c.get_members(room, None, None, None).await.unwrap(),
        GetMembersResponse::Ok(_)
    ));
    assert!(matches!(
        c.get_joined_members(room).await.unwrap(),
        GetJoinedMembersResponse::Ok(_)
    ));
}

fn status_of_send(r: &SendMessageResponse) -> u16 {
    match r {
        SendMessageResponse::Ok(_) => 200,
        SendMessageResponse::BadRequest(_) => 400,
        SendMessageResponse::PayloadTooLarge(_) => 413,
        other => panic!("{other:?}"),
    }
}

fn status_of_state(r: &SetRoomStateEventResponse) -> u16 {
    match r {
        SetRoomStateEventResponse::Ok(_) => 200,
        SetRoomStateEventResponse::BadRequest(_) => 400,
        SetRoomStateEventResponse::PayloadTooLarge(_) => 413,
        other => panic!("{other:?}"),
    }
}

async fn private_room(s: &TestServer) -> (User, String) {
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    (alice, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_at_every_limit_are_served_and_one_past_is_refused() {
    let s = common::start_with(&["--no-rate-limits", "--body-limit", "70000"]).await;
    let (alice, room) = private_room(&s).await;
    let c = &alice.client;
    let mut written = 0;

    // Size: the largest event as stored, then one byte more.
    let n = longest_body(&room, &alice.id, "m.room.message");
    let at = json!({ "body": "x".repeat(n) }).as_object().unwrap().clone();
    assert_eq!(
        status_of_send(&c.send_message(&room, "m.room.message", "size", &at).await.unwrap()),
        200
    );
    written += 1;
    let past = json!({ "body": "x".repeat(n + 1) }).as_object().unwrap().clone();
    let pos = s.service_pos();
    let r = c.send_message(&room, "m.room.message", "size+1", &past).await.unwrap();
    assert!(
        matches!(r, SendMessageResponse::PayloadTooLarge(ref e) if e.errcode == "M_TOO_LARGE"),
        "{r:?}"
    );
    assert_eq!(s.service_pos(), pos, "a refused event wrote nothing");

    // Nesting: the deepest content, then one level more.
    let r = c
        .send_message(&room, "m.deep", "deep", &nested(MAX_CONTENT_DEPTH))
        .await
        .unwrap();
    assert_eq!(status_of_send(&r), 200);
    written += 1;
    let r = c
        .send_message(&room, "m.deep", "deeper", &nested(MAX_CONTENT_DEPTH + 1))
        .await
        .unwrap();
    assert!(
        matches!(r, SendMessageResponse::PayloadTooLarge(ref e) if e.errcode == "M_TOO_LARGE"),
        "{r:?}"
    );
    // Deeper than any parser here would take: refused at the edge, before the gate.
    let r = c.send_message(&room, "m.deep", "deepest", &nested(127)).await.unwrap();
    assert!(matches!(status_of_send(&r), 400 | 413), "{r:?}");

    // Event types and state keys: 255 bytes, then 256 (refused by the spec's
    // maxLength at the edge or by the gate; either way nothing is written).
    let t255 = "t".repeat(MAX_ID_BYTES);
    let r = c.send_message(&room, &t255, "type", &Map::new()).await.unwrap();
    assert_eq!(status_of_send(&r), 200);
    written += 1;
    let r = c
        .send_message(&room, &"t".repeat(MAX_ID_BYTES + 1), "type+1", &Map::new())
        .await
        .unwrap();
    assert!(matches!(status_of_send(&r), 400 | 413), "{r:?}");
    let k255 = "k".repeat(MAX_ID_BYTES);
    let r = c
        .set_room_state_event(&room, "m.custom", &k255, &Map::new())
        .await
        .unwrap();
    assert_eq!(status_of_state(&r), 200);
    written += 1;
    let r = c
        .set_room_state_event(&room, "m.custom", &"k".repeat(MAX_ID_BYTES + 1), &Map::new())
        .await
        .unwrap();
    assert!(matches!(status_of_state(&r), 400 | 413), "{r:?}");
    let deep_state = c
        .set_room_state_event(&room, "m.deep", "", &nested(MAX_CONTENT_DEPTH))
        .await
        .unwrap();
    assert_eq!(status_of_state(&deep_state), 200);
    written += 1;

    read_everything(&alice, &room, written).await;
    match c.get_room_state_event(&room, "m.custom", &k255).await.unwrap() {
        GetRoomStateEventResponse::Ok(_) => {}
        other => panic!("{other:?}"),
    }
    // Still served after a restart.
    let s = s.restart().await;
    read_everything(&alice, &room, written).await;
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_a_room_cannot_break_it_for_a_newcomer() {
    let s = common::start().await;
    let (alice, room) = private_room(&s).await;
    let bob = s.register("bob").await;
    let body = models::PostRoomsRoomIdInviteBody {
        user_id: Some(bob.id.clone()),
        reason: None,
        ..Default::default()
    };
    let _ = alice.client.post_rooms_room_id_invite(&room, &body).await.unwrap();
    bob.join(&room).await;
    // Bob (level 0) sends the deepest content he may; alice's and a newcomer's reads still work.
    let r = bob
        .client
        .send_message(&room, "m.room.message", "t", &nested(MAX_CONTENT_DEPTH))
        .await
        .unwrap();
    assert_eq!(status_of_send(&r), 200);
    read_everything(&alice, &room, 2).await;
    let carol = s.register("carol").await;
    let body = models::PostRoomsRoomIdInviteBody {
        user_id: Some(carol.id.clone()),
        reason: None,
        ..Default::default()
    };
    let _ = alice.client.post_rooms_room_id_invite(&room, &body).await.unwrap();
    carol.join(&room).await;
    read_everything(&carol, &room, 2).await;
}

/// U+0000 round-trips inside content, and is refused (writing nothing) where
/// it would be a key: an event type or state key, a path segment, a device
/// id, a display name. PostgreSQL `text` cannot hold it, so without the
/// refusal the PostgreSQL half of this test answers 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn u0000_is_kept_in_content_and_refused_in_keys() {
    let s = common::start_with(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let auth = format!("Bearer {}", alice.client.access_token().unwrap());
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let v3 = "/_matrix/client/v3";

    let create = json!({"initial_state": [
        {"type": "m.nul", "state_key": "", "content": {"k\u{0}": "v\u{0}"}}
    ]});
    let r = s
        .raw(
            "POST",
            &format!("{v3}/createRoom"),
            &headers,
            create.to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let room = r.json["room_id"].as_str().unwrap().to_string();
    let room_path = format!("{v3}/rooms/{}", room.replace('!', "%21").replace(':', "%3A"));
    let r = s.raw("GET", &format!("{room_path}/state/m.nul/"), &headers, b"").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json, json!({"k\u{0}": "v\u{0}"}));

    let pos = s.service_pos();
    for (type_, key) in [("m.\u{0}", ""), ("m.nul", "\u{0}")] {
        let create = json!({"initial_state": [{"type": type_, "state_key": key, "content": {}}]});
        s.raw(
            "POST",
            &format!("{v3}/createRoom"),
            &headers,
            create.to_string().as_bytes(),
        )
        .await
        .assert_error(400, "M_BAD_JSON");
    }
    for path in [
        format!("{room_path}/state/m.%00/"),
        format!("{room_path}/send/m.nul/t%00"),
        format!("{v3}/user/{}/account_data/m.%00", alice.id.replace(':', "%3A")),
    ] {
        s.raw("PUT", &path, &headers, b"{}")
            .await
            .assert_error(400, "M_INVALID_PARAM");
    }
    let name = json!({"displayname": "a\u{0}"});
    let profile = format!("{v3}/profile/{}/displayname", alice.id.replace(':', "%3A"));
    s.raw("PUT", &profile, &headers, name.to_string().as_bytes())
        .await
        .assert_error(400, "M_UNKNOWN");
    let login = json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "alice-password",
        "device_id": "d\u{0}",
    });
    s.raw(
        "POST",
        &format!("{v3}/login"),
        &[("Content-Type", "application/json")],
        login.to_string().as_bytes(),
    )
    .await
    .assert_error(400, "M_INVALID_PARAM");
    assert_eq!(s.service_pos(), pos, "a refused request wrote nothing");
    let r = s.raw("GET", &profile, &[], b"").await;
    assert_eq!(r.json["displayname"], json!("alice"));
}

/// A display name is at most 256 characters (not bytes), as in Synapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_display_name_is_at_most_256_characters() {
    let s = common::start_with(&["--no-rate-limits"]).await;
    let alice = s.register("alice").await;
    let auth = format!("Bearer {}", alice.client.access_token().unwrap());
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let profile = format!(
        "/_matrix/client/v3/profile/{}/displayname",
        alice.id.replace(':', "%3A")
    );
    let at = "é".repeat(256);
    let r = s
        .raw(
            "PUT",
            &profile,
            &headers,
            json!({ "displayname": at }).to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let past = json!({ "displayname": "é".repeat(257) });
    s.raw("PUT", &profile, &headers, past.to_string().as_bytes())
        .await
        .assert_error(400, "M_UNKNOWN");
    let r = s.raw("GET", &profile, &[], b"").await;
    assert_eq!(r.json["displayname"], json!(at));
}
