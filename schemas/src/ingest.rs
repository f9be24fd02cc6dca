//! The push-ingest API's bodies: parsed and validated item by item into Kafka records.
//!
//! A body is accepted whole or refused whole: every error of every item is collected, each naming
//! its item's position (`index`) and the field's path (`contacts[3].endedUtc`), so an ACD
//! integrator can fix them all in one round. Parsing is pure: "now" and the interval length are
//! arguments.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::records::*;
use crate::time::{parse_rfc3339, Millis};
use crate::wfm::{AgentPerformanceRow, AgentQueueRow, QueueRow};

/// Longest identifier or string field, in characters.
pub const MAX_TEXT: usize = 256;
/// How far off the interval grid a report's start and end may be and still be snapped to it.
pub const SNAP_TOLERANCE_MS: Millis = 60_000;

/// One thing wrong with a request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    /// The item's position in its list; absent for report-level errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub field: String,
    pub message: String,
}

/// What a valid body becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    AgentStates(Vec<AgentState>),
    Contacts(Vec<Contact>),
    IntervalRows(Vec<IntervalRow>),
    AgentActivity(Vec<AgentActivity>),
}

impl Parsed {
    /// How many Kafka records this becomes.
    pub fn len(&self) -> usize {
        match self {
            Parsed::AgentStates(v) => v.len(),
            Parsed::Contacts(v) => v.len(),
            Parsed::IntervalRows(v) => v.len(),
            Parsed::AgentActivity(v) => v.len(),
        }
    }

    /// The ACDs the records came from, each with its latest event time. Interval reports and
    /// activity lists name no ACD, so they give none.
    pub fn sources(&self) -> std::collections::BTreeMap<&str, Millis> {
        let mut out: std::collections::BTreeMap<&str, Millis> = std::collections::BTreeMap::new();
        let pairs: Box<dyn Iterator<Item = (&str, Millis)>> = match self {
            Parsed::AgentStates(v) => Box::new(v.iter().map(|s| (s.acd_id.as_str(), s.event_utc_time))),
            Parsed::Contacts(v) => Box::new(v.iter().map(|c| (c.acd_id.as_str(), c.ended_utc))),
            Parsed::IntervalRows(_) | Parsed::AgentActivity(_) => Box::new(std::iter::empty()),
        };
        for (acd, t) in pairs {
            let e = out.entry(acd).or_insert(t);
            *e = (*e).max(t);
        }
        out
    }

    /// True when the body had no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Collects the errors of one body.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, index: Option<usize>, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { index, field: field.to_string(), message: message.into() });
    }
}

/// One JSON object being read, with its path for error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    index: Option<usize>,
}

impl<'a> Obj<'a> {
    fn field(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A string of `min..=MAX_TEXT` characters; `None` (and an error) when absent or wrong.
    fn string(&self, e: &mut Errors, name: &str, min: usize, required: bool) -> Option<String> {
        match self.get(name) {
            None if required => {
                e.push(self.index, &self.field(name), "is required");
                None
            }
            None => Some(String::new()),
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n < min || n > MAX_TEXT {
                    e.push(self.index, &self.field(name), format!("must have {min}..{MAX_TEXT} characters, has {n}"));
                    None
                } else {
                    Some(s.clone())
                }
            }
            Some(other) => {
                e.push(self.index, &self.field(name), format!("must be a string, not {}", kind(other)));
                None
            }
        }
    }

    fn id(&self, e: &mut Errors, name: &str) -> Option<String> {
        self.string(e, name, 1, true)
    }

    fn text(&self, e: &mut Errors, name: &str) -> Option<String> {
        self.string(e, name, 0, false)
    }

    fn time(&self, e: &mut Errors, name: &str) -> Option<Millis> {
        match self.get(name) {
            None => {
                e.push(self.index, &self.field(name), "is required");
                None
            }
            Some(Value::String(s)) => match parse_rfc3339(s) {
                Ok(t) => Some(t),
                Err(msg) => {
                    e.push(self.index, &self.field(name), msg);
                    None
                }
            },
            Some(other) => {
                e.push(self.index, &self.field(name), format!("must be an RFC 3339 string, not {}", kind(other)));
                None
            }
        }
    }

    /// A finite number >= 0; `default` when absent, an error when absent and no default.
    fn number(&self, e: &mut Errors, name: &str, default: Option<f64>) -> Option<f64> {
        match self.get(name) {
            None => {
                if default.is_none() {
                    e.push(self.index, &self.field(name), "is required");
                }
                default
            }
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Some(x),
                _ => {
                    e.push(self.index, &self.field(name), format!("must be a finite number >= 0, is {n}"));
                    None
                }
            },
            Some(other) => {
                e.push(self.index, &self.field(name), format!("must be a number, not {}", kind(other)));
                None
            }
        }
    }

    /// A whole number >= 0.
    fn count(&self, e: &mut Errors, name: &str, default: Option<i64>) -> Option<i64> {
        let x = self.number(e, name, default.map(|d| d as f64))?;
        if x.fract() != 0.0 || x > i64::MAX as f64 {
            e.push(self.index, &self.field(name), format!("must be a whole number, is {x}"));
            return None;
        }
        Some(x as i64)
    }

    fn boolean(&self, e: &mut Errors, name: &str) -> Option<bool> {
        match self.get(name) {
            None => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                e.push(self.index, &self.field(name), format!("must be true or false, not {}", kind(other)));
                None
            }
        }
    }

    fn list(&self, e: &mut Errors, name: &str, required: bool) -> Vec<Obj<'a>> {
        let Some(value) = self.get(name) else {
            if required {
                e.push(self.index, &self.field(name), "is required");
            }
            return Vec::new();
        };
        let Value::Array(items) = value else {
            e.push(self.index, &self.field(name), format!("must be a list, not {}", kind(value)));
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.field(name));
            match item {
                Value::Object(map) => out.push(Obj { map, path, index: Some(i) }),
                other => e.push(Some(i), &path, format!("must be an object, not {}", kind(other))),
            }
        }
        out
    }

    fn object(&self, e: &mut Errors, name: &str) -> Option<Obj<'a>> {
        match self.get(name) {
            Some(Value::Object(map)) => Some(Obj { map, path: self.field(name), index: self.index }),
            None => {
                e.push(self.index, &self.field(name), "is required");
                None
            }
            Some(other) => {
                e.push(self.index, &self.field(name), format!("must be an object, not {}", kind(other)));
                None
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn root(body: &[u8]) -> Result<Map<String, Value>, Vec<FieldError>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(vec![FieldError {
            index: None,
            field: String::new(),
            message: format!("the body must be a JSON object, not {}", kind(&other)),
        }]),
        Err(err) => {
            Err(vec![FieldError { index: None, field: String::new(), message: format!("invalid JSON: {err}") }])
        }
    }
}

