//! `acd-bridge cms-sim`: an Avaya CMS for users and tests. From a seed it plays a contact-center
//! period and feeds it to acd-bridge the three ways CMS does:
//!
//! - the real-time socket: it connects to `--rt` as CMS does and sends a snapshot of its agent
//!   report every `--refresh-seconds` of simulated time, in the `names` layout (`|`-delimited,
//!   work-mode names) or the `codes` layout (blank-separated NICE codes); with `--ha` a second
//!   connection sends every snapshot again; with `--faults` it sends unreadable lines, closes
//!   a connection in the middle of a snapshot and reconnects;
//! - External Call History files (`--ech-dir`), one per interval, versions 181 and 180 in turn,
//!   with answered, abandoned, transferred and non-ACD segments;
//! - hsplit and hagent CSV exports (`--hist-dir`) for splits of their own, in `--time-zone`;
//!
//! and writes its ground truth (`--truth`): every agent state and every WFM interval figure it
//! expects, computed here from what it generated, independently of acd-bridge's code.
//!
//! The byte offsets written below are this emulator's own copy of CMS's published layouts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::TimeZone;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// `acd-bridge cms-sim` options.
#[derive(Debug, Clone, clap::Args)]
pub struct CmsArgs {
    /// Where acd-bridge's `rt_listen` is (empty: no real-time feed).
    #[arg(long, default_value = "")]
    pub rt: String,
    /// `names` (`|`-delimited work-mode names: LOGID|WORKMODE|DIRECTION|AUXREASON|AGTIME|WORKSKILL)
    /// or `codes` (blank-separated: LOGID WORKMODE AUXREASON AGTIME WORKSKILL, NICE codes).
    #[arg(long, default_value = "names")]
    pub layout: String,
    #[arg(long, default_value_t = 15)]
    pub refresh_seconds: u64,
    /// A second connection sending every snapshot again (a CMS HA pair).
    #[arg(long)]
    pub ha: bool,
    /// Unreadable lines, a connection closed mid-snapshot, and reconnects.
    #[arg(long)]
    pub faults: bool,
    /// Wall-clock milliseconds between two snapshots.
    #[arg(long, default_value_t = 20)]
    pub snapshot_ms: u64,
    /// External Call History drop directory (empty: none written).
    #[arg(long, default_value = "")]
    pub ech_dir: String,
    /// hsplit/hagent export drop directory (empty: none written).
    #[arg(long, default_value = "")]
    pub hist_dir: String,
    /// Where the ground truth goes as JSON (empty: not written).
    #[arg(long, default_value = "")]
    pub truth: String,
    #[arg(long, default_value_t = 20)]
    pub agents: u32,
    /// Splits fed by call records (57, 58, ...); the exports cover as many splits of their own (80, 81, ...).
    #[arg(long, default_value_t = 3)]
    pub splits: u32,
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The start of the simulated period, epoch milliseconds (default: it ends 2 minutes ago).
    #[arg(long)]
    pub start_ms: Option<i64>,
    /// Interval length of the files and exports, 15 or 30.
    #[arg(long, default_value_t = 15)]
    pub interval_minutes: u32,
    /// The switch's IANA zone, for the exports' local times.
    #[arg(long, default_value = "UTC")]
    pub time_zone: String,
    /// The service-level threshold the truth's short/long split uses (`sla.threshold_seconds`).
    #[arg(long, default_value_t = 20.0)]
    pub sla_seconds: f64,
    #[arg(long, default_value = "cms")]
    pub acd_id: String,
}

impl Default for CmsArgs {
    fn default() -> Self {
        CmsArgs {
            rt: String::new(),
            layout: "names".into(),
            refresh_seconds: 15,
            ha: false,
            faults: false,
            snapshot_ms: 20,
            ech_dir: String::new(),
            hist_dir: String::new(),
            truth: String::new(),
            agents: 20,
            splits: 3,
            minutes: 60,
            seed: 1,
            start_ms: None,
            interval_minutes: 15,
            time_zone: "UTC".into(),
            sla_seconds: 20.0,
            acd_id: "cms".into(),
        }
    }
}

/// An agent state the WFM should receive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TruthState {
    pub login_id: String,
    pub event_utc_time: i64,
    pub event_code: String,
    pub reason_code: String,
}

