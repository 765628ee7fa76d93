//! The server under test: started by us on a free port, on a data folder that
//! outlives every process, and SIGKILLed from whichever task decides the moment.

use crate::http::{Conn, Req};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a start may take before it counts as failed.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What every start of the server shares: binary, data folder (or
/// PostgreSQL database), log.
pub struct Installation {
    binary: PathBuf,
    data: tempfile::TempDir,
    flush_delay_ms: u64,
    database_url: Option<String>,
    starts: u32,
}

impl Installation {
    pub fn new(binary: PathBuf, flush_delay_ms: u64, database_url: Option<String>) -> Result<Installation, String> {
        if !binary.is_file() {
            return Err(format!(
                "{}: no server binary there; build it with `cargo build --release --bin matrix-membership` or pass --server-bin",
                binary.display()
            ));
        }
        let data = tempfile::Builder::new()
            .prefix("matrix-membership-torture-")
            .tempdir()
            .map_err(|e| format!("creating the data folder: {e}"))?;
        Ok(Installation {
            binary,
            data,
            flush_delay_ms,
            database_url,
            starts: 0,
        })
    }

    pub fn log_path(&self) -> PathBuf {
        self.data.path().join("server.log")
    }

    /// The last `lines` lines of the server log, for failure reports.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Starts the server on the data folder and waits until it answers HTTP.
    /// A port taken between our probe and the server's bind is retried.
    pub async fn start(&mut self) -> Result<Process, String> {
        let mut last = String::new();
        for _ in 0..3 {
            match self.start_once().await {
                Ok(p) => return Ok(p),
                Err((why, port_taken)) => {
                    last = why;
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    async fn start_once(&mut self) -> Result<Process, (String, bool)> {
        self.starts += 1;
        let port = free_port().map_err(|e| (e, false))?;
        let authority = format!("127.0.0.1:{port}");
        let log = self.open_log(&format!("=== start {} on {authority}", self.starts))?;
        let mut command = Command::new(&self.binary);
        if let Some(url) = &self.database_url {
            command.arg("--database-url").arg(url);
        }
        let child = command
            .arg("--bind")
            .arg(&authority)
            .arg("--data-dir")
            .arg(self.data.path().join("db"))
            .arg("--no-rate-limits")
            .arg("--test-flush-delay-ms")
            .arg(self.flush_delay_ms.to_string())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| (format!("starting {}: {e}", self.binary.display()), false))?;
        let process = Process {
            child: Mutex::new(child),
            killed: AtomicBool::new(false),
            authority,
        };
        let started = Instant::now();
        let mut conn = Conn::new(&process.authority);
        let versions = Req {
            method: http::Method::GET,
            path: "/_matrix/client/versions".into(),
            token: None,
            body: None,
        };
        loop {
            if let Some(status) = process.exit_status() {
                let tail = self.log_tail(20);
                let taken = tail.contains("Address already in use");
                return Err((
                    format!("the server exited during start-up ({status}); log:\n{tail}"),
                    taken,
                ));
            }
            if matches!(conn.send(&versions).await, Ok(r) if r.ok()) {
                return Ok(process);
            }
            if started.elapsed() > START_TIMEOUT {
                process.kill();
                process.reap();
                return Err((format!("the server did not answer within {START_TIMEOUT:?}"), false));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn open_log(&self, banner: &str) -> Result<std::fs::File, (String, bool)> {
        let path = self.log_path();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| (format!("{}: {e}", path.display()), false))?;
        let _ = writeln!(file, "{banner}");
        Ok(file)
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    fn database(&self) -> PathBuf {
        self.data.path().join("db")
    }

    fn snapshot_path(&self) -> PathBuf {
        self.data.path().join("db.snapshot")
    }

    /// Copies the database of the stopped server aside.
    pub fn snapshot(&self) -> Result<(), String> {
        copy_dir(&self.database(), &self.snapshot_path()).map_err(|e| format!("snapshot of the database: {e}"))
    }

    /// Puts the snapshot back: every write since it was taken is gone, as
    /// if the server had acknowledged them without ever writing them.
    pub fn roll_back(&self) -> Result<(), String> {
        let db = self.database();
        std::fs::remove_dir_all(&db).map_err(|e| format!("removing {}: {e}", db.display()))?;
        copy_dir(&self.snapshot_path(), &db).map_err(|e| format!("restoring the snapshot: {e}"))
    }

    /// Puts a file where the database folder is, so that no start can open it.
    pub fn break_database(&self) -> Result<(), String> {
        let db = self.database();
        std::fs::remove_dir_all(&db).map_err(|e| format!("removing {}: {e}", db.display()))?;
        std::fs::write(&db, b"not a database").map_err(|e| format!("writing {}: {e}", db.display()))
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn free_port() -> Result<u16, String> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    probe.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// One running server process.
pub struct Process {
    child: Mutex<Child>,
    killed: AtomicBool,
    /// `127.0.0.1:port`.
    pub authority: String,
}

impl Process {
    /// SIGKILL now; `true` for the call that did it. The flag is set before the
    /// signal so that no task mistakes the broken connections for a server fault.
    pub fn kill(&self) -> bool {
        if self.killed.swap(true, Ordering::SeqCst) {
            return false;
        }
        let _ = lock(&self.child).kill();
        true
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// The exit status if the process has ended.
    pub fn exit_status(&self) -> Option<std::process::ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    /// Waits for the killed process, so that its database lock is gone.
    pub fn reap(&self) {
        let _ = lock(&self.child).wait();
    }

    /// SIGTERM and wait: the graceful stop at the end of the run.
    pub fn terminate(&self) -> Result<(), String> {
        let pid = lock(&self.child).id();
        let sent = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        if !sent.is_ok_and(|s| s.success()) {
            self.kill();
        }
        let status = lock(&self.child).wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the server stopped with {status} after SIGTERM"))
        }
    }
}

impl Drop for Process {
    /// No server outlives the run, whatever path leaves it.
    fn drop(&mut self) {
        let mut child = lock(&self.child);
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
