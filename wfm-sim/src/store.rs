//! What the emulated WFM holds: tokens, and every report received, upserted by the contract's
//! keys. Also the strict checks a real WFM applies to the values (the shapes are serde's job).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use acd_schemas::time::parse_rfc3339;
use acd_schemas::wfm::*;
use serde_json::{json, Value};

/// Issued tokens and when they expire.
#[derive(Default)]
pub struct Tokens {
    access: HashMap<String, Instant>,
    refresh: HashMap<String, Instant>,
    issued: u64,
}

impl Tokens {
    fn mint(&mut self, prefix: &str) -> String {
        self.issued += 1;
        format!("{prefix}-{}-{:016x}", self.issued, rand::random::<u64>())
    }

    /// A new access and refresh token.
    pub fn issue(&mut self, token_ttl: u64, refresh_ttl: u64) -> (String, String) {
        let now = Instant::now();
        self.access.retain(|_, exp| *exp > now);
        self.refresh.retain(|_, exp| *exp > now);
        let a = self.mint("at");
        let r = self.mint("rt");
        self.access.insert(a.clone(), now + Duration::from_secs(token_ttl));
        self.refresh.insert(r.clone(), now + Duration::from_secs(refresh_ttl));
        (a, r)
    }

    /// Trades a live refresh token for a new pair; the old refresh token is spent.
    pub fn refresh(&mut self, refresh: &str, token_ttl: u64, refresh_ttl: u64) -> Option<(String, String)> {
        let exp = self.refresh.remove(refresh)?;
        if exp <= Instant::now() {
            return None;
        }
        Some(self.issue(token_ttl, refresh_ttl))
    }

    /// How many access tokens are still valid.
    pub fn live_access(&self) -> usize {
        let now = Instant::now();
        self.access.values().filter(|exp| **exp > now).count()
    }

    /// True for an access token that was issued and has not expired.
    pub fn access_valid(&self, token: &str) -> bool {
        self.access.get(token).is_some_and(|exp| *exp > Instant::now())
    }
}

/// Everything received.
#[derive(Default)]
pub struct Store {
    pub tokens: Tokens,
    pub agent_states: Vec<AgentStateJson>,
    /// When each agent state arrived (wall clock, ms), for latency measurements.
    pub agent_states_received_ms: Vec<i64>,
    pub queue_rows: BTreeMap<(String, String), QueueRow>,
    pub agent_queue_rows: BTreeMap<(String, String, String), AgentQueueRow>,
    pub agent_rows: BTreeMap<(String, String), AgentPerformanceRow>,
    pub activity: BTreeMap<(String, String), AgentActivityEntry>,
    pub connection: Vec<ConnectionStatusJson>,
    /// Calls by path and answered status.
    pub calls: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Rows that replaced an earlier row with the same key.
    pub replaced: u64,
}

impl Store {
    /// Counts one answered call.
    pub fn count(&mut self, path: &str, status: u16) {
        *self.calls.entry(path.to_string()).or_default().entry(status).or_default() += 1;
    }

    /// Forgets every report (tokens and call counts stay).
    pub fn wipe(&mut self) {
        self.agent_states.clear();
        self.agent_states_received_ms.clear();
        self.queue_rows.clear();
        self.agent_queue_rows.clear();
        self.agent_rows.clear();
        self.activity.clear();
        self.connection.clear();
        self.replaced = 0;
    }

    /// Agent states are appended.
    pub fn append_states(&mut self, req: AgentStateList) {
        let now = acd_schemas::time::now_millis();
        self.agent_states_received_ms.extend(std::iter::repeat_n(now, req.agent_state_list.len()));
        self.agent_states.extend(req.agent_state_list);
    }

    /// Intraday rows are upserted row by row.
    pub fn upsert_intraday(&mut self, req: IntradayReport) {
        let start = req.start_date;
        let d = req.report_data;
        for r in d.queue_report {
            let k = (start.clone(), r.queue_value.clone());
            self.replaced += self.queue_rows.insert(k, r).is_some() as u64;
        }
        for r in d.agent_queue_report {
            let k = (start.clone(), r.queue_value.clone(), r.agent_value.clone());
            self.replaced += self.agent_queue_rows.insert(k, r).is_some() as u64;
        }
        for r in d.agent_system_performance_report {
            let k = (start.clone(), r.agent_value.clone());
            self.replaced += self.agent_rows.insert(k, r).is_some() as u64;
        }
    }

    /// An agent's activity list for an interval is replaced whole.
    pub fn upsert_activity(&mut self, req: AgentActivityReport) {
        for e in req.report_data {
            let k = (req.start_date.clone(), e.agent_value.clone());
            self.replaced += self.activity.insert(k, e).is_some() as u64;
        }
    }

    /// Everything as JSON, for `GET /sim/state`.
    pub fn to_json(&self) -> Value {
        let with_start = |start: &str, row: Value| {
            let mut row = row;
            row["startDate"] = json!(start);
            row
        };
        json!({
            "agentStates": self.agent_states,
            "agentStatesReceivedMs": self.agent_states_received_ms,
            "queueReport": self.queue_rows.iter().map(|((s, _), r)| with_start(s, json!(r))).collect::<Vec<_>>(),
            "agentQueueReport": self.agent_queue_rows.iter().map(|((s, _, _), r)| with_start(s, json!(r))).collect::<Vec<_>>(),
            "agentSystemPerformanceReport": self.agent_rows.iter().map(|((s, _), r)| with_start(s, json!(r))).collect::<Vec<_>>(),
            "agentActivity": self.activity.iter().map(|((s, _), r)| with_start(s, json!(r))).collect::<Vec<_>>(),
            "connection": self.connection,
            "calls": self.calls.iter().map(|(p, m)| (p.clone(), m.iter().map(|(s, n)| (s.to_string(), *n)).collect::<BTreeMap<_, _>>())).collect::<BTreeMap<_, _>>(),
            "replaced": self.replaced,
            "liveAccessTokens": self.tokens.live_access(),
        })
    }
}

