//! `consumer.admin_listen`: `/healthz` (the process lives), `/readyz` (Kafka and the WFM
//! answering), `/metrics` (Prometheus text), `/status` (JSON for `acd-bridge status`).

use std::sync::{Arc, Mutex};

use acd_core::link::KafkaLink;
use acd_core::metrics::Registry;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

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
    pub connectors: Vec<crate::connection::ConnectorView>,
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

#[derive(Clone)]
struct AdminState {
    board: SharedBoard,
    metrics: Registry,
    link: Arc<KafkaLink>,
}

/// Serves the admin API until `shutdown`.
pub fn spawn(
    listener: tokio::net::TcpListener,
    board: SharedBoard,
    metrics: Registry,
    link: Arc<KafkaLink>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/status", get(status))
        .with_state(AdminState { board, metrics, link });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    })
}

async fn readyz(State(s): State<AdminState>) -> Response {
    let b = s.board.lock().expect("board").clone();
    if s.link.is_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "Kafka unreachable").into_response()
    } else if b.wfm_state == "DISCONNECTED" {
        (StatusCode::SERVICE_UNAVAILABLE, "WFM unreachable").into_response()
    } else {
        (StatusCode::OK, "ready").into_response()
    }
}

async fn metrics_text(State(s): State<AdminState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}

async fn status(State(s): State<AdminState>) -> Json<Board> {
    let mut b = s.board.lock().expect("board").clone();
    b.kafka = Some(s.link.view());
    Json(b)
}
