//! Registration, login, logout and whoami through the generated client.

mod common;

use matrix_membership::generated::api::*;
use matrix_membership::generated::models;

fn register_body(name: &str) -> models::RegisterRequest {
    models::RegisterRequest {
        username: Some(name.into()),
        password: Some("secret".into()),
        device_id: None,
        initial_device_display_name: None,
        inhibit_login: None,
        auth: None,
    }
}

fn login_body(user: &str, password: &str) -> models::LoginRequest {
    models::LoginRequest {
        r#type: "m.login.password".into(),
        identifier: Some(models::UserIdentifier {
            r#type: Some("m.id.user".into()),
            user: Some(user.into()),
        }),
        user: None,
        password: Some(password.into()),
        device_id: None,
        initial_device_display_name: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_asks_for_dummy_auth_then_returns_a_session() {
    let s = common::start().await;
    let client = s.client();
    let mut body = register_body("alice");
    let session = match client.register(None, Some(&body)).await.unwrap() {
        RegisterResponse::Unauthorized(uia) => {
            assert_eq!(uia.flows[0].stages, vec!["m.login.dummy".to_string()]);
            uia.session.unwrap()
        }
        other => panic!("{other:?}"),
    };
    body.auth = Some(models::AuthenticationData {
        r#type: Some("m.login.dummy".into()),
        session: Some(session),
    });
    match client.register(None, Some(&body)).await.unwrap() {
        RegisterResponse::Ok(ok) => {
            assert_eq!(ok.user_id, "@alice:localhost");
            assert!(ok.access_token.is_some() && ok.device_id.is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_or_invalid_username_is_refused() {
    let s = common::start().await;
    s.register("alice").await;
    match s.client().register(None, Some(&register_body("alice"))).await.unwrap() {
        RegisterResponse::BadRequest(e) => assert_eq!(e.errcode, "M_USER_IN_USE"),
        other => panic!("{other:?}"),
    }
    match s
        .client()
        .register(None, Some(&register_body("not valid!")))
        .await
        .unwrap()
    {
        RegisterResponse::BadRequest(e) => assert_eq!(e.errcode, "M_INVALID_USERNAME"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_the_right_password_works_and_the_wrong_one_is_forbidden() {
    let s = common::start().await;
    s.register("alice").await;
    let client = s.client();
    match client.login(&login_body("alice", "alice-password")).await.unwrap() {
        LoginResponse::Ok(ok) => {
            assert_eq!(ok.user_id, "@alice:localhost");
            let me = client.with_access_token(ok.access_token);
            match me.whoami().await.unwrap() {
                WhoamiResponse::Ok(w) => {
                    assert_eq!(w.user_id, "@alice:localhost");
                    assert_eq!(w.device_id.as_deref(), Some(ok.device_id.as_str()));
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    match client.login(&login_body("@alice:localhost", "wrong")).await.unwrap() {
        LoginResponse::Forbidden(e) => assert_eq!(e.errcode, "M_FORBIDDEN"),
        other => panic!("{other:?}"),
    }
    match client.login(&login_body("nobody", "x")).await.unwrap() {
        LoginResponse::Forbidden(e) => assert_eq!(e.errcode, "M_FORBIDDEN"),
        other => panic!("{other:?}"),
    }
    match client.get_login_flows().await.unwrap() {
        GetLoginFlowsResponse::Ok(ok) => assert_eq!(ok.flows[0].r#type, "m.login.password"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    assert_eq!(alice.client.logout().await.unwrap().status(), 200);
    match alice.client.whoami().await.unwrap() {
        WhoamiResponse::Unauthorized(e) => assert_eq!(e.errcode, "M_UNKNOWN_TOKEN"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_need_no_token_and_list_what_we_serve() {
    let s = common::start().await;
    match s.client().get_versions().await.unwrap() {
        GetVersionsResponse::Ok(ok) => assert!(ok.versions.iter().any(|v| v == "v1.1"), "{:?}", ok.versions),
        other => panic!("{other:?}"),
    }
}

mod account_steps;

use account_steps::{login, too_many};

async fn token_of(r: LoginResponse) -> (String, String) {
    match r {
        LoginResponse::Ok(ok) => (ok.access_token, ok.device_id),
        other => panic!("expected a login, got {other:?}"),
    }
}

async fn whoami_status(s: &common::TestServer, token: &str) -> Result<String, String> {
    match s.client().with_access_token(token.to_string()).whoami().await.unwrap() {
        WhoamiResponse::Ok(w) => Ok(w.device_id.unwrap_or_default()),
        WhoamiResponse::Unauthorized(e) => Err(e.errcode),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_again_on_a_device_ends_its_old_token() {
    let s = common::start().await;
    s.register("alice").await;
    let client = s.client();
    let (first, _) = token_of(login(&client, "alice", "alice-password", Some("PHONE")).await).await;
    let (second, device) = token_of(login(&client, "alice", "alice-password", Some("PHONE")).await).await;
    assert_eq!(device, "PHONE");
    assert_eq!(whoami_status(&s, &first).await, Err("M_UNKNOWN_TOKEN".into()));
    assert_eq!(whoami_status(&s, &second).await, Ok("PHONE".into()));
    // Every other operation refuses the replaced token too, at the edge.
    let r = s
        .raw(
            "GET",
            &format!("/_matrix/client/v3/joined_rooms?access_token={first}"),
            &[],
            b"",
        )
        .await;
    r.assert_error(401, "M_UNKNOWN_TOKEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_different_devices_all_keep_working() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let client = s.client();
    let (phone, _) = token_of(login(&client, "alice", "alice-password", Some("PHONE")).await).await;
    let (laptop, _) = token_of(login(&client, "alice", "alice-password", Some("LAPTOP")).await).await;
    let (fresh, made_up) = token_of(login(&client, "alice", "alice-password", None).await).await;
    assert_eq!(whoami_status(&s, &phone).await, Ok("PHONE".into()));
    assert_eq!(whoami_status(&s, &laptop).await, Ok("LAPTOP".into()));
    assert_eq!(whoami_status(&s, &fresh).await, Ok(made_up));
    assert_eq!(
        alice.client.whoami().await.unwrap().status(),
        200,
        "the registration's token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_one_device_leaves_the_others_and_a_later_login_there_works() {
    let s = common::start().await;
    s.register("alice").await;
    let client = s.client();
    let (phone, _) = token_of(login(&client, "alice", "alice-password", Some("PHONE")).await).await;
    let (laptop, _) = token_of(login(&client, "alice", "alice-password", Some("LAPTOP")).await).await;
    assert_eq!(
        client.with_access_token(phone.clone()).logout().await.unwrap().status(),
        200
    );
    assert_eq!(whoami_status(&s, &phone).await, Err("M_UNKNOWN_TOKEN".into()));
    assert_eq!(whoami_status(&s, &laptop).await, Ok("LAPTOP".into()));
    let (again, _) = token_of(login(&client, "alice", "alice-password", Some("PHONE")).await).await;
    assert_eq!(whoami_status(&s, &again).await, Ok("PHONE".into()));
    assert_eq!(whoami_status(&s, &laptop).await, Ok("LAPTOP".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_id_longer_than_synapse_accepts_is_refused() {
    let s = common::start().await;
    s.register("alice").await;
    match login(&s.client(), "alice", "alice-password", Some(&"D".repeat(513))).await {
        LoginResponse::BadRequest(e) => assert_eq!(e.errcode, "M_INVALID_PARAM"),
        other => panic!("{other:?}"),
    }
}

/// Six logins at once for an account that does not exist, against one
/// hashing thread with room for one waiting job and each hash held for a
/// second: at most two get a hash (403), the rest are refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hashing_queue_answers_429_and_missing_accounts_queue_too() {
    let s = common::start_with(&[
        "--no-rate-limits",
        "--password-hash-threads",
        "1",
        "--password-hash-queue",
        "1",
        "--test-hash-delay-ms",
        "1000",
    ])
    .await;
    let attempts = (0..6).map(|i| {
        let client = s.client();
        async move { login(&client, &format!("nobody{i}"), "guess", None).await }
    });
    let (mut refused, mut checked) = (0, 0);
    for r in futures::future::join_all(attempts).await {
        match r {
            LoginResponse::TooManyRequests(e) => {
                assert!(too_many(&e) >= 1);
                refused += 1;
            }
            LoginResponse::Forbidden(e) => {
                assert_eq!(e.errcode, "M_FORBIDDEN");
                checked += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(checked <= 2, "{checked} hashes for one thread and a queue of one");
    assert!(refused >= 4, "{refused} refused");
    assert_eq!(s.service.password_pool().peak_concurrency(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_hashes_queue_in_the_same_pool() {
    let s = common::start_with(&[
        "--no-rate-limits",
        "--password-hash-threads",
        "1",
        "--password-hash-queue",
        "0",
        "--test-hash-delay-ms",
        "1000",
    ])
    .await;
    let mut sessions = Vec::new();
    for i in 0..4 {
        let name = format!("user{i}");
        sessions.push((
            name.clone(),
            account_steps::open_session(&s.client(), Some(&name)).await,
        ));
    }
    let attempts = sessions.iter().map(|(name, session)| {
        let client = s.client();
        async move { account_steps::complete(&client, Some(name), session).await }
    });
    let (mut refused, mut registered) = (0, 0);
    for r in futures::future::join_all(attempts).await {
        match r {
            RegisterResponse::TooManyRequests(e) => {
                too_many(&e);
                refused += 1;
            }
            RegisterResponse::Ok(_) => registered += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(
        registered <= 1 && refused >= 3,
        "{registered} registered, {refused} refused"
    );
}
