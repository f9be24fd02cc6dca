//! The WFM API client: access-key login, refresh before expiry, a new login when the refresh
//! token is refused or expired, one renewal and repeat on a 401. Credentials and tokens never
//! reach a log line.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_core::config::{WfmConfig, WfmPaths};
use acd_core::metrics::Registry;
use acd_core::Secret;
use acd_schemas::time::now_millis;
use acd_schemas::wfm::{AccessKey, Details, RefreshRequest, RefreshResponse, TokenRequest, TokenResponse};
use tokio::sync::Mutex;

use crate::wfm::classify::{classify, parse_retry_after, Attempt, Outcome};

/// Why the client could not get a token or an answer.
#[derive(Debug, thiserror::Error)]
pub enum WfmError {
    #[error("WFM authentication failed: {0}")]
    Auth(String),
    #[error("WFM call {path} failed: {message}")]
    Call { path: String, message: String },
}

/// One answered (or unanswered) call.
#[derive(Debug, Clone)]
pub struct Answer {
    pub attempt: Attempt,
    pub body: String,
}

impl Answer {
    /// The HTTP status, if the WFM answered.
    pub fn status(&self) -> Option<u16> {
        match self.attempt {
            Attempt::Status { status, .. } => Some(status),
            _ => None,
        }
    }
}

struct Tokens {
    access: String,
    access_until: Instant,
    /// Renew this long before `access_until`.
    access_margin: Duration,
    refresh: String,
    refresh_until: Instant,
}

/// The client. Cheap to clone.
#[derive(Clone)]
pub struct WfmClient {
    http: reqwest::Client,
    base: String,
    paths: Arc<WfmPaths>,
    tenant: String,
    key_id: String,
    secret: Secret,
    tokens: Arc<Mutex<Option<Tokens>>>,
    /// Counts every call by path and status class, and auth renewals.
    metrics: Registry,
    /// Wall-clock time of the last successful data call, for `status` and the outage rule.
    pub last_success: Arc<AtomicI64>,
    /// Data calls that failed since the last success, for the circuit state.
    pub failures_in_a_row: Arc<AtomicU64>,
}

fn http_client(cfg: &WfmConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_seconds))
        .pool_max_idle_per_host(8)
        .build()
        .expect("http client")
}

/// Refresh this long before the token expires.
fn margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(60))
}

