//! Whether Kafka answers: a metadata request every two seconds. `/readyz` turns 503 within
//! [`STALE_AFTER`] plus one probe of losing the brokers, well inside the contract's 30 s.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_core::metrics::Registry;
use acd_schemas::time::now_millis;
use rdkafka::producer::Producer;
use tokio_util::sync::CancellationToken;

use crate::publisher::Publisher;

/// How old the last good answer may be.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// The last time Kafka answered, shared with the HTTP API.
#[derive(Clone, Default)]
pub struct Readiness {
    last_ok: Arc<AtomicI64>,
}

impl Readiness {
    /// True when Kafka answered within [`STALE_AFTER`].
    pub fn ready(&self) -> bool {
        now_millis() - self.last_ok.load(Ordering::Relaxed) < STALE_AFTER.as_millis() as i64
    }
}

/// Starts the probe.
pub fn spawn(publisher: Arc<Publisher>, metrics: Registry, shutdown: CancellationToken) -> Readiness {
    let r = Readiness::default();
    let gauge = metrics.gauge("acd_kafka_ready", "1 when Kafka answered a metadata request recently", &[]);
    let out = r.clone();
    tokio::spawn(async move {
        loop {
            let p = publisher.clone();
            let answer = tokio::task::spawn_blocking(move || {
                p.producer().client().fetch_metadata(None, Duration::from_secs(3)).map(|_| ())
            })
            .await
            .expect("readiness probe");
            match answer {
                Ok(()) => {
                    r.last_ok.store(now_millis(), Ordering::Relaxed);
                    publisher.link().reached();
                }
                Err(e) => publisher.link().client_error("readiness probe", &e),
            }
            gauge.store(r.ready() as i64, Ordering::Relaxed);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    });
    out
}
