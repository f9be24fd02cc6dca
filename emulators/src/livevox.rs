//! `acd-bridge livevox-sim`: LiveVox's session API and agent event feed as a real HTTP server,
//! for the LiveVox connector's users and tests.
//!
//! - `POST /session/login` checks the `LV-Access` header and the credentials and opens a session;
//!   a session dies after `--session-idle-seconds` without a call (LiveVox: two hours), or at once
//!   on `POST /sim/expire-sessions`; `DELETE /session/logout/<id>` ends one.
//! - `POST /realtime/v6.0/agentEvent/feed` answers `{"token","agentEvent":[...]}` from a token
//!   cursor: `{}` starts at the oldest event still kept (a 24-hour window), `{"token": t}` goes on
//!   after the answer that gave `t`. Events are generated from `--seed` for `--agents` agents at
//!   `--rate` events a second (or `--events` of them at once); within an answer their timestamps
//!   are not in order, as LiveVox's are not. With nothing new it holds the call up to 2 s.
//! - Faults on request (`POST /sim/faults`): the next N feed calls answer 429 with `Retry-After`,
//!   or 503; a token older than the latest answer is refused (410).
//! - `GET /sim/state`: logins, logouts, sessions expired, every token presented and what each
//!   answer served; `GET /sim/truth`: every agent state it has served, as the WFM should get them;
//!   `/` shows both to a person.

// Handlers return an early `Response` as their error, as axum handlers do.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// `acd-bridge livevox-sim` options.
#[derive(Debug, Clone, clap::Args)]
pub struct LiveVoxArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9600")]
    pub listen: String,
    /// The `LV-Access` token a login must carry.
    #[arg(long, env = "LIVEVOX_SIM_ACCESS_TOKEN", hide_env_values = true, default_value = "lv-access-token")]
    pub access_token: String,
    #[arg(long, default_value = "client")]
    pub client_name: String,
    #[arg(long, default_value = "api-user")]
    pub user_name: String,
    #[arg(long, env = "LIVEVOX_SIM_PASSWORD", hide_env_values = true, default_value = "secret")]
    pub password: String,
    /// A session not used for this long is gone (LiveVox: 7200).
    #[arg(long, default_value_t = 7200)]
    pub session_idle_seconds: u64,
    #[arg(long, default_value_t = 20)]
    pub agents: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Events generated per second while running (0: none beyond --events).
    #[arg(long, default_value_t = 5.0)]
    pub rate: f64,
    /// Events generated at start, before the --rate ones; every agent then logs off.
    #[arg(long, default_value_t = 0)]
    pub events: u64,
    /// The time of the first of the --events ones, epoch milliseconds (default: a minute ago).
    #[arg(long)]
    pub start_ms: Option<i64>,
    /// Milliseconds between two of the --events ones.
    #[arg(long, default_value_t = 0)]
    pub spacing_ms: i64,
    /// The most events one feed answer carries.
    #[arg(long, default_value_t = 200)]
    pub answer_events: usize,
}

impl Default for LiveVoxArgs {
    fn default() -> Self {
        LiveVoxArgs {
            listen: "127.0.0.1:0".into(),
            access_token: "lv-access-token".into(),
            client_name: "client".into(),
            user_name: "api-user".into(),
            password: "secret".into(),
            session_idle_seconds: 7200,
            agents: 20,
            seed: 1,
            rate: 5.0,
            events: 0,
            start_ms: None,
            spacing_ms: 0,
            answer_events: 200,
        }
    }
}

/// One agent event as LiveVox sends it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentEvent {
    pub agent_id: u64,
    pub event_type: String,
    pub timestamp: i64,
    pub reason_code: String,
    pub agent_service_id: u64,
    pub session_id: String,
}

/// Faults waiting to be served.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Faults {
    /// The next N feed calls answer 429 with this `Retry-After` (seconds).
    pub too_many: u32,
    pub retry_after: u64,
    /// The next N feed calls answer 503.
    pub unavailable: u32,
    /// Refuse (410) a token older than the latest answer's.
    pub refuse_old_tokens: bool,
    /// Refuse (410) the next N calls that present a token.
    pub refuse_tokens: u32,
}

