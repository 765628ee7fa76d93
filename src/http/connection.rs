//! One connection below hyper: the phase it is in, that phase's deadline, and
//! the Matrix JSON the edge writes itself when hyper or a deadline ends it.
//!
//! | phase | what is going on | bound |
//! |---|---|---|
//! | fresh | accepted, no byte yet | closed at `header_timeout` after accept |
//! | head | part of a request head has arrived | 408 `M_UNKNOWN`, closed, at `header_timeout` |
//! | busy | a request is in the service | none here (see below) |
//! | writing | the service answered, hyper writes it | closed after `idle_timeout` without a written byte |
//! | idle | answered, waiting for the next request | closed at `idle_timeout` |
//!
//! The header timeout counts from accept for a connection's first request and
//! from the first byte for later ones: the wait before that byte is idleness,
//! bounded by the idle timeout. hyper's own `header_read_timeout` is not used
//! because it starts as soon as a connection goes idle, so it cannot give a
//! keep-alive connection a longer leash than a client trickling a head, and it
//! closes without an answer.
//!
//! Busy has no deadline because a `/sync` long poll legitimately waits (up to
//! 600 s); the body has its own timeout in `Edge::read_body`, handlers are
//! bounded, and the connection cap bounds how many requests can be busy.
//!
//! hyper answers a head it cannot parse (400, or 431 over the head limits)
//! itself, with an empty body. Every write made while no request is in the
//! service and no response is pending is such an answer, so it is replaced by
//! the same status with a Matrix JSON body.

use super::cors;
use super::error::MatrixError;
use super::limits::EdgeConfig;
use bytes::{Buf, Bytes};
use http::{HeaderMap, StatusCode};
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Fresh,
    Head,
    Busy,
    /// `body_sent`: hyper has dropped the response body, so once its buffer is
    /// flushed nothing of this response is left to write.
    Writing {
        body_sent: bool,
    },
    Idle,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// When the phase's clock started: accept, the first byte of a later head,
    /// the last byte written, or the end of the last response.
    since: Instant,
}

/// What a deadline does when it passes.
enum Expiry {
    Close,
    AnswerTimeout,
}

#[derive(Debug, Clone, Copy)]
struct Bounds {
    header_timeout: Duration,
    idle_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
}

impl State {
    fn deadline(&self, bounds: &Bounds) -> Option<(Instant, Expiry)> {
        match self.phase {
            Phase::Fresh => Some((self.since + bounds.header_timeout, Expiry::Close)),
            Phase::Head => Some((self.since + bounds.header_timeout, Expiry::AnswerTimeout)),
            Phase::Busy => None,
            Phase::Writing { .. } | Phase::Idle => Some((self.since + bounds.idle_timeout, Expiry::Close)),
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.since = Instant::now();
    }

    fn bytes_arrived(&mut self) {
        match self.phase {
            // The first request's clock started at accept.
            Phase::Fresh => self.phase = Phase::Head,
            Phase::Idle => self.enter(Phase::Head),
            _ => {}
        }
    }

    fn bytes_written(&mut self) {
        if let Phase::Writing { .. } = self.phase {
            self.since = Instant::now();
        }
    }

    /// True when this ends a response and the connection goes idle.
    /// hyper 1 drops a finished body before its last flush, so that flush
    /// is seen here; were it the other way round, the connection would wait
    /// in writing with no timer set, which the idle-timeout test catches.
    fn flushed(&mut self) -> bool {
        let done = self.phase == (Phase::Writing { body_sent: true });
        if done {
            self.enter(Phase::Idle);
        }
        done
    }

    /// No request is in the service and nothing of a response is left to
    /// write: whatever hyper writes now is its own answer to a bad head.
    fn nothing_owed(&self) -> bool {
        matches!(self.phase, Phase::Fresh | Phase::Head | Phase::Idle)
    }
}

/// A connection's phase, shared by its socket ([`Watched`]) and its service.
#[derive(Clone)]
pub struct Tracker(Arc<Mutex<State>>);

impl Tracker {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A request reached the service; it counts as answered when the guard drops.
    pub fn begin(&self) -> InFlight {
        self.with(|s| s.enter(Phase::Busy));
        InFlight(self.clone())
    }

    /// The response body, reporting to the tracker when hyper is done with it.
    pub fn track<B>(&self, body: B) -> Tracked<B> {
        Tracked {
            body,
            tracker: self.clone(),
        }
    }
}

/// A request in the service.
pub struct InFlight(Tracker);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with(|s| s.enter(Phase::Writing { body_sent: false }));
    }
}

