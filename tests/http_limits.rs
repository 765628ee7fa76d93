//! What a hostile client can make the edge hold: every bound of
//! `src/http/limits.rs`, driven over real sockets.
//!
//! Timeouts are set to a second or so through the flags. Each test asserts an
//! outcome (closed, which answer) within a generous window, never a tight
//! duration, so a loaded machine makes the tests slower but not flaky.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something the server should do within a second or two.
const WINDOW: Duration = Duration::from_secs(15);
const VERSIONS: &str = "GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n";

/// What came back on a connection, and whether the server closed it.
struct Seen {
    bytes: Vec<u8>,
    closed: bool,
}

impl Seen {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    fn status(&self) -> Option<u16> {
        let line = self.text().lines().next()?.to_string();
        line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
    }

    fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next()?.to_string();
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> serde_json::Value {
        let text = self.text();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
    }

    /// A Matrix JSON error with this status and errcode.
    fn assert_error(&self, status: u16, errcode: &str) {
        let text = self.text();
        assert_eq!(self.status(), Some(status), "{text}");
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json"),
            "{text}"
        );
        assert_eq!(self.json()["errcode"], errcode, "{text}");
        assert!(self.json()["error"].as_str().is_some_and(|e| !e.is_empty()), "{text}");
    }
}

async fn connect(s: &common::TestServer) -> TcpStream {
    TcpStream::connect(s.base_url.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection or `within` passes.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Seen {
    let deadline = tokio::time::Instant::now() + within;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Seen { bytes, closed: false },
            Ok(Ok(0)) | Ok(Err(_)) => return Seen { bytes, closed: true },
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// Reads one whole response with a `content-length` body, leaving the connection open.
async fn read_response(stream: &mut TcpStream, within: Duration) -> Seen {
    let deadline = tokio::time::Instant::now() + within;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let seen = Seen {
            bytes: bytes.clone(),
            closed: false,
        };
        if let Some(head_end) = seen.text().find("\r\n\r\n") {
            let length: usize = seen.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            if bytes.len() >= head_end + 4 + length {
                return seen;
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return seen,
            Ok(Ok(0)) | Ok(Err(_)) => return Seen { bytes, closed: true },
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `request` and reads its answer on a keep-alive connection.
async fn exchange(stream: &mut TcpStream, request: &str) -> Seen {
    stream.write_all(request.as_bytes()).await.expect("send");
    read_response(stream, WINDOW).await
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let s = common::start_with(&["--header-timeout", "1s", "--idle-timeout", "60s"]).await;
    let mut c = connect(&s).await;
    let seen = read_until_closed(&mut c, WINDOW).await;
    assert!(seen.closed, "a silent connection is still open after {WINDOW:?}");
    assert!(
        seen.bytes.is_empty(),
        "nothing is owed to a client that asked nothing: {}",
        seen.text()
    );
}

#[tokio::test]
async fn a_head_trickled_byte_by_byte_gets_408_and_is_closed_after_the_header_timeout() {
    let s = common::start_with(&["--header-timeout", "1s", "--idle-timeout", "60s"]).await;
    let c = connect(&s).await;
    let (mut reader, mut writer) = c.into_split();
    // Slowloris: every byte resets no clock; only the whole head counts.
    let trickle = tokio::spawn(async move {
        let _ = writer.write_all(b"GET /_matrix/client/versions HTTP/1.1\r\n").await;
        let started = Instant::now();
        while started.elapsed() < WINDOW {
            if writer.write_all(b"x").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    let mut bytes = Vec::new();
    let closed = tokio::time::timeout(WINDOW, reader.read_to_end(&mut bytes))
        .await
        .is_ok();
    let seen = Seen { bytes, closed };
    assert!(seen.closed, "a trickled head is still being read after {WINDOW:?}");
    seen.assert_error(408, "M_UNKNOWN");
    assert_eq!(seen.header("connection").as_deref(), Some("close"));
    trickle.abort();
}

#[tokio::test]
async fn a_body_that_stops_halfway_gets_408_and_is_closed_after_the_body_timeout() {
    let s = common::start_with(&[
        "--body-timeout",
        "1s",
        "--header-timeout",
        "60s",
        "--idle-timeout",
        "60s",
    ])
    .await;
    let mut c = connect(&s).await;
    let head = "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n";
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&[b' '; 50]).await.unwrap();
    let seen = read_until_closed(&mut c, WINDOW).await;
    assert!(
        seen.closed,
        "a half-sent body still holds the connection after {WINDOW:?}: {}",
        seen.text()
    );
    seen.assert_error(408, "M_UNKNOWN");
    assert_eq!(seen.header("connection").as_deref(), Some("close"));
}

#[tokio::test]
async fn a_head_over_the_size_limit_gets_431_too_large_and_is_closed() {
    let s = common::start_with(&["--max-header-bytes", "4096"]).await;
    let fits = format!(
        "GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(2000)
    );
    let seen = exchange(&mut connect(&s).await, &fits).await;
    assert_eq!(seen.status(), Some(200), "{}", seen.text());

    let mut c = connect(&s).await;
    let over = format!(
        "GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(6000)
    );
    c.write_all(over.as_bytes()).await.unwrap();
    let seen = read_until_closed(&mut c, WINDOW).await;
    seen.assert_error(431, "M_TOO_LARGE");
    assert!(seen.closed, "the connection stays open after a 431");
}

#[tokio::test]
async fn a_head_with_too_many_header_fields_gets_431_too_large() {
    let s = common::start_with(&["--max-headers", "10"]).await;
    let head = |n: usize| {
        let fields: String = (0..n).map(|i| format!("X-F{i}: v\r\n")).collect();
        format!("GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n{fields}\r\n")
    };
    let seen = exchange(&mut connect(&s).await, &head(5)).await;
    assert_eq!(seen.status(), Some(200), "{}", seen.text());

    let mut c = connect(&s).await;
    c.write_all(head(20).as_bytes()).await.unwrap();
    let seen = read_until_closed(&mut c, WINDOW).await;
    seen.assert_error(431, "M_TOO_LARGE");
}

#[tokio::test]
async fn a_request_hyper_cannot_parse_still_gets_a_matrix_json_400() {
    let s = common::start().await;
    let mut c = connect(&s).await;
    c.write_all(b"NOT HTTP AT ALL\r\n\r\n").await.unwrap();
    let seen = read_until_closed(&mut c, WINDOW).await;
    seen.assert_error(400, "M_UNKNOWN");
    assert!(seen.closed);
}

#[tokio::test]
async fn the_connection_cap_holds_the_next_connection_until_one_closes() {
    let s = common::start_with(&["--max-connections", "2"]).await;
    let mut first = connect(&s).await;
    let mut second = connect(&s).await;
    assert_eq!(exchange(&mut first, VERSIONS).await.status(), Some(200));
    assert_eq!(exchange(&mut second, VERSIONS).await.status(), Some(200));

    // The kernel completes the handshake; the server does not take it up.
    let mut third = connect(&s).await;
    third.write_all(VERSIONS.as_bytes()).await.unwrap();
    let held = read_response(&mut third, Duration::from_secs(1)).await;
    assert!(
        held.bytes.is_empty() && !held.closed,
        "a third connection was served while two were open: {}",
        held.text()
    );

    drop(first);
    let served = read_response(&mut third, WINDOW).await;
    assert_eq!(
        served.status(),
        Some(200),
        "once a slot frees, the waiting connection is served: {}",
        served.text()
    );
    // The cap still holds with the slot taken again.
    assert_eq!(exchange(&mut second, VERSIONS).await.status(), Some(200));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = common::start_with(&["--idle-timeout", "1s", "--header-timeout", "60s"]).await;
    let mut c = connect(&s).await;
    assert_eq!(exchange(&mut c, VERSIONS).await.status(), Some(200));
    let seen = read_until_closed(&mut c, WINDOW).await;
    assert!(
        seen.closed,
        "an idle keep-alive connection is still open after {WINDOW:?}"
    );
    assert!(
        seen.bytes.is_empty(),
        "closing an idle connection owes no answer: {}",
        seen.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_responses_loses_its_connection_after_the_idle_timeout() {
    let s = common::start_with(&["--max-connections", "1", "--idle-timeout", "1s"]).await;
    // A small receive buffer turns off autotuning, so the server's writes
    // stall after its own send buffer (at most 4 MiB here) is full.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = s.base_url.trim_start_matches("http://").parse().unwrap();
    let stalled = socket.connect(addr).await.unwrap();
    let (_unread, mut writer) = stalled.into_split();
    // About 13 MiB of pipelined answers that are never read.
    let flood = tokio::spawn(async move {
        let requests = VERSIONS.repeat(30_000);
        let _ = writer.write_all(requests.as_bytes()).await;
        writer
    });

    // It holds the only slot until the server gives up writing to it.
    let mut next = connect(&s).await;
    let seen = exchange(&mut next, VERSIONS).await;
    assert_eq!(
        seen.status(),
        Some(200),
        "a connection whose client does not read still holds its slot after {WINDOW:?}"
    );
    flood.abort();
}

#[tokio::test]
async fn a_keep_alive_connection_may_wait_between_requests_longer_than_the_header_timeout() {
    let s = common::start_with(&["--header-timeout", "1s", "--idle-timeout", "60s"]).await;
    let mut c = connect(&s).await;
    assert_eq!(exchange(&mut c, VERSIONS).await.status(), Some(200));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seen = exchange(&mut c, VERSIONS).await;
    assert_eq!(seen.status(), Some(200), "{}", seen.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_sync_outlives_the_header_body_and_idle_timeouts() {
    let s = common::start_with(&[
        "--no-rate-limits",
        "--header-timeout",
        "1s",
        "--body-timeout",
        "1s",
        "--idle-timeout",
        "1s",
    ])
    .await;
    let token = s.register("alice").await.client.access_token().unwrap().to_string();
    let mut c = connect(&s).await;
    let sync = |query: &str| {
        format!("GET /_matrix/client/v3/sync?{query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n")
    };
    let first = exchange(&mut c, &sync("timeout=0")).await;
    assert_eq!(first.status(), Some(200), "{}", first.text());
    let since = first.json()["next_batch"].as_str().expect("next_batch").to_string();

    let started = Instant::now();
    let waited = exchange(&mut c, &sync(&format!("since={since}&timeout=3000"))).await;
    assert_eq!(waited.status(), Some(200), "the long poll was cut: {}", waited.text());
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "the sync returned after {:?}, before its timeout, so it did not wait",
        started.elapsed()
    );
}

/// Starts the server binary with an open-file limit of `limit` (soft and hard,
/// so it cannot raise it), its stderr going to `log`.
#[cfg(target_os = "linux")]
fn spawn_with_fd_limit(data: &std::path::Path, log: &std::path::Path, limit: u64) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_matrix-membership"));
    command
        .args(["--bind", "127.0.0.1:0", "--no-rate-limits", "--max-connections", "1000"])
        .args(["--header-timeout", "60s", "--idle-timeout", "60s", "--data-dir"])
        .arg(data)
        .args(common::database_args(data))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    // SAFETY: only setrlimit runs between fork and exec; it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            let rlim = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: limit as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().expect("start the server binary")
}

/// User plus system CPU time of a process.
#[cfg(target_os = "linux")]
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_backs_off_quietly_at_the_file_descriptor_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = spawn_with_fd_limit(&dir.path().join("db"), &log, 64);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("no address in the start-up line {line:?}"))
        .to_string();

    // More connections than descriptors: the rest wait in the backlog, and
    // every accept of them fails with EMFILE.
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = cpu_time(child.id());
    let window = Duration::from_secs(3);
    tokio::time::sleep(window).await;
    let cpu = cpu_time(child.id()) - cpu_before;
    let failures = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.contains("accept failed"))
        .count();

    drop(held);
    let mut probe = TcpStream::connect(&addr).await.unwrap();
    probe.write_all(VERSIONS.as_bytes()).await.unwrap();
    let seen = read_response(&mut probe, WINDOW).await;
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(failures >= 1, "the server never reached the descriptor limit");
    assert!(failures <= 3, "{failures} accept failures were logged in about 4 s");
    assert!(
        cpu < window / 2,
        "the server used {cpu:?} of CPU in {window:?} at the limit"
    );
    assert_eq!(seen.status(), Some(200), "the server did not recover: {}", seen.text());
}
