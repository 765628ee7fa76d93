//! Crash torture: drives concurrent membership changes, messages,
//! registrations and long-polling syncs against the release server binary,
//! SIGKILLs it at random moments (and the instant a repeated request is
//! acknowledged), restarts it on the same data folder, and checks through the
//! client API that nothing acknowledged was lost, that nothing a sync showed
//! disappeared or moved, and that a sync resumed from its token misses nothing.
//!
//! ```sh
//! cargo build --release --bin matrix-membership --example torture
//! target/release/examples/torture --cycles 50 --seed 7 --flush-delay-ms 10
//! ```
//!
//! It ends with one summary line (see README, "Crash torture") and exits 1
//! on any violation, 2 when it could not run.

#[path = "torture/check.rs"]
mod check;
#[path = "torture/cycle.rs"]
mod cycle;
#[path = "torture/history.rs"]
mod history;
#[path = "torture/http.rs"]
mod http;
#[path = "torture/load.rs"]
mod load;
#[path = "torture/model.rs"]
mod model;
#[path = "torture/observer.rs"]
mod observer;
#[path = "torture/probe.rs"]
mod probe;
#[path = "torture/retry.rs"]
mod retry;
#[path = "torture/server.rs"]
mod server;
#[path = "torture/setup.rs"]
mod setup;
#[path = "torture/tally.rs"]
mod tally;

use http::Conn;
use rand::rngs::StdRng;
use rand::SeedableRng;
use server::{Installation, Process};
use setup::State;
use std::path::PathBuf;
use std::sync::Arc;
use tally::Tally;

const USAGE: &str = "\
usage: torture [--cycles N] [--seed S] [--flush-delay-ms D] [--server-bin PATH] [--fault F]
               [--database-url URL]

  --cycles N          kill/restart cycles (default 50: about 95 s on the busy 2-core CI machine)
  --seed S            seed of every random choice (default: from the clock; printed at the start)
  --flush-delay-ms D  the server's --test-flush-delay-ms: a pause before each group-commit
                      flush, widening the window between visible and durable (default 10)
  --server-bin PATH   the server binary (default: matrix-membership next to this example's
                      folder, i.e. target/release/matrix-membership)
  --fault F           damage the data folder on purpose, to show that the checks fire:
                      `rollback` restores, before the second restart, the database as the
                      first kill left it (everything acknowledged in cycle 2 is lost);
                      `no-restart` puts a file where the database is before the first restart
                      (both damage the sled data folder, so neither goes with --database-url)
  --database-url URL  run every start of the server on this PostgreSQL database (empty, or
                      left by an earlier start of this run) instead of sled
";

/// How often a repeatable change or a message of the load is sent twice.
const REPEAT_CHANCE: f64 = 0.25;

struct Args {
    cycles: u32,
    seed: u64,
    flush_delay_ms: u64,
    server_bin: PathBuf,
    fault: Option<Fault>,
    database_url: Option<String>,
}

/// Damage done on purpose (`--fault`), so that the checks are seen to fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Rollback,
    NoRestart,
}

