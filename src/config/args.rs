//! The settings flags (each with its environment variable), and how they
//! lay over the config file: a flag or variable that is given wins, one
//! that is not leaves the file's value, or the default.

use super::file;
use super::settings::{LogFormat, RegistrationMode, Settings};
use super::values::{
    parse_cache_mib, parse_duration, parse_log_filter, parse_max_connections, parse_max_header_bytes,
    parse_max_headers, parse_rate,
};
use super::ConfigError;
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// matrix-membership: a Matrix room-membership homeserver on an embedded sled database.
///
/// Every flag but `--config` is optional and mirrors a key of the config
/// file; the defaults shown apply when neither a flag, its variable nor the
/// file sets one.
#[derive(Debug, Clone, Default, Parser)]
#[command(version, about)]
pub struct SettingsArgs {
    /// A TOML config file; `matrix-membership config example` prints one with every key.
    #[arg(long, env = "MATRIX_MEMBERSHIP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    // --- [server] ---
    /// Address and port to listen on.
    #[arg(long, env = "MATRIX_MEMBERSHIP_BIND")]
    pub bind: Option<SocketAddr>,

    /// The server name in user ids, room ids and aliases (`@alice:SERVER_NAME`).
    #[arg(long, env = "MATRIX_MEMBERSHIP_SERVER_NAME")]
    pub server_name: Option<String>,

    /// The URL clients should use, as `/.well-known/matrix/client` tells them (unset: `http://` + the bound address).
    #[arg(long, env = "MATRIX_MEMBERSHIP_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Address and port to serve Prometheus metrics on (`/_matrix/metrics`); off unless set.
    #[arg(long, env = "MATRIX_MEMBERSHIP_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,

    /// Lets third-party invites reach identity servers at loopback, private
    /// and other non-public addresses (off: a client could otherwise make
    /// this server send requests into its own network).
    #[arg(long, env = "MATRIX_MEMBERSHIP_IDENTITY_SERVER_ALLOW_PRIVATE", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub identity_server_allow_private: Option<bool>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MATRIX_MEMBERSHIP_BODY_LIMIT")]
    pub body_limit: Option<usize>,

    /// Longest a client may take to send a request head (slowloris), counted
    /// from accept for a connection's first request and from the first byte
    /// for later ones; e.g. `10s`, `500ms`.
    #[arg(long, env = "MATRIX_MEMBERSHIP_HEADER_TIMEOUT", value_parser = parse_duration)]
    pub header_timeout: Option<Duration>,

    /// Longest a client may take to send a request body once its head has arrived.
    #[arg(long, env = "MATRIX_MEMBERSHIP_BODY_TIMEOUT", value_parser = parse_duration)]
    pub body_timeout: Option<Duration>,

    /// A keep-alive connection with no request in flight for this long is
    /// closed; so is one whose client stops reading a response for this long.
    #[arg(long, env = "MATRIX_MEMBERSHIP_IDLE_TIMEOUT", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,

    /// Largest request head (request line and headers), in bytes (1024 to 1 MiB).
    #[arg(long, env = "MATRIX_MEMBERSHIP_MAX_HEADER_BYTES", value_parser = parse_max_header_bytes)]
    pub max_header_bytes: Option<usize>,

    /// Most header fields in one request (1 to 10,000).
    #[arg(long, env = "MATRIX_MEMBERSHIP_MAX_HEADERS", value_parser = parse_max_headers)]
    pub max_headers: Option<usize>,

    /// Most connections served at once; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "MATRIX_MEMBERSHIP_MAX_CONNECTIONS", value_parser = parse_max_connections)]
    pub max_connections: Option<usize>,

    // --- [database] ---
    /// A PostgreSQL database to use instead of sled (`postgres://user:pass@host:port/db`,
    /// or `postgres:///db?host=/run/postgresql`); several instances may share one.
    #[arg(long, env = "MATRIX_MEMBERSHIP_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Folder for the sled database (created if missing).
    #[arg(long, env = "MATRIX_MEMBERSHIP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Memory sled may use to cache database pages, in MiB (1 to 65536). It
    /// bounds the largest part of the server's resident memory; sled's own
    /// default, 1 GiB, would let the cache grow far past the membership working set.
    #[arg(long, env = "MATRIX_MEMBERSHIP_CACHE_MIB", value_parser = parse_cache_mib)]
    pub cache_mib: Option<u64>,

    // --- [limits] ---
    /// Turns every rate limit off (for benchmarks); `--no-rate-limits=false` turns them back on over the file.
    #[arg(long, env = "MATRIX_MEMBERSHIP_NO_RATE_LIMITS", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_rate_limits: Option<bool>,

