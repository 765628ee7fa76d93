//! The server's memory after each phase, so a peak RSS over the target can
//! be traced to the phase that raised it.

use super::server;

/// VmRSS and VmHWM (KiB) read after each phase.
pub struct MemoryLog {
    pid: Option<u32>,
    points: Vec<(&'static str, (u64, u64))>,
}

impl MemoryLog {
    pub fn new(pid: Option<u32>) -> MemoryLog {
        MemoryLog {
            pid,
            points: Vec::new(),
        }
    }

    /// Records the server's memory now, after `phase`.
    pub fn mark(&mut self, phase: &'static str) {
        if let Some((hwm, rss)) = self.pid.and_then(server::memory_kib) {
            self.points.push((phase, (rss, hwm)));
        }
    }

    /// VmHWM at the mark of `phase`: the peak RSS from the server's start up to then.
    pub fn hwm_after(&self, phase: &str) -> Option<u64> {
        self.points.iter().find(|(p, _)| *p == phase).map(|(_, (_, hwm))| *hwm)
    }

    /// Prints every mark and the last VmHWM.
    pub fn report(&self) {
        let Some(pid) = self.pid else {
            println!("peak RSS: not measured (give --server-pid PID with --url)");
            return;
        };
        let Some(&(_, (rss, hwm))) = self.points.last() else {
            println!("could not read /proc/{pid}/status");
            return;
        };
        let mib = |kib: u64| kib as f64 / 1024.0;
        for (phase, (rss, hwm)) in &self.points {
            println!(
                "  after {phase:<28} VmRSS {:>7.1} MiB   VmHWM {:>7.1} MiB",
                mib(*rss),
                mib(*hwm)
            );
        }
        println!(
            "VmHWM of pid {pid} at the end, read-back included: {:.1} MiB   (current VmRSS {:.1} MiB)",
            mib(hwm),
            mib(rss)
        );
    }
}
