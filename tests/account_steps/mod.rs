//! Registration and login steps through the generated client, for the
//! account tests (`accounts.rs`, `registration.rs`, `rate_limits.rs`).
#![allow(dead_code)]

use matrix_membership::generated::api::{LoginResponse, RegisterResponse};
use matrix_membership::generated::client::Client;
use matrix_membership::generated::models;

/// A registration body for `username` (none: a generated one) with a password.
pub fn register_body(username: Option<&str>) -> models::RegisterRequest {
    models::RegisterRequest {
        username: username.map(str::to_string),
        password: Some("secret".into()),
        device_id: None,
        initial_device_display_name: None,
        inhibit_login: None,
        auth: None,
    }
}

/// The body completing the dummy stage of `session`.
pub fn with_session(mut body: models::RegisterRequest, session: &str) -> models::RegisterRequest {
    body.auth = Some(models::AuthenticationData {
        r#type: Some("m.login.dummy".into()),
        session: Some(session.into()),
    });
    body
}

/// The first registration step: the session of the 401 challenge.
pub async fn open_session(client: &Client, username: Option<&str>) -> String {
    match client.register(None, Some(&register_body(username))).await.unwrap() {
        RegisterResponse::Unauthorized(uia) => uia.session.expect("a UIA session"),
        other => panic!("expected a 401 challenge for {username:?}, got {other:?}"),
    }
}

/// The second registration step for `username` with `session`.
pub async fn complete(client: &Client, username: Option<&str>, session: &str) -> RegisterResponse {
    client
        .register(None, Some(&with_session(register_body(username), session)))
        .await
        .unwrap()
}

/// Both registration steps; the new user id, asserting success.
pub async fn register(client: &Client, username: Option<&str>) -> String {
    let session = open_session(client, username).await;
    match complete(client, username, &session).await {
        RegisterResponse::Ok(ok) => ok.user_id,
        other => panic!("expected {username:?} to register, got {other:?}"),
    }
}

/// A password login body, optionally naming a device.
pub fn login_body(user: &str, password: &str, device_id: Option<&str>) -> models::LoginRequest {
    models::LoginRequest {
        r#type: "m.login.password".into(),
        identifier: Some(models::UserIdentifier {
            r#type: Some("m.id.user".into()),
            user: Some(user.into()),
        }),
        user: None,
        password: Some(password.into()),
        device_id: device_id.map(str::to_string),
        initial_device_display_name: None,
    }
}

/// Logs in and returns the response.
pub async fn login(client: &Client, user: &str, password: &str, device_id: Option<&str>) -> LoginResponse {
    client.login(&login_body(user, password, device_id)).await.unwrap()
}

/// The errcode and `retry_after_ms` of a 429, panicking on anything else.
pub fn too_many(e: &models::Error) -> u64 {
    assert_eq!(e.errcode, "M_LIMIT_EXCEEDED", "{e:?}");
    e.retry_after_ms.expect("retry_after_ms") as u64
}
