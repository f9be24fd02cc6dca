//! The operator's tools: `dlq` (read and re-drive dead letters) and `replay` (send a range of
//! intervals again). They read Kafka with their own assignments, never as members of the
//! consumer's groups, and commit nothing.

pub mod dlq;
pub mod replay;

use std::time::Duration;

use acd_core::config::Config;
use rdkafka::consumer::BaseConsumer;

/// Errors of the tools.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Config(#[from] acd_core::kafka::KafkaError),
    #[error("{0}")]
    Usage(String),
}

pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn reader(cfg: &Config, group: &str) -> Result<BaseConsumer, OpsError> {
    let mut cc = acd_core::kafka::client_config(cfg)?;
    cc.set("group.id", group).set("enable.auto.commit", "false").set("enable.partition.eof", "true");
    Ok(cc.create()?)
}
