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

    /// Invites (and other membership changes by a sender) allowed per second per user (0 turns them off).
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

    /// Test only: sleep this long before every group-commit flush, to widen
    /// the window between a write and its durability (crash tests).
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_flush_delay_ms: u64,

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