fn finish<T>(errors: Errors, value: T) -> Result<T, Vec<FieldError>> {
    if errors.0.is_empty() {
        Ok(value)
    } else {
        Err(errors.0)
    }
}

/// `POST /v1/agent-states`.
pub fn agent_states(body: &[u8], now: Millis) -> Result<Vec<AgentState>, Vec<FieldError>> {
    if let Some(states) = fast::agent_states(body, now) {
        return Ok(states);
    }
    agent_states_tree(body, now)
}

/// The borrowing fast path of [`agent_states`] alone: `None` for anything it leaves to the tree.
pub fn agent_states_fast(body: &[u8], now: Millis) -> Option<Vec<AgentState>> {
    fast::agent_states(body, now)
}

/// The tree path of [`agent_states`] alone (every body, with its errors); the two must agree
/// wherever the fast path answers.
pub fn agent_states_tree(body: &[u8], now: Millis) -> Result<Vec<AgentState>, Vec<FieldError>> {
    let map = root(body)?;
    let top = Obj { map: &map, path: String::new(), index: None };
    let mut e = Errors::default();
    let mut out = Vec::new();
    for item in top.list(&mut e, "agentStateList", true) {
        let (login, acd, code, reason, time) = (
            item.id(&mut e, "loginId"),
            item.id(&mut e, "acdId"),
            item.id(&mut e, "eventCode"),
            item.text(&mut e, "reasonCode"),
            item.time(&mut e, "eventUtcTime"),
        );
        if let (Some(login_id), Some(acd_id), Some(event_code), Some(reason_code), Some(event_utc_time)) =
            (login, acd, code, reason, time)
        {
            out.push(AgentState { acd_id, login_id, event_code, reason_code, event_utc_time, received_utc: Some(now) });
        }
    }
    finish(e, out)
}

/// `POST /v1/contacts`.
pub fn contacts(body: &[u8], now: Millis) -> Result<Vec<Contact>, Vec<FieldError>> {
    if let Some(contacts) = fast::contacts(body, now) {
        return Ok(contacts);
    }
    contacts_tree(body, now)
}

/// The borrowing fast path of [`contacts`] alone: `None` for anything it leaves to the tree.
pub fn contacts_fast(body: &[u8], now: Millis) -> Option<Vec<Contact>> {
    fast::contacts(body, now)
}

