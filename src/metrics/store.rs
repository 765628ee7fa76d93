//! What is read from the store when Prometheus scrapes: waiting `/sync`
//! requests and the database's size on disk. Reading them then costs the
//! request path nothing.

use crate::store::Store;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::IntGauge;
use std::sync::{Arc, Weak};

/// The gauges, set from the store at each collection.
#[derive(Clone)]
pub struct StoreGauges {
    store: Weak<dyn Store>,
    waiting_syncs: IntGauge,
    database_bytes: IntGauge,
    descs: Arc<Vec<Desc>>,
}

impl StoreGauges {
    pub(super) fn new(store: Weak<dyn Store>) -> Self {
        // Named without the prefix: the registry adds it to what it gathers.
        let waiting_syncs =
            IntGauge::new("waiting_syncs", "`/sync` requests waiting for something to happen.").expect("valid metric");
        let database_bytes = IntGauge::new("database_size_bytes", "What the database occupies on disk, in bytes.")
            .expect("valid metric");
        let descs = waiting_syncs
            .desc()
            .into_iter()
            .chain(database_bytes.desc())
            .cloned()
            .collect();
        StoreGauges {
            store,
            waiting_syncs,
            database_bytes,
            descs: Arc::new(descs),
        }
    }
}

impl Collector for StoreGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // A store that is gone (shutdown) reads as nothing waiting, no size.
        let (waiting, bytes) = match self.store.upgrade() {
            Some(store) => (
                store.subscriber_count() as i64,
                store.disk_bytes().map_or_else(
                    |e| {
                        tracing::warn!(error = %e, "cannot read the database size");
                        0
                    },
                    |b| b as i64,
                ),
            ),
            None => (0, 0),
        };
        self.waiting_syncs.set(waiting);
        self.database_bytes.set(bytes);
        let mut families = self.waiting_syncs.collect();
        families.extend(self.database_bytes.collect());
        families
    }
}
