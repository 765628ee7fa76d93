//! Prometheus metrics: one registry per process, owned by [`Metrics`], and
//! the listener that serves it (`--metrics-bind`).
//!
//! The registry is not the `prometheus` crate's global default one: the
//! `Service` creates a `Metrics` and hands it to what it measures (the edge,
//! the rate limits, the store's group commit), so two servers in one test
//! process keep separate counts. Each concern has its own file; the store
//! only sees the [`crate::store::commit::FlushObserver`] trait, and what is
//! cheaper to read than to count (waiting syncs, database size) is read from
//! the store when Prometheus scrapes.
//!
//! Every label has a bounded set of values: operation ids are the generated
//! `Operation`s, statuses are the few the edge answers, actions and limits are
//! fixed lists.

pub mod commit;
pub mod endpoint;
pub mod http;
pub mod membership;
pub mod ratelimit;
pub mod store;

use crate::store::Store;
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::{Arc, Weak};

/// A counter a measured component holds and increments (a `prometheus` counter).
pub type Counter = prometheus::IntCounter;

/// Every metric name starts with this.
pub const PREFIX: &str = "matrix_membership";

/// The process's metrics and the registry they are exposed from.
pub struct Metrics {
    registry: Registry,
    /// Requests, their latency and open connections, counted at the edge.
    pub http: http::HttpMetrics,
    /// Membership changes the service wrote, by action.
    pub membership: membership::MembershipMetrics,
    /// Requests refused by a rate limit, by limit.
    pub rate_limits: ratelimit::RateLimitMetrics,
    /// Group-commit flushes, handed to the store as its flush observer.
    pub commit: Arc<commit::CommitMetrics>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered at zero.
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some(PREFIX.to_string()), None).expect("a valid metrics prefix");
        Metrics {
            http: http::HttpMetrics::new(&registry),
            membership: membership::MembershipMetrics::new(&registry),
            rate_limits: ratelimit::RateLimitMetrics::new(&registry),
            commit: Arc::new(commit::CommitMetrics::new(&registry)),
            registry,
        }
    }

    /// Reads waiting syncs and the database size from `store` at each scrape.
    /// Held weakly: the metrics listener must not keep a stopped store open.
    pub fn watch_store(&self, store: Weak<dyn Store>) {
        register(&self.registry, store::StoreGauges::new(store));
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let families = self.registry.gather();
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Registers `collector`; names are fixed here, so a clash is a bug.
fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names are unique");
    collector
}
