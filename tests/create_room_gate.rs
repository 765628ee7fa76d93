//! createRoom through the generated client: every initial event is judged by
//! the one authorization gate, and a refused one refuses the whole request
//! and creates nothing (no room, no alias, no event).

mod common;

use common::{room_request, TestServer, User};
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use serde_json::json;

fn state(event_type: &str, state_key: &str, content: serde_json::Value) -> models::StateEventInput {
    models::StateEventInput {
        r#type: event_type.into(),
        state_key: Some(state_key.into()),
        content: content.as_object().unwrap().clone(),
    }
}

async fn joined_rooms(user: &User) -> Vec<String> {
    match user.client.get_joined_rooms().await.unwrap() {
        GetJoinedRoomsResponse::Ok(ok) => ok.joined_rooms,
        other => panic!("{other:?}"),
    }
}

/// What a refused createRoom must leave: no new event anywhere, no room for
/// anyone, and the alias it asked for still free.
async fn assert_nothing_created(s: &TestServer, pos: u64, users: &[&User], alias: &str) {
    assert_eq!(s.service_pos(), pos, "a refused createRoom wrote events");
    for u in users {
        assert!(joined_rooms(u).await.is_empty(), "{} is in a room", u.id);
    }
    let got = s.client().get_room_alias(alias).await.unwrap();
    assert!(
        matches!(got, GetRoomAliasResponse::NotFound(_)),
        "the alias was claimed: {got:?}"
    );
}

/// A refused case: the request, the status and errcode, and a phrase of the reason.
struct Refused {
    name: &'static str,
    request: models::CreateRoomRequest,
    status: u16,
    errcode: &'static str,
    phrase: &'static str,
}

fn with(f: impl FnOnce(&mut models::CreateRoomRequest)) -> models::CreateRoomRequest {
    let mut req = room_request();
    req.preset = Some(Preset::PrivateChat);
    req.room_alias_name = Some("refused".into());
    f(&mut req);
    req
}

