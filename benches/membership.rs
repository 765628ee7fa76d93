//! Membership benchmark: drives a realistic mix of Matrix membership
//! operations over the Client-Server v3 HTTP API against a homeserver and
//! reports throughput, latency, errors, large-room join cost and peak RSS.
//!
//! ```sh
//! cargo bench --bench membership                       # starts our server itself
//! cargo bench --bench membership -- --url http://127.0.0.1:8009 --server-pid PID \
//!     --large-room-members 1000                        # any homeserver, e.g. Synapse
//! ```
//!
//! Loopback only; bounded in time (`--duration`, 30 s per request) and count (`--max-ops`).

#[path = "membership/client.rs"]
mod client;
#[path = "membership/server.rs"]
mod server;
#[path = "membership/stats.rs"]
mod stats;

use client::{Account, Conn, Target};
use hdrhistogram::Histogram;
use serde_json::json;
use stats::{histogram, ms, record, summary, Errors};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo bench --bench membership [-- OPTIONS]

  --url URL                  homeserver to drive (loopback only); without it our own
                             server is started on a free port with a fresh data dir
  --connections N            concurrent keep-alive connections (default 64)
  --duration SECS            measured length of the mixed run (default 10)
  --warmup SECS              unmeasured mixed run before it (default 1)
  --users N                  member accounts cycling through rooms (default 256)
  --public-rooms N           public rooms with aliases (default 4)
  --private-rooms N          invite-only rooms (default 16)
  --large-room-members N     members of the big room for the join test (default 100000; 0 skips)
  --join-samples N           sequential join+leave cycles per room in that test (default 200)
  --server-pid PID           process to read peak RSS from when --url is given
  --compare-ops OPS          Synapse's ops/s, for the >= 50x target
  --max-ops N                stop the mixed run after N operations (default 10000000)
";

#[derive(Debug, Clone)]
struct Args {
    url: Option<String>,
    connections: usize,
    duration: f64,
    warmup: f64,
    users: usize,
    public_rooms: usize,
    private_rooms: usize,
    large_room_members: usize,
    join_samples: usize,
    server_pid: Option<u32>,
    compare_ops: Option<f64>,
    max_ops: u64,
    /// Run without `--bench` (e.g. by `cargo test --benches`): a quick smoke run.
    smoke: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: None,
        connections: 64,
        duration: 10.0,
        warmup: 1.0,
        users: 256,
        public_rooms: 4,
        private_rooms: 16,
        large_room_members: 100_000,
        join_samples: 200,
        server_pid: None,
        compare_ops: None,
        max_ops: 10_000_000,
        smoke: false,
    };
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then
    // a short smoke run checks that the benchmark works (flags still apply).
    if !std::env::args().any(|a| a == "--bench") {
        a = Args {
            connections: 8,
            duration: 1.0,
            warmup: 0.0,
            users: 16,
            public_rooms: 2,
            private_rooms: 2,
            large_room_members: 100,
            join_samples: 10,
            smoke: true,
            ..a
        };
    }
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        // `cargo bench` passes `--bench` to every bench binary.
        if flag == "--bench" {
            continue;
        }
        if flag == "--help" || flag == "-h" {
            print!("{USAGE}");
            std::process::exit(0);
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: {v:?} is not a valid number"))
        }
        match name.as_str() {
            "--url" => a.url = Some(value()?),
            "--connections" => a.connections = num(&name, value()?)?,
            "--duration" => a.duration = num(&name, value()?)?,
            "--warmup" => a.warmup = num(&name, value()?)?,
            "--users" => a.users = num(&name, value()?)?,
            "--public-rooms" => a.public_rooms = num(&name, value()?)?,
            "--private-rooms" => a.private_rooms = num(&name, value()?)?,
            "--large-room-members" => a.large_room_members = num(&name, value()?)?,
            "--join-samples" => a.join_samples = num(&name, value()?)?,
            "--server-pid" => a.server_pid = Some(num(&name, value()?)?),
            "--compare-ops" => a.compare_ops = Some(num(&name, value()?)?),
            "--max-ops" => a.max_ops = num(&name, value()?)?,
            // libtest-style flags cargo may forward; a filter argument is ignored too.
            other if !other.starts_with("--") => {}
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    let bounded = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("{what}\n{USAGE}")) };
    bounded((1..=1024).contains(&a.connections), "--connections must be 1..=1024")?;
    bounded(
        a.duration > 0.0 && a.duration <= 600.0,
        "--duration must be in (0, 600]",
    )?;
    bounded((0.0..=60.0).contains(&a.warmup), "--warmup must be in [0, 60]")?;
    bounded((1..=100_000).contains(&a.users), "--users must be 1..=100000")?;
    bounded((1..=1000).contains(&a.public_rooms), "--public-rooms must be 1..=1000")?;
    bounded(
        (1..=1000).contains(&a.private_rooms),
        "--private-rooms must be 1..=1000",
    )?;
    bounded(
        a.large_room_members <= 1_000_000,
        "--large-room-members must be at most 1000000",
    )?;
    bounded(
        (1..=100_000).contains(&a.join_samples),
        "--join-samples must be 1..=100000",
    )?;
    bounded(a.max_ops >= 1, "--max-ops must be at least 1")?;
    a.users = a.users.max(a.connections);
    Ok(a)
}

