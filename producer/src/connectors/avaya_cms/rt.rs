//! CMS's real-time socket (`rt_listen`): CMS connects to us and sends its real-time agent report
//! as lines, one snapshot every `rt_refresh_seconds`, each closed by a line starting with
//! `rt_end_marker`.
//!
//! - [`parse_line`]: one line into a row, an end of snapshot, or an error (pure).
//! - [`Tracker`]: complete snapshots into agent states: one per change of (code, reason), per
//!   agent across every connection; agents gone from a connection's snapshot logged out (pure).
//! - [`serve`]: the listener. Each connection is read on its own; complete snapshots go to one
//!   task that owns the [`Tracker`] and publishes, so HA copies of a report add nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use acd_core::config::AvayaCmsConfig;
use acd_schemas::ingest::Parsed;
use acd_schemas::records::{AgentState, ConnectionState};
use acd_schemas::time::{now_millis, parse_rfc3339, Millis};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connectors::publish_until_acked;
use crate::publisher::Publisher;
use crate::status::Statuses;

/// The connector's name on `topics.connector_status`.
pub const CONNECTOR: &str = "avaya_cms.rt";

/// Lines longer than this are refused (a real report line is a few hundred bytes).
pub const MAX_LINE: usize = 16 * 1024;

/// The NICE code of a logged-out agent.
pub const UNSTAFFED: u32 = 10;
/// OTHER and UNKNOWN.
pub const OTHER: u32 = 220;

/// How fields are split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delimiter {
    Char(char),
    /// Runs of blanks (spaces and tabs).
    Whitespace,
}

/// The report items acd-bridge reads; other column names are kept only to count positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    LogId,
    WorkMode,
    Direction,
    AuxReason,
    AgTime,
    Ignored,
}

/// How CMS's report lines are laid out (`rt_delimiter`, `rt_columns`, `rt_end_marker`).
#[derive(Debug, Clone)]
pub struct Layout {
    delimiter: Delimiter,
    columns: Vec<Column>,
    end_marker: String,
}

impl Layout {
    /// The layout of a configuration (already checked: LOGID and WORKMODE are present).
    pub fn new(delimiter: &str, columns: &[String], end_marker: &str) -> Layout {
        let delimiter = match delimiter {
            "whitespace" => Delimiter::Whitespace,
            d => Delimiter::Char(d.chars().next().unwrap_or('|')),
        };
        let columns = columns
            .iter()
            .map(|c| match c.to_ascii_uppercase().as_str() {
                "LOGID" => Column::LogId,
                "WORKMODE" => Column::WorkMode,
                "DIRECTION" => Column::Direction,
                "AUXREASON" => Column::AuxReason,
                "AGTIME" => Column::AgTime,
                _ => Column::Ignored,
            })
            .collect();
        Layout { delimiter, columns, end_marker: end_marker.to_string() }
    }

    /// The layout of `[connectors.avaya_cms]`.
    pub fn of(cfg: &AvayaCmsConfig) -> Layout {
        Layout::new(&cfg.rt_delimiter, &cfg.rt_columns, &cfg.rt_end_marker)
    }
}

/// One agent row of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub logid: String,
    /// The NICE code.
    pub code: u32,
    /// AUXREASON, kept only when the mode is AUX.
    pub reason: String,
    /// Seconds in the current state.
    pub agtime: Option<u32>,
}

/// What a line is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Row(Row),
    /// The end of a snapshot, with its time when the line gives one.
    End(Option<Millis>),
    /// A blank line or the report's header line: nothing.
    Nothing,
}

/// True for the codes of AUX (50-59).
pub fn is_aux(code: u32) -> bool {
    (50..60).contains(&code)
}