/// A response body whose drop tells the tracker that hyper has taken all of it.
pub struct Tracked<B> {
    body: B,
    tracker: Tracker,
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        self.tracker.with(|s| {
            if let Phase::Writing { .. } = s.phase {
                s.phase = Phase::Writing { body_sent: true };
            }
        });
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A socket that enforces its connection's deadlines and turns hyper's own
/// answers into Matrix JSON. A passed deadline fails the pending read or
/// write with `TimedOut`, which makes hyper drop the connection.
pub struct Watched<S> {
    stream: S,
    tracker: Tracker,
    bounds: Bounds,
    timer: Pin<Box<Sleep>>,
    armed: Instant,
    /// The rest of the Matrix JSON answer that replaces hyper's own.
    replacement: Option<Bytes>,
    /// hyper's answer was replaced: its bytes are dropped, reported as written.
    replaced: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Watched<S> {
    /// Watches a connection accepted just now; the tracker goes to its service.
    pub fn new(stream: S, config: &EdgeConfig) -> (Self, Tracker) {
        let now = Instant::now();
        let tracker = Tracker(Arc::new(Mutex::new(State {
            phase: Phase::Fresh,
            since: now,
        })));
        let bounds = Bounds {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_header_bytes: config.max_header_bytes,
            max_headers: config.max_headers,
        };
        let armed = now + bounds.header_timeout;
        let watched = Watched {
            stream,
            tracker: tracker.clone(),
            bounds,
            timer: Box::pin(tokio::time::sleep_until(armed.into())),
            armed,
            replacement: None,
            replaced: false,
        };
        (watched, tracker)
    }

    /// Ready with the error to fail the pending operation with once the
    /// current phase's deadline has passed; registers for it otherwise.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let expiry = ready!(self.poll_timer(cx));
        Poll::Ready(self.expire(cx, expiry))
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<Expiry> {
        let Some((at, expiry)) = self.tracker.with(|s| s.deadline(&self.bounds)) else {
            return Poll::Pending;
        };
        if at != self.armed {
            self.timer.as_mut().reset(at.into());
            self.armed = at;
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(expiry)
    }

    /// Sets the timer for a phase entered during a call that will not return
    /// Pending. hyper may not poll this socket again until it is readable, so
    /// without this an idle connection would never meet its deadline.
    fn arm(&mut self, cx: &mut Context<'_>) {
        if self.poll_timer(cx).is_ready() {
            cx.waker().wake_by_ref();
        }
    }

    fn expire(&mut self, cx: &mut Context<'_>, expiry: Expiry) -> io::Error {
        let what = match expiry {
            Expiry::Close => "the connection was idle or not read for too long",
            Expiry::AnswerTimeout => {
                // Best effort and never waited for: a client this slow may not read.
                let answer = raw_answer(&MatrixError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "M_UNKNOWN",
                    format!(
                        "the request head did not arrive within {:?}",
                        self.bounds.header_timeout
                    ),
                ));
                let _ = Pin::new(&mut self.stream).poll_write(cx, &answer);
                "the request head did not arrive in time"
            }
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }

    /// Starts replacing hyper's answer if `first` (the start of a write) is one.
    fn intercept(&mut self, first: &[u8]) {
        if self.replaced || !self.tracker.with(|s| s.nothing_owed()) {
            return;
        }
        let Some(status) = answer_status(first) else { return };
        self.replacement = Some(raw_answer(&self.matrix_error_for(status)));
        self.replaced = true;
        // Writing it is bounded like any response.
        self.tracker.with(|s| s.enter(Phase::Writing { body_sent: true }));
    }

    fn matrix_error_for(&self, status: StatusCode) -> MatrixError {
        match status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE | StatusCode::URI_TOO_LONG => MatrixError::new(
                status,
                "M_TOO_LARGE",
                format!(
                    "the request head is over the limit of {} bytes or {} header fields",
                    self.bounds.max_header_bytes, self.bounds.max_headers
                ),
            ),
            StatusCode::BAD_REQUEST => MatrixError::new(status, "M_UNKNOWN", "the request is not valid HTTP/1.1"),
            other => MatrixError::new(
                other,
                "M_UNKNOWN",
                format!(
                    "the request could not be read: {}",
                    other.canonical_reason().unwrap_or("error")
                ),
            ),
        }
    }

    /// Writes what is left of the replacement answer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(rest) = self.replacement.as_mut() {
            if rest.is_empty() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.stream).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            rest.advance(n);
            self.tracker.with(State::bytes_written);
        }
        Poll::Ready(Ok(()))
    }

    /// Counts a write's progress, or waits for the deadline while it is stuck.
    fn after_write(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.tracker.with(State::bytes_written);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self.poll_deadline(cx).map(Err),
            err => err,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Watched<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.tracker.with(State::bytes_arrived);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_deadline(cx).map(Err),
            err => err,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.intercept(buf);
        let result = if this.replaced {
            this.poll_replacement(cx).map_ok(|()| buf.len())
        } else {
            Pin::new(&mut this.stream).poll_write(cx, buf)
        };
        this.after_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs.iter().find(|b| !b.is_empty()).map(|b| &b[..]).unwrap_or(&[]);
        this.intercept(first);
        let result = if this.replaced {
            let len = bufs.iter().map(|b| b.len()).sum();
            this.poll_replacement(cx).map_ok(|()| len)
        } else {
            Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
        };
        this.after_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = match this.poll_replacement(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.stream).poll_flush(cx),
            other => other,
        };
        match result {
            Poll::Ready(Ok(())) => {
                if this.tracker.with(State::flushed) {
                    this.arm(cx);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => this.poll_deadline(cx).map(Err),
            err => err,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// The status of `first` if it starts an HTTP/1 error response, as hyper's own answers do.
fn answer_status(first: &[u8]) -> Option<StatusCode> {
    let rest = first
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| first.strip_prefix(b"HTTP/1.0 "))?;
    let code: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    StatusCode::from_u16(code)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
}

/// A whole HTTP/1.1 response carrying `err`, for answers written below hyper;
/// the connection closes after it.
fn raw_answer(err: &MatrixError) -> Bytes {
    let body = err.body().to_string();
    let mut headers = HeaderMap::new();
    cors::add_headers(&mut headers);
    let mut text = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        err.status.as_str(),
        err.status.canonical_reason().unwrap_or(""),
        body.len()
    );
    for (name, value) in &headers {
        text.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
    }
    text.push_str("\r\n");
    text.push_str(&body);
    Bytes::from(text)
}
