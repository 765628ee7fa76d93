//! Restricted joins: `restricted` and `knock_restricted` let members of an
//! allowed room in without an invite, vouched for by a member with invite
//! power named in `join_authorised_via_users_server`.

mod common;
mod gate_steps;

use gate_steps::*;
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::CreateRoomRequestPreset as Preset;
use serde_json::json;

const KEY: &str = "join_authorised_via_users_server";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_the_allowed_room_joins_and_the_join_names_the_highest_inviter() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let lobby = alice.create_room(Preset::PublicChat).await;
    bob.join(&lobby).await;
    let room = room_at(&alice, "10", allow("restricted", &lobby)).await;
    // Carol holds invite power too, below alice's.
    assert_eq!(invite_status(&alice, &room, &carol).await, 200);
    assert_eq!(join_status(&carol, &room).await, 200);
    set_power_levels(
        &alice,
        &room,
        json!({"users": {&alice.id: 100, &carol.id: 50}, "invite": 50, "state_default": 50}),
    )
    .await;
    match bob.client.post_rooms_room_id_join(&room, None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::Ok(ok) => assert_eq!(ok.room_id, room),
        other => panic!("{other:?}"),
    }
    let content = member_content(&alice, &room, &bob.id).await;
    assert_eq!(content["membership"], json!("join"));
    assert_eq!(content[KEY], json!(alice.id), "the highest level vouches");
    // Carol did not need the key: she was invited.
    assert!(!member_content(&alice, &room, &carol.id).await.contains_key(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anyone_outside_the_allowed_rooms_gets_403_unless_invited() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let dave = s.register("dave").await;
    let lobby = alice.create_room(Preset::PublicChat).await;
    let room = room_at(&alice, "8", allow("restricted", &lobby)).await;
    let before = s.service_pos();
    match dave.client.post_rooms_room_id_join(&room, None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::Forbidden(e) => {
            assert_eq!(e.errcode, "M_FORBIDDEN");
            assert!(
                e.error
                    .as_deref()
                    .unwrap_or("")
                    .contains("not joined to any of the rooms"),
                "{:?}",
                e.error
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.service_pos(), before, "a refused join writes nothing");
    // Having left the lobby counts for nothing either.
    dave.join(&lobby).await;
    assert_eq!(leave_status(&dave, &lobby).await, 200);
    assert_eq!(join_status(&dave, &room).await, 403);
    assert_eq!(invite_status(&alice, &room, &dave).await, 200);
    assert_eq!(join_status(&dave, &room).await, 200);
    assert!(!member_content(&alice, &room, &dave.id).await.contains_key(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_naming_an_authoriser_without_invite_power_is_refused() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let mallory = s.register("mallory").await;
    let lobby = alice.create_room(Preset::PublicChat).await;
    bob.join(&lobby).await;
    let room = room_at(&alice, "10", allow("restricted", &lobby)).await;
    assert_eq!(invite_status(&alice, &room, &mallory).await, 200);
    assert_eq!(join_status(&mallory, &room).await, 200);
    set_power_levels(
        &alice,
        &room,
        json!({"users": {&alice.id: 100}, "invite": 50, "state_default": 50}),
    )
    .await;
    // Bob writes his own join event, vouched for by mallory (level 0).
    let put = |authoriser: &str| object(json!({"membership": "join", KEY: authoriser}));
    let resp = bob
        .client
        .set_room_state_event(&room, "m.room.member", &bob.id, &put(&mallory.id))
        .await
        .unwrap();
    assert_eq!(
        (resp.status(), errcode_of(&resp).as_str()),
        (403, "M_FORBIDDEN"),
        "{resp:?}"
    );
    assert!(
        format!("{resp:?}").contains("below the 50 needed to invite"),
        "{resp:?}"
    );
    // Nor someone who is not in the room at all.
    let outsider = s.register("outsider").await;
    let resp = bob
        .client
        .set_room_state_event(&room, "m.room.member", &bob.id, &put(&outsider.id))
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "{resp:?}");
    // Without the key at all: refused too.
    let bare = object(json!({"membership": "join"}));
    let resp = bob
        .client
        .set_room_state_event(&room, "m.room.member", &bob.id, &bare)
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "{resp:?}");
    // Alice's word is good.
    let resp = bob
        .client
        .set_room_state_event(&room, "m.room.member", &bob.id, &put(&alice.id))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{resp:?}");
    assert_eq!(membership(&alice, &room, &bob.id).await, "join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_room_whose_only_inviters_left_lets_nobody_in_through_the_lobby() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let lobby = alice.create_room(Preset::PublicChat).await;
    bob.join(&lobby).await;
    let room = room_at(&alice, "9", allow("restricted", &lobby)).await;
    assert_eq!(leave_status(&alice, &room).await, 200);
    match bob.client.post_rooms_room_id_join(&room, None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::Forbidden(e) => {
            assert!(e.error.as_deref().unwrap_or("").contains("must name"), "{:?}", e.error)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knock_restricted_lets_lobby_members_join_and_others_knock() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let lobby = alice.create_room(Preset::PublicChat).await;
    bob.join(&lobby).await;
    let room = room_at(&alice, "11", allow("knock_restricted", &lobby)).await;
    assert_eq!(join_status(&carol, &room).await, 403);
    assert_eq!(knock(&carol, &room, None).await.0, 200);
    assert_eq!(join_status(&bob, &room).await, 200);
    assert_eq!(member_content(&alice, &room, &bob.id).await[KEY], json!(alice.id));
    // A lobby member who knocked first may still join through the lobby.
    let dave = s.register("dave").await;
    dave.join(&lobby).await;
    assert_eq!(knock(&dave, &room, None).await.0, 200);
    assert_eq!(join_status(&dave, &room).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_join_alias_path_joins_restricted_rooms_too() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let lobby = alice.create_room(Preset::PublicChat).await;
    bob.join(&lobby).await;
    let room = room_at(&alice, "10", allow("restricted", &lobby)).await;
    let token = format!("Bearer {}", bob.client.access_token().unwrap());
    let path = format!(
        "/_matrix/client/v3/join/{}",
        matrix_membership::generated::client::encode(&room)
    );
    let resp = s.raw("POST", &path, &[("Authorization", &token)], b"").await;
    assert_eq!(resp.status, 200, "{:?}", resp.json);
    assert_eq!(member_content(&alice, &room, &bob.id).await[KEY], json!(alice.id));
}

/// A join plans without the joiner's rooms when the rule it reads is not
/// restricted; one that turns restricted before the write must make the join
/// read them and plan again, not fail. The flush delay keeps each rule change
/// applied but not yet visible to reads for a while, so joins keep landing in
/// that window. Every joiner is in the lobby, so under either rule each join
/// must succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_racing_a_rule_turned_restricted_is_planned_again_and_succeeds() {
    let s = common::start_with(&["--no-rate-limits", "--test-flush-delay-ms", "15"]).await;
    let alice = s.register("alice").await;
    let lobby = alice.create_room(Preset::PublicChat).await;
    let mut joiners = Vec::new();
    for i in 0..6 {
        let user = s.register(&format!("joiner{i}")).await;
        user.join(&lobby).await;
        joiners.push(user);
    }
    let room = room_at(&alice, "10", json!({"join_rule": "public"})).await;
    let rounds = 12;
    let flips = async {
        for round in 0..rounds * 2 {
            let rule = if round % 2 == 0 {
                allow("restricted", &lobby)
            } else {
                json!({"join_rule": "public"})
            };
            let resp = alice
                .client
                .set_room_state_event_empty_key(&room, "m.room.join_rules", &object(rule))
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{resp:?}");
        }
    };
    let joins = futures::future::join_all(joiners.iter().map(|user| async {
        let mut statuses = Vec::new();
        for _ in 0..rounds {
            statuses.push(join_status(user, &room).await);
            statuses.push(leave_status(user, &room).await);
        }
        statuses
    }));
    let ((), statuses) = tokio::join!(flips, joins);
    for (user, statuses) in joiners.iter().zip(statuses) {
        assert!(statuses.iter().all(|&s| s == 200), "{}: {statuses:?}", user.id);
    }
}
