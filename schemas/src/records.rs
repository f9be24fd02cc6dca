//! The Kafka records, one type per topic, field for field as in the `.avsc` files beside this
//! crate. Timestamps are UTC milliseconds (`timestamp-millis`).

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// `acd.agent-state.v1`: one agent state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentState {
    pub acd_id: String,
    pub login_id: String,
    pub event_code: String,
    pub reason_code: String,
    pub event_utc_time: Millis,
    /// When the producer received it, for end-to-end latency; absent in schema version 1.
    #[serde(default)]
    pub received_utc: Option<Millis>,
}

impl AgentState {
    /// The Kafka key: all of an agent's states on one partition, in order.
    pub fn key(&self) -> String {
        format!("{}/{}", self.acd_id, self.login_id)
    }
}

/// HANDLED or ABANDONED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Handled,
    Abandoned,
}

/// Right or wrong party reached (outbound contacts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Party {
    Right,
    Wrong,
}

/// `acd.contact.v1`: one finished contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub acd_id: String,
    pub contact_id: String,
    pub queue_value: String,
    pub queue_name: String,
    pub is_outbound: bool,
    pub outcome: Outcome,
    pub arrived_utc: Millis,
    pub ended_utc: Millis,
    pub queue_delay_sec: f64,
    pub talk_sec: f64,
    pub hold_sec: f64,
    pub work_sec: f64,
    pub agent_value: Option<String>,
    pub agent_id: Option<String>,
    pub party: Option<Party>,
    #[serde(default)]
    pub received_utc: Option<Millis>,
}

impl Contact {
    /// The Kafka key: all of a queue's contacts on one partition.
    pub fn key(&self) -> String {
        format!("{}/{}", self.acd_id, self.queue_value)
    }
}

/// Which of the three intraday lists a pre-aggregated row belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RowKind {
    Queue,
    AgentQueue,
    AgentPerformance,
}

/// `acd.interval.v1`: one row of an ACD-computed intraday report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntervalRow {
    pub acd_type: String,
    pub report_version: String,
    pub start_date: Millis,
    pub end_date: Millis,
    pub status: String,
    pub status_reason: String,
    pub kind: RowKind,
    pub queue: Option<crate::wfm::QueueRow>,
    pub agent_queue: Option<crate::wfm::AgentQueueRow>,
    pub agent_performance: Option<crate::wfm::AgentPerformanceRow>,
}

impl IntervalRow {
    /// `queue/<queueValue>` for queue and agent-queue rows, `agent/<agentValue>` for agent rows.
    pub fn key(&self) -> String {
        match (&self.queue, &self.agent_queue, &self.agent_performance) {
            (Some(q), _, _) => format!("queue/{}", q.queue_value),
            (_, Some(q), _) => format!("queue/{}", q.queue_value),
            (_, _, Some(a)) => format!("agent/{}", a.agent_value),
            _ => "queue/".to_string(),
        }
    }
}

/// One segment of an agent's activity list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivitySegment {
    pub state: String,
    pub start_time: Millis,
    /// Milliseconds.
    pub duration: i64,
    pub reason: String,
}

/// `acd.agent-activity.v1`: one agent's activity list for one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentActivity {
    pub acd_type: String,
    pub report_version: String,
    pub start_date: Millis,
    pub end_date: Millis,
    pub agent_value: String,
    pub agent_id: String,
    pub user_name: String,
    pub agent_activity: Vec<ActivitySegment>,
}

impl AgentActivity {
    /// `agent/<agentValue>`.
    pub fn key(&self) -> String {
        format!("agent/{}", self.agent_value)
    }
}

/// The connection state of an ACD connector or of the WFM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionState {
    Connected,
    Degraded,
    Disconnected,
}

/// `acd.connector-status.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorStatus {
    pub acd_id: String,
    pub connector: String,
    pub status: ConnectionState,
    pub since: Millis,
    pub last_event_utc: Option<Millis>,
    pub detail: String,
    pub reported_utc: Millis,
}
