//! Room versions 7 to 11: advertised in `/capabilities`, chosen by
//! `createRoom`'s `room_version`, and deciding which join rules exist.

mod common;
mod gate_steps;

use gate_steps::*;
use matrix_membership::generated::api::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capabilities_advertise_versions_7_to_11_with_10_as_the_default() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let caps = match alice.client.get_capabilities().await.unwrap() {
        GetCapabilitiesResponse::Ok(ok) => ok.capabilities,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        caps["m.room_versions"],
        json!({"default": "10", "available": {"7": "stable", "8": "stable", "9": "stable", "10": "stable", "11": "stable"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_room_makes_each_supported_version_and_v11_has_no_creator_key() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    for version in [None, Some("7"), Some("8"), Some("9"), Some("10"), Some("11")] {
        let (status, room) = try_create(&alice, version, None).await;
        assert_eq!(status, 200, "v{version:?}");
        let room = room.unwrap();
        let create = match alice
            .client
            .get_room_state_event_empty_key(&room, "m.room.create")
            .await
            .unwrap()
        {
            GetRoomStateEventEmptyKeyResponse::Ok(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(create["room_version"], json!(version.unwrap_or("10")));
        if version == Some("11") {
            assert!(!create.contains_key("creator"), "{create:?}");
        } else {
            assert_eq!(create["creator"], json!(alice.id), "v{version:?}");
        }
        // The creator is the creator in every version: they hold 100 and can name the room.
        let name = object(json!({"name": "x"}));
        let resp = alice
            .client
            .set_room_state_event_empty_key(&room, "m.room.name", &name)
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "v{version:?}: {resp:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v11_room_keeps_its_creator_across_a_restart() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = room_at(&alice, "11", json!({"join_rule": "invite"})).await;
    // A restart drops the cached auth state: the creator must come from the create event's sender.
    let s = s.restart().await;
    assert_eq!(invite_status(&alice, &room, &bob).await, 200);
    assert_eq!(join_status(&bob, &room).await, 200);
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_room_version_is_refused_with_400_and_creates_nothing() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let before = s.service_pos();
    for version in ["1", "6", "12", "10.1", "org.example.custom"] {
        let mut req = common::room_request();
        req.room_version = Some(version.into());
        req.room_alias_name = Some(format!("v{}", version.replace('.', "-")));
        match alice.client.create_room(&req).await.unwrap() {
            CreateRoomResponse::BadRequest(e) => {
                assert_eq!(e.errcode, "M_UNSUPPORTED_ROOM_VERSION", "v{version}");
                assert!(
                    e.error.as_deref().unwrap_or("").contains("supported: 7, 8, 9, 10, 11"),
                    "{:?}",
                    e.error
                );
            }
            other => panic!("v{version}: {other:?}"),
        }
    }
    assert_eq!(s.service_pos(), before, "no event was written");
    match alice.client.get_joined_rooms().await.unwrap() {
        GetJoinedRoomsResponse::Ok(ok) => assert!(ok.joined_rooms.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_is_no_join_rule_in_v7_and_lets_members_of_the_allowed_room_in_from_v8() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let lobby = alice
        .create_room(matrix_membership::generated::models::CreateRoomRequestPreset::PublicChat)
        .await;
    bob.join(&lobby).await;
    let v7 = room_at(&alice, "7", allow("restricted", &lobby)).await;
    let v8 = room_at(&alice, "8", allow("restricted", &lobby)).await;
    assert_eq!(join_status(&bob, &v7).await, 403);
    // In v7 the rule does not exist, so not even an invite lets bob in, as the v7 auth rules say.
    assert_eq!(invite_status(&alice, &v7, &bob).await, 200);
    assert_eq!(join_status(&bob, &v7).await, 403);
    assert_eq!(join_status(&bob, &v8).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knock_restricted_exists_from_v10() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let lobby = alice
        .create_room(matrix_membership::generated::models::CreateRoomRequestPreset::PublicChat)
        .await;
    bob.join(&lobby).await;
    let v9 = room_at(&alice, "9", allow("knock_restricted", &lobby)).await;
    let v10 = room_at(&alice, "10", allow("knock_restricted", &lobby)).await;
    // v9: neither the join through the lobby nor a knock.
    assert_eq!(join_status(&bob, &v9).await, 403);
    let (status, resp) = knock(&carol, &v9, None).await;
    assert_eq!((status, errcode_of(&resp).as_str()), (403, "M_FORBIDDEN"));
    // v10: both.
    assert_eq!(join_status(&bob, &v10).await, 200);
    assert_eq!(knock(&carol, &v10, None).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knock_exists_in_every_supported_version() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    for version in ["7", "8", "9", "10", "11"] {
        let room = room_at(&alice, version, json!({"join_rule": "knock"})).await;
        assert_eq!(knock(&bob, &room, None).await.0, 200, "v{version}");
        assert_eq!(membership(&alice, &room, &bob.id).await, "knock", "v{version}");
    }
}
