//! Registration: sessions that expire, are capped and bound to their
//! username; Synapse's username rules; registration turned off.

mod account_steps;
mod common;

use account_steps::{complete, open_session, register, register_body};
use matrix_membership::generated::api::*;
use matrix_membership::ids::UserId;
use std::time::Duration;

fn assert_unknown(r: RegisterResponse, what: &str) -> String {
    match r {
        RegisterResponse::BadRequest(e) => {
            assert_eq!(e.errcode, "M_UNKNOWN", "{what}: {e:?}");
            e.error.unwrap_or_default()
        }
        other => panic!("{what}: expected 400 M_UNKNOWN, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_opened_for_one_username_cannot_register_another() {
    let s = common::start().await;
    let client = s.client();
    let session = open_session(&client, Some("alice")).await;
    let error = assert_unknown(complete(&client, Some("mallory"), &session).await, "mallory");
    assert!(error.contains("\"alice\"") && error.contains("\"mallory\""), "{error}");
    match complete(&client, Some("alice"), &session).await {
        RegisterResponse::Ok(ok) => assert_eq!(ok.user_id, "@alice:localhost"),
        other => panic!("the refused attempt left the session for alice: {other:?}"),
    }
    assert!(!s
        .service
        .store()
        .user_exists(&UserId::parse("@mallory:localhost").unwrap())
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_for_a_generated_id_cannot_register_a_chosen_one() {
    let s = common::start().await;
    let client = s.client();
    let session = open_session(&client, None).await;
    assert_unknown(complete(&client, Some("alice"), &session).await, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_that_omits_the_username_registers_the_sessions_one() {
    let s = common::start().await;
    let client = s.client();
    let session = open_session(&client, Some("alice")).await;
    match complete(&client, None, &session).await {
        RegisterResponse::Ok(ok) => assert_eq!(ok.user_id, "@alice:localhost"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_completes_one_registration_only() {
    let s = common::start().await;
    let client = s.client();
    let session = open_session(&client, None).await;
    assert!(matches!(
        complete(&client, None, &session).await,
        RegisterResponse::Ok(_)
    ));
    assert_unknown(complete(&client, None, &session).await, "second use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_expires() {
    let s = common::start_with(&["--no-rate-limits", "--registration-session-ttl", "1"]).await;
    let client = s.client();
    let session = open_session(&client, Some("alice")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let error = assert_unknown(complete(&client, Some("alice"), &session).await, "expired");
    assert!(error.starts_with("Unknown session ID"), "{error}");
    assert_eq!(s.service.registrar().sessions().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_is_refused_like_synapse_does() {
    let s = common::start().await;
    assert_unknown(complete(&s.client(), Some("alice"), "made-up").await, "made up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_more_sessions_than_the_cap_forgets_the_oldest() {
    let s = common::start_with(&["--no-rate-limits", "--registration-sessions", "2"]).await;
    let client = s.client();
    let alice = open_session(&client, Some("alice")).await;
    let bob = open_session(&client, Some("bob")).await;
    let carol = open_session(&client, Some("carol")).await;
    assert_eq!(s.service.registrar().sessions().len(), 2);
    assert_unknown(complete(&client, Some("alice"), &alice).await, "evicted");
    for (name, session) in [("bob", &bob), ("carol", &carol)] {
        assert!(
            matches!(complete(&client, Some(name), session).await, RegisterResponse::Ok(_)),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_opened_sessions_stay_within_the_cap() {
    let s = common::start_with(&["--no-rate-limits", "--registration-sessions", "5"]).await;
    let client = s.client();
    for i in 0..40 {
        open_session(&client, Some(&format!("user{i}"))).await;
        assert!(s.service.registrar().sessions().len() <= 5);
    }
}

async fn assert_invalid_username(s: &common::TestServer, name: &str, why: &str) {
    // Refused at the first step, so no session for the name ever exists.
    match s
        .client()
        .register(None, Some(&register_body(Some(name))))
        .await
        .unwrap()
    {
        RegisterResponse::BadRequest(e) => {
            assert_eq!(e.errcode, "M_INVALID_USERNAME", "{name}: {e:?}");
            let error = e.error.unwrap_or_default();
            assert!(error.contains(why), "{name}: {error}");
        }
        other => panic!("{name}: expected 400 M_INVALID_USERNAME, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usernames_starting_with_an_underscore_or_made_of_digits_are_refused() {
    let s = common::start().await;
    assert_invalid_username(&s, "_bridge", "may not begin with '_'").await;
    assert_invalid_username(&s, "12345", "numeric user IDs are reserved for guest users").await;
    assert_invalid_username(&s, "-7", "numeric user IDs are reserved for guest users").await;
    assert_eq!(register(&s.client(), Some("1a")).await, "@1a:localhost");
    assert_eq!(
        register(&s.client(), Some("Upper")).await,
        "@upper:localhost",
        "lowercased, as Synapse"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_without_a_username_gets_a_generated_id_that_follows_the_rules() {
    let s = common::start().await;
    for _ in 0..5 {
        let user_id = register(&s.client(), None).await;
        let localpart = user_id.trim_start_matches('@').split(':').next().unwrap();
        assert!(!localpart.starts_with('_'), "{user_id}");
        assert!(!localpart.bytes().all(|b| b.is_ascii_digit()), "{user_id}");
        assert_eq!(
            matrix_membership::service::registration::check_username(localpart),
            Ok(())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_registration_answers_403_like_synapse() {
    let s = common::start_with(&["--no-rate-limits", "--registration", "closed"]).await;
    for body in [
        register_body(Some("alice")),
        account_steps::with_session(register_body(Some("alice")), "any"),
    ] {
        match s.client().register(None, Some(&body)).await.unwrap() {
            RegisterResponse::Forbidden(e) => {
                assert_eq!(e.errcode, "M_FORBIDDEN");
                assert_eq!(e.error.as_deref(), Some("Registration has been disabled"));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(s.service.registrar().sessions().len(), 0, "no session was opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_without_a_stage_asks_how_far_the_session_got() {
    let s = common::start().await;
    let client = s.client();
    let session = open_session(&client, Some("alice")).await;
    let mut body = register_body(Some("alice"));
    body.auth = Some(matrix_membership::generated::models::AuthenticationData {
        r#type: None,
        session: Some(session.clone()),
    });
    match client.register(None, Some(&body)).await.unwrap() {
        RegisterResponse::Unauthorized(uia) => assert_eq!(uia.session.as_deref(), Some(session.as_str())),
        other => panic!("expected the flows again with the same session, got {other:?}"),
    }
    body.auth = Some(matrix_membership::generated::models::AuthenticationData {
        r#type: None,
        session: None,
    });
    match client.register(None, Some(&body)).await.unwrap() {
        RegisterResponse::Unauthorized(uia) => assert!(uia.session.is_some_and(|new| new != session)),
        other => panic!("expected the flows with a new session, got {other:?}"),
    }
    // The session still completes.
    assert!(matches!(
        complete(&client, Some("alice"), &session).await,
        RegisterResponse::Ok(_)
    ));
}
