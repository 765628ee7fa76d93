//! What the HTTP edge counts: requests by operation and status, their
//! latency by operation, and open connections.

use super::register;
use crate::generated::routes::Operation;
use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};
use std::time::Duration;

/// The label of a request that reached no operation (404, 405, a bad path).
pub const UNMATCHED: &str = "unmatched";
/// The label of a CORS preflight (`OPTIONS`), which any path answers.
pub const PREFLIGHT: &str = "preflight";

/// Latency buckets, in seconds: from a cached read to a `/sync` long poll.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
];

/// What a request was, for its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Operation(Operation),
    Preflight,
    Unmatched,
}

impl RequestKind {
    /// The operation's name for the request log, `-` when no operation matched.
    pub fn log_name(self) -> &'static str {
        match self {
            RequestKind::Operation(op) => op.name(),
            RequestKind::Preflight | RequestKind::Unmatched => "-",
        }
    }

    fn label(self) -> &'static str {
        match self {
            RequestKind::Operation(op) => op.name(),
            RequestKind::Preflight => PREFLIGHT,
            RequestKind::Unmatched => UNMATCHED,
        }
    }
}

/// The edge's metrics.
pub struct HttpMetrics {
    requests: IntCounterVec,
    /// One histogram per operation, resolved up front (indexed by
    /// `Operation as usize`), so a request costs no label lookup for it.
    latency_by_operation: Vec<Histogram>,
    latency_preflight: Histogram,
    latency_unmatched: Histogram,
    open_connections: IntGauge,
}

impl HttpMetrics {
    pub(super) fn new(registry: &Registry) -> Self {
        let requests = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "Requests answered, by operation id (unmatched: no operation) and status.",
                ),
                &["operation", "status"],
            )
            .expect("valid metric"),
        );
        let latency = register(
            registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "Time from a request's head to its response, by operation id.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["operation"],
            )
            .expect("valid metric"),
        );
        let slots = Operation::ALL.iter().map(|op| *op as usize).max().map_or(0, |m| m + 1);
        let mut latency_by_operation = vec![latency.with_label_values(&[UNMATCHED]); slots];
        for op in Operation::ALL {
            latency_by_operation[*op as usize] = latency.with_label_values(&[op.name()]);
        }
        HttpMetrics {
            requests,
            latency_preflight: latency.with_label_values(&[PREFLIGHT]),
            latency_unmatched: latency.with_label_values(&[UNMATCHED]),
            latency_by_operation,
            open_connections: register(
                registry,
                IntGauge::new("open_connections", "Client connections open on the main listener.")
                    .expect("valid metric"),
            ),
        }
    }

    /// Counts one answered request.
    pub fn request(&self, kind: RequestKind, status: http::StatusCode, took: Duration) {
        self.requests.with_label_values(&[kind.label(), status.as_str()]).inc();
        let histogram = match kind {
            RequestKind::Operation(op) => &self.latency_by_operation[op as usize],
            RequestKind::Preflight => &self.latency_preflight,
            RequestKind::Unmatched => &self.latency_unmatched,
        };
        histogram.observe(took.as_secs_f64());
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection {
        self.open_connections.inc();
        OpenConnection(self.open_connections.clone())
    }
}

/// Held for as long as a connection is open.
pub struct OpenConnection(IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