/// A queue row the WFM should hold (interval of `--interval-minutes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TruthQueue {
    pub start_ms: i64,
    pub queue_value: String,
    pub contacts_received: i64,
    pub handled_short: i64,
    pub handled_long: i64,
    pub abandoned_short: i64,
    pub abandoned_long: i64,
    pub handle_time: f64,
    pub hold_time: f64,
    pub work_time: f64,
    pub queue_delay_time: f64,
}

/// An agent-queue row the WFM should hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TruthAgentQueue {
    pub start_ms: i64,
    pub queue_value: String,
    pub agent_value: String,
    pub handled: i64,
    pub handled_time: f64,
    pub hold_time: f64,
    pub work_time: f64,
}

/// What the WFM should receive, computed from what was generated.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Truth {
    pub acd_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub interval_minutes: u32,
    pub snapshots: usize,
    pub agent_states: Vec<TruthState>,
    /// From call records (splits 57...) and from hsplit exports (splits 80...).
    pub queue_rows: Vec<TruthQueue>,
    /// From call records and from hagent exports.
    pub agent_queue_rows: Vec<TruthAgentQueue>,
    pub ech_files: Vec<String>,
    pub segments: usize,
    pub segments_skipped: usize,
    pub hist_files: Vec<String>,
}

/// One call segment, as the emulator writes it.
#[derive(Debug, Clone, Default)]
struct Seg {
    callid: u32,
    segment: u8,
    ucid: String,
    disp: u8,
    split: i16,
    start: i64,
    disptime: u32,
    queue: u32,
    ring: u32,
    talk: u32,
    hold: u32,
    acw: u32,
    login: String,
    transferred: bool,
}

impl Seg {
    fn end(&self) -> i64 {
        self.start + (self.disptime + self.talk + self.hold + self.acw) as i64
    }
}

/// (field, offset in 181, offset in 180) of the fields written; everything else stays zero.
const OFFSETS: &[(&str, usize, usize)] = &[
    ("CALLID", 0, 0),
    ("ACWTIME", 4, 4),
    ("ANSHOLDTIME", 8, 8),
    ("DISPTIME", 16, 16),
    ("SEGSTART", 24, 24),
    ("SEGSTART_UTC", 28, 28),
    ("SEGSTOP", 32, 32),
    ("SEGSTOP_UTC", 36, 36),
    ("TALKTIME", 40, 40),
    ("QUEUETIME", 52, 52),
    ("RINGTIME", 56, 56),
    ("DISPSPLIT", 70, 66),
    ("FLAGS", 92, 88),
    ("CALL_DISP", 95, 91),
    ("SEGMENT", 98, 94),
    ("UCID", 113, 107),
    ("ANSLOGIN", 195, 189),
];

/// The bytes of a call history file of `version` (181: 720-byte records, 180: 697).
fn ech_file(version: u32, sequence: u32, segs: &[Seg]) -> Vec<u8> {
    let len = if version == 181 { 720 } else { 697 };
    let mut out = Vec::with_capacity(8 + segs.len() * len);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    for s in segs {
        let mut rec = vec![0u8; len];
        let at = |name: &str| {
            let (_, a, b) = OFFSETS.iter().find(|(n, _, _)| *n == name).expect("known field");
            if version == 181 {
                *a
            } else {
                *b
            }
        };
        let mut u32_at = |name: &str, v: u32| {
            let o = at(name);
            rec[o..o + 4].copy_from_slice(&v.to_le_bytes());
        };
        u32_at("CALLID", s.callid);
        u32_at("ACWTIME", s.acw);
        u32_at("ANSHOLDTIME", s.hold);
        u32_at("DISPTIME", s.disptime);
        u32_at("SEGSTART", s.start as u32);
        u32_at("SEGSTART_UTC", s.start as u32);
        u32_at("SEGSTOP", s.end() as u32);
        u32_at("SEGSTOP_UTC", s.end() as u32);
        u32_at("TALKTIME", s.talk);
        u32_at("QUEUETIME", s.queue);
        u32_at("RINGTIME", s.ring);
        let o = at("DISPSPLIT");
        rec[o..o + 2].copy_from_slice(&s.split.to_le_bytes());
        rec[at("FLAGS")] = if s.transferred { 0x80 } else { 0 };
        rec[at("CALL_DISP")] = s.disp;
        rec[at("SEGMENT")] = s.segment;
        let o = at("UCID");
        rec[o..o + s.ucid.len()].copy_from_slice(s.ucid.as_bytes());
        let o = at("ANSLOGIN");
        rec[o..o + s.login.len()].copy_from_slice(s.login.as_bytes());
        out.extend_from_slice(&rec);
    }
    out
}

