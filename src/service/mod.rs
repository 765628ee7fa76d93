//! The `Api` implementation and the domain calls behind it.
//!
//! Handlers in `api.rs` are thin: they parse identifiers, call one domain
//! function here, and turn its result into the generated response enum.
//! Decisions about membership live in `crate::membership::rules`.

pub mod account_data;
pub mod accounts;
pub mod admin;
pub mod api;
pub mod backup;
pub mod client_config;
pub mod directory;
pub mod error;
pub mod forget;
pub mod health;
pub mod membership;
pub mod messages;
pub mod password;
pub mod ratelimit;
pub mod registration;
pub mod rooms;
pub mod state;
pub mod sync;
pub mod third_party;
pub mod third_party_identity;
pub mod third_party_openid;
pub mod uia;

use crate::config::Settings;
use crate::ids::UserId;
use crate::metrics::Metrics;
use crate::store::sled::{SledOptions, SledStore};
use crate::store::{PgStore, Store, StoreError};
use error::{ServiceError, ServiceResult};
use password::PasswordPool;
use ratelimit::RateLimits;
use registration::Registrar;
use std::sync::Arc;

/// The homeserver's state: store, server name and limits.
pub struct Service {
    store: Arc<dyn Store>,
    server_name: String,
    limits: Arc<RateLimits>,
    /// Whether registration is open, and its user-interactive-auth sessions.
    registrar: Registrar,
    /// Where passwords are hashed and checked, a bounded number at a time.
    passwords: PasswordPool,
    /// Set at shutdown: waiting syncs answer at once instead of holding the server up.
    closing: std::sync::atomic::AtomicBool,
    /// What `/.well-known/matrix/client` hands out as `base_url`.
    public_base_url: String,
    /// The process's metrics; the edge and the metrics listener read them too.
    metrics: Arc<Metrics>,
    /// Talks to identity servers for third-party invites.
    identity: third_party_identity::IdentityClient,
    /// The OpenID tokens handed out (in memory; see `third_party_openid`).
    openid: third_party_openid::OpenIdTokens,
}

impl Service {
    /// Opens the configured store: PostgreSQL with `database.url`, else
    /// sled in the data folder. Nothing above the store knows which.
    pub fn open(settings: &Settings) -> Result<Self, StoreError> {
        let metrics = Arc::new(Metrics::new());
        let store: Arc<dyn Store> = match &settings.database.url {
            Some(url) => Arc::new(PgStore::open(url, crate::store::pg::DEFAULT_POOL_SIZE)?),
            None => Arc::new(SledStore::open_with(
                &settings.database.data_dir,
                SledOptions {
                    flush_delay: settings.test_hooks.flush_delay,
                    cache_bytes: settings.database.cache_mib * 1024 * 1024,
                    flush_observer: Some(metrics.commit.clone()),
                },
            )?),
        };
        metrics.watch_store(Arc::downgrade(&store));
        let limits = RateLimits::from_config(&settings.limits);
        limits.count_rejections(&metrics.rate_limits);
        let server = &settings.server;
        Ok(Service {
            store,
            server_name: server.server_name.clone(),
            limits: Arc::new(limits),
            registrar: Registrar::from_config(settings),
            passwords: PasswordPool::from_config(settings),
            closing: std::sync::atomic::AtomicBool::new(false),
            public_base_url: server
                .public_base_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", server.bind)),
            metrics,
            identity: third_party_identity::IdentityClient::new(server.identity_server_allow_private),
            openid: Default::default(),
        })
    }

    /// The process's metrics, for the edge and the metrics listener.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The server name in our identifiers.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The underlying store, for tools and tests that inspect what was written.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The stream position up to which everything is durable (and shown).
    pub fn stream_position(&self) -> u64 {
        self.store.durable_pos()
    }

    /// Flushes the store; used at shutdown.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.store.flush()
    }

    /// A user on this server, or a clear error for one elsewhere (no federation).
    fn require_local(&self, user: &UserId, what: &str) -> ServiceResult<()> {
        if user.server_name() == self.server_name {
            Ok(())
        } else {
            Err(ServiceError::forbidden(format!(
                "{what} {user} is on server {}; this server does not support federation",
                user.server_name()
            )))
        }
    }
}

/// The object inside a JSON value; anything else (which stored content never
/// is) becomes an empty object rather than an error.
pub fn json_object(value: serde_json::Value) -> crate::generated::models::JsonObject {
    match value {
        serde_json::Value::Object(map) => map,
        _ => Default::default(),
    }
}

/// A random string of `len` characters from `A-Za-z0-9`.
pub fn random_string(len: usize) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