fn main() {
    let args = match parse_args() {
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
    // Our server, if we start it, lives until the end of main and is killed on drop,
    // also when a phase fails.
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
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| own.as_ref().expect("own server").url.clone());
    let pid = own.as_ref().map(|s| s.pid()).or(args.server_pid);
    let result = runtime.block_on(run(&args, &url, pid, own.as_ref().map(|s| s.log.display().to_string())));
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

/// The measured figures the summary judges.
struct Figures {
    ops_per_sec: f64,
    p99_us: u64,
    join_ratio: Option<(f64, usize)>,
    hwm_kib: Option<u64>,
}

async fn run(args: &Args, url: &str, pid: Option<u32>, log: Option<String>) -> Result<(), String> {
    let target = Target::parse(url)?;
    if !target.is_loopback() {
        return Err(format!(
            "{url}: the benchmark only drives servers on the loopback interface"
        ));
    }
    let tag = run_tag();
    println!("== matrix-membership benchmark ==");
    match &log {
        Some(log) => println!("server:        our own, started at {url} (--no-rate-limits, RUST_LOG=warn, log {log})"),
        None => println!("server:        external at {url}"),
    }
    println!(
        "machine:       {} cores (nproc), load generator on the same machine",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "mix:           {} connections, {} s measured after {} s warm-up, {} users, {} public + {} private rooms",
        args.connections, args.duration, args.warmup, args.users, args.public_rooms, args.private_rooms
    );
    println!("run tag:       {tag}");
    if args.smoke {
        println!("mode:          smoke run (no --bench flag, as under `cargo test`); `cargo bench` runs the full one");
    }

    let setup_start = Instant::now();
    let plan = Arc::new(setup(args, &target, &tag).await?);
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

    let (ops_per_sec, p99_us) = mixed_run(args, &target, plan.clone(), pid).await?;

    let join_ratio = if args.large_room_members > 0 {
        Some((
            large_room(args, &target, &tag, &plan.owners[0], pid).await?,
            args.large_room_members,
        ))
    } else {
        println!("\n-- join latency vs room size: skipped (--large-room-members 0)");
        None
    };

    println!("\n-- server memory");
    let hwm_kib = match pid {
        Some(pid) => match server::memory_kib(pid) {
            Some((hwm, rss)) => {
                println!(
                    "peak RSS (VmHWM) of pid {pid}: {:.1} MiB   (current VmRSS {:.1} MiB)",
                    hwm as f64 / 1024.0,
                    rss as f64 / 1024.0
                );
                Some(hwm)
            }
            None => {
                println!("could not read /proc/{pid}/status");
                None
            }
        },
        None => {
            println!("peak RSS: not measured (give --server-pid PID with --url)");
            None
        }
    };

    print_summary(
        args,
        &Figures {
            ops_per_sec,
            p99_us,
            join_ratio,
            hwm_kib,
        },
    );
    Ok(())
}

/// Accounts and rooms the mixed run uses.
struct Plan {
    owners: Vec<Account>,
    members: Vec<Account>,
    /// (room id, alias)
    public: Vec<(String, String)>,
    /// (room id, index of the owner who can invite)
    private: Vec<(String, usize)>,
}

async fn setup(args: &Args, target: &Target, tag: &str) -> Result<Plan, String> {
    let n_owners = args.public_rooms.min(4);
    let owners = register_many(target, &format!("b{tag}-o"), n_owners, args.connections, None).await?;
    let members = register_many(target, &format!("b{tag}-u"), args.users, args.connections, None).await?;
    let mut conn = Conn::new(target);
    let mut public = Vec::new();
    for i in 0..args.public_rooms {
        let owner = &owners[i % n_owners];
        let alias_name = format!("b{tag}-pub{i}");
        let room = conn
            .create_room(owner, "public_chat", Some(&alias_name))
            .await
            .map_err(|e| format!("createRoom (public): {e}"))?;
        public.push((room, format!("#{alias_name}:{}", owner.server_name())));
    }
    let mut private = Vec::new();
    for i in 0..args.private_rooms {
        let owner = i % n_owners;
        let room = conn
            .create_room(&owners[owner], "private_chat", None)
            .await
            .map_err(|e| format!("createRoom (private): {e}"))?;
        private.push((room, owner));
    }
    Ok(Plan {
        owners,
        members,
        public,
        private,
    })
}

/// Registers `count` users named `{prefix}{i}` over `conns` connections,
/// each then joining `join` if given. Prints progress for large counts.
async fn register_many(
    target: &Target,
    prefix: &str,
    count: usize,
    conns: usize,
    join: Option<&str>,
) -> Result<Vec<Account>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let join_path = join.map(client::join_room_path);
    let mut tasks = Vec::new();
    for _ in 0..conns.min(count.max(1)) {
        let (next, done, failed) = (next.clone(), done.clone(), failed.clone());
        let (target, prefix, join_path) = (target.clone(), prefix.to_string(), join_path.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&target);
            let mut mine = Vec::new();
            loop {
                if failed.load(Ordering::Relaxed) {
                    return Ok(mine);
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok(mine);
                }
                let step = async {
                    let account = conn
                        .register(&format!("{prefix}{i}"))
                        .await
                        .map_err(|e| format!("register: {e}"))?;
                    if let Some(path) = &join_path {
                        conn.call(http::Method::POST, path, Some(&account.token), &json!({}))
                            .await
                            .map_err(|e| format!("join: {e}"))?;
                    }
                    Ok::<_, String>(account)
                };
                match step.await {
                    Ok(account) => mine.push((i, account)),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(format!("user {prefix}{i}: {e}"));
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let progress = if count >= 5_000 {
        let done = done.clone();
        let start = Instant::now();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let n = done.load(Ordering::Relaxed);
                println!(
                    "               … {n}/{count} users after {:.0} s ({:.0} users/s)",
                    start.elapsed().as_secs_f64(),
                    n as f64 / start.elapsed().as_secs_f64()
                );
            }
        }))
    } else {
        None
    };
    let mut all = Vec::with_capacity(count);
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(mine)) => all.extend(mine),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => first_error = first_error.or(Some(format!("task: {e}"))),
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    if let Some(e) = first_error {
        return Err(format!("setup failed: {e}"));
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, a)| a).collect())
}

