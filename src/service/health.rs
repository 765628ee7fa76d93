//! `GET /health`: whether the server can still do its job, for load
//! balancers and supervisors.

use super::error::{ServiceError, ServiceResult};
use super::Service;

impl Service {
    /// `Ok` while the database answers and writes can be made durable;
    /// otherwise 503 `M_UNKNOWN` (Matrix has no more specific code) saying what is wrong. Cheap: no write,
    /// one point read.
    pub fn health(&self) -> ServiceResult<()> {
        self.store
            .health()
            .map_err(|why| ServiceError::new(503, "M_UNKNOWN", format!("The server is unhealthy: {why}")))
    }

    /// Test only: makes the store's flusher thread panic, as a crash would.
    #[doc(hidden)]
    pub fn crash_flusher_for_test(&self) {
        self.store.crash_flusher();
    }
}