/// One agent's period: states (code, reason, start second) and logout.
struct Agent {
    logid: String,
    states: Vec<(u32, String, i64)>,
    logout: i64,
    /// Shows UNSTAFF for two snapshots after logging out, instead of leaving the report at once.
    unstaff_rows: bool,
    /// Also listed as OTHER in a second split.
    twice: bool,
}

impl Agent {
    /// (code, reason, since) at second `t`, or None when not in the report.
    fn at(&self, t: i64, refresh: i64) -> Option<(u32, String, i64)> {
        let first = self.states.first()?;
        if t < first.2 {
            return None;
        }
        if t >= self.logout {
            return (self.unstaff_rows && t < self.logout + 2 * refresh).then(|| (10, String::new(), self.logout));
        }
        self.states.iter().rev().find(|s| s.2 <= t).cloned()
    }
}

fn mode_name(code: u32) -> (&'static str, &'static str) {
    let dir = match code % 10 {
        1 => "OUT",
        2 => "IN",
        _ => "",
    };
    let mode = match code {
        10 => "UNSTAFF",
        20 => "AVAIL",
        80 => "RING",
        220 => "OTHER",
        30..=39 => "ACD",
        40..=49 => "ACW",
        50..=59 => "AUX",
        60..=69 => "DACD",
        _ => "DACW",
    };
    (mode, if (30..80).contains(&code) { dir } else { "" })
}

/// Everything the emulator will send and write, and its truth.
pub struct Plan {
    /// (time in ms, lines without the end marker line).
    pub snapshots: Vec<(i64, Vec<String>)>,
    /// (due time in ms, file name, bytes).
    pub files: Vec<(i64, String, Vec<u8>)>,
    pub truth: Truth,
    /// Snapshot indexes where connection A closes mid-snapshot, and where it closes after one.
    pub cut_at: Option<usize>,
    pub reconnect_after: Option<usize>,
}

