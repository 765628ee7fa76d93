//! Rate limits: Synapse's leaky buckets (`synapse/api/ratelimiting.py`), one
//! per key, in a table that never holds more than a fixed number of keys.
//!
//! A bucket holds the actions a key took recently and leaks them at `rate`
//! per second; an action is allowed while the bucket holds at most
//! `burst - 1`. A bucket is stored as the instant it will be empty again, so
//! a drained bucket carries no information and is dropped. Keys are stored as
//! keyed 64-bit hashes, so an entry costs the same whatever the key's length,
//! and nobody can pick keys that collide without knowing the process's
//! random hash key.

use super::error::ServiceError;
use super::Service;
use crate::config::LimitSettings;
use crate::metrics::ratelimit::RateLimitMetrics;
use crate::metrics::Counter;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How many keys a limiter remembers unless told otherwise (the `--rate-limit-keys` default).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// One keyed limit (off when its rate is 0), and the counter of the
/// requests it refused, once [`RateLimits::count_rejections`] has set it.
pub struct Limit(Option<Buckets>, OnceLock<Counter>);

struct Buckets {
    /// Time one action takes to leak out.
    period: u64,
    /// `burst × period`: how full a bucket may get.
    capacity: u64,
    max_keys: usize,
    hasher: RandomState,
    /// Times are nanoseconds since this instant.
    epoch: Instant,
    table: Mutex<Table>,
}

/// Key hash → the time its bucket is empty, indexed both ways so drained
/// buckets and the emptiest one are found at the front of `by_empty_at`.
#[derive(Default)]
struct Table {
    empty_at: HashMap<u64, u64>,
    by_empty_at: BTreeSet<(u64, u64)>,
}

impl Table {
    fn get(&self, key: u64) -> Option<u64> {
        self.empty_at.get(&key).copied()
    }

    fn set(&mut self, key: u64, empty_at: u64) {
        if let Some(old) = self.empty_at.insert(key, empty_at) {
            self.by_empty_at.remove(&(old, key));
        }
        self.by_empty_at.insert((empty_at, key));
    }

    /// Forgets buckets that have drained by `now`: they equal a fresh bucket.
    fn prune(&mut self, now: u64) {
        while let Some(&(at, key)) = self.by_empty_at.first() {
            if at > now {
                break;
            }
            self.by_empty_at.pop_first();
            self.empty_at.remove(&key);
        }
    }

    /// Makes room for one more key by forgetting the emptiest bucket. Keys
    /// flooding in hold one action each, so the buckets that go first are
    /// those nearly drained anyway, never the heavily charged ones an
    /// attacker would like to see reset.
    fn evict_emptiest(&mut self) {
        if let Some((_, key)) = self.by_empty_at.pop_first() {
            self.empty_at.remove(&key);
        }
    }
}

impl Limit {
    /// `per_second` sustained with bursts of `burst`; a rate of 0 turns it off.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self::with_max_keys(per_second, burst, DEFAULT_MAX_KEYS)
    }

    /// Like [`Limit::new`], remembering at most `max_keys` keys.
    pub fn with_max_keys(per_second: f64, burst: u32, max_keys: usize) -> Self {
        if per_second <= 0.0 || !per_second.is_finite() {
            return Self::off();
        }
        let period = (1e9 / per_second).clamp(1.0, (u64::MAX / 4) as f64) as u64;
        Limit(
            Some(Buckets {
                period,
                capacity: period.saturating_mul(u64::from(burst.max(1))),
                max_keys: max_keys.max(1),
                hasher: RandomState::new(),
                epoch: Instant::now(),
                table: Mutex::new(Table::default()),
            }),
            OnceLock::new(),
        )
    }

    /// A limit that allows everything.
    pub fn off() -> Self {
        Limit(None, OnceLock::new())
    }

    /// Charges one action to `key`, or says how long to wait (nothing is charged then).
    pub fn check<K: Hash + ?Sized>(&self, key: &K) -> Result<(), ServiceError> {
        self.decide(key, true)
    }

    /// Whether `key` could act now, without charging it: Synapse's
    /// `update=False`, for limits charged only once the action succeeds or fails.
    pub fn peek<K: Hash + ?Sized>(&self, key: &K) -> Result<(), ServiceError> {
        self.decide(key, false)
    }

    /// How many keys the limit remembers now.
    pub fn tracked_keys(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.lock().empty_at.len())
    }

    fn decide<K: Hash + ?Sized>(&self, key: &K, charge: bool) -> Result<(), ServiceError> {
        let Some(buckets) = &self.0 else { return Ok(()) };
        let now = buckets.now();
        buckets
            .decide_at(buckets.hasher.hash_one(key), now, charge)
            .map_err(|wait| {
                if let Some(rejections) = self.1.get() {
                    rejections.inc();
                }
                ServiceError::limit_exceeded(wait.as_millis().max(1) as u64)
            })
    }
}

