//! Per-user rate limits on joins and on membership changes a user makes to others.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

use super::error::ServiceError;

/// One keyed limiter; `None` when the limit is off.
pub struct Limit(Option<DefaultKeyedRateLimiter<String>>);

impl Limit {
    /// `per_second` sustained with bursts of `burst`; a rate of 0 turns the limit off.
    pub fn new(per_second: f64, burst: u32) -> Self {
        if per_second <= 0.0 || !per_second.is_finite() {
            return Limit(None);
        }
        let period = Duration::from_secs_f64(1.0 / per_second);
        let quota =
            Quota::with_period(period).map(|q| q.allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN)));
        Limit(quota.map(RateLimiter::keyed))
    }

    /// Charges one request to `user`, or says how long to wait.
    pub fn check(&self, user: &str) -> Result<(), ServiceError> {
        let Some(limiter) = &self.0 else { return Ok(()) };
        limiter.check_key(&user.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ServiceError::limit_exceeded((wait.as_millis() as u64).max(1))
        })
    }
}

/// The limits the service applies.
pub struct RateLimits {
    /// Joins by a user.
    pub join: Limit,
    /// Invites, kicks, bans and unbans a user sends.
    pub invite: Limit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_and_the_next_request_is_told_when_to_retry() {
        let limit = Limit::new(0.1, 3);
        for _ in 0..3 {
            limit.check("@a:l").unwrap();
        }
        let err = limit.check("@a:l").unwrap_err();
        assert_eq!(err.status, 429);
        assert_eq!(err.errcode, "M_LIMIT_EXCEEDED");
        assert!(err.retry_after_ms.unwrap() > 5_000, "{err:?}");
        limit.check("@b:l").expect("other users have their own budget");
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let limit = Limit::new(0.0, 1);
        for _ in 0..100 {
            limit.check("@a:l").unwrap();
        }
    }
}
