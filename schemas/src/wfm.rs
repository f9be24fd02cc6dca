//! The WFM API's JSON bodies (NICE CXone Mpower WFM for non-CXone ACDs, When Contact Ended).
//! The client in `consumer/` sends them and `wfm-sim` receives them, so both read this one copy.
//! Unknown fields are refused: the emulator is strict so that a mistake here shows in tests.

use serde::{Deserialize, Serialize};

/// `POST token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenRequest {
    pub tenant_name: String,
    pub access_key_token_request: AccessKey,
}

/// The access key pair.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessKey {
    pub access_key_id: String,
    pub access_key_secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// The token call's answer.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub id_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub access_token: String,
}

/// `POST refresh`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshRequest {
    pub token: String,
    pub update_cookie: bool,
    pub toggle_enabled: bool,
}

/// The refresh call's answer; the `...Sec` values are lifetimes in seconds.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshResponse {
    pub token: String,
    pub token_expiration_time_sec: i64,
    pub refresh_token: String,
    pub refresh_token_expiration_time_sec: i64,
    pub session_id: Option<String>,
}

/// `GET details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Details {
    pub acd_id: String,
    pub acd_type: String,
    pub interval_minutes: u32,
    pub paradigm: String,
}

/// One agent state as the WFM agent state API has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentStateJson {
    pub login_id: String,
    pub acd_id: String,
    pub event_code: String,
    pub reason_code: String,
    pub event_utc_time: String,
}

impl AgentStateJson {
    /// Appends the JSON object of `s`, byte for byte what serialising its [`AgentStateJson`]
    /// gives, without building one: the forwarding path writes request bodies straight from
    /// records read in place.
    pub fn write(s: &crate::records::AgentStateRef<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"loginId\":");
        write_str(s.login_id, out);
        out.extend_from_slice(b",\"acdId\":");
        write_str(s.acd_id, out);
        out.extend_from_slice(b",\"eventCode\":");
        write_str(s.event_code, out);
        out.extend_from_slice(b",\"reasonCode\":");
        write_str(s.reason_code, out);
        out.extend_from_slice(b",\"eventUtcTime\":\"");
        crate::time::write_millis(s.event_utc_time, out);
        out.extend_from_slice(b"\"}");
    }
}

/// A JSON string: copied as it is when nothing in it needs escaping, else through serde_json.
fn write_str(text: &str, out: &mut Vec<u8>) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, text).expect("a string serialises");
    }
}

/// `POST agent-states`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentStateList {
    pub agent_state_list: Vec<AgentStateJson>,
}

/// A queue (skill) row for one interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueueRow {
    pub queue_value: String,
    pub queue_name: String,
    pub is_outbound: bool,
    pub contacts_received: i64,
    pub abandoned_short: i64,
    pub abandoned_long: i64,
    pub handled_short: i64,
    pub handled_long: i64,
    pub handle_time: f64,
    pub work_time: f64,
    pub hold_time: f64,
    pub queue_delay_time: f64,
    pub svc_lvl_pct: f64,
    pub right_party_handle_time: f64,
    pub right_party_contacts: i64,
    pub wrong_party_handle_time: f64,
    pub wrong_party_contacts: i64,
    pub backlog: i64,
    pub backlog_not_expired: i64,
    pub backlog_expired: i64,
    pub active: i64,
}

/// An agent-per-queue row for one interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentQueueRow {
    pub queue_value: String,
    pub queue_name: String,
    pub is_outbound: bool,
    pub agent_value: String,
    pub agent_id: String,
    pub handled: i64,
    pub handled_time: f64,
    pub work_time: f64,
    pub hold_time: f64,
    pub right_party_handle_time: f64,
    pub right_party_contacts: i64,
    pub wrong_party_handle_time: f64,
    pub wrong_party_contacts: i64,
    pub active: i64,
}

/// An agent's login, ready and not-ready seconds for one interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentPerformanceRow {
    pub agent_value: String,
    pub agent_id: String,
    pub ready_time: f64,
    pub not_ready_time: f64,
    pub login_time: f64,
}

/// The three lists of an intraday report.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportData {
    pub queue_report: Vec<QueueRow>,
    pub agent_queue_report: Vec<AgentQueueRow>,
    pub agent_system_performance_report: Vec<AgentPerformanceRow>,
}

/// `POST intraday`: one interval, `startDate` inclusive, `endDate` exclusive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntradayReport {
    pub acd_type: String,
    pub report_version: String,
    pub start_date: String,
    pub end_date: String,
    pub status: String,
    pub status_reason: String,
    pub report_data: ReportData,
}

/// One segment of an agent's activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityJson {
    pub state: String,
    pub start_time: String,
    /// Milliseconds.
    pub duration: i64,
    pub reason: String,
}

/// One agent's whole activity list for one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentActivityEntry {
    pub agent_value: String,
    pub agent_id: String,
    pub user_name: String,
    pub agent_activity: Vec<ActivityJson>,
}

/// `POST agent-activity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentActivityReport {
    pub acd_type: String,
    pub report_version: String,
    pub start_date: String,
    pub end_date: String,
    pub report_data: Vec<AgentActivityEntry>,
}

/// `POST connection`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionStatusJson {
    pub acd_id: String,
    pub status: String,
    pub since: String,
    pub last_event_utc: Option<String>,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> String {
        let path = format!("{}/../tests/fixtures/wfm/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn agent_states_written_in_place_equal_serde() {
        for (login, reason) in [("agent1", ""), ("a\"b\\c", "tab\there"), ("\u{1}é😀", "line\nbreak")] {
            let state = crate::records::AgentState {
                acd_id: "east".into(),
                login_id: login.into(),
                event_code: "AUX".into(),
                reason_code: reason.into(),
                event_utc_time: 1_713_348_062_005,
                received_utc: None,
            };
            let mut ours = Vec::new();
            AgentStateJson::write(&state.as_ref(), &mut ours);
            let theirs = serde_json::to_vec(&AgentStateJson {
                login_id: login.into(),
                acd_id: "east".into(),
                event_code: "AUX".into(),
                reason_code: reason.into(),
                event_utc_time: crate::time::format_millis(state.event_utc_time),
            })
            .unwrap();
            assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }
    }

    #[test]
    fn every_wfm_sample_parses() {
        serde_json::from_str::<TokenRequest>(&sample("wfm-token-request.json")).unwrap();
        serde_json::from_str::<TokenResponse>(&sample("wfm-token-response.json")).unwrap();
        serde_json::from_str::<RefreshRequest>(&sample("wfm-refresh-request.json")).unwrap();
        serde_json::from_str::<RefreshResponse>(&sample("wfm-refresh-response.json")).unwrap();
        serde_json::from_str::<AgentStateList>(&sample("agent-state-list.json")).unwrap();
        let r: IntradayReport = serde_json::from_str(&sample("intraday-report.json")).unwrap();
        assert_eq!(r.report_data.queue_report.len(), 2);
        let a: AgentActivityReport = serde_json::from_str(&sample("agent-activity-report.json")).unwrap();
        assert_eq!(a.report_data[0].agent_activity[0].duration, 139_090);
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let k = AccessKey { access_key_id: "id".into(), access_key_secret: "s3cret".into() };
        assert!(!format!("{k:?}").contains("s3cret"));
    }
}
