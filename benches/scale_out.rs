//! Scale-out benchmark: the membership mix of `benches/membership.rs`, in one
//! run, against sled, PostgreSQL with one instance, and PostgreSQL with two
//! instances on one database behind a round-robin TCP proxy (each new
//! connection goes to the next instance); then how long a `/sync` long poll
//! on one instance takes to return an invite made through the other.
//!
//! ```sh
//! cargo bench --bench scale_out                                   # starts a throwaway cluster itself
//! cargo bench --bench scale_out -- --postgres postgres://u@127.0.0.1:5432/postgres --duration 20
//! ```
//!
//! `--postgres` (or `MM_TEST_POSTGRES`) is an admin URL: the benchmark creates
//! a database of its own per configuration there. Without either, it starts
//! one with `tests/pg/cluster.sh` and stops it at the end.
#![allow(dead_code)] // the membership benchmark's modules, of which this uses a part

#[path = "membership/args.rs"]
mod args;
#[path = "membership/client.rs"]
mod client;
#[path = "membership/ledger.rs"]
mod ledger;
#[path = "membership/mix.rs"]
mod mix;
#[path = "membership/progress.rs"]
mod progress;
#[path = "membership/server.rs"]
mod server;
#[path = "membership/setup.rs"]
mod setup;
#[path = "membership/stats.rs"]
mod stats;

use client::{Conn, Target};
use serde_json::json;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Options {
    postgres: Option<String>,
    duration: f64,
    connections: usize,
    wake_samples: usize,
}

fn options() -> Result<Options, String> {
    let full = std::env::args().any(|a| a == "--bench");
    let mut o = Options {
        postgres: std::env::var("MM_TEST_POSTGRES").ok(),
        // Without --bench (cargo test --benches): a quick smoke run.
        duration: if full { 10.0 } else { 1.0 },
        connections: if full { 64 } else { 8 },
        wake_samples: if full { 20 } else { 3 },
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--bench" => {}
            "--postgres" => o.postgres = Some(value()?),
            "--duration" => o.duration = value()?.parse().map_err(|_| "--duration: a number of seconds")?,
            "--connections" => o.connections = value()?.parse().map_err(|_| "--connections: a number")?,
            "--wake-samples" => o.wake_samples = value()?.parse().map_err(|_| "--wake-samples: a number")?,
            other => {
                return Err(format!(
                    "unknown option {other}; options: --postgres URL --duration SECS --connections N --wake-samples N"
                ))
            }
        }
    }
    Ok(o)
}

