//! `acd-bridge wfm-sim`: the WFM API of docs/wfm-api.md as a real HTTP server, for local runs,
//! the demo and tests.
//!
//! It is strict where a real WFM is: access-key tokens and rotating refresh tokens with
//! lifetimes, a bearer token on every data call, every body validated field by field (400 names
//! the field), upserts keyed as the contract says. It can misbehave on request: fail the next N
//! calls of a path, go dark for S seconds, reject one queue's intraday rows, answer slowly.
//! Everything it received is at `GET /sim/state`; a person reads it at `/`.

// Handlers return an early `Response` as their error, as axum handlers do.
#![allow(clippy::result_large_err)]

mod faults;
mod page;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;

pub use faults::Faults;
pub use store::Store;

/// `acd-bridge wfm-sim` options.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9500")]
    pub listen: String,
    /// Lifetime of an access token, in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl: u64,
    /// Lifetime of a refresh token, in seconds.
    #[arg(long, default_value_t = 7200)]
    pub refresh_ttl: u64,
    /// The interval length `details` reports.
    #[arg(long, default_value_t = 15)]
    pub interval_minutes: u32,
    /// The ACD id `details` reports.
    #[arg(long, default_value = "acd-bridge")]
    pub acd_id: String,
    /// When set, only this access key id (and --access-key-secret) gets a token.
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// The secret that goes with --access-key-id.
    #[arg(long, env = "WFM_SIM_ACCESS_KEY_SECRET", hide_env_values = true)]
    pub access_key_secret: Option<String>,
}

impl Default for SimArgs {
    fn default() -> Self {
        SimArgs {
            listen: "127.0.0.1:0".into(),
            token_ttl: 3600,
            refresh_ttl: 7200,
            interval_minutes: 15,
            acd_id: "acd-bridge".into(),
            access_key_id: None,
            access_key_secret: None,
        }
    }
}

/// The WFM paths the emulator serves (the contract's defaults).
pub mod paths {
    pub const TOKEN: &str = "/authentication/v1/token/access-key";
    pub const REFRESH: &str = "/public/user/refresh";
    pub const DETAILS: &str = "/wfm/acd/v1/details";
    pub const AGENT_ACTIVITY: &str = "/wfm/acd/v1/agent-activity";
    pub const INTRADAY: &str = "/wfm/acd/v1/intraday";
    pub const AGENT_STATES: &str = "/wfm/acd/v1/agent-states";
    pub const CONNECTION: &str = "/wfm/acd/v1/connection-status";
}

#[derive(Clone)]
struct Sim {
    args: Arc<SimArgs>,
    store: Arc<Mutex<Store>>,
    faults: Arc<Mutex<Faults>>,
}

/// A running emulator.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Arc<Mutex<Store>>,
    pub faults: Arc<Mutex<Faults>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the emulator on `args.listen` and returns at once.
pub async fn start(args: SimArgs, shutdown: CancellationToken) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    let sim = Sim {
        args: Arc::new(args),
        store: Arc::new(Mutex::new(Store::default())),
        faults: Arc::new(Mutex::new(Faults::default())),
    };
    let (store, faults) = (sim.store.clone(), sim.faults.clone());
    let app = router(sim);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    });
    Ok(Running { addr, store, faults, task })
}

/// Serves until `shutdown`.
pub async fn serve(args: SimArgs, shutdown: CancellationToken) -> std::io::Result<()> {
    let running = start(args, shutdown).await?;
    tracing::info!(addr = %running.addr, "wfm-sim listening");
    println!("wfm-sim listening on http://{}", running.addr);
    let _ = running.task.await;
    Ok(())
}

fn router(sim: Sim) -> Router {
    let wfm = Router::new()
        .route(paths::TOKEN, post(token))
        .route(paths::REFRESH, post(refresh))
        .route(paths::DETAILS, get(details))
        .route(paths::AGENT_STATES, post(agent_states))
        .route(paths::INTRADAY, post(intraday))
        .route(paths::AGENT_ACTIVITY, post(agent_activity))
        .route(paths::CONNECTION, post(connection))
        .layer(middleware::from_fn_with_state(sim.clone(), inject_faults))
        // Larger than any request acd-bridge builds (4 MiB); a larger one gets 413.
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024));
    Router::new()
        .route("/", get(index))
        .route("/sim/state", get(state))
        .route("/sim/reset", post(reset))
        .route("/sim/faults", post(add_fault).get(list_faults).delete(clear_faults))
        .route("/sim/outage", post(outage))
        .route("/sim/reject-queue", post(reject_queue))
        .route("/sim/reject-queue", delete(unreject_queue))
        .merge(wfm)
        .with_state(sim)
}

