//! Group-commit flushes, as the store's flusher reports them.

use super::register;
use crate::store::commit::FlushObserver;
use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};
use std::time::Duration;

/// Flush latency buckets, in seconds: an fsync takes from tens of
/// microseconds (tmpfs) to hundreds of milliseconds (a busy disk).
const FLUSH_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Writes made durable by one flush.
const BATCH_BUCKETS: &[f64] = &[0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// The flush metrics; the store is given this as its [`FlushObserver`].
pub struct CommitMetrics {
    flushes: IntCounterVec,
    latency: Histogram,
    batch: Histogram,
}

impl CommitMetrics {
    pub(super) fn new(registry: &Registry) -> Self {
        let flushes = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "group_commit_flushes_total",
                    "Group-commit flushes (fsyncs), by result (ok, error).",
                ),
                &["result"],
            )
            .expect("valid metric"),
        );
        for result in ["ok", "error"] {
            flushes.with_label_values(&[result]);
        }
        CommitMetrics {
            flushes,
            latency: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "group_commit_flush_duration_seconds",
                        "Time one group-commit flush took.",
                    )
                    .buckets(FLUSH_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
            batch: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "group_commit_batch_writes",
                        "Writes one group-commit flush made durable (the writes sharing one fsync).",
                    )
                    .buckets(BATCH_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
        }
    }
}

impl FlushObserver for CommitMetrics {
    fn flushed(&self, took: Duration, writes: u64, ok: bool) {
        self.flushes.with_label_values(&[if ok { "ok" } else { "error" }]).inc();
        self.latency.observe(took.as_secs_f64());
        self.batch.observe(writes as f64);
    }
}