/// A work mode (a name, any case, or a NICE code) and a direction as a NICE code: tens from the
/// mode, units from the direction (none 0, OUT 1, IN 2).
pub fn code(workmode: &str, direction: &str) -> Result<u32, String> {
    if !workmode.is_empty() && workmode.bytes().all(|b| b.is_ascii_digit()) {
        return workmode.parse::<u32>().map_err(|_| format!("WORKMODE: code {workmode:?} is too large"));
    }
    let dir = match direction.to_ascii_uppercase().as_str() {
        "" => 0,
        "OUT" => 1,
        "IN" => 2,
        other => return Err(format!("DIRECTION: must be IN, OUT or empty, is {other:?}")),
    };
    let tens = match workmode.to_ascii_uppercase().as_str() {
        "UNSTAFF" => return Ok(UNSTAFFED),
        "AVAIL" => return Ok(20),
        "RING" => return Ok(80),
        "OTHER" | "UNKNOWN" => return Ok(OTHER),
        "ACD" => 30,
        "ACW" => 40,
        "AUX" => 50,
        "DACD" => 60,
        "DACW" => 70,
        "" => return Err("WORKMODE: empty".into()),
        other => return Err(format!("WORKMODE: unknown mode {other:?}")),
    };
    Ok(tens + dir)
}

/// Reads one line (without its line end) by the layout.
pub fn parse_line(layout: &Layout, line: &str) -> Result<Line, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Ok(Line::Nothing);
    }
    if let Some(rest) = line.strip_prefix(layout.end_marker.as_str()) {
        let rest = rest.trim_start_matches(|c: char| Some(c) == delimiter_char(layout.delimiter) || c.is_whitespace());
        let time = rest.split(|c: char| Some(c) == delimiter_char(layout.delimiter) || c.is_whitespace()).next();
        return match time.filter(|t| !t.is_empty()) {
            None => Ok(Line::End(None)),
            Some(t) => parse_rfc3339(t).map(|t| Line::End(Some(t))).map_err(|e| format!("snapshot time: {e}")),
        };
    }
    let (mut logid, mut mode, mut dir, mut reason, mut agtime) = ("", None, "", "", None);
    let mut fields: Box<dyn Iterator<Item = &str>> = match layout.delimiter {
        Delimiter::Char(c) => Box::new(line.split(c)),
        Delimiter::Whitespace => Box::new(line.split_ascii_whitespace()),
    };
    for column in &layout.columns {
        let Some(value) = fields.next() else { break };
        let value = value.trim();
        match column {
            Column::LogId => logid = value,
            Column::WorkMode => mode = Some(value),
            Column::Direction => dir = value,
            Column::AuxReason => reason = value,
            Column::AgTime => agtime = Some(value),
            Column::Ignored => {}
        }
    }
    if logid.eq_ignore_ascii_case("LOGID") {
        return Ok(Line::Nothing);
    }
    if logid.is_empty() {
        return Err("LOGID: missing".into());
    }
    if logid.len() > 256 || !logid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("LOGID: must be 1..256 printable ASCII characters".into());
    }
    let Some(mode) = mode else {
        return Err("WORKMODE: missing".into());
    };
    let code = code(mode, dir)?;
    let agtime = match agtime.filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(a.parse::<u32>().map_err(|_| format!("AGTIME: must be whole seconds, is {a:?}"))?),
    };
    let reason = if is_aux(code) { reason } else { "" };
    if reason.len() > 256 {
        return Err("AUXREASON: longer than 256 characters".into());
    }
    Ok(Line::Row(Row { logid: logid.to_string(), code, reason: reason.to_string(), agtime }))
}

fn delimiter_char(d: Delimiter) -> Option<char> {
    match d {
        Delimiter::Char(c) => Some(c),
        Delimiter::Whitespace => None,
    }
}

/// FNV-1a for the per-snapshot maps: LOGIDs are short, and SipHash's cost showed in a
/// 10,000-agent snapshot. The keys come from CMS, not from the open internet.
#[derive(Default, Clone, Copy)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

#[derive(Debug, Clone)]
struct Known {
    code: u32,
    reason: String,
    at: Millis,
    /// The time of the latest snapshot that listed the agent or logged it out.
    seen: Millis,
}

/// Agent states from complete snapshots: the last published state per agent (shared by every
/// connection) and the agents of each connection's previous snapshot.
#[derive(Debug, Default)]
pub struct Tracker {
    acd_id: String,
    agents: FnvMap<String, Known>,
    listed: HashMap<u64, Vec<String>>,
}