    /// Keys (users, addresses, rooms) each rate limit remembers at most; the emptiest bucket is forgotten first.
    #[arg(long, env = "MATRIX_MEMBERSHIP_RATE_LIMIT_KEYS")]
    pub rate_limit_keys: Option<usize>,

    /// Joins allowed per second per user (0 turns join limits off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_JOIN_RATE", value_parser = parse_rate)]
    pub join_rate: Option<f64>,

    /// Joins a user may make in a burst before the rate applies.
    #[arg(long, env = "MATRIX_MEMBERSHIP_JOIN_BURST")]
    pub join_burst: Option<u32>,

    /// Invites a user may send per second, and rooms a user may create (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_RATE", value_parser = parse_rate)]
    pub invite_rate: Option<f64>,

    /// Invites a user may send in a burst before the rate applies.
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_BURST")]
    pub invite_burst: Option<u32>,

    /// Invites allowed per second into one room, from anyone (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_ROOM_RATE", value_parser = parse_rate)]
    pub invite_room_rate: Option<f64>,

    /// Invites a room may receive in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_ROOM_BURST")]
    pub invite_room_burst: Option<u32>,

    /// Invites allowed per second to one invitee, from anyone (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_INVITEE_RATE", value_parser = parse_rate)]
    pub invite_invitee_rate: Option<f64>,

    /// Invites a user may receive in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_INVITE_INVITEE_BURST")]
    pub invite_invitee_burst: Option<u32>,

    /// Third-party (email) invites a user may send per second (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_THIRD_PARTY_INVITE_RATE", value_parser = parse_rate)]
    pub third_party_invite_rate: Option<f64>,

    /// Third-party invites a user may send in a burst before the rate applies.
    #[arg(long, env = "MATRIX_MEMBERSHIP_THIRD_PARTY_INVITE_BURST")]
    pub third_party_invite_burst: Option<u32>,

    /// Kicks, bans and unbans allowed per second per sender (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_MODERATION_RATE", value_parser = parse_rate)]
    pub moderation_rate: Option<f64>,

    /// Kicks, bans and unbans a sender may make in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_MODERATION_BURST")]
    pub moderation_burst: Option<u32>,

    /// Login requests allowed per second per client address (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_ADDRESS_RATE", value_parser = parse_rate)]
    pub login_address_rate: Option<f64>,

    /// Login requests a client address may make in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_ADDRESS_BURST")]
    pub login_address_burst: Option<u32>,

    /// Successful logins allowed per second per account (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_ACCOUNT_RATE", value_parser = parse_rate)]
    pub login_account_rate: Option<f64>,

    /// Successful logins an account may have in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_ACCOUNT_BURST")]
    pub login_account_burst: Option<u32>,

    /// Failed logins allowed per second per account (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_FAILED_RATE", value_parser = parse_rate)]
    pub login_failed_rate: Option<f64>,

    /// Failed logins an account may have in a burst; then even the right password waits.
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOGIN_FAILED_BURST")]
    pub login_failed_burst: Option<u32>,

    /// Registrations allowed per second per client address (0 turns the limit off).
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION_RATE", value_parser = parse_rate)]
    pub registration_rate: Option<f64>,

    /// Registrations a client address may make in a burst.
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION_BURST")]
    pub registration_burst: Option<u32>,

    /// Threads hashing and checking passwords, at most one hash each at a time (0: one per core).
    #[arg(long, env = "MATRIX_MEMBERSHIP_PASSWORD_HASH_THREADS")]
    pub password_hash_threads: Option<usize>,

    /// Password hashes that may wait for a thread; past that, requests get 429.
    #[arg(long, env = "MATRIX_MEMBERSHIP_PASSWORD_HASH_QUEUE")]
    pub password_hash_queue: Option<usize>,

    // --- [registration] ---
    /// Whether anyone may register an account (`open`) or nobody (`closed`).
    /// Open on an address other than loopback logs a warning at start.
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION", value_enum)]
    pub registration: Option<RegistrationMode>,

    /// Seconds a registration session (the user-interactive-auth `session`) stays usable.
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION_SESSION_TTL")]
    pub registration_session_ttl: Option<u64>,

    /// Registration sessions open at once; opening one more forgets the oldest.
    #[arg(long, env = "MATRIX_MEMBERSHIP_REGISTRATION_SESSIONS")]
    pub registration_sessions: Option<usize>,

