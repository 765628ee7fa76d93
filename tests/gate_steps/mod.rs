//! Steps through the generated client for the tests of room versions,
//! knocking, restricted joins and reasons (`room_versions.rs`, `knock.rs`,
//! `restricted_joins.rs`, `reasons.rs`).
#![allow(dead_code)]

use crate::common::{room_request, User};
use matrix_membership::generated::api::*;
use matrix_membership::generated::models;
use serde_json::{json, Value};

/// A JSON object literal as the generated client's body type.
pub fn object(v: Value) -> models::JsonObject {
    v.as_object().cloned().expect("a JSON object")
}

/// `join_rules` content that lets members of `allowed` in through `rule`.
pub fn allow(rule: &str, allowed: &str) -> Value {
    json!({"join_rule": rule, "allow": [{"type": "m.room_membership", "room_id": allowed}]})
}

/// createRoom at `version` with the join rules `join_rules` as initial
/// state: the status and the room id (when created).
pub async fn try_create(owner: &User, version: Option<&str>, join_rules: Option<Value>) -> (u16, Option<String>) {
    let mut req = room_request();
    req.preset = Some(models::CreateRoomRequestPreset::PrivateChat);
    req.room_version = version.map(str::to_string);
    if let Some(content) = join_rules {
        req.initial_state = Some(vec![models::StateEventInput {
            r#type: "m.room.join_rules".into(),
            state_key: Some(String::new()),
            content: object(content),
        }]);
    }
    let resp = owner.client.create_room(&req).await.unwrap();
    let status = resp.status();
    match resp {
        CreateRoomResponse::Ok(ok) => (status, Some(ok.room_id)),
        _ => (status, None),
    }
}

/// A room of `owner` at `version` with `join_rules`, which must be created.
pub async fn room_at(owner: &User, version: &str, join_rules: Value) -> String {
    match try_create(owner, Some(version), Some(join_rules)).await {
        (200, Some(room)) => room,
        other => panic!("createRoom at v{version} failed: {other:?}"),
    }
}

/// `POST /knock/{room}` with an optional reason: the status and the answer.
pub async fn knock(user: &User, room: &str, reason: Option<&str>) -> (u16, KnockRoomResponse) {
    let body = models::KnockRoomBody {
        reason: reason.map(str::to_string),
    };
    let resp = user.client.knock_room(room, None, None, Some(&body)).await.unwrap();
    (resp.status(), resp)
}

/// The errcode of an error answer, whatever the operation.
pub fn errcode_of(resp: &impl std::fmt::Debug) -> String {
    let text = format!("{resp:?}");
    text.split("errcode: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
        .to_string()
}

/// `POST /rooms/{room}/join` without a body: the status.
pub async fn join_status(user: &User, room: &str) -> u16 {
    user.client.post_rooms_room_id_join(room, None).await.unwrap().status()
}

/// `POST /rooms/{room}/invite`: the status.
pub async fn invite_status(by: &User, room: &str, whom: &User) -> u16 {
    let body = models::PostRoomsRoomIdInviteBody {
        user_id: Some(whom.id.clone()),
        reason: None,
        ..Default::default()
    };
    by.client.post_rooms_room_id_invite(room, &body).await.unwrap().status()
}

/// `POST /rooms/{room}/kick`: the status.
pub async fn kick_status(by: &User, room: &str, whom: &User) -> u16 {
    let body = models::MembershipChange {
        user_id: whom.id.clone(),
        reason: None,
    };
    by.client.kick(room, &body).await.unwrap().status()
}

/// `POST /rooms/{room}/leave` without a body: the status.
pub async fn leave_status(user: &User, room: &str) -> u16 {
    user.client.leave_room(room, None).await.unwrap().status()
}

/// The content of `whom`'s member event in `room`, as `reader` sees it.
pub async fn member_content(reader: &User, room: &str, whom: &str) -> models::JsonObject {
    match reader
        .client
        .get_room_state_event(room, "m.room.member", whom)
        .await
        .unwrap()
    {
        GetRoomStateEventResponse::Ok(content) => content,
        other => panic!("no member event of {whom} in {room}: {other:?}"),
    }
}

/// `whom`'s membership in `room`, as `reader` sees it.
pub async fn membership(reader: &User, room: &str, whom: &str) -> String {
    member_content(reader, room, whom).await["membership"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Sets `room`'s power levels content (a full replacement) as `by`.
pub async fn set_power_levels(by: &User, room: &str, content: Value) {
    let resp = by
        .client
        .set_room_state_event_empty_key(room, "m.room.power_levels", &object(content))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{resp:?}");
}

/// A full initial sync of `user`.
pub async fn sync(user: &User, since: Option<&str>) -> models::SyncResponse {
    match user.client.sync(since, None, None, None, None).await.unwrap() {
        SyncResponse::Ok(ok) => ok,
        other => panic!("sync failed: {other:?}"),
    }
}
