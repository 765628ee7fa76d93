//! `/members` with `at`, `membership` and `not_membership`, and
//! `/joined_members` for users joined now only.

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

async fn token(user: &User) -> String {
    match user.client.sync(None, None, None, None, None).await.unwrap() {
        SyncResponse::Ok(ok) => ok.next_batch,
        other => panic!("sync failed: {other:?}"),
    }
}

/// (user, membership) pairs `/members` answers, sorted.
async fn members(
    user: &User,
    room: &str,
    at: Option<&str>,
    is: Option<&str>,
    not: Option<&str>,
) -> Vec<(String, String)> {
    match user.client.get_members(room, at, is, not).await.unwrap() {
        GetMembersResponse::Ok(ok) => {
            let mut out: Vec<(String, String)> = ok
                .chunk
                .into_iter()
                .map(|e| {
                    let m = e.content["membership"].as_str().unwrap_or_default().to_string();
                    (e.state_key.unwrap_or_default(), m)
                })
                .collect();
            out.sort();
            out
        }
        other => panic!("/members failed: {other:?}"),
    }
}

fn pairs(list: &[(&User, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list.iter().map(|(u, m)| (u.id.clone(), m.to_string())).collect();
    out.sort();
    out
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

/// alice (join), bob (join), carol (invite), dave (leave) in a public room.
async fn four_members(s: &TestServer) -> (User, User, User, User, String) {
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let dave = s.register("dave").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    invite(&alice, &room, &carol).await;
    dave.join(&room).await;
    assert_eq!(dave.client.leave_room(&room, None).await.unwrap().status(), 200);
    (alice, bob, carol, dave, room)
}

#[tokio::test]
async fn members_at_a_sync_token_are_the_members_of_that_moment() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    let before_bob = token(&alice).await;
    bob.join(&room).await;
    let with_bob = token(&alice).await;
    assert_eq!(bob.client.leave_room(&room, None).await.unwrap().status(), 200);

    assert_eq!(
        members(&alice, &room, Some(&before_bob), None, None).await,
        pairs(&[(&alice, "join")])
    );
    assert_eq!(
        members(&alice, &room, Some(&with_bob), None, None).await,
        pairs(&[(&alice, "join"), (&bob, "join")])
    );
    assert_eq!(
        members(&alice, &room, None, None, None).await,
        pairs(&[(&alice, "join"), (&bob, "leave")])
    );
    // `at` combines with the filters.
    assert_eq!(
        members(&alice, &room, Some(&with_bob), Some("join"), None).await,
        pairs(&[(&alice, "join"), (&bob, "join")])
    );
}

#[tokio::test]
async fn a_former_member_cannot_see_past_their_leave_even_with_a_later_at() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    assert_eq!(bob.client.leave_room(&room, None).await.unwrap().status(), 200);
    carol.join(&room).await;
    let now = token(&alice).await;
    let seen = members(&bob, &room, Some(&now), None, None).await;
    assert_eq!(
        seen,
        pairs(&[(&alice, "join"), (&bob, "leave")]),
        "carol joined after bob left"
    );
}

#[tokio::test]
async fn membership_and_not_membership_together_keep_a_member_matching_either() {
    let s = common::start().await;
    let (alice, bob, carol, dave, room) = four_members(&s).await;
    // The spec's OR: invited, or not joined. (Synapse's AND would give carol alone.)
    assert_eq!(
        members(&alice, &room, None, Some("invite"), Some("join")).await,
        pairs(&[(&carol, "invite"), (&dave, "leave")])
    );
    assert_eq!(
        members(&alice, &room, None, Some("join"), Some("leave")).await,
        pairs(&[(&alice, "join"), (&bob, "join"), (&carol, "invite")])
    );
}

#[tokio::test]
async fn membership_or_not_membership_alone_filters_as_named() {
    let s = common::start().await;
    let (alice, bob, carol, dave, room) = four_members(&s).await;
    assert_eq!(
        members(&alice, &room, None, Some("join"), None).await,
        pairs(&[(&alice, "join"), (&bob, "join")])
    );
    assert_eq!(
        members(&alice, &room, None, None, Some("join")).await,
        pairs(&[(&carol, "invite"), (&dave, "leave")])
    );
    assert_eq!(members(&alice, &room, None, Some("ban"), None).await, vec![]);
}

#[tokio::test]
async fn an_at_that_is_not_a_sync_token_is_refused() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    for bad in ["yesterday", "s99999999", "s-1"] {
        let r = alice.client.get_members(&room, Some(bad), None, None).await.unwrap();
        assert_eq!(outcome!(r), (400, "M_INVALID_PARAM".into()), "at={bad}");
    }
}

#[tokio::test]
async fn joined_members_answers_only_users_joined_now() {
    let s = common::start().await;
    let (alice, bob, carol, dave, room) = four_members(&s).await;
    let stranger = s.register("stranger").await;
    match alice.client.get_joined_members(&room).await.unwrap() {
        GetJoinedMembersResponse::Ok(ok) => {
            let mut joined: Vec<String> = ok.joined.into_keys().collect();
            joined.sort();
            let mut expected = vec![alice.id.clone(), bob.id.clone()];
            expected.sort();
            assert_eq!(joined, expected);
        }
        other => panic!("a member was refused: {other:?}"),
    }
    for (who, what) in [
        (&dave, "a former member"),
        (&carol, "an invitee"),
        (&stranger, "a stranger"),
    ] {
        let r = who.client.get_joined_members(&room).await.unwrap();
        assert_eq!(outcome!(r), (403, "M_FORBIDDEN".into()), "{what}");
    }
}