#[derive(Clone, Copy)]
enum Kind {
    Invite = 0,
    JoinById = 1,
    JoinByAlias = 2,
    Leave = 3,
}
const KIND_NAMES: [&str; 4] = ["invite", "join by room id", "join by alias", "leave"];

struct WorkerStats {
    all: Histogram<u64>,
    by_kind: Vec<Histogram<u64>>,
    ok: u64,
    errors: Errors,
}

impl WorkerStats {
    fn new() -> Self {
        WorkerStats {
            all: histogram(),
            by_kind: (0..4).map(|_| histogram()).collect(),
            ok: 0,
            errors: Errors::default(),
        }
    }
}

/// The mixed run: every connection cycles its own users through
/// invite → join (room id) → join by alias → leave → leave → re-join → leave.
async fn mixed_run(args: &Args, target: &Target, plan: Arc<Plan>, pid: Option<u32>) -> Result<(f64, u64), String> {
    println!(
        "\n-- mixed membership run: {} connections, {} s (+{} s warm-up)",
        args.connections, args.duration, args.warmup
    );
    let conns = args.connections;
    let start = Instant::now();
    let measure_start = start + Duration::from_secs_f64(args.warmup);
    let measure_end = measure_start + Duration::from_secs_f64(args.duration);
    let started_ops = Arc::new(AtomicU64::new(0));
    // CPU used by the server and by this load generator during the measured window.
    let cpu_probe = {
        let pid = pid.map(|p| p.to_string());
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_start.into()).await;
            let server = pid.as_deref().and_then(server::cpu_time);
            (server, server::cpu_time("self"))
        })
    };
    let mut tasks = Vec::new();
    for w in 0..conns {
        let (plan, target, started_ops) = (plan.clone(), target.clone(), started_ops.clone());
        let max_ops = args.max_ops;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&target);
            let mut st = WorkerStats::new();
            let mine: Vec<usize> = (w..plan.members.len()).step_by(conns).collect();
            let mut cycle = 0usize;
            'cycles: loop {
                let user = &plan.members[mine[cycle % mine.len()]];
                let (private, owner) = &plan.private[(w + cycle) % plan.private.len()];
                let owner = &plan.owners[*owner];
                let (public, alias) = &plan.public[(w + cycle) % plan.public.len()];
                let ops: [(Kind, String, &str, serde_json::Value); 7] = [
                    (
                        Kind::Invite,
                        client::invite_path(private),
                        &owner.token,
                        json!({ "user_id": user.user_id }),
                    ),
                    (Kind::JoinById, client::join_room_path(private), &user.token, json!({})),
                    (
                        Kind::JoinByAlias,
                        client::join_alias_path(alias),
                        &user.token,
                        json!({}),
                    ),
                    (Kind::Leave, client::leave_path(private), &user.token, json!({})),
                    (Kind::Leave, client::leave_path(public), &user.token, json!({})),
                    (Kind::JoinById, client::join_room_path(public), &user.token, json!({})),
                    (Kind::Leave, client::leave_path(public), &user.token, json!({})),
                ];
                cycle += 1;
                for (kind, path, token, body) in ops {
                    let now = Instant::now();
                    if now >= measure_end || started_ops.fetch_add(1, Ordering::Relaxed) >= max_ops {
                        break 'cycles;
                    }
                    let (latency, result) = conn.timed(&path, token, &body).await;
                    // Throughput counts operations that completed inside the window.
                    let finished = now + latency;
                    let measured = finished >= measure_start && finished <= measure_end;
                    match result {
                        Ok(_) => {
                            if measured {
                                st.ok += 1;
                                record(&mut st.all, latency);
                                record(&mut st.by_kind[kind as usize], latency);
                            }
                        }
                        Err(failure) => {
                            if measured {
                                st.errors
                                    .add(format!("{} {}", KIND_NAMES[kind as usize], failure.key()), || {
                                        failure.to_string()
                                    });
                            }
                            // Put the user back outside both rooms (not counted), then go on.
                            for room in [private, public] {
                                let _ = conn.timed(&client::leave_path(room), &user.token, &json!({})).await;
                            }
                            continue 'cycles;
                        }
                    }
                }
            }
            st
        }));
    }
    let mut total = WorkerStats::new();
    for t in tasks {
        let st = t.await.map_err(|e| format!("worker: {e}"))?;
        total.all.add(&st.all).map_err(|e| e.to_string())?;
        for (a, b) in total.by_kind.iter_mut().zip(&st.by_kind) {
            a.add(b).map_err(|e| e.to_string())?;
        }
        total.ok += st.ok;
        total.errors.merge(st.errors);
    }
    let wall = Instant::now().saturating_duration_since(measure_start);
    let (server_cpu0, self_cpu0) = cpu_probe.await.map_err(|e| e.to_string())?;
    let server_cpu1 = pid.and_then(|p| server::cpu_time(&p.to_string()));
    let self_cpu1 = server::cpu_time("self");

    let window = args.duration;
    let ops_per_sec = total.ok as f64 / window;
    let attempted = total.ok + total.errors.total();
    println!(
        "membership ops: {attempted} completed in the {window} s window: {} ok (2xx), {} errors",
        total.ok,
        total.errors.total()
    );
    println!("throughput:     {ops_per_sec:.0} ok ops/s");
    println!("latency (ok):   {}", summary(&total.all));
    for (name, h) in KIND_NAMES.iter().zip(&total.by_kind) {
        println!("  {name:<16}{:>8} ok  {}", h.len(), summary(h));
    }
    total.errors.print("");
    let cores = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2} cores", b.saturating_sub(a).as_secs_f64() / wall.as_secs_f64()),
        _ => "n/a".into(),
    };
    println!(
        "CPU during the window: server {}, load generator {} (of {} cores)",
        cores(server_cpu0, server_cpu1),
        cores(self_cpu0, self_cpu1),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    // Other work on the machine skews a loopback benchmark: say how busy it was.
    println!("machine load at the end: {}", server::machine_load());
    let p99 = if total.all.is_empty() {
        u64::MAX
    } else {
        total.all.value_at_quantile(0.99)
    };
    Ok((ops_per_sec, p99))
}

