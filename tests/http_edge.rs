//! The HTTP edge: routing, tokens, body handling and Matrix JSON errors.

mod common;

const V1: &str = "/_matrix/client/api/v1";

#[tokio::test]
async fn join_without_a_token_is_401_missing_token() {
    let s = common::start().await;
    s.raw("POST", &format!("{V1}/rooms/%21x%3Alocalhost/join"), &[], b"")
        .await
        .assert_error(401, "M_MISSING_TOKEN");
}

#[tokio::test]
async fn join_with_an_unknown_token_is_401_unknown_token_by_query_or_header() {
    let s = common::start().await;
    s.raw(
        "POST",
        &format!("{V1}/rooms/%21x%3Alocalhost/join?access_token=nope"),
        &[],
        b"",
    )
    .await
    .assert_error(401, "M_UNKNOWN_TOKEN");
    s.raw(
        "POST",
        &format!("{V1}/rooms/%21x%3Alocalhost/join"),
        &[("authorization", "Bearer nope")],
        b"",
    )
    .await
    .assert_error(401, "M_UNKNOWN_TOKEN");
}

#[tokio::test]
async fn invite_and_the_join_alias_are_routed_not_404() {
    let s = common::start().await;
    for path in [
        format!("{V1}/rooms/%21x%3Alocalhost/invite"),
        format!("{V1}/rooms/%21x%3Alocalhost/invite%20"),
        format!("{V1}/join/%23a%3Alocalhost"),
        "/_matrix/client/v3/join/%23a%3Alocalhost".to_string(),
        "/_matrix/client/r0/rooms/%21x%3Alocalhost/invite".to_string(),
    ] {
        // Reaching the token check proves the route exists.
        s.raw("POST", &path, &[], b"{}")
            .await
            .assert_error(401, "M_MISSING_TOKEN");
    }
}

#[tokio::test]
async fn wrong_method_is_405_unrecognized_with_allow() {
    let s = common::start().await;
    let r = s
        .raw("GET", &format!("{V1}/rooms/%21x%3Alocalhost/join"), &[], b"")
        .await;
    r.assert_error(405, "M_UNRECOGNIZED");
    assert_eq!(r.headers.get("allow").unwrap(), "POST, OPTIONS");
}

#[tokio::test]
async fn unknown_paths_are_404_unrecognized() {
    let s = common::start().await;
    s.raw("POST", &format!("{V1}/nope"), &[], b"")
        .await
        .assert_error(404, "M_UNRECOGNIZED");
    s.raw("GET", "/", &[], b"").await.assert_error(404, "M_UNRECOGNIZED");
}

#[tokio::test]
async fn an_empty_path_parameter_never_reaches_a_handler() {
    let s = common::start().await;
    s.raw("POST", &format!("{V1}/rooms//join"), &[], b"")
        .await
        .assert_error(400, "M_INVALID_PARAM");
}

#[tokio::test]
async fn options_preflight_is_answered_with_cors_headers() {
    let s = common::start().await;
    let r = s
        .raw("OPTIONS", &format!("{V1}/rooms/%21x%3Alocalhost/join"), &[], b"")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("access-control-allow-origin").unwrap(), "*");
    assert!(r
        .headers
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Authorization"));
    let r = s.raw("POST", &format!("{V1}/nope"), &[], b"").await;
    assert_eq!(
        r.headers.get("access-control-allow-origin").unwrap(),
        "*",
        "errors carry CORS too"
    );
}

async fn token_of(s: &common::TestServer, name: &str) -> String {
    s.register(name).await.client.access_token().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_get_the_matching_matrix_errcode() {
    let s = common::start().await;
    let token = token_of(&s, "alice").await;
    let auth = format!("Bearer {token}");
    let h = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let kick = format!("{V1}/rooms/%21x%3Alocalhost/kick");
    s.raw("POST", &kick, &h, b"{not json")
        .await
        .assert_error(400, "M_NOT_JSON");
    s.raw("POST", &kick, &h, b"[1, 2]")
        .await
        .assert_error(400, "M_BAD_JSON");
    s.raw("POST", &kick, &h, br#"{"user_id": 5}"#)
        .await
        .assert_error(400, "M_BAD_JSON");
    s.raw("POST", &kick, &h, br#"{"reason": "x"}"#)
        .await
        .assert_error(400, "M_MISSING_PARAM");
    s.raw("POST", &kick, &h, b"").await.assert_error(400, "M_MISSING_PARAM");
    // minLength in the spec becomes a validator constraint.
    s.raw("POST", &kick, &h, br#"{"user_id": ""}"#)
        .await
        .assert_error(400, "M_INVALID_PARAM");
    let invite = format!("{V1}/rooms/%21x%3Alocalhost/invite");
    s.raw("POST", &invite, &h, br#"{}"#)
        .await
        .assert_error(400, "M_MISSING_PARAM");
    s.raw("POST", &invite, &h, br#"{"user_id": "nobody"}"#)
        .await
        .assert_error(400, "M_INVALID_PARAM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413_too_large() {
    let s = common::start_with(&["--no-rate-limits", "--body-limit", "1024"]).await;
    let token = token_of(&s, "alice").await;
    let auth = format!("Bearer {token}");
    let big = format!(r#"{{"user_id": "@a:localhost", "reason": "{}"}}"#, "x".repeat(2000));
    s.raw(
        "POST",
        &format!("{V1}/rooms/%21x%3Alocalhost/kick"),
        &[("authorization", auth.as_str())],
        big.as_bytes(),
    )
    .await
    .assert_error(413, "M_TOO_LARGE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_accepts_an_empty_body_as_real_clients_send_one() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice
        .create_room(matrix_membership::generated::models::CreateRoomRequestPreset::PublicChat)
        .await;
    let bob = token_of(&s, "bob").await;
    let path = format!(
        "{V1}/rooms/{}/join?access_token={bob}",
        room.replace('!', "%21").replace(':', "%3A")
    );
    let r = s.raw("POST", &path, &[], b"").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    assert_eq!(r.json["room_id"], room.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_and_a_query_token_that_disagree_are_refused() {
    let s = common::start().await;
    let token = token_of(&s, "alice").await;
    let auth = format!("Bearer {token}");
    s.raw(
        "GET",
        &format!("{V1}/account/whoami?access_token=other"),
        &[("authorization", auth.as_str())],
        b"",
    )
    .await
    .assert_error(400, "M_MISSING_TOKEN");
}

#[tokio::test]
async fn every_operation_that_needs_a_token_refuses_a_request_without_one() {
    use matrix_membership::generated::routes::Operation;
    let s = common::start().await;
    let mut checked = 0;
    for op in Operation::ALL.iter().filter(|op| op.requires_auth()) {
        let path: String = op
            .path()
            .split('/')
            .map(|seg| if seg.starts_with('{') { "%21x%3Alocalhost" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let r = s
            .raw(op.method(), &format!("{}{path}", op.base_path()), &[], b"{}")
            .await;
        assert_eq!(r.status, 401, "{} {path}", op.name());
        assert_eq!(r.errcode(), "M_MISSING_TOKEN", "{}", op.name());
        checked += 1;
    }
    assert!(checked >= 19, "only {checked} operations checked");
}
