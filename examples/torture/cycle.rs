//! One load phase: every writer, observer and (sometimes) the retry probe run
//! against the server until it is SIGKILLed, by a timer at a random moment or
//! by the probe at the instant a repeat is acknowledged.

use crate::http::Account;
use crate::load::{self, Ctx};
use crate::model::{Member, MsgLog, PairLog, World};
use crate::observer::{self, Observer};
use crate::probe::{self, Probes};
use crate::server::Process;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a load phase runs before the kill (the shortest is a tenth of it).
pub const MAX_LOAD: Duration = Duration::from_millis(1500);
/// A probe that has not killed by then (its change was refused) is overtaken by the timer.
const PROBE_GRACE: Duration = Duration::from_secs(5);

/// How a cycle's kill is chosen.
#[derive(Debug, Clone, Copy)]
pub enum Kill {
    /// At a random moment of the load.
    Timer(Duration),
    /// When the probe's repeat is acknowledged; the probe starts after the delay.
    Probe(probe::Kind, Duration),
}

impl Kill {
    /// In turn: a random moment, a retry probe (the kinds in turn), the sync probe.
    pub fn choose(cycle: u32, rng: &mut StdRng) -> Kill {
        let max = MAX_LOAD.as_millis() as u64;
        let at = Duration::from_millis(rng.gen_range(max / 10..=max));
        let retries = probe::Kind::RETRIES;
        match cycle % 3 {
            1 => Kill::Timer(at),
            2 => Kill::Probe(retries[(cycle as usize / 3) % retries.len()], at),
            _ => Kill::Probe(probe::Kind::Sync, at),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Kill::Timer(_) => "timer",
            Kill::Probe(kind, _) => kind.name(),
        }
    }
}

/// Everything one load phase did, for the checks after the restart.
pub struct Log {
    pub kill: Kill,
    /// The probe killed at a repeat's acknowledgement.
    pub probe_fired: bool,
    /// From the start of the load to the kill.
    pub killed_after: Duration,
    /// Member and probe pairs, one per (room, user).
    pub pairs: Vec<PairLog>,
    pub messages: Vec<MsgLog>,
    pub registered: Vec<Account>,
    pub problems: Vec<String>,
}

/// The state the load needs; tasks take their parts and give them back.
pub struct Actors<'a> {
    pub world: &'a Arc<World>,
    pub members: &'a [Member],
    pub observers: &'a mut Vec<Observer>,
    pub probes: &'a Probes,
    /// The sync probe's client; it syncs only in the probe.
    pub watcher: &'a mut Observer,
}

/// Runs the load until the kill and waits for every task to stop.
pub async fn load(actors: Actors<'_>, process: Arc<Process>, cycle: u32, repeat_chance: f64, rng: &mut StdRng) -> Log {
    let ctx = Arc::new(Ctx::new(actors.world.clone(), process.clone(), repeat_chance));
    let kill = Kill::choose(cycle, rng);
    let mut seed = || StdRng::seed_from_u64(rng.gen());
    let members: Vec<_> = actors
        .members
        .iter()
        .map(|m| tokio::spawn(load::drive_member(ctx.clone(), m.clone(), seed())))
        .collect();
    let senders: Vec<_> = (0..ctx.world.senders.len())
        .map(|i| tokio::spawn(load::drive_sender(ctx.clone(), i, cycle, seed())))
        .collect();
    let registrar = tokio::spawn(load::drive_registrar(ctx.clone(), cycle));
    let observers: Vec<_> = std::mem::take(actors.observers)
        .into_iter()
        .map(|mut o| {
            o.begin_cycle();
            tokio::spawn(observer::watch(ctx.clone(), o))
        })
        .collect();
    actors.watcher.begin_cycle();
    let started = Instant::now();
    let probe = match kill {
        Kill::Probe(kind, after) => {
            let watcher = std::mem::replace(actors.watcher, Observer::new(actors.watcher.account.clone(), 0));
            Some(tokio::spawn(probe::run(
                ctx.clone(),
                kind,
                actors.probes.clone(),
                watcher,
                cycle,
                after,
                seed(),
            )))
        }
        Kill::Timer(_) => None,
    };
    let wait = match kill {
        Kill::Timer(at) => at,
        Kill::Probe(_, after) => after + PROBE_GRACE,
    };
    let timer = tokio::time::sleep(wait);
    tokio::pin!(timer);
    let mut probe_report = None;
    match probe {
        Some(mut handle) => tokio::select! {
            report = &mut handle => probe_report = Some(report.expect("the probe task panicked")),
            _ = &mut timer => { timer_kill(&ctx); probe_report = Some(handle.await.expect("the probe task panicked")); }
        },
        None => {
            timer.await;
            timer_kill(&ctx);
        }
    }
    // A probe whose repeat was refused returns without killing.
    timer_kill(&ctx);
    let killed_after = started.elapsed();
    let mut log = Log {
        kill,
        probe_fired: probe_report.as_ref().is_some_and(|r| r.fired),
        killed_after,
        pairs: Vec::new(),
        messages: Vec::new(),
        registered: Vec::new(),
        problems: Vec::new(),
    };
    for handle in members {
        log.pairs.extend(handle.await.expect("a member task panicked"));
    }
    for handle in senders {
        log.messages.extend(handle.await.expect("a sender task panicked"));
    }
    log.registered = registrar.await.expect("the registrar panicked");
    for handle in observers {
        actors.observers.push(handle.await.expect("an observer panicked"));
    }
    if let Some(report) = probe_report {
        log.pairs.extend(report.pairs);
        log.messages.extend(report.messages);
        *actors.watcher = report.watcher;
    }
    process.reap();
    log.problems = ctx.take_problems();
    log
}

/// Kills unless already killed; a server found dead here died on its own.
fn timer_kill(ctx: &Ctx) {
    if !ctx.process.is_killed() {
        if let Some(status) = ctx.process.exit_status() {
            ctx.problem(format!("the server died on its own during the load ({status})"));
        }
        ctx.process.kill();
    }
}

/// Messages written right after the restart, before any observer resumes:
/// the writes a real server gets from its other clients, which take any
/// position a crash gave back.
pub async fn after_restart(
    world: &Arc<World>,
    process: Arc<Process>,
    cycle: u32,
    rng: &mut StdRng,
) -> (Vec<MsgLog>, Vec<String>) {
    let ctx = Ctx::new(world.clone(), process, 0.0);
    let mut conns = (ctx.conn(), ctx.conn());
    let mut logs = Vec::new();
    for (i, sender) in world.senders.iter().enumerate() {
        for n in 0..2 {
            let room = rng.gen_range(0..world.rooms.len());
            let body = format!("c{cycle}.after.s{i}.{n}");
            logs.push(load::message(&ctx, &mut conns, sender, room, body, None, || {}).await.0);
        }
    }
    (logs, ctx.take_problems())
}