fn main() {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cluster = match &opts.postgres {
        Some(url) => Ok((url.clone(), None)),
        None => Cluster::start().map(|c| (c.url.clone(), Some(c))),
    };
    let result = match cluster {
        Ok((admin, cluster)) => {
            let r = runtime.block_on(run(&opts, &admin));
            drop(cluster);
            r
        }
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// A throwaway cluster from `tests/pg/cluster.sh`, stopped when dropped.
struct Cluster {
    url: String,
}

impl Cluster {
    fn script() -> String {
        format!("{}/tests/pg/cluster.sh", env!("CARGO_MANIFEST_DIR"))
    }

    fn start() -> Result<Cluster, String> {
        let out = std::process::Command::new("bash")
            .arg(Cluster::script())
            .arg("start")
            .output()
            .map_err(|e| format!("tests/pg/cluster.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "starting a PostgreSQL cluster failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let url = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        Ok(Cluster { url })
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new("bash")
            .arg(Cluster::script())
            .arg("stop")
            .status();
    }
}

/// A fresh database on the cluster; its URL.
async fn create_database(admin: &str, name: &str) -> Result<String, String> {
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connecting to {admin}: {e}"))?;
    tokio::spawn(connection);
    // Separate statements: CREATE DATABASE cannot run inside the implicit transaction of a batch.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client.batch_execute(&sql).await.map_err(|e| {
            format!(
                "{sql}: {}",
                e.as_db_error().map_or(e.to_string(), |d| d.message().to_string())
            )
        })?;
    }
    let (base, _) = admin.rsplit_once('/').ok_or("the admin URL must end in /DATABASE")?;
    Ok(format!("{base}/{name}"))
}

fn on_database(url: &str) -> Vec<String> {
    vec!["--database-url".into(), url.into()]
}

/// Accepts connections and hands each to the next upstream in turn.
struct RoundRobin {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobin {
    async fn start(upstreams: Vec<String>) -> Result<RoundRobin, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("proxy bind: {e}"))?;
        let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstreams[next % upstreams.len()].clone();
                next += 1;
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Ok(RoundRobin { url, task })
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn authority(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// One configuration's mixed run.
struct Measured {
    name: &'static str,
    ops_per_sec: f64,
    p50_us: Option<u64>,
    p99_us: Option<u64>,
    cpu_us_per_op: Option<f64>,
}

async fn measure(opts: &Options, name: &'static str, url: &str, pid: Option<u32>) -> Result<Measured, String> {
    let mut args = args::Args::defaults();
    args.connections = opts.connections;
    args.duration = opts.duration;
    if opts.duration < 2.0 {
        (args.users, args.public_rooms, args.private_rooms, args.warmup) = (16, 2, 2, 0.0);
    }
    println!(
        "\n-- {name}: {} connections, {} s (+{} s warm-up)",
        args.connections, args.duration, args.warmup
    );
    let target = Target::parse(url)?;
    let tag = format!("s{}", std::process::id());
    let plan = Arc::new(setup::setup(&args, &target, &format!("{tag}{}", name.len())).await?);
    let shape = mix::Shape {
        connections: args.connections,
        warmup: args.warmup,
        duration: args.duration,
        max_ops: args.max_ops,
    };
    let outcome = mix::run(shape, &target, plan, pid, Arc::new(AtomicU64::new(0))).await?;
    outcome.print(name);
    Ok(Measured {
        name,
        ops_per_sec: outcome.ops_per_sec(),
        p50_us: outcome.quantile_us(0.5),
        p99_us: outcome.quantile_us(0.99),
        cpu_us_per_op: outcome.server_cpu_us_per_op(),
    })
}

/// How long a long poll on `a` takes to return an invite made through `b`,
/// `samples` times, each with an invitee of its own: each latency.
async fn wake_latency(a: &str, b: &str, samples: usize) -> Result<Vec<Duration>, String> {
    let (ta, tb) = (Target::parse(a)?, Target::parse(b)?);
    let (mut on_a, mut on_b) = (Conn::new(&ta), Conn::new(&tb));
    let tag = std::process::id();
    let inviter = on_a
        .register(&format!("wake{tag}-inviter"))
        .await
        .map_err(|e| e.to_string())?;
    let room = on_b
        .create_room(&inviter, "private_chat", None)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for i in 0..samples {
        let invitee = on_a
            .register(&format!("wake{tag}-invitee{i}"))
            .await
            .map_err(|e| e.to_string())?;
        let first = on_a
            .get("/_matrix/client/v3/sync?timeout=0", &invitee.token)
            .await
            .map_err(|e| e.to_string())?;
        let since = first.body["next_batch"].as_str().unwrap_or_default().to_string();
        let poll = {
            let (target, token) = (ta.clone(), invitee.token.clone());
            tokio::spawn(async move {
                let mut conn = Conn::new(&target);
                let path = format!("/_matrix/client/v3/sync?timeout=30000&since={}", client::enc(&since));
                let r = conn.get(&path, &token).await.map_err(|e| e.to_string());
                (Instant::now(), r)
            })
        };
        // The poll is waiting on A before the invite goes out through B.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = Instant::now();
        on_b.call(
            http::Method::POST,
            &client::invite_path(&room),
            Some(&inviter.token),
            &json!({ "user_id": invitee.user_id }),
        )
        .await
        .map_err(|e| e.to_string())?;
        let (returned, synced) = poll.await.map_err(|e| e.to_string())?;
        let synced = synced?;
        if synced.body["rooms"]["invite"].get(&room).is_none() {
            return Err(format!(
                "the long poll on A returned without the invite: {}",
                synced.body
            ));
        }
        out.push(returned.saturating_duration_since(sent));
    }
    Ok(out)
}

fn ms(us: Option<u64>) -> String {
    us.map_or("n/a".into(), |u| format!("{:.1} ms", u as f64 / 1000.0))
}

async fn run(opts: &Options, admin: &str) -> Result<(), String> {
    println!("== matrix-membership scale-out benchmark ==");
    println!(
        "machine: {} cores, load generator, proxy, servers and PostgreSQL all on it; {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        server::machine_load()
    );
    let mut results = Vec::new();
    {
        let sled = server::OwnServer::start()?;
        results.push(measure(opts, "sled", &sled.url, Some(sled.pid())).await?);
    }
    {
        let db = create_database(admin, &format!("mm_bench_one_{}", std::process::id())).await?;
        let one = server::OwnServer::start_with(&on_database(&db))?;
        results.push(measure(opts, "PostgreSQL, 1 instance", &one.url, Some(one.pid())).await?);
    }
    let db = create_database(admin, &format!("mm_bench_two_{}", std::process::id())).await?;
    let a = server::OwnServer::start_with(&on_database(&db))?;
    let b = server::OwnServer::start_with(&on_database(&db))?;
    let proxy = RoundRobin::start(vec![authority(&a.url), authority(&b.url)]).await?;
    results.push(measure(opts, "PostgreSQL, 2 instances, round-robin", &proxy.url, None).await?);

    println!("\n-- cross-instance wake-up: long poll on A (timeout 30 s), invite through B");
    let mut wake = wake_latency(&a.url, &b.url, opts.wake_samples).await?;
    wake.sort();
    let at = |q: f64| wake[((wake.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{} samples: median {:.1} ms, max {:.1} ms (from the invite's request to the poll's answer)",
        wake.len(),
        at(0.5).as_secs_f64() * 1000.0,
        at(1.0).as_secs_f64() * 1000.0
    );

    println!("\n-- summary (same mix, same run)");
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>14}",
        "configuration", "ops/s", "p50", "p99", "CPU/op (server)"
    );
    for r in &results {
        println!(
            "{:<40} {:>10.0} {:>10} {:>10} {:>14}",
            r.name,
            r.ops_per_sec,
            ms(r.p50_us),
            ms(r.p99_us),
            r.cpu_us_per_op.map_or("n/a".into(), |c| format!("{c:.0} µs"))
        );
    }
    println!(
        "(two instances on {} cores share the CPU with PostgreSQL and the load generator: the second instance \
         shows that correctness holds, not added capacity)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    Ok(())
}
