//! createRoom, the directory and room state through the generated client.

mod common;

use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use matrix_membership::ids::RoomId;
use serde_json::json;

fn obj(v: serde_json::Value) -> models::JsonObject {
    v.as_object().unwrap().clone()
}

async fn power_levels(user: &common::User, room: &str) -> models::JsonObject {
    match user
        .client
        .get_room_state_event_empty_key(room, "m.room.power_levels")
        .await
        .unwrap()
    {
        GetRoomStateEventEmptyKeyResponse::Ok(c) => c,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_room_writes_the_initial_events_in_the_spec_order() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let mut req = common::room_request();
    req.preset = Some(Preset::PrivateChat);
    req.room_alias_name = Some("ordered".into());
    req.name = Some("Ordered".into());
    req.topic = Some("events in order".into());
    req.invite = Some(vec![bob.id.clone()]);
    req.initial_state = Some(vec![models::StateEventInput {
        r#type: "m.room.avatar".into(),
        state_key: None,
        content: obj(json!({"url": "mxc://x/y"})),
    }]);
    let room = alice.create_room_with(&req).await;
    let events = s
        .service
        .store()
        .room_events(&RoomId::parse(&room).unwrap(), 0, u64::MAX, 100, false)
        .await
        .unwrap();
    let types: Vec<String> = events
        .iter()
        .map(|e| format!("{}/{}", e.event_type, e.state_key.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        types,
        vec![
            "m.room.create/".to_string(),
            format!("m.room.member/{}", alice.id),
            "m.room.power_levels/".into(),
            "m.room.canonical_alias/".into(),
            "m.room.join_rules/".into(),
            "m.room.history_visibility/".into(),
            "m.room.guest_access/".into(),
            "m.room.avatar/".into(),
            "m.room.name/".into(),
            "m.room.topic/".into(),
            format!("m.room.member/{}", bob.id),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_set_synapse_default_power_levels() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let public = alice.create_room(Preset::PublicChat).await;
    let private = alice.create_room(Preset::PrivateChat).await;
    let pl = power_levels(&alice, &public).await;
    assert_eq!(pl["invite"], 50);
    for key in ["state_default", "ban", "kick", "redact"] {
        assert_eq!(pl[key], 50, "{key}");
    }
    assert_eq!(pl["users"][&alice.id], 100);
    assert_eq!(power_levels(&alice, &private).await["invite"], 0);
    match alice
        .client
        .get_room_state_event_empty_key(&public, "m.room.join_rules")
        .await
        .unwrap()
    {
        GetRoomStateEventEmptyKeyResponse::Ok(c) => assert_eq!(c["join_rule"], "public"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_level_override_and_trusted_private_chat_apply() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let mut req = common::room_request();
    req.preset = Some(Preset::TrustedPrivateChat);
    req.invite = Some(vec![bob.id.clone()]);
    req.power_level_content_override = Some(obj(json!({"kick": 75})));
    let room = alice.create_room_with(&req).await;
    let pl = power_levels(&alice, &room).await;
    assert_eq!(pl["kick"], 75);
    assert_eq!(
        pl["users"][&bob.id], 100,
        "trusted_private_chat gives invitees the creator's level"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_alias_fails_create_room_with_room_in_use() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let mut req = common::room_request();
    req.room_alias_name = Some("dup".into());
    assert_eq!(alice.client.create_room(&req).await.unwrap().status(), 200);
    match alice.client.create_room(&req).await.unwrap() {
        CreateRoomResponse::BadRequest(e) => assert_eq!(e.errcode, "M_ROOM_IN_USE"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_maps_aliases_both_ways() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    let body = models::SetRoomAliasBody { room_id: room.clone() };
    assert_eq!(
        alice
            .client
            .set_room_alias("#home:localhost", &body)
            .await
            .unwrap()
            .status(),
        200
    );
    match alice.client.set_room_alias("#home:localhost", &body).await.unwrap() {
        SetRoomAliasResponse::Conflict(e) => assert_eq!(e.errcode, "M_UNKNOWN"),
        other => panic!("{other:?}"),
    }
    match s.client().get_room_alias("#home:localhost").await.unwrap() {
        GetRoomAliasResponse::Ok(ok) => {
            assert_eq!(ok.room_id, room);
            assert_eq!(ok.servers, vec!["localhost".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        bob.client.delete_room_alias("#home:localhost").await.unwrap(),
        DeleteRoomAliasResponse::Forbidden(_)
    ));
    assert_eq!(
        alice
            .client
            .delete_room_alias("#home:localhost")
            .await
            .unwrap()
            .status(),
        200
    );
    match s.client().get_room_alias("#home:localhost").await.unwrap() {
        GetRoomAliasResponse::NotFound(e) => assert_eq!(e.errcode, "M_NOT_FOUND"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        alice.client.delete_room_alias("#home:localhost").await.unwrap(),
        DeleteRoomAliasResponse::NotFound(_)
    ));
    assert!(matches!(
        alice.client.get_room_alias("no-sigil").await.unwrap(),
        GetRoomAliasResponse::BadRequest(_)
    ));
    let unknown = models::SetRoomAliasBody {
        room_id: "!nope:localhost".into(),
    };
    assert!(matches!(
        alice.client.set_room_alias("#x:localhost", &unknown).await.unwrap(),
        SetRoomAliasResponse::NotFound(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_can_be_set_by_those_with_power_and_read_back() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    let topic = obj(json!({"topic": "hello"}));
    match alice
        .client
        .set_room_state_event(&room, "m.room.topic", "", &topic)
        .await
        .unwrap()
    {
        SetRoomStateEventResponse::Ok(ok) => assert!(ok.event_id.starts_with('$')),
        other => panic!("{other:?}"),
    }
    match bob
        .client
        .set_room_state_event_empty_key(&room, "m.room.topic", &topic)
        .await
        .unwrap()
    {
        SetRoomStateEventEmptyKeyResponse::Forbidden(e) => assert!(e.error.unwrap().contains("50")),
        other => panic!("{other:?}"),
    }
    match bob
        .client
        .get_room_state_event(&room, "m.room.topic", "")
        .await
        .unwrap()
    {
        GetRoomStateEventResponse::Ok(c) => assert_eq!(c["topic"], "hello"),
        other => panic!("{other:?}"),
    }
    // Changing join rules to invite-only keeps newcomers out.
    let rules = obj(json!({"join_rule": "invite"}));
    assert_eq!(
        alice
            .client
            .set_room_state_event_empty_key(&room, "m.room.join_rules", &rules)
            .await
            .unwrap()
            .status(),
        200
    );
    let carol = s.register("carol").await;
    assert!(matches!(
        carol.client.post_rooms_room_id_join(&room, None).await.unwrap(),
        PostRoomsRoomIdJoinResponse::Forbidden(_)
    ));
    // Raising bob via power levels lets him set the topic.
    let mut pl = power_levels(&alice, &room).await;
    pl["users"].as_object_mut().unwrap().insert(bob.id.clone(), json!(50));
    assert_eq!(
        alice
            .client
            .set_room_state_event_empty_key(&room, "m.room.power_levels", &pl)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        bob.client
            .set_room_state_event_empty_key(&room, "m.room.topic", &topic)
            .await
            .unwrap()
            .status(),
        200
    );
    match alice
        .client
        .get_room_state_event(&room, "m.room.nothing", "")
        .await
        .unwrap()
    {
        GetRoomStateEventResponse::NotFound(e) => assert_eq!(e.errcode, "M_NOT_FOUND"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_joined_members_and_joined_rooms_agree() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    let invite = models::PostRoomsRoomIdInviteBody {
        user_id: Some(bob.id.clone()),
        reason: None,
        ..Default::default()
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
    let invite = models::PostRoomsRoomIdInviteBody {
        user_id: Some(carol.id.clone()),
        reason: None,
        ..Default::default()
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
    bob.join(&room).await;
    match alice.client.get_joined_members(&room).await.unwrap() {
        GetJoinedMembersResponse::Ok(ok) => {
            let mut ids: Vec<&String> = ok.joined.keys().collect();
            ids.sort();
            assert_eq!(ids, vec![&alice.id, &bob.id]);
            assert_eq!(ok.joined[&bob.id].display_name.as_deref(), Some("bob"));
        }
        other => panic!("{other:?}"),
    }
    match alice
        .client
        .get_members(&room, None, Some("invite"), None)
        .await
        .unwrap()
    {
        GetMembersResponse::Ok(ok) => {
            assert_eq!(ok.chunk.len(), 1);
            assert_eq!(ok.chunk[0].state_key.as_deref(), Some(carol.id.as_str()));
        }
        other => panic!("{other:?}"),
    }
    match alice
        .client
        .get_members(&room, None, None, Some("invite"))
        .await
        .unwrap()
    {
        GetMembersResponse::Ok(ok) => assert_eq!(ok.chunk.len(), 2),
        other => panic!("{other:?}"),
    }
    match bob.client.get_joined_rooms().await.unwrap() {
        GetJoinedRoomsResponse::Ok(ok) => assert_eq!(ok.joined_rooms, vec![room.clone()]),
        other => panic!("{other:?}"),
    }
    match carol.client.get_joined_rooms().await.unwrap() {
        GetJoinedRoomsResponse::Ok(ok) => assert!(ok.joined_rooms.is_empty(), "an invite is not a join"),
        other => panic!("{other:?}"),
    }
}
