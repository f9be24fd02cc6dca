//! The rules of the push-ingest API (docs/push-api.md), applied to records as they are read
//! back from Kafka. A record that decodes but breaks them was written around the ingest API; the
//! consumer dead-letters it as `invalid` instead of counting it. Each check names the first
//! field at fault, in the JSON spelling an integrator knows.

use serde_json::Value;

use crate::ingest::MAX_TEXT;
use crate::records::*;
use crate::time::Millis;

/// What is wrong with a record: the field's path and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

type Checked = Result<(), Invalid>;

fn bad(field: &str, message: impl Into<String>) -> Checked {
    Err(Invalid { field: field.to_string(), message: message.into() })
}

fn text(field: &str, s: &str, min: usize) -> Checked {
    // Bytes bound characters from above: the common short string needs no counting.
    if s.len() >= min && s.len() <= MAX_TEXT {
        return Ok(());
    }
    let n = s.chars().count();
    if n < min || n > MAX_TEXT {
        return bad(field, format!("must have {min}..{MAX_TEXT} characters, has {n}"));
    }
    Ok(())
}

fn id(field: &str, s: &str) -> Checked {
    text(field, s, 1)
}

fn number(field: &str, x: f64) -> Checked {
    if x.is_finite() && x >= 0.0 {
        Ok(())
    } else {
        bad(field, format!("must be a finite number >= 0, is {x}"))
    }
}

fn time(field: &str, t: Millis) -> Checked {
    // Year 0001 to 9999: what the JSON form can carry.
    if (-62_135_596_800_000..=253_402_300_799_999).contains(&t) {
        Ok(())
    } else {
        bad(field, format!("{t} ms is not a representable time"))
    }
}

/// An agent state.
pub fn agent_state(s: &AgentState) -> Checked {
    agent_state_ref(&s.as_ref())
}

/// An agent state, read in place.
pub fn agent_state_ref(s: &AgentStateRef<'_>) -> Checked {
    id("acdId", s.acd_id)?;
    id("loginId", s.login_id)?;
    id("eventCode", s.event_code)?;
    text("reasonCode", s.reason_code, 0)?;
    time("eventUtcTime", s.event_utc_time)
}

/// A finished contact.
pub fn contact(c: &Contact) -> Checked {
    contact_ref(&c.as_ref())
}

/// A finished contact, read in place.
pub fn contact_ref(c: &ContactRef<'_>) -> Checked {
    id("acdId", c.acd_id)?;
    id("contactId", c.contact_id)?;
    id("queueValue", c.queue_value)?;
    text("queueName", c.queue_name, 0)?;
    time("arrivedUtc", c.arrived_utc)?;
    time("endedUtc", c.ended_utc)?;
    if c.ended_utc < c.arrived_utc {
        return bad("endedUtc", "must not be before arrivedUtc");
    }
    number("queueDelaySec", c.queue_delay_sec)?;
    number("talkSec", c.talk_sec)?;
    number("holdSec", c.hold_sec)?;
    number("workSec", c.work_sec)?;
    if let Some(a) = c.agent_id {
        text("agentId", a, 0)?;
    }
    match c.outcome {
        Outcome::Handled => match c.agent_value {
            Some(a) => id("agentValue", a)?,
            None => return bad("agentValue", "is required for a handled contact"),
        },
        Outcome::Abandoned => {
            for (name, v) in [("talkSec", c.talk_sec), ("holdSec", c.hold_sec), ("workSec", c.work_sec)] {
                if v != 0.0 {
                    return bad(name, "an abandoned contact has no talk, hold or work time");
                }
            }
            if c.agent_value.is_some_and(|a| !a.is_empty()) {
                return bad("agentValue", "an abandoned contact has no agent");
            }
        }
    }
    if c.party.is_some() && !c.is_outbound {
        return bad("party", "right/wrong party is for outbound contacts only");
    }
    Ok(())
}

/// The report interval `[start, end)`: on the grid of `minutes` (or of half of it when 30), one
/// interval at most, not crossing a boundary.
fn interval(start: Millis, end: Millis, minutes: u32) -> Checked {
    let length = minutes as i64 * 60_000;
    let grid = if minutes == 30 { length / 2 } else { length };
    time("startDate", start)?;
    time("endDate", end)?;
    if start.rem_euclid(grid) != 0 {
        return bad("startDate", format!("is not on the {}-minute interval grid", grid / 60_000));
    }
    if end.rem_euclid(grid) != 0 {
        return bad("endDate", format!("is not on the {}-minute interval grid", grid / 60_000));
    }
    if end <= start {
        return bad("endDate", "must be after startDate");
    }
    if start.div_euclid(length) != (end - 1).div_euclid(length) {
        return bad("endDate", format!("the report crosses a {minutes}-minute interval boundary"));
    }
    Ok(())
}

/// Every number finite and >= 0 and every string within bounds, anywhere in `value`.
fn json_fields(path: &str, value: &Value) -> Checked {
    match value {
        Value::Number(n) => number(path, n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => text(path, s, 0),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| json_fields(&format!("{path}.{k}"), v)),
        _ => Ok(()),
    }
}