/// One feed answer, for `/sim/state`.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    /// The token the call presented (`null` for `{}`).
    pub presented: Option<String>,
    pub status: u16,
    /// The token the answer gave, and how many events it carried.
    pub token: Option<String>,
    pub events: usize,
    /// When the call came, epoch milliseconds.
    pub at: i64,
}

/// What the emulator holds.
#[derive(Debug, Default)]
pub struct World {
    /// Every event generated, in generation order; a token is a position in it.
    pub events: Vec<AgentEvent>,
    /// Sessions by id: when each was last used.
    sessions: HashMap<String, Instant>,
    next_session: u64,
    pub logins: u64,
    pub failed_logins: u64,
    pub logouts: u64,
    pub sessions_expired: u64,
    pub served: Vec<Served>,
    /// The position after the latest answer, for refusing older tokens.
    latest: usize,
    /// The events served (at least once) are those from `low` to `high`: the ground truth.
    pub high: usize,
    low: Option<usize>,
    pub faults: Faults,
    generator: Generator,
}

/// Generates agents moving through LiveVox states.
#[derive(Debug)]
struct Generator {
    rng: StdRng,
    agents: u32,
    /// Per agent: its current state and when it entered it.
    state: Vec<(&'static str, i64)>,
}

impl Default for Generator {
    fn default() -> Self {
        Generator { rng: StdRng::seed_from_u64(1), agents: 0, state: Vec::new() }
    }
}

const REASONS: [&str; 4] = ["Break", "Lunch", "Meeting", "Training"];

impl Generator {
    fn new(seed: u64, agents: u32) -> Generator {
        Generator { rng: StdRng::seed_from_u64(seed), agents, state: vec![("LOGOFF", 0); agents as usize] }
    }

    /// Agent `i` logged off at `at`, unless it is already.
    fn log_off(&mut self, i: usize, at: i64) -> Option<AgentEvent> {
        let (current, since) = self.state[i];
        if current == "LOGOFF" {
            return None;
        }
        let at = at.max(since + 1);
        self.state[i] = ("LOGOFF", at);
        Some(AgentEvent {
            agent_id: 1_100_000 + i as u64,
            event_type: "LOGOFF".into(),
            timestamp: at,
            reason_code: String::new(),
            agent_service_id: 3_179_521,
            session_id: format!("S-{}", 8800 + i),
        })
    }

    /// The next event at about `now` (milliseconds), its agent's state moving on.
    fn next(&mut self, now: i64) -> Option<AgentEvent> {
        if self.agents == 0 {
            return None;
        }
        let i = self.rng.gen_range(0..self.agents as usize);
        let (current, since) = self.state[i];
        let next = match current {
            "LOGOFF" => "LOGON",
            "LOGON" => "READY",
            "READY" => {
                if self.rng.gen_bool(0.7) {
                    "IN_CALL"
                } else {
                    "NOT_READY"
                }
            }
            "IN_CALL" => "WRAP_UP",
            "WRAP_UP" => "READY",
            _ => {
                if self.rng.gen_bool(0.1) {
                    "LOGOFF"
                } else {
                    "READY"
                }
            }
        };
        // Strictly after the agent's last event, so (agent, timestamp) is unique.
        let at = now.max(since + 1);
        self.state[i] = (next, at);
        let reason = if next == "NOT_READY" { REASONS[self.rng.gen_range(0..REASONS.len())] } else { "" };
        Some(AgentEvent {
            agent_id: 1_100_000 + i as u64,
            event_type: next.into(),
            timestamp: at,
            reason_code: reason.into(),
            agent_service_id: 3_179_521,
            session_id: format!("S-{}", 8800 + i),
        })
    }
}

impl World {
    fn generate(&mut self, n: u64, now: i64) {
        for _ in 0..n {
            if let Some(e) = self.generator.next(now) {
                self.events.push(e);
            }
        }
    }

