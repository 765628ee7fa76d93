//! Knocking: `POST /knock/{roomIdOrAlias}`, accepted by an invite, turned
//! down by a kick, withdrawn by leaving, and shown in `/sync`.

mod common;
mod gate_steps;

use gate_steps::*;
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knocking_on_a_knock_room_answers_its_id_and_sets_membership_knock() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = room_at(&alice, "10", json!({"join_rule": "knock"})).await;
    match knock(&bob, &room, Some("let me in")).await {
        (200, KnockRoomResponse::Ok(ok)) => assert_eq!(ok.room_id, room),
        other => panic!("{other:?}"),
    }
    let content = member_content(&alice, &room, &bob.id).await;
    assert_eq!(content["membership"], json!("knock"));
    assert_eq!(content["reason"], json!("let me in"));
    // A knocker is not in the room: no messages, no state.
    assert_eq!(
        bob.client.get_room_state(&room).await.unwrap().status(),
        403,
        "a knocker cannot read the room"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knocking_through_an_alias_and_the_v3_path_with_via_works() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let mut req = common::room_request();
    req.room_alias_name = Some("door".into());
    req.room_version = Some("7".into());
    req.initial_state = Some(vec![models::StateEventInput {
        r#type: "m.room.join_rules".into(),
        state_key: Some(String::new()),
        content: object(json!({"join_rule": "knock"})),
    }]);
    let room = alice.create_room_with(&req).await;
    let alias = format!("#door:{}", s.service.server_name());
    let token = format!("Bearer {}", bob.client.access_token().unwrap());
    let path = format!(
        "/_matrix/client/v3/knock/{}?via=elsewhere.example&server_name=elsewhere.example",
        common_encode(&alias)
    );
    let resp = s
        .raw(
            "POST",
            &path,
            &[("Authorization", &token), ("Content-Type", "application/json")],
            b"{}",
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.json);
    assert_eq!(resp.json["room_id"], json!(room));
    assert_eq!(membership(&alice, &room, &bob.id).await, "knock");
}

fn common_encode(s: &str) -> String {
    matrix_membership::generated::client::encode(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knocking_is_forbidden_unless_the_join_rule_is_knock() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let public = alice.create_room(Preset::PublicChat).await;
    let private = alice.create_room(Preset::PrivateChat).await;
    let before = s.service_pos();
    for room in [&public, &private] {
        let (status, resp) = knock(&bob, room, None).await;
        assert_eq!((status, errcode_of(&resp).as_str()), (403, "M_FORBIDDEN"), "{resp:?}");
    }
    assert_eq!(s.service_pos(), before, "a refused knock writes nothing");
    let (status, resp) = knock(&bob, "!nowhere:elsewhere.example", None).await;
    assert_eq!((status, errcode_of(&resp).as_str()), (404, "M_NOT_FOUND"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joined_invited_and_banned_users_cannot_knock() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let room = room_at(&alice, "10", json!({"join_rule": "knock"})).await;
    assert_eq!(invite_status(&alice, &room, &bob).await, 200);
    let ban = models::MembershipChange {
        user_id: carol.id.clone(),
        reason: None,
    };
    assert_eq!(alice.client.ban(&room, &ban).await.unwrap().status(), 200);
    for (who, standing) in [(&alice, "join"), (&bob, "invite"), (&carol, "ban")] {
        let (status, resp) = knock(who, &room, None).await;
        assert_eq!((status, errcode_of(&resp).as_str()), (403, "M_FORBIDDEN"), "{standing}");
        assert!(format!("{resp:?}").contains(standing), "{standing}: {resp:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_accepts_a_knock_and_the_knocker_then_joins() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = room_at(&alice, "10", json!({"join_rule": "knock"})).await;
    assert_eq!(knock(&bob, &room, None).await.0, 200);
    // Knocking alone does not let bob in.
    assert_eq!(join_status(&bob, &room).await, 403);
    assert_eq!(invite_status(&alice, &room, &bob).await, 200);
    assert_eq!(membership(&alice, &room, &bob.id).await, "invite");
    assert_eq!(join_status(&bob, &room).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepting_a_knock_needs_invite_power_and_turning_it_down_needs_kick_power() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let mallory = s.register("mallory").await;
    let bob = s.register("bob").await;
    let room = room_at(&alice, "10", json!({"join_rule": "knock"})).await;
    assert_eq!(invite_status(&alice, &room, &mallory).await, 200);
    assert_eq!(join_status(&mallory, &room).await, 200);
    set_power_levels(
        &alice,
        &room,
        json!({"users": {&alice.id: 100}, "invite": 50, "kick": 50, "state_default": 50}),
    )
    .await;
    assert_eq!(knock(&bob, &room, None).await.0, 200);
    assert_eq!(invite_status(&mallory, &room, &bob).await, 403);
    assert_eq!(kick_status(&mallory, &room, &bob).await, 403);
    assert_eq!(membership(&alice, &room, &bob.id).await, "knock");
    // Alice turns the knock down; bob may knock again afterwards.
    assert_eq!(kick_status(&alice, &room, &bob).await, 200);
    assert_eq!(membership(&alice, &room, &bob.id).await, "leave");
    assert_eq!(knock(&bob, &room, None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_knocker_withdraws_a_knock_by_leaving() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = room_at(&alice, "10", json!({"join_rule": "knock"})).await;
    assert_eq!(knock(&bob, &room, None).await.0, 200);
    assert_eq!(leave_status(&bob, &room).await, 200);
    assert_eq!(membership(&alice, &room, &bob.id).await, "leave");
    // Nothing left to withdraw.
    assert_eq!(leave_status(&bob, &room).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_shows_a_knocked_room_under_knock_with_its_stripped_state_until_answered() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let mut req = common::room_request();
    req.name = Some("Monkeys".into());
    req.initial_state = Some(vec![models::StateEventInput {
        r#type: "m.room.join_rules".into(),
        state_key: Some(String::new()),
        content: object(json!({"join_rule": "knock"})),
    }]);
    let room = alice.create_room_with(&req).await;
    let first = sync(&bob, None).await;
    assert!(first.rooms.knock.is_empty());
    assert_eq!(knock(&bob, &room, Some("please")).await.0, 200);
    let second = sync(&bob, Some(&first.next_batch)).await;
    let state = &second.rooms.knock[&room].knock_state.events;
    let types: Vec<&str> = state.iter().map(|e| e.r#type.as_str()).collect();
    for wanted in ["m.room.create", "m.room.join_rules", "m.room.name", "m.room.member"] {
        assert!(types.contains(&wanted), "{wanted} missing from {types:?}");
    }
    let own = state.iter().find(|e| e.r#type == "m.room.member").unwrap();
    assert_eq!(own.state_key, bob.id);
    assert_eq!(own.content["membership"], json!("knock"));
    assert_eq!(own.content["reason"], json!("please"));
    assert!(second.rooms.join.is_empty() && second.rooms.invite.is_empty());
    // A full sync still shows the pending knock; an incremental one after it does not repeat it.
    assert!(sync(&bob, None).await.rooms.knock.contains_key(&room));
    let quiet = sync(&bob, Some(&second.next_batch)).await;
    assert!(quiet.rooms.knock.is_empty());
    // Accepted: the room moves to invite.
    assert_eq!(invite_status(&alice, &room, &bob).await, 200);
    let third = sync(&bob, Some(&second.next_batch)).await;
    assert!(third.rooms.knock.is_empty());
    assert!(third.rooms.invite.contains_key(&room));
}