type Check = Result<(), (String, String)>;

/// A timestamp exactly as the contract sends it: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn ts(field: &str, text: &str) -> Result<i64, (String, String)> {
    let shape = text.len() == 24 && text.ends_with('Z') && text.as_bytes()[19] == b'.';
    match parse_rfc3339(text) {
        Ok(t) if shape => Ok(t),
        _ => Err((field.to_string(), format!("must be YYYY-MM-DDTHH:MM:SS.mmmZ, is {text:?}"))),
    }
}

fn id(field: &str, text: &str) -> Check {
    let n = text.chars().count();
    if (1..=256).contains(&n) {
        Ok(())
    } else {
        Err((field.to_string(), format!("must have 1..256 characters, has {n}")))
    }
}

fn nonneg(field: &str, x: f64) -> Check {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        Err((field.to_string(), format!("must be a finite number >= 0, is {x}")))
    }
}

fn interval(start: &str, end: &str, minutes: u32) -> Check {
    let s = ts("startDate", start)?;
    let e = ts("endDate", end)?;
    let len = minutes as i64 * 60_000;
    if s % len != 0 {
        return Err(("startDate".into(), format!("is not on the {minutes}-minute grid")));
    }
    if e - s != len {
        return Err(("endDate".into(), format!("must be startDate + {minutes} minutes")));
    }
    Ok(())
}

/// Values of an agent-state list.
pub fn check_agent_states(req: &AgentStateList) -> Check {
    if req.agent_state_list.is_empty() {
        return Err(("agentStateList".into(), "must not be empty".into()));
    }
    for (i, s) in req.agent_state_list.iter().enumerate() {
        // The item's path is written only for an error: this runs for every state received.
        let at = |(field, msg): (String, String)| (format!("agentStateList[{i}].{field}"), msg);
        id("loginId", &s.login_id).map_err(at)?;
        id("acdId", &s.acd_id).map_err(at)?;
        id("eventCode", &s.event_code).map_err(at)?;
        ts("eventUtcTime", &s.event_utc_time).map_err(at)?;
    }
    Ok(())
}

/// Values of an intraday report.
pub fn check_intraday(req: &IntradayReport, minutes: u32) -> Check {
    interval(&req.start_date, &req.end_date, minutes)?;
    let d = &req.report_data;
    for (i, r) in d.queue_report.iter().enumerate() {
        let f = |n: &str| format!("reportData.queueReport[{i}].{n}");
        id(&f("queueValue"), &r.queue_value)?;
        for (n, x) in [
            ("handleTime", r.handle_time),
            ("workTime", r.work_time),
            ("holdTime", r.hold_time),
            ("queueDelayTime", r.queue_delay_time),
            ("svcLvlPct", r.svc_lvl_pct),
        ] {
            nonneg(&f(n), x)?;
        }
        // Counts are not checked against each other: the WFM's own published example has a
        // queue whose contactsReceived is not handled plus abandoned, and it is accepted.
        for (n, x) in [
            ("contactsReceived", r.contacts_received),
            ("handledShort", r.handled_short),
            ("handledLong", r.handled_long),
        ] {
            if x < 0 {
                return Err((f(n), "must be >= 0".into()));
            }
        }
    }
    for (i, r) in d.agent_queue_report.iter().enumerate() {
        id(&format!("reportData.agentQueueReport[{i}].queueValue"), &r.queue_value)?;
        id(&format!("reportData.agentQueueReport[{i}].agentValue"), &r.agent_value)?;
        nonneg(&format!("reportData.agentQueueReport[{i}].handledTime"), r.handled_time)?;
    }
    for (i, r) in d.agent_system_performance_report.iter().enumerate() {
        let f = |n: &str| format!("reportData.agentSystemPerformanceReport[{i}].{n}");
        id(&f("agentValue"), &r.agent_value)?;
        for (n, x) in [("loginTime", r.login_time), ("readyTime", r.ready_time), ("notReadyTime", r.not_ready_time)] {
            nonneg(&f(n), x)?;
        }
        if r.ready_time + r.not_ready_time > r.login_time + 1.0 {
            return Err((f("loginTime"), "must not be less than readyTime + notReadyTime".into()));
        }
    }
    Ok(())
}

/// Values of an agent-activity report.
pub fn check_activity(req: &AgentActivityReport, minutes: u32) -> Check {
    interval(&req.start_date, &req.end_date, minutes)?;
    for (i, e) in req.report_data.iter().enumerate() {
        id(&format!("reportData[{i}].agentValue"), &e.agent_value)?;
        for (j, s) in e.agent_activity.iter().enumerate() {
            id(&format!("reportData[{i}].agentActivity[{j}].state"), &s.state)?;
            ts(&format!("reportData[{i}].agentActivity[{j}].startTime"), &s.start_time)?;
            if s.duration < 0 {
                return Err((format!("reportData[{i}].agentActivity[{j}].duration"), "must be >= 0".into()));
            }
        }
    }
    Ok(())
}
