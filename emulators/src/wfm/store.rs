//! What the emulated WFM holds: tokens, and every report received, upserted by the contract's
//! keys. Also the strict checks a real WFM applies to the values (the shapes are serde's job).

use std::borrow::Cow;
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

/// A `POST agent-states` body, read in place: the strings point into the body unless they hold
/// escapes. Its errors are those of [`AgentStateList`], whose fields it has.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentStateListIn<'a> {
    #[serde(borrow)]
    pub agent_state_list: Vec<AgentStateIn<'a>>,
}

/// One agent state of an [`AgentStateListIn`].
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentStateIn<'a> {
    #[serde(borrow)]
    pub login_id: Cow<'a, str>,
    #[serde(borrow)]
    pub acd_id: Cow<'a, str>,
    #[serde(borrow)]
    pub event_code: Cow<'a, str>,
    #[serde(borrow)]
    pub reason_code: Cow<'a, str>,
    #[serde(borrow)]
    pub event_utc_time: Cow<'a, str>,
}

impl AgentStateIn<'_> {
    pub fn view(&self) -> StateView<'_> {
        StateView {
            login_id: &self.login_id,
            acd_id: &self.acd_id,
            event_code: &self.event_code,
            reason_code: &self.reason_code,
            event_utc_time: &self.event_utc_time,
        }
    }
}

/// One agent state: of a [`StateLog`], or of a body read in place.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateView<'a> {
    pub login_id: &'a str,
    pub acd_id: &'a str,
    pub event_code: &'a str,
    pub reason_code: &'a str,
    pub event_utc_time: &'a str,
}

impl StateView<'_> {
    pub fn to_owned_json(self) -> AgentStateJson {
        AgentStateJson {
            login_id: self.login_id.into(),
            acd_id: self.acd_id.into(),
            event_code: self.event_code.into(),
            reason_code: self.reason_code.into(),
            event_utc_time: self.event_utc_time.into(),
        }
    }
}

/// The agent states received, in order. A load run sends millions, so they are kept end to end
/// in one text (five strings each) rather than as five allocations apiece.
#[derive(Default)]
pub struct StateLog {
    text: String,
    /// Where each state's strings end in `text`: five per state.
    ends: Vec<usize>,
}

impl StateLog {
    pub fn push(&mut self, s: &StateView<'_>) {
        for f in [s.login_id, s.acd_id, s.event_code, s.reason_code, s.event_utc_time] {
            self.text.push_str(f);
            self.ends.push(self.text.len());
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 5
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }

    /// The `i`-th state received.
    pub fn get(&self, i: usize) -> StateView<'_> {
        let e = &self.ends[i * 5..i * 5 + 5];
        let start = if i == 0 { 0 } else { self.ends[i * 5 - 1] };
        let f = |k: usize| &self.text[if k == 0 { start } else { e[k - 1] }..e[k]];
        StateView { login_id: f(0), acd_id: f(1), event_code: f(2), reason_code: f(3), event_utc_time: f(4) }
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = StateView<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Every state, owned.
    pub fn to_vec(&self) -> Vec<AgentStateJson> {
        self.iter().map(|s| s.to_owned_json()).collect()
    }
}

impl serde::Serialize for StateLog {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(self.iter())
    }
}

