//! Membership benchmark: drives a realistic mix of Matrix membership
//! operations over the Client-Server v3 HTTP API against a homeserver and
//! reports, in one run, throughput and latency against the machine's floor
//! measured alongside, server CPU per operation, peak RSS, bytes on disk
//! against the logical data, join cost vs room size and read cost vs
//! history length; `--minutes N` soaks the mix instead.
//!
//! ```sh
//! cargo bench --bench membership                       # starts our server itself
//! cargo bench --bench membership -- --minutes 10       # soak: the mix for 10 minutes
//! cargo bench --bench membership -- --url http://127.0.0.1:8009 --server-pid PID \
//!     --large-room-members 1000 --history-events 1000  # any homeserver, e.g. Synapse
//! ```
//!
//! Loopback only; bounded in time (`--duration`, 30 s per request) and count (`--max-ops`).

#[path = "membership/args.rs"]
mod args;
#[path = "membership/client.rs"]
mod client;
#[path = "membership/disk.rs"]
mod disk;
#[path = "membership/floor.rs"]
mod floor;
#[path = "membership/history.rs"]
mod history;
#[path = "membership/large_room.rs"]
mod large_room;
#[path = "membership/ledger.rs"]
mod ledger;
#[path = "membership/logical.rs"]
mod logical;
#[path = "membership/memory.rs"]
mod memory;
#[path = "membership/mix.rs"]
mod mix;
#[path = "membership/progress.rs"]
mod progress;
#[path = "membership/server.rs"]
mod server;
#[path = "membership/setup.rs"]
mod setup;
#[path = "membership/soak.rs"]
mod soak;
#[path = "membership/stats.rs"]
mod stats;
#[path = "membership/summary.rs"]
mod summary;

use args::Args;
use client::{Account, Target};
use ledger::Ledger;
use memory::MemoryLog;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use summary::Figures;

/// The server under test, as far as this process can see it.
struct Subject {
    url: String,
    pid: Option<u32>,
    data_dir: Option<PathBuf>,
    log: Option<String>,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(floor::FLAG) {
        let served = match (argv.get(2), argv.get(3)) {
            (Some(port), Some(data)) => floor::serve(port, std::path::Path::new(data)),
            _ => Err(format!("usage: {} PORT DATA_DIR", floor::FLAG)),
        };
        if let Err(e) = served {
            eprintln!("floor server: {e}");
            std::process::exit(1);
        }
        return;
    }
    let args = match args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Our server, if we start it, lives until the end of main and is killed on
    // drop, also when a phase fails. Starting it first puts the set-up in its peak RSS.
    let own = match &args.url {
        Some(_) => None,
        None => match server::OwnServer::start() {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        },
    };
    let subject = match &own {
        Some(own) => Subject {
            url: own.url.clone(),
            pid: Some(own.pid()),
            data_dir: Some(own.data_dir()),
            log: Some(own.log.display().to_string()),
        },
        None => Subject {
            url: args.url.clone().expect("--url"),
            pid: args.server_pid,
            data_dir: args.data_dir.clone(),
            log: None,
        },
    };
    let result = runtime.block_on(run(&args, &subject));
    drop(own);
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A short per-run tag so that repeated runs against one server never collide.
fn run_tag() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let mut n = (millis as u64) ^ ((std::process::id() as u64) << 40);
    let mut s = String::new();
    while n > 0 {
        s.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize] as char);
        n /= 36;
    }
    s
}

/// The commit this benchmark was built from, if git knows.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
            format!("{rev}{}", if dirty { " (with uncommitted changes)" } else { "" })
        }
        None => "unknown".into(),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
}

