//! Connectors that pull or generate ACD data and publish it through the same [`Publisher`] as the
//! ingest API (docs/connectors.md). Each is a module of one shape: its configuration (a
//! `[connectors.<name>]` section), the reader of its source, the mapping to contract records,
//! and the connection state it reports. A batch that Kafka did not acknowledge is retried until
//! it is, and a source position moves on only after that; nothing is dropped.
//!
//! - [`simulator`]: a simulated contact center.
//! - [`livevox`]: LiveVox's agent event feed.
//! - [`avaya_cms`]: Avaya CMS's real-time socket, call history files and historical exports.

pub mod avaya_cms;
pub mod livevox;
pub mod simulator;

use std::sync::Arc;
use std::time::Duration;

use acd_core::config::Config;
use acd_schemas::ingest::Parsed;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::publisher::Publisher;
use crate::simulator::SimEvent;
use crate::status::Statuses;

/// Starts every enabled connector.
pub fn spawn(
    cfg: &Config,
    publisher: Arc<Publisher>,
    statuses: Statuses,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut out = Vec::new();
    if let Some(sim) = cfg.connectors.simulator.clone().filter(|s| s.enabled) {
        out.push(tokio::spawn(simulator::run(sim, publisher.clone(), statuses.clone(), shutdown.clone())));
    }
    if let Some(lv) = cfg.connectors.livevox.clone().filter(|l| l.enabled) {
        out.push(tokio::spawn(livevox::run(lv, publisher.clone(), statuses.clone(), shutdown.clone())));
    }
    out.extend(avaya_cms::spawn(cfg, publisher, statuses, shutdown));
    out
}

/// Splits generated events into the two requests they would have been.
pub fn split(events: Vec<SimEvent>) -> (Parsed, Parsed) {
    let (mut states, mut contacts) = (Vec::new(), Vec::new());
    for e in events {
        match e {
            SimEvent::State(s) => states.push(s),
            SimEvent::Contact(c) => contacts.push(c),
        }
    }
    (Parsed::AgentStates(states), Parsed::Contacts(contacts))
}

/// The counter of a connector's items that broke the push API's rules and were skipped
/// (`acd_connector_items_skipped_total{connector}`).
pub fn skipped_counter(publisher: &Publisher, connector: &str) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    publisher.metrics().counter(
        "acd_connector_items_skipped_total",
        "ACD items that broke the push API's rules and were skipped",
        &[("connector", connector)],
    )
}

/// Publishes a batch, retrying until Kafka acknowledged all of it; false only on shutdown.
pub async fn publish_until_acked(publisher: &Publisher, parsed: &Parsed, shutdown: &CancellationToken) -> bool {
    let mut wait = Duration::from_millis(200);
    loop {
        match publisher.publish_parsed(parsed, Duration::from_secs(15)).await {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "connector: publish failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
