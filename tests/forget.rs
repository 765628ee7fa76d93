//! Forgetting a room: who may, and what disappears from the user's views
//! until a new membership brings the room back.

mod common;

use common::{TestServer, User};
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};

/// A response's status and errcode ("" on success).
macro_rules! outcome {
    ($resp:expr) => {{
        let r = $resp;
        let body = r.to_json().unwrap();
        (r.status(), body["errcode"].as_str().unwrap_or("").to_string())
    }};
}

const INCLUDE_LEAVE: &str = r#"{"room": {"include_leave": true}}"#;

async fn sync(user: &User, since: Option<&str>, filter: Option<&str>) -> models::SyncResponse {
    match user.client.sync(since, None, filter, None, None).await.unwrap() {
        SyncResponse::Ok(ok) => ok,
        other => panic!("sync failed: {other:?}"),
    }
}

async fn forget(user: &User, room: &str) -> (u16, String) {
    outcome!(user.client.forget_room(room).await.unwrap())
}

async fn leave(user: &User, room: &str) {
    assert_eq!(user.client.leave_room(room, None).await.unwrap().status(), 200);
}

async fn invite(by: &User, room: &str, who: &User) {
    let body = models::PostRoomsRoomIdInviteBody {
        user_id: Some(who.id.clone()),
        reason: None,
        ..Default::default()
    };
    assert_eq!(
        by.client.post_rooms_room_id_invite(room, &body).await.unwrap().status(),
        200
    );
}

/// The statuses of the room views a user asks for: messages, state, one
/// state event, members, the room's initialSync.
async fn views(user: &User, room: &str) -> Vec<(u16, String)> {
    let c = &user.client;
    vec![
        outcome!(c.get_room_events(room, None, None, "b", None, None).await.unwrap()),
        outcome!(c.get_room_state(room).await.unwrap()),
        outcome!(c.get_room_state_event_empty_key(room, "m.room.create").await.unwrap()),
        outcome!(c.get_members(room, None, None, None).await.unwrap()),
        outcome!(c.room_initial_sync(room).await.unwrap()),
    ]
}

/// A room alice made public, which bob joined.
async fn shared_room(s: &TestServer) -> (User, User, String) {
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    (alice, bob, room)
}

#[tokio::test]
async fn a_user_still_joined_or_invited_cannot_forget_the_room() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    assert_eq!(forget(&bob, &room).await, (400, "M_UNKNOWN".into()));
    let carol = s.register("carol").await;
    invite(&alice, &room, &carol).await;
    assert_eq!(forget(&carol, &room).await, (400, "M_UNKNOWN".into()));
    // Nothing was forgotten: bob still sees the room.
    assert!(views(&bob, &room).await.iter().all(|(status, _)| *status == 200));
}

#[tokio::test]
async fn a_forgotten_room_answers_403_to_messages_state_and_members() {
    let s = common::start().await;
    let (_alice, bob, room) = shared_room(&s).await;
    leave(&bob, &room).await;
    let before = views(&bob, &room).await;
    assert!(
        before.iter().all(|(status, _)| *status == 200),
        "a former member still sees: {before:?}"
    );
    assert_eq!(forget(&bob, &room).await, (200, String::new()));
    let after = views(&bob, &room).await;
    assert_eq!(after, vec![(403, "M_FORBIDDEN".to_string()); 5]);
    // Forgetting twice is fine.
    assert_eq!(forget(&bob, &room).await, (200, String::new()));
}

#[tokio::test]
async fn a_banned_user_may_forget_the_room() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    let ban = models::MembershipChange {
        user_id: bob.id.clone(),
        reason: None,
    };
    assert_eq!(alice.client.ban(&room, &ban).await.unwrap().status(), 200);
    assert_eq!(forget(&bob, &room).await, (200, String::new()));
    assert_eq!(views(&bob, &room).await[1], (403, "M_FORBIDDEN".to_string()));
}

#[tokio::test]
async fn a_forgotten_room_is_left_out_of_sync_even_with_include_leave() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    let other = alice.create_room(Preset::PublicChat).await;
    bob.join(&other).await;
    leave(&bob, &room).await;
    leave(&bob, &other).await;
    let shown = sync(&bob, None, Some(INCLUDE_LEAVE)).await;
    assert!(shown.rooms.leave.contains_key(&room) && shown.rooms.leave.contains_key(&other));
    assert!(
        !sync(&bob, None, None).await.rooms.leave.contains_key(&room),
        "without include_leave, no left rooms"
    );

    assert_eq!(forget(&bob, &room).await, (200, String::new()));
    let after = sync(&bob, None, Some(INCLUDE_LEAVE)).await;
    assert!(!after.rooms.leave.contains_key(&room), "the forgotten room is gone");
    assert!(after.rooms.leave.contains_key(&other), "the other left room stays");
}

#[tokio::test]
async fn a_room_left_and_forgotten_between_two_syncs_is_not_delivered_as_left() {
    let s = common::start().await;
    let (_alice, bob, room) = shared_room(&s).await;
    let token = sync(&bob, None, None).await.next_batch;
    leave(&bob, &room).await;
    assert_eq!(forget(&bob, &room).await, (200, String::new()));
    let next = sync(&bob, Some(&token), None).await;
    assert!(!next.rooms.leave.contains_key(&room));
    assert!(!next.rooms.join.contains_key(&room));
}

#[tokio::test]
async fn forgetting_a_room_one_was_never_in_succeeds_and_an_unknown_room_is_not_found() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let stranger = s.register("stranger").await;
    let room = alice.create_room(Preset::PublicChat).await;
    assert_eq!(forget(&stranger, &room).await, (200, String::new()));
    // It changed nothing: the stranger can still join and see the room.
    stranger.join(&room).await;
    assert_eq!(views(&stranger, &room).await[1].0, 200);
    assert_eq!(
        forget(&stranger, "!nowhere:localhost").await,
        (404, "M_NOT_FOUND".into())
    );
}

#[tokio::test]
async fn joining_again_after_forgetting_starts_afresh() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    leave(&bob, &room).await;
    assert_eq!(forget(&bob, &room).await, (200, String::new()));
    bob.join(&room).await;
    assert!(views(&bob, &room).await.iter().all(|(status, _)| *status == 200));
    assert!(sync(&bob, None, None).await.rooms.join.contains_key(&room));
    // Leaving again: the room is a left room like any other, not forgotten.
    leave(&bob, &room).await;
    assert!(sync(&bob, None, Some(INCLUDE_LEAVE))
        .await
        .rooms
        .leave
        .contains_key(&room));
    assert_eq!(views(&bob, &room).await[1].0, 200);
    // An invite after forgetting also brings the room back.
    assert_eq!(forget(&bob, &room).await, (200, String::new()));
    invite(&alice, &room, &bob).await;
    let synced = sync(&bob, None, None).await;
    assert!(synced.rooms.invite.contains_key(&room));
}
