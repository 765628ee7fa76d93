//! Password hashing and checking on a bounded pool of dedicated threads.
//!
//! Argon2 with its default parameters fills 19 MiB per hash, on purpose. Run
//! on the blocking pool, every concurrent login got its own 19 MiB on one of
//! up to 512 threads, and glibc kept what its per-thread arenas grew to: 200
//! parallel wrong-password logins left the server at 3.7 GiB. Here a fixed
//! number of threads (one per core by default, so hashing never has more
//! parallelism than there is CPU for it) each own one argon2 work area,
//! allocated on first use and reused for every hash after, so the memory
//! hashing takes is threads × 19 MiB whatever the load. Jobs wait in a
//! bounded queue; when it is full the request is answered 429 at once
//! instead of piling up. Dedicated threads, rather than a semaphore in front
//! of `spawn_blocking`, also keep hashing off the blocking pool the store's
//! writes run on.

use super::error::{ServiceError, ServiceResult};
use crate::config::Settings;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Checked for logins to accounts that do not exist or have no password, so
/// they cost one hash too and queue like any other: an argon2id hash of
/// nothing anyone can type, with our parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// What a hash took before any was measured, for the first 429's retry time.
const FIRST_GUESS: Duration = Duration::from_millis(50);

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// The pool; dropping it ends its threads once their queue is empty.
pub struct PasswordPool {
    jobs: SyncSender<Job>,
    threads: usize,
    queue: usize,
    stats: Arc<Stats>,
}

#[derive(Default)]
struct Stats {
    running: AtomicUsize,
    peak: AtomicUsize,
    last_hash_micros: AtomicU64,
}

/// One thread's state: its argon2 work area.
struct Worker {
    memory: Vec<Block>,
    /// Test only: a pause before each hash.
    delay: Duration,
    stats: Arc<Stats>,
}

impl PasswordPool {
    /// `threads` workers (0: one per core) and room for `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize, test_delay: Duration) -> Self {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (jobs, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let stats = Arc::new(Stats::default());
        for i in 0..threads {
            let worker = Worker {
                memory: Vec::new(),
                delay: test_delay,
                stats: stats.clone(),
            };
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || work(&receiver, worker))
                .expect("starting a password hashing thread");
        }
        PasswordPool {
            jobs,
            threads,
            queue,
            stats,
        }
    }

    /// The pool `--password-hash-threads` and `--password-hash-queue` ask for.
    pub fn from_config(settings: &Settings) -> Self {
        Self::new(
            settings.limits.password_hash_threads,
            settings.limits.password_hash_queue,
            settings.test_hooks.hash_delay,
        )
    }

    /// A PHC-format argon2id hash of `password`.
    pub async fn hash(&self, password: String) -> ServiceResult<String> {
        self.run(move |w| w.hash(password.as_bytes()))
            .await?
            .map_err(ServiceError::internal)
    }

    /// Whether `password` matches `stored`; with no stored hash it checks
    /// against a dummy one, so a missing account costs what a wrong password does.
    pub async fn verify(&self, password: String, stored: Option<String>) -> ServiceResult<bool> {
        self.run(move |w| match stored {
            Some(stored) => w.verify(password.as_bytes(), &stored),
            None => {
                w.verify(password.as_bytes(), DUMMY_HASH);
                false
            }
        })
        .await
    }

    /// The most hashes that ever ran at once (tests and metrics).
    pub fn peak_concurrency(&self) -> usize {
        self.stats.peak.load(Ordering::Relaxed)
    }

    /// The number of hashing threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut Worker) -> T + Send + 'static) -> ServiceResult<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |worker| {
            // The client went away while this waited: nobody needs the answer.
            if reply.is_closed() {
                return;
            }
            let _ = reply.send(f(worker));
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(self.full()),
            Err(TrySendError::Disconnected(_)) => return Err(ServiceError::internal("the password threads stopped")),
        }
        answer
            .await
            .map_err(|_| ServiceError::internal("a password thread dropped its job"))
    }

    /// 429 with the time the queue takes to drain at the last measured speed.
    fn full(&self) -> ServiceError {
        let per_hash = match self.stats.last_hash_micros.load(Ordering::Relaxed) {
            0 => FIRST_GUESS,
            micros => Duration::from_micros(micros),
        };
        let rounds = (self.queue / self.threads + 1) as u32;
        let wait = (per_hash * rounds).clamp(Duration::from_millis(1), Duration::from_secs(60));
        ServiceError {
            message: format!(
                "{} password checks are already waiting for the {} hashing threads; try again later",
                self.queue, self.threads
            ),
            ..ServiceError::limit_exceeded(wait.as_millis() as u64)
        }
    }
}

