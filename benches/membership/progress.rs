//! Progress lines for long set-up phases, so a run of minutes is not silent.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Counts below this finish in seconds and print no progress.
const QUIET_BELOW: usize = 5_000;
const EVERY: Duration = Duration::from_secs(10);

/// Prints `done/total what` every 10 s until dropped.
pub struct Progress {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(done: Arc<AtomicUsize>, total: usize, what: &'static str) -> Progress {
        if total < QUIET_BELOW {
            return Progress { task: None };
        }
        let start = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(EVERY).await;
                let n = done.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "               … {n}/{total} {what} after {secs:.0} s ({:.0}/s)",
                    n as f64 / secs
                );
            }
        });
        Progress { task: Some(task) }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
