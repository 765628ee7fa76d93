//! `/_matrix/metrics` on its own listener: after real requests, the scrape
//! is parsed as the Prometheus text format and its values checked.

mod common;

use common::TestServer;
use matrix_membership::generated::api::*;
use matrix_membership::generated::models::CreateRoomRequestPreset as Preset;
use matrix_membership::generated::routes::Operation;
use prometheus_parse::{Scrape, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::time::Duration;

/// A parsed scrape, looked up by metric name and labels.
struct Metrics(Scrape);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let lines = text.lines().map(|l| Ok(l.to_string()));
        Metrics(Scrape::parse(lines).expect("the scrape is Prometheus text"))
    }

    /// The value of the sample `name{labels}` (exactly those labels); 0 when absent.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let wanted: HashMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name && *s.labels == wanted)
            .map(|s| match &s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
                other => panic!("{name} is not a plain number: {other:?}"),
            })
            .sum()
    }

    /// How many observations the histogram `name{labels}` holds.
    fn observations(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.value(&format!("{name}_count"), labels)
    }

    /// Whether the scrape has a sample of `name` at all.
    fn has(&self, name: &str) -> bool {
        self.0
            .samples
            .iter()
            .any(|s| s.metric == name || s.metric.starts_with(&format!("{name}_")))
    }
}

const REQUESTS: &str = "matrix_membership_http_requests_total";

async fn scrape(s: &TestServer) -> Metrics {
    let (status, content_type, text) = s.scrape().await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    Metrics::parse(&text)
}

/// A server with metrics, registration unlimited, and a join limit of one
/// join per 1,000 s, so a second join is refused.
async fn start() -> TestServer {
    common::start_with(&[
        "--metrics-bind",
        "127.0.0.1:0",
        "--registration-rate",
        "0",
        "--join-rate",
        "0.001",
        "--join-burst",
        "1",
    ])
    .await
}

#[tokio::test]
async fn the_scrape_counts_requests_membership_flushes_and_rate_limit_rejections() {
    let s = start().await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(Preset::PublicChat).await;
    bob.join(&room).await;
    let left = bob.client.leave_room(&room, None).await.unwrap();
    assert!(matches!(left, LeaveRoomResponse::Ok(_)), "{left:?}");
    // The second join within the limit's window is refused.
    match bob.client.post_rooms_room_id_join(&room, None).await.unwrap() {
        PostRoomsRoomIdJoinResponse::TooManyRequests(e) => assert_eq!(e.errcode, "M_LIMIT_EXCEEDED"),
        other => panic!("expected 429, got {other:?}"),
    }
    s.raw("GET", "/no/such/path", &[], b"")
        .await
        .assert_error(404, "M_UNRECOGNIZED");

    let m = scrape(&s).await;
    let register = Operation::Register.name();
    let join = Operation::PostRoomsRoomIdJoin.name();
    // Two users, each a 401 challenge and a 200.
    assert_eq!(m.value(REQUESTS, &[("operation", register), ("status", "401")]), 2.0);
    assert_eq!(m.value(REQUESTS, &[("operation", register), ("status", "200")]), 2.0);
    assert_eq!(m.value(REQUESTS, &[("operation", join), ("status", "200")]), 1.0);
    assert_eq!(m.value(REQUESTS, &[("operation", join), ("status", "429")]), 1.0);
    assert_eq!(m.value(REQUESTS, &[("operation", "unmatched"), ("status", "404")]), 1.0);
    let latency = "matrix_membership_http_request_duration_seconds";
    assert_eq!(
        m.observations(latency, &[("operation", Operation::CreateRoom.name())]),
        1.0
    );
    assert_eq!(m.observations(latency, &[("operation", register)]), 4.0);

    // createRoom's own join and bob's; the refused join is not a change.
    let changes = "matrix_membership_membership_changes_total";
    assert_eq!(m.value(changes, &[("action", "join")]), 2.0);
    assert_eq!(m.value(changes, &[("action", "leave")]), 1.0);
    assert_eq!(m.value(changes, &[("action", "ban")]), 0.0);
    assert!(m.has(changes));

    let rejections = "matrix_membership_rate_limit_rejections_total";
    assert_eq!(m.value(rejections, &[("limit", "join")]), 1.0);
    assert_eq!(m.value(rejections, &[("limit", "invite")]), 0.0);

    if common::sled_only("the group-commit flush metrics and the database size are sled's") {
        return;
    }
    // Every acknowledged write waited for a flush, and each flush covered some.
    let flushes = m.value("matrix_membership_group_commit_flushes_total", &[("result", "ok")]);
    assert!(flushes > 0.0, "flushes: {flushes}");
    assert_eq!(
        m.value("matrix_membership_group_commit_flushes_total", &[("result", "error")]),
        0.0
    );
    let batches = m.observations("matrix_membership_group_commit_batch_writes", &[]);
    assert_eq!(batches, flushes, "one batch size per flush");
    let written = m.value("matrix_membership_group_commit_batch_writes_sum", &[]);
    // Two accounts with their tokens, the room, a join and a leave at least.
    assert!(written >= 5.0, "writes flushed: {written}");
    assert_eq!(
        m.observations("matrix_membership_group_commit_flush_duration_seconds", &[]),
        flushes
    );

    assert!(m.value("matrix_membership_database_size_bytes", &[]) > 0.0);
}