impl Buckets {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The decision for `key` at `now`: `Err(wait)` when its bucket is full.
    fn decide_at(&self, key: u64, now: u64, charge: bool) -> Result<(), Duration> {
        let mut table = self.lock();
        table.prune(now);
        let empty_at = table.get(key).unwrap_or(now).max(now);
        let filled = (empty_at - now).saturating_add(self.period);
        if filled > self.capacity {
            return Err(Duration::from_nanos(filled - self.capacity));
        }
        if charge {
            if table.get(key).is_none() && table.empty_at.len() >= self.max_keys {
                table.evict_emptiest();
            }
            table.set(key, empty_at.saturating_add(self.period));
        }
        Ok(())
    }
}

/// The limits the service applies, with Synapse's defaults (see `LimitSettings`).
pub struct RateLimits {
    /// Joins by a user (`rc_joins.local`).
    pub join: Limit,
    /// Invites a user sends, and rooms a user creates (`rc_invites.per_issuer`).
    pub invite: Limit,
    /// Invites into a room, by anyone (`rc_invites.per_room`).
    pub invite_per_room: Limit,
    /// Invites a user receives, from anyone (`rc_invites.per_user`).
    pub invite_per_invitee: Limit,
    /// Third-party invites a user sends (`rc_third_party_invite`), on top of the invite limits
    /// once an address resolves to a user.
    pub third_party_invite: Limit,
    /// Kicks, bans and unbans a user sends; Synapse charges them to `rc_message`, not to invites.
    pub moderation: Limit,
    /// Login requests from one client address (`rc_login.address`).
    pub login_address: Limit,
    /// Successful logins to one account (`rc_login.account`).
    pub login_account: Limit,
    /// Failed logins to one account (`rc_login.failed_attempts`).
    pub login_failed: Limit,
    /// Registrations from one client address (`rc_registration`).
    pub registration: Limit,
}

impl RateLimits {
    /// The configured limits; all off under `--no-rate-limits`.
    pub fn from_config(c: &LimitSettings) -> Self {
        let limit = |rate: f64, burst: u32| {
            if c.no_rate_limits {
                Limit::off()
            } else {
                Limit::with_max_keys(rate, burst, c.rate_limit_keys)
            }
        };
        RateLimits {
            join: limit(c.join_rate, c.join_burst),
            invite: limit(c.invite_rate, c.invite_burst),
            invite_per_room: limit(c.invite_room_rate, c.invite_room_burst),
            invite_per_invitee: limit(c.invite_invitee_rate, c.invite_invitee_burst),
            third_party_invite: limit(c.third_party_invite_rate, c.third_party_invite_burst),
            moderation: limit(c.moderation_rate, c.moderation_burst),
            login_address: limit(c.login_address_rate, c.login_address_burst),
            login_account: limit(c.login_account_rate, c.login_account_burst),
            login_failed: limit(c.login_failed_rate, c.login_failed_burst),
            registration: limit(c.registration_rate, c.registration_burst),
        }
    }

