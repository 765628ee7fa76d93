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
    }
}