    /// `n` events from `start`, `spacing` apart, then every agent logged off.
    fn generate_history(&mut self, n: u64, start: i64, spacing: i64) {
        let mut at = start;
        for _ in 0..n {
            if let Some(e) = self.generator.next(at) {
                self.events.push(e);
            }
            at += spacing;
        }
        for i in 0..self.generator.agents as usize {
            if let Some(e) = self.generator.log_off(i, at) {
                self.events.push(e);
            }
        }
    }

    /// The position of the first event at or after `since`: the start of the kept window.
    /// (Events are generated in time order per agent and close to it overall, so the first one
    /// that is recent enough starts the window.)
    fn window_start(&self, since: i64) -> usize {
        self.events.iter().position(|e| e.timestamp >= since).unwrap_or(self.events.len())
    }

    /// The agent states served so far, as the WFM should receive them.
    pub fn truth(&self) -> Vec<Value> {
        self.events[self.low.unwrap_or(0).min(self.high)..self.high]
            .iter()
            .map(|e| {
                json!({"loginId": e.agent_id.to_string(), "eventCode": e.event_type, "reasonCode": e.reason_code,
                    "eventUtcTime": e.timestamp})
            })
            .collect()
    }
}

#[derive(Clone)]
struct Sim {
    args: Arc<LiveVoxArgs>,
    world: Arc<Mutex<World>>,
    wake: Arc<tokio::sync::Notify>,
}

/// A running emulator.
pub struct Running {
    pub addr: SocketAddr,
    pub world: Arc<Mutex<World>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the emulator on `args.listen` and returns at once.
pub async fn start(args: LiveVoxArgs, shutdown: CancellationToken) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let addr = listener.local_addr()?;
    let world = World { generator: Generator::new(args.seed, args.agents), ..World::default() };
    let sim = Sim { args: Arc::new(args), world: Arc::new(Mutex::new(world)), wake: Arc::default() };
    {
        let mut w = sim.world.lock().expect("world");
        let start = sim.args.start_ms.unwrap_or_else(|| now_millis() - 60_000);
        if sim.args.events > 0 {
            w.generate_history(sim.args.events, start, sim.args.spacing_ms);
        }
    }
    if sim.args.rate > 0.0 {
        let (sim, stop) = (sim.clone(), shutdown.clone());
        tokio::spawn(async move {
            let tick = Duration::from_millis(100);
            let mut owed = 0.0;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(tick) => {}
                }
                owed += sim.args.rate * tick.as_secs_f64();
                let n = owed.floor();
                owed -= n;
                if n > 0.0 {
                    sim.world.lock().expect("world").generate(n as u64, now_millis());
                    sim.wake.notify_waiters();
                }
            }
        });
    }
    let world = sim.world.clone();
    let app = Router::new()
        .route("/session/login", post(login))
        .route("/session/logout/{id}", delete(logout))
        .route("/realtime/v6.0/agentEvent/feed", post(feed))
        .route("/", get(index))
        .route("/sim/state", get(state))
        .route("/sim/truth", get(truth))
        .route("/sim/faults", post(set_faults))
        .route("/sim/expire-sessions", post(expire_sessions))
        .route("/sim/generate", post(generate))
        .with_state(sim);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
    });
    Ok(Running { addr, world, task })
}

/// Serves until `shutdown`.
pub async fn serve(args: LiveVoxArgs, shutdown: CancellationToken) -> std::io::Result<()> {
    let running = start(args, shutdown).await?;
    tracing::info!(addr = %running.addr, "livevox-sim listening");
    println!("livevox-sim listening on http://{}", running.addr);
    let _ = running.task.await;
    Ok(())
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"code": status.as_u16(), "message": message}))).into_response()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn check_access(sim: &Sim, headers: &HeaderMap) -> Result<(), Response> {
    match header(headers, "lv-access") {
        Some(t) if t == sim.args.access_token => Ok(()),
        _ => Err(error(StatusCode::UNAUTHORIZED, "Authorization failure: missing or unknown LV-Access token")),
    }
}

