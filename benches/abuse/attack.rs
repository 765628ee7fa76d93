//! The hostile side: one-shot requests on fresh connections, and connections
//! that trickle a request head and never finish it (slowloris).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A status (0 when the answer was not HTTP) and the parsed JSON body.
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Answer {
    /// `403 M_FORBIDDEN`, the key answers are counted under.
    pub fn key(&self) -> String {
        match self.body.get("errcode").and_then(|v| v.as_str()) {
            Some(code) => format!("{} {code}", self.status),
            None => self.status.to_string(),
        }
    }
}

/// Sends `request` on a new connection with `Connection: close` and reads the
/// whole answer, within `timeout` (connecting included).
pub async fn one_shot(addr: &str, request: &[u8], timeout: Duration) -> Result<Answer, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        stream.write_all(request).await.map_err(|e| format!("send: {e}"))?;
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).await.map_err(|e| format!("read: {e}"))?;
        Ok::<_, String>(parse(&bytes))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("timeout: no answer within {timeout:?}")))
}

fn parse(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(serde_json::Value::Null);
    Answer { status, body }
}

/// A request with a JSON body, closing the connection after it.
pub fn post_json(path: &str, body: &serde_json::Value) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What the trickling connections saw.
#[derive(Default)]
pub struct TrickleCounts {
    pub opened: AtomicU64,
    pub connect_failed: AtomicU64,
    pub closed_by_server: AtomicU64,
    pub answered_408: AtomicU64,
}

/// One slowloris client until `stop`: connects, sends a request line and
/// then one header line a second, never the blank line that ends the head;
/// reconnects as soon as the server drops it.
pub async fn trickle(addr: String, stop: Arc<AtomicBool>, counts: Arc<TrickleCounts>) {
    while !stop.load(Ordering::Relaxed) {
        let stream = match TcpStream::connect(&addr).await {
            Ok(s) => s,
            Err(_) => {
                counts.connect_failed.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        counts.opened.fetch_add(1, Ordering::Relaxed);
        let (mut reader, mut writer) = stream.into_split();
        let answered = tokio::spawn(async move {
            let mut bytes = Vec::new();
            let _ = reader.read_to_end(&mut bytes).await;
            bytes
        });
        let _ = writer
            .write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n")
            .await;
        while !stop.load(Ordering::Relaxed) && !answered.is_finished() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if writer.write_all(b"X-Trickle: 1\r\n").await.is_err() {
                break;
            }
        }
        if answered.is_finished() {
            counts.closed_by_server.fetch_add(1, Ordering::Relaxed);
            if answered.await.is_ok_and(|b| b.starts_with(b"HTTP/1.1 408")) {
                counts.answered_408.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            answered.abort();
        }
    }
}

/// Time to a whole answer of `GET /versions` on a connection opened for it:
/// what a new client meets (waiting in the listen backlog included).
pub async fn fresh_versions(addr: &str, timeout: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let request = b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = one_shot(addr, request, timeout).await?;
    if answer.status != 200 {
        return Err(format!("status {}", answer.key()));
    }
    Ok(started.elapsed())
}

/// Sends a head announcing a body of `limit` bytes and all of it but the last
/// byte, then waits until `stop` or until the server drops the connection:
/// the most an unauthenticated connection can make the server hold.
/// True when the server had taken the body up to the last byte.
pub async fn stall_body(addr: String, limit: usize, stop: Arc<AtomicBool>) -> bool {
    let Ok(mut stream) = TcpStream::connect(&addr).await else {
        return false;
    };
    let head = format!(
        "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {limit}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    let sent = stream.write_all(&vec![b' '; limit - 1]).await.is_ok();
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            _ => {}
        }
    }
    sent
}