/// The tree path of [`contacts`] alone (every body, with its errors); the two must agree
/// wherever the fast path answers.
pub fn contacts_tree(body: &[u8], now: Millis) -> Result<Vec<Contact>, Vec<FieldError>> {
    let map = root(body)?;
    let top = Obj { map: &map, path: String::new(), index: None };
    let mut e = Errors::default();
    let mut out = Vec::new();
    for item in top.list(&mut e, "contacts", true) {
        let before = e.0.len();
        let acd_id = item.id(&mut e, "acdId");
        let contact_id = item.id(&mut e, "contactId");
        let queue_value = item.id(&mut e, "queueValue");
        let queue_name = item.text(&mut e, "queueName");
        let is_outbound = item.boolean(&mut e, "isOutbound");
        let outcome = match item.get("outcome") {
            Some(Value::String(s)) if s == "HANDLED" => Some(Outcome::Handled),
            Some(Value::String(s)) if s == "ABANDONED" => Some(Outcome::Abandoned),
            None => {
                e.push(item.index, &item.field("outcome"), "is required");
                None
            }
            Some(other) => {
                e.push(item.index, &item.field("outcome"), format!("must be HANDLED or ABANDONED, is {other}"));
                None
            }
        };
        let arrived = item.time(&mut e, "arrivedUtc");
        let ended = item.time(&mut e, "endedUtc");
        let delay = item.number(&mut e, "queueDelaySec", None);
        let handled = outcome == Some(Outcome::Handled);
        let talk = item.number(&mut e, "talkSec", if handled { None } else { Some(0.0) });
        let hold = item.number(&mut e, "holdSec", if handled { None } else { Some(0.0) });
        let work = item.number(&mut e, "workSec", if handled { None } else { Some(0.0) });
        let agent_value = if handled { item.id(&mut e, "agentValue") } else { item.text(&mut e, "agentValue") };
        let agent_id = item.text(&mut e, "agentId");
        let party = match item.get("party") {
            None => Some(None),
            Some(Value::String(s)) if s == "RIGHT" => Some(Some(Party::Right)),
            Some(Value::String(s)) if s == "WRONG" => Some(Some(Party::Wrong)),
            Some(other) => {
                e.push(item.index, &item.field("party"), format!("must be RIGHT, WRONG or null, is {other}"));
                None
            }
        };
        if let (Some(a), Some(b)) = (arrived, ended) {
            if b < a {
                e.push(item.index, &item.field("endedUtc"), "must not be before arrivedUtc");
            }
        }
        if outcome == Some(Outcome::Abandoned) {
            for (name, v) in [("talkSec", talk), ("holdSec", hold), ("workSec", work)] {
                if v.unwrap_or(0.0) != 0.0 {
                    e.push(item.index, &item.field(name), "an abandoned contact has no talk, hold or work time");
                }
            }
            if agent_value.as_deref().is_some_and(|a| !a.is_empty()) {
                e.push(item.index, &item.field("agentValue"), "an abandoned contact has no agent");
            }
        }
        if matches!(party, Some(Some(_))) && is_outbound == Some(false) {
            e.push(item.index, &item.field("party"), "right/wrong party is for outbound contacts only");
        }
        if e.0.len() != before {
            continue;
        }
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        out.push(Contact {
            acd_id: acd_id.unwrap_or_default(),
            contact_id: contact_id.unwrap_or_default(),
            queue_value: queue_value.unwrap_or_default(),
            queue_name: queue_name.unwrap_or_default(),
            is_outbound: is_outbound.unwrap_or_default(),
            outcome: outcome.unwrap_or(Outcome::Handled),
            arrived_utc: arrived.unwrap_or_default(),
            ended_utc: ended.unwrap_or_default(),
            queue_delay_sec: delay.unwrap_or_default(),
            talk_sec: talk.unwrap_or_default(),
            hold_sec: hold.unwrap_or_default(),
            work_sec: work.unwrap_or_default(),
            agent_value: non_empty(agent_value),
            agent_id: non_empty(agent_id),
            party: party.flatten(),
            received_utc: Some(now),
        });
    }
    finish(e, out)
}

/// The interval a report covers, snapped to the grid: `(start, end)`. Reports of one interval
/// (`minutes`) are accepted, and of half of one when `minutes` is 30 (rolled up downstream).
fn report_interval(top: &Obj, e: &mut Errors, minutes: u32) -> Option<(Millis, Millis)> {
    let start = top.time(e, "startDate");
    let end = top.time(e, "endDate");
    let (start, end) = (start?, end?);
    let length = minutes as i64 * 60_000;
    let grid = if minutes == 30 { length / 2 } else { length };
    let snap = |t: Millis| {
        let nearest = (t + grid / 2).div_euclid(grid) * grid;
        ((t - nearest).abs() < SNAP_TOLERANCE_MS).then_some(nearest)
    };
    let (s, en) = (snap(start), snap(end));
    if s.is_none() {
        e.push(None, "startDate", format!("is not within 60 s of a {}-minute interval boundary", grid / 60_000));
    }
    if en.is_none() {
        e.push(None, "endDate", format!("is not within 60 s of a {}-minute interval boundary", grid / 60_000));
    }
    let (s, en) = (s?, en?);
    if en - s > length {
        e.push(None, "endDate", format!("the report is longer than one {minutes}-minute interval"));
        return None;
    }
    if en <= s {
        e.push(None, "endDate", "must be after startDate");
        return None;
    }
    if s.div_euclid(length) != (en - 1).div_euclid(length) {
        e.push(None, "endDate", format!("the report crosses a {minutes}-minute interval boundary"));
        return None;
    }
    Some((s, en))
}