/// Checks `LV-Session`, and counts the call as the session's use.
fn check_session(sim: &Sim, headers: &HeaderMap) -> Result<(), Response> {
    check_access(sim, headers)?;
    let idle = Duration::from_secs(sim.args.session_idle_seconds);
    let mut w = sim.world.lock().expect("world");
    let Some(id) = header(headers, "lv-session") else {
        return Err(error(StatusCode::UNAUTHORIZED, "Session invalid"));
    };
    match w.sessions.get(id).copied() {
        Some(used) if used.elapsed() < idle => {
            w.sessions.insert(id.to_string(), Instant::now());
            Ok(())
        }
        Some(_) => {
            w.sessions.remove(id);
            w.sessions_expired += 1;
            Err(error(StatusCode::UNAUTHORIZED, "Session invalid"))
        }
        None => Err(error(StatusCode::UNAUTHORIZED, "Session invalid")),
    }
}

async fn login(State(sim): State<Sim>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = check_access(&sim, &headers) {
        sim.world.lock().expect("world").failed_logins += 1;
        return r;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let ok = body["clientName"] == sim.args.client_name.as_str()
        && body["userName"] == sim.args.user_name.as_str()
        && body["password"] == sim.args.password.as_str()
        && body["agent"] == false;
    let mut w = sim.world.lock().expect("world");
    if !ok {
        w.failed_logins += 1;
        return error(StatusCode::UNAUTHORIZED, "Invalid client name, user name or password");
    }
    w.next_session += 1;
    let id = format!("{:08x}-sess-{}", sim.args.seed, w.next_session);
    w.sessions.insert(id.clone(), Instant::now());
    w.logins += 1;
    Json(json!({"sessionId": id, "clientId": 1001, "userId": 2002, "daysUntilPasswordExpires": 90})).into_response()
}

async fn logout(State(sim): State<Sim>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = check_access(&sim, &headers) {
        return r;
    }
    let mut w = sim.world.lock().expect("world");
    if w.sessions.remove(&id).is_some() {
        w.logouts += 1;
    }
    StatusCode::NO_CONTENT.into_response()
}

fn token_of(position: usize) -> String {
    format!("lvt-{position}")
}

fn position_of(token: &str) -> Option<usize> {
    token.strip_prefix("lvt-")?.parse().ok()
}

/// How long LiveVox keeps agent events.
const WINDOW_MS: i64 = 24 * 3_600_000;

/// How long a feed call with nothing new is held.
const HOLD: Duration = Duration::from_secs(2);

async fn feed(State(sim): State<Sim>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(r) = check_session(&sim, &headers) {
        return r;
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return error(StatusCode::BAD_REQUEST, "Body must be a JSON object"),
    };
    let presented = body.get("token").and_then(Value::as_str).map(str::to_string);
    let record = |w: &mut World, status: u16, token: Option<String>, events: usize| {
        w.served.push(Served { presented: presented.clone(), status, token, events, at: now_millis() });
    };
    let from = {
        let mut w = sim.world.lock().expect("world");
        if presented.is_some() && w.faults.refuse_tokens > 0 {
            w.faults.refuse_tokens -= 1;
            record(&mut w, 410, None, 0);
            return error(StatusCode::GONE, "Token expired or unknown");
        }
        if w.faults.too_many > 0 {
            w.faults.too_many -= 1;
            let after = w.faults.retry_after;
            record(&mut w, 429, None, 0);
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            r.headers_mut().insert("retry-after", after.to_string().parse().expect("header"));
            return r;
        }
        if w.faults.unavailable > 0 {
            w.faults.unavailable -= 1;
            record(&mut w, 503, None, 0);
            return error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable");
        }
        // LiveVox keeps agent events for 24 hours: `{}` starts at the oldest one kept, and a
        // token from before it is refused.
        let window = w.window_start(now_millis() - WINDOW_MS);
        match &presented {
            None => window,
            Some(t) => match position_of(t) {
                Some(p) if p >= window && p <= w.events.len() && !(w.faults.refuse_old_tokens && p < w.latest) => p,
                _ => {
                    record(&mut w, 410, None, 0);
                    return error(StatusCode::GONE, "Token expired or unknown");
                }
            },
        }
    };
    // Hold the call while there is nothing new, as a long poll does.
    let deadline = tokio::time::Instant::now() + HOLD;
    loop {
        let notified = sim.wake.notified();
        {
            let mut w = sim.world.lock().expect("world");
            if w.events.len() > from || tokio::time::Instant::now() >= deadline {
                let to = w.events.len().min(from + sim.args.answer_events);
                let mut events: Vec<AgentEvent> = w.events[from..to].to_vec();
                // LiveVox does not sort an answer: swap neighbours now and then.
                let mut rng = StdRng::seed_from_u64(sim.args.seed ^ from as u64);
                for i in 1..events.len() {
                    if rng.gen_bool(0.3) {
                        events.swap(i - 1, i);
                    }
                }
                w.latest = w.latest.max(to);
                w.high = w.high.max(to);
                w.low = Some(w.low.map_or(from, |l| l.min(from)));
                let token = token_of(to);
                record(&mut w, 200, Some(token.clone()), events.len());
                return Json(json!({"token": token, "agentEvent": events})).into_response();
            }
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

async fn state(State(sim): State<Sim>) -> Json<Value> {
    let w = sim.world.lock().expect("world");
    Json(json!({
        "logins": w.logins, "failedLogins": w.failed_logins, "logouts": w.logouts,
        "sessionsExpired": w.sessions_expired, "openSessions": w.sessions.len(),
        "eventsGenerated": w.events.len(), "eventsServed": w.high,
        "tokensPresented": w.served.iter().map(|s| s.presented.clone()).collect::<Vec<_>>(),
        "answers": w.served, "faults": w.faults,
    }))
}

async fn truth(State(sim): State<Sim>) -> Json<Value> {
    Json(json!({"agentStates": sim.world.lock().expect("world").truth()}))
}

/// `{"tooMany": N, "retryAfter": S, "unavailable": N, "refuseOldTokens": bool, "refuseTokens": N}`; absent keys
/// leave that fault as it is.
async fn set_faults(State(sim): State<Sim>, Json(body): Json<Value>) -> Json<Value> {
    let mut w = sim.world.lock().expect("world");
    if let Some(n) = body["tooMany"].as_u64() {
        w.faults.too_many = n as u32;
    }
    if let Some(s) = body["retryAfter"].as_u64() {
        w.faults.retry_after = s;
    }
    if let Some(n) = body["unavailable"].as_u64() {
        w.faults.unavailable = n as u32;
    }
    if let Some(b) = body["refuseOldTokens"].as_bool() {
        w.faults.refuse_old_tokens = b;
    }
    if let Some(n) = body["refuseTokens"].as_u64() {
        w.faults.refuse_tokens = n as u32;
    }
    Json(json!(w.faults))
}

async fn expire_sessions(State(sim): State<Sim>) -> Json<Value> {
    let mut w = sim.world.lock().expect("world");
    let n = w.sessions.len() as u64;
    w.sessions.clear();
    w.sessions_expired += n;
    Json(json!({"expired": n}))
}

/// `{"events": N}`: N more events now.
async fn generate(State(sim): State<Sim>, Json(body): Json<Value>) -> Json<Value> {
    let n = body["events"].as_u64().unwrap_or(0);
    sim.world.lock().expect("world").generate(n, now_millis());
    sim.wake.notify_waiters();
    Json(json!({"generated": n}))
}

async fn index(State(sim): State<Sim>) -> Html<String> {
    let w = sim.world.lock().expect("world");
    let rows: String = w
        .served
        .iter()
        .rev()
        .take(50)
        .map(|s| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                s.presented.as_deref().unwrap_or("{}"),
                s.status,
                s.token.as_deref().unwrap_or(""),
                s.events
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><title>livevox-sim</title><h1>livevox-sim</h1>\
         <p>{} logins ({} refused), {} logouts, {} sessions expired; {} events generated, {} served.</p>\
         <h2>Latest feed calls</h2><table border=1><tr><th>token presented</th><th>status</th>\
         <th>token given</th><th>events</th></tr>{rows}</table>\
         <p><a href=/sim/state>/sim/state</a> · <a href=/sim/truth>/sim/truth</a></p>",
        w.logins,
        w.failed_logins,
        w.logouts,
        w.sessions_expired,
        w.events.len(),
        w.high
    ))
}
