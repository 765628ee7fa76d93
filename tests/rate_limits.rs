//! The 429s: per-user join and invite limits, and Synapse's login and
//! registration limits (`rc_login`, `rc_registration`).

mod account_steps;
mod common;

use account_steps::{login, open_session, register, too_many};

use matrix_membership::generated::api::*;
use matrix_membership::generated::models::CreateRoomRequestPreset as Preset;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_past_the_burst_get_429_with_retry_after() {
    let s = common::start_with(&[
        "--join-rate",
        "0.1",
        "--join-burst",
        "2",
        "--invite-rate",
        "0",
        "--registration-rate",
        "0",
    ])
    .await;
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
    let s = common::start_with(&[
        "--invite-rate",
        "0.1",
        "--invite-burst",
        "2",
        "--join-rate",
        "0",
        "--registration-rate",
        "0",
    ])
    .await;
    let alice = s.register("alice").await;
    let mut others = Vec::new();
    for name in ["b", "c", "d"] {
        others.push(s.register(name).await);
    }
    // createRoom is charged to the invite budget too.
    let room = alice.create_room(Preset::PrivateChat).await;
    let invite = |id: &str| matrix_membership::generated::models::PostRoomsRoomIdInviteBody {
        user_id: Some(id.into()),
        reason: None,
        ..Default::default()
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

/// Every account and address limit off but the ones a test names.
const ONLY: [&str; 8] = [
    "--login-address-rate",
    "0",
    "--login-account-rate",
    "0",
    "--login-failed-rate",
    "0",
    "--registration-rate",
    "0",
];

async fn start_only(flags: &[&str]) -> common::TestServer {
    let mut args: Vec<&str> = ONLY
        .chunks(2)
        .filter(|pair| !flags.contains(&pair[0]))
        .flatten()
        .copied()
        .collect();
    args.extend_from_slice(flags);
    common::start_with(&args).await
}

fn refused(r: LoginResponse) -> u64 {
    match r {
        LoginResponse::TooManyRequests(e) => too_many(&e),
        other => panic!("expected 429, got {other:?}"),
    }
}

fn status(r: &LoginResponse) -> u16 {
    match r {
        LoginResponse::Ok(_) => 200,
        LoginResponse::Forbidden(_) => 403,
        LoginResponse::TooManyRequests(_) => 429,
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_from_one_address_past_the_burst_get_429() {
    let s = start_only(&["--login-address-rate", "0.003", "--login-address-burst", "2"]).await;
    s.register("alice").await;
    let c = s.client();
    assert_eq!(status(&login(&c, "alice", "alice-password", None).await), 200);
    assert_eq!(
        status(&login(&c, "alice", "wrong", None).await),
        403,
        "failures count too"
    );
    let wait = refused(login(&c, "someone-else", "x", None).await);
    assert!(wait > 300_000, "one login per 333 s: {wait} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_logins_to_one_account_past_the_burst_get_429_and_others_are_unaffected() {
    let s = start_only(&["--login-account-rate", "0.003", "--login-account-burst", "2"]).await;
    s.register("alice").await;
    s.register("bob").await;
    let c = s.client();
    for _ in 0..2 {
        assert_eq!(status(&login(&c, "alice", "alice-password", None).await), 200);
    }
    refused(login(&c, "@alice:localhost", "alice-password", None).await);
    assert_eq!(status(&login(&c, "bob", "bob-password", None).await), 200);
    assert_eq!(
        status(&login(&c, "alice", "wrong", None).await),
        403,
        "failures are not charged to this limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_burst_of_failed_logins_even_the_right_password_waits() {
    let s = start_only(&["--login-failed-rate", "0.17", "--login-failed-burst", "2"]).await;
    s.register("alice").await;
    s.register("bob").await;
    let c = s.client();
    for _ in 0..2 {
        assert_eq!(status(&login(&c, "alice", "wrong", None).await), 403);
    }
    let wait = refused(login(&c, "alice", "alice-password", None).await);
    assert!(
        (1_000..=5_900).contains(&wait),
        "one failure leaks every 5.9 s: {wait} ms"
    );
    assert_eq!(status(&login(&c, "bob", "bob-password", None).await), 200);
    // Accounts that do not exist are limited as well, by the name tried.
    for _ in 0..2 {
        assert_eq!(status(&login(&c, "nobody", "x", None).await), 403);
    }
    refused(login(&c, "nobody", "x", None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_from_one_address_past_the_burst_get_429_and_opening_sessions_is_not_charged() {
    let s = start_only(&["--registration-rate", "0.17", "--registration-burst", "2"]).await;
    let c = s.client();
    let mut sessions = Vec::new();
    for name in ["a", "b", "c", "d"] {
        sessions.push((name, open_session(&c, Some(name)).await));
    }
    for (name, session) in &sessions[..2] {
        assert!(matches!(
            account_steps::complete(&c, Some(name), session).await,
            RegisterResponse::Ok(_)
        ));
    }
    let (name, session) = &sessions[2];
    match account_steps::complete(&c, Some(name), session).await {
        RegisterResponse::TooManyRequests(e) => assert!(too_many(&e) > 1000),
        other => panic!("{other:?}"),
    }
    // Over the limit, even opening a session is refused (Synapse checks on every request).
    match c
        .register(None, Some(&account_steps::register_body(Some("e"))))
        .await
        .unwrap()
    {
        RegisterResponse::TooManyRequests(e) => {
            too_many(&e);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rate_limits_turns_the_account_limits_off() {
    let s = common::start_with(&[
        "--no-rate-limits",
        "--login-address-burst",
        "1",
        "--login-account-burst",
        "1",
        "--login-failed-burst",
        "1",
        "--registration-burst",
        "1",
    ])
    .await;
    let c = s.client();
    for name in ["a", "b", "c"] {
        register(&c, Some(name)).await;
    }
    for _ in 0..3 {
        assert_eq!(status(&login(&c, "a", "wrong", None).await), 403);
    }
    for _ in 0..3 {
        assert_eq!(status(&login(&c, "a", "secret", None).await), 200);
    }
    for (name, limit) in s.service.rate_limits().all() {
        assert_eq!(limit.tracked_keys(), 0, "{name} remembers nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_for_very_many_names_remember_a_bounded_number_of_them() {
    let s = start_only(&["--login-failed-rate", "0.17", "--rate-limit-keys", "50"]).await;
    let c = s.client();
    // An empty password is refused without a hash, so this is quick.
    for i in 0..300 {
        assert_eq!(status(&login(&c, &format!("guess{i}"), "", None).await), 403);
        assert!(s.service.rate_limits().login_failed.tracked_keys() <= 50);
    }
    assert_eq!(s.service.rate_limits().login_failed.tracked_keys(), 50);
}

/// Only the invite limits a test names are on.
async fn invite_limits_only(flags: &[&str]) -> common::TestServer {
    const OFF: [&str; 6] = [
        "--join-rate",
        "--invite-rate",
        "--invite-room-rate",
        "--invite-invitee-rate",
        "--moderation-rate",
        "--registration-rate",
    ];
    let mut args: Vec<&str> = OFF
        .iter()
        .filter(|flag| !flags.contains(flag))
        .flat_map(|flag| [*flag, "0"])
        .collect();
    args.extend_from_slice(flags);
    common::start_with(&args).await
}

async fn invite_status(from: &common::User, room: &str, to: &common::User) -> u16 {
    let body = matrix_membership::generated::models::PostRoomsRoomIdInviteBody {
        user_id: Some(to.id.clone()),
        reason: None,
        ..Default::default()
    };
    from.client
        .post_rooms_room_id_invite(room, &body)
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_are_limited_per_invitee_and_per_room_and_a_refused_one_charges_nothing() {
    let s = invite_limits_only(&[
        "--invite-room-rate",
        "0.003",
        "--invite-room-burst",
        "2",
        "--invite-invitee-rate",
        "0.003",
        "--invite-invitee-burst",
        "1",
    ])
    .await;
    let alice = s.register("alice").await;
    let [bob, carol, dave, erin, fred] = [
        s.register("bob").await,
        s.register("carol").await,
        s.register("dave").await,
        s.register("erin").await,
        s.register("fred").await,
    ];
    let first = alice.create_room(Preset::PrivateChat).await;
    let second = alice.create_room(Preset::PrivateChat).await;
    assert_eq!(invite_status(&alice, &first, &bob).await, 200);
    let pos = s.service_pos();
    assert_eq!(
        invite_status(&alice, &second, &bob).await,
        429,
        "bob's invite budget is spent"
    );
    assert_eq!(s.service_pos(), pos, "a limited invite writes nothing");
    assert_eq!(invite_status(&alice, &first, &carol).await, 200);
    assert_eq!(
        invite_status(&alice, &first, &dave).await,
        429,
        "the first room's budget is spent"
    );
    // The refused invite into the second room charged neither that room nor anyone else.
    assert_eq!(invite_status(&alice, &second, &erin).await, 200);
    assert_eq!(invite_status(&alice, &second, &fred).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicks_bans_and_unbans_use_their_own_budget_not_the_invite_one() {
    let s = invite_limits_only(&[
        "--invite-rate",
        "0.003",
        "--invite-burst",
        "1",
        "--moderation-rate",
        "0.003",
        "--moderation-burst",
        "3",
    ])
    .await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    // createRoom spends the whole invite budget.
    let room = alice.create_room(Preset::PublicChat).await;
    assert_eq!(invite_status(&alice, &room, &bob).await, 429);
    bob.join(&room).await;
    let change = |id: &str| matrix_membership::generated::models::MembershipChange {
        user_id: id.into(),
        reason: None,
    };
    assert_eq!(alice.client.kick(&room, &change(&bob.id)).await.unwrap().status(), 200);
    assert_eq!(alice.client.ban(&room, &change(&bob.id)).await.unwrap().status(), 200);
    assert_eq!(alice.client.unban(&room, &change(&bob.id)).await.unwrap().status(), 200);
    match alice.client.ban(&room, &change(&bob.id)).await.unwrap() {
        BanResponse::TooManyRequests(e) => assert_eq!(e.errcode, "M_LIMIT_EXCEEDED"),
        other => panic!("the fourth moderation action should be limited: {other:?}"),
    }
}