/// `POST /v1/interval-reports`: one record per row.
pub fn interval_report(body: &[u8], minutes: u32) -> Result<Vec<IntervalRow>, Vec<FieldError>> {
    let map = root(body)?;
    let top = Obj { map: &map, path: String::new(), index: None };
    let mut e = Errors::default();
    let interval = report_interval(&top, &mut e, minutes);
    let acd_type = top.text(&mut e, "acdType");
    let report_version = top.text(&mut e, "reportVersion");
    let status = top.text(&mut e, "status");
    let status_reason = top.text(&mut e, "statusReason");
    let Some(data) = top.object(&mut e, "reportData") else {
        return Err(e.0);
    };
    let mut rows = Vec::new();
    for q in data.list(&mut e, "queueReport", false) {
        let before = e.0.len();
        let row = QueueRow {
            queue_value: q.id(&mut e, "queueValue").unwrap_or_default(),
            queue_name: q.text(&mut e, "queueName").unwrap_or_default(),
            is_outbound: q.boolean(&mut e, "isOutbound").unwrap_or_default(),
            contacts_received: q.count(&mut e, "contactsReceived", None).unwrap_or_default(),
            abandoned_short: q.count(&mut e, "abandonedShort", None).unwrap_or_default(),
            abandoned_long: q.count(&mut e, "abandonedLong", None).unwrap_or_default(),
            handled_short: q.count(&mut e, "handledShort", None).unwrap_or_default(),
            handled_long: q.count(&mut e, "handledLong", None).unwrap_or_default(),
            handle_time: q.number(&mut e, "handleTime", None).unwrap_or_default(),
            work_time: q.number(&mut e, "workTime", None).unwrap_or_default(),
            hold_time: q.number(&mut e, "holdTime", Some(0.0)).unwrap_or_default(),
            queue_delay_time: q.number(&mut e, "queueDelayTime", None).unwrap_or_default(),
            svc_lvl_pct: q.number(&mut e, "svcLvlPct", None).unwrap_or_default(),
            right_party_handle_time: q.number(&mut e, "rightPartyHandleTime", Some(0.0)).unwrap_or_default(),
            right_party_contacts: q.count(&mut e, "rightPartyContacts", Some(0)).unwrap_or_default(),
            wrong_party_handle_time: q.number(&mut e, "wrongPartyHandleTime", Some(0.0)).unwrap_or_default(),
            wrong_party_contacts: q.count(&mut e, "wrongPartyContacts", Some(0)).unwrap_or_default(),
            backlog: q.count(&mut e, "backlog", Some(0)).unwrap_or_default(),
            backlog_not_expired: q.count(&mut e, "backlogNotExpired", Some(0)).unwrap_or_default(),
            backlog_expired: q.count(&mut e, "backlogExpired", Some(0)).unwrap_or_default(),
            active: q.count(&mut e, "active", Some(0)).unwrap_or_default(),
        };
        if e.0.len() == before {
            rows.push((RowKind::Queue, Some(row), None, None));
        }
    }
    for q in data.list(&mut e, "agentQueueReport", false) {
        let before = e.0.len();
        let row = AgentQueueRow {
            queue_value: q.id(&mut e, "queueValue").unwrap_or_default(),
            queue_name: q.text(&mut e, "queueName").unwrap_or_default(),
            is_outbound: q.boolean(&mut e, "isOutbound").unwrap_or_default(),
            agent_value: q.id(&mut e, "agentValue").unwrap_or_default(),
            agent_id: q.text(&mut e, "agentId").unwrap_or_default(),
            handled: q.count(&mut e, "handled", None).unwrap_or_default(),
            handled_time: q.number(&mut e, "handledTime", None).unwrap_or_default(),
            work_time: q.number(&mut e, "workTime", None).unwrap_or_default(),
            hold_time: q.number(&mut e, "holdTime", Some(0.0)).unwrap_or_default(),
            right_party_handle_time: q.number(&mut e, "rightPartyHandleTime", Some(0.0)).unwrap_or_default(),
            right_party_contacts: q.count(&mut e, "rightPartyContacts", Some(0)).unwrap_or_default(),
            wrong_party_handle_time: q.number(&mut e, "wrongPartyHandleTime", Some(0.0)).unwrap_or_default(),
            wrong_party_contacts: q.count(&mut e, "wrongPartyContacts", Some(0)).unwrap_or_default(),
            active: q.count(&mut e, "active", Some(0)).unwrap_or_default(),
        };
        if e.0.len() == before {
            rows.push((RowKind::AgentQueue, None, Some(row), None));
        }
    }
    for a in data.list(&mut e, "agentSystemPerformanceReport", false) {
        let before = e.0.len();
        let row = AgentPerformanceRow {
            agent_value: a.id(&mut e, "agentValue").unwrap_or_default(),
            agent_id: a.text(&mut e, "agentId").unwrap_or_default(),
            ready_time: a.number(&mut e, "readyTime", None).unwrap_or_default(),
            not_ready_time: a.number(&mut e, "notReadyTime", None).unwrap_or_default(),
            login_time: a.number(&mut e, "loginTime", None).unwrap_or_default(),
        };
        if e.0.len() == before {
            rows.push((RowKind::AgentPerformance, None, None, Some(row)));
        }
    }
    let Some((start_date, end_date)) = interval else {
        return Err(e.0);
    };
    let out = rows
        .into_iter()
        .map(|(kind, queue, agent_queue, agent_performance)| IntervalRow {
            acd_type: acd_type.clone().unwrap_or_default(),
            report_version: report_version.clone().unwrap_or_default(),
            start_date,
            end_date,
            status: status.clone().unwrap_or_default(),
            status_reason: status_reason.clone().unwrap_or_default(),
            kind,
            queue,
            agent_queue,
            agent_performance,
        })
        .collect();
    finish(e, out)
}

/// `POST /v1/agent-activity`: one record per agent entry.
pub fn agent_activity(body: &[u8], minutes: u32) -> Result<Vec<AgentActivity>, Vec<FieldError>> {
    let map = root(body)?;
    let top = Obj { map: &map, path: String::new(), index: None };
    let mut e = Errors::default();
    let interval = report_interval(&top, &mut e, minutes);
    let acd_type = top.text(&mut e, "acdType").unwrap_or_default();
    let report_version = top.text(&mut e, "reportVersion").unwrap_or_default();
    let mut out = Vec::new();
    for entry in top.list(&mut e, "reportData", true) {
        let before = e.0.len();
        let agent_value = entry.id(&mut e, "agentValue").unwrap_or_default();
        let agent_id = entry.text(&mut e, "agentId").unwrap_or_default();
        let user_name = entry.text(&mut e, "userName").unwrap_or_default();
        let mut segments = Vec::new();
        for s in entry.list(&mut e, "agentActivity", true) {
            // Errors inside a segment are reported against the agent entry's position.
            let s = Obj { index: entry.index, ..s };
            segments.push(ActivitySegment {
                state: s.id(&mut e, "state").unwrap_or_default(),
                start_time: s.time(&mut e, "startTime").unwrap_or_default(),
                duration: s.count(&mut e, "duration", None).unwrap_or_default(),
                reason: s.text(&mut e, "reason").unwrap_or_default(),
            });
        }
        if e.0.len() == before {
            let (start_date, end_date) = interval.unwrap_or_default();
            out.push(AgentActivity {
                acd_type: acd_type.clone(),
                report_version: report_version.clone(),
                start_date,
                end_date,
                agent_value,
                agent_id,
                user_name,
                agent_activity: segments,
            });
        }
    }
    finish(e, out)
}

