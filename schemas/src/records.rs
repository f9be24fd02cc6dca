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
        // Not `format!`: this runs once per ingested state.
        let mut k = String::with_capacity(self.acd_id.len() + 1 + self.login_id.len());
        k.push_str(&self.acd_id);
        k.push('/');
        k.push_str(&self.login_id);
        k
    }

    /// A view of it.
    pub fn as_ref(&self) -> AgentStateRef<'_> {
        AgentStateRef {
            acd_id: &self.acd_id,
            login_id: &self.login_id,
            event_code: &self.event_code,
            reason_code: &self.reason_code,
            event_utc_time: self.event_utc_time,
            received_utc: self.received_utc,
        }
    }
}

/// An [`AgentState`] whose strings borrow from the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentStateRef<'a> {
    pub acd_id: &'a str,
    pub login_id: &'a str,
    pub event_code: &'a str,
    pub reason_code: &'a str,
    pub event_utc_time: Millis,
    pub received_utc: Option<Millis>,
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

    /// A view of it, as the hot path reads contacts straight from Kafka's buffers.
    pub fn as_ref(&self) -> ContactRef<'_> {
        ContactRef {
            acd_id: &self.acd_id,
            contact_id: &self.contact_id,
            queue_value: &self.queue_value,
            queue_name: &self.queue_name,
            is_outbound: self.is_outbound,
            outcome: self.outcome,
            arrived_utc: self.arrived_utc,
            ended_utc: self.ended_utc,
            queue_delay_sec: self.queue_delay_sec,
            talk_sec: self.talk_sec,
            hold_sec: self.hold_sec,
            work_sec: self.work_sec,
            agent_value: self.agent_value.as_deref(),
            agent_id: self.agent_id.as_deref(),
            party: self.party,
            received_utc: self.received_utc,
        }
    }
}

/// A [`Contact`] whose strings borrow from the bytes it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContactRef<'a> {
    pub acd_id: &'a str,
    pub contact_id: &'a str,
    pub queue_value: &'a str,
    pub queue_name: &'a str,
    pub is_outbound: bool,
    pub outcome: Outcome,
    pub arrived_utc: Millis,
    pub ended_utc: Millis,
    pub queue_delay_sec: f64,
    pub talk_sec: f64,
    pub hold_sec: f64,
    pub work_sec: f64,
    pub agent_value: Option<&'a str>,
    pub agent_id: Option<&'a str>,
    pub party: Option<Party>,
    pub received_utc: Option<Millis>,
}

impl ContactRef<'_> {
    /// An owned copy.
    pub fn to_contact(&self) -> Contact {
        Contact {
            acd_id: self.acd_id.to_string(),
            contact_id: self.contact_id.to_string(),
            queue_value: self.queue_value.to_string(),
            queue_name: self.queue_name.to_string(),
            is_outbound: self.is_outbound,
            outcome: self.outcome,
            arrived_utc: self.arrived_utc,
            ended_utc: self.ended_utc,
            queue_delay_sec: self.queue_delay_sec,
            talk_sec: self.talk_sec,
            hold_sec: self.hold_sec,
            work_sec: self.work_sec,
            agent_value: self.agent_value.map(str::to_string),
            agent_id: self.agent_id.map(str::to_string),
            party: self.party,
            received_utc: self.received_utc,
        }
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
