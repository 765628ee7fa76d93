//! Connections: the pool the store's queries use, dedicated connections
//! (position allocation, listening), and the migrations run at open.

use super::rows::{db, describe};
use crate::store::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::StreamExt;
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, Client, NoTls};

mod embedded {
    refinery::embed_migrations!("src/store/pg/migrations");
}

/// Taken around migrations, so instances starting at once migrate one at a time.
const MIGRATION_LOCK: i64 = 0x6d6d_6d69_6772_6174; // "mmmigrat"

/// The newest schema version this build knows (its last migration).
pub fn schema_version() -> i64 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| i64::from(m.version()))
        .max()
        .unwrap_or(0)
}

/// A `postgres://` URL (or key=value string) as connection settings. Every
/// connection commits synchronously whatever the server's default: a 2xx
/// follows a commit on disk.
pub fn config(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Postgres(format!("the database URL is not valid: {e}")))?;
    config.options("-c synchronous_commit=on");
    if config.get_application_name().is_none() {
        config.application_name("matrix-membership");
    }
    Ok(config)
}

/// The pool queries take connections from.
pub fn pool(config: tokio_postgres::Config, size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| StoreError::Postgres(format!("cannot build the connection pool: {e}")))
}

/// A connection of its own, and the task that drives it; with `wake`, every
/// notification it receives wakes that.
pub struct Connected {
    pub client: Client,
    pub driver: tokio::task::JoinHandle<()>,
}

pub async fn dedicated(config: &tokio_postgres::Config, wake: Option<Arc<Notify>>) -> Result<Connected, StoreError> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(db)?;
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if let Some(wake) = &wake {
                        wake.notify_one();
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %describe(&e), "a database connection failed");
                    break;
                }
            }
        }
    });
    Ok(Connected { client, driver })
}

/// Brings the schema up to date (refinery records each version applied in
/// `refinery_schema_history`), one instance at a time.
pub async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    let result = embedded::migrations::runner().run_async(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db);
    result.map_err(|e| StoreError::Postgres(format!("migrating the database failed: {e}")))?;
    unlocked.map(|_| ())
}

/// Runs `work` to completion on a runtime of its own, on a thread of its
/// own: opening the store is synchronous, and may be called from inside a
/// runtime (which must not be blocked on from within).
pub fn on_own_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot start a runtime to open the database: {e}")))?
            .block_on(work)
    })
    .join()
    .map_err(|_| StoreError::Internal("opening the database panicked".into()))?
}
