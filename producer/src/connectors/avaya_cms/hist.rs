//! Historical exports (`hist_dir`): CMS's hsplit and hagent interval tables exported as CSV,
//! mapped to interval rows. [`read`] is pure: a whole file's text in, its rows or the reason
//! the whole file is refused out.
//!
//! Times are the switch's local time (`time_zone`). A local start that occurs twice (the
//! autumn DST hour) is the earlier instant the first time a (row_date, starttime, split[,
//! logid]) appears in the file and the later one the second time; a local start that does not
//! exist (the spring-forward hour) refuses the file.
//!
//! The rows come from files today; [`IntervalSource`] is the seam where a reader of CMS's
//! Informix database would go (it needs IBM's ODBC driver, which is not freely distributable).

use std::collections::{BTreeMap, HashMap};

use acd_interval::agent_map::AgentMap;
use acd_interval::sla::Formula;
use acd_schemas::records::{IntervalRow, RowKind};
use acd_schemas::time::Millis;
use acd_schemas::wfm::{AgentPerformanceRow, AgentQueueRow, QueueRow};
use chrono::{LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use chrono_tz::Tz;

/// The connector's name on `topics.connector_status`.
pub const CONNECTOR: &str = "avaya_cms.hist";

/// acdType of the rows.
pub const ACD_TYPE: &str = "Avaya_CMS";

/// A batch of rows from an [`IntervalSource`]: its name (a file name, a query window) and its
/// rows, or why the whole batch is refused.
pub type Batch = (String, Result<Vec<IntervalRow>, String>);

/// A source of CMS interval rows: files in a drop directory today, CMS's database tomorrow.
pub trait IntervalSource {
    /// The next batch, if one is ready.
    fn next(&mut self) -> std::io::Result<Option<Batch>>;
    /// Kafka acknowledged every row of the batch: its position may move on.
    fn done(&mut self, name: &str) -> std::io::Result<()>;
    /// The batch is refused as a whole, for `reason`.
    fn refused(&mut self, name: &str, reason: &str) -> std::io::Result<()>;
}

/// Which export a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Split,
    Agent,
}

/// The table of a file name: `hsplit*.csv` or `hagent*.csv`.
pub fn table_of(name: &str) -> Option<Table> {
    let lower = name.to_ascii_lowercase();
    if !lower.ends_with(".csv") {
        return None;
    }
    if lower.starts_with("hsplit") {
        Some(Table::Split)
    } else if lower.starts_with("hagent") {
        Some(Table::Agent)
    } else {
        None
    }
}

/// What a file's rows are mapped with.
pub struct Context<'a> {
    pub zone: Tz,
    pub queue_names: &'a BTreeMap<String, String>,
    pub agents: &'a AgentMap,
    pub formula: Formula,
    pub agent_performance: bool,
    /// `interval.minutes`.
    pub minutes: u32,
}

/// Splits one CSV line (commas; double quotes around a field, `""` inside it).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => out.push(std::mem::take(&mut field).trim().to_string()),
            (c, _) => field.push(c),
        }
    }
    out.push(field.trim().to_string());
    out
}

struct Cols {
    index: HashMap<String, usize>,
}

impl Cols {
    fn need(&self, name: &str) -> Result<usize, String> {
        self.index.get(name).copied().ok_or_else(|| format!("the header has no column {name}"))
    }
}

fn int(fields: &[String], i: usize, name: &str) -> Result<i64, String> {
    let v = fields.get(i).map(String::as_str).unwrap_or("");
    if v.is_empty() {
        return Ok(0);
    }
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(format!("{name}: must be a whole number >= 0, is {v:?}")),
    }
}

fn text<'f>(fields: &'f [String], i: usize, name: &str) -> Result<&'f str, String> {
    match fields.get(i).map(String::as_str) {
        Some(v) if !v.is_empty() && v.len() <= 256 => Ok(v),
        Some(v) if !v.is_empty() => Err(format!("{name}: longer than 256 characters")),
        _ => Err(format!("{name}: empty")),
    }
}