/// Generates the period from the arguments (pure: the same arguments give the same plan).
pub fn plan(args: &CmsArgs, now_ms: i64) -> Result<Plan, String> {
    let zone: chrono_tz::Tz =
        args.time_zone.parse().map_err(|_| format!("--time-zone: unknown zone {:?}", args.time_zone))?;
    if ![15, 30].contains(&args.interval_minutes) {
        return Err("--interval-minutes: must be 15 or 30".into());
    }
    if args.layout != "names" && args.layout != "codes" {
        return Err("--layout: must be names or codes".into());
    }
    let len_s = args.interval_minutes as i64 * 60;
    let secs = args.minutes as i64 * 60;
    let start = match args.start_ms {
        Some(s) => s.div_euclid(1000),
        None => ((now_ms / 1000 - 120 - secs).div_euclid(len_s)) * len_s,
    };
    let end = start + secs;
    let refresh = args.refresh_seconds.max(1) as i64;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut truth = Truth {
        acd_id: args.acd_id.clone(),
        start_ms: start * 1000,
        end_ms: end * 1000,
        interval_minutes: args.interval_minutes,
        ..Truth::default()
    };

    // Agents and their states; every state lasts longer than a refresh, so each one is seen.
    let mut agents = Vec::new();
    for i in 0..args.agents {
        let logid = format!("{}", 5001 + i);
        let login = start + rng.gen_range(0..(secs / 4).max(1));
        let logout = start + secs * 3 / 4 + rng.gen_range(0..(secs / 5).max(1));
        let mut states: Vec<(u32, String, i64)> = Vec::new();
        let mut t = login;
        let mut last = (0u32, String::new());
        while t < logout - refresh - 1 {
            let next = loop {
                let code = match rng.gen_range(0..10) {
                    0..=2 => 20,
                    3..=4 => 32,
                    5 => 31,
                    6..=7 => 42,
                    8 => 80,
                    _ => 50,
                };
                let reason = if code == 50 { rng.gen_range(1..10).to_string() } else { String::new() };
                if (code, reason.clone()) != last {
                    break (code, reason);
                }
            };
            states.push((next.0, next.1.clone(), t));
            last = next;
            t += rng.gen_range(refresh + 1..=refresh * 6);
        }
        if states.is_empty() {
            states.push((20, String::new(), login));
        }
        let logout = logout.max(states.last().map_or(login, |s| s.2) + refresh + 1);
        agents.push(Agent { logid, states, logout, unstaff_rows: i % 2 == 1, twice: i % 7 == 3 });
    }

    // Snapshots.
    let mut times = Vec::new();
    let mut t = start + refresh;
    while t <= end + 2 * refresh {
        times.push(t);
        t += refresh;
    }
    let (cut_at, reconnect_after) = if args.faults && times.len() > 8 { (Some(4), Some(7)) } else { (None, None) };
    // A connection's first snapshot cannot see who left before it: agents leaving just then
    // show UNSTAFF rows instead (as in a real CMS's report of logged-out agents).
    let fresh: Vec<usize> = [cut_at, reconnect_after.map(|r| r + 1)].into_iter().flatten().collect();
    for a in &mut agents {
        if !a.unstaff_rows {
            let first_missing = times.iter().position(|&t| t >= a.logout);
            if first_missing.is_some_and(|k| fresh.contains(&k)) {
                a.unstaff_rows = true;
            }
        }
    }
    let mut snapshots = Vec::new();
    for (k, &t) in times.iter().enumerate() {
        let mut lines = Vec::new();
        for a in &agents {
            let Some((code, reason, since)) = a.at(t, refresh) else { continue };
            let agtime = t - since;
            let skill = 57 + (a.logid.len() as u32 % args.splits.max(1));
            let row = |code: u32, reason: &str, agtime: i64| match args.layout.as_str() {
                "codes" => {
                    format!("{} {code} {} {agtime} {skill}", a.logid, if reason.is_empty() { "0" } else { reason })
                }
                _ => {
                    let (mode, dir) = mode_name(code);
                    format!("{}|{mode}|{dir}|{reason}|{agtime}|{skill}", a.logid)
                }
            };
            if a.twice && code != 10 && k % 2 == 0 {
                lines.push(row(220, "", 5));
            }
            lines.push(row(code, &reason, agtime));
            if a.twice && code != 10 && k % 2 == 1 {
                lines.push(row(220, "", 5));
            }
        }
        if args.faults && k == 2 {
            lines.insert(lines.len() / 2, "this line is not a CMS report row".into());
            lines.push("5001|SIDEWAYS||||".into());
        }
        snapshots.push((t * 1000, lines));
    }
    truth.snapshots = snapshots.len();
    // The truth of the states: every state change as it began; a logout at its time when the
    // report shows UNSTAFF, else at the first snapshot the agent is missing from.
    for a in &agents {
        for (code, reason, since) in &a.states {
            if times.iter().any(|&t| t >= *since && a.at(t, refresh).is_some_and(|s| s.2 == *since)) {
                let reason = if (50..60).contains(code) { reason.clone() } else { String::new() };
                truth.agent_states.push(TruthState {
                    login_id: a.logid.clone(),
                    event_utc_time: since * 1000,
                    event_code: code.to_string(),
                    reason_code: reason,
                });
            }
        }
        let seen_out = times.iter().find(|&&t| t >= a.logout).copied();
        if let Some(t) = seen_out {
            let at = if a.unstaff_rows { a.logout } else { t };
            truth.agent_states.push(TruthState {
                login_id: a.logid.clone(),
                event_utc_time: at * 1000,
                event_code: "10".into(),
                reason_code: String::new(),
            });
        }
    }
    truth.agent_states.sort();

    // Call segments.
    let mut segs: Vec<Seg> = Vec::new();
    let calls = (args.agents as u64 * args.minutes / 3).max(1);
    let mut callid: u32 = 70_000;
    let login = |rng: &mut StdRng| format!("{}", 5001 + rng.gen_range(0..args.agents.max(1)));
    let last_start = (end - 20 * 60).max(start + 1);
    for _ in 0..calls {
        callid += 1;
        let split = 57 + rng.gen_range(0..args.splits.max(1)) as i16;
        let arrive = rng.gen_range(start..last_start);
        let vector = rng.gen_range(0..5u32);
        let ucid = if rng.gen_range(0..20) == 0 {
            String::new()
        } else {
            format!("{:05}{callid:08}{}", 1, arrive % 10_000_000)
        };
        let kind = rng.gen_range(0..100);
        let mut s =
            Seg { callid, segment: 1, ucid: ucid.clone(), split, start: arrive - vector as i64, ..Seg::default() };
        match kind {
            0..=69 | 85..=91 => {
                s.disp = 2;
                s.queue = rng.gen_range(0..60);
                s.ring = rng.gen_range(2..10);
                s.disptime = vector + s.queue + s.ring;
                s.talk = rng.gen_range(30..600);
                s.hold = if rng.gen_bool(0.3) { rng.gen_range(1..90) } else { 0 };
                s.acw = rng.gen_range(0..60);
                s.login = login(&mut rng);
                if kind >= 85 {
                    // Transferred at the end of the talk to another split: a second segment.
                    s.transferred = true;
                    let mut t = Seg {
                        callid,
                        segment: 2,
                        ucid,
                        split: 57 + ((split - 57 + 1) as u32 % args.splits.max(1)) as i16,
                        start: s.start + (s.disptime + s.talk) as i64,
                        disp: 2,
                        queue: rng.gen_range(0..30),
                        ring: rng.gen_range(2..8),
                        talk: rng.gen_range(30..300),
                        acw: rng.gen_range(0..30),
                        login: login(&mut rng),
                        ..Seg::default()
                    };
                    t.disptime = t.queue + t.ring;
                    segs.push(t);
                }
            }
            70..=84 => {
                s.disp = 3;
                s.queue = rng.gen_range(0..120);
                s.disptime = vector + s.queue;
            }
            _ => {
                // Not an ACD contact: a direct call, interflow, busy, disconnect, or other.
                s.disp = [1, 4, 5, 6, 7, 2][rng.gen_range(0..6)];
                if s.disp == 2 || rng.gen_bool(0.5) {
                    s.split = 0;
                }
                s.disptime = vector;
                s.talk = if s.disp == 1 || s.disp == 2 { rng.gen_range(10..100) } else { 0 };
                s.login = if s.talk > 0 { login(&mut rng) } else { String::new() };
            }
        }
        segs.push(s);
    }
    segs.sort_by_key(|s| (s.end(), s.callid, s.segment));
    truth.segments = segs.len();
    let threshold = args.sla_seconds;
    let mut queues: BTreeMap<(i64, String), TruthQueue> = BTreeMap::new();
    let mut agent_queues: BTreeMap<(i64, String, String), TruthAgentQueue> = BTreeMap::new();
    for s in &segs {
        if !(s.disp == 2 || s.disp == 3) || s.split <= 0 {
            truth.segments_skipped += 1;
            continue;
        }
        let answered = s.disp == 2;
        let ended = if answered { s.end() } else { s.start + s.disptime as i64 };
        let interval = ended.div_euclid(len_s) * len_s;
        let q = queues.entry((interval, s.split.to_string())).or_insert_with(|| TruthQueue {
            start_ms: interval * 1000,
            queue_value: s.split.to_string(),
            ..TruthQueue::default()
        });
        let delay = (s.queue + s.ring) as f64;
        let short = delay <= threshold;
        q.contacts_received += 1;
        q.queue_delay_time += delay;
        if answered {
            if short {
                q.handled_short += 1;
            } else {
                q.handled_long += 1;
            }
            q.handle_time += (s.talk + s.hold + s.acw) as f64;
            q.hold_time += s.hold as f64;
            q.work_time += s.acw as f64;
            let a = agent_queues.entry((interval, s.split.to_string(), s.login.clone())).or_insert_with(|| {
                TruthAgentQueue {
                    start_ms: interval * 1000,
                    queue_value: s.split.to_string(),
                    agent_value: s.login.clone(),
                    ..TruthAgentQueue::default()
                }
            });
            a.handled += 1;
            a.handled_time += (s.talk + s.hold + s.acw) as f64;
            a.hold_time += s.hold as f64;
            a.work_time += s.acw as f64;
        } else if short {
            q.abandoned_short += 1;
        } else {
            q.abandoned_long += 1;
        }
    }
    let mut files = Vec::new();
    if !args.ech_dir.is_empty() {
        let mut by_interval: BTreeMap<i64, Vec<Seg>> = BTreeMap::new();
        for s in segs {
            by_interval.entry(s.end().div_euclid(len_s) * len_s).or_default().push(s);
        }
        for (n, (interval, segs)) in by_interval.into_iter().enumerate() {
            let version = if n % 2 == 0 { 181 } else { 180 };
            let name = format!("chr{:04}", n + 1);
            truth.ech_files.push(name.clone());
            files.push(((interval + len_s) * 1000, name, ech_file(version, n as u32 + 1, &segs)));
        }
        truth.queue_rows.extend(queues.into_values());
        truth.agent_queue_rows.extend(agent_queues.into_values());
    }

    // Exports: splits 80... and their agents, one hsplit and one hagent file per hour.
    if !args.hist_dir.is_empty() {
        let splits: Vec<String> = (0..args.splits.max(1)).map(|i| (80 + i).to_string()).collect();
        // One export per local day, as a scheduled daily export is: both autumn hours in one file.
        let mut days: BTreeMap<String, (i64, String, String)> = BTreeMap::new();
        let mut t = start;
        while t + len_s <= end {
            let local = zone.timestamp_opt(t, 0).single().ok_or("a time outside the zone's range")?;
            let (date, hhmm) = (local.format("%Y-%m-%d").to_string(), local.format("%H%M").to_string());
            let (due, hs, ha) = days.entry(local.format("%Y%m%d").to_string()).or_default();
            *due = (t + len_s) * 1000;
            for split in &splits {
                let acd = rng.gen_range(0..30i64);
                let abn = rng.gen_range(0..5i64);
                let acceptable = rng.gen_range(0..=acd);
                let slvlabns = rng.gen_range(0..=abn);
                let (anstime, abntime) = (rng.gen_range(0..40) * acd, rng.gen_range(0..60) * abn);
                let (acdtime, acwtime, hold) =
                    (rng.gen_range(60..400) * acd, rng.gen_range(0..60) * acd, rng.gen_range(0..30) * acd);
                hs.push_str(&format!(
                    "{date},{hhmm},{},{split},{acd},{abn},{acceptable},{slvlabns},{},{anstime},{abntime},{acdtime},{acwtime},{hold}\n",
                    args.interval_minutes, threshold
                ));
                truth.queue_rows.push(TruthQueue {
                    start_ms: t * 1000,
                    queue_value: split.clone(),
                    contacts_received: acd + abn,
                    handled_short: acceptable,
                    handled_long: acd - acceptable,
                    abandoned_short: slvlabns,
                    abandoned_long: abn - slvlabns,
                    handle_time: (acdtime + hold + acwtime) as f64,
                    hold_time: hold as f64,
                    work_time: acwtime as f64,
                    queue_delay_time: (anstime + abntime) as f64,
                });
                for a in 0..3 {
                    let logid = format!("{}", 9001 + a);
                    let calls = if a == 2 { 0 } else { rng.gen_range(0..6i64) };
                    let (acdtime, acwtime, hold) =
                        (rng.gen_range(60..400) * calls, rng.gen_range(0..60) * calls, rng.gen_range(0..30) * calls);
                    let staffed = len_s;
                    let avail = rng.gen_range(0..staffed / 2);
                    let aux = rng.gen_range(0..staffed / 4);
                    ha.push_str(&format!(
                        "{date},{hhmm},{},{split},{logid},{calls},{acdtime},{acwtime},{hold},{staffed},{avail},{aux}\n",
                        args.interval_minutes
                    ));
                    if calls > 0 {
                        truth.agent_queue_rows.push(TruthAgentQueue {
                            start_ms: t * 1000,
                            queue_value: split.clone(),
                            agent_value: logid,
                            handled: calls,
                            handled_time: (acdtime + hold + acwtime) as f64,
                            hold_time: hold as f64,
                            work_time: acwtime as f64,
                        });
                    }
                }
            }
            t += len_s;
        }
        for (day, (due, hs, ha)) in days {
            let split_name = format!("hsplit_{day}.csv");
            let agent_name = format!("hagent_{day}.csv");
            files.push((due, split_name.clone(), format!("{HSPLIT_HEADER}\n{hs}").into_bytes()));
            files.push((due, agent_name.clone(), format!("{HAGENT_HEADER}\n{ha}").into_bytes()));
            truth.hist_files.push(split_name);
            truth.hist_files.push(agent_name);
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    Ok(Plan { snapshots, files, truth, cut_at, reconnect_after })
}

/// The hsplit export header the emulator writes.
pub const HSPLIT_HEADER: &str =
    "row_date,starttime,intrvl,split,acdcalls,abncalls,acceptable,slvlabns,servicelevel,anstime,abntime,acdtime,acwtime,holdacdtime";
/// The hagent export header the emulator writes.
pub const HAGENT_HEADER: &str =
    "row_date,starttime,intrvl,split,logid,acdcalls,acdtime,acwtime,holdacdtime,ti_stafftime,ti_availtime,ti_auxtime";

async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn end_line(args: &CmsArgs, t: i64) -> String {
    let time = chrono::DateTime::from_timestamp_millis(t)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    match args.layout.as_str() {
        "codes" => format!("END_OF_SNAPSHOT {time}\n"),
        _ => format!("END_OF_SNAPSHOT|{time}\n"),
    }
}

/// Writes a file as CMS's transfer does: under its name, then left alone.
fn write_file(dir: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(PathBuf::from(dir).join(name), bytes)
}

/// Plays the plan: files as their intervals end, snapshots every `--snapshot-ms`. Returns the truth.
pub async fn run(args: CmsArgs) -> anyhow::Result<Truth> {
    let plan = plan(&args, chrono::Utc::now().timestamp_millis()).map_err(|e| anyhow::anyhow!(e))?;
    let mut files = plan.files.into_iter().peekable();
    let (mut a, mut b) = (None, None);
    if !args.rt.is_empty() {
        a = Some(connect(&args.rt).await?);
        if args.ha {
            b = Some(connect(&args.rt).await?);
        }
    }
    let write_due =
        |files: &mut std::iter::Peekable<std::vec::IntoIter<(i64, String, Vec<u8>)>>, t: i64| -> std::io::Result<()> {
            while let Some((due, _, _)) = files.peek() {
                if *due > t {
                    break;
                }
                let (_, name, bytes) = files.next().expect("peeked");
                let dir = if name.starts_with("chr") { &args.ech_dir } else { &args.hist_dir };
                write_file(dir, &name, &bytes)?;
            }
            Ok(())
        };
    for (k, (t, lines)) in plan.snapshots.iter().enumerate() {
        write_due(&mut files, *t)?;
        if let Some(conn) = a.as_mut() {
            let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            if plan.cut_at == Some(k) {
                // Half a snapshot, then the connection drops; CMS reconnects and sends it whole.
                let half: String = lines[..lines.len() / 2].iter().map(|l| format!("{l}\n")).collect();
                conn.write_all(half.as_bytes()).await?;
                conn.shutdown().await?;
                *conn = connect(&args.rt).await?;
            }
            text.push_str(&end_line(&args, *t));
            conn.write_all(text.as_bytes()).await?;
            if let Some(conn_b) = b.as_mut() {
                conn_b.write_all(text.as_bytes()).await?;
            }
            if plan.reconnect_after == Some(k) {
                conn.shutdown().await?;
                *conn = connect(&args.rt).await?;
            }
        }
        if args.snapshot_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.snapshot_ms)).await;
        }
    }
    write_due(&mut files, i64::MAX)?;
    for conn in [a.as_mut(), b.as_mut()].into_iter().flatten() {
        conn.shutdown().await?;
    }
    if !args.truth.is_empty() {
        std::fs::write(&args.truth, serde_json::to_vec_pretty(&plan.truth)?)?;
    }
    Ok(plan.truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_period_and_every_state_is_seen() {
        let args = CmsArgs {
            ech_dir: "x".into(),
            hist_dir: "y".into(),
            faults: true,
            start_ms: Some(1_713_340_800_000),
            ..Default::default()
        };
        let a = plan(&args, 0).unwrap();
        let b = plan(&args, 0).unwrap();
        assert_eq!(a.snapshots, b.snapshots);
        assert_eq!(a.truth.agent_states, b.truth.agent_states);
        let logouts = a.truth.agent_states.iter().filter(|s| s.event_code == "10").count();
        assert_eq!(logouts, args.agents as usize);
        assert!(a.truth.segments > a.truth.segments_skipped && a.truth.segments_skipped > 0);
        assert_eq!(a.truth.ech_files.len(), 4);
        for (_, name, bytes) in &a.files {
            if name.starts_with("chr") {
                let version = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                let len = if version == 181 { 720 } else { 697 };
                assert_eq!((bytes.len() - 8) % len, 0, "{name}");
            }
        }
    }
}