    /// Every limit, named, for tests and metrics.
    pub fn all(&self) -> [(&'static str, &Limit); 10] {
        [
            ("join", &self.join),
            ("invite", &self.invite),
            ("invite_per_room", &self.invite_per_room),
            ("invite_per_invitee", &self.invite_per_invitee),
            ("third_party_invite", &self.third_party_invite),
            ("moderation", &self.moderation),
            ("login_address", &self.login_address),
            ("login_account", &self.login_account),
            ("login_failed", &self.login_failed),
            ("registration", &self.registration),
        ]
    }

    /// Counts each limit's refusals in `metrics`, labelled with its name in [`RateLimits::all`].
    pub fn count_rejections(&self, metrics: &RateLimitMetrics) {
        for (name, limit) in self.all() {
            let _ = limit.1.set(metrics.counter(name));
        }
    }
}

impl Service {
    /// The limits in force, for tests that check what they remember.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    fn buckets(limit: &Limit) -> &Buckets {
        limit.0.as_ref().expect("an active limit")
    }

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
        assert_eq!(limit.tracked_keys(), 0);
    }

    #[test]
    fn the_bucket_leaks_at_the_rate_as_synapse_computes_it() {
        // 0.5/s, burst 2: two at once, then one every 2 s; the refusal says
        // exactly when (Synapse: time_start + (count - burst + 1) / rate).
        let limit = Limit::new(0.5, 2);
        let b = buckets(&limit);
        assert!(b.decide_at(7, 0, true).is_ok());
        assert!(b.decide_at(7, 0, true).is_ok());
        assert_eq!(b.decide_at(7, 0, true), Err(Duration::from_secs(2)));
        assert_eq!(b.decide_at(7, SECOND / 2, true), Err(Duration::from_millis(1500)));
        assert!(b.decide_at(7, 2 * SECOND, true).is_ok());
        assert!(b.decide_at(7, 2 * SECOND, true).is_err());
    }

    #[test]
    fn a_peek_never_charges() {
        let limit = Limit::new(0.5, 1);
        let b = buckets(&limit);
        for _ in 0..10 {
            assert!(b.decide_at(1, 0, false).is_ok());
        }
        assert!(b.decide_at(1, 0, true).is_ok());
        assert!(b.decide_at(1, 0, false).is_err(), "full after one charge");
        assert_eq!(limit.tracked_keys(), 1);
    }

    #[test]
    fn a_refused_action_is_not_charged() {
        let limit = Limit::new(1.0, 1);
        let b = buckets(&limit);
        assert!(b.decide_at(1, 0, true).is_ok());
        for _ in 0..100 {
            assert!(b.decide_at(1, SECOND / 2, true).is_err());
        }
        assert!(
            b.decide_at(1, SECOND, true).is_ok(),
            "refusals did not push the bucket further"
        );
    }

    #[test]
    fn drained_buckets_are_forgotten() {
        let limit = Limit::new(1.0, 5);
        let b = buckets(&limit);
        for key in 0..1000 {
            b.decide_at(key, 0, true).unwrap();
        }
        assert_eq!(limit.tracked_keys(), 1000);
        b.decide_at(5000, 2 * SECOND, false).unwrap();
        assert_eq!(limit.tracked_keys(), 0, "every bucket drained after 1 s");
    }

    #[test]
    fn very_many_distinct_keys_never_grow_the_table_past_its_bound() {
        // Synapse's login defaults: nothing drains for minutes, so only the bound holds memory.
        let limit = Limit::with_max_keys(0.003, 5, 1000);
        for i in 0..100_000u32 {
            limit.check(&format!("@user{i}:localhost")).unwrap();
            assert!(limit.tracked_keys() <= 1000);
        }
        assert_eq!(limit.tracked_keys(), 1000);
    }

    #[test]
    fn a_flood_of_fresh_keys_evicts_nearly_empty_buckets_before_charged_ones() {
        let limit = Limit::with_max_keys(0.001, 3, 100);
        let b = buckets(&limit);
        for _ in 0..3 {
            b.decide_at(u64::MAX, 0, true).unwrap();
        }
        assert!(b.decide_at(u64::MAX, 0, true).is_err());
        for key in 0..10_000 {
            b.decide_at(key, 1, true).unwrap();
        }
        assert!(
            b.decide_at(u64::MAX, 2, true).is_err(),
            "the charged key is still remembered as full"
        );
    }
}
