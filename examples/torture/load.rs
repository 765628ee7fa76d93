//! The writers of a load phase: membership changes, messages and
//! registrations, each task sequential so that its log is in the order the
//! server applied its changes, and each stopping at the kill.

use crate::http::{account_of, enc, register_finish, register_start, Account, Conn, Req, V3};
use crate::model::{AckedChange, Action, Member, MsgLog, PairLog, World, M};
use crate::retry::{self, Outcome};
use crate::server::Process;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every task of one load phase shares.
pub struct Ctx {
    pub world: Arc<World>,
    pub process: Arc<Process>,
    /// How often a repeatable change or a message is sent twice.
    pub repeat_chance: f64,
    /// Answers that no correct server gives (refusals the model says cannot
    /// happen, contradicting repeats, silence without a kill).
    pub problems: Mutex<Vec<String>>,
    /// Writers hold it shared for each change; a probe takes it exclusively
    /// to make a lull, because sled writes a transaction out to the OS when
    /// the next one begins: under steady load only the very last write before
    /// a kill is at risk, and the probe wants that write to be its own.
    pub gate: tokio::sync::RwLock<()>,
}

impl Ctx {
    pub fn new(world: Arc<World>, process: Arc<Process>, repeat_chance: f64) -> Ctx {
        Ctx {
            world,
            process,
            repeat_chance,
            problems: Mutex::new(Vec::new()),
            gate: tokio::sync::RwLock::new(()),
        }
    }