fn error(status: StatusCode, field: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into(), "field": field}))).into_response()
}

/// Parses a body strictly: a 400 names the field that is wrong.
fn parse<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, Response> {
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    // Read again, tracking the path, to name the field that is wrong.
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        error(StatusCode::BAD_REQUEST, &path, e.into_inner().to_string())
    })
}

async fn inject_faults(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let verdict = sim.faults.lock().expect("faults").take(&path);
    if let Some(f) = verdict {
        let slow = (200..300).contains(&f.status);
        if !slow {
            // Counted before the delay: a client that gives up first drops this call midway.
            sim.store.lock().expect("store").count(&path, f.status);
        }
        if f.delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(f.delay_ms)).await;
        }
        if slow {
            // A slow WFM: the call is answered as usual, only late.
            let resp = next.run(req).await;
            sim.store.lock().expect("store").count(&path, resp.status().as_u16());
            return resp;
        }
        let mut resp =
            error(StatusCode::from_u16(f.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE), "", "injected fault");
        if let Some(ra) = f.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, ra.to_string().parse().expect("number header"));
        }
        return resp;
    }
    let resp = next.run(req).await;
    sim.store.lock().expect("store").count(&path, resp.status().as_u16());
    resp
}

fn bearer(sim: &Sim, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if sim.store.lock().expect("store").tokens.access_valid(token) {
        Ok(())
    } else {
        Err(error(StatusCode::UNAUTHORIZED, "Authorization", "missing, unknown or expired bearer token"))
    }
}

async fn token(State(sim): State<Sim>, body: Bytes) -> Response {
    let req: acd_schemas::wfm::TokenRequest = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let key = &req.access_key_token_request;
    if let (Some(id), Some(secret)) = (&sim.args.access_key_id, &sim.args.access_key_secret) {
        if &key.access_key_id != id || &key.access_key_secret != secret {
            return error(StatusCode::UNAUTHORIZED, "accessKeyTokenRequest", "unknown access key");
        }
    }
    if key.access_key_id.is_empty() {
        return error(StatusCode::BAD_REQUEST, "accessKeyTokenRequest.accessKeyId", "must not be empty");
    }
    let mut store = sim.store.lock().expect("store");
    let (access, refresh) = store.tokens.issue(sim.args.token_ttl, sim.args.refresh_ttl);
    Json(acd_schemas::wfm::TokenResponse {
        id_token: format!("id-{access}"),
        token_type: "Bearer".into(),
        expires_in: sim.args.token_ttl as i64,
        refresh_token: refresh,
        access_token: access,
    })
    .into_response()
}

async fn refresh(State(sim): State<Sim>, body: Bytes) -> Response {
    let req: acd_schemas::wfm::RefreshRequest = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let mut store = sim.store.lock().expect("store");
    match store.tokens.refresh(&req.token, sim.args.token_ttl, sim.args.refresh_ttl) {
        Some((access, refresh)) => Json(acd_schemas::wfm::RefreshResponse {
            token: access,
            token_expiration_time_sec: sim.args.token_ttl as i64,
            refresh_token: refresh,
            refresh_token_expiration_time_sec: sim.args.refresh_ttl as i64,
            session_id: None,
        })
        .into_response(),
        None => error(StatusCode::UNAUTHORIZED, "token", "unknown or expired refresh token"),
    }
}

async fn details(State(sim): State<Sim>, headers: HeaderMap) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    Json(acd_schemas::wfm::Details {
        acd_id: sim.args.acd_id.clone(),
        acd_type: "Generic_acdName".into(),
        interval_minutes: sim.args.interval_minutes,
        paradigm: "WCE".into(),
    })
    .into_response()
}

