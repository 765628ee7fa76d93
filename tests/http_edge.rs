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
