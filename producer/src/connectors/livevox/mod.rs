//! The LiveVox connector (`[connectors.livevox]`): LiveVox's agent event feed into agent states.
//!
//! - [`session`]: login with the `LV-Access` token and the API user, `LV-Session` on every call,
//!   one new login on a 401, logout at shutdown.
//! - The feed loop (here): `{}` the first time, then the last answer's token; each answer's
//!   events mapped ([`map_events`]), sorted by timestamp, published, and only once Kafka has
//!   acknowledged every one of them is the answer's token saved ([`token`]), so a restart
//!   resumes exactly after the last acknowledged answer and a SIGKILL at any instant loses
//!   nothing. A saved token the feed refuses starts the feed again with `{}` and says DEGRADED,
//!   naming the possible gap.
//! - Failures (429, 5xx, timeouts, connection errors) are retried with the one retry policy of
//!   acd-bridge ([`acd_core::retry`]), honouring `Retry-After`; a refused login is DISCONNECTED
//!   and retried with capped backoff.
//!
//! A second feed (LiveVox's interaction events, once their fields are known) goes beside this
//! one as a loop of its own over the same [`session::Session`].

pub mod session;
pub mod token;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_core::config::LiveVoxConfig;
use acd_core::retry::Schedule;
use acd_schemas::ingest::Parsed;
use acd_schemas::records::{AgentState, ConnectionState};
use acd_schemas::time::{format_millis, now_millis, Millis};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::publish_until_acked;
use crate::publisher::Publisher;
use crate::status::Statuses;
use session::{CallError, Session};
use token::TokenFile;

/// The connector's name on `topics.connector_status`.
pub const CONNECTOR: &str = "livevox";

/// An event that could not become an agent state: where it was, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub index: usize,
    pub reason: String,
}

