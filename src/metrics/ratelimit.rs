//! Requests a rate limit refused, by limit.

use super::{register, Counter};
use prometheus::{IntCounterVec, Opts, Registry};

/// One counter per limit, handed to the limit itself.
pub struct RateLimitMetrics {
    rejections: IntCounterVec,
}

impl RateLimitMetrics {
    pub(super) fn new(registry: &Registry) -> Self {
        RateLimitMetrics {
            rejections: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "rate_limit_rejections_total",
                        "Requests refused with 429 M_LIMIT_EXCEEDED, by the limit that refused them.",
                    ),
                    &["limit"],
                )
                .expect("valid metric"),
            ),
        }
    }

    /// The counter of the limit named `limit` (a fixed name, such as `join`).
    pub fn counter(&self, limit: &'static str) -> Counter {
        self.rejections.with_label_values(&[limit])
    }
}
