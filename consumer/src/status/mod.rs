//! What an operator sees: the board the pipelines keep ([`board`]), the admin API serving it
//! ([`http`]: `/healthz`, `/readyz`, `/metrics`, `/status`), the ACD connectors' state followed
//! from Kafka and told to the WFM ([`connections`]), and `acd-bridge status` ([`report`]).

pub mod board;
pub mod connections;
pub mod http;
pub mod report;

pub use board::{Board, ConnectorView, OpenIntervals, PartitionStatus, SharedBoard};
