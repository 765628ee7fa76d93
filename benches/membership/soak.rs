//! Soak mode: the mixed run for `--minutes`, with the server's memory, the
//! throughput and the data folder reported at the end of every minute.
//!
//! RSS moves by several MiB from one second to the next (the page cache,
//! batches in flight, allocator arenas), so one sample at a minute's end
//! says little about that minute: the server's RSS is also read every
//! second, and flatness is judged on each minute's mean.

use super::disk::folder_bytes;
use super::server;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// How often RSS is read within an interval.
const RSS_EVERY: Duration = Duration::from_secs(1);

/// What one report interval held.
pub struct Sample {
    /// The mean of VmRSS read every [`RSS_EVERY`] through the interval.
    pub mean_rss_kib: Option<u64>,
}

/// Whether RSS stayed flat: the last interval's mean VmRSS against the second's.
pub struct Flatness {
    pub second_kib: u64,
    pub last_kib: u64,
    pub intervals: usize,
}

impl Flatness {
    /// Within 10 % of the second interval (the first holds the warm-up of caches).
    pub fn flat(&self) -> bool {
        (self.last_kib as f64) <= self.second_kib as f64 * 1.10
            && (self.last_kib as f64) >= self.second_kib as f64 * 0.90
    }

    pub fn change(&self) -> f64 {
        self.last_kib as f64 / self.second_kib.max(1) as f64 - 1.0
    }
}

/// Reports `count` intervals of `interval` from `start`, printing each as it ends.
pub fn monitor(
    pid: Option<u32>,
    folder: Option<PathBuf>,
    live: Arc<AtomicU64>,
    start: Instant,
    interval: Duration,
    count: u32,
) -> tokio::task::JoinHandle<Vec<Sample>> {
    tokio::spawn(async move {
        println!(
            "{:>8} {:>12} {:>12} {:>12} {:>10} {:>14}",
            "interval", "VmRSS", "mean VmRSS", "VmHWM", "ok ops/s", "data folder"
        );
        tokio::time::sleep_until(start.into()).await;
        let mut before = live.load(Ordering::Relaxed);
        let mut samples = Vec::new();
        for k in 1..=count {
            let end = start + interval * k;
            let mut readings = Vec::new();
            loop {
                let next = (Instant::now() + RSS_EVERY).min(end);
                tokio::time::sleep_until(next.into()).await;
                if let Some((_, rss)) = pid.and_then(server::memory_kib) {
                    readings.push(rss);
                }
                if next >= end {
                    break;
                }
            }
            let now = live.load(Ordering::Relaxed);
            let ops = (now - before) as f64 / interval.as_secs_f64();
            before = now;
            let memory = pid.and_then(server::memory_kib);
            let mean = (!readings.is_empty()).then(|| readings.iter().sum::<u64>() / readings.len() as u64);
            let size = folder.as_deref().and_then(|f| folder_bytes(f).ok()).map(|(a, _)| a);
            let mib_kib = |v: Option<u64>| v.map_or("n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
            println!(
                "{k:>8} {:>12} {:>12} {:>12} {ops:>10.0} {:>14}",
                mib_kib(memory.map(|(_, rss)| rss)),
                mib_kib(mean),
                mib_kib(memory.map(|(hwm, _)| hwm)),
                size.map_or("n/a".into(), |b| format!("{:.1} MiB", b as f64 / MIB))
            );
            samples.push(Sample { mean_rss_kib: mean });
        }
        samples
    })
}

/// The flatness of RSS over the samples; needs three intervals at least.
pub fn flatness(samples: &[Sample]) -> Option<Flatness> {
    if samples.len() < 3 {
        return None;
    }
    Some(Flatness {
        second_kib: samples[1].mean_rss_kib?,
        last_kib: samples.last()?.mean_rss_kib?,
        intervals: samples.len(),
    })
}