/// One answer's events as agent states in timestamp order (stable), and the events that could
/// not be used. `agentId` may be a number (written in decimal) or a string.
pub fn map_events(
    answer: &Value,
    acd_id: &str,
    reason_field: &str,
    received: Millis,
) -> (Vec<AgentState>, Vec<Skipped>) {
    let mut states = Vec::new();
    let mut skipped = Vec::new();
    let events = answer["agentEvent"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (index, e) in events.iter().enumerate() {
        let login_id = match &e["agentId"] {
            Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
            Value::String(s) => s.clone(),
            other => {
                skipped.push(Skipped { index, reason: format!("agentId: must be a number or a string, is {other}") });
                continue;
            }
        };
        let Some(event_code) = e["eventType"].as_str() else {
            skipped.push(Skipped { index, reason: "eventType: missing or not a string".into() });
            continue;
        };
        let Some(timestamp) = e["timestamp"].as_i64() else {
            skipped.push(Skipped { index, reason: "timestamp: must be epoch milliseconds".into() });
            continue;
        };
        let reason_code = match &e[reason_field] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let state = AgentState {
            acd_id: acd_id.to_string(),
            login_id,
            event_code: event_code.to_string(),
            reason_code,
            event_utc_time: timestamp,
            received_utc: Some(received),
        };
        match acd_schemas::check::agent_state(&state) {
            Ok(()) => states.push(state),
            Err(err) => skipped.push(Skipped { index, reason: err.to_string() }),
        }
    }
    states.sort_by_key(|s| s.event_utc_time);
    (states, skipped)
}

/// Runs the connector until shutdown; logs out at the end.
pub async fn run(cfg: LiveVoxConfig, publisher: Arc<Publisher>, statuses: Statuses, shutdown: CancellationToken) {
    let acd = cfg.acd_id.clone();
    let tokens = match TokenFile::new(std::path::Path::new(&cfg.state_dir), &acd) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(state_dir = %cfg.state_dir, error = %e, "LiveVox connector cannot keep its feed token; not started");
            statuses.set(&acd, CONNECTOR, ConnectionState::Disconnected, &format!("state_dir: {e}"));
            return;
        }
    };
    let mut token = match tokens.load() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(file = %tokens.path().display(), error = %e, "LiveVox feed token unreadable; not started");
            statuses.set(&acd, CONNECTOR, ConnectionState::Disconnected, &format!("feed token unreadable: {e}"));
            return;
        }
    };
    match &token {
        Some(_) => tracing::info!(file = %tokens.path().display(), "LiveVox feed resumes after its saved token"),
        None => tracing::info!("LiveVox feed starts from the beginning of its window"),
    }
    let skipped = super::skipped_counter(&publisher, CONNECTOR);
    let mut session = Session::new(cfg.clone());
    let timeout = Duration::from_millis(cfg.feed_timeout_ms);
    let mut backoff = Schedule::new(Duration::from_millis(500), Duration::from_secs(60));
    // The reason the feed restarted, shown until the next good answer.
    let mut gap: Option<String> = None;
    let mut last_saved_at: Option<Millis> = None;
    statuses.set(&acd, CONNECTOR, ConnectionState::Disconnected, "starting");
    while !shutdown.is_cancelled() {
        let body = match &token {
            Some(t) => json!({ "token": t }),
            None => json!({}),
        };
        let answer = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = session.post(&cfg.paths.agent_event_feed, &body, timeout) => a,
        };
        let failure = match answer {
            Ok(answer) => {
                let Some(next) = answer["token"].as_str().map(str::to_string) else {
                    let e = CallError::Status {
                        status: 200,
                        retry_after: None,
                        message: "feed answer without a token".into(),
                    };
                    wait_after(&e, gap.as_deref(), &mut backoff, &session, &statuses, &acd, &shutdown).await;
                    continue;
                };
                let (states, bad) = map_events(&answer, &acd, &cfg.reason_field, now_millis());
                for s in &bad {
                    skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(token = token.as_deref().unwrap_or("{}"), index = s.index, reason = %s.reason, "LiveVox event skipped");
                }
                let newest = states.iter().map(|s| s.event_utc_time).max();
                if !states.is_empty() && !publish_until_acked(&publisher, &Parsed::AgentStates(states), &shutdown).await
                {
                    break;
                }
                // Every state of the answer is acknowledged: now the token may move on.
                if let Err(e) = tokens.save(Some(&next)) {
                    tracing::error!(file = %tokens.path().display(), error = %e, "LiveVox feed token not saved; retrying the answer");
                    statuses.set(&acd, CONNECTOR, ConnectionState::Degraded, &format!("feed token not saved: {e}"));
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
                token = Some(next);
                last_saved_at = Some(now_millis());
                backoff = Schedule::new(Duration::from_millis(500), Duration::from_secs(60));
                if gap.take().is_some() {
                    tracing::info!("LiveVox feed answering again after its restart");
                }
                match newest {
                    Some(t) => statuses.saw_data(&acd, CONNECTOR, t),
                    None => statuses.set(&acd, CONNECTOR, ConnectionState::Connected, "feed answering"),
                }
                continue;
            }
            Err(e) => e,
        };
        match &failure {
            // The feed no longer knows the saved token (too old, or its window passed).
            CallError::Status { status: 400 | 404 | 410, message, .. } if token.is_some() => {
                let since = last_saved_at.map(format_millis).unwrap_or_else(|| "before this start".into());
                let reason = format!(
                    "feed token refused ({message}); feed restarted from the oldest event LiveVox keeps: \
                     agent events between the last saved answer ({since}) and that point may be missing"
                );
                tracing::warn!(reason = %reason, "LiveVox feed restarted");
                statuses.set(&acd, CONNECTOR, ConnectionState::Degraded, &reason);
                gap = Some(reason);
                token = None;
                if let Err(e) = tokens.save(None) {
                    tracing::error!(error = %e, "LiveVox feed token not cleared");
                }
            }
            _ => wait_after(&failure, gap.as_deref(), &mut backoff, &session, &statuses, &acd, &shutdown).await,
        }
    }
    session.logout().await;
    statuses.set(&acd, CONNECTOR, ConnectionState::Disconnected, "stopped");
}

