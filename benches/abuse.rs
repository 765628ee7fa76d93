//! Abuse figures: what hostile clients cost our server, measured against the
//! release binary this program starts itself (twice, so each part has its own
//! peak RSS).
//!
//! 1. Parallel wrong-password logins, each on its own connection, with rate
//!    limits off, so the figure measures how password hashing is bounded:
//!    the server's peak RSS and the latency of a probe meanwhile.
//! 2. Connections that trickle a request head and never finish it
//!    (slowloris), reconnecting when dropped: the probe's latency meanwhile,
//!    and how long a new connection waits for its first answer.
//! 3. More connections than the cap, each stalled one byte short of a body
//!    at the size limit: the peak RSS that bounds what connections can hold.
//!
//! The probe is `GET /_matrix/client/versions` at a steady rate on its own
//! keep-alive connection, opened before each attack.
//!
//! ```sh
//! cargo bench --bench abuse                      # both parts, printed against their targets
//! cargo bench --bench abuse -- --logins 100      # a smaller login storm
//! ```

#[path = "abuse/attack.rs"]
mod attack;
#[path = "abuse/probe.rs"]
mod probe;
#[allow(dead_code)]
#[path = "membership/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "membership/stats.rs"]
mod stats;

use hdrhistogram::Histogram;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo bench --bench abuse [-- OPTIONS]

  --logins N          parallel wrong-password logins (default 1000; 0 skips part 1)
  --trickle N         connections trickling partial heads (default 2000; 0 skips part 2)
  --trickle-secs S    how long they trickle (default 30, three default header timeouts)
  --stalled N         connections stalled one byte short of a 64 KiB body (default 1100; 0 skips part 3)
  --probe-rate R      probe requests per second (default 20)

The server is started with --no-rate-limits; MATRIX_MEMBERSHIP_* variables in
this program's environment reach it (e.g. MATRIX_MEMBERSHIP_MAX_CONNECTIONS).
";

/// A login may wait this long; the hashing queue can be long.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);
/// A new connection during the slowloris part may wait this long for its answer.
const FRESH_TIMEOUT: Duration = Duration::from_secs(60);
const P99_TARGET: Duration = Duration::from_millis(100);
const RSS_TARGET_MIB: f64 = 256.0;

#[derive(Debug, Clone)]
struct Args {
    logins: usize,
    trickle: usize,
    trickle_secs: f64,
    stalled: usize,
    probe_rate: f64,
    smoke: bool,
}

fn parse_args() -> Result<Args, String> {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) a
    // small smoke run checks that the program works.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mut a = if smoke {
        Args {
            logins: 20,
            trickle: 50,
            trickle_secs: 2.0,
            stalled: 20,
            probe_rate: 20.0,
            smoke,
        }
    } else {
        Args {
            logins: 1000,
            trickle: 2000,
            trickle_secs: 30.0,
            stalled: 1100,
            probe_rate: 20.0,
            smoke,
        }
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: {v:?} is not a valid number"))
        }
        match flag.as_str() {
            "--bench" => {}
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--logins" => a.logins = num(&flag, value()?)?,
            "--trickle" => a.trickle = num(&flag, value()?)?,
            "--trickle-secs" => a.trickle_secs = num(&flag, value()?)?,
            "--stalled" => a.stalled = num(&flag, value()?)?,
            "--probe-rate" => a.probe_rate = num(&flag, value()?)?,
            other if !other.starts_with("--") => {} // a libtest filter cargo may pass
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let bounded = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("{what}\n{USAGE}")) };
    bounded(a.logins <= 10_000, "--logins must be at most 10000")?;
    bounded(a.trickle <= 10_000, "--trickle must be at most 10000")?;
    bounded(a.stalled <= 10_000, "--stalled must be at most 10000")?;
    bounded(
        a.trickle_secs > 0.0 && a.trickle_secs <= 600.0,
        "--trickle-secs must be in (0, 600]",
    )?;
    bounded(
        a.probe_rate > 0.0 && a.probe_rate <= 1000.0,
        "--probe-rate must be in (0, 1000]",
    )?;
    Ok(a)
}

