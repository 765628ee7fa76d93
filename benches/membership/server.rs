//! Starting our own server for the run, and reading a server's memory and CPU from /proc.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Our server, started for this run and killed when dropped.
pub struct OwnServer {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
    _data: tempfile::TempDir,
}

impl OwnServer {
    /// Starts the server binary Cargo built for this bench on a free loopback
    /// port with a fresh data folder, and waits until it accepts connections.
    pub fn start() -> Result<OwnServer, String> {
        let binary = env!("CARGO_BIN_EXE_matrix-membership");
        let data = tempfile::Builder::new()
            .prefix("matrix-membership-bench-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
            probe.local_addr().map_err(|e| e.to_string())?.port()
        };
        let bind = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("matrix-membership-bench-{}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(binary)
            .arg("--no-rate-limits")
            .arg("--data-dir")
            .arg(data.path().join("db"))
            .arg("--bind")
            .arg(&bind)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting {binary}: {e}"))?;
        let mut server = OwnServer {
            child,
            url: format!("http://{bind}"),
            log,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "the server exited at start ({status}); its log {}:\n{}",
                    server.log.display(),
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                ));
            }
            if std::net::TcpStream::connect(&bind).is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!("the server did not listen on {bind} within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM` and `VmRSS` of a process, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// User plus system CPU time a process has used so far (all its threads).
pub fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = 100; // USER_HZ on Linux
    Some(Duration::from_millis((utime + stime) * 1000 / ticks))
}

/// 1-minute load average and CPU pressure (share of the last 10 s in which
/// some runnable task waited for a CPU), e.g. `load 2.10, cpu pressure 35%`.
pub fn machine_load() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "n/a".into());
    let pressure = std::fs::read_to_string("/proc/pressure/cpu")
        .ok()
        .and_then(|s| {
            let some = s.lines().find(|l| l.starts_with("some"))?;
            let avg10 = some.split_whitespace().find_map(|f| f.strip_prefix("avg10="))?;
            Some(format!("{avg10}%"))
        })
        .unwrap_or_else(|| "n/a".into());
    format!("1-min load average {load}, CPU pressure (some, avg10) {pressure}")
}