/// Join latency into a 10-member room vs a `--large-room-members` one. Returns the p50 ratio.
async fn large_room(args: &Args, target: &Target, tag: &str, owner: &Account, pid: Option<u32>) -> Result<f64, String> {
    let big = args.large_room_members;
    println!("\n-- join latency: 10-member room vs {big}-member room");
    let mut conn = Conn::new(target);
    let small_room = conn
        .create_room(owner, "public_chat", Some(&format!("b{tag}-small")))
        .await
        .map_err(|e| format!("createRoom (small): {e}"))?;
    register_many(target, &format!("b{tag}-s"), 9, args.connections, Some(&small_room)).await?;
    let large_room = conn
        .create_room(owner, "public_chat", Some(&format!("b{tag}-large")))
        .await
        .map_err(|e| format!("createRoom (large): {e}"))?;
    let populate = Instant::now();
    register_many(
        target,
        &format!("b{tag}-l"),
        big.saturating_sub(1),
        args.connections,
        Some(&large_room),
    )
    .await?;
    let took = populate.elapsed().as_secs_f64();
    println!(
        "populated the large room: {} users registered and joined (plus its creator) over {} connections in {:.1} s ({:.0} users/s)",
        big.saturating_sub(1),
        args.connections,
        took,
        big.saturating_sub(1) as f64 / took
    );
    if let Some((hwm, rss)) = pid.and_then(server::memory_kib) {
        println!(
            "server memory after population: VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
    }
    let samples = args.join_samples;
    let fresh = register_many(target, &format!("b{tag}-f"), samples, args.connections, None).await?;
    let rooms = [("10-member", &small_room), ("large", &large_room)];
    let mut join: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut leave: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut errors = Errors::default();
    for (i, user) in fresh.iter().enumerate() {
        // Alternate which room goes first so drift affects both alike.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for r in order {
            let room = rooms[r].1;
            let (lat, res) = conn.timed(&client::join_room_path(room), &user.token, &json!({})).await;
            match res {
                Ok(_) => join[r].push(lat.as_micros() as u64),
                Err(f) => errors.add(format!("join {}: {}", rooms[r].0, f.key()), || f.to_string()),
            }
            let (lat, res) = conn.timed(&client::leave_path(room), &user.token, &json!({})).await;
            match res {
                Ok(_) => leave[r].push(lat.as_micros() as u64),
                Err(f) => errors.add(format!("leave {}: {}", rooms[r].0, f.key()), || f.to_string()),
            }
        }
    }
    let pct = |v: &mut Vec<u64>, q: f64| -> u64 {
        if v.is_empty() {
            return 0;
        }
        v.sort_unstable();
        v[(((v.len() - 1) as f64) * q).round() as usize]
    };
    println!("{samples} sequential join+leave cycles by fresh users into each room, one connection:");
    let labels = ["10-member room".to_string(), format!("{big}-member room")];
    for r in 0..2 {
        let (j, l) = (&mut join[r], &mut leave[r]);
        println!(
            "  {:<22} join  p50 {:>9}  p99 {:>9}  max {:>9}   leave p50 {:>9}  p99 {:>9}",
            labels[r],
            ms(pct(j, 0.5)),
            ms(pct(j, 0.99)),
            ms(pct(j, 1.0)),
            ms(pct(l, 0.5)),
            ms(pct(l, 0.99))
        );
    }
    errors.print("  ");
    let (small_p50, large_p50) = (pct(&mut join[0], 0.5), pct(&mut join[1], 0.5));
    if join[0].is_empty() || join[1].is_empty() {
        return Err("no successful joins in the room-size test".into());
    }
    let ratio = large_p50 as f64 / small_p50.max(1) as f64;
    println!("  join p50 ratio, {big}-member / 10-member: {ratio:.2}×");
    Ok(ratio)
}

