//! Command-line options of the membership benchmark.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: cargo bench --bench membership [-- OPTIONS]

  --url URL                  homeserver to drive (loopback only); without it our own
                             server is started on a free port with a fresh data dir
  --connections N            concurrent keep-alive connections (default 64)
  --duration SECS            measured length of the mixed run, ours and the floor's (default 10)
  --warmup SECS              unmeasured mixed run before each (default 1)
  --users N                  member accounts cycling through rooms (default 256)
  --public-rooms N           public rooms with aliases (default 4)
  --private-rooms N          invite-only rooms (default 16)
  --large-room-members N     members of the big room for the join test (default 100000; 0 skips)
  --join-samples N           sequential join+leave cycles per room in that test (default 200)
  --history-events N         messages in the long-history room; the short one gets 100
                             (default 100000; 0 skips the history test)
  --read-samples N           sequential rounds of reads per room in that test (default 200)
  --minutes N                soak mode: only the mixed run, for N minutes, reported each minute
  --soak-interval SECS       length of one soak report interval (default 60)
  --no-floor                 skip the floor measurement
  --server-pid PID           process to read CPU and memory from when --url is given
  --data-dir PATH            data folder to measure when --url is given
  --compare-ops OPS          Synapse's ops/s on the same mix, for the >= 100x target
  --max-ops N                stop the mixed run after N operations (default 10000000)
";

/// Everything a run is told.
#[derive(Debug, Clone)]
pub struct Args {
    pub url: Option<String>,
    pub connections: usize,
    pub duration: f64,
    pub warmup: f64,
    pub users: usize,
    pub public_rooms: usize,
    pub private_rooms: usize,
    pub large_room_members: usize,
    pub join_samples: usize,
    pub history_events: usize,
    pub read_samples: usize,
    pub minutes: Option<u32>,
    pub soak_interval: f64,
    pub floor: bool,
    pub server_pid: Option<u32>,
    pub data_dir: Option<PathBuf>,
    pub compare_ops: Option<f64>,
    pub max_ops: u64,
    /// Run without `--bench` (e.g. by `cargo test --benches`): a quick smoke run.
    pub smoke: bool,
}

impl Args {
    /// The full run's settings (the scale-out benchmark starts from them too).
    pub fn defaults() -> Args {
        Args {
            url: None,
            connections: 64,
            duration: 10.0,
            warmup: 1.0,
            users: 256,
            public_rooms: 4,
            private_rooms: 16,
            large_room_members: 100_000,
            join_samples: 200,
            history_events: 100_000,
            read_samples: 200,
            minutes: None,
            soak_interval: 60.0,
            floor: true,
            server_pid: None,
            data_dir: None,
            compare_ops: None,
            max_ops: 10_000_000,
            smoke: false,
        }
    }

    /// What `cargo test --benches` runs: every phase, each tiny.
    fn smoke() -> Args {
        Args {
            connections: 8,
            duration: 1.0,
            warmup: 0.0,
            users: 16,
            public_rooms: 2,
            private_rooms: 2,
            large_room_members: 100,
            join_samples: 10,
            history_events: 300,
            read_samples: 10,
            smoke: true,
            ..Args::defaults()
        }
    }
}

fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
    v.parse().map_err(|_| format!("{name}: {v:?} is not a valid number"))
}

pub fn parse() -> Result<Args, String> {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then
    // a short smoke run checks that the benchmark works (flags still apply).
    let mut a = if std::env::args().any(|a| a == "--bench") {
        Args::defaults()
    } else {
        Args::smoke()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
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
            "--history-events" => a.history_events = num(&name, value()?)?,
            "--read-samples" => a.read_samples = num(&name, value()?)?,
            "--minutes" => a.minutes = Some(num(&name, value()?)?),
            "--soak-interval" => a.soak_interval = num(&name, value()?)?,
            "--no-floor" => a.floor = false,
            "--server-pid" => a.server_pid = Some(num(&name, value()?)?),
            "--data-dir" => a.data_dir = Some(PathBuf::from(value()?)),
            "--compare-ops" => a.compare_ops = Some(num(&name, value()?)?),
            "--max-ops" => a.max_ops = num(&name, value()?)?,
            // libtest-style flags cargo may forward; a filter argument is ignored too.
            other if !other.starts_with("--") => {}
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    check(&a)?;
    a.users = a.users.max(a.connections);
    Ok(a)
}

fn check(a: &Args) -> Result<(), String> {
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
    bounded(
        a.history_events <= 10_000_000,
        "--history-events must be at most 10000000",
    )?;
    bounded(
        (1..=100_000).contains(&a.read_samples),
        "--read-samples must be 1..=100000",
    )?;
    bounded(
        a.minutes.is_none_or(|m| (1..=24 * 60).contains(&m)),
        "--minutes must be 1..=1440",
    )?;
    bounded(
        a.soak_interval >= 1.0 && a.soak_interval <= 3600.0,
        "--soak-interval must be in [1, 3600]",
    )?;
    bounded(a.max_ops >= 1, "--max-ops must be at least 1")?;
    Ok(())
}
