//! Sending one request, or the same request twice a few milliseconds apart
//! on two connections, the way a client retries when its first attempt seems
//! slow. A repeat that finds its change already made must still not be
//! answered before that change is durable.

use crate::http::{Answer, Conn, Req, Resp, Transport};
use std::time::{Duration, Instant};

/// What became of a change the torture asked for.
#[derive(Debug)]
pub enum Outcome {
    /// Acknowledged (2xx); `by_retry` when the repeat's 2xx came first.
    Acked { resp: Resp, by_retry: bool },
    /// Answered with an error: nothing was changed.
    Rejected(Resp),
    /// No answer: it may or may not have happened.
    InDoubt(String),
    /// Never sent: it did not happen.
    NotSent(String),
}

/// Both answers of a request sent twice.
pub struct Twice {
    pub first: Answer,
    pub repeat: Answer,
    /// The repeat's answer arrived before the first's.
    pub repeat_first: bool,
}

impl Twice {
    /// Two answers that contradict each other (one 2xx, one error), if they do.
    pub fn contradiction(&self) -> Option<String> {
        match (&self.first, &self.repeat) {
            (Ok(a), Ok(b)) if a.ok() != b.ok() => Some(format!(
                "the first attempt was answered {} and the repeat {}",
                a.describe(),
                b.describe()
            )),
            _ => None,
        }
    }

    pub fn outcome(self) -> Outcome {
        let ok = |a: &Answer| matches!(a, Ok(r) if r.ok());
        let (first_ok, repeat_ok) = (ok(&self.first), ok(&self.repeat));
        if repeat_ok && (self.repeat_first || !first_ok) {
            return Outcome::Acked {
                resp: self.repeat.expect("checked ok"),
                by_retry: true,
            };
        }
        if first_ok {
            return Outcome::Acked {
                resp: self.first.expect("checked ok"),
                by_retry: false,
            };
        }
        match (self.first, self.repeat) {
            (Err(Transport::Lost(e)), _) | (_, Err(Transport::Lost(e))) => Outcome::InDoubt(e),
            (Ok(r), _) | (_, Ok(r)) => Outcome::Rejected(r),
            (Err(Transport::NotSent(e)), Err(Transport::NotSent(_))) => Outcome::NotSent(e),
        }
    }
}

/// Sends `req` once.
pub async fn once(conn: &mut Conn, req: &Req) -> Outcome {
    match conn.send(req).await {
        Ok(r) if r.ok() => Outcome::Acked {
            resp: r,
            by_retry: false,
        },
        Ok(r) => Outcome::Rejected(r),
        Err(Transport::Lost(e)) => Outcome::InDoubt(e),
        Err(Transport::NotSent(e)) => Outcome::NotSent(e),
    }
}

/// Sends `req` on `first`, and again on `second` after `gap`. `on_repeat_ack`
/// runs the instant the repeat is acknowledged, before the first answer is
/// awaited: the retry probe SIGKILLs the server there.
pub async fn twice(
    first: &mut Conn,
    second: &mut Conn,
    req: &Req,
    gap: Duration,
    on_repeat_ack: impl FnOnce(),
) -> Twice {
    let original = async {
        let answer = first.send(req).await;
        (answer, Instant::now())
    };
    let repeat = async {
        tokio::time::sleep(gap).await;
        let answer = second.send(req).await;
        if matches!(&answer, Ok(r) if r.ok()) {
            on_repeat_ack();
        }
        (answer, Instant::now())
    };
    let ((first, first_at), (repeat, repeat_at)) = tokio::join!(original, repeat);
    Twice {
        first,
        repeat,
        repeat_first: repeat_at < first_at,
    }
}