fn error_of(resp: &CreateRoomResponse) -> (u16, &models::Error) {
    match resp {
        CreateRoomResponse::BadRequest(e) => (400, e),
        CreateRoomResponse::Forbidden(e) => (403, e),
        CreateRoomResponse::NotFound(e) => (404, e),
        CreateRoomResponse::PayloadTooLarge(e) => (413, e),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_room_with_any_refused_initial_event_creates_nothing() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let (a, b) = (alice.id.clone(), bob.id.clone());
    let cases = vec![
        Refused {
            name: "force-join another user through initial_state",
            request: with(|r| r.initial_state = Some(vec![state("m.room.member", &b, json!({"membership": "join"}))])),
            status: 403,
            errcode: "M_FORBIDDEN",
            phrase: "Cannot force another user to join",
        },
        Refused {
            name: "an m.room.create in initial_state",
            request: with(|r| {
                r.initial_state = Some(vec![state(
                    "m.room.create",
                    "",
                    json!({"creator": b, "room_version": "1"}),
                )])
            }),
            status: 403,
            errcode: "M_FORBIDDEN",
            phrase: "m.room.create can only be its first event",
        },
        Refused {
            name: "inviting the creator",
            request: with(|r| r.invite = Some(vec![a.clone()])),
            status: 403,
            errcode: "M_FORBIDDEN",
            phrase: "cannot invite yourself",
        },
        Refused {
            name: "a power level above the creator's own, by override",
            request: with(|r| {
                r.power_level_content_override = Some(
                    json!({"users": {a.clone(): 100, b.clone(): 150}})
                        .as_object()
                        .unwrap()
                        .clone(),
                )
            }),
            status: 403,
            errcode: "M_FORBIDDEN",
            phrase: "above your power level 100",
        },
        Refused {
            name: "a power-levels event in initial_state the creator could not send",
            request: with(|r| {
                r.initial_state = Some(vec![state(
                    "m.room.power_levels",
                    "",
                    json!({"users": {a.clone(): 100}, "ban": 200}),
                )])
            }),
            status: 403,
            errcode: "M_FORBIDDEN",
            phrase: "above your power level 100",
        },
        Refused {
            name: "a member event without a membership",
            request: with(|r| r.initial_state = Some(vec![state("m.room.member", &b, json!({}))])),
            status: 400,
            errcode: "M_BAD_JSON",
            phrase: "needs a membership",
        },
        Refused {
            name: "power levels that are not numbers",
            request: with(|r| {
                r.power_level_content_override = Some(json!({"ban": "lots"}).as_object().unwrap().clone())
            }),
            status: 400,
            errcode: "M_BAD_JSON",
            phrase: "power_levels",
        },
        Refused {
            name: "an unsupported room version",
            request: with(|r| r.room_version = Some("1".into())),
            status: 400,
            errcode: "M_UNSUPPORTED_ROOM_VERSION",
            phrase: "not supported",
        },
        Refused {
            name: "an initial event over the size limit",
            request: with(|r| r.topic = Some("x".repeat(65_400))),
            status: 413,
            errcode: "M_TOO_LARGE",
            phrase: "bytes",
        },
    ];
    for case in cases {
        let pos = s.service_pos();
        let resp = alice.client.create_room(&case.request).await.unwrap();
        let (status, error) = error_of(&resp);
        assert_eq!(
            (status, error.errcode.as_str()),
            (case.status, case.errcode),
            "{}",
            case.name
        );
        let message = error.error.clone().unwrap_or_default();
        assert!(
            message.contains(case.phrase),
            "{}: {message:?} should say {:?}",
            case.name,
            case.phrase
        );
        assert_nothing_created(&s, pos, &[&alice, &bob], "#refused:localhost").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_rules_allow_in_initial_state_is_written_judged_by_the_same_gate() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let mut req = room_request();
    req.preset = Some(Preset::PublicChat);
    req.initial_state = Some(vec![
        state("m.room.member", &bob.id, json!({"membership": "ban", "reason": "spam"})),
        state("m.room.member", &carol.id, json!({"membership": "invite"})),
        state("m.room.join_rules", "", json!({"join_rule": "invite"})),
    ]);
    let room = alice.create_room_with(&req).await;
    let member = |user: &str| {
        let (alice, room, user) = (&alice, room.clone(), user.to_string());
        async move {
            match alice
                .client
                .get_room_state_event(&room, "m.room.member", &user)
                .await
                .unwrap()
            {
                GetRoomStateEventResponse::Ok(c) => c["membership"].as_str().unwrap().to_string(),
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(member(&bob.id).await, "ban");
    assert_eq!(member(&carol.id).await, "invite");
    // initial_state's join rule replaced the preset's (public): bob stays out either way,
    // and an uninvited user cannot get in.
    let dave = s.register("dave").await;
    let resp = dave.client.post_rooms_room_id_join(&room, None).await.unwrap();
    assert!(matches!(resp, PostRoomsRoomIdJoinResponse::Forbidden(_)), "{resp:?}");
    carol.join(&room).await;
    let resp = bob.client.post_rooms_room_id_join(&room, None).await.unwrap();
    assert!(
        matches!(resp, PostRoomsRoomIdJoinResponse::Forbidden(ref e) if e.error.as_deref().unwrap_or("").contains("banned"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_racing_create_rooms_for_one_alias_exactly_one_wins_and_the_others_leave_nothing() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let mut req = room_request();
    req.room_alias_name = Some("contested".into());
    let pos = s.service_pos();
    let attempts = futures::future::join_all((0..8).map(|_| alice.client.create_room(&req))).await;
    let mut won = Vec::new();
    for resp in attempts {
        match resp.unwrap() {
            CreateRoomResponse::Ok(ok) => won.push(ok.room_id),
            CreateRoomResponse::BadRequest(e) => assert_eq!(e.errcode, "M_ROOM_IN_USE"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one creation wins");
    assert_eq!(joined_rooms(&alice).await, won, "the losers left no room behind");
    let events_per_room = s.service_pos() - pos;
    assert!(
        events_per_room > 0 && events_per_room < 20,
        "only the winner wrote events: {events_per_room}"
    );
    match s.client().get_room_alias("#contested:localhost").await.unwrap() {
        GetRoomAliasResponse::Ok(ok) => assert_eq!(ok.room_id, won[0]),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_invitee_refuses_the_room_with_404() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let pos = s.service_pos();
    let mut req = room_request();
    req.invite = Some(vec!["@nobody:localhost".into()]);
    req.room_alias_name = Some("refused".into());
    let resp = alice.client.create_room(&req).await.unwrap();
    let (status, e) = error_of(&resp);
    assert_eq!((status, e.errcode.as_str()), (404, "M_NOT_FOUND"));
    assert_nothing_created(&s, pos, &[&alice], "#refused:localhost").await;
}
