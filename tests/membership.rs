//! Every row of the membership rules table, over HTTP through the generated client.

mod common;

use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};

fn change(user: &str) -> models::MembershipChange {
    models::MembershipChange {
        user_id: user.to_string(),
        reason: None,
    }
}

fn invite_body(user: &str) -> models::PostRoomsRoomIdInviteBody {
    models::PostRoomsRoomIdInviteBody {
        user_id: Some(user.to_string()),
        reason: None,
        ..Default::default()
    }
}

fn errcode(e: &models::Error) -> &str {
    &e.errcode
}

async fn member_count(user: &common::User, room: &str) -> usize {
    match user.client.get_members(room, None, None, None).await.unwrap() {
        GetMembersResponse::Ok(ok) => ok.chunk.len(),
        other => panic!("{other:?}"),
    }
}

async fn state_len(user: &common::User, room: &str) -> usize {
    match user.client.get_room_state(room).await.unwrap() {
        GetRoomStateResponse::Ok(events) => events.len(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_a_public_room_returns_its_id() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    match bob.client.post_rooms_room_id_join(&room, None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::Ok(ok) => assert_eq!(ok.room_id, room),
        other => panic!("{other:?}"),
    }
    assert_eq!(member_count(&alice, &room).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_an_invite_only_room_needs_an_invite() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    match bob.client.post_rooms_room_id_join(&room, None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::Forbidden(e) => assert_eq!(errcode(&e), "M_FORBIDDEN"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        alice
            .client
            .post_rooms_room_id_invite(&room, &invite_body(&bob.id))
            .await
            .unwrap(),
        PostRoomsRoomIdInviteResponse::Ok(_)
    ));
    assert!(matches!(
        bob.client.post_rooms_room_id_join(&room, None).await.unwrap(),
        PostRoomsRoomIdJoinResponse::Ok(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_user_cannot_join_even_a_public_room() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    assert!(matches!(
        alice.client.ban(&room, &change(&bob.id)).await.unwrap(),
        BanResponse::Ok(_)
    ));
    match bob.client.post_rooms_room_id_join(&room, None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::Forbidden(e) => {
            assert_eq!(errcode(&e), "M_FORBIDDEN");
            assert!(e.error.unwrap().contains("banned"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_an_unknown_room_is_404() {
    let s = common::start().await;
    let bob = s.register("bob").await;
    match bob
        .client
        .post_rooms_room_id_join("!nope:localhost", None)
        .await
        .unwrap()
    {
        PostRoomsRoomIdJoinResponse::NotFound(e) => assert_eq!(errcode(&e), "M_NOT_FOUND"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_again_is_200_and_writes_no_event() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PublicChat).await;
    let before = s.service_pos();
    for _ in 0..3 {
        assert!(matches!(
            alice.client.post_rooms_room_id_join(&room, None).await.unwrap(),
            PostRoomsRoomIdJoinResponse::Ok(_)
        ));
    }
    assert_eq!(s.service_pos(), before, "an unchanged re-join must not append an event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_by_alias_resolves_through_the_directory() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let mut req = common::room_request();
    req.preset = Some(Preset::PublicChat);
    req.room_alias_name = Some("monkeys".into());
    let room = match alice.client.create_room(&req).await.unwrap() {
        CreateRoomResponse::Ok(ok) => {
            assert_eq!(ok.room_alias.as_deref(), Some("#monkeys:localhost"));
            ok.room_id
        }
        other => panic!("{other:?}"),
    };
    match bob
        .client
        .post_rooms_room_id_join("#monkeys:localhost", None)
        .await
        .unwrap()
    {
        PostRoomsRoomIdJoinResponse::Ok(ok) => assert_eq!(ok.room_id, room),
        other => panic!("{other:?}"),
    }
    match bob
        .client
        .post_rooms_room_id_join("#nothing:localhost", None)
        .await
        .unwrap()
    {
        PostRoomsRoomIdJoinResponse::NotFound(e) => assert_eq!(errcode(&e), "M_NOT_FOUND"),
        other => panic!("{other:?}"),
    }
    match bob
        .client
        .post_rooms_room_id_join("#monkeys:matrix.org", None)
        .await
        .unwrap()
    {
        PostRoomsRoomIdJoinResponse::NotFound(e) => assert!(e.error.unwrap().contains("federation"), "clear message"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_rules_hold_for_every_case() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    let invite = |who: &common::User, target: &str| {
        let client = who.client.clone();
        let room = room.clone();
        let target = target.to_string();
        async move {
            client
                .post_rooms_room_id_invite(&room, &invite_body(&target))
                .await
                .unwrap()
        }
    };
    // An outsider cannot invite.
    assert!(matches!(
        invite(&carol, &bob.id).await,
        PostRoomsRoomIdInviteResponse::Forbidden(_)
    ));
    assert!(matches!(
        invite(&alice, &bob.id).await,
        PostRoomsRoomIdInviteResponse::Ok(_)
    ));
    // Re-inviting an invited user is fine.
    assert!(matches!(
        invite(&alice, &bob.id).await,
        PostRoomsRoomIdInviteResponse::Ok(_)
    ));
    // Inviting yourself is not.
    assert!(matches!(
        invite(&alice, &alice.id).await,
        PostRoomsRoomIdInviteResponse::Forbidden(_)
    ));
    // A joined member cannot be invited.
    bob.join(&room).await;
    match invite(&alice, &bob.id).await {
        PostRoomsRoomIdInviteResponse::Forbidden(e) => assert!(e.error.unwrap().contains("already")),
        other => panic!("{other:?}"),
    }
    // A banned user cannot be invited.
    assert_eq!(alice.client.ban(&room, &change(&carol.id)).await.unwrap().status(), 200);
    match invite(&alice, &carol.id).await {
        PostRoomsRoomIdInviteResponse::Forbidden(e) => assert!(e.error.unwrap().contains("banned")),
        other => panic!("{other:?}"),
    }
    // Malformed and unknown targets.
    match invite(&alice, "not-a-user").await {
        PostRoomsRoomIdInviteResponse::BadRequest(e) => assert_eq!(errcode(&e), "M_INVALID_PARAM"),
        other => panic!("{other:?}"),
    }
    match invite(&alice, "@ghost:localhost").await {
        PostRoomsRoomIdInviteResponse::NotFound(e) => assert!(e.error.unwrap().contains("does not exist")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inviting_needs_the_invite_power_level() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    match bob
        .client
        .post_rooms_room_id_invite(&room, &invite_body(&carol.id))
        .await
        .unwrap()
    {
        PostRoomsRoomIdInviteResponse::Forbidden(e) => {
            assert!(e
                .error
                .unwrap()
                .contains("power level 0 is below the 50 needed to invite"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_works_from_invite_or_join_only() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    assert!(matches!(
        bob.client.leave_room(&room, None).await.unwrap(),
        LeaveRoomResponse::Forbidden(_)
    ));
    assert_eq!(
        alice
            .client
            .post_rooms_room_id_invite(&room, &invite_body(&bob.id))
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        matches!(
            bob.client.leave_room(&room, None).await.unwrap(),
            LeaveRoomResponse::Ok(_)
        ),
        "rejecting an invite"
    );
    assert!(
        matches!(
            bob.client.leave_room(&room, None).await.unwrap(),
            LeaveRoomResponse::Forbidden(_)
        ),
        "already left"
    );
    assert!(matches!(
        alice.client.leave_room(&room, None).await.unwrap(),
        LeaveRoomResponse::Ok(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_needs_power_and_a_present_target() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    assert_eq!(
        carol
            .client
            .post_rooms_room_id_join(&room, None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        matches!(
            bob.client.kick(&room, &change(&carol.id)).await.unwrap(),
            KickResponse::Forbidden(_)
        ),
        "bob has 0 < 50"
    );
    assert!(matches!(
        alice.client.kick(&room, &change(&carol.id)).await.unwrap(),
        KickResponse::Ok(_)
    ));
    assert!(
        matches!(
            alice.client.kick(&room, &change(&carol.id)).await.unwrap(),
            KickResponse::Forbidden(_)
        ),
        "already left"
    );
    assert!(
        matches!(
            bob.client.kick(&room, &change(&alice.id)).await.unwrap(),
            KickResponse::Forbidden(_)
        ),
        "not above target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_and_unban_round_trip() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    // The target may be in any state, even never joined.
    assert!(matches!(
        alice.client.ban(&room, &change(&bob.id)).await.unwrap(),
        BanResponse::Ok(_)
    ));
    assert!(matches!(
        bob.client.unban(&room, &change(&alice.id)).await.unwrap(),
        UnbanResponse::Forbidden(_)
    ));
    assert!(matches!(
        alice.client.unban(&room, &change(&bob.id)).await.unwrap(),
        UnbanResponse::Ok(_)
    ));
    assert!(
        matches!(
            alice.client.unban(&room, &change(&bob.id)).await.unwrap(),
            UnbanResponse::Forbidden(_)
        ),
        "not banned"
    );
    assert!(matches!(
        bob.client.post_rooms_room_id_join(&room, None).await.unwrap(),
        PostRoomsRoomIdJoinResponse::Ok(_)
    ));
    assert!(matches!(
        bob.client.ban(&room, &change(&alice.id)).await.unwrap(),
        BanResponse::Forbidden(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_readable_by_members_and_former_members_only() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    let while_member = state_len(&bob, &room).await;
    assert_eq!(bob.client.leave_room(&room, None).await.unwrap().status(), 200);
    let name = serde_json::json!({"name": "after bob left"})
        .as_object()
        .unwrap()
        .clone();
    assert!(matches!(
        alice
            .client
            .set_room_state_event_empty_key(&room, "m.room.name", &name)
            .await
            .unwrap(),
        SetRoomStateEventEmptyKeyResponse::Ok(_)
    ));
    // Bob sees the state as of his leave: no m.room.name yet.
    match bob
        .client
        .get_room_state_event_empty_key(&room, "m.room.name")
        .await
        .unwrap()
    {
        GetRoomStateEventEmptyKeyResponse::NotFound(_) => {}
        other => panic!("bob must not see the later name: {other:?}"),
    }
    assert_eq!(state_len(&bob, &room).await, while_member);
    match alice
        .client
        .get_room_state_event_empty_key(&room, "m.room.name")
        .await
        .unwrap()
    {
        GetRoomStateEventEmptyKeyResponse::Ok(c) => assert_eq!(c["name"], "after bob left"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        carol.client.get_room_state(&room).await.unwrap(),
        GetRoomStateResponse::Forbidden(_)
    ));
    assert!(matches!(
        carol.client.get_members(&room, None, None, None).await.unwrap(),
        GetMembersResponse::Forbidden(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_membership_operation_on_an_unknown_room_is_404_and_a_malformed_id_400() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let c = &alice.client;
    let room = "!nope:localhost";
    let statuses = [
        c.post_rooms_room_id_invite(room, &invite_body(&bob.id))
            .await
            .unwrap()
            .status(),
        c.leave_room(room, None).await.unwrap().status(),
        c.kick(room, &change(&bob.id)).await.unwrap().status(),
        c.ban(room, &change(&bob.id)).await.unwrap().status(),
        c.unban(room, &change(&bob.id)).await.unwrap().status(),
        c.get_room_state(room).await.unwrap().status(),
        c.get_members(room, None, None, None).await.unwrap().status(),
        c.get_joined_members(room).await.unwrap().status(),
    ];
    assert_eq!(statuses, [404; 8]);
    match c.kick("no-sigil", &change(&bob.id)).await.unwrap() {
        KickResponse::BadRequest(e) => assert_eq!(e.errcode, "M_INVALID_PARAM"),
        other => panic!("{other:?}"),
    }
    match c.get_room_state("#alias:localhost").await.unwrap() {
        GetRoomStateResponse::BadRequest(e) => assert_eq!(e.errcode, "M_INVALID_PARAM"),
        other => panic!("{other:?}"),
    }
    match c
        .post_rooms_room_id_invite("!nope:elsewhere.org", &invite_body(&bob.id))
        .await
        .unwrap()
    {
        PostRoomsRoomIdInviteResponse::NotFound(e) => assert!(e.error.unwrap().contains("federation")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_records_its_reason_in_the_member_event() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(models::CreateRoomRequestPreset::PrivateChat).await;
    let body = models::PostRoomsRoomIdInviteBody {
        user_id: Some(bob.id.clone()),
        reason: Some("you will like it".into()),
        ..Default::default()
    };
    let resp = alice.client.post_rooms_room_id_invite(&room, &body).await.unwrap();
    assert_eq!(resp.status(), 200);
    match alice
        .client
        .get_room_state_event(&room, "m.room.member", &bob.id)
        .await
        .unwrap()
    {
        GetRoomStateEventResponse::Ok(content) => {
            assert_eq!(content["membership"], "invite");
            assert_eq!(content["reason"], "you will like it");
        }
        other => panic!("{other:?}"),
    }
}
