//! Request logs: one JSON line per request with its id (echoed in
//! `X-Request-Id`), operation, status and latency; no token or password in
//! them; and a stalled log output does not hold requests up.
//!
//! The log is captured in-process through the same `logging::install` the
//! binary uses, so the lines here are the lines an operator gets.

mod common;

use matrix_membership::config::{LogFormat, LoggingSettings};
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Everything written to the log, and a gate that can stall the writer.
#[derive(Default)]
struct Captured {
    bytes: Mutex<Vec<u8>>,
    stalled: Mutex<bool>,
    released: Condvar,
}

/// The log output: appends to `Captured`, waiting while it is stalled.
struct Output(Arc<Captured>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut stalled = self.0.stalled.lock().unwrap();
        while *stalled {
            stalled = self.0.released.wait(stalled).unwrap();
        }
        self.0.bytes.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's JSON logger, installed once for every test in this file.
fn log() -> &'static Arc<Captured> {
    static LOG: OnceLock<Arc<Captured>> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Arc::new(Captured::default());
        let settings = LoggingSettings {
            format: LogFormat::Json,
            filter: "info".into(),
        };
        let guard = matrix_membership::logging::install(&settings, Output(captured.clone()), false)
            .expect("install the logger");
        // Lines are written until the test process ends.
        std::mem::forget(guard);
        captured
    })
}

fn text() -> String {
    String::from_utf8_lossy(&log().bytes.lock().unwrap()).into_owned()
}

/// The request line with this request id, once the writer thread has written it.
async fn request_line(request_id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = text().lines().find_map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("every log line is JSON");
            (json["request_id"] == request_id && json["message"] == "request").then_some(json)
        });
        if let Some(line) = found {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no request line for {request_id} in:\n{}",
            text()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn request_id(resp: &common::RawResponse) -> String {
    resp.headers
        .get("x-request-id")
        .expect("every response has an X-Request-Id")
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_one_json_line_with_its_id_operation_status_and_latency() {
    log();
    let server = common::start().await;
    let resp = server.raw("GET", "/_matrix/client/versions", &[], b"").await;
    assert_eq!(resp.status, 200);
    let id = request_id(&resp);
    assert_eq!(id.len(), 32, "a generated id: {id}");
    let line = request_line(&id).await;
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/_matrix/client/versions");
    assert_eq!(line["operation"], "get_versions");
    assert_eq!(line["status"], 200);
    assert!(line["latency_us"].is_u64(), "{line}");
    assert!(line["timestamp"].is_string(), "{line}");

    // An edge error is logged too, with the operation it was routed to.
    let resp = server
        .raw("GET", "/_matrix/client/api/v1/account/whoami", &[], b"")
        .await;
    resp.assert_error(401, "M_MISSING_TOKEN");
    let line = request_line(&request_id(&resp)).await;
    assert_eq!(
        (line["operation"].as_str(), line["status"].as_u64()),
        (Some("whoami"), Some(401))
    );

    // And a path no operation has.
    let resp = server.raw("GET", "/nowhere", &[], b"").await;
    let line = request_line(&request_id(&resp)).await;
    assert_eq!(
        (line["operation"].as_str(), line["status"].as_u64()),
        (Some("-"), Some(404))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_formed_incoming_request_id_is_kept_and_any_other_replaced() {
    log();
    let server = common::start().await;
    let resp = server
        .raw(
            "GET",
            "/_matrix/client/versions",
            &[("X-Request-Id", "proxy-7f3a.1")],
            b"",
        )
        .await;
    assert_eq!(request_id(&resp), "proxy-7f3a.1");
    assert_eq!(request_line("proxy-7f3a.1").await["status"], 200);

    for forged in ["two words", "quote\"in", &"x".repeat(65)] {
        let resp = server
            .raw("GET", "/_matrix/client/versions", &[("X-Request-Id", forged)], b"")
            .await;
        let id = request_id(&resp);
        assert_ne!(id, forged);
        assert_eq!(id.len(), 32);
        request_line(&id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_password_reaches_the_log() {
    log();
    let server = common::start().await;
    server.register("carol").await;
    let password = "carol-password";
    let login = serde_json::json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "carol"},
        "password": password,
    });
    let resp = server
        .raw(
            "POST",
            "/_matrix/client/api/v1/login",
            &[],
            login.to_string().as_bytes(),
        )
        .await;
    assert_eq!(resp.status, 200);
    let token = resp.json["access_token"].as_str().unwrap().to_string();
    let mut ids = vec![request_id(&resp)];

    let in_query = format!("/_matrix/client/api/v1/account/whoami?access_token={token}");
    let resp = server.raw("GET", &in_query, &[], b"").await;
    assert_eq!(resp.status, 200);
    ids.push(request_id(&resp));
    let bearer = format!("Bearer {token}");
    let resp = server
        .raw(
            "GET",
            "/_matrix/client/api/v1/account/whoami",
            &[("Authorization", &bearer)],
            b"",
        )
        .await;
    assert_eq!(resp.status, 200);
    ids.push(request_id(&resp));
    let resp = server
        .raw("GET", &format!("/nowhere?access_token={token}"), &[], b"")
        .await;
    ids.push(request_id(&resp));

    for id in &ids {
        let line = request_line(id).await;
        assert!(!line["path"].as_str().unwrap().contains('?'), "{line}");
    }
    let log = text();
    assert!(!log.contains(&token), "the access token is in the log");
    assert!(!log.contains(password), "the password is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_log_output_does_not_hold_requests_up() {
    log();
    let server = common::start().await;
    *log().stalled.lock().unwrap() = true;
    let mut ids = Vec::new();
    let stalled = async {
        for _ in 0..20 {
            let resp = server.raw("GET", "/_matrix/client/versions", &[], b"").await;
            assert_eq!(resp.status, 200);
            ids.push(request_id(&resp));
        }
    };
    let answered = tokio::time::timeout(Duration::from_secs(10), stalled).await;
    let held_back = ids.iter().all(|id| !text().contains(id.as_str()));
    *log().stalled.lock().unwrap() = false;
    log().released.notify_all();
    assert!(answered.is_ok(), "requests waited for the log output");
    assert!(held_back, "the output was stalled, yet lines were written");
    for id in &ids {
        request_line(id).await;
    }
}
