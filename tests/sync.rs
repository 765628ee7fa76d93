//! Sync, initialSync, messages and the start-up endpoints, through the generated client.

mod common;

use common::{TestServer, User};
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use serde_json::json;
use std::time::{Duration, Instant};

fn obj(v: serde_json::Value) -> models::JsonObject {
    match v {
        serde_json::Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

async fn sync(user: &User, since: Option<&str>, timeout: Option<i64>, filter: Option<&str>) -> models::SyncResponse {
    match user.client.sync(since, timeout, filter, None, None).await.unwrap() {
        SyncResponse::Ok(ok) => ok,
        other => panic!("sync failed: {other:?}"),
    }
}

async fn invite(by: &User, room: &str, who: &User) {
    let body = models::PostRoomsRoomIdInviteBody {
        user_id: Some(who.id.clone()),
        reason: None,
        ..Default::default()
    };
    match by.client.post_rooms_room_id_invite(room, &body).await.unwrap() {
        PostRoomsRoomIdInviteResponse::Ok(_) => {}
        other => panic!("invite failed: {other:?}"),
    }
}

async fn join(user: &User, room: &str) {
    match user.client.post_rooms_room_id_join(room, None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::Ok(_) => {}
        other => panic!("join failed: {other:?}"),
    }
}

async fn send(user: &User, room: &str, txn: &str, body: &str) -> String {
    let content = obj(json!({"msgtype": "m.text", "body": body}));
    match user
        .client
        .send_message(room, "m.room.message", txn, &content)
        .await
        .unwrap()
    {
        SendMessageResponse::Ok(ok) => ok.event_id,
        other => panic!("send failed: {other:?}"),
    }
}

fn bodies(events: &[models::ClientEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.r#type == "m.room.message")
        .map(|e| e.content["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// alice's public room with bob in it.
async fn shared_room(s: &TestServer) -> (User, User, String) {
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    join(&bob, &room).await;
    (alice, bob, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_sync_returns_within_100_ms_after_another_user_invites_the_waiting_user() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PrivateChat).await;
    let since = sync(&bob, None, None, None).await.next_batch;

    let waiting = {
        let client = bob.client.clone();
        let since = since.clone();
        tokio::spawn(async move {
            let resp = client.sync(Some(&since), Some(30000), None, None, None).await.unwrap();
            (resp, Instant::now())
        })
    };
    // The sync is parked on the stream before anything happens.
    while s.service.waiting_syncs() == 0 {
        tokio::task::yield_now().await;
    }
    invite(&alice, &room, &bob).await;
    let invited_at = Instant::now();
    let (resp, returned_at) = waiting.await.unwrap();
    let elapsed = returned_at.saturating_duration_since(invited_at);
    eprintln!("the waiting sync returned {elapsed:?} after the invite");
    assert!(
        elapsed < Duration::from_millis(100),
        "sync returned {elapsed:?} after the invite"
    );
    match resp {
        SyncResponse::Ok(ok) => {
            assert!(ok.rooms.invite.contains_key(&room), "{:?}", ok.rooms);
            assert_ne!(ok.next_batch, since);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_batch_tokens_stay_valid_across_a_restart_so_no_event_is_lost_or_repeated() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    send(&alice, &room, "t1", "before").await;
    let first = sync(&bob, None, None, None).await;
    assert_eq!(bodies(&first.rooms.join[&room].timeline.events), vec!["before"]);
    let token = first.next_batch;

    let s = s.restart().await;
    let two = send(&alice, &room, "t2", "after one").await;
    let three = send(&alice, &room, "t3", "after two").await;
    let resumed = sync(&bob, Some(&token), None, None).await;
    let timeline = &resumed.rooms.join[&room].timeline;
    let ids: Vec<&str> = timeline.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(
        ids,
        vec![two.as_str(), three.as_str()],
        "exactly the events after the token"
    );
    assert!(!timeline.limited);

    let after = sync(&bob, Some(&resumed.next_batch), Some(0), None).await;
    assert!(after.rooms.join.is_empty(), "nothing new: {:?}", after.rooms.join);
    // full_state answers at once with every joined room and its state, and no old events.
    let full = match bob
        .client
        .sync(Some(&resumed.next_batch), Some(30000), None, Some(true), None)
        .await
        .unwrap()
    {
        SyncResponse::Ok(ok) => ok,
        other => panic!("{other:?}"),
    };
    let joined = &full.rooms.join[&room];
    assert!(joined.timeline.events.is_empty());
    assert!(joined.state.events.iter().any(|e| e.r#type == "m.room.create"));
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_shows_joined_rooms_with_state_and_invites_with_stripped_state() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let mut req = common::room_request();
    req.name = Some("Monkeys".into());
    req.room_alias_name = Some("monkeys".into());
    let room = alice.create_room_with(&req).await;
    invite(&alice, &room, &bob).await;

    let alice_sync = sync(&alice, None, None, None).await;
    let joined = &alice_sync.rooms.join[&room];
    let state_types: Vec<&str> = joined
        .state
        .events
        .iter()
        .chain(&joined.timeline.events)
        .filter(|e| e.state_key.is_some())
        .map(|e| e.r#type.as_str())
        .collect();
    for t in ["m.room.create", "m.room.power_levels", "m.room.name", "m.room.member"] {
        assert!(state_types.contains(&t), "{t} missing from {state_types:?}");
    }
    assert!(joined.timeline.prev_batch.is_some());

    let bob_sync = sync(&bob, None, None, None).await;
    assert!(bob_sync.rooms.join.is_empty());
    let stripped = &bob_sync.rooms.invite[&room].invite_state.events;
    let find = |t: &str, key: &str| stripped.iter().find(|e| e.r#type == t && e.state_key == key);
    assert_eq!(find("m.room.name", "").unwrap().content["name"], "Monkeys");
    assert_eq!(find("m.room.join_rules", "").unwrap().content["join_rule"], "invite");
    assert!(find("m.room.create", "").is_some());
    assert_eq!(
        find("m.room.canonical_alias", "").unwrap().content["alias"],
        "#monkeys:localhost"
    );
    let own = find("m.room.member", &bob.id).unwrap();
    assert_eq!(own.content["membership"], "invite");
    assert_eq!(own.sender, alice.id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_limits_the_timeline_and_marks_it_limited_with_a_prev_batch_for_messages() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    let since = sync(&bob, None, None, None).await.next_batch;
    for i in 0..5 {
        send(&alice, &room, &format!("t{i}"), &format!("m{i}")).await;
    }
    let filter_id = match bob
        .client
        .define_filter(&bob.id, &obj(json!({"room": {"timeline": {"limit": 2}}})))
        .await
        .unwrap()
    {
        DefineFilterResponse::Ok(ok) => ok.filter_id,
        other => panic!("{other:?}"),
    };
    for filter in [filter_id.as_str(), r#"{"room":{"timeline":{"limit":2}}}"#] {
        let resp = sync(&bob, Some(&since), None, Some(filter)).await;
        let timeline = &resp.rooms.join[&room].timeline;
        assert_eq!(bodies(&timeline.events), vec!["m3", "m4"], "filter {filter}");
        assert!(timeline.limited);
        // The rest is reachable backwards from prev_batch.
        let prev = timeline.prev_batch.clone().unwrap();
        match bob
            .client
            .get_room_events(&room, Some(&prev), Some(&since), "b", Some(10), None)
            .await
            .unwrap()
        {
            GetRoomEventsResponse::Ok(page) => assert_eq!(bodies(&page.chunk), vec!["m2", "m1", "m0"]),
            other => panic!("{other:?}"),
        }
    }
    match bob.client.get_filter(&bob.id, &filter_id).await.unwrap() {
        GetFilterResponse::Ok(f) => assert_eq!(f["room"]["timeline"]["limit"], 2),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        alice.client.get_filter(&bob.id, &filter_id).await.unwrap(),
        GetFilterResponse::Forbidden(_)
    ));
    assert!(matches!(
        bob.client
            .sync(None, None, Some("no-such-filter"), None, None)
            .await
            .unwrap(),
        SyncResponse::BadRequest(_)
    ));
    assert!(matches!(
        bob.client.sync(Some("garbage"), None, None, None, None).await.unwrap(),
        SyncResponse::BadRequest(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicked_and_banned_users_find_the_room_under_leave_with_their_membership_event() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    let carol = s.register("carol").await;
    join(&carol, &room).await;
    let bob_since = sync(&bob, None, None, None).await.next_batch;
    let carol_since = sync(&carol, None, None, None).await.next_batch;
    let change = |user: &User| models::MembershipChange {
        user_id: user.id.clone(),
        reason: Some("test".into()),
    };
    assert!(matches!(
        alice.client.kick(&room, &change(&bob)).await.unwrap(),
        KickResponse::Ok(_)
    ));
    assert!(matches!(
        alice.client.ban(&room, &change(&carol)).await.unwrap(),
        BanResponse::Ok(_)
    ));
    send(&alice, &room, "after", "not for them").await;
    for (user, since, membership) in [(&bob, &bob_since, "leave"), (&carol, &carol_since, "ban")] {
        let resp = sync(user, Some(since), None, None).await;
        assert!(!resp.rooms.join.contains_key(&room));
        let left = &resp.rooms.leave[&room];
        let last = left.timeline.events.last().unwrap();
        assert_eq!(last.state_key.as_deref(), Some(user.id.as_str()));
        assert_eq!(last.content["membership"], membership);
        assert!(bodies(&left.timeline.events).is_empty(), "nothing after the removal");
        let again = sync(user, Some(&resp.next_batch), Some(0), None).await;
        assert!(again.rooms.leave.is_empty(), "the removal is reported once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_lists_joined_rooms_with_messages_and_invites_with_the_inviter_event() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    send(&alice, &room, "t1", "one").await;
    send(&alice, &room, "t2", "two").await;
    let other = alice.create_room(Preset::PrivateChat).await;
    invite(&alice, &other, &bob).await;

    let snapshot = match bob.client.initial_sync(Some(1)).await.unwrap() {
        InitialSyncResponse::Ok(ok) => ok,
        other => panic!("{other:?}"),
    };
    assert!(snapshot.presence.is_empty());
    let joined = snapshot.rooms.iter().find(|r| r.room_id == room).unwrap();
    assert_eq!(joined.membership, "join");
    assert_eq!(joined.visibility.as_deref(), Some("public"));
    let messages = joined.messages.as_ref().unwrap();
    assert_eq!(bodies(&messages.chunk), vec!["two"]);
    assert_eq!(messages.end.as_deref(), Some(snapshot.end.as_str()));
    assert!(joined
        .state
        .as_ref()
        .unwrap()
        .iter()
        .any(|e| e.r#type == "m.room.create"));
    let invited = snapshot.rooms.iter().find(|r| r.room_id == other).unwrap();
    assert_eq!(invited.membership, "invite");
    assert_eq!(invited.inviter.as_deref(), Some(alice.id.as_str()));
    let invite_event = invited.invite.as_ref().unwrap();
    assert_eq!(invite_event.sender, alice.id);
    assert_eq!(invite_event.content["membership"], "invite");

    match bob.client.room_initial_sync(&room).await.unwrap() {
        RoomInitialSyncResponse::Ok(one) => {
            assert_eq!(one.room_id, room);
            assert_eq!(bodies(&one.messages.unwrap().chunk), vec!["one", "two"]);
        }
        other => panic!("{other:?}"),
    }
    match bob.client.room_initial_sync(&other).await.unwrap() {
        RoomInitialSyncResponse::Ok(one) => {
            assert_eq!(one.membership, "invite");
            assert_eq!(one.inviter.as_deref(), Some(alice.id.as_str()));
        }
        other => panic!("{other:?}"),
    }
    let stranger = s.register("stranger").await;
    assert!(matches!(
        stranger.client.room_initial_sync(&room).await.unwrap(),
        RoomInitialSyncResponse::Forbidden(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_with_the_same_transaction_id_returns_the_first_event_and_sends_nothing() {
    let s = common::start().await;
    let (alice, _bob, room) = shared_room(&s).await;
    let first = send(&alice, &room, "same", "once").await;
    let pos = s.service_pos();
    let again = send(&alice, &room, "same", "once").await;
    assert_eq!(first, again);
    assert_eq!(s.service_pos(), pos, "no new event");
    let other = send(&alice, &room, "different", "twice").await;
    assert_ne!(other, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_joined_members_with_enough_power_may_send_messages() {
    let s = common::start().await;
    let (alice, bob, room) = shared_room(&s).await;
    let stranger = s.register("stranger").await;
    let content = obj(json!({"msgtype": "m.text", "body": "hi"}));
    assert!(matches!(
        stranger
            .client
            .send_message(&room, "m.room.message", "t", &content)
            .await
            .unwrap(),
        SendMessageResponse::Forbidden(_)
    ));
    let levels = match alice
        .client
        .get_room_state_event_empty_key(&room, "m.room.power_levels")
        .await
        .unwrap()
    {
        GetRoomStateEventEmptyKeyResponse::Ok(mut pl) => {
            pl.insert("events_default".into(), json!(50));
            pl
        }
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        alice
            .client
            .set_room_state_event_empty_key(&room, "m.room.power_levels", &levels)
            .await
            .unwrap(),
        SetRoomStateEventEmptyKeyResponse::Ok(_)
    ));
    match bob
        .client
        .send_message(&room, "m.room.message", "t", &content)
        .await
        .unwrap()
    {
        SendMessageResponse::Forbidden(e) => assert!(e.error.unwrap().contains("below the 50 needed")),
        other => panic!("{other:?}"),
    }
    send(&alice, &room, "t", "the admin still can").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_honour_history_visibility_for_new_former_and_non_members() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let room = alice.create_room(Preset::PublicChat).await;
    send(&alice, &room, "t1", "shared history").await;
    let page = |user: &User| {
        let (client, room) = (user.client.clone(), room.clone());
        async move {
            client
                .get_room_events(&room, None, None, "b", Some(50), None)
                .await
                .unwrap()
        }
    };

    // shared (the default): a new member sees what came before.
    join(&bob, &room).await;
    match page(&bob).await {
        GetRoomEventsResponse::Ok(p) => {
            assert_eq!(bodies(&p.chunk), vec!["shared history"]);
            assert!(p.end.is_none(), "the start of the room was reached");
        }
        other => panic!("{other:?}"),
    }
    // Non-members see nothing.
    assert!(matches!(page(&carol).await, GetRoomEventsResponse::Forbidden(_)));

    // A former member sees up to their leave, not after.
    assert!(matches!(
        bob.client.leave_room(&room, None).await.unwrap(),
        LeaveRoomResponse::Ok(_)
    ));
    send(&alice, &room, "t2", "after bob left").await;
    match page(&bob).await {
        GetRoomEventsResponse::Ok(p) => {
            assert_eq!(bodies(&p.chunk), vec!["shared history"]);
            assert_eq!(p.chunk[0].content["membership"], "leave", "newest first: bob's leave");
        }
        other => panic!("{other:?}"),
    }

    // joined: a member who joins now sees nothing sent under `joined` before
    // their join; what was sent while the room was `shared` stays readable,
    // because each event is judged by the setting in force when it was sent.
    let joined_only = obj(json!({"history_visibility": "joined"}));
    assert!(matches!(
        alice
            .client
            .set_room_state_event_empty_key(&room, "m.room.history_visibility", &joined_only)
            .await
            .unwrap(),
        SetRoomStateEventEmptyKeyResponse::Ok(_)
    ));
    send(&alice, &room, "t3", "before carol").await;
    join(&carol, &room).await;
    send(&alice, &room, "t4", "after carol").await;
    match page(&carol).await {
        GetRoomEventsResponse::Ok(p) => {
            assert_eq!(
                bodies(&p.chunk),
                vec!["after carol", "after bob left", "shared history"]
            )
        }
        other => panic!("{other:?}"),
    }

    // Forwards from the start, in pages.
    match alice
        .client
        .get_room_events(&room, None, None, "f", Some(2), None)
        .await
        .unwrap()
    {
        GetRoomEventsResponse::Ok(p) => {
            assert_eq!(p.chunk.len(), 2);
            assert_eq!(p.chunk[0].r#type, "m.room.create");
            let next = p.end.expect("more to come");
            match alice
                .client
                .get_room_events(&room, Some(&next), None, "f", Some(1), None)
                .await
                .unwrap()
            {
                GetRoomEventsResponse::Ok(q) => assert_eq!(q.chunk[0].r#type, "m.room.power_levels"),
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        alice
            .client
            .get_room_events(&room, None, None, "x", None, None)
            .await
            .unwrap(),
        GetRoomEventsResponse::BadRequest(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_endpoints_answer_as_clients_expect() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    match s.client().get_versions().await.unwrap() {
        GetVersionsResponse::Ok(v) => {
            assert!(v.versions.contains(&"v1.1".to_string()), "{:?}", v.versions);
            assert!(!v.versions.contains(&"v1.4".to_string()), "{:?}", v.versions);
        }
        other => panic!("{other:?}"),
    }
    match alice.client.get_capabilities().await.unwrap() {
        GetCapabilitiesResponse::Ok(c) => {
            assert_eq!(c.capabilities["m.change_password"]["enabled"], false);
            assert_eq!(c.capabilities["m.room_versions"]["default"], "10");
            assert_eq!(c.capabilities["m.room_versions"]["available"]["10"], "stable");
        }
        other => panic!("{other:?}"),
    }
    match alice.client.get_push_rules().await.unwrap() {
        GetPushRulesResponse::Ok(r) => assert_eq!(r.global["override"], json!([])),
        other => panic!("{other:?}"),
    }
    let trailing = s
        .raw(
            "GET",
            "/_matrix/client/v3/pushrules/",
            &[("Authorization", &format!("Bearer {}", register_token(&s).await))],
            b"",
        )
        .await;
    assert_eq!(trailing.status, 200, "clients ask for /pushrules/ with a slash");
    match s.client().get_well_known().await.unwrap() {
        GetWellKnownResponse::Ok(w) => assert_eq!(w.m_homeserver["base_url"], s.base_url.as_str()),
        other => panic!("{other:?}"),
    }
    match s.client().get_profile(&alice.id).await.unwrap() {
        GetProfileResponse::Ok(p) => assert_eq!(p.displayname.as_deref(), Some("alice")),
        other => panic!("{other:?}"),
    }
    let name = models::SetDisplayNameBody {
        displayname: Some("Alice A.".into()),
    };
    assert!(matches!(
        alice.client.set_display_name(&alice.id, &name).await.unwrap(),
        SetDisplayNameResponse::Ok(_)
    ));
    match s.client().get_display_name(&alice.id).await.unwrap() {
        GetDisplayNameResponse::Ok(p) => assert_eq!(p.displayname.as_deref(), Some("Alice A.")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.client().get_profile("@nobody:localhost").await.unwrap(),
        GetProfileResponse::NotFound(_)
    ));
    s.raw("GET", "/_matrix/client/v3/voip/turnServer", &[], b"")
        .await
        .assert_error(404, "M_UNRECOGNIZED");
}

/// The well-known base_url is the bound address (tests bind a free port), so
/// the harness's own URL must come back; this registers a throwaway user for raw requests.
async fn register_token(s: &TestServer) -> String {
    let anon = s.client();
    let mut body = models::RegisterRequest {
        username: Some("raw".into()),
        password: None,
        device_id: None,
        initial_device_display_name: None,
        inhibit_login: None,
        auth: None,
    };
    let session = match anon.register(None, Some(&body)).await.unwrap() {
        RegisterResponse::Unauthorized(u) => u.session.unwrap(),
        other => panic!("{other:?}"),
    };
    body.auth = Some(models::AuthenticationData {
        r#type: Some("m.login.dummy".into()),
        session: Some(session),
    });
    match anon.register(None, Some(&body)).await.unwrap() {
        RegisterResponse::Ok(ok) => ok.access_token.unwrap(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_answers_waiting_syncs_at_once_so_long_polls_do_not_hold_the_server() {
    let s = common::start().await;
    let bob = s.register("bob").await;
    let since = sync(&bob, None, None, None).await.next_batch;
    let waiting = {
        let client = bob.client.clone();
        tokio::spawn(async move { client.sync(Some(&since), Some(600_000), None, None, None).await })
    };
    while s.service.waiting_syncs() == 0 {
        tokio::task::yield_now().await;
    }
    // What the binary does when SIGINT or SIGTERM arrives.
    s.service.end_waiting_syncs();
    match waiting.await.unwrap().unwrap() {
        SyncResponse::Ok(ok) => assert!(ok.rooms.join.is_empty() && ok.rooms.invite.is_empty()),
        other => panic!("{other:?}"),
    }
    // Later syncs do not wait either.
    let next = sync(&bob, None, None, None).await.next_batch;
    sync(&bob, Some(&next), Some(600_000), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_beyond_the_stream_is_refused_not_silently_served() {
    let s = common::start().await;
    let (alice, _bob, room) = shared_room(&s).await;
    let beyond = format!("s{}", s.service_pos() + 1);
    match alice
        .client
        .sync(Some(&beyond), Some(0), None, None, None)
        .await
        .unwrap()
    {
        SyncResponse::BadRequest(e) => {
            assert_eq!(e.errcode, "M_INVALID_PARAM");
            assert!(e.error.unwrap_or_default().contains("beyond"));
        }
        other => panic!("{other:?}"),
    }
    match alice
        .client
        .get_room_events(&room, Some(&beyond), None, "b", Some(10), None)
        .await
        .unwrap()
    {
        GetRoomEventsResponse::BadRequest(e) => assert_eq!(e.errcode, "M_INVALID_PARAM"),
        other => panic!("{other:?}"),
    }
    // The stream's own end is fine.
    let now = format!("s{}", s.service_pos());
    assert!(matches!(
        alice.client.sync(Some(&now), Some(0), None, None, None).await.unwrap(),
        SyncResponse::Ok(_)
    ));
}
