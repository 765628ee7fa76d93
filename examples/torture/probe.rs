//! The probes, each run in a lull that it makes by pausing every writer:
//!
//! - retry probes: one change sent, the identical request sent again a few
//!   milliseconds later, and SIGKILL the instant the repeat is acknowledged;
//! - the sync probe: one message sent, a fresh `/sync` a few milliseconds
//!   later, and SIGKILL the instant that sync shows the message.
//!
//! A server that answers either before the change is durable loses the
//! change here almost every time; one that waits loses nothing.

use crate::http::Account;
use crate::load::{self, Ctx};
use crate::model::{Action, Member, MsgLog, PairLog};
use crate::observer::{self, Observer, PollError};
use rand::rngs::StdRng;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the sync probe's sync may wait for the message.
const SYNC_PROBE_TIMEOUT_MS: u64 = 2000;

/// What a probe does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Repeats a message's `PUT …/send/…/{txnId}`.
    Message,
    Join,
    Invite,
    Ban,
    /// A message, then a sync.
    Sync,
}

impl Kind {
    pub const RETRIES: [Kind; 4] = [Kind::Message, Kind::Join, Kind::Invite, Kind::Ban];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Message => "message-retry",
            Kind::Join => "join-retry",
            Kind::Invite => "invite-retry",
            Kind::Ban => "ban-retry",
            Kind::Sync => "sync",
        }
    }
}

/// Accounts only the probes touch, so that no other task moves their state.
#[derive(Clone)]
pub struct Probes {
    /// Joined to room 0.
    pub sender: Account,
    /// Joins room 0 (public).
    pub joiner: Member,
    /// Is invited to room 2 (invite-only).
    pub invitee: Member,
    /// Is banned from room 1.
    pub bannee: Member,
}

impl Probes {
    pub fn members(&self) -> [&Member; 3] {
        [&self.joiner, &self.invitee, &self.bannee]
    }

    pub fn members_mut(&mut self) -> [&mut Member; 3] {
        [&mut self.joiner, &mut self.invitee, &mut self.bannee]
    }
}

/// What the probe did.
pub struct Report {
    pub pairs: Vec<PairLog>,
    pub messages: Vec<MsgLog>,
    /// The server was killed at the probe's chosen instant.
    pub fired: bool,
    /// The sync probe's client, handed back with its answers.
    pub watcher: Observer,
}

/// Waits `after`, pauses every writer, then runs one probe of `kind`.
pub async fn run(
    ctx: Arc<Ctx>,
    kind: Kind,
    probes: Probes,
    watcher: Observer,
    cycle: u32,
    after: Duration,
    mut rng: StdRng,
) -> Report {
    tokio::time::sleep(after).await;
    let mut report = Report {
        pairs: Vec::new(),
        messages: Vec::new(),
        fired: false,
        watcher,
    };
    // Every writer finishes its change (acknowledged, so flushed) and waits.
    let _lull = ctx.gate.write().await;
    if ctx.process.is_killed() {
        return report;
    }
    // Long enough for the first request to have committed (a repeat that
    // arrives first takes the waiting path, which proves nothing), short
    // enough to beat the flush.
    let gap = Duration::from_millis(rng.gen_range(2..=4));
    let fired = AtomicBool::new(false);
    let kill = || fired.store(ctx.process.kill(), Ordering::SeqCst);
    let mut conns = (ctx.conn(), ctx.conn());
    match kind {
        Kind::Message => {
            let body = format!("c{cycle}.probe");
            let (log, _) = load::message(&ctx, &mut conns, &probes.sender, 0, body, Some(gap), kill).await;
            report.messages.push(log);
        }
        Kind::Join | Kind::Invite | Kind::Ban => {
            let (member, room, undo, action) = match kind {
                Kind::Join => (&probes.joiner, 0, Action::Leave, Action::Join),
                Kind::Invite => (&probes.invitee, 2, Action::Kick, Action::Invite),
                _ => (&probes.bannee, 1, Action::Unban, Action::Ban),
            };
            let mut pair = PairLog::new(room, &member.account.user_id, member.states[room]);
            // The change must be a real one, so the last probe's is undone first.
            let ready = pair.current() != action.result()
                || load::change(&ctx, &mut conns, &mut pair, &member.account, undo, None, || {}).await;
            if ready {
                load::change(&ctx, &mut conns, &mut pair, &member.account, action, Some(gap), kill).await;
            }
            report.pairs.push(pair);
        }
        Kind::Sync => {
            let log = sync_probe(&ctx, &probes.sender, &mut report.watcher, cycle, gap, kill).await;
            report.messages.extend(log);
        }
    }
    report.fired = fired.load(Ordering::SeqCst);
    report
}

/// Catches the watcher up, sends a message, and `gap` later asks the watcher's
/// sync for it; `kill` runs the instant that sync shows it.
async fn sync_probe(
    ctx: &Ctx,
    sender: &Account,
    watcher: &mut Observer,
    cycle: u32,
    gap: Duration,
    kill: impl FnOnce(),
) -> Option<MsgLog> {
    let mut conn = ctx.conn();
    // In the lull nothing else is written, so after this the next answer can
    // only be the probe's message.
    match observer::poll(&mut conn, &watcher.account, watcher.token, 0).await {
        Ok(w) => watcher.record(w),
        Err(e) => {
            ctx.problem(format!("the sync probe could not catch up: {}", e.describe()));
            return None;
        }
    }
    let mut send_conns = (ctx.conn(), ctx.conn());
    let body = format!("c{cycle}.syncprobe");
    let send = load::message(ctx, &mut send_conns, sender, 0, body, None, || {});
    let since = watcher.token;
    let account = watcher.account.clone();
    let look = async {
        tokio::time::sleep(gap).await;
        let answer = observer::poll(&mut conn, &account, since, SYNC_PROBE_TIMEOUT_MS).await;
        if matches!(&answer, Ok(w) if w.rooms.values().any(|ids| !ids.is_empty())) {
            kill();
        }
        answer
    };
    let ((log, _), answer) = tokio::join!(send, look);
    match answer {
        Ok(w) => watcher.record(w),
        Err(PollError::Incomplete(shown)) => watcher.seen_elsewhere.extend(shown),
        Err(PollError::Failed(e)) => {
            if !ctx.process.is_killed() {
                ctx.problem(format!("the sync probe's sync failed: {e}"));
            }
        }
    }
    Some(log)
}
