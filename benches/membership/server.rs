//! Server processes the benchmark starts (ours, and the floor), and reading a
//! process's memory and CPU from /proc.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process serving on a loopback port, killed when dropped.
pub struct Listening {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Listening {
    /// Spawns `command` (stderr to `log`) and waits until `bind` accepts
    /// connections; `what` names the process in errors.
    pub fn spawn(mut command: Command, bind: &str, log: PathBuf, what: &str) -> Result<Listening, String> {
        let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("starting {what}: {e}"))?;
        let mut process = Listening {
            child,
            url: format!("http://{bind}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = process.child.try_wait() {
                return Err(format!(
                    "{what} exited at start ({status}); its log {}:\n{}",
                    process.log.display(),
                    std::fs::read_to_string(&process.log).unwrap_or_default()
                ));
            }
            if std::net::TcpStream::connect(bind).is_ok() {
                return Ok(process);
            }
            if Instant::now() > deadline {
                return Err(format!("{what} did not listen on {bind} within 30 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback address to bind, `127.0.0.1:PORT`.
pub fn free_loopback_addr() -> Result<String, String> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    let port = probe.local_addr().map_err(|e| e.to_string())?.port();
    Ok(format!("127.0.0.1:{port}"))
}

/// Our server, started for this run and killed when dropped.
pub struct OwnServer {
    process: Listening,
    pub url: String,
    pub log: PathBuf,
    data: tempfile::TempDir,
}

impl OwnServer {
    /// Starts the server binary Cargo built for this bench on a free loopback
    /// port with a fresh data folder, and waits until it accepts connections.
    pub fn start() -> Result<OwnServer, String> {
        OwnServer::start_with(&[])
    }

    /// Starts it with extra flags (`--database-url …` for PostgreSQL).
    pub fn start_with(extra: &[String]) -> Result<OwnServer, String> {
        let binary = env!("CARGO_BIN_EXE_matrix-membership");
        let data = tempfile::Builder::new()
            .prefix("matrix-membership-bench-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let bind = free_loopback_addr()?;
        let log = std::env::temp_dir().join(format!("matrix-membership-bench-{}.log", std::process::id()));
        let mut command = Command::new(binary);
        command
            .arg("--no-rate-limits")
            .arg("--data-dir")
            .arg(data.path().join("db"))
            .arg("--bind")
            .arg(&bind)
            .args(extra)
            .env("RUST_LOG", "warn");
        let process = Listening::spawn(command, &bind, log, binary)?;
        Ok(OwnServer {
            url: process.url.clone(),
            log: process.log.clone(),
            process,
            data,
        })
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's data folder (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("db")
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
    // SAFETY: sysconf has no preconditions.
    let ticks = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        t if t > 0 => t as u64,
        _ => 100,
    };
    Some(Duration::from_micros((utime + stime) * 1_000_000 / ticks))
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