impl Tracker {
    pub fn new(acd_id: &str) -> Tracker {
        Tracker { acd_id: acd_id.to_string(), ..Default::default() }
    }

    /// Applies connection `conn`'s complete snapshot taken at `time`: the states to publish.
    pub fn apply(&mut self, conn: u64, time: Millis, rows: &[Row]) -> Vec<AgentState> {
        let received = now_millis();
        // An agent on several rows takes its first row that is not OTHER, else its first row.
        let mut chosen: Vec<&Row> = Vec::with_capacity(rows.len());
        let mut at: FnvMap<&str, usize> = FnvMap::with_capacity_and_hasher(rows.len(), Default::default());
        for r in rows {
            match at.get(r.logid.as_str()) {
                None => {
                    at.insert(&r.logid, chosen.len());
                    chosen.push(r);
                }
                Some(&i) if chosen[i].code == OTHER && r.code != OTHER => chosen[i] = r,
                Some(_) => {}
            }
        }
        let mut out = Vec::new();
        let acd = self.acd_id.as_str();
        for r in &chosen {
            let wanted = time - r.agtime.map_or(0, |a| a as i64 * 1000);
            match self.agents.get_mut(r.logid.as_str()) {
                Some(k) => {
                    // An older snapshot than one already applied for this agent (an HA copy
                    // that arrived late) would move the agent back in time: nothing new.
                    if time < k.seen {
                        continue;
                    }
                    k.seen = time;
                    if k.code == r.code && k.reason == r.reason {
                        continue;
                    }
                    let t = wanted.max(k.at + 1);
                    (k.code, k.at) = (r.code, t);
                    k.reason.clone_from(&r.reason);
                    out.push(state(acd, &r.logid, r.code, &r.reason, t, received));
                }
                None => {
                    out.push(state(acd, &r.logid, r.code, &r.reason, wanted, received));
                    let known = Known { code: r.code, reason: r.reason.clone(), at: wanted, seen: time };
                    self.agents.insert(r.logid.clone(), known);
                }
            }
        }
        if let Some(before) = self.listed.get(&conn) {
            let mut gone: Vec<&String> = before.iter().filter(|l| !at.contains_key(l.as_str())).collect();
            gone.sort();
            for logid in gone {
                let Some(k) = self.agents.get_mut(logid.as_str()) else { continue };
                if k.code == UNSTAFFED || time < k.seen {
                    continue;
                }
                let t = time.max(k.at + 1);
                *k = Known { code: UNSTAFFED, reason: String::new(), at: t, seen: time };
                out.push(state(acd, logid, UNSTAFFED, "", t, received));
            }
        }
        let now_listed: Vec<String> = chosen.iter().map(|r| r.logid.clone()).collect();
        self.listed.insert(conn, now_listed);
        out
    }

    /// Forgets a closed connection's previous snapshot (its agents stay known).
    pub fn closed(&mut self, conn: u64) {
        self.listed.remove(&conn);
    }
}

fn state(acd_id: &str, logid: &str, code: u32, reason: &str, at: Millis, received: Millis) -> AgentState {
    AgentState {
        acd_id: acd_id.to_string(),
        login_id: logid.to_string(),
        event_code: code.to_string(),
        reason_code: reason.to_string(),
        event_utc_time: at,
        received_utc: Some(received),
    }
}

/// What a connection reports to the task that owns the tracker.
enum Msg {
    Opened(u64, String),
    Snapshot { conn: u64, time: Millis, rows: Vec<Row> },
    Closed(u64, String),
}

/// Reads a line of at most [`MAX_LINE`] bytes into `buf`; `Ok(None)` at the end of the stream,
/// `Ok(Some(false))` for a line that was too long (read past, not kept).
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if buf.is_empty() && !too_long { None } else { Some(!too_long) });
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if !too_long {
            if buf.len() + take > MAX_LINE + 2 {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&chunk[..take]);
            }
        }
        r.consume(take);
        if done {
            return Ok(Some(!too_long));
        }
    }
}

