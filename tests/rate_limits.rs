//! The seed's 429: per-user join and invite limits.

mod common;

use matrix_membership::generated::api::*;
use matrix_membership::generated::models::CreateRoomRequestPreset as Preset;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_past_the_burst_get_429_with_retry_after() {
    let s = common::start_with(&["--join-rate", "0.1", "--join-burst", "2", "--invite-rate", "0"]).await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let mut rooms = Vec::new();
    for _ in 0..3 {
        rooms.push(alice.create_room(Preset::PublicChat).await);
    }
    assert_eq!(
        bob.client
            .post_rooms_room_id_join(&rooms[0], None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        bob.client
            .post_rooms_room_id_join(&rooms[1], None)
            .await
            .unwrap()
            .status(),
        200
    );
    match bob.client.post_rooms_room_id_join(&rooms[2], None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::TooManyRequests(e) => {
            assert_eq!(e.errcode, "M_LIMIT_EXCEEDED");
            assert!(e.retry_after_ms.unwrap() > 1000, "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    let token = bob.client.access_token().unwrap();
    let path = format!(
        "/_matrix/client/v3/join/{}?access_token={token}",
        rooms[2].replace('!', "%21")
    );
    let r = s.raw("POST", &path, &[], b"{}").await;
    r.assert_error(429, "M_LIMIT_EXCEEDED");
    let retry: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!(retry >= 1, "Retry-After in whole seconds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejoining_a_room_you_are_in_is_not_charged() {
    let s = common::start_with(&["--join-rate", "0.1", "--join-burst", "1", "--invite-rate", "0"]).await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PublicChat).await;
    for _ in 0..5 {
        assert_eq!(
            alice
                .client
                .post_rooms_room_id_join(&room, None)
                .await
                .unwrap()
                .status(),
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_are_limited_per_sender() {
    let s = common::start_with(&["--invite-rate", "0.1", "--invite-burst", "2", "--join-rate", "0"]).await;
    let alice = s.register("alice").await;
    let mut others = Vec::new();
    for name in ["b", "c", "d"] {
        others.push(s.register(name).await);
    }
    // createRoom is charged to the invite budget too.
    let room = alice.create_room(Preset::PrivateChat).await;
    let invite = |id: &str| matrix_membership::generated::models::PostRoomsRoomIdInviteBody {
        user_id: id.into(),
        reason: None,
    };
    assert_eq!(
        alice
            .client
            .post_rooms_room_id_invite(&room, &invite(&others[0].id))
            .await
            .unwrap()
            .status(),
        200
    );
    match alice
        .client
        .post_rooms_room_id_invite(&room, &invite(&others[1].id))
        .await
        .unwrap()
    {
        PostRoomsRoomIdInviteResponse::TooManyRequests(e) => assert_eq!(e.errcode, "M_LIMIT_EXCEEDED"),
        other => panic!("{other:?}"),
    }
}
