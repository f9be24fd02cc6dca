//! What `/status` shows: the board the pipelines keep current, read by the admin API and by
//! the outage reminder lines, so they cannot disagree.

use std::sync::{Arc, Mutex};

use serde::Serialize;

/// One assigned partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: i32,
    /// The next offset to read, as committed.
    pub committed: i64,
    pub high_watermark: i64,
    pub lag: i64,
}

/// What `/status` shows; the pipeline keeps it current.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Board {
    pub group_id: String,
    pub partitions: Vec<PartitionStatus>,
    pub lag_total: i64,
    /// CONNECTED, DEGRADED (recent failures) or DISCONNECTED (outage).
    pub wfm_state: String,
    pub wfm_last_success_utc: Option<String>,
    pub wfm_failures_in_a_row: u64,
    pub agent_states_read: u64,
    pub agent_states_delivered: u64,
    pub agent_states_duplicates: u64,
    pub dead_letters: u64,
    pub last_delivered_agent_state_utc: Option<String>,
    pub paused: bool,
    /// Start of the latest interval delivered, per stream (intraday, agent-activity).
    pub last_delivered_interval: std::collections::BTreeMap<String, String>,
    /// Partitions whose interval books are open in this instance.
    pub interval_partitions: usize,
    /// Intervals read into but not closed yet, per stream (intraday, agent-activity).
    pub open_intervals: std::collections::BTreeMap<String, OpenIntervals>,
    /// The ACD connectors, as their producers last reported them.
    pub connectors: Vec<ConnectorView>,
    /// The Kafka connection, as the process's clients last found it (filled in when read).
    pub kafka: Option<acd_core::link::LinkView>,
}

/// The intervals a stream has open in this instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OpenIntervals {
    pub count: usize,
    pub first: String,
    pub last: String,
}

/// The shared board.
pub type SharedBoard = Arc<Mutex<Board>>;

/// One connector as a reader sees it now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorView {
    pub acd_id: String,
    pub connector: String,
    pub status: acd_schemas::records::ConnectionState,
    pub since: String,
    pub last_event_utc: Option<String>,
    pub detail: String,
    pub reported_utc: String,
}