/// The UTC start of a local (row_date, starttime) in `zone`; `second` picks the later of two
/// instants of a repeated local time.
pub fn local_start(zone: Tz, date: &str, hhmm: i64, second: bool) -> Result<(Millis, bool), String> {
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| format!("row_date: not YYYY-MM-DD: {date:?}"))?;
    let (h, m) = (hhmm / 100, hhmm % 100);
    let time = NaiveTime::from_hms_opt(h as u32, m as u32, 0)
        .filter(|_| (0..24).contains(&h))
        .ok_or_else(|| format!("starttime: not a time of day as HHMM: {hhmm}"))?;
    let local = NaiveDateTime::new(day, time);
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Ok((t.timestamp_millis(), false)),
        LocalResult::Ambiguous(early, late) => Ok((if second { late } else { early }.timestamp_millis(), true)),
        LocalResult::None => Err(format!("{date} {h:02}:{m:02} does not exist in {zone} (the clocks skip it)")),
    }
}

/// Times each row's local start: a repeated local time is the earlier instant on the first
/// sight of its key and the later one on the second.
struct Clock {
    zone: Tz,
    seen: HashMap<String, u8>,
}

impl Clock {
    fn start(&mut self, date: &str, hhmm: i64, key: String) -> Result<Millis, String> {
        let (t, repeated) = local_start(self.zone, date, hhmm, false)?;
        if !repeated {
            return Ok(t);
        }
        let n = self.seen.entry(key).or_insert(0);
        *n += 1;
        match *n {
            1 => Ok(t),
            2 => local_start(self.zone, date, hhmm, true).map(|(t, _)| t),
            _ => Err(format!("{date} {hhmm:04} appears a third time for the same row, though it occurs only twice")),
        }
    }
}

fn row(kind: RowKind, start: Millis, length: Millis) -> IntervalRow {
    IntervalRow {
        acd_type: ACD_TYPE.into(),
        report_version: "0".into(),
        start_date: start,
        end_date: start + length,
        status: "SUCCESS".into(),
        status_reason: String::new(),
        kind,
        queue: None,
        agent_queue: None,
        agent_performance: None,
    }
}