    // --- [logging] ---
    /// How log lines are written to stderr: `text` for people, `json` (one object a line) for machines.
    #[arg(long, env = "MATRIX_MEMBERSHIP_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Which log lines are written: a `tracing` filter such as `info` or `warn,matrix_membership=debug`.
    #[arg(long, env = "RUST_LOG", value_parser = parse_log_filter)]
    pub log_filter: Option<String>,

    // --- test hooks, never in the file ---
    /// Test only: sleep this long before every group-commit flush, to widen
    /// the window between a write and its durability (crash tests).
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_flush_delay_ms: u64,

    /// Test only: sleep this long before every password hash, so tests can fill the queue.
    #[arg(long, hide = true, default_value_t = 0)]
    pub test_hash_delay_ms: u64,
}

/// One table says which key of the file each flag mirrors; it makes both the
/// list tests and the example read and the code that lays flags over the file.
macro_rules! flags_and_keys {
    ($($section:ident . $key:ident <= $flag:ident,)*) => {
        /// Every settings flag (its clap id) and the file key it mirrors, `section.key`, in file order.
        pub const FLAG_KEYS: &[(&str, &str)] = &[
            $((stringify!($flag), concat!(stringify!($section), ".", stringify!($key))),)*
        ];

        impl SettingsArgs {
            /// Sets every field that was given on the command line or in the environment.
            fn lay_over(&self, settings: &mut Settings) {
                $(if let Some(value) = &self.$flag {
                    settings.$section.$key = value.clone().into();
                })*
            }
        }
    };
}

flags_and_keys! {
    server.bind <= bind,
    server.server_name <= server_name,
    server.public_base_url <= public_base_url,
    server.metrics_bind <= metrics_bind,
    server.identity_server_allow_private <= identity_server_allow_private,
    server.body_limit <= body_limit,
    server.header_timeout <= header_timeout,
    server.body_timeout <= body_timeout,
    server.idle_timeout <= idle_timeout,
    server.max_header_bytes <= max_header_bytes,
    server.max_headers <= max_headers,
    server.max_connections <= max_connections,
    database.url <= database_url,
    database.data_dir <= data_dir,
    database.cache_mib <= cache_mib,
    limits.no_rate_limits <= no_rate_limits,
    limits.rate_limit_keys <= rate_limit_keys,
    limits.join_rate <= join_rate,
    limits.join_burst <= join_burst,
    limits.invite_rate <= invite_rate,
    limits.invite_burst <= invite_burst,
    limits.invite_room_rate <= invite_room_rate,
    limits.invite_room_burst <= invite_room_burst,
    limits.invite_invitee_rate <= invite_invitee_rate,
    limits.invite_invitee_burst <= invite_invitee_burst,
    limits.third_party_invite_rate <= third_party_invite_rate,
    limits.third_party_invite_burst <= third_party_invite_burst,
    limits.moderation_rate <= moderation_rate,
    limits.moderation_burst <= moderation_burst,
    limits.login_address_rate <= login_address_rate,
    limits.login_address_burst <= login_address_burst,
    limits.login_account_rate <= login_account_rate,
    limits.login_account_burst <= login_account_burst,
    limits.login_failed_rate <= login_failed_rate,
    limits.login_failed_burst <= login_failed_burst,
    limits.registration_rate <= registration_rate,
    limits.registration_burst <= registration_burst,
    limits.password_hash_threads <= password_hash_threads,
    limits.password_hash_queue <= password_hash_queue,
    registration.mode <= registration,
    registration.session_ttl <= registration_session_ttl,
    registration.sessions <= registration_sessions,
    logging.format <= log_format,
    logging.filter <= log_filter,
}

/// The flags that mirror no key: the file's own name, and the hidden test hooks.
pub const FLAGS_WITHOUT_KEYS: &[&str] = &["config", "test_flush_delay_ms", "test_hash_delay_ms"];

impl SettingsArgs {
    /// The settings: defaults, then the file `--config` names, then the
    /// environment and flags clap read into `self`.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let mut settings = match &self.config {
            Some(path) => file::read(path)?,
            None => Settings::default(),
        };
        self.lay_over(&mut settings);
        settings.test_hooks.flush_delay = Duration::from_millis(self.test_flush_delay_ms);
        settings.test_hooks.hash_delay = Duration::from_millis(self.test_hash_delay_ms);
        Ok(settings)
    }
}

/// The settings from an argument list such as `["matrix-membership", "--bind", …]`
/// (the environment applies too); for tests and tools. Panics on a bad flag as
/// clap's `parse_from` does.
pub fn settings_from_args<I, T>(args: I) -> Result<Settings, ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    SettingsArgs::parse_from(args).settings()
}