/// Reads one CMS connection until it closes; complete snapshots go to `tx`.
async fn connection(
    conn: u64,
    stream: tokio::net::TcpStream,
    layout: Arc<Layout>,
    tx: mpsc::Sender<Msg>,
    bad_lines: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
    let _ = tx.send(Msg::Opened(conn, peer.clone())).await;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut buf = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut line_no: u64 = 0;
    let end = loop {
        let read = tokio::select! {
            _ = shutdown.cancelled() => break "shutting down".to_string(),
            r = read_line(&mut reader, &mut buf) => r,
        };
        let ok = match read {
            Ok(None) => break "closed by CMS".to_string(),
            Err(e) => break format!("read failed: {e}"),
            Ok(Some(ok)) => ok,
        };
        line_no += 1;
        let parsed = if !ok {
            Err(format!("longer than {MAX_LINE} bytes"))
        } else {
            match std::str::from_utf8(&buf) {
                Ok(text) => parse_line(&layout, text),
                Err(_) => Err("not ASCII text".to_string()),
            }
        };
        match parsed {
            Ok(Line::Row(r)) => rows.push(r),
            Ok(Line::End(time)) => {
                let time = time.unwrap_or_else(now_millis);
                let rows = std::mem::take(&mut rows);
                if tx.send(Msg::Snapshot { conn, time, rows }).await.is_err() {
                    break "stopping".to_string();
                }
            }
            Ok(Line::Nothing) => {}
            Err(reason) => {
                let n = bad_lines.fetch_add(1, Ordering::Relaxed);
                // Said for the first lines, then every thousandth: a broken layout is one problem.
                if n < 10 || n.is_multiple_of(1000) {
                    tracing::warn!(connection = %peer, line = line_no, reason = %reason, "CMS real-time line skipped");
                }
            }
        }
    };
    if !rows.is_empty() {
        tracing::info!(connection = %peer, rows = rows.len(), "CMS real-time connection ended mid-snapshot; the partial snapshot is dropped");
    }
    let _ = tx.send(Msg::Closed(conn, end)).await;
}