/// A pre-aggregated intraday row, against the configured interval length.
pub fn interval_row(r: &IntervalRow, minutes: u32) -> Checked {
    interval(r.start_date, r.end_date, minutes)?;
    let (list, row) = match r.kind {
        RowKind::Queue => ("queueReport", r.queue.as_ref().map(serde_json::to_value)),
        RowKind::AgentQueue => ("agentQueueReport", r.agent_queue.as_ref().map(serde_json::to_value)),
        RowKind::AgentPerformance => {
            ("agentSystemPerformanceReport", r.agent_performance.as_ref().map(serde_json::to_value))
        }
    };
    let present = [r.queue.is_some(), r.agent_queue.is_some(), r.agent_performance.is_some()];
    if present.iter().filter(|p| **p).count() != 1 {
        return bad("kind", format!("a {list} row must carry exactly that row"));
    }
    let Some(Ok(row)) = row else {
        return bad(list, format!("a {list} row must carry exactly that row"));
    };
    json_fields(list, &row)?;
    if let Some(q) = &r.queue {
        id(&format!("{list}.queueValue"), &q.queue_value)?;
    }
    if let Some(q) = &r.agent_queue {
        id(&format!("{list}.queueValue"), &q.queue_value)?;
        id(&format!("{list}.agentValue"), &q.agent_value)?;
    }
    if let Some(a) = &r.agent_performance {
        id(&format!("{list}.agentValue"), &a.agent_value)?;
    }
    Ok(())
}

/// One agent's activity list for one interval.
pub fn agent_activity(a: &AgentActivity, minutes: u32) -> Checked {
    interval(a.start_date, a.end_date, minutes)?;
    id("agentValue", &a.agent_value)?;
    text("agentId", &a.agent_id, 0)?;
    text("userName", &a.user_name, 0)?;
    for (i, s) in a.agent_activity.iter().enumerate() {
        id(&format!("agentActivity[{i}].state"), &s.state)?;
        text(&format!("agentActivity[{i}].reason"), &s.reason, 0)?;
        time(&format!("agentActivity[{i}].startTime"), s.start_time)?;
        if s.duration < 0 {
            return bad(&format!("agentActivity[{i}].duration"), format!("must be >= 0, is {}", s.duration));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handled() -> Contact {
        Contact {
            acd_id: "east".into(),
            contact_id: "c-1".into(),
            queue_value: "8057".into(),
            queue_name: "Chat".into(),
            is_outbound: false,
            outcome: Outcome::Handled,
            arrived_utc: 1_713_348_062_000,
            ended_utc: 1_713_348_400_000,
            queue_delay_sec: 12.0,
            talk_sec: 250.0,
            hold_sec: 20.0,
            work_sec: 6.0,
            agent_value: Some("967385".into()),
            agent_id: None,
            party: None,
            received_utc: None,
        }
    }

    #[test]
    fn a_contact_the_ingest_api_would_refuse_names_its_field() {
        assert_eq!(contact(&handled()), Ok(()));
        type Spoil = Box<dyn Fn(&mut Contact)>;
        let cases: Vec<(Spoil, &str)> = vec![
            (Box::new(|c| c.talk_sec = -1.0), "talkSec"),
            (Box::new(|c| c.queue_delay_sec = f64::NAN), "queueDelaySec"),
            (Box::new(|c| c.ended_utc = c.arrived_utc - 1), "endedUtc"),
            (Box::new(|c| c.queue_value.clear()), "queueValue"),
            (Box::new(|c| c.contact_id = "x".repeat(257)), "contactId"),
            (Box::new(|c| c.agent_value = None), "agentValue"),
            (Box::new(|c| c.party = Some(Party::Right)), "party"),
            (
                Box::new(|c| {
                    c.outcome = Outcome::Abandoned;
                    c.agent_value = None;
                }),
                "talkSec",
            ),
        ];
        for (spoil, field) in cases {
            let mut c = handled();
            spoil(&mut c);
            assert_eq!(contact(&c).unwrap_err().field, field);
        }
        // 256 characters of several bytes each are within bounds.
        let mut c = handled();
        c.contact_id = "é".repeat(256);
        assert_eq!(contact(&c), Ok(()));
    }

    #[test]
    fn agent_states_and_reports_are_checked() {
        let s = AgentState {
            acd_id: "east".into(),
            login_id: "".into(),
            event_code: "AVAIL".into(),
            reason_code: "".into(),
            event_utc_time: 0,
            received_utc: None,
        };
        assert_eq!(agent_state(&s).unwrap_err().field, "loginId");
        let a = AgentActivity {
            acd_type: "x".into(),
            report_version: "0".into(),
            start_date: 900_000,
            end_date: 1_800_000,
            agent_value: "a".into(),
            agent_id: String::new(),
            user_name: String::new(),
            agent_activity: vec![ActivitySegment {
                state: "AVAIL".into(),
                start_time: 900_000,
                duration: -5,
                reason: String::new(),
            }],
        };
        assert_eq!(agent_activity(&a, 15).unwrap_err().field, "agentActivity[0].duration");
        let off_grid = AgentActivity { start_date: 900_001, ..a.clone() };
        assert_eq!(agent_activity(&off_grid, 15).unwrap_err().field, "startDate");
        let row = IntervalRow {
            acd_type: "x".into(),
            report_version: "0".into(),
            start_date: 900_000,
            end_date: 1_800_000,
            status: "SUCCESS".into(),
            status_reason: String::new(),
            kind: RowKind::Queue,
            queue: Some(crate::wfm::QueueRow { queue_value: "q".into(), handle_time: -1.0, ..Default::default() }),
            agent_queue: None,
            agent_performance: None,
        };
        assert_eq!(interval_row(&row, 15).unwrap_err().field, "queueReport.handleTime");
        let empty = IntervalRow { queue: None, ..row };
        assert_eq!(interval_row(&empty, 15).unwrap_err().field, "kind");
    }
}
