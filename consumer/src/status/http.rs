//! `consumer.admin_listen`: `/healthz` (the process lives), `/readyz` (Kafka and the WFM
//! answering), `/metrics` (Prometheus text), `/status` (JSON for `acd-bridge status`).

use std::sync::Arc;

use acd_core::link::KafkaLink;
use acd_core::metrics::Registry;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use super::board::{Board, SharedBoard};

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