/// Listens on `rt_listen` until shutdown.
pub async fn serve(cfg: AvayaCmsConfig, publisher: Arc<Publisher>, statuses: Statuses, shutdown: CancellationToken) {
    let acd = cfg.acd_id.clone();
    let listener = loop {
        match TcpListener::bind(&cfg.rt_listen).await {
            Ok(l) => break l,
            Err(e) => {
                tracing::error!(listen = %cfg.rt_listen, error = %e, "CMS real-time socket cannot listen; retrying in 5 s");
                statuses.set(
                    &acd,
                    CONNECTOR,
                    ConnectionState::Disconnected,
                    &format!("cannot listen on {}: {e}", cfg.rt_listen),
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        }
    };
    tracing::info!(listen = %cfg.rt_listen, "CMS real-time socket listening");
    statuses.set(&acd, CONNECTOR, ConnectionState::Disconnected, "listening; no CMS connection");
    let bad_lines = Arc::new(AtomicU64::new(0));
    let bad_counter = crate::connectors::skipped_counter(&publisher, CONNECTOR);
    let layout = Arc::new(Layout::of(&cfg));
    let (tx, mut rx) = mpsc::channel::<Msg>(64);
    let open: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let mut last_snapshot: Option<Instant> = None;
    let stale = Duration::from_secs(3 * cfg.rt_refresh_seconds);
    let mut tracker = Tracker::new(&acd);
    let mut next_conn: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut counted_bad = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    next_conn += 1;
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(connection(next_conn, stream, layout.clone(), tx.clone(), bad_lines.clone(), shutdown.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "CMS real-time socket: accept failed"),
            },
            Some(msg) = rx.recv() => match msg {
                Msg::Opened(conn, peer) => {
                    tracing::info!(connection = %peer, "CMS real-time connection opened");
                    open.lock().expect("rt connections").insert(conn, peer);
                }
                Msg::Closed(conn, why) => {
                    let peer = open.lock().expect("rt connections").remove(&conn).unwrap_or_default();
                    tracing::info!(connection = %peer, reason = %why, "CMS real-time connection closed");
                    tracker.closed(conn);
                }
                Msg::Snapshot { conn, time, rows } => {
                    let mut states = tracker.apply(conn, time, &rows);
                    states.retain(|s| match acd_schemas::check::agent_state(s) {
                        Ok(()) => true,
                        Err(e) => {
                            bad_counter.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(login_id = %s.login_id, reason = %e, "CMS real-time state skipped");
                            false
                        }
                    });
                    last_snapshot = Some(Instant::now());
                    if !states.is_empty() {
                        let newest = states.iter().map(|s| s.event_utc_time).max().unwrap_or(time);
                        if !publish_until_acked(&publisher, &Parsed::AgentStates(states), &shutdown).await {
                            break;
                        }
                        statuses.saw_data(&acd, CONNECTOR, newest);
                    }
                }
            },
            _ = tick.tick() => {}
        }
        let bad = bad_lines.load(Ordering::Relaxed);
        if bad > counted_bad {
            bad_counter.fetch_add(bad - counted_bad, Ordering::Relaxed);
            counted_bad = bad;
        }
        let connections = open.lock().expect("rt connections").len();
        let (state, detail) = match (connections, last_snapshot) {
            (0, _) => (ConnectionState::Disconnected, "no CMS connection".to_string()),
            (n, Some(t)) if t.elapsed() <= stale => {
                (ConnectionState::Connected, format!("{n} connection(s); snapshots arriving"))
            }
            (n, _) => (
                ConnectionState::Degraded,
                format!("{n} connection(s) open but no complete snapshot for {} s", stale.as_secs()),
            ),
        };
        statuses.set(&acd, CONNECTOR, state, &detail);
    }
    statuses.set(&acd, CONNECTOR, ConnectionState::Disconnected, "stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Layout {
        Layout::new(
            "|",
            &["LOGID", "EXTENSION", "WORKMODE", "DIRECTION", "AUXREASON", "AGTIME", "WORKSKILL"].map(String::from),
            "END_OF_SNAPSHOT",
        )
    }

    fn row(logid: &str, code: u32, reason: &str, agtime: Option<u32>) -> Row {
        Row { logid: logid.into(), code, reason: reason.into(), agtime }
    }

    #[test]
    fn lines_of_the_named_layout() {
        let l = names();
        let cases: &[(&str, Result<Line, &str>)] = &[
            ("967385|40117|ACD|IN||83|57", Ok(Line::Row(row("967385", 32, "", Some(83))))),
            ("967386|40118|aux||2|412|\r\n", Ok(Line::Row(row("967386", 50, "2", Some(412))))),
            ("967387|40119|ACW|OUT|7|5|", Ok(Line::Row(row("967387", 41, "", Some(5))))),
            ("967388|1|AVAIL|||", Ok(Line::Row(row("967388", 20, "", None)))),
            ("967389|1|UNSTAFF|||0|", Ok(Line::Row(row("967389", 10, "", Some(0))))),
            ("9|1|OTHER|||3|", Ok(Line::Row(row("9", 220, "", Some(3))))),
            ("9|1|UNKNOWN|||3|", Ok(Line::Row(row("9", 220, "", Some(3))))),
            ("9|1|RING|IN||3|", Ok(Line::Row(row("9", 80, "", Some(3))))),
            ("9|1|DACW|IN||3|", Ok(Line::Row(row("9", 72, "", Some(3))))),
            ("9|1|52||4|3|", Ok(Line::Row(row("9", 52, "4", Some(3))))),
            ("END_OF_SNAPSHOT|2024-04-17T10:05:03Z", Ok(Line::End(Some(1_713_348_303_000)))),
            ("END_OF_SNAPSHOT", Ok(Line::End(None))),
            ("", Ok(Line::Nothing)),
            ("LOGID|EXTENSION|WORKMODE|DIRECTION|AUXREASON|AGTIME|WORKSKILL", Ok(Line::Nothing)),
            ("9|1|BREAK|||3|", Err("WORKMODE: unknown mode \"BREAK\"")),
            ("9|1|ACD|SIDEWAYS||3|", Err("DIRECTION: must be IN, OUT or empty, is \"SIDEWAYS\"")),
            ("9|1|ACD|IN||x|", Err("AGTIME: must be whole seconds, is \"x\"")),
            ("|1|ACD|IN||3|", Err("LOGID: missing")),
            ("9|1", Err("WORKMODE: missing")),
            ("END_OF_SNAPSHOT|yesterday", Err("snapshot time: ")),
        ];
        for (line, want) in cases {
            let got = parse_line(&l, line);
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(w, g, "{line}"),
                (Err(w), Err(g)) => assert!(g.starts_with(w), "{line}: {g}"),
                _ => panic!("{line}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn lines_of_the_numeric_whitespace_layout() {
        let l = Layout::new("whitespace", &["LOGID", "WORKMODE", "X", "X", "X", "WORKSKILL"].map(String::from), "END");
        assert_eq!(parse_line(&l, "301204   80 0 0 0 232 0 1 801326").unwrap(), Line::Row(row("301204", 80, "", None)));
        assert_eq!(parse_line(&l, "301204\t32 0").unwrap(), Line::Row(row("301204", 32, "", None)));
        assert_eq!(parse_line(&l, "END 2024-04-17T10:05:03Z").unwrap(), Line::End(Some(1_713_348_303_000)));
    }

    #[test]
    fn the_first_snapshot_gives_every_agent_and_later_ones_only_changes() {
        let mut t = Tracker::new("cms");
        let s = t.apply(1, 100_000, &[row("a", 20, "", Some(10)), row("b", 50, "3", None)]);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].event_code.as_str(), s[0].event_utc_time), ("20", 90_000));
        assert_eq!((s[1].reason_code.as_str(), s[1].event_utc_time), ("3", 100_000));
        let s = t.apply(1, 115_000, &[row("a", 20, "", Some(25)), row("b", 50, "4", Some(2))]);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].login_id.as_str(), s[0].reason_code.as_str(), s[0].event_utc_time), ("b", "4", 113_000));
    }

    #[test]
    fn an_agent_on_two_rows_takes_the_first_that_is_not_other() {
        let mut t = Tracker::new("cms");
        let s = t.apply(1, 100_000, &[row("a", 220, "", Some(1)), row("a", 32, "", Some(5)), row("a", 20, "", None)]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].event_code, "32");
        let s = t.apply(1, 110_000, &[row("a", 220, "", Some(1)), row("a", 220, "", Some(2))]);
        assert_eq!(s[0].event_code, "220");
    }

    #[test]
    fn a_vanished_agent_is_logged_out_once_per_connection_and_never_before_its_last_state() {
        let mut t = Tracker::new("cms");
        t.apply(1, 100_000, &[row("a", 20, "", None), row("b", 20, "", None)]);
        t.apply(2, 100_500, &[row("a", 20, "", None), row("b", 20, "", None)]);
        let s = t.apply(1, 115_000, &[row("a", 20, "", None)]);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].login_id.as_str(), s[0].event_code.as_str(), s[0].event_utc_time), ("b", "10", 115_000));
        // The HA copy's next snapshot says the same: nothing more.
        assert!(t.apply(2, 115_400, &[row("a", 20, "", None)]).is_empty());
        // A state older than the last published one is moved just after it.
        let s = t.apply(1, 116_000, &[row("a", 30, "", Some(60))]);
        assert_eq!(s[0].event_utc_time, 100_001);
    }

    #[test]
    fn an_ha_copy_that_arrives_late_says_nothing() {
        let mut t = Tracker::new("cms");
        t.apply(1, 100_000, &[row("a", 20, "", None)]);
        t.apply(1, 115_000, &[row("a", 32, "", Some(3))]);
        assert!(t.apply(2, 100_000, &[row("a", 20, "", None)]).is_empty());
        assert!(t.apply(2, 115_000, &[row("a", 32, "", Some(3))]).is_empty());
        t.apply(1, 130_000, &[]);
        assert!(t.apply(2, 115_000, &[row("a", 32, "", Some(3))]).is_empty());
    }

    #[test]
    fn a_new_connection_diffs_against_what_is_known() {
        let mut t = Tracker::new("cms");
        t.apply(1, 100_000, &[row("a", 20, "", None)]);
        t.closed(1);
        assert!(t.apply(2, 115_000, &[row("a", 20, "", Some(15))]).is_empty());
    }
}