impl WfmClient {
    /// A client for `cfg`.
    pub fn new(cfg: &WfmConfig, metrics: Registry) -> WfmClient {
        WfmClient {
            http: http_client(cfg),
            base: cfg.base_url.trim_end_matches('/').to_string(),
            paths: Arc::new(cfg.paths.clone()),
            tenant: cfg.tenant.clone(),
            key_id: cfg.access_key_id.clone(),
            secret: cfg.access_key_secret.clone(),
            tokens: Arc::new(Mutex::new(None)),
            metrics,
            last_success: Arc::new(AtomicI64::new(0)),
            failures_in_a_row: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same client (tokens, counters) with a connection pool of its own, for a task that runs
    /// on another runtime: a pooled connection is driven by the runtime that opened it.
    pub fn with_own_connections(&self, cfg: &WfmConfig) -> WfmClient {
        WfmClient { http: http_client(cfg), ..self.clone() }
    }

    /// The configured paths.
    pub fn paths(&self) -> &WfmPaths {
        &self.paths
    }

    async fn login(&self) -> Result<Tokens, WfmError> {
        let body = TokenRequest {
            tenant_name: self.tenant.clone(),
            access_key_token_request: AccessKey {
                access_key_id: self.key_id.clone(),
                access_key_secret: self.secret.expose().to_string(),
            },
        };
        let started = Instant::now();
        let resp = self
            .http
            .post(format!("{}{}", self.base, self.paths.token))
            .json(&body)
            .send()
            .await
            .map_err(|e| WfmError::Auth(format!("token call: {}", without_url(&e))))?;
        let status = resp.status();
        self.count(&self.paths.token, Some(status.as_u16()));
        if !status.is_success() {
            return Err(WfmError::Auth(format!("token call answered {status}")));
        }
        let t: TokenResponse =
            resp.json().await.map_err(|e| WfmError::Auth(format!("token answer: {}", without_url(&e))))?;
        let life = Duration::from_secs(t.expires_in.max(1) as u64);
        tracing::info!(expires_in = t.expires_in, "WFM: logged in with the access key");
        Ok(Tokens {
            access: t.access_token,
            access_until: started + life,
            access_margin: margin(life),
            refresh: t.refresh_token,
            // The token answer does not say how long the refresh token lives: assume twice.
            refresh_until: started + life * 2,
        })
    }

    async fn refresh(&self, refresh: &str) -> Result<Tokens, WfmError> {
        let body = RefreshRequest { token: refresh.to_string(), update_cookie: true, toggle_enabled: false };
        let started = Instant::now();
        let resp = self
            .http
            .post(format!("{}{}", self.base, self.paths.refresh))
            .json(&body)
            .send()
            .await
            .map_err(|e| WfmError::Auth(format!("refresh call: {}", without_url(&e))))?;
        let status = resp.status();
        self.count(&self.paths.refresh, Some(status.as_u16()));
        if !status.is_success() {
            return Err(WfmError::Auth(format!("refresh answered {status}")));
        }
        let r: RefreshResponse =
            resp.json().await.map_err(|e| WfmError::Auth(format!("refresh answer: {}", without_url(&e))))?;
        let life = Duration::from_secs(r.token_expiration_time_sec.max(1) as u64);
        Ok(Tokens {
            access: r.token,
            access_until: started + life,
            access_margin: margin(life),
            refresh: r.refresh_token,
            refresh_until: started + Duration::from_secs(r.refresh_token_expiration_time_sec.max(1) as u64),
        })
    }

    /// Renews: refresh when the refresh token lives, else (or when refused) log in again.
    async fn renew(&self, slot: &mut Option<Tokens>) -> Result<(), WfmError> {
        self.metrics
            .counter("acd_wfm_token_renewals_total", "Token refreshes and logins", &[])
            .fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if let Some(t) = slot.as_ref().filter(|t| t.refresh_until > now + Duration::from_secs(1)) {
            match self.refresh(&t.refresh).await {
                Ok(fresh) => {
                    *slot = Some(fresh);
                    return Ok(());
                }
                Err(e) => tracing::info!(error = %e, "WFM: refresh refused; logging in again"),
            }
        }
        *slot = Some(self.login().await?);
        Ok(())
    }

    /// A token that is valid for a while yet.
    async fn token(&self) -> Result<String, WfmError> {
        let mut slot = self.tokens.lock().await;
        let now = Instant::now();
        let fresh = slot.as_ref().is_some_and(|t| now + t.access_margin < t.access_until);
        if !fresh {
            self.renew(&mut slot).await?;
        }
        Ok(slot.as_ref().expect("renewed").access.clone())
    }

    /// Forces a renewal unless another task already replaced `failed`.
    async fn renew_after_401(&self, failed: &str) -> Result<(), WfmError> {
        let mut slot = self.tokens.lock().await;
        if slot.as_ref().is_some_and(|t| t.access != failed) {
            return Ok(());
        }
        if let Some(t) = slot.as_mut() {
            // The access token is dead; the refresh token may still be good.
            t.access_until = Instant::now();
        }
        self.renew(&mut slot).await
    }

    fn count(&self, path: &str, status: Option<u16>) {
        let class = match status {
            Some(s) => format!("{}xx", s / 100),
            None => "error".to_string(),
        };
        self.metrics
            .counter("acd_wfm_calls_total", "WFM calls by path and answer class", &[("path", path), ("class", &class)])
            .fetch_add(1, Ordering::Relaxed);
    }

    async fn once(&self, method: reqwest::Method, path: &str, token: &str, body: Option<&[u8]>) -> Answer {
        let mut req = self.http.request(method, format!("{}{}", self.base, path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.to_vec());
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = parse_retry_after(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()));
                let body = resp.text().await.unwrap_or_default();
                self.count(path, Some(status));
                Answer { attempt: Attempt::Status { status, retry_after }, body }
            }
            Err(e) => {
                self.count(path, None);
                let attempt = if e.is_timeout() { Attempt::Timeout } else { Attempt::Connect };
                Answer { attempt, body: without_url(&e) }
            }
        }
    }

    /// One call with one renewal and repeat on a 401. Auth failures come back as a connection
    /// error (transient), so an auth outage is retried like any other.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&[u8]>) -> Answer {
        // A success counts from when its call was sent: a call answered just after an outage
        // began was sent before it, and says nothing of the WFM since.
        let sent = now_millis();
        let token = match self.token().await {
            Ok(t) => t,
            Err(e) => return Answer { attempt: Attempt::Connect, body: e.to_string() },
        };
        let mut answer = self.once(method.clone(), path, &token, body).await;
        if classify(&answer.attempt) == Outcome::Renew {
            match self.renew_after_401(&token).await {
                Ok(()) => {
                    let token = match self.token().await {
                        Ok(t) => t,
                        Err(e) => return Answer { attempt: Attempt::Connect, body: e.to_string() },
                    };
                    answer = self.once(method, path, &token, body).await;
                }
                Err(e) => return Answer { attempt: Attempt::Connect, body: e.to_string() },
            }
        }
        match classify(&answer.attempt) {
            Outcome::Success => {
                self.last_success.fetch_max(sent, Ordering::Relaxed);
                self.failures_in_a_row.store(0, Ordering::Relaxed);
            }
            Outcome::Retry(_) | Outcome::Renew => {
                self.failures_in_a_row.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Reject => {}
        }
        answer
    }

    /// `GET details`, for the start-up check.
    pub async fn details(&self) -> Result<Details, WfmError> {
        let path = self.paths.details.clone();
        let a = self.call(reqwest::Method::GET, &path, None).await;
        match a.status() {
            Some(200..=299) => serde_json::from_str(&a.body)
                .map_err(|e| WfmError::Call { path: path.clone(), message: format!("unreadable answer: {e}") }),
            _ => Err(WfmError::Call { path, message: format!("{:?}: {}", a.attempt, truncate(&a.body, 200)) }),
        }
    }
}

/// reqwest errors carry the URL; the message without it (no query strings with secrets).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "<wfm>");
    }
    s
}

pub use acd_core::truncate;