/// Logs a failed call once per kind, sets the state it implies, and waits by the retry policy.
/// While the feed is restarting after a refused token (`gap`), the state stays DEGRADED (or
/// DISCONNECTED) with a detail that still names the possible gap.
async fn wait_after(
    e: &CallError,
    gap: Option<&str>,
    backoff: &mut Schedule,
    session: &Session,
    statuses: &Statuses,
    acd: &str,
    shutdown: &CancellationToken,
) {
    static LOGGED: AtomicU64 = AtomicU64::new(0);
    let (state, level_warn) = match e {
        CallError::Login { .. } | CallError::Unauthorized(_) => (ConnectionState::Disconnected, true),
        _ if !session.is_open() => (ConnectionState::Disconnected, false),
        _ => (ConnectionState::Degraded, false),
    };
    let wait = backoff.next(e.retry_after());
    // Login failures are what an operator must fix: always said. Transient ones are said once
    // in a while, not on every retry.
    let n = LOGGED.fetch_add(1, Ordering::Relaxed);
    if level_warn {
        tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "LiveVox connector disconnected");
    } else if n.is_multiple_of(10) {
        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "LiveVox call failed; retrying");
    }
    let detail = match gap {
        Some(gap) => format!("{gap}; now: {e}"),
        None => e.to_string(),
    };
    let state = if gap.is_some() && state != ConnectionState::Disconnected { ConnectionState::Degraded } else { state };
    statuses.set(acd, CONNECTOR, state, &detail);
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(wait) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_agent_states_in_timestamp_order_and_bad_ones_are_named() {
        let answer = json!({"token": "t2", "agentEvent": [
            {"agentId": 1102346, "eventType": "IN_CALL", "timestamp": 1713348063500i64, "reasonCode": null},
            {"agentId": 1102345, "eventType": "NOT_READY", "reasonCode": "Lunch", "timestamp": 1713348062000i64},
            {"agentId": "A-7", "eventType": "READY", "timestamp": 1713348062000i64},
            {"agentId": 5, "timestamp": 1},
            {"agentId": [1], "eventType": "READY", "timestamp": 1},
            {"agentId": 6, "eventType": "READY", "timestamp": "soon"},
            {"agentId": 7, "eventType": "", "timestamp": 1}
        ]});
        let (states, skipped) = map_events(&answer, "lv", "reasonCode", 99);
        let got: Vec<(&str, &str, &str, i64)> = states
            .iter()
            .map(|s| (s.login_id.as_str(), s.event_code.as_str(), s.reason_code.as_str(), s.event_utc_time))
            .collect();
        assert_eq!(
            got,
            [
                ("1102345", "NOT_READY", "Lunch", 1713348062000),
                ("A-7", "READY", "", 1713348062000),
                ("1102346", "IN_CALL", "", 1713348063500)
            ],
            "sorted by timestamp, ties in answer order"
        );
        assert!(states.iter().all(|s| s.acd_id == "lv" && s.received_utc == Some(99)));
        let idx: Vec<usize> = skipped.iter().map(|s| s.index).collect();
        assert_eq!(idx, [3, 4, 5, 6]);
        assert!(skipped[0].reason.contains("eventType"), "{skipped:?}");
        assert!(skipped[3].reason.contains("eventCode"), "{skipped:?}");
    }

    #[test]
    fn the_reason_field_is_configurable() {
        let answer = json!({"token": "t", "agentEvent": [{"agentId": 1, "eventType": "NOT_READY", "timestamp": 5, "notReadyReason": "Break"}]});
        let (states, _) = map_events(&answer, "lv", "notReadyReason", 0);
        assert_eq!(states[0].reason_code, "Break");
    }
}
