//! Connectors that pull or generate ACD data and publish it through the same [`Publisher`] as the
//! ingest API. A batch that Kafka did not acknowledge is retried until it is; nothing is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_core::config::{Config, SimulatorConfig};
use acd_schemas::ingest::Parsed;
use acd_schemas::time::now_millis;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::publisher::Publisher;
use crate::simulator::{SimEvent, Simulator};
use crate::status::Statuses;
use acd_schemas::records::ConnectionState;

/// Starts every enabled connector.
pub fn spawn(
    cfg: &Config,
    publisher: Arc<Publisher>,
    statuses: Statuses,
    shutdown: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut out = Vec::new();
    if let Some(sim) = cfg.connectors.simulator.clone().filter(|s| s.enabled) {
        out.push(tokio::spawn(run_simulator(sim, publisher, statuses, shutdown)));
    }
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

async fn publish_until_acked(publisher: &Publisher, parsed: &Parsed, shutdown: &CancellationToken) -> bool {
    let mut wait = Duration::from_millis(200);
    loop {
        match publisher.publish_parsed(parsed, Duration::from_secs(15)).await {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "simulator: publish failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The connector name of the traffic simulator.
pub const SIMULATOR: &str = "simulator";

async fn run_simulator(
    cfg: SimulatorConfig,
    publisher: Arc<Publisher>,
    statuses: Statuses,
    shutdown: CancellationToken,
) {
    let start = now_millis();
    let mut sim = Simulator::new(&cfg.acd_id, cfg.agents, cfg.queues, cfg.seed, start);
    let began = Instant::now();
    let end = (cfg.minutes > 0).then(|| start + cfg.minutes as i64 * 60_000);
    tracing::info!(agents = cfg.agents, queues = cfg.queues, speed = cfg.speed, "simulator connector started");
    let generating = format!("simulating {} agents on {} queues", cfg.agents, cfg.queues);
    statuses.set(&cfg.acd_id, SIMULATOR, ConnectionState::Connected, &generating);
    loop {
        let sim_now = start + (began.elapsed().as_secs_f64() * cfg.speed * 1000.0) as i64;
        let until = end.map_or(sim_now, |e| sim_now.min(e));
        let (states, contacts) = split(sim.advance(until));
        for batch in [states, contacts] {
            if !batch.is_empty() && !publish_until_acked(&publisher, &batch, &shutdown).await {
                return;
            }
        }
        statuses.saw_data(&cfg.acd_id, SIMULATOR, until);
        if end.is_some_and(|e| until >= e) {
            tracing::info!("simulator connector finished its configured minutes");
            statuses.set(&cfg.acd_id, SIMULATOR, ConnectionState::Disconnected, "simulation finished");
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}
