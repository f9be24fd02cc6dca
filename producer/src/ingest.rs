//! The push-ingest HTTP API of docs/push-api.md.
//!
//! Order of checks: token (401), content type (415), body size (413), validation of every item
//! (400, nothing published), then publish and answer `202 {"accepted": n}` once Kafka has
//! acknowledged all `n` records, or `503` with `Retry-After` when it has not within
//! `ingest.ack_timeout_ms`. Tokens are compared in constant time and never logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_core::config::Config;
use acd_core::metrics::Registry;
use acd_schemas::ingest::{self, FieldError, Parsed};
use acd_schemas::time::now_millis;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::publisher::{PublishError, Publisher};
use crate::readiness::Readiness;

/// The connector name the push API reports its ACDs' connection state under.
pub const PUSH_CONNECTOR: &str = "push";

/// Everything a request needs.
#[derive(Clone)]
pub struct IngestState {
    publisher: Arc<Publisher>,
    ready: Readiness,
    metrics: Registry,
    /// Accepted bearer tokens; empty means no auth.
    tokens: Arc<Vec<String>>,
    ack_timeout: Duration,
    max_body: usize,
    interval_minutes: u32,
    accepted: Arc<AtomicU64>,
    statuses: crate::status::Statuses,
}

impl IngestState {
    /// State for the router.
    pub fn new(
        cfg: &Config,
        publisher: Arc<Publisher>,
        ready: Readiness,
        metrics: Registry,
        statuses: crate::status::Statuses,
    ) -> IngestState {
        IngestState {
            statuses,
            accepted: metrics.counter("acd_ingest_records_accepted_total", "Records accepted by the ingest API", &[]),
            publisher,
            ready,
            metrics,
            tokens: Arc::new(cfg.ingest.tokens.iter().map(|t| t.expose().to_string()).collect()),
            ack_timeout: Duration::from_millis(cfg.ingest.ack_timeout_ms),
            max_body: cfg.ingest.max_body_bytes,
            interval_minutes: cfg.interval.minutes,
        }
    }
}

/// The ingest API's routes.
pub fn router(state: IngestState) -> Router {
    let max_body = state.max_body;
    let api = Router::new()
        .route("/v1/agent-states", post(agent_states))
        .route("/v1/contacts", post(contacts))
        .route("/v1/interval-reports", post(interval_reports))
        .route("/v1/agent-activity", post(agent_activity))
        .layer(DefaultBodyLimit::max(max_body))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .with_state(state)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(s): State<IngestState>, req: Request, next: Next) -> Response {
    if s.tokens.is_empty() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let ok =
        given.is_some_and(|g| s.tokens.iter().fold(false, |acc, t| acc | constant_time_eq(g.as_bytes(), t.as_bytes())));
    if ok {
        next.run(req).await
    } else {
        count(&s, req.uri().path(), 401);
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"errors": [{"field": "Authorization", "message": "a valid bearer token is required"}]})),
        )
            .into_response()
    }
}

fn count(s: &IngestState, path: &str, status: u16) {
    s.metrics
        .counter(
            "acd_ingest_requests_total",
            "Ingest API requests by endpoint and status",
            &[("endpoint", path), ("status", &status.to_string())],
        )
        .fetch_add(1, Ordering::Relaxed);
}

async fn readyz(State(s): State<IngestState>) -> Response {
    if s.ready.ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "kafka unreachable").into_response()
    }
}

async fn metrics(State(s): State<IngestState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

type Parser = fn(&[u8], &IngestState) -> Result<Parsed, Vec<FieldError>>;

async fn handle(s: IngestState, path: &str, headers: HeaderMap, body: Bytes, parse: Parser) -> Response {
    let (status, resp) = respond(&s, &headers, &body, parse).await;
    count(&s, path, status.as_u16());
    resp
}

async fn respond(s: &IngestState, headers: &HeaderMap, body: &[u8], parse: Parser) -> (StatusCode, Response) {
    if !is_json(headers) {
        let e = json!({"errors": [{"field": "Content-Type", "message": "must be application/json"}]});
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(e)).into_response());
    }
    let parsed = match parse(body, s) {
        Ok(p) => p,
        Err(errors) => {
            s.metrics
                .counter("acd_ingest_invalid_items_total", "Validation errors returned by the ingest API", &[])
                .fetch_add(errors.len() as u64, Ordering::Relaxed);
            return (
                StatusCode::BAD_REQUEST,
                (StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response(),
            );
        }
    };
    match s.publisher.publish_parsed(&parsed, s.ack_timeout).await {
        Ok(n) => {
            s.accepted.fetch_add(n as u64, Ordering::Relaxed);
            for (acd, at) in parsed.sources() {
                s.statuses.saw_data(acd, PUSH_CONNECTOR, at);
            }
            (StatusCode::ACCEPTED, (StatusCode::ACCEPTED, Json(json!({ "accepted": n }))).into_response())
        }
        Err(PublishError::Encode(e)) => {
            tracing::error!(error = %e, "a validated record failed to encode");
            let body = Json(json!({"errors": [{"field": "", "message": format!("internal encoding error: {e}")}]}));
            (StatusCode::INTERNAL_SERVER_ERROR, (StatusCode::INTERNAL_SERVER_ERROR, body).into_response())
        }
        Err(e) => {
            tracing::warn!(error = %e, "ingest: Kafka did not acknowledge; answering 503");
            let retry = (s.ack_timeout.as_secs() / 3).clamp(1, 30).to_string();
            let body = Json(json!({"errors": [{"field": "", "message": e.to_string()}]}));
            (
                StatusCode::SERVICE_UNAVAILABLE,
                (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, retry)], body).into_response(),
            )
        }
    }
}

async fn agent_states(State(s): State<IngestState>, h: HeaderMap, body: Bytes) -> Response {
    handle(s, "/v1/agent-states", h, body, |b, _| ingest::agent_states(b, now_millis()).map(Parsed::AgentStates)).await
}

async fn contacts(State(s): State<IngestState>, h: HeaderMap, body: Bytes) -> Response {
    handle(s, "/v1/contacts", h, body, |b, _| ingest::contacts(b, now_millis()).map(Parsed::Contacts)).await
}

async fn interval_reports(State(s): State<IngestState>, h: HeaderMap, body: Bytes) -> Response {
    handle(s, "/v1/interval-reports", h, body, |b, s| {
        ingest::interval_report(b, s.interval_minutes).map(Parsed::IntervalRows)
    })
    .await
}

async fn agent_activity(State(s): State<IngestState>, h: HeaderMap, body: Bytes) -> Response {
    handle(s, "/v1/agent-activity", h, body, |b, s| {
        ingest::agent_activity(b, s.interval_minutes).map(Parsed::AgentActivity)
    })
    .await
}