async fn agent_states(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    // Read in place: a load run sends millions of states.
    let parsed: store::AgentStateListIn<'_>;
    let list = match store::scan_states(&body) {
        Some(list) => list,
        None => {
            parsed = match parse(&body) {
                Ok(r) => r,
                Err(resp) => return resp,
            };
            parsed.agent_state_list.iter().map(|s| s.view()).collect()
        }
    };
    if let Err((field, msg)) = store::check_agent_states(&list) {
        return error(StatusCode::BAD_REQUEST, &field, msg);
    }
    let n = list.len();
    sim.store.lock().expect("store").append_states(&list);
    (StatusCode::OK, Json(json!({"received": n}))).into_response()
}

async fn intraday(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    let req: acd_schemas::wfm::IntradayReport = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if let Err((field, msg)) = store::check_intraday(&req, sim.args.interval_minutes) {
        return error(StatusCode::BAD_REQUEST, &field, msg);
    }
    let rejected = sim.faults.lock().expect("faults").rejected_queue(&req);
    if let Some(q) = rejected {
        return error(StatusCode::BAD_REQUEST, "reportData.queueReport", format!("queue {q} is rejected"));
    }
    sim.store.lock().expect("store").upsert_intraday(req);
    (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
}

async fn agent_activity(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    let req: acd_schemas::wfm::AgentActivityReport = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if let Err((field, msg)) = store::check_activity(&req, sim.args.interval_minutes) {
        return error(StatusCode::BAD_REQUEST, &field, msg);
    }
    sim.store.lock().expect("store").upsert_activity(req);
    (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
}

async fn connection(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = bearer(&sim, &headers) {
        return r;
    }
    let req: acd_schemas::wfm::ConnectionStatusJson = match parse(&body) {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if !["CONNECTED", "DEGRADED", "DISCONNECTED"].contains(&req.status.as_str()) {
        return error(StatusCode::BAD_REQUEST, "status", "must be CONNECTED, DEGRADED or DISCONNECTED");
    }
    sim.store.lock().expect("store").connection.push(req);
    (StatusCode::OK, Json(json!({"status": "ok"}))).into_response()
}

async fn state(State(sim): State<Sim>) -> Response {
    Json(sim.store.lock().expect("store").to_json()).into_response()
}

async fn index(State(sim): State<Sim>) -> Html<String> {
    Html(page::render(&sim.store.lock().expect("store")))
}

async fn reset(State(sim): State<Sim>) -> Response {
    sim.store.lock().expect("store").wipe();
    (StatusCode::OK, Json(json!({"status": "wiped"}))).into_response()
}

async fn add_fault(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<faults::FaultSpec>(&body) {
        Ok(spec) => {
            sim.faults.lock().expect("faults").add(spec);
            (StatusCode::OK, Json(json!({"status": "armed"}))).into_response()
        }
        Err(r) => r,
    }
}

async fn list_faults(State(sim): State<Sim>) -> Response {
    Json(sim.faults.lock().expect("faults").to_json()).into_response()
}

async fn clear_faults(State(sim): State<Sim>) -> Response {
    *sim.faults.lock().expect("faults") = Faults::default();
    (StatusCode::OK, Json(json!({"status": "cleared"}))).into_response()
}

async fn outage(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<faults::OutageSpec>(&body) {
        Ok(spec) => {
            sim.faults.lock().expect("faults").outage(spec);
            (StatusCode::OK, Json(json!({"status": "outage"}))).into_response()
        }
        Err(r) => r,
    }
}

async fn reject_queue(State(sim): State<Sim>, body: Bytes) -> Response {
    match parse::<faults::RejectSpec>(&body) {
        Ok(spec) => {
            sim.faults.lock().expect("faults").rejected_queues.insert(spec.queue_value);
            (StatusCode::OK, Json(json!({"status": "rejecting"}))).into_response()
        }
        Err(r) => r,
    }
}

async fn unreject_queue(State(sim): State<Sim>) -> Response {
    sim.faults.lock().expect("faults").rejected_queues.clear();
    (StatusCode::OK, Json(json!({"status": "accepting"}))).into_response()
}
