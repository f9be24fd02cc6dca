//! Fault injection: fail the next N calls of a path, a full outage for S seconds, reject any
//! intraday request that carries a given queue.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::paths;

/// `POST /sim/faults`: the next `count` calls of `path` ("*" for every data path) answer
/// `status` after `delayMs`, with `Retry-After: retryAfter` when given. A 2xx `status` makes a
/// slow WFM instead: the call waits `delayMs` and is then answered as usual.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultSpec {
    pub path: String,
    pub count: u32,
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub delay_ms: u64,
}

/// `POST /sim/outage`: every data call (and the auth calls too with `includeAuth`) answers
/// `status` for `seconds`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutageSpec {
    pub seconds: f64,
    #[serde(default = "default_status")]
    pub status: u16,
    #[serde(default)]
    pub include_auth: bool,
}

/// `POST /sim/reject-queue`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RejectSpec {
    pub queue_value: String,
}

fn default_status() -> u16 {
    503
}

/// What an injected fault answers.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub delay_ms: u64,
}

/// The armed faults.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<FaultSpec>,
    outage: Option<(Instant, OutageSpec)>,
    pub rejected_queues: BTreeSet<String>,
}

fn is_auth(path: &str) -> bool {
    path == paths::TOKEN || path == paths::REFRESH
}

impl Faults {
    /// Arms a rule.
    pub fn add(&mut self, spec: FaultSpec) {
        self.rules.push(spec);
    }

    /// Starts an outage.
    pub fn outage(&mut self, spec: OutageSpec) {
        let until = Instant::now() + Duration::from_secs_f64(spec.seconds.max(0.0));
        self.outage = Some((until, spec));
    }

    /// The fault for this call, if any; consumes one count of a rule.
    pub fn take(&mut self, path: &str) -> Option<Verdict> {
        if let Some((until, spec)) = &self.outage {
            if Instant::now() < *until {
                if spec.include_auth || !is_auth(path) {
                    return Some(Verdict { status: spec.status, retry_after: None, delay_ms: 0 });
                }
            } else {
                self.outage = None;
            }
        }
        let rule =
            self.rules.iter_mut().find(|r| r.count > 0 && (r.path == path || (r.path == "*" && !is_auth(path))))?;
        rule.count -= 1;
        let v = Verdict { status: rule.status, retry_after: rule.retry_after, delay_ms: rule.delay_ms };
        self.rules.retain(|r| r.count > 0);
        Some(v)
    }

    /// The first rejected queue an intraday request carries.
    pub fn rejected_queue(&self, req: &acd_schemas::wfm::IntradayReport) -> Option<String> {
        let d = &req.report_data;
        d.queue_report
            .iter()
            .map(|r| &r.queue_value)
            .chain(d.agent_queue_report.iter().map(|r| &r.queue_value))
            .find(|q| self.rejected_queues.contains(*q))
            .cloned()
    }

    /// For `GET /sim/faults`.
    pub fn to_json(&self) -> Value {
        json!({
            "rules": self.rules.iter().map(|r| json!({"path": r.path, "count": r.count, "status": r.status})).collect::<Vec<_>>(),
            "outageSecondsLeft": self.outage.as_ref().map(|(u, _)| u.saturating_duration_since(Instant::now()).as_secs_f64()),
            "rejectedQueues": self.rejected_queues,
        })
    }
}