/// A whole export file as interval rows, in file order (agent performance rows after them), or
/// why the file is refused (naming the line and column).
pub fn read(table: Table, csv: &str, ctx: &Context<'_>) -> Result<Vec<IntervalRow>, String> {
    let mut lines = csv.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let header = header.trim_start_matches('\u{feff}');
    let cols =
        Cols { index: split_csv(header).into_iter().enumerate().map(|(i, n)| (n.to_ascii_lowercase(), i)).collect() };
    let (date_c, start_c, intrvl_c, split_c) =
        (cols.need("row_date")?, cols.need("starttime")?, cols.need("intrvl")?, cols.need("split")?);
    let names: &[&str] = match table {
        Table::Split => &[
            "acdcalls",
            "abncalls",
            "acceptable",
            "slvlabns",
            "anstime",
            "abntime",
            "acdtime",
            "acwtime",
            "holdacdtime",
        ],
        Table::Agent if ctx.agent_performance => {
            &["logid", "acdcalls", "acdtime", "acwtime", "holdacdtime", "ti_stafftime", "ti_availtime", "ti_auxtime"]
        }
        Table::Agent => &["logid", "acdcalls", "acdtime", "acwtime", "holdacdtime"],
    };
    let at: Vec<usize> = names.iter().map(|n| cols.need(n)).collect::<Result<_, _>>()?;
    let mut clock = Clock { zone: ctx.zone, seen: HashMap::new() };
    let mut out = Vec::new();
    // (start, logid) -> (staffed, available, aux), in first-seen order.
    let mut perf: Vec<((Millis, Millis, String), [i64; 3])> = Vec::new();
    let mut perf_at: HashMap<(Millis, String), usize> = HashMap::new();
    for (n, line) in lines {
        let line_no = n + 1;
        let at_line = |e: String| format!("line {line_no}: {e}");
        let f = split_csv(line);
        let date = text(&f, date_c, "row_date").map_err(at_line)?;
        let hhmm = int(&f, start_c, "starttime").map_err(at_line)?;
        let intrvl = int(&f, intrvl_c, "intrvl").map_err(at_line)?;
        if intrvl != 15 && intrvl != 30 {
            return Err(at_line(format!("intrvl: must be 15 or 30, is {intrvl}")));
        }
        if intrvl > ctx.minutes as i64 {
            return Err(at_line(format!(
                "intrvl: {intrvl}-minute rows cannot be delivered as {}-minute intervals (interval.minutes)",
                ctx.minutes
            )));
        }
        let split = text(&f, split_c, "split").map_err(at_line)?;
        let v = |k: usize| int(&f, at[k], names[k]).map_err(at_line);
        let logid = match table {
            Table::Split => None,
            Table::Agent => Some(text(&f, at[0], "logid").map_err(at_line)?),
        };
        let key = format!("{date}/{hhmm}/{split}/{}", logid.unwrap_or(""));
        let start = clock.start(date, hhmm, key).map_err(at_line)?;
        let length = intrvl * 60_000;
        let queue_name = ctx.queue_names.get(split).cloned().unwrap_or_else(|| split.to_string());
        match table {
            Table::Split => {
                let (acd, abn, acceptable, slvlabns) = (v(0)?, v(1)?, v(2)?, v(3)?);
                let (anstime, abntime, acdtime, acwtime, hold) = (v(4)?, v(5)?, v(6)?, v(7)?, v(8)?);
                if acceptable > acd {
                    return Err(at_line(format!("acceptable ({acceptable}) is more than acdcalls ({acd})")));
                }
                if slvlabns > abn {
                    return Err(at_line(format!("slvlabns ({slvlabns}) is more than abncalls ({abn})")));
                }
                let received = acd + abn;
                let mut r = row(RowKind::Queue, start, length);
                r.queue = Some(QueueRow {
                    queue_value: split.to_string(),
                    queue_name,
                    is_outbound: false,
                    contacts_received: received,
                    handled_short: acceptable,
                    handled_long: acd - acceptable,
                    abandoned_short: slvlabns,
                    abandoned_long: abn - slvlabns,
                    handle_time: (acdtime + hold + acwtime) as f64,
                    hold_time: hold as f64,
                    work_time: acwtime as f64,
                    queue_delay_time: (anstime + abntime) as f64,
                    svc_lvl_pct: ctx.formula.percent(acceptable, slvlabns, received),
                    ..Default::default()
                });
                out.push(r);
            }
            Table::Agent => {
                let logid = logid.unwrap_or_default();
                let (acd, acdtime, acwtime, hold) = (v(1)?, v(2)?, v(3)?, v(4)?);
                let agent = ctx.agents.agent(logid);
                if acd > 0 {
                    let mut r = row(RowKind::AgentQueue, start, length);
                    r.agent_queue = Some(AgentQueueRow {
                        queue_value: split.to_string(),
                        queue_name,
                        is_outbound: false,
                        agent_value: agent.agent_value.clone(),
                        agent_id: agent.agent_id.clone(),
                        handled: acd,
                        handled_time: (acdtime + hold + acwtime) as f64,
                        hold_time: hold as f64,
                        work_time: acwtime as f64,
                        ..Default::default()
                    });
                    out.push(r);
                }
                if ctx.agent_performance {
                    let times = [v(5)?, v(6)?, v(7)?];
                    let k = (start, logid.to_string());
                    let i = *perf_at.entry(k).or_insert_with(|| {
                        perf.push(((start, length, logid.to_string()), [0; 3]));
                        perf.len() - 1
                    });
                    for (sum, t) in perf[i].1.iter_mut().zip(times) {
                        *sum += t;
                    }
                }
            }
        }
    }
    for ((start, length, logid), [staffed, avail, aux]) in perf {
        let agent = ctx.agents.agent(&logid);
        let mut r = row(RowKind::AgentPerformance, start, length);
        r.agent_performance = Some(AgentPerformanceRow {
            agent_value: agent.agent_value,
            agent_id: agent.agent_id,
            login_time: staffed as f64,
            ready_time: avail as f64,
            not_ready_time: aux as f64,
        });
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_schemas::time::format_millis;

    fn ctx<'a>(names: &'a BTreeMap<String, String>, agents: &'a AgentMap, zone: &str, perf: bool) -> Context<'a> {
        Context {
            zone: zone.parse().unwrap(),
            queue_names: names,
            agents,
            formula: Formula::HandledOverReceived,
            agent_performance: perf,
            minutes: 30,
        }
    }

    const SPLIT_HEADER: &str =
        "row_date,starttime,intrvl,split,acdcalls,abncalls,acceptable,slvlabns,servicelevel,anstime,abntime,acdtime,acwtime,holdacdtime";

    #[test]
    fn an_hsplit_row_as_a_queue_row() {
        let names = BTreeMap::from([("57".to_string(), "Billing".to_string())]);
        let agents = AgentMap::default();
        let csv = format!("{SPLIT_HEADER}\n2024-04-17,1000,15,57,28,3,24,2,20,310,95,5210,840,120\n");
        let rows = read(Table::Split, &csv, &ctx(&names, &agents, "UTC", false)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(format_millis(rows[0].start_date), "2024-04-17T10:00:00.000Z");
        assert_eq!(format_millis(rows[0].end_date), "2024-04-17T10:15:00.000Z");
        let q = rows[0].queue.as_ref().unwrap();
        assert_eq!((q.queue_value.as_str(), q.queue_name.as_str()), ("57", "Billing"));
        assert_eq!((q.contacts_received, q.handled_short, q.handled_long), (31, 24, 4));
        assert_eq!((q.abandoned_short, q.abandoned_long), (2, 1));
        assert_eq!((q.handle_time, q.hold_time, q.work_time, q.queue_delay_time), (6170.0, 120.0, 840.0, 405.0));
        assert!((q.svc_lvl_pct - 100.0 * 24.0 / 31.0).abs() < 1e-9);
        assert_eq!((q.backlog, q.active, q.right_party_contacts), (0, 0, 0));
    }

    #[test]
    fn hagent_rows_with_and_without_agent_performance() {
        let names = BTreeMap::new();
        let agents = AgentMap::parse("loginId,agentValue,agentId,userName\n967385,A-1,id-1,ann\n").unwrap();
        let csv = "row_date,starttime,intrvl,split,logid,acdcalls,acdtime,acwtime,holdacdtime,ti_stafftime,ti_availtime,ti_auxtime\n\
                   2024-04-17,1000,15,57,967385,4,760,96,20,900,110,60\n\
                   2024-04-17,1000,15,58,967385,0,0,0,0,0,0,0\n\
                   2024-04-17,1000,15,57,967386,0,0,0,0,900,900,0\n";
        let rows = read(Table::Agent, csv, &ctx(&names, &agents, "UTC", false)).unwrap();
        assert_eq!(rows.len(), 1);
        let a = rows[0].agent_queue.as_ref().unwrap();
        assert_eq!((a.agent_value.as_str(), a.agent_id.as_str(), a.handled), ("A-1", "id-1", 4));
        assert_eq!((a.handled_time, a.hold_time, a.work_time), (876.0, 20.0, 96.0));
        let rows = read(Table::Agent, csv, &ctx(&names, &agents, "UTC", true)).unwrap();
        let perf: Vec<_> = rows.iter().filter_map(|r| r.agent_performance.as_ref()).collect();
        assert_eq!(perf.len(), 2);
        assert_eq!(
            (perf[0].agent_value.as_str(), perf[0].login_time, perf[0].ready_time, perf[0].not_ready_time),
            ("A-1", 900.0, 110.0, 60.0)
        );
        assert_eq!((perf[1].agent_value.as_str(), perf[1].login_time), ("967386", 900.0));
    }

    #[test]
    fn the_repeated_autumn_hour_is_kept_apart_and_the_skipped_spring_hour_refused() {
        let names = BTreeMap::new();
        let agents = AgentMap::default();
        let c = ctx(&names, &agents, "America/New_York", false);
        let csv = format!(
            "{SPLIT_HEADER}\n2024-11-03,0130,30,57,1,0,1,0,20,5,0,60,0,0\n2024-11-03,0130,30,58,1,0,1,0,20,5,0,60,0,0\n\
             2024-11-03,0130,30,57,2,0,2,0,20,5,0,60,0,0\n2024-11-03,0200,30,57,3,0,3,0,20,5,0,60,0,0\n"
        );
        let rows = read(Table::Split, &csv, &c).unwrap();
        let starts: Vec<String> = rows.iter().map(|r| format_millis(r.start_date)).collect();
        assert_eq!(
            starts,
            [
                "2024-11-03T05:30:00.000Z",
                "2024-11-03T05:30:00.000Z",
                "2024-11-03T06:30:00.000Z",
                "2024-11-03T07:00:00.000Z"
            ]
        );
        let third = format!("{csv}2024-11-03,0130,30,57,2,0,2,0,20,5,0,60,0,0\n");
        assert!(read(Table::Split, &third, &c).unwrap_err().contains("third time"));
        let gap = format!("{SPLIT_HEADER}\n2024-03-10,0230,30,57,1,0,1,0,20,5,0,60,0,0\n");
        let e = read(Table::Split, &gap, &c).unwrap_err();
        assert_eq!(e, "line 2: 2024-03-10 02:30 does not exist in America/New_York (the clocks skip it)");
    }

    #[test]
    fn refused_files_name_the_line_and_column() {
        let names = BTreeMap::new();
        let agents = AgentMap::default();
        let c = ctx(&names, &agents, "UTC", false);
        let cases = [
            (
                format!("{SPLIT_HEADER}\n2024-04-17,1000,60,57,1,0,1,0,20,5,0,60,0,0\n"),
                "line 2: intrvl: must be 15 or 30, is 60",
            ),
            (
                format!("{SPLIT_HEADER}\n2024-04-17,1000,15,57,x,0,1,0,20,5,0,60,0,0\n"),
                "line 2: acdcalls: must be a whole number",
            ),
            (
                format!("{SPLIT_HEADER}\n2024-04-17,1000,15,57,1,0,2,0,20,5,0,60,0,0\n"),
                "line 2: acceptable (2) is more",
            ),
            (
                format!("{SPLIT_HEADER}\n17/04/2024,1000,15,57,1,0,1,0,20,5,0,60,0,0\n"),
                "line 2: row_date: not YYYY-MM-DD",
            ),
            (format!("{SPLIT_HEADER}\n2024-04-17,2500,15,57,1,0,1,0,20,5,0,60,0,0\n"), "line 2: starttime: not a time"),
            (
                "row_date,starttime,intrvl,split\n2024-04-17,1000,15,57\n".to_string(),
                "the header has no column acdcalls",
            ),
        ];
        for (csv, want) in cases {
            let e = read(Table::Split, &csv, &c).unwrap_err();
            assert!(e.starts_with(want), "{e}");
        }
        let c15 = Context { minutes: 15, ..c };
        let e = read(Table::Split, &format!("{SPLIT_HEADER}\n2024-04-17,1000,30,57,1,0,1,0,20,5,0,60,0,0\n"), &c15)
            .unwrap_err();
        assert!(e.contains("cannot be delivered as 15-minute intervals"), "{e}");
    }

    #[test]
    fn csv_fields_may_be_quoted() {
        assert_eq!(split_csv(r#"a, "b,c" ,"d""e",,"#), ["a", "b,c", "d\"e", "", ""]);
        assert_eq!(table_of("hsplit_20240417.csv"), Some(Table::Split));
        assert_eq!(table_of("HAGENT-1.CSV"), Some(Table::Agent));
        assert_eq!(table_of("hsplit.txt"), None);
    }
}