fn parse_args() -> Result<Args, String> {
    let default_bin = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("matrix-membership")))
        .unwrap_or_else(|| PathBuf::from("target/release/matrix-membership"));
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut args = Args {
        cycles: 50,
        seed: clock,
        flush_delay_ms: 10,
        server_bin: default_bin,
        fault: None,
        database_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        if name == "--help" || name == "-h" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let value = inline
            .or_else(|| it.next())
            .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{name}: {v:?} is not a whole number"))
        };
        match name.as_str() {
            "--cycles" => {
                args.cycles = u32::try_from(number(&value)?)
                    .ok()
                    .filter(|c| (1..=100_000).contains(c))
                    .ok_or("--cycles must be 1..=100000")?
            }
            "--seed" => args.seed = number(&value)?,
            "--flush-delay-ms" => {
                args.flush_delay_ms = Some(number(&value)?)
                    .filter(|d| *d <= 10_000)
                    .ok_or("--flush-delay-ms must be at most 10000")?
            }
            "--server-bin" => args.server_bin = PathBuf::from(value),
            "--database-url" => args.database_url = Some(value),
            "--fault" => {
                args.fault = Some(match value.as_str() {
                    "rollback" => Fault::Rollback,
                    "no-restart" => Fault::NoRestart,
                    other => return Err(format!("--fault: {other:?} is neither rollback nor no-restart")),
                })
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if args.fault.is_some() && args.database_url.is_some() {
        return Err("--fault damages the sled data folder; it does not go with --database-url".into());
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // Two workers: the machine has two cores and the server needs them too.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&args)) {
        Ok(tally) => {
            println!("{}", tally.summary());
            std::process::exit(if tally.violations() == 0 { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("torture could not run: {e}");
            std::process::exit(2);
        }
    }
}

/// Set-up, the cycles, and the graceful stop; `Err` only when it could not begin.
async fn run(args: &Args) -> Result<Tally, String> {
    let mut install = Installation::new(args.server_bin.clone(), args.flush_delay_ms, args.database_url.clone())?;
    eprintln!(
        "torture: seed={} cycles={} flush-delay-ms={} server={} data={}{}{}",
        args.seed,
        args.cycles,
        args.flush_delay_ms,
        args.server_bin.display(),
        install.data_dir().display(),
        args.database_url
            .as_ref()
            .map_or(String::new(), |u| format!(" database={u}")),
        args.fault.map_or(String::new(), |f| format!(" fault={f:?}"))
    );
    let mut process = Arc::new(install.start().await?);
    let mut state = setup::set_up(&process).await?;
    let mut tally = Tally::default();
    let mut rng = StdRng::seed_from_u64(args.seed);
    for cycle in 1..=args.cycles {
        tally.new_cycle();
        let before = tally.snapshot();
        let fault = args.fault;
        let outcome = run_cycle(
            &mut install,
            &mut process,
            &mut state,
            cycle,
            fault,
            &mut rng,
            &mut tally,
        )
        .await;
        tally.cycles += 1;
        match outcome {
            Ok(line) => eprintln!(
                "cycle {cycle}/{}: {line}; {}",
                args.cycles,
                tally::delta(&before, &tally.snapshot())
            ),
            Err(e) => {
                eprintln!("cycle {cycle}/{}: stopped: {e}", args.cycles);
                break;
            }
        }
    }
    // After a failed restart the last process is the killed one.
    if !process.is_killed() {
        if let Err(e) = process.terminate() {
            tally.problem(e);
        }
    }
    Ok(tally)
}

/// One cycle: load until the kill, restart, check. `Err` ends the run.
async fn run_cycle(
    install: &mut Installation,
    process: &mut Arc<Process>,
    state: &mut State,
    cycle: u32,
    fault: Option<Fault>,
    rng: &mut StdRng,
    tally: &mut Tally,
) -> Result<String, String> {
    let mut conn = Conn::new(&process.authority);
    let start = observer::position(&mut conn, &state.world.checker).await?;
    let actors = cycle::Actors {
        world: &state.world,
        members: &state.members,
        observers: &mut state.observers,
        probes: &state.probes,
        watcher: &mut state.watcher,
    };
    let log = cycle::load(actors, process.clone(), cycle, REPEAT_CHANCE, rng).await;
    let shown_max = state.all_observers().map(|o| o.shown_max()).max().unwrap_or(start);
    match (fault, cycle) {
        (Some(Fault::Rollback), 1) => install.snapshot()?,
        (Some(Fault::Rollback), 2) => install.roll_back()?,
        (Some(Fault::NoRestart), 1) => install.break_database()?,
        _ => {}
    }
    match install.start().await {
        Ok(p) => *process = Arc::new(p),
        Err(e) => {
            tally.restarts_failed += 1;
            return Err(format!("the server did not start again: {e}"));
        }
    }
    for p in &log.problems {
        tally.problem(p.clone());
    }
    let ended = check::Ended {
        cycle,
        start,
        shown_max,
        log: &log,
    };
    check::after_restart(process, state, ended, rng, tally).await?;
    let probe = match log.kill {
        cycle::Kill::Probe(..) if log.probe_fired => ", at the probe's instant",
        cycle::Kill::Probe(..) => ", the probe did not fire",
        cycle::Kill::Timer(_) => "",
    };
    Ok(format!(
        "killed by {} after {} ms{probe}",
        log.kill.describe(),
        log.killed_after.as_millis()
    ))
}
