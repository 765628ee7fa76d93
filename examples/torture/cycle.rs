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
use tokio::task::JoinHandle;

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

/// The tasks of one load phase.
struct Running {
    members: Vec<JoinHandle<Vec<PairLog>>>,
    senders: Vec<JoinHandle<Vec<MsgLog>>>,
    registrar: JoinHandle<Vec<Account>>,
    observers: Vec<JoinHandle<Observer>>,
}

/// Runs the load until the kill and waits for every task to stop.
pub async fn load(actors: Actors<'_>, process: Arc<Process>, cycle: u32, repeat_chance: f64, rng: &mut StdRng) -> Log {
    let ctx = Arc::new(Ctx::new(actors.world.clone(), process.clone(), repeat_chance));
    let kill = Kill::choose(cycle, rng);
    let started = Instant::now();
    let running = spawn(&ctx, actors.members, actors.observers, cycle, rng);
    actors.watcher.begin_cycle();
    let probe = match kill {
        Kill::Probe(kind, after) => Some(tokio::spawn(probe::run(
            ctx.clone(),
            kind,
            actors.probes.clone(),
            actors.watcher.clone(),
            cycle,
            after,
            StdRng::seed_from_u64(rng.gen()),
        ))),
        Kill::Timer(_) => None,
    };
    let report = kill_when_due(&ctx, kill, probe).await;
    let mut log = Log {
        kill,
        probe_fired: report.as_ref().is_some_and(|r| r.fired),
        killed_after: started.elapsed(),
        pairs: Vec::new(),
        messages: Vec::new(),
        registered: Vec::new(),
        problems: Vec::new(),
    };
    collect(running, &mut log, actors.observers).await;
    if let Some(report) = report {
        log.pairs.extend(report.pairs);
        log.messages.extend(report.messages);
        *actors.watcher = report.watcher;
    }
    process.reap();
    log.problems = ctx.take_problems();
    log
}

/// Starts every writer and long-polling observer.
fn spawn(ctx: &Arc<Ctx>, members: &[Member], observers: &mut Vec<Observer>, cycle: u32, rng: &mut StdRng) -> Running {
    let mut seed = || StdRng::seed_from_u64(rng.gen());
    Running {
        members: members
            .iter()
            .map(|m| tokio::spawn(load::drive_member(ctx.clone(), m.clone(), seed())))
            .collect(),
        senders: (0..ctx.world.senders.len())
            .map(|i| tokio::spawn(load::drive_sender(ctx.clone(), i, cycle, seed())))
            .collect(),
        registrar: tokio::spawn(load::drive_registrar(ctx.clone(), cycle)),
        observers: std::mem::take(observers)
            .into_iter()
            .map(|mut o| {
                o.begin_cycle();
                tokio::spawn(observer::watch(ctx.clone(), o))
            })
            .collect(),
    }
}

/// Waits for the probe's kill, or kills when the timer says; returns the probe's report.
async fn kill_when_due(ctx: &Ctx, kill: Kill, probe: Option<JoinHandle<probe::Report>>) -> Option<probe::Report> {
    let wait = match kill {
        Kill::Timer(at) => at,
        Kill::Probe(_, after) => after + PROBE_GRACE,
    };
    let report = match probe {
        Some(mut handle) => tokio::select! {
            report = &mut handle => Some(report.expect("the probe task panicked")),
            _ = tokio::time::sleep(wait) => {
                timer_kill(ctx);
                Some(handle.await.expect("the probe task panicked"))
            }
        },
        None => {
            tokio::time::sleep(wait).await;
            None
        }
    };
    // Also when a probe returns without killing (its change was refused).
    timer_kill(ctx);
    report
}

/// Waits for every task to stop and gathers what they did.
async fn collect(running: Running, log: &mut Log, observers: &mut Vec<Observer>) {
    for handle in running.members {
        log.pairs.extend(handle.await.expect("a member task panicked"));
    }
    for handle in running.senders {
        log.messages.extend(handle.await.expect("a sender task panicked"));
    }
    log.registered = running.registrar.await.expect("the registrar panicked");
    for handle in running.observers {
        observers.push(handle.await.expect("an observer panicked"));
    }
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