async fn run(args: &Args, subject: &Subject) -> Result<(), String> {
    let ledger = Arc::new(Ledger::default());
    let target = Target::parse(&subject.url)?.counted(ledger.clone());
    if !target.is_loopback() {
        return Err(format!(
            "{}: the benchmark only drives servers on the loopback interface",
            subject.url
        ));
    }
    let tag = run_tag();
    println!("== matrix-membership benchmark ==");
    match &subject.log {
        Some(log) => println!(
            "server:        our own, started at {} (--no-rate-limits, RUST_LOG=warn, log {log})",
            subject.url
        ),
        None => println!("server:        external at {}", subject.url),
    }
    println!("commit:        {}", commit());
    println!(
        "machine:       {} cores (nproc), load generator on the same machine; {}",
        cores(),
        server::machine_load()
    );
    println!(
        "mix:           {} connections, {} users, {} public + {} private rooms",
        args.connections, args.users, args.public_rooms, args.private_rooms
    );
    println!("run tag:       {tag}");
    if args.smoke {
        println!("mode:          smoke run (no --bench flag, as under `cargo test`); `cargo bench` runs the full one");
    }

    let run_start = Instant::now();
    let mut memory = MemoryLog::new(subject.pid);
    let setup_start = Instant::now();
    let plan = Arc::new(setup::setup(args, &target, &tag).await?);
    println!(
        "setup:         {} owners + {} users registered, {} rooms created in {:.1} s{}",
        plan.owners.len(),
        plan.members.len(),
        plan.public.len() + plan.private.len(),
        setup_start.elapsed().as_secs_f64(),
        if client::NEED_PASSWORD.load(Ordering::Relaxed) {
            " (the server requires a password at registration)"
        } else {
            " (registered without passwords)"
        }
    );

    memory.mark("set-up");
    let mut found = Findings {
        figures: Figures {
            connections: args.connections,
            soak: args.minutes.map(|m| (m, args.soak_interval)),
            compare_ops: args.compare_ops,
            ..Figures::default()
        },
        rooms: plan.rooms_with_readers(),
        memory,
    };
    match args.minutes {
        Some(minutes) => soak(args, subject, &target, plan, minutes, &mut found.figures).await?,
        None => full(args, subject, &target, plan, &tag, &mut found).await?,
    }
    let Findings {
        mut figures,
        rooms,
        mut memory,
    } = found;
    memory.mark(JUDGED_PHASE);

    println!("\n-- data on disk (after the run)");
    let events = logical::read_back(&target, rooms).await?;
    memory.mark("the read-back");
    figures.disk_ratio = disk::report(subject.data_dir.as_deref(), &events, &ledger);

    println!("\n-- server memory");
    memory.report();
    // The read-back pages 1,000 events at a time over 8 connections, a load
    // no target describes: the judged peak is the one before it.
    figures.hwm_kib = memory.hwm_after(JUDGED_PHASE);
    if let Some(hwm) = figures.hwm_kib {
        println!(
            "peak RSS (VmHWM) from the server's start, set-up included, to the end of {JUDGED_PHASE}: {:.1} MiB (judged below)",
            hwm as f64 / 1024.0
        );
    }
    summary::print(&figures);
    println!(
        "\nthe run took {:.0} s; machine load at the end: {}",
        run_start.elapsed().as_secs_f64(),
        server::machine_load()
    );
    Ok(())
}

/// The phase whose VmHWM the peak-RSS target judges: everything but the read-back.
const JUDGED_PHASE: &str = "the measured phases";

fn shape(args: &Args, duration: f64) -> mix::Shape {
    mix::Shape {
        connections: args.connections,
        warmup: args.warmup,
        duration,
        max_ops: args.max_ops,
    }
}

/// What the phases leave for the read-back and the summary.
struct Findings {
    figures: Figures,
    /// Every room the run created, with an account that has been in it since its creation.
    rooms: Vec<(String, Account)>,
    memory: MemoryLog,
}

