//! Invite blocking (spec v1.18): `m.invite_permission_config` with
//! `default_action: block` refuses every way of inviting the user with
//! `M_INVITE_BLOCKED`, and holds their pending invites back from `/sync`.

mod common;

use common::{room_request, User};
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use serde_json::{json, Value};

/// A response's status and errcode ("" on success).
macro_rules! outcome {
    ($resp:expr) => {{
        let r = $resp;
        let body = r.to_json().unwrap();
        (r.status(), body["errcode"].as_str().unwrap_or("").to_string())
    }};
}

fn obj(v: Value) -> models::JsonObject {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn blocked() -> (u16, String) {
    (403, "M_INVITE_BLOCKED".to_string())
}

async fn set_config(user: &User, content: Value) {
    let r = user
        .client
        .set_account_data(&user.id, "m.invite_permission_config", &obj(content))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn invite(by: &User, room: &str, who: &User) -> (u16, String) {
    let body = models::PostRoomsRoomIdInviteBody {
        user_id: Some(who.id.clone()),
        reason: None,
        ..Default::default()
    };
    outcome!(by.client.post_rooms_room_id_invite(room, &body).await.unwrap())
}

async fn invites_in_sync(user: &User) -> Vec<String> {
    match user.client.sync(None, None, None, None, None).await.unwrap() {
        SyncResponse::Ok(ok) => ok.rooms.invite.into_keys().collect(),
        other => panic!("sync failed: {other:?}"),
    }
}

/// The rooms the v1 `/initialSync` lists as invites, and the types of its global account data.
async fn initial_sync_invites_and_account_data(user: &User) -> (Vec<String>, Vec<String>) {
    match user.client.initial_sync(None).await.unwrap() {
        InitialSyncResponse::Ok(ok) => (
            ok.rooms
                .into_iter()
                .filter(|r| r.membership == "invite")
                .map(|r| r.room_id)
                .collect(),
            ok.account_data
                .unwrap_or_default()
                .iter()
                .filter_map(|e| e.get("type").and_then(|t| t.as_str()).map(str::to_string))
                .collect(),
        ),
        other => panic!("initialSync failed: {other:?}"),
    }
}

async fn membership_of(viewer: &User, room: &str, who: &User) -> Option<String> {
    match viewer.client.get_members(room, None, None, None).await.unwrap() {
        GetMembersResponse::Ok(ok) => ok
            .chunk
            .into_iter()
            .find(|e| e.state_key.as_deref() == Some(who.id.as_str()))
            .and_then(|e| e.content["membership"].as_str().map(str::to_string)),
        other => panic!("/members failed: {other:?}"),
    }
}

#[tokio::test]
async fn an_invite_to_a_user_who_blocks_invites_is_refused_and_writes_nothing() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    set_config(&bob, json!({"default_action": "block"})).await;
    let pos = s.service_pos();
    assert_eq!(invite(&alice, &room, &bob).await, blocked());
    assert_eq!(s.service_pos(), pos, "a refused invite writes nothing");
    assert_eq!(membership_of(&alice, &room, &bob).await, None);
}

#[tokio::test]
async fn a_state_put_of_an_invite_member_event_is_refused_the_same_way() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    set_config(&bob, json!({"default_action": "block"})).await;
    let r = alice
        .client
        .set_room_state_event(&room, "m.room.member", &bob.id, &obj(json!({"membership": "invite"})))
        .await
        .unwrap();
    assert_eq!(outcome!(r), blocked());
    assert_eq!(membership_of(&alice, &room, &bob).await, None);
}

#[tokio::test]
async fn create_room_inviting_a_blocking_user_fails_as_a_whole_and_creates_nothing() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    set_config(&bob, json!({"default_action": "block"})).await;
    let pos = s.service_pos();
    let mut req = room_request();
    req.room_alias_name = Some("wanted".into());
    req.invite = Some(vec![carol.id.clone(), bob.id.clone()]);
    assert_eq!(outcome!(alice.client.create_room(&req).await.unwrap()), blocked());
    assert_eq!(s.service_pos(), pos, "no room, no event");
    match alice.client.get_joined_rooms().await.unwrap() {
        GetJoinedRoomsResponse::Ok(ok) => assert!(ok.joined_rooms.is_empty()),
        other => panic!("joined_rooms failed: {other:?}"),
    }
    assert!(invites_in_sync(&carol).await.is_empty(), "carol was not invited either");
    let alias = format!("#wanted:{}", s.service.server_name());
    assert_eq!(
        alice.client.get_room_alias(&alias).await.unwrap().status(),
        404,
        "the alias was not claimed"
    );
}

#[tokio::test]
async fn pending_invites_are_held_back_from_sync_while_the_user_blocks_invites() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    assert_eq!(invite(&alice, &room, &bob).await, (200, String::new()));
    assert_eq!(invites_in_sync(&bob).await, vec![room.clone()]);
    set_config(&bob, json!({"default_action": "block"})).await;
    assert!(
        invites_in_sync(&bob).await.is_empty(),
        "the spec: blocked invites are not served"
    );
    let (invites, account_data) = initial_sync_invites_and_account_data(&bob).await;
    assert!(invites.is_empty(), "nor by the v1 /initialSync");
    assert_eq!(account_data, vec!["m.invite_permission_config".to_string()]);
    set_config(&bob, json!({"default_action": "allow"})).await;
    assert_eq!(invites_in_sync(&bob).await, vec![room.clone()]);
    assert_eq!(initial_sync_invites_and_account_data(&bob).await.0, vec![room]);
}

#[tokio::test]
async fn only_default_action_block_in_global_account_data_blocks() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    let other = alice.create_room(Preset::PrivateChat).await;
    set_config(&bob, json!({"default_action": "allow"})).await;
    assert_eq!(invite(&alice, &room, &bob).await, (200, String::new()));
    set_config(&bob, json!({"default_action": "reject everything, please"})).await;
    assert_eq!(invite(&alice, &other, &bob).await, (200, String::new()));
    // As room account data the config means nothing.
    let carol = s.register("carol").await;
    let third = alice.create_room(Preset::PrivateChat).await;
    let r = carol
        .client
        .set_room_account_data(
            &carol.id,
            &third,
            "m.invite_permission_config",
            &obj(json!({"default_action": "block"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(invite(&alice, &third, &carol).await, (200, String::new()));
}

#[tokio::test]
async fn a_user_who_blocks_invites_still_joins_public_rooms_themself() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    set_config(&bob, json!({"default_action": "block"})).await;
    bob.join(&room).await;
    assert_eq!(membership_of(&alice, &room, &bob).await.as_deref(), Some("join"));
}
