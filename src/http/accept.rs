//! Accepting connections: at most `max_connections` at once, and a quiet
//! back-off when `accept` fails.
//!
//! At the cap the loop stops accepting rather than accepting and answering
//! 503: waiting connections then sit in the kernel's listen backlog, costing
//! the server no descriptor, memory or CPU, and are served in order as slots
//! free. Answering 503 would spend exactly what the cap protects (a descriptor,
//! a task, a write) on every attempt of a client flooding us with connects.
//! nginx (`worker_connections`) and HAProxy (`maxconn`) behave the same way.
//!
//! `accept` failing is nearly always the descriptor limit (EMFILE, ENFILE),
//! and it keeps failing while the connection stays in the backlog; retrying at
//! once spins a core and floods the log. So every failure sleeps, doubling up
//! to a second, and the warning is written at most once per interval.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// One accepted connection and the slot it holds until it is dropped.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub slot: OwnedSemaphorePermit,
}

/// The listener behind the connection cap.
pub struct Acceptor {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    backoff: Duration,
    failures: Throttle,
    at_cap: Throttle,
}

impl Acceptor {
    /// Accepts from `listener`, at most `max_connections` at once.
    pub fn new(listener: TcpListener, max_connections: usize) -> Self {
        Acceptor {
            listener,
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            backoff: FIRST_BACKOFF,
            failures: Throttle::default(),
            at_cap: Throttle::default(),
        }
    }

    /// The next connection, once a slot is free. Cancel-safe: dropping the
    /// future loses no connection and returns any slot it held.
    pub async fn next(&mut self) -> Accepted {
        loop {
            let slot = self.slot().await;
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.backoff = FIRST_BACKOFF;
                    return Accepted { stream, peer, slot };
                }
                Err(e) => {
                    if let Some(suppressed) = self.failures.ready() {
                        tracing::warn!(
                            error = %e,
                            suppressed,
                            "accept failed (at the file descriptor limit?); backing off up to {MAX_BACKOFF:?}"
                        );
                    }
                    // The slot goes back while we wait: nothing holds it.
                    drop(slot);
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn slot(&mut self) -> OwnedSemaphorePermit {
        if let Ok(slot) = self.slots.clone().try_acquire_owned() {
            return slot;
        }
        if let Some(suppressed) = self.at_cap.ready() {
            tracing::warn!(
                suppressed,
                "at the connection cap; new connections wait in the listen backlog until one closes"
            );
        }
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed")
    }
}

/// Lets a repeated log line through at most once per `LOG_INTERVAL`.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    /// `Some(lines suppressed since the last one)` when a line may be written now.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < LOG_INTERVAL) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}