/// The floor, our mix, join cost vs room size and read cost vs history length.
async fn full(
    args: &Args,
    subject: &Subject,
    target: &Target,
    plan: Arc<setup::Plan>,
    tag: &str,
    found: &mut Findings,
) -> Result<(), String> {
    let Findings { figures, rooms, memory } = found;
    let floor = if args.floor {
        Some(floor_run(args).await?)
    } else {
        println!("\n-- floor: skipped (--no-floor)");
        None
    };

    println!(
        "\n-- mixed membership run: {} connections, {} s (+{} s warm-up)",
        args.connections, args.duration, args.warmup
    );
    let live = Arc::new(AtomicU64::new(0));
    let ours = mix::run(shape(args, args.duration), target, plan.clone(), subject.pid, live).await?;
    ours.print("server");
    memory.mark("the mixed run");
    figures.ops_per_sec = Some(ours.ops_per_sec());
    figures.p99_us = ours.quantile_us(0.99);
    figures.cpu_us_per_op = ours.server_cpu_us_per_op();
    if let Some(floor) = &floor {
        println!(
            "ours / floor:   {:.0} / {:.0} ops/s = {:.2}×; p99 {} vs the floor's {}",
            ours.ops_per_sec(),
            floor.ops_per_sec(),
            ours.ops_per_sec() / floor.ops_per_sec(),
            figures.p99_us.map_or("n/a".into(), stats::ms),
            floor.quantile_us(0.99).map_or("n/a".into(), stats::ms)
        );
        figures.floor_ops_per_sec = Some(floor.ops_per_sec());
    }

    if args.large_room_members > 0 {
        let cost = large_room::run(args, target, tag, &plan.owners[0], memory).await?;
        figures.join = Some((cost.ratio, cost.members));
        rooms.extend(cost.rooms);
    } else {
        println!("\n-- join latency vs room size: skipped (--large-room-members 0)");
    }

    if args.history_events > 0 {
        let cost = history::run(args, target, tag, memory).await?;
        rooms.extend(cost.rooms.iter().cloned());
        figures.reads = Some(cost);
    } else {
        println!("\n-- read latency vs history length: skipped (--history-events 0)");
    }
    Ok(())
}

/// The floor server driven by the same mix.
async fn floor_run(args: &Args) -> Result<mix::Outcome, String> {
    println!(
        "\n-- floor: hyper 1 + JSON parse + one sled insert + flush() on the blocking pool, same mix, {} connections, {} s (+{} s warm-up)",
        args.connections, args.duration, args.warmup
    );
    let floor = floor::FloorServer::start()?;
    let target = Target::parse(&floor.process.url)?;
    let plan = Arc::new(floor::made_up_plan(args.users, args.public_rooms, args.private_rooms));
    let live = Arc::new(AtomicU64::new(0));
    let outcome = mix::run(
        shape(args, args.duration),
        &target,
        plan,
        Some(floor.process.pid()),
        live,
    )
    .await?;
    outcome.print("floor server");
    if outcome.ok == 0 {
        return Err(format!(
            "the floor server answered nothing; its log {}",
            floor.process.log.display()
        ));
    }
    Ok(outcome)
}

/// The mix for `minutes`, reported every `--soak-interval`.
async fn soak(
    args: &Args,
    subject: &Subject,
    target: &Target,
    plan: Arc<setup::Plan>,
    minutes: u32,
    figures: &mut Figures,
) -> Result<(), String> {
    let interval = Duration::from_secs_f64(args.soak_interval);
    println!(
        "\n-- soak: mixed membership run, {} connections, {minutes} × {} s (+{} s warm-up)",
        args.connections, args.soak_interval, args.warmup
    );
    let live = Arc::new(AtomicU64::new(0));
    let measure_start = Instant::now() + Duration::from_secs_f64(args.warmup);
    let monitor = soak::monitor(
        subject.pid,
        subject.data_dir.clone(),
        live.clone(),
        measure_start,
        interval,
        minutes,
    );
    let duration = args.soak_interval * minutes as f64;
    let outcome = mix::run(shape(args, duration), target, plan, subject.pid, live).await?;
    let samples = monitor.await.map_err(|e| format!("soak monitor: {e}"))?;
    println!("whole soak:");
    outcome.print("server");
    figures.ops_per_sec = Some(outcome.ops_per_sec());
    figures.p99_us = outcome.quantile_us(0.99);
    figures.cpu_us_per_op = outcome.server_cpu_us_per_op();
    figures.flatness = soak::flatness(&samples);
    match &figures.flatness {
        Some(f) => println!(
            "RSS flat: interval {} mean VmRSS {:.1} MiB vs interval 2 {:.1} MiB ({:+.1}%): {}",
            f.intervals,
            f.last_kib as f64 / 1024.0,
            f.second_kib as f64 / 1024.0,
            f.change() * 100.0,
            if f.flat() { "flat (within 10%)" } else { "NOT flat" }
        ),
        None => println!("RSS flat: not judged (needs 3 intervals or more, and the server's pid)"),
    }
    Ok(())
}