    /// The problems found so far, taken.
    pub fn take_problems(&self) -> Vec<String> {
        std::mem::take(&mut *self.problems.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn conn(&self) -> Conn {
        Conn::new(&self.process.authority)
    }

    pub fn problem(&self, what: String) {
        self.problems.lock().unwrap_or_else(|e| e.into_inner()).push(what);
    }

    /// A missing answer is only expected once the server was killed.
    fn unanswered(&self, what: &str, why: &str) {
        if !self.process.is_killed() {
            self.problem(format!("{what}: no answer although the server was not killed ({why})"));
        }
    }
}

/// The pause before a repeat: "a few milliseconds", like an impatient client.
pub fn repeat_gap(rng: &mut StdRng) -> Duration {
    Duration::from_millis(rng.gen_range(1..=5))
}

/// Logs one membership change; `false` once the pair's state is no longer known.
pub fn record_change(ctx: &Ctx, pair: &mut PairLog, action: Action, outcome: Outcome) -> bool {
    let what = format!(
        "{} of {} in room {} (was {:?})",
        action.name(),
        pair.user,
        pair.room,
        pair.current()
    );
    match outcome {
        Outcome::Acked { by_retry, .. } => {
            pair.acked.push(AckedChange { action, by_retry });
            true
        }
        Outcome::Rejected(r) => {
            ctx.problem(format!("{what} was refused: {}", r.describe()));
            false
        }
        Outcome::InDoubt(why) => {
            pair.in_doubt = Some(action.result());
            ctx.unanswered(&what, &why);
            false
        }
        Outcome::NotSent(why) => {
            ctx.unanswered(&what, &why);
            false
        }
    }
}

/// Sends one membership change, twice when `repeat` says so.
pub async fn change(
    ctx: &Ctx,
    conns: &mut (Conn, Conn),
    pair: &mut PairLog,
    target: &Account,
    action: Action,
    repeat: Option<Duration>,
    on_repeat_ack: impl FnOnce(),
) -> bool {
    let req = action.request(&ctx.world.rooms[pair.room], target, &ctx.world.owner);
    let outcome = match repeat {
        Some(gap) => {
            let both = retry::twice(&mut conns.0, &mut conns.1, &req, gap, on_repeat_ack).await;
            if let Some(c) = both.contradiction() {
                ctx.problem(format!("{} of {} sent twice: {c}", action.name(), target.user_id));
            }
            both.outcome()
        }
        None => retry::once(&mut conns.0, &req).await,
    };
    record_change(ctx, pair, action, outcome)
}

fn pick_action(rng: &mut StdRng, from: M, public_room: bool) -> Option<Action> {
    let options: Vec<Action> = Action::ALL
        .into_iter()
        .filter(|a| a.applies(from, public_room))
        .collect();
    // Bans are rarer: a banned member only comes back through an unban.
    options
        .choose_weighted(rng, |a| if *a == Action::Ban { 1 } else { 3 })
        .ok()
        .copied()
}

/// Changes one member's memberships at random until the kill.
pub async fn drive_member(ctx: Arc<Ctx>, member: Member, mut rng: StdRng) -> Vec<PairLog> {
    let mut pairs: Vec<PairLog> = member
        .states
        .iter()
        .enumerate()
        .map(|(room, &m)| PairLog::new(room, &member.account.user_id, m))
        .collect();
    let mut conns = (ctx.conn(), ctx.conn());
    while !ctx.process.is_killed() {
        let _turn = ctx.gate.read().await;
        if ctx.process.is_killed() {
            break;
        }
        let room = rng.gen_range(0..ctx.world.rooms.len());
        let Some(action) = pick_action(&mut rng, pairs[room].current(), ctx.world.rooms[room].public) else {
            continue;
        };
        let repeat = (action.repeatable() && rng.gen_bool(ctx.repeat_chance)).then(|| repeat_gap(&mut rng));
        if !change(
            &ctx,
            &mut conns,
            &mut pairs[room],
            &member.account,
            action,
            repeat,
            || {},
        )
        .await
        {
            break;
        }
    }
    pairs
}

/// Sends one message (twice when `repeat` says so); `None` in the log's
/// `event_id` unless acknowledged. The bool is `false` when sending should stop.
pub async fn message(
    ctx: &Ctx,
    conns: &mut (Conn, Conn),
    sender: &Account,
    room: usize,
    body: String,
    repeat: Option<Duration>,
    on_repeat_ack: impl FnOnce(),
) -> (MsgLog, bool) {
    let path = format!(
        "{V3}/rooms/{}/send/m.room.message/{}",
        enc(&ctx.world.rooms[room].id),
        enc(&body)
    );
    let req = Req::put(path, &sender.token, json!({ "msgtype": "m.text", "body": body }));
    let outcome = match repeat {
        Some(gap) => {
            let both = retry::twice(&mut conns.0, &mut conns.1, &req, gap, on_repeat_ack).await;
            if let Some(c) = both.contradiction() {
                ctx.problem(format!("message {body} sent twice: {c}"));
            }
            if let (Ok(a), Ok(b)) = (&both.first, &both.repeat) {
                let (x, y) = (a.str_field("event_id"), b.str_field("event_id"));
                if a.ok() && b.ok() && x != y {
                    ctx.problem(format!("message {body} sent twice got two event ids, {x:?} and {y:?}"));
                }
            }
            both.outcome()
        }
        None => retry::once(&mut conns.0, &req).await,
    };
    let mut log = MsgLog {
        room,
        body,
        event_id: None,
        by_retry: false,
        in_doubt: false,
    };
    let go_on = match outcome {
        Outcome::Acked { resp, by_retry } => {
            log.event_id = resp.str_field("event_id");
            log.by_retry = by_retry;
            if log.event_id.is_none() {
                ctx.problem(format!(
                    "message {} was acknowledged without an event_id: {}",
                    log.body, resp.body
                ));
            }
            true
        }
        Outcome::Rejected(r) => {
            ctx.problem(format!("message {} was refused: {}", log.body, r.describe()));
            false
        }
        Outcome::InDoubt(why) => {
            log.in_doubt = true;
            ctx.unanswered(&format!("message {}", log.body), &why);
            false
        }
        Outcome::NotSent(why) => {
            ctx.unanswered(&format!("message {}", log.body), &why);
            false
        }
    };
    (log, go_on)
}

/// Sends messages to random rooms until the kill; bodies are `c<cycle>.s<sender>.<n>`.
pub async fn drive_sender(ctx: Arc<Ctx>, sender: usize, cycle: u32, mut rng: StdRng) -> Vec<MsgLog> {
    let account = ctx.world.senders[sender].clone();
    let mut conns = (ctx.conn(), ctx.conn());
    let mut logs = Vec::new();
    for n in 0.. {
        let _turn = ctx.gate.read().await;
        if ctx.process.is_killed() {
            break;
        }
        let room = rng.gen_range(0..ctx.world.rooms.len());
        let repeat = rng.gen_bool(ctx.repeat_chance).then(|| repeat_gap(&mut rng));
        let body = format!("c{cycle}.s{sender}.{n}");
        let (log, go_on) = message(&ctx, &mut conns, &account, room, body, repeat, || {}).await;
        logs.push(log);
        if !go_on {
            break;
        }
    }
    logs
}

/// Registers accounts until the kill; returns the acknowledged ones.
pub async fn drive_registrar(ctx: Arc<Ctx>, cycle: u32) -> Vec<Account> {
    let mut conn = ctx.conn();
    let mut made = Vec::new();
    for n in 0.. {
        let turn = ctx.gate.read().await;
        if ctx.process.is_killed() {
            break;
        }
        let name = format!("reg{cycle}x{n}");
        let session = match register_start(&mut conn, &name).await {
            Ok(s) => s,
            Err(answer) => {
                if !ctx.process.is_killed() {
                    ctx.problem(format!(
                        "register {name}: expected a 401 with a session, got {answer:?}"
                    ));
                }
                break;
            }
        };
        match retry::once(&mut conn, &register_finish(&name, &session)).await {
            Outcome::Acked { resp, .. } => match account_of(&resp) {
                Some(account) => made.push(account),
                None => ctx.problem(format!("register {name}: no user_id/access_token in {}", resp.body)),
            },
            Outcome::Rejected(r) => {
                ctx.problem(format!("register {name} was refused: {}", r.describe()));
                break;
            }
            Outcome::InDoubt(why) | Outcome::NotSent(why) => {
                ctx.unanswered(&format!("register {name}"), &why);
                break;
            }
        }
        drop(turn);
        // Registrations are a side dish; the membership and message load matters more.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    made
}