impl super::Service {
    /// The password pool, for tests that check its bound.
    pub fn password_pool(&self) -> &PasswordPool {
        &self.passwords
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, mut worker: Worker) {
    loop {
        let job = jobs.lock().unwrap_or_else(|p| p.into_inner()).recv();
        match job {
            Ok(job) => job(&mut worker),
            Err(_) => return,
        }
    }
}

impl Worker {
    fn hash(&mut self, password: &[u8]) -> Result<String, argon2::password_hash::Error> {
        let params = Params::default();
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt.as_salt().decode_b64(&mut salt_bytes)?;
        let output = self.argon2(Algorithm::Argon2id, Version::V0x13, params.clone(), |argon, memory| {
            Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
                Ok(argon.hash_password_into_with_memory(password, raw_salt, out, memory)?)
            })
        })?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(hash.to_string())
    }

    fn verify(&mut self, password: &[u8], stored: &str) -> bool {
        self.try_verify(password, stored).unwrap_or(false)
    }

    fn try_verify(&mut self, password: &[u8], stored: &str) -> Result<bool, argon2::password_hash::Error> {
        let hash = PasswordHash::new(stored)?;
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
            return Ok(false);
        };
        let params = Params::try_from(&hash)?;
        let algorithm = Algorithm::try_from(hash.algorithm)?;
        let version = hash.version.map(Version::try_from).transpose()?.unwrap_or_default();
        if params.m_cost() > Params::DEFAULT_M_COST {
            // Our hashes never ask for more; checking this one would break the memory bound.
            tracing::warn!(
                m_cost = params.m_cost(),
                "refusing to check a password hash that needs more memory than ours"
            );
            return Ok(false);
        }
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt.decode_b64(&mut salt_bytes)?;
        let output = self.argon2(algorithm, version, params, |argon, memory| {
            Output::init_with(expected.len(), |out| {
                Ok(argon.hash_password_into_with_memory(password, raw_salt, out, memory)?)
            })
        })?;
        // Output's equality is constant-time.
        Ok(output == expected)
    }

    /// Runs one argon2 computation in this thread's work area, counted in the stats.
    fn argon2<T>(
        &mut self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        f: impl FnOnce(&Argon2<'_>, &mut [Block]) -> T,
    ) -> T {
        let blocks = params.block_count();
        if self.memory.len() < blocks {
            self.memory.resize(blocks, Block::default());
        }
        let argon = Argon2::new(algorithm, version, params);
        let running = self.stats.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.peak.fetch_max(running, Ordering::SeqCst);
        let started = Instant::now();
        if !self.delay.is_zero() {
            std::thread::sleep(self.delay);
        }
        let result = f(&argon, &mut self.memory[..blocks]);
        self.stats
            .last_hash_micros
            .store(started.elapsed().as_micros().max(1) as u64, Ordering::Relaxed);
        self.stats.running.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;

    #[tokio::test]
    async fn a_hash_verifies_here_and_with_the_argon2_crate_and_the_wrong_password_does_not() {
        let pool = PasswordPool::new(1, 4, Duration::ZERO);
        let stored = pool.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(pool.verify("correct horse".into(), Some(stored.clone())).await.unwrap());
        assert!(!pool.verify("wrong".into(), Some(stored.clone())).await.unwrap());
        let parsed = PasswordHash::new(&stored).unwrap();
        Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .expect("the standard verifier accepts our hash");
    }

    #[tokio::test]
    async fn hashes_made_by_the_argon2_crate_verify_and_garbage_does_not() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::default().hash_password(b"pw", &salt).unwrap().to_string();
        let pool = PasswordPool::new(1, 4, Duration::ZERO);
        assert!(pool.verify("pw".into(), Some(stored)).await.unwrap());
        assert!(!pool.verify("pw".into(), Some("not a hash".into())).await.unwrap());
        assert!(!pool.verify("pw".into(), Some(String::new())).await.unwrap());
    }

    #[tokio::test]
    async fn the_dummy_hash_is_checked_with_our_parameters_and_matches_nothing() {
        let dummy = Params::try_from(&PasswordHash::new(DUMMY_HASH).unwrap()).unwrap();
        let ours = Params::default();
        assert_eq!(
            (dummy.m_cost(), dummy.t_cost(), dummy.p_cost()),
            (ours.m_cost(), ours.t_cost(), ours.p_cost())
        );
        let pool = PasswordPool::new(1, 4, Duration::ZERO);
        assert!(!pool.verify(String::new(), None).await.unwrap());
        assert_eq!(pool.peak_concurrency(), 1, "the dummy check ran a real hash");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_there_are_threads() {
        let pool = Arc::new(PasswordPool::new(2, 64, Duration::from_millis(20)));
        let checks = (0..12).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.verify("x".into(), None).await })
        });
        for check in futures::future::join_all(checks).await {
            assert!(!check.unwrap().unwrap());
        }
        assert_eq!(pool.peak_concurrency(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_full_queue_answers_429_at_once_with_a_retry_time() {
        let pool = Arc::new(PasswordPool::new(1, 1, Duration::from_millis(500)));
        let checks: Vec<_> = (0..6)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.verify("x".into(), None).await })
            })
            .collect();
        let mut refused = 0;
        for check in futures::future::join_all(checks).await {
            if let Err(e) = check.unwrap() {
                assert_eq!((e.status, e.errcode), (429, "M_LIMIT_EXCEEDED"));
                assert!(e.retry_after_ms.unwrap() >= 1);
                refused += 1;
            }
        }
        assert!(refused >= 4, "one running and one queued at most, {refused} refused");
    }
}
