//! Command-line and environment configuration of the server binary.

use clap::builder::TypedValueParser;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// matrix-membership: a Matrix room-membership homeserver on an embedded sled database.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "MATRIX_MEMBERSHIP_BIND", default_value = "127.0.0.1:8008")]
    pub bind: SocketAddr,

    /// Folder for the sled database (created if missing).
    #[arg(long, env = "MATRIX_MEMBERSHIP_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// The server name in user ids, room ids and aliases (`@alice:SERVER_NAME`).
    #[arg(long, env = "MATRIX_MEMBERSHIP_SERVER_NAME", default_value = "localhost")]
    pub server_name: String,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MATRIX_MEMBERSHIP_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,

    /// Joins allowed per second per user (0 turns join limits off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_JOIN_RATE", default_value_t = 0.1)]
    pub join_rate: f64,

    /// Joins a user may make in a burst before the rate applies.
    #[arg(long, env = "MATRIX_MEMBERSHIP_JOIN_BURST", default_value_t = 10)]
    pub join_burst: u32,

    /// Invites a user may send per second, and rooms a user may create (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_RATE", default_value_t = 0.3)]
    pub invite_rate: f64,

    /// Invites a user may send in a burst before the rate applies.
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_BURST", default_value_t = 10)]
    pub invite_burst: u32,

    /// Turns every rate limit off (for benchmarks).
    #[arg(long, env = "MATRIX_MEMBERSHIP_NO_RATE_LIMITS")]
    pub no_rate_limits: bool,

    /// The URL clients should use, as `/.well-known/matrix/client` tells them (default: `http://` + the bound address).
    #[arg(long, env = "MATRIX_MEMBERSHIP_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Address and port to serve Prometheus metrics on (`/_matrix/metrics`); off unless set.
    #[arg(long, env = "MATRIX_MEMBERSHIP_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Memory sled may use to cache database pages, in MiB. It bounds the
    /// largest part of the server's resident memory; sled's own default,
    /// 1 GiB, would let the cache grow far past the membership working set.
    #[arg(long, env = "MATRIX_MEMBERSHIP_CACHE_MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub cache_mib: u64,

    /// Test only: sleep this long before every group-commit flush, to widen
    /// the window between a write and its durability (crash tests).
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_flush_delay_ms: u64,

    // --- accounts and rate limits ---
    /// Whether anyone may register an account (`open`) or nobody (`closed`).
    /// Open on an address other than loopback logs a warning at start.
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION", value_enum, default_value_t = RegistrationMode::Open)]
    pub registration: RegistrationMode,

    /// Seconds a registration session (the user-interactive-auth `session`) stays usable.
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION_SESSION_TTL", default_value_t = 300)]
    pub registration_session_ttl: u64,

    /// Registration sessions open at once; opening one more forgets the oldest.
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION_SESSIONS", default_value_t = 10_000)]
    pub registration_sessions: usize,

    /// Threads hashing and checking passwords, at most one hash each at a time (0: one per core).
    #[arg(long, env = "MATRIX_MEMBERSHIP_PASSWORD_HASH_THREADS", default_value_t = 0)]
    pub password_hash_threads: usize,

    /// Password hashes that may wait for a thread; past that, requests get 429.
    #[arg(long, env = "MATRIX_MEMBERSHIP_PASSWORD_HASH_QUEUE", default_value_t = 64)]
    pub password_hash_queue: usize,

    /// Login requests allowed per second per client address (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_ADDRESS_RATE", default_value_t = 0.003)]
    pub login_address_rate: f64,

    /// Login requests a client address may make in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_ADDRESS_BURST", default_value_t = 5)]
    pub login_address_burst: u32,

    /// Successful logins allowed per second per account (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_ACCOUNT_RATE", default_value_t = 0.003)]
    pub login_account_rate: f64,

    /// Successful logins an account may have in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_ACCOUNT_BURST", default_value_t = 5)]
    pub login_account_burst: u32,

    /// Failed logins allowed per second per account (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_FAILED_RATE", default_value_t = 0.17)]
    pub login_failed_rate: f64,

    /// Failed logins an account may have in a burst; then even the right password waits.
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_FAILED_BURST", default_value_t = 3)]
    pub login_failed_burst: u32,

    /// Registrations allowed per second per client address (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION_RATE", default_value_t = 0.17)]
    pub registration_rate: f64,

    /// Registrations a client address may make in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION_BURST", default_value_t = 3)]
    pub registration_burst: u32,

    /// Invites allowed per second into one room, from anyone (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_ROOM_RATE", default_value_t = 0.3)]
    pub invite_room_rate: f64,

    /// Invites a room may receive in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_ROOM_BURST", default_value_t = 10)]
    pub invite_room_burst: u32,

    /// Invites allowed per second to one invitee, from anyone (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_INVITEE_RATE", default_value_t = 0.003)]
    pub invite_invitee_rate: f64,

    /// Invites a user may receive in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_INVITEE_BURST", default_value_t = 5)]
    pub invite_invitee_burst: u32,

    /// Kicks, bans and unbans allowed per second per sender (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_MODERATION_RATE", default_value_t = 0.2)]
    pub moderation_rate: f64,

    /// Kicks, bans and unbans a sender may make in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_MODERATION_BURST", default_value_t = 10)]
    pub moderation_burst: u32,

    /// Keys (users, addresses, rooms) each rate limit remembers at most; the emptiest bucket is forgotten first.
    #[arg(long, env = "MATRIX_MEMBERSHIP_RATE_LIMIT_KEYS", default_value_t = 100_000)]
    pub rate_limit_keys: usize,

    /// Test only: sleep this long before every password hash, so tests can fill the queue.
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_hash_delay_ms: u64,

    // --- HTTP edge limits ---
    /// Longest a client may take to send a request head (slowloris), counted
    /// from accept for a connection's first request and from the first byte
    /// for later ones; e.g. `10s`, `500ms`.
    #[arg(long, env = "MATRIX_MEMBERSHIP_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,

    /// Longest a client may take to send a request body once its head has arrived.
    #[arg(long, env = "MATRIX_MEMBERSHIP_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,

    /// A keep-alive connection with no request in flight for this long is
    /// closed; so is one whose client stops reading a response for this long.
    #[arg(long, env = "MATRIX_MEMBERSHIP_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Largest request head (request line and headers), in bytes.
    #[arg(long, env = "MATRIX_MEMBERSHIP_MAX_HEADER_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..=1024 * 1024).map(|v| v as usize))]
    pub max_header_bytes: usize,

    /// Most header fields in one request.
    #[arg(long, env = "MATRIX_MEMBERSHIP_MAX_HEADERS", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10_000).map(|v| v as usize))]
    pub max_headers: usize,

    /// Most connections served at once; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "MATRIX_MEMBERSHIP_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|v| v as usize))]
    pub max_connections: usize,
}

/// Who may register accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RegistrationMode {
    /// Anyone who can reach the server.
    Open,
    /// Nobody: `/register` answers 403.
    Closed,
}

/// `10s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s, 500ms or 2m"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        other => return Err(format!("unknown unit {other:?} in {text:?}; use ms, s or m")),
    };
    if !(seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{text:?} must be more than 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}