/// Everything received.
#[derive(Default)]
pub struct Store {
    pub tokens: Tokens,
    pub agent_states: StateLog,
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
    pub fn append_states(&mut self, list: &[StateView<'_>]) {
        let now = acd_schemas::time::now_millis();
        self.agent_states_received_ms.extend(std::iter::repeat_n(now, list.len()));
        for s in list {
            self.agent_states.push(s);
        }
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
    if let Some(t) = shape.then(|| exact_millis(text.as_bytes())).flatten() {
        return Ok(t);
    }
    match parse_rfc3339(text) {
        Ok(t) if shape => Ok(t),
        _ => Err((field.to_string(), format!("must be YYYY-MM-DDTHH:MM:SS.mmmZ, is {text:?}"))),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` read directly, for the millions of states a load run sends; None
/// for anything unusual (a leap second, a bad digit), which chrono then reads or rejects.
fn exact_millis(b: &[u8]) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u32))
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.'), (23, b'Z')];
    if b.len() != 24 || seps.iter().any(|(i, c)| b[*i] != *c) {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[mo as usize - 1] {
        return None;
    }
    let days = days_from_civil(y as i64, mo as i64, d as i64);
    Some(days * 86_400_000 + ((h * 3600 + mi * 60 + sec) as i64) * 1000 + ms as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads an agent-state body of the one shape acd-bridge sends (`{"agentStateList":[{"loginId":
/// ..,"acdId":..,"eventCode":..,"reasonCode":..,"eventUtcTime":..},..]}`, no spaces, strings
/// without escapes) in place. None for any other body, which serde then reads, so the answers
/// are the same either way; only the cost differs.
pub fn scan_states(body: &[u8]) -> Option<Vec<StateView<'_>>> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
    }
    impl<'a> P<'a> {
        fn lit(&mut self, l: &[u8]) -> Option<()> {
            self.b.get(self.i..self.i + l.len()).filter(|s| *s == l)?;
            self.i += l.len();
            Some(())
        }
        fn string(&mut self) -> Option<&'a str> {
            self.lit(b"\"")?;
            let rest = &self.b[self.i..];
            let mut ascii = true;
            let n = rest.iter().position(|&c| {
                ascii &= c < 0x80;
                c == b'"' || c == b'\\' || c < 0x20
            })?;
            if rest[n] != b'"' {
                return None;
            }
            let s = if ascii {
                // SAFETY: every byte is below 0x80, so this is ASCII and therefore UTF-8 (the
                // check again was a tenth of the emulator's time in a load run).
                unsafe { std::str::from_utf8_unchecked(&rest[..n]) }
            } else {
                std::str::from_utf8(&rest[..n]).ok()?
            };
            self.i += n + 1;
            Some(s)
        }
    }
    let mut p = P { b: body, i: 0 };
    p.lit(b"{\"agentStateList\":[")?;
    let mut out = Vec::with_capacity(body.len() / 100);
    loop {
        p.lit(b"{\"loginId\":")?;
        let login_id = p.string()?;
        p.lit(b",\"acdId\":")?;
        let acd_id = p.string()?;
        p.lit(b",\"eventCode\":")?;
        let event_code = p.string()?;
        p.lit(b",\"reasonCode\":")?;
        let reason_code = p.string()?;
        p.lit(b",\"eventUtcTime\":")?;
        let event_utc_time = p.string()?;
        p.lit(b"}")?;
        out.push(StateView { login_id, acd_id, event_code, reason_code, event_utc_time });
        if p.lit(b",").is_none() {
            break;
        }
    }
    p.lit(b"]}")?;
    (p.i == body.len()).then_some(out)
}

fn id(field: &str, text: &str) -> Check {
    // At most 256 bytes is at most 256 characters: count them only for a longer text.
    let n = if text.len() <= 256 { text.len().min(1) } else { text.chars().count() };
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
pub fn check_agent_states(list: &[StateView<'_>]) -> Check {
    if list.is_empty() {
        return Err(("agentStateList".into(), "must not be empty".into()));
    }
    for (i, s) in list.iter().enumerate() {
        // The item's path is written only for an error: this runs for every state received.
        let at = |(field, msg): (String, String)| (format!("agentStateList[{i}].{field}"), msg);
        id("loginId", s.login_id).map_err(at)?;
        id("acdId", s.acd_id).map_err(at)?;
        id("eventCode", s.event_code).map_err(at)?;
        ts("eventUtcTime", s.event_utc_time).map_err(at)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_log_gives_back_what_it_was_given() {
        let body = br#"{"agentStateList":[
            {"loginId":"a1","acdId":"east","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"},
            {"loginId":"\u00e9\"x","acdId":"w","eventCode":"AUX","reasonCode":"lunch","eventUtcTime":"2024-04-17T10:01:00.000Z"}]}"#;
        let req: AgentStateListIn<'_> = serde_json::from_slice(body).unwrap();
        let views: Vec<StateView<'_>> = req.agent_state_list.iter().map(|s| s.view()).collect();
        check_agent_states(&views).unwrap();
        let mut store = Store::default();
        store.append_states(&views);
        store.append_states(&views);
        assert_eq!(store.agent_states.len(), 4);
        let owned: AgentStateList = serde_json::from_slice(body).unwrap();
        let want: Vec<AgentStateJson> = owned.agent_state_list.iter().chain(&owned.agent_state_list).cloned().collect();
        assert_eq!(store.agent_states.to_vec(), want);
        assert_eq!(store.agent_states.get(1).login_id, "é\"x");
        assert_eq!(store.agent_states.get(2).reason_code, "");
        assert_eq!(store.to_json()["agentStates"], serde_json::to_value(&want).unwrap());
        store.wipe();
        assert!(store.agent_states.is_empty());
    }

    #[test]
    fn agent_state_errors_name_the_field() {
        let body = br#"{"agentStateList":[{"loginId":"","acdId":"e","eventCode":"A","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"}]}"#;
        let req: AgentStateListIn<'_> = serde_json::from_slice(body).unwrap();
        let views: Vec<StateView<'_>> = req.agent_state_list.iter().map(|s| s.view()).collect();
        assert_eq!(check_agent_states(&views).unwrap_err().0, "agentStateList[0].loginId");
        let extra = br#"{"agentStateList":[{"loginId":"a","acdId":"e","eventCode":"A","reasonCode":"","eventUtcTime":"x","more":1}]}"#;
        assert!(serde_json::from_slice::<AgentStateListIn<'_>>(extra).is_err());
    }

    #[test]
    fn the_fast_reader_agrees_with_serde_or_steps_aside() {
        let bodies: [&[u8]; 11] = [
            br#"{"agentStateList":[{"loginId":"a1","acdId":"east","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"},{"loginId":"b","acdId":"w","eventCode":"AUX","reasonCode":"lunch","eventUtcTime":"2024-02-29T23:59:59.999Z"}]}"#,
            br#"{"agentStateList":[{"loginId":"\u00e9","acdId":"east","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"}]}"#,
            br#"{"agentStateList":[{"acdId":"east","loginId":"a","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"}]}"#,
            br#"{ "agentStateList":[{"loginId":"a","acdId":"east","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"}]}"#,
            br#"{"agentStateList":[{"loginId":"a","acdId":"east","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"}]} "#,
            br#"{"agentStateList":[{"loginId":"a","acdId":"east","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"},]}"#,
            br#"{"agentStateList":[{"loginId":"a","acdId":"east","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z","x":1}]}"#,
            br#"{"agentStateList":[]}"#,
            br#"{"agentStateList":[{"loginId":"a","acdId":"east","eventCode":"AVAIL","reasonCode":"","eventUtcTime":"2024-04-17T10:00:00.000Z"}"#,
            "{\"agentStateList\":[{\"loginId\":\"Zo\u{eb} \u{41f}\",\"acdId\":\"\u{6771}\",\"eventCode\":\"AVAIL\",\"reasonCode\":\"\",\"eventUtcTime\":\"2024-04-17T10:00:00.000Z\"}]}".as_bytes(),
            b"{\"agentStateList\":[{\"loginId\":\"a\xff\",\"acdId\":\"east\",\"eventCode\":\"AVAIL\",\"reasonCode\":\"\",\"eventUtcTime\":\"2024-04-17T10:00:00.000Z\"}]}",
        ];
        for (i, body) in bodies.iter().enumerate() {
            let serde: Option<Vec<AgentStateJson>> =
                serde_json::from_slice::<AgentStateList>(body).ok().map(|l| l.agent_state_list);
            match scan_states(body) {
                Some(fast) => {
                    let fast: Vec<AgentStateJson> = fast.iter().map(|s| s.to_owned_json()).collect();
                    assert_eq!(Some(fast), serde, "body {i}");
                }
                None => assert!(i != 0, "the common shape must take the fast path"),
            }
        }
        assert!(scan_states(bodies[0]).is_some());
        // Raw UTF-8 outside ASCII is read in place too; bytes that are not UTF-8 are not.
        assert!(scan_states(bodies[9]).is_some());
        assert!(scan_states(bodies[10]).is_none());
    }

    #[test]
    fn ids_are_counted_in_characters() {
        assert!(id("f", "").is_err());
        assert!(id("f", "a").is_ok());
        assert!(id("f", &"a".repeat(256)).is_ok());
        assert!(id("f", &"a".repeat(257)).is_err());
        // 256 characters of two bytes each: 512 bytes, still within the limit.
        assert!(id("f", &"\u{e9}".repeat(256)).is_ok());
        assert!(id("f", &"\u{e9}".repeat(257)).is_err());
    }

    #[test]
    fn timestamps_read_directly_agree_with_chrono() {
        for t in [
            "2024-04-17T10:00:00.000Z",
            "2024-02-29T23:59:59.999Z",
            "1970-01-01T00:00:00.000Z",
            "2023-02-29T00:00:00.000Z",
            "2024-04-17T24:00:00.000Z",
            "2024-04-17T10:00:60.000Z",
            "2024-13-01T00:00:00.000Z",
            "2024-04-1xT10:00:00.000Z",
            "2024-04-17 10:00:00.000Z",
            "2000-02-29T12:00:00.000Z",
            "1900-02-29T12:00:00.000Z",
            "2100-02-28T23:59:59.999Z",
            "1969-12-31T23:59:59.999Z",
            "0001-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "2024-04-31T00:00:00.000Z",
            "2024-00-10T00:00:00.000Z",
            "2024-05-00T00:00:00.000Z",
            "2024-12-31T23:59:59.999Z",
        ] {
            let chrono = parse_rfc3339(t).ok();
            match exact_millis(t.as_bytes()) {
                Some(ms) => assert_eq!(Some(ms), chrono, "{t}"),
                // chrono takes leap seconds and a space for the `T`; the contract's shape has neither.
                None => assert!(chrono.is_none() || t.contains(":60.") || t.as_bytes()[10] == b' ', "{t}"),
            }
            assert_eq!(ts("t", t).ok(), chrono, "{t}");
        }
    }
}