/// Raises this program's open-file limit to the hard one (its sockets, and
/// the server it starts inherits it); fails if that is still too few.
fn raise_fd_limit(needed: u64) -> Result<u64, String> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err("getrlimit(RLIMIT_NOFILE) failed".into());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            return Err("setrlimit(RLIMIT_NOFILE) failed".into());
        }
    }
    let soft: u64 = limit.rlim_cur;
    if soft < needed {
        return Err(format!(
            "the open-file limit is {soft}, and this run needs about {needed}; lower --logins/--trickle"
        ));
    }
    Ok(soft)
}

/// One line of the summary.
struct Verdict {
    figure: String,
    target: String,
    measured: String,
    met: bool,
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    match run(&args) {
        Ok(verdicts) => print_summary(&verdicts),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn run(args: &Args) -> Result<Vec<Verdict>, String> {
    let fds = raise_fd_limit((args.logins.max(args.trickle).max(args.stalled) + 256) as u64)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    println!("== matrix-membership abuse figures ==");
    println!("commit:        {}", commit());
    println!(
        "machine:       {} cores, attackers and probe on the same machine; {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        server::machine_load()
    );
    println!("open files:    this program's limit raised to {fds}; the server inherits it and raises its own");
    let overrides: Vec<String> = std::env::vars()
        .filter(|(k, _)| k.starts_with("MATRIX_MEMBERSHIP_"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !overrides.is_empty() {
        println!("server env:    {}", overrides.join(" "));
    }
    if args.smoke {
        println!("mode:          smoke run (no --bench flag); `cargo bench --bench abuse` runs the full one");
    }
    let mut verdicts = Vec::new();
    if args.logins > 0 {
        let own = server::OwnServer::start()?;
        verdicts.extend(runtime.block_on(login_storm(args, &own))?);
    }
    if args.trickle > 0 {
        let own = server::OwnServer::start()?;
        verdicts.extend(runtime.block_on(slowloris(args, &own))?);
    }
    if args.stalled > 0 {
        let own = server::OwnServer::start()?;
        verdicts.extend(runtime.block_on(stalled_bodies(args, &own))?);
    }
    Ok(verdicts)
}

/// `git describe`-like: the commit this program was built from, if git knows.
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

fn addr_of(own: &server::OwnServer) -> String {
    own.url.trim_start_matches("http://").to_string()
}

/// Registers `alice` with a password through the two-step dummy flow.
async fn register_alice(addr: &str) -> Result<(), String> {
    let path = "/_matrix/client/v3/register";
    let mut body = json!({"username": "alice", "password": "alice-password"});
    let first = attack::one_shot(addr, &attack::post_json(path, &body), Duration::from_secs(30)).await?;
    body["auth"] = json!({"type": "m.login.dummy", "session": first.body["session"]});
    let done = attack::one_shot(addr, &attack::post_json(path, &body), Duration::from_secs(30)).await?;
    if done.status != 200 {
        return Err(format!("registering alice: {} {}", done.key(), done.body));
    }
    Ok(())
}

async fn login_storm(args: &Args, own: &server::OwnServer) -> Result<Vec<Verdict>, String> {
    let addr = addr_of(own);
    register_alice(&addr).await?;
    println!(
        "\n-- part 1: {} parallel wrong-password logins for a registered alice, each on its own connection",
        args.logins
    );
    println!(
        "server:        {} (pid {}, --no-rate-limits, log {})",
        own.url,
        own.pid(),
        own.log.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe::Probe::open(&addr).await?.run(args.probe_rate, stop.clone()));
    let request = Arc::new(attack::post_json(
        "/_matrix/client/v3/login",
        &json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "wrong",
        }),
    ));
    let started = Instant::now();
    let logins: Vec<_> = (0..args.logins)
        .map(|_| {
            let (addr, request) = (addr.clone(), request.clone());
            tokio::spawn(async move {
                let sent = Instant::now();
                let answer = attack::one_shot(&addr, &request, LOGIN_TIMEOUT).await;
                (sent.elapsed(), answer)
            })
        })
        .collect();
    let mut answers: BTreeMap<String, u64> = BTreeMap::new();
    // Logins may queue for minutes; the shared histogram stops at 60 s.
    let mut latencies = Histogram::new_with_bounds(1, LOGIN_TIMEOUT.as_micros() as u64, 3).expect("bounds");
    let mut failed_after: Vec<Duration> = Vec::new();
    for login in logins {
        let (took, answer) = login.await.map_err(|e| e.to_string())?;
        stats::record(&mut latencies, took);
        let key = match answer {
            Ok(a) => a.key(),
            Err(e) => {
                failed_after.push(took);
                format!("transport error ({e})")
            }
        };
        *answers.entry(key).or_default() += 1;
    }
    let all_answered = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let probe = probe.await.map_err(|e| e.to_string())?;
    let hwm = peak_rss_mib(own);

    println!("all answered:  in {:.1} s", all_answered.as_secs_f64());
    println!("answers:       {}", counts_line(&answers));
    let count = |prefix: &str| {
        answers
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    println!(
        "               {} × 403, {} × 429 (rate limits are off, so 429 means the server shed load)",
        count("403"),
        count("429")
    );
    println!("login latency: {}", stats::summary(&latencies));
    if let (Some(first), Some(last)) = (failed_after.iter().min(), failed_after.iter().max()) {
        println!(
            "               the transport errors came {:.1}–{:.1} s after their login was sent",
            first.as_secs_f64(),
            last.as_secs_f64()
        );
    }
    print_probe(&probe, args.probe_rate);
    println!("peak RSS:      {}", mib(hwm));
    Ok(vec![
        Verdict {
            figure: format!("peak RSS during {} parallel logins", args.logins),
            target: format!("< {RSS_TARGET_MIB:.0} MiB"),
            measured: mib(hwm),
            met: hwm.is_some_and(|h| h < RSS_TARGET_MIB),
        },
        probe_verdict(&format!("probe p99 during {} parallel logins", args.logins), &probe),
    ])
}

async fn slowloris(args: &Args, own: &server::OwnServer) -> Result<Vec<Verdict>, String> {
    let addr = addr_of(own);
    println!(
        "\n-- part 2: {} connections trickling a request head (one header line a second, never the end) for {} s",
        args.trickle, args.trickle_secs
    );
    println!(
        "server:        {} (pid {}, --no-rate-limits, log {})",
        own.url,
        own.pid(),
        own.log.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe::Probe::open(&addr).await?.run(args.probe_rate, stop.clone()));
    let counts = Arc::new(attack::TrickleCounts::default());
    let pid = own.pid().to_string();
    let (cpu_before, log_before) = (server::cpu_time(&pid), log_len(own));
    let started = Instant::now();
    let tricklers: Vec<_> = (0..args.trickle)
        .map(|_| tokio::spawn(attack::trickle(addr.clone(), stop.clone(), counts.clone())))
        .collect();
    let mut fresh = Vec::new();
    while started.elapsed().as_secs_f64() < args.trickle_secs {
        let addr = addr.clone();
        fresh.push(tokio::spawn(async move {
            attack::fresh_versions(&addr, FRESH_TIMEOUT).await
        }));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let window = started.elapsed();
    let cpu = server::cpu_time(&pid)
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let logged = log_len(own).saturating_sub(log_before);
    stop.store(true, Ordering::Relaxed);
    let probe = probe.await.map_err(|e| e.to_string())?;
    for t in &tricklers {
        t.abort();
    }
    let (fresh_latencies, fresh_failed) = collect_fresh(fresh).await;
    let hwm = peak_rss_mib(own);

    let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "trickling:     {} connections opened in all, {} dropped by the server ({} of them with a 408), {} connects failed",
        n(&counts.opened),
        n(&counts.closed_by_server),
        n(&counts.answered_408),
        n(&counts.connect_failed)
    );
    print_probe(&probe, args.probe_rate);
    println!(
        "new clients:   one fresh connection a second: {} answered, {} not within {FRESH_TIMEOUT:?}; time to answer {}",
        fresh_latencies.len(),
        fresh_failed,
        stats::summary(&fresh_latencies)
    );
    println!(
        "server:        CPU {} in {:.1} s, {} bytes of log written, peak RSS {}",
        cpu.map(|c| format!("{:.2} s", c.as_secs_f64()))
            .unwrap_or_else(|| "n/a".into()),
        window.as_secs_f64(),
        logged,
        mib(hwm)
    );
    Ok(vec![probe_verdict(
        &format!("probe p99 while {} connections trickle heads", args.trickle),
        &probe,
    )])
}

/// The body size limit the server was started with (its default unless overridden).
fn body_limit() -> usize {
    std::env::var("MATRIX_MEMBERSHIP_BODY_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64 * 1024)
}

async fn stalled_bodies(args: &Args, own: &server::OwnServer) -> Result<Vec<Verdict>, String> {
    let addr = addr_of(own);
    let limit = body_limit();
    println!(
        "\n-- part 3: {} connections, each stalled one byte short of a {limit}-byte body, held for 10 s",
        args.stalled
    );
    println!(
        "server:        {} (pid {}, --no-rate-limits, log {})",
        own.url,
        own.pid(),
        own.log.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe::Probe::open(&addr).await?.run(args.probe_rate, stop.clone()));
    let stallers: Vec<_> = (0..args.stalled)
        .map(|_| tokio::spawn(attack::stall_body(addr.clone(), limit, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let hwm = peak_rss_mib(own);
    stop.store(true, Ordering::Relaxed);
    let probe = probe.await.map_err(|e| e.to_string())?;
    let mut sent = 0;
    for s in stallers {
        sent += u64::from(s.await.unwrap_or(false));
    }
    println!(
        "stalled:       {sent} of {} sent all but the last byte (the rest wait in the backlog with their bytes in kernel buffers)",
        args.stalled
    );
    print_probe(&probe, args.probe_rate);
    println!("peak RSS:      {}", mib(hwm));
    Ok(vec![
        Verdict {
            figure: format!("peak RSS with {} stalled bodies", args.stalled),
            target: format!("< {RSS_TARGET_MIB:.0} MiB"),
            measured: mib(hwm),
            met: hwm.is_some_and(|h| h < RSS_TARGET_MIB),
        },
        probe_verdict(&format!("probe p99 with {} stalled bodies", args.stalled), &probe),
    ])
}

async fn collect_fresh(fresh: Vec<tokio::task::JoinHandle<Result<Duration, String>>>) -> (Histogram<u64>, u64) {
    let mut latencies = stats::histogram();
    let mut failed = 0;
    for t in fresh {
        match t.await {
            Ok(Ok(took)) => stats::record(&mut latencies, took),
            _ => failed += 1,
        }
    }
    (latencies, failed)
}

fn log_len(own: &server::OwnServer) -> u64 {
    std::fs::metadata(&own.log).map(|m| m.len()).unwrap_or(0)
}

fn peak_rss_mib(own: &server::OwnServer) -> Option<f64> {
    server::memory_kib(own.pid()).map(|(hwm, _)| hwm as f64 / 1024.0)
}

fn mib(v: Option<f64>) -> String {
    v.map(|m| format!("{m:.1} MiB")).unwrap_or_else(|| "n/a".into())
}

fn counts_line(answers: &BTreeMap<String, u64>) -> String {
    answers
        .iter()
        .map(|(k, n)| format!("{n} × {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_probe(p: &probe::ProbeResult, rate: f64) {
    println!(
        "probe:         GET /versions at {rate}/s on its own keep-alive connection: {} samples, {} failed, {} reconnects",
        p.latencies.len(),
        p.failures,
        p.reconnects
    );
    println!("               {}", stats::summary(&p.latencies));
}

fn probe_verdict(figure: &str, p: &probe::ProbeResult) -> Verdict {
    let p99 = Duration::from_micros(p.latencies.value_at_quantile(0.99));
    Verdict {
        figure: figure.to_string(),
        target: format!("< {} ms", P99_TARGET.as_millis()),
        measured: stats::ms(p99.as_micros() as u64),
        met: !p.latencies.is_empty() && p99 < P99_TARGET,
    }
}

fn print_summary(verdicts: &[Verdict]) {
    println!("\n== summary ==");
    println!("{:<52} {:>10} {:>14}   result", "figure", "target", "measured");
    for v in verdicts {
        println!(
            "{:<52} {:>10} {:>14}   {}",
            v.figure,
            v.target,
            v.measured,
            if v.met { "MET" } else { "NOT MET" }
        );
    }
}
