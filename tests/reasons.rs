//! A `reason` given to any membership change is kept in its member event:
//! invite, join (both paths), knock, leave, kick, ban and unban.

mod common;
mod gate_steps;

use gate_steps::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use serde_json::json;

fn change(user: &common::User, reason: &str) -> models::MembershipChange {
    models::MembershipChange {
        user_id: user.id.clone(),
        reason: Some(reason.into()),
    }
}

async fn reason_of(reader: &common::User, room: &str, whom: &common::User) -> (String, Option<String>) {
    let content = member_content(reader, room, &whom.id).await;
    (
        content["membership"].as_str().unwrap_or("").to_string(),
        content.get("reason").and_then(|r| r.as_str()).map(str::to_string),
    )
}

fn expect(membership: &str, reason: &str) -> (String, Option<String>) {
    (membership.to_string(), Some(reason.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_membership_change_keeps_its_reason() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;

    let invite = models::PostRoomsRoomIdInviteBody {
        user_id: Some(bob.id.clone()),
        reason: Some("come along".into()),
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
    assert_eq!(reason_of(&alice, &room, &bob).await, expect("invite", "come along"));

    let join = models::PostRoomsRoomIdJoinBody {
        reason: Some("here I am".into()),
    };
    assert_eq!(
        bob.client
            .post_rooms_room_id_join(&room, Some(&join))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(reason_of(&alice, &room, &bob).await, expect("join", "here I am"));

    let leave = models::LeaveRoomBody {
        reason: Some("off to lunch".into()),
    };
    assert_eq!(bob.client.leave_room(&room, Some(&leave)).await.unwrap().status(), 200);
    assert_eq!(reason_of(&alice, &room, &bob).await, expect("leave", "off to lunch"));

    // The other join path: /join/{roomIdOrAlias}.
    let token = format!("Bearer {}", bob.client.access_token().unwrap());
    let path = format!(
        "/_matrix/client/v3/join/{}",
        matrix_membership::generated::client::encode(&room)
    );
    let resp = s
        .raw(
            "POST",
            &path,
            &[("Authorization", &token), ("Content-Type", "application/json")],
            br#"{"reason": "back again"}"#,
        )
        .await;
    assert_eq!(resp.status, 200, "{:?}", resp.json);
    assert_eq!(reason_of(&alice, &room, &bob).await, expect("join", "back again"));

    assert_eq!(
        alice
            .client
            .kick(&room, &change(&bob, "too loud"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(reason_of(&alice, &room, &bob).await, expect("leave", "too loud"));

    assert_eq!(
        alice.client.ban(&room, &change(&bob, "spam")).await.unwrap().status(),
        200
    );
    assert_eq!(reason_of(&alice, &room, &bob).await, expect("ban", "spam"));

    assert_eq!(
        alice
            .client
            .unban(&room, &change(&bob, "second chance"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(reason_of(&alice, &room, &bob).await, expect("leave", "second chance"));

    let door = room_at(&alice, "10", json!({"join_rule": "knock"})).await;
    assert_eq!(knock(&bob, &door, Some("may I?")).await.0, 200);
    assert_eq!(reason_of(&alice, &door, &bob).await, expect("knock", "may I?"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_without_a_reason_stores_none() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    assert_eq!(reason_of(&alice, &room, &bob).await, ("join".to_string(), None));
    assert_eq!(kick_status(&alice, &room, &bob).await, 200);
    assert_eq!(reason_of(&alice, &room, &bob).await, ("leave".to_string(), None));
}
