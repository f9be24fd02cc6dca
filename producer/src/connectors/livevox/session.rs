//! A LiveVox API session: login with the `LV-Access` token and the API user's credentials,
//! `LV-Access` and `LV-Session` on every call, one new login and one repeat on a 401 (sessions
//! die after two idle hours), logout at the end. Secrets are sent, never logged.

use std::time::Duration;

use acd_core::config::LiveVoxConfig;
use serde_json::{json, Value};

/// Why a call did not answer 200.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The login itself was refused (4xx): the credentials or the token are wrong.
    #[error("LiveVox refused the login ({status}): {message}; check connectors.livevox.client_name, user_name, password_file and access_token_file")]
    Login { status: u16, message: String },
    /// A 401 again right after a new login.
    #[error("LiveVox refused the session right after a new login (401): {0}")]
    Unauthorized(String),
    /// Any other answer.
    #[error("LiveVox answered {status}: {message}")]
    Status { status: u16, retry_after: Option<Duration>, message: String },
    /// No answer: timeout or connection error.
    #[error("LiveVox could not be reached: {0}")]
    Transport(String),
}

impl CallError {
    /// How long the answer asked to wait (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A session with LiveVox.
pub struct Session {
    http: reqwest::Client,
    cfg: LiveVoxConfig,
    /// The open session, if any.
    id: Option<String>,
}

impl Session {
    pub fn new(cfg: LiveVoxConfig) -> Session {
        let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).build().expect("HTTP client");
        Session { http, cfg, id: None }
    }

    /// True while a session is open.
    pub fn is_open(&self) -> bool {
        self.id.is_some()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.cfg.base_url.trim_end_matches('/'), path)
    }

    /// Opens a session.
    pub async fn login(&mut self) -> Result<(), CallError> {
        self.id = None;
        let body = json!({"clientName": self.cfg.client_name, "userName": self.cfg.user_name,
            "password": self.cfg.password.expose(), "agent": false});
        let resp = self
            .http
            .post(self.url(&self.cfg.paths.login))
            .header("LV-Access", self.cfg.access_token.expose())
            .timeout(Duration::from_secs(30))
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let (status, retry_after, text) = read(resp).await;
        match status {
            200 => {
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let id = v["sessionId"].as_str().filter(|s| !s.is_empty()).ok_or_else(|| CallError::Status {
                    status,
                    retry_after: None,
                    message: "login answer without a sessionId".into(),
                })?;
                self.id = Some(id.to_string());
                tracing::info!(client = %self.cfg.client_name, user = %self.cfg.user_name, "LiveVox session opened");
                Ok(())
            }
            408 | 429 => Err(CallError::Status { status, retry_after, message: message(&text) }),
            400..=499 => Err(CallError::Login { status, message: message(&text) }),
            _ => Err(CallError::Status { status, retry_after, message: message(&text) }),
        }
    }

    /// Posts `body` to `path` in the session (opening one first when needed); on a 401, logs in
    /// again once and repeats. Answers the JSON of a 200.
    pub async fn post(&mut self, path: &str, body: &Value, timeout: Duration) -> Result<Value, CallError> {
        if self.id.is_none() {
            self.login().await?;
        }
        match self.post_once(path, body, timeout).await {
            Err(CallError::Status { status: 401, .. }) => {
                tracing::info!("LiveVox session expired; logging in again");
                self.login().await?;
                match self.post_once(path, body, timeout).await {
                    Err(CallError::Status { status: 401, message, .. }) => {
                        self.id = None;
                        Err(CallError::Unauthorized(message))
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn post_once(&self, path: &str, body: &Value, timeout: Duration) -> Result<Value, CallError> {
        let resp = self
            .http
            .post(self.url(path))
            .header("LV-Access", self.cfg.access_token.expose())
            .header("LV-Session", self.id.as_deref().unwrap_or_default())
            .timeout(timeout)
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let (status, retry_after, text) = read(resp).await;
        if status == 200 {
            return serde_json::from_str(&text).map_err(|e| CallError::Status {
                status,
                retry_after: None,
                message: format!("answer is not JSON: {e}"),
            });
        }
        Err(CallError::Status { status, retry_after, message: message(&text) })
    }

    /// Ends the session, if one is open.
    pub async fn logout(&mut self) {
        let Some(id) = self.id.take() else { return };
        let url = format!("{}/{}", self.url(&self.cfg.paths.logout), id);
        match self
            .http
            .delete(url)
            .header("LV-Access", self.cfg.access_token.expose())
            .header("LV-Session", &id)
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) => tracing::info!(status = r.status().as_u16(), "LiveVox session closed"),
            Err(e) => tracing::warn!(error = %without_url(&e), "LiveVox logout failed"),
        }
    }
}

/// An answer's status, `Retry-After` and body.
async fn read(resp: reqwest::Response) -> (u16, Option<Duration>, String) {
    let status = resp.status().as_u16();
    let retry_after =
        acd_core::retry::parse_retry_after(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()));
    (status, retry_after, resp.text().await.unwrap_or_default())
}

/// The `message` of a LiveVox error body, or the body itself, cut short.
fn message(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let m = v["message"].as_str().map(str::to_string).unwrap_or_else(|| text.to_string());
    acd_core::truncate(&m, 200).to_string()
}

fn transport(e: reqwest::Error) -> CallError {
    CallError::Transport(without_url(&e))
}

/// reqwest's error text without the URL (which carries nothing secret here, but is long).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}
