//! The simulator connector: a deterministic contact center ([`crate::simulator`]) publishing
//! agent states and contacts as they happen, at `speed` simulated seconds per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_core::config::SimulatorConfig;
use acd_schemas::records::ConnectionState;
use acd_schemas::time::now_millis;
use tokio_util::sync::CancellationToken;

use super::{publish_until_acked, split};
use crate::publisher::Publisher;
use crate::simulator::Simulator;
use crate::status::Statuses;

/// The connector name of the traffic simulator.
pub const SIMULATOR: &str = "simulator";

/// Runs until shutdown, or until its configured minutes are simulated.
pub async fn run(cfg: SimulatorConfig, publisher: Arc<Publisher>, statuses: Statuses, shutdown: CancellationToken) {
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
