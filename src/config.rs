//! Command-line and environment configuration of the server binary.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

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
}
