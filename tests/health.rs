//! `GET /health`: 200 while the store can make writes durable, 503 with the
//! reason once its flusher thread is dead (killed for real, not faked).

mod common;

use matrix_membership::generated::api::GetHealthResponse;
use std::time::Duration;

#[tokio::test]
async fn a_healthy_server_answers_200_ok() {
    let s = common::start().await;
    match s.client().get_health().await.unwrap() {
        GetHealthResponse::Ok(ok) => assert_eq!(ok.status, "ok"),
        other => panic!("expected 200, got {other:?}"),
    }
    let raw = s.raw("GET", "/health", &[], b"").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.json, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn a_dead_flusher_makes_health_answer_503_with_the_reason() {
    if common::sled_only("the flusher thread is sled's group commit") {
        return;
    }
    let s = common::start().await;
    // A write before the crash works: the flusher is alive.
    s.register("alice").await;
    s.service.crash_flusher_for_test();
    match s.client().get_health().await.unwrap() {
        GetHealthResponse::ServiceUnavailable(e) => {
            assert_eq!(e.errcode, "M_UNKNOWN");
            let why = e.error.unwrap_or_default();
            assert!(why.contains("flusher thread panicked"), "{why}");
        }
        other => panic!("expected 503, got {other:?}"),
    }
    s.raw("GET", "/health", &[], b"").await.assert_error(503, "M_UNKNOWN");
}

#[tokio::test]
async fn a_write_after_the_flusher_died_answers_500_instead_of_hanging() {
    if common::sled_only("the flusher thread is sled's group commit") {
        return;
    }
    let s = common::start().await;
    let alice = s.register("alice").await;
    s.service.crash_flusher_for_test();
    let auth = format!("Bearer {}", alice.client.access_token().unwrap());
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        s.raw_server_failure("POST", "/_matrix/client/v3/createRoom", &headers, b"{}"),
    )
    .await
    .expect("the write was answered instead of waiting forever");
    answer.assert_error(500, "M_UNKNOWN");
    let why = answer.json["error"].as_str().unwrap_or_default();
    assert!(why.contains("the flusher thread has stopped"), "{why}");
}
