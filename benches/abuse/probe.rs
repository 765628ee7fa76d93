//! The well-behaved client: `GET /_matrix/client/versions` at a steady rate on
//! its own keep-alive connection, timing each answer.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const REQUEST: &[u8] = b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n\r\n";
/// A probe answer slower than this counts as a failure (and as this long).
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Latencies in microseconds, and the probes that failed.
pub struct ProbeResult {
    pub latencies: Histogram<u64>,
    pub failures: u64,
    pub reconnects: u64,
}

/// A keep-alive connection, opened before the attack starts.
pub struct Probe {
    addr: String,
    stream: Option<TcpStream>,
    opened: bool,
    reconnects: u64,
}

impl Probe {
    /// Connects and sends one request, so the connection holds a slot already.
    pub async fn open(addr: &str) -> Result<Probe, String> {
        let mut probe = Probe {
            addr: addr.to_string(),
            stream: None,
            opened: false,
            reconnects: 0,
        };
        probe.once().await.map(|_| probe)
    }

    /// Probes `rate` times a second until `stop`.
    pub async fn run(mut self, rate: f64, stop: Arc<AtomicBool>) -> ProbeResult {
        let mut latencies = super::stats::histogram();
        let mut failures = 0;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            match tokio::time::timeout(PROBE_TIMEOUT, self.once()).await {
                Ok(Ok(took)) => super::stats::record(&mut latencies, took),
                _ => {
                    failures += 1;
                    self.stream = None;
                    super::stats::record(&mut latencies, PROBE_TIMEOUT);
                }
            }
        }
        ProbeResult {
            latencies,
            failures,
            reconnects: self.reconnects,
        }
    }

    /// One request and its whole answer; reconnects once if the server had
    /// closed the connection (an idle timeout, say).
    async fn once(&mut self) -> Result<Duration, String> {
        let started = Instant::now();
        for attempt in 0..2 {
            if self.stream.is_none() {
                let stream = TcpStream::connect(&self.addr).await.map_err(|e| e.to_string())?;
                let _ = stream.set_nodelay(true);
                self.stream = Some(stream);
                self.reconnects += u64::from(self.opened);
                self.opened = true;
            }
            let stream = self.stream.as_mut().expect("connected");
            match exchange(stream).await {
                Ok(()) => return Ok(started.elapsed()),
                Err(_) if attempt == 0 => self.stream = None,
                Err(e) => return Err(e),
            }
        }
        Err("closed twice".into())
    }
}

/// Writes the request and reads one answer (head plus `content-length` body).
async fn exchange(stream: &mut TcpStream) -> Result<(), String> {
    stream.write_all(REQUEST).await.map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        bytes.extend_from_slice(&buf[..n]);
        if let Some(end) = complete(&bytes) {
            if !bytes.starts_with(b"HTTP/1.1 200") {
                return Err(String::from_utf8_lossy(&bytes[..end]).into_owned());
            }
            return Ok(());
        }
    }
}

/// The length of the first whole answer in `bytes`, if it is all there.
fn complete(bytes: &[u8]) -> Option<usize> {
    let text = String::from_utf8_lossy(bytes);
    let head_end = text.find("\r\n\r\n")? + 4;
    let length: usize = text[..head_end]
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    (bytes.len() >= head_end + length).then_some(head_end + length)
}