#[tokio::test]
async fn waiting_syncs_and_open_connections_are_gauges() {
    let s = start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PublicChat).await;
    let since = match alice.client.sync(None, Some(0), None, None, None).await.unwrap() {
        SyncResponse::Ok(ok) => ok.next_batch,
        other => panic!("{other:?}"),
    };
    assert_eq!(scrape(&s).await.value("matrix_membership_waiting_syncs", &[]), 0.0);

    let waiting = {
        let client = alice.client.clone();
        tokio::spawn(async move { client.sync(Some(&since), Some(30_000), None, None, None).await })
    };
    let mut m = scrape(&s).await;
    for _ in 0..200 {
        if m.value("matrix_membership_waiting_syncs", &[]) >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        m = scrape(&s).await;
    }
    assert_eq!(m.value("matrix_membership_waiting_syncs", &[]), 1.0);
    // The waiting sync holds its connection open.
    assert!(m.value("matrix_membership_open_connections", &[]) >= 1.0);

    // A write wakes it; then nothing waits.
    let body = serde_json::json!({"msgtype": "m.text", "body": "wake up"});
    let sent = alice
        .client
        .send_message(&room, "m.room.message", "t1", body.as_object().unwrap())
        .await
        .unwrap();
    assert!(matches!(sent, SendMessageResponse::Ok(_)), "{sent:?}");
    let woken = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(woken, Ok(SyncResponse::Ok(_))), "{woken:?}");
    assert_eq!(scrape(&s).await.value("matrix_membership_waiting_syncs", &[]), 0.0);
}

#[tokio::test]
async fn the_metrics_listener_serves_only_its_path() {
    let s = start().await;
    let url = s.metrics_url.clone().unwrap();
    let base = url.trim_end_matches(matrix_membership::metrics::endpoint::PATH);
    let (status, _, text) = common::get_from_metrics_listener(&format!("{base}/_matrix/client/versions")).await;
    assert_eq!(status, 404);
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["errcode"], "M_UNRECOGNIZED");
}

/// The TCP ports the process `pid` listens on, from the socket inodes
/// among its descriptors and the kernel's table of listening sockets.
#[cfg(target_os = "linux")]
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy();
            t.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string)
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // 0A is LISTEN; column 9 is the socket's inode.
            if cols.len() > 9 && cols[3] == "0A" && inodes.iter().any(|i| i == cols[9]) {
                let port = cols[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports.sort_unstable();
    ports
}

/// Starts the binary with `extra` flags; returns it and its start-up lines (up to `lines`).
#[cfg(target_os = "linux")]
fn spawn_binary(data_dir: &std::path::Path, extra: &[&str], lines: usize) -> (std::process::Child, Vec<String>) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_matrix-membership"))
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(common::database_args(data_dir))
        .args(extra)
        .env("RUST_LOG", "warn")
        .env_remove("MATRIX_MEMBERSHIP_METRICS_BIND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut got = Vec::new();
    for _ in 0..lines {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        got.push(line);
    }
    (child, got)
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn without_metrics_bind_the_binary_listens_on_one_port_only() {
    let data = tempfile::tempdir().unwrap();
    let (mut child, lines) = spawn_binary(data.path(), &[], 1);
    assert!(lines[0].contains("listening on"), "{lines:?}");
    let ports = listening_ports(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ports.len(), 1, "listening on {ports:?}");
    assert!(lines[0].contains(&format!(":{}", ports[0])), "{lines:?} vs {ports:?}");

    // With the flag there is a second listener, and it serves the metrics.
    let data = tempfile::tempdir().unwrap();
    let (mut child, lines) = spawn_binary(data.path(), &["--metrics-bind", "127.0.0.1:0"], 2);
    let ports = listening_ports(child.id());
    let url = lines[1]
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no metrics line: {lines:?}"))
        .to_string();
    let (status, _, text) = common::get_from_metrics_listener(&url).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ports.len(), 2, "listening on {ports:?}");
    assert_eq!(status, 200);
    assert!(Metrics::parse(&text).has("matrix_membership_database_size_bytes"));
}