fn print_summary(args: &Args, f: &Figures) {
    let verdict = |ok: bool| if ok { "MET" } else { "NOT MET" };
    println!("\n== summary ==");
    println!("{:<52} {:>18}   result", "target", "measured");
    let note_conns = if args.connections == 64 {
        String::new()
    } else {
        format!(" (ran at {} connections)", args.connections)
    };
    println!(
        "{:<52} {:>18}   {}{}",
        ">= 5,000 membership ops/s at 64 connections",
        format!("{:.0} ops/s", f.ops_per_sec),
        verdict(f.ops_per_sec >= 5000.0),
        note_conns
    );
    println!(
        "{:<52} {:>18}   {}",
        "p99 latency < 25 ms",
        if f.p99_us == u64::MAX {
            "n/a".into()
        } else {
            ms(f.p99_us)
        },
        verdict(f.p99_us < 25_000)
    );
    match f.join_ratio {
        Some((ratio, members)) => {
            let note = if members == 100_000 {
                String::new()
            } else {
                format!(" (room had {members} members, not 100,000: indicative only)")
            };
            println!(
                "{:<52} {:>18}   {}{}",
                "100k-member join p50 within 1.5x the 10-member one",
                format!("{ratio:.2}x"),
                verdict(ratio <= 1.5),
                note
            );
        }
        None => println!(
            "{:<52} {:>18}   skipped",
            "100k-member join p50 within 1.5x the 10-member one", "-"
        ),
    }
    match args.compare_ops {
        Some(synapse) if synapse > 0.0 => {
            let x = f.ops_per_sec / synapse;
            println!(
                "{:<52} {:>18}   {}",
                format!(">= 50x Synapse's ops/s (Synapse: {synapse:.0})"),
                format!("{x:.1}x"),
                verdict(x >= 50.0)
            );
        }
        _ => println!(
            "{:<52} {:>18}   not judged (give --compare-ops OPS)",
            ">= 50x Synapse's ops/s", "-"
        ),
    }
    match f.hwm_kib {
        Some(kib) => println!(
            "{:<52} {:>18}",
            "peak server RSS (VmHWM)",
            format!("{:.1} MiB", kib as f64 / 1024.0)
        ),
        None => println!("{:<52} {:>18}", "peak server RSS (VmHWM)", "not measured"),
    }
}