/// Valid agent-state bodies, the bulk of all traffic, read without building a `Value` tree.
///
/// Only a body that this path reads whole and finds valid is taken from it, and it then yields
/// exactly what the tree path yields; anything else (an error, a null, an object given as a list,
/// a value of another type, even a field it does not know of another type) goes to the tree path,
/// which names every error.
mod fast {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;

    use serde_json::Number;

    use super::MAX_TEXT;
    use crate::records::{AgentState, Contact, Outcome, Party};
    use crate::time::{parse_rfc3339, Millis};

    /// The body: an object with the list `T::LIST` (other keys ignored, as the tree path does).
    struct Body<T>(Vec<T>);

    /// An item of a body's list, and the list's name.
    trait Item {
        const LIST: &'static str;
    }

    /// One state's fields, strings or null, the last of a repeated key winning (as in the tree).
    #[derive(Default)]
    struct State<'a> {
        login_id: Option<Cow<'a, str>>,
        acd_id: Option<Cow<'a, str>>,
        event_code: Option<Cow<'a, str>>,
        reason_code: Option<Cow<'a, str>>,
        event_utc_time: Option<Cow<'a, str>>,
    }

    impl Item for State<'_> {
        const LIST: &'static str = "agentStateList";
    }

    /// One contact's fields, each of its own type or null (any other type goes to the tree).
    /// Numbers are read as JSON numbers and converted as the tree path converts them.
    #[derive(Default)]
    struct ContactIn<'a> {
        acd_id: Option<Cow<'a, str>>,
        contact_id: Option<Cow<'a, str>>,
        queue_value: Option<Cow<'a, str>>,
        queue_name: Option<Cow<'a, str>>,
        is_outbound: Option<bool>,
        outcome: Option<Cow<'a, str>>,
        arrived_utc: Option<Cow<'a, str>>,
        ended_utc: Option<Cow<'a, str>>,
        queue_delay_sec: Option<Number>,
        talk_sec: Option<Number>,
        hold_sec: Option<Number>,
        work_sec: Option<Number>,
        agent_value: Option<Cow<'a, str>>,
        agent_id: Option<Cow<'a, str>>,
        party: Option<Cow<'a, str>>,
    }

    impl Item for ContactIn<'_> {
        const LIST: &'static str = "contacts";
    }

    /// A key read in place (a key with escapes too, through serde_json's scratch buffer): which
    /// of the keys the fast path reads it is (`None` for any other), without an allocation.
    struct KeyName;

    impl<'de> DeserializeSeed<'de> for KeyName {
        type Value = Option<&'static str>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
    }

    impl<'de> Visitor<'de> for KeyName {
        type Value = Option<&'static str>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a key")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            // A `match` on the text (length first), not a search of the list.
            macro_rules! known {
                ($($k:literal),*) => {
                    match v {
                        $($k => Some($k),)*
                        _ => None,
                    }
                };
            }
            let key = known!(
                "agentStateList",
                "contacts",
                "loginId",
                "acdId",
                "eventCode",
                "reasonCode",
                "eventUtcTime",
                "contactId",
                "queueValue",
                "queueName",
                "isOutbound",
                "outcome",
                "arrivedUtc",
                "endedUtc",
                "queueDelaySec",
                "talkSec",
                "holdSec",
                "workSec",
                "agentValue",
                "agentId",
                "party"
            );
            Ok(key)
        }
    }

    /// Reads a map and only a map: a struct derived by serde would also take a list.
    struct MapOnly<F>(F);

    impl<'de, T: Deserialize<'de> + Item> Deserialize<'de> for Body<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(MapOnly(Body(Vec::new())))
        }
    }

    impl<'de, T: Deserialize<'de> + Item> Visitor<'de> for MapOnly<Body<T>> {
        type Value = Body<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<Body<T>, M::Error> {
            let mut seen = false;
            while let Some(key) = map.next_key_seed(KeyName)? {
                if key == Some(T::LIST) {
                    self.0 .0 = map.next_value::<List<T>>()?.0;
                    seen = true;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if seen {
                Ok(self.0)
            } else {
                Err(serde::de::Error::missing_field(T::LIST))
            }
        }
    }

    /// The list itself (a list of objects; null or anything else is refused).
    struct List<T>(Vec<T>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct ListVisitor<T>(std::marker::PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
                type Value = List<T>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a list")
                }
                fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<List<T>, S::Error> {
                    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                    while let Some(item) = seq.next_element::<T>()? {
                        out.push(item);
                    }
                    Ok(List(out))
                }
            }
            d.deserialize_seq(ListVisitor(std::marker::PhantomData))
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for ContactIn<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(MapOnly(ContactIn::default()))
        }
    }

    impl<'de: 'a, 'a> Visitor<'de> for MapOnly<ContactIn<'a>> {
        type Value = ContactIn<'a>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<ContactIn<'a>, M::Error> {
            let c = &mut self.0;
            while let Some(key) = map.next_key_seed(KeyName)? {
                let slot = match key {
                    Some("acdId") => &mut c.acd_id,
                    Some("contactId") => &mut c.contact_id,
                    Some("queueValue") => &mut c.queue_value,
                    Some("queueName") => &mut c.queue_name,
                    Some("outcome") => &mut c.outcome,
                    Some("arrivedUtc") => &mut c.arrived_utc,
                    Some("endedUtc") => &mut c.ended_utc,
                    Some("agentValue") => &mut c.agent_value,
                    Some("agentId") => &mut c.agent_id,
                    Some("party") => &mut c.party,
                    Some("isOutbound") => {
                        c.is_outbound = map.next_value::<Option<bool>>()?;
                        continue;
                    }
                    Some(number @ ("queueDelaySec" | "talkSec" | "holdSec" | "workSec")) => {
                        let v = map.next_value::<Option<Number>>()?;
                        *match number {
                            "queueDelaySec" => &mut c.queue_delay_sec,
                            "talkSec" => &mut c.talk_sec,
                            "holdSec" => &mut c.hold_sec,
                            _ => &mut c.work_sec,
                        } = v;
                        continue;
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                };
                *slot = map.next_value::<Option<Cow<'a, str>>>()?;
            }
            Ok(self.0)
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for State<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(MapOnly(State::default()))
        }
    }

    impl<'de: 'a, 'a> Visitor<'de> for MapOnly<State<'a>> {
        type Value = State<'a>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<State<'a>, M::Error> {
            while let Some(key) = map.next_key_seed(KeyName)? {
                let slot = match key {
                    Some("loginId") => &mut self.0.login_id,
                    Some("acdId") => &mut self.0.acd_id,
                    Some("eventCode") => &mut self.0.event_code,
                    Some("reasonCode") => &mut self.0.reason_code,
                    Some("eventUtcTime") => &mut self.0.event_utc_time,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                };
                *slot = map.next_value::<Option<Cow<'a, str>>>()?;
            }
            Ok(self.0)
        }
    }

    /// `min..=MAX_TEXT` characters, as the tree path's `string`.
    fn text(s: Option<Cow<'_, str>>, min: usize, required: bool) -> Option<String> {
        let s = match s {
            Some(s) => s,
            None if required => return None,
            None => return Some(String::new()),
        };
        let n = s.chars().count();
        (min..=MAX_TEXT).contains(&n).then(|| s.into_owned())
    }

    /// The states of a valid body; `None` for anything the tree path must look at.
    pub fn agent_states(body: &[u8], now: Millis) -> Option<Vec<AgentState>> {
        // serde_json skips an unknown field's string without checking its UTF-8: check the
        // whole body first, so that the fast path never accepts what the tree path refuses.
        let json = std::str::from_utf8(body).ok()?;
        let Body(list) = serde_json::from_str::<Body<State<'_>>>(json).ok()?;
        list.into_iter()
            .map(|s| {
                Some(AgentState {
                    event_utc_time: parse_rfc3339(s.event_utc_time.as_deref()?).ok()?,
                    login_id: text(s.login_id, 1, true)?,
                    acd_id: text(s.acd_id, 1, true)?,
                    event_code: text(s.event_code, 1, true)?,
                    reason_code: text(s.reason_code, 0, false)?,
                    received_utc: Some(now),
                })
            })
            .collect()
    }

    /// A finite number >= 0, converted as the tree path converts it; `default` when absent.
    fn number(n: Option<Number>, default: Option<f64>) -> Option<f64> {
        match n {
            None => default,
            Some(n) => n.as_f64().filter(|x| x.is_finite() && *x >= 0.0),
        }
    }

    /// The contacts of a valid body; `None` for anything the tree path must look at. Every
    /// check of the tree path is made here too (an abandoned contact without talk, hold, work
    /// or agent; a party only outbound; the end not before the arrival).
    pub fn contacts(body: &[u8], now: Millis) -> Option<Vec<Contact>> {
        let json = std::str::from_utf8(body).ok()?;
        let Body(list) = serde_json::from_str::<Body<ContactIn<'_>>>(json).ok()?;
        list.into_iter()
            .map(|c| {
                let outcome = match c.outcome.as_deref()? {
                    "HANDLED" => Outcome::Handled,
                    "ABANDONED" => Outcome::Abandoned,
                    _ => return None,
                };
                let handled = outcome == Outcome::Handled;
                let arrived_utc = parse_rfc3339(c.arrived_utc.as_deref()?).ok()?;
                let ended_utc = parse_rfc3339(c.ended_utc.as_deref()?).ok()?;
                let if_abandoned = if handled { None } else { Some(0.0) };
                let queue_delay_sec = number(c.queue_delay_sec, None)?;
                let talk_sec = number(c.talk_sec, if_abandoned)?;
                let hold_sec = number(c.hold_sec, if_abandoned)?;
                let work_sec = number(c.work_sec, if_abandoned)?;
                let agent_value = text(c.agent_value, usize::from(handled), handled)?;
                let agent_id = text(c.agent_id, 0, false)?;
                let party = match c.party.as_deref() {
                    None => None,
                    Some("RIGHT") => Some(Party::Right),
                    Some("WRONG") => Some(Party::Wrong),
                    Some(_) => return None,
                };
                let is_outbound = c.is_outbound.unwrap_or(false);
                let abandoned_with_work =
                    !handled && (talk_sec != 0.0 || hold_sec != 0.0 || work_sec != 0.0 || !agent_value.is_empty());
                if ended_utc < arrived_utc || abandoned_with_work || (party.is_some() && !is_outbound) {
                    return None;
                }
                let non_empty = |s: String| (!s.is_empty()).then_some(s);
                Some(Contact {
                    acd_id: text(c.acd_id, 1, true)?,
                    contact_id: text(c.contact_id, 1, true)?,
                    queue_value: text(c.queue_value, 1, true)?,
                    queue_name: text(c.queue_name, 0, false)?,
                    is_outbound,
                    outcome,
                    arrived_utc,
                    ended_utc,
                    queue_delay_sec,
                    talk_sec,
                    hold_sec,
                    work_sec,
                    agent_value: non_empty(agent_value),
                    agent_id: non_empty(agent_id),
                    party,
                    received_utc: Some(now),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn invalid_utf8_in_an_unknown_field_is_refused_by_both_paths() {
        // Found by the ingest_agent_states fuzz target.
        let mut body = br#"{"agentStateList":[{"loginId":"a","acdId":"t","eventCode":"X","r~asonCode":""#.to_vec();
        body.extend_from_slice(&[0xec; 8]);
        body.extend_from_slice(br#"","eventUtcTime":"2023-10-01T07:59:09.860Z"}]}"#);
        assert_eq!(super::agent_states_fast(&body, 7), None);
        let e = super::agent_states(&body, 7).unwrap_err();
        assert!(e[0].message.contains("invalid JSON"), "{e:?}");
    }

    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(format!("{}/../tests/fixtures/wfm/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn samples_are_accepted() {
        assert_eq!(agent_states(&sample("agent-state-list.json"), 0).unwrap().len(), 1);
        let c = contacts(&sample("contacts.json"), 0).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].agent_value, None);
        let rows = interval_report(&sample("intraday-report.json"), 15).unwrap();
        assert_eq!(rows.len(), 6);
        assert_eq!(crate::time::format_millis(rows[0].start_date), "2024-04-17T10:00:00.000Z");
        assert_eq!(crate::time::format_millis(rows[0].end_date), "2024-04-17T10:15:00.000Z");
        assert_eq!(rows[0].key(), "queue/8057");
        assert_eq!(rows[5].key(), "agent/945988");
        let a = agent_activity(&sample("agent-activity-report.json"), 15).unwrap();
        assert_eq!(a[0].agent_activity[0].duration, 139_090);
    }

    #[test]
    fn the_fast_agent_state_path_takes_only_what_the_tree_path_accepts_and_yields_the_same() {
        let ok = r#"{"loginId":"a","acdId":"e","eventCode":"AUX","reasonCode":"r","eventUtcTime":"2024-04-17T10:01:02.005+02:00"}"#;
        let bodies = [
            format!(r#"{{"agentStateList":[{ok}]}}"#),
            format!(r#"{{"agentStateList":[{ok},{ok}],"other":[1,{{"x":null}}]}}"#),
            r#"{"agentStateList":[]}"#.to_string(),
            r#"{"agentStateList":[{"loginId":"a"\é","acdId":"e","eventCode":"AUX","eventUtcTime":"2024-04-17T10:01:02Z","x":5}]}"#.to_string(),
            r#"{"agentStateList":[{"loginId":"a","acdId":"e","eventCode":"AUX","reasonCode":null,"eventUtcTime":"2024-04-17T10:01:02Z"}]}"#.to_string(),
            r#"{"agentStateList":[{"loginId":"a","loginId":"b","acdId":"e","eventCode":"AUX","eventUtcTime":"2024-04-17T10:01:02Z"}]}"#.to_string(),
            // Everything below is refused by the tree path.
            r#"{"agentStateList":[{"loginId":"","acdId":"e","eventCode":"AUX","eventUtcTime":"2024-04-17T10:01:02Z"}]}"#.to_string(),
            r#"{"agentStateList":[{"loginId":null,"acdId":"e","eventCode":"AUX","eventUtcTime":"2024-04-17T10:01:02Z"}]}"#.to_string(),
            r#"{"agentStateList":[{"loginId":"a","acdId":"e","eventCode":"AUX","eventUtcTime":"2024-04-17T10:01:02"}]}"#.to_string(),
            r#"{"agentStateList":[{"loginId":"a","acdId":"e","eventCode":7,"eventUtcTime":"2024-04-17T10:01:02Z"}]}"#.to_string(),
            format!(r#"{{"agentStateList":[{{"loginId":"{}","acdId":"e","eventCode":"AUX","eventUtcTime":"2024-04-17T10:01:02Z"}}]}}"#, "x".repeat(257)),
            r#"{"agentStateList":[["a","e","AUX","r","2024-04-17T10:01:02Z"]]}"#.to_string(),
            r#"[[{"loginId":"a","acdId":"e","eventCode":"AUX","eventUtcTime":"2024-04-17T10:01:02Z"}]]"#.to_string(),
            r#"{"agentStateList":null}"#.to_string(),
            r#"{"agentStateList":[null]}"#.to_string(),
            r#"{}"#.to_string(),
            r#"{"agentStateList":[{"#.to_string(),
        ];
        for body in &bodies {
            let fast = fast::agent_states(body.as_bytes(), 7);
            let tree = agent_states(body.as_bytes(), 7);
            if let Some(states) = fast {
                assert_eq!(Ok(states), tree, "{body}");
            } else {
                assert!(tree.is_err(), "the fast path passed over a valid body: {body}");
            }
        }
        assert!(fast::agent_states(bodies[0].as_bytes(), 7).is_some(), "the common case takes the fast path");
    }

    #[test]
    fn the_fast_contact_path_takes_only_what_the_tree_path_accepts_and_yields_the_same() {
        let handled = r#""acdId":"e","contactId":"1","queueValue":"q","queueName":"Q","outcome":"HANDLED","arrivedUtc":"2024-01-01T00:00:00Z","endedUtc":"2024-01-01T01:01:00+01:00","queueDelaySec":1.5,"talkSec":10,"holdSec":0,"workSec":3,"agentValue":"a""#;
        let abandoned = r#""acdId":"e","contactId":"2","queueValue":"q","outcome":"ABANDONED","arrivedUtc":"2024-01-01T00:00:00Z","endedUtc":"2024-01-01T00:01:00Z","queueDelaySec":60"#;
        let outbound = r#""acdId":"e","contactId":"3","queueValue":"q","isOutbound":true,"party":"WRONG","outcome":"HANDLED","arrivedUtc":"2024-01-01T00:00:00Z","endedUtc":"2024-01-01T00:01:00Z","queueDelaySec":0,"talkSec":1e1,"holdSec":0,"workSec":0,"agentValue":"a","agentId":"77""#;
        let bodies = [
            format!(r#"{{"contacts":[{{{handled}}},{{{abandoned}}},{{{outbound}}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"extra":[1,{{"x":null}}]}}],"other":true}}"#),
            format!(
                r#"{{"contacts":[{{{abandoned},"agentValue":null,"talkSec":null,"party":null,"isOutbound":null}}]}}"#
            ),
            format!(r#"{{"contacts":[{{{abandoned},"agentValue":""}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"contactId":"again"}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"queueDelaySec":-0}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"talkSec":18446744073709551616}}]}}"#),
            r#"{"contacts":[]}"#.to_string(),
            // Everything below is refused by the tree path.
            format!(r#"{{"contacts":[{{{handled},"queueDelaySec":-1}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"queueDelaySec":"1"}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"talkSec":null}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"agentValue":""}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"outcome":"handled"}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"outcome":null}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"endedUtc":"2023-12-31T23:59:00Z"}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"endedUtc":"2024-01-01T00:01:00"}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"party":"RIGHT"}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"isOutbound":"yes"}}]}}"#),
            format!(r#"{{"contacts":[{{{abandoned},"talkSec":1}}]}}"#),
            format!(r#"{{"contacts":[{{{abandoned},"agentValue":"a"}}]}}"#),
            format!(r#"{{"contacts":[{{{outbound},"party":"NONE"}}]}}"#),
            format!(r#"{{"contacts":[{{{handled},"queueName":"{}"}}]}}"#, "x".repeat(257)),
            format!(r#"{{"contacts":[{{{handled},"acdId":""}}]}}"#),
            r#"{"contacts":null}"#.to_string(),
            r#"{"contacts":[null]}"#.to_string(),
            r#"{"contacts":{}}"#.to_string(),
            r#"{}"#.to_string(),
            r#"[]"#.to_string(),
        ];
        for body in &bodies {
            let fast = fast::contacts(body.as_bytes(), 7);
            let tree = contacts_tree(body.as_bytes(), 7);
            if let Some(list) = fast {
                assert_eq!(Ok(list), tree, "{body}");
            } else {
                assert!(tree.is_err(), "the fast path passed over a valid body: {body}");
            }
        }
        for body in &bodies[..8] {
            assert!(fast::contacts(body.as_bytes(), 7).is_some(), "valid contacts take the fast path: {body}");
        }
        assert!(fast::contacts(&sample("contacts.json"), 7).is_some());
    }

    #[test]
    fn every_error_names_its_item_and_field() {
        let body = br#"{"contacts":[
            {"acdId":"e","contactId":"1","queueValue":"q","outcome":"HANDLED","arrivedUtc":"2024-01-01T00:00:00Z",
             "endedUtc":"2024-01-01T00:01:00Z","queueDelaySec":1,"talkSec":1,"holdSec":0,"workSec":0,"agentValue":"a"},
            {"acdId":"e","contactId":"2","queueValue":"q","outcome":"HANDLED","arrivedUtc":"2024-01-01T00:02:00Z",
             "endedUtc":"2024-01-01T00:01:00Z","queueDelaySec":-1,"talkSec":1,"holdSec":0,"agentValue":"a"}]}"#;
        let errs = contacts(body, 0).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert!(fields.contains(&(Some(1), "contacts[1].endedUtc")), "{errs:?}");
        assert!(fields.contains(&(Some(1), "contacts[1].queueDelaySec")), "{errs:?}");
        assert!(fields.contains(&(Some(1), "contacts[1].workSec")), "{errs:?}");
        assert!(!fields.iter().any(|(i, _)| *i == Some(0)));
    }

    #[test]
    fn timestamps_need_a_zone_and_reports_the_grid() {
        let e = agent_states(
            br#"{"agentStateList":[{"loginId":"a","acdId":"b","eventCode":"c","eventUtcTime":"2024-01-01T00:00:00"}]}"#,
            0,
        )
        .unwrap_err();
        assert_eq!(e[0].field, "agentStateList[0].eventUtcTime");
        let off = br#"{"startDate":"2024-04-17T10:02:00Z","endDate":"2024-04-17T10:17:00Z","reportData":{}}"#;
        assert_eq!(interval_report(off, 15).unwrap_err()[0].field, "startDate");
        let long = br#"{"startDate":"2024-04-17T10:00:00Z","endDate":"2024-04-17T10:30:00Z","reportData":{}}"#;
        assert!(interval_report(long, 15).is_err());
        assert!(interval_report(long, 30).is_ok());
        let half = br#"{"startDate":"2024-04-17T10:15:00Z","endDate":"2024-04-17T10:30:00Z","reportData":{}}"#;
        assert!(interval_report(half, 30).is_ok());
    }

    #[test]
    fn texts_are_bounded() {
        let long = "x".repeat(257);
        let body = format!(
            r#"{{"agentStateList":[{{"loginId":"{long}","acdId":"b","eventCode":"c","eventUtcTime":"2024-01-01T00:00:00Z"}}]}}"#
        );
        assert_eq!(agent_states(body.as_bytes(), 0).unwrap_err()[0].field, "agentStateList[0].loginId");
    }
}
