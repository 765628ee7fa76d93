//! The server's settings as the library takes them: plain data in sections,
//! the same sections as the config file's. `args.rs` and `file.rs` produce
//! them; nothing below `main` knows where a value came from.

use super::values;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the server is configured with. Each field is named for the
/// flag that sets it and documented there (`args.rs`, `--help`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Listening, naming and the HTTP edge's bounds.
    pub server: ServerSettings,
    /// The sled database.
    pub database: DatabaseSettings,
    /// Rate limits and the password-hashing pool.
    pub limits: LimitSettings,
    /// Who may register, and registration sessions.
    pub registration: RegistrationSettings,
    /// How and what the server logs.
    pub logging: LoggingSettings,
    /// Hooks for crash and queue tests; only hidden flags set them, never the file.
    #[serde(skip)]
    pub test_hooks: TestHooks,
}

/// `[server]`: where the server listens, its name, and what one client may make it hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub server_name: String,
    /// `None`: `http://` + the bound address.
    pub public_base_url: Option<String>,
    /// `None`: no metrics listener.
    pub metrics_bind: Option<SocketAddr>,
    /// Whether identity servers at non-public addresses may be contacted.
    pub identity_server_allow_private: bool,
    pub body_limit: usize,
    #[serde(with = "values::duration_text")]
    pub header_timeout: Duration,
    #[serde(with = "values::duration_text")]
    pub body_timeout: Duration,
    #[serde(with = "values::duration_text")]
    pub idle_timeout: Duration,
    #[serde(deserialize_with = "values::max_header_bytes")]
    pub max_header_bytes: usize,
    #[serde(deserialize_with = "values::max_headers")]
    pub max_headers: usize,
    #[serde(deserialize_with = "values::max_connections")]
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8008)),
            server_name: "localhost".into(),
            public_base_url: None,
            metrics_bind: None,
            identity_server_allow_private: false,
            body_limit: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_connections: 1024,
        }
    }
}

/// `[database]`: where the data lives and how much memory its cache may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `Some`: PostgreSQL at this URL; `None`: sled in `data_dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub data_dir: PathBuf,
    #[serde(deserialize_with = "values::cache_mib")]
    pub cache_mib: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            data_dir: PathBuf::from("./data"),
            cache_mib: crate::store::sled::DEFAULT_CACHE_BYTES >> 20,
        }
    }
}

/// `[limits]`: every rate limit (events per second and burst), and the
/// password pool. The defaults are Synapse's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    pub no_rate_limits: bool,
    pub rate_limit_keys: usize,
    #[serde(deserialize_with = "values::rate")]
    pub join_rate: f64,
    pub join_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub invite_rate: f64,
    pub invite_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub invite_room_rate: f64,
    pub invite_room_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub invite_invitee_rate: f64,
    pub invite_invitee_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub third_party_invite_rate: f64,
    pub third_party_invite_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub moderation_rate: f64,
    pub moderation_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub login_address_rate: f64,
    pub login_address_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub login_account_rate: f64,
    pub login_account_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub login_failed_rate: f64,
    pub login_failed_burst: u32,
    #[serde(deserialize_with = "values::rate")]
    pub registration_rate: f64,
    pub registration_burst: u32,
    pub password_hash_threads: usize,
    pub password_hash_queue: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            no_rate_limits: false,
            rate_limit_keys: 100_000,
            join_rate: 0.1,
            join_burst: 10,
            invite_rate: 0.3,
            invite_burst: 10,
            invite_room_rate: 0.3,
            invite_room_burst: 10,
            invite_invitee_rate: 0.003,
            invite_invitee_burst: 5,
            // Synapse's rc_third_party_invite defaults.
            third_party_invite_rate: 0.2,
            third_party_invite_burst: 10,
            moderation_rate: 0.2,
            moderation_burst: 10,
            login_address_rate: 0.003,
            login_address_burst: 5,
            login_account_rate: 0.003,
            login_account_burst: 5,
            login_failed_rate: 0.17,
            login_failed_burst: 3,
            registration_rate: 0.17,
            registration_burst: 3,
            password_hash_threads: 0,
            password_hash_queue: 64,
        }
    }
}

/// `[registration]`: whether anyone may register, and the sessions of the
/// user-interactive registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationSettings {
    pub mode: RegistrationMode,
    /// Seconds a session stays usable.
    pub session_ttl: u64,
    pub sessions: usize,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        RegistrationSettings {
            mode: RegistrationMode::Open,
            session_ttl: 300,
            sessions: 10_000,
        }
    }
}

/// `[logging]`: the format of the lines and which ones are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSettings {
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `warn,matrix_membership=debug`, …
    #[serde(deserialize_with = "values::log_filter")]
    pub filter: String,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Test-only pauses, set by hidden flags.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestHooks {
    /// Sleep before every group-commit flush, to widen the window between a
    /// write and its durability (crash tests).
    pub flush_delay: Duration,
    /// Sleep before every password hash, so tests can fill the queue.
    pub hash_delay: Duration,
}

/// Who may register accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone who can reach the server.
    Open,
    /// Nobody: `/register` answers 403.
    Closed,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}
