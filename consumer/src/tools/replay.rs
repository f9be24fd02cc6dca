//! `acd-bridge replay`: recompute the intervals that start in [from, to) from the topics and send
//! them again (the WFM upserts). It reads with its own assignment and commits nothing, so the
//! running consumer group is left alone.
//!
//! Records are read from each partition's offset for `from - max_lateness_hours` (by record
//! timestamp) to its end: late records for the range, and the agent state in force at `from`,
//! are then included. Agent states whose time is in range are re-sent with `--streams agent-states`.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use acd_core::config::Config;
use acd_interval::agents::AgentBook;
use acd_interval::categories::Categories;
use acd_interval::queues::{QueueBook, QueueSettings};
use acd_interval::Grid;
use acd_schemas::records::{AgentActivity, IntervalRow};
use acd_schemas::time::{format_millis, Millis};
use acd_schemas::wfm::{AgentActivityEntry, AgentStateJson, AgentStateList, ReportData};
use acd_schemas::Stream;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::deadletter::{DeadLetter, Kind};
use crate::intervals::requests::{self, Post, Requests, Sent};
use crate::tools::OpsError;
use crate::wfm::delivery::{deliver, Delivery, Waiter};

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub from: Millis,
    pub to: Millis,
    /// `intraday`, `agent-activity`, `agent-states`.
    pub streams: Vec<String>,
    pub dry_run: bool,
}

/// What a replay did.
#[derive(Debug, Default, Serialize)]
pub struct ReplaySummary {
    pub records_read: u64,
    pub intervals: usize,
    pub requests_sent: usize,
    pub requests_refused: usize,
    pub agent_states_sent: usize,
}

struct Sleeper;

impl Waiter for Sleeper {
    async fn wait(&mut self, wait: Duration) -> bool {
        tokio::time::sleep(wait).await;
        true
    }

    fn settled(&mut self) {}
}

/// Reads every record of `topic` from the offsets for `since` to the end of each partition.
fn read_since(
    cfg: &Config,
    topic: &str,
    since: Millis,
    progress: &impl Fn(String),
) -> Result<Vec<(i32, i64, Vec<u8>)>, OpsError> {
    let mut cc = acd_core::kafka::client_config(cfg)?;
    cc.set("group.id", "acd-bridge-replay").set("enable.auto.commit", "false").set("enable.partition.eof", "true");
    let c: BaseConsumer = cc.create()?;
    let Ok(md) = c.fetch_metadata(Some(topic), Duration::from_secs(10)) else { return Ok(Vec::new()) };
    let mut query = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for t in md.topics().iter().filter(|t| t.error().is_none()) {
        for p in t.partitions() {
            query.add_partition_offset(topic, p.id(), Offset::Offset(since.max(0)))?;
            let (_, hi) = c.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
            ends.insert(p.id(), hi);
        }
    }
    let starts = c.offsets_for_times(query, Duration::from_secs(10))?;
    let mut assign = TopicPartitionList::new();
    for e in starts.elements() {
        let hi = ends.get(&e.partition()).copied().unwrap_or(0);
        match e.offset() {
            Offset::Offset(o) if o < hi => {
                assign.add_partition_offset(topic, e.partition(), Offset::Offset(o))?;
            }
            _ => {
                ends.remove(&e.partition());
            }
        }
    }
    let mut out = Vec::new();
    if assign.count() == 0 {
        return Ok(out);
    }
    c.assign(&assign)?;
    let total: i64 = assign.elements().iter().map(|e| ends[&e.partition()] - e.offset().to_raw().unwrap_or(0)).sum();
    while !ends.is_empty() {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                if ends.get(&m.partition()).is_some_and(|hi| m.offset() + 1 >= *hi) {
                    ends.remove(&m.partition());
                }
                out.push((m.partition(), m.offset(), m.payload().unwrap_or_default().to_vec()));
                if out.len() % 100_000 == 0 {
                    progress(format!("{topic}: {} of {total} records read", out.len()));
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                ends.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    progress(format!("{topic}: {} records read", out.len()));
    Ok(out)
}

/// One interval's reports, gathered from every stream asked for.
#[derive(Default)]
struct Reports {
    /// Intraday rows by interval start.
    intraday: BTreeMap<Millis, ReportData>,
    /// Activity lists by interval start.
    activity: BTreeMap<Millis, Vec<AgentActivityEntry>>,
    /// Agent states in range, with where they were read (for their Kafka order).
    states: Vec<(i32, i64, AgentStateJson)>,
}

/// What one replay reads with: the configuration, the range, the codec, and its progress lines.
struct Replay<'a, P> {
    cfg: &'a Config,
    opts: &'a ReplayOptions,
    grid: Grid,
    codec: std::sync::Arc<acd_schemas::Codec>,
    progress: P,
}

impl<P: Fn(String) + Send + Sync + Clone + 'static> Replay<'_, P> {
    /// Every record of `topic` from the offsets for `from - max_lateness_hours` on.
    async fn read(&self, topic: &str) -> Result<Vec<(i32, i64, Vec<u8>)>, OpsError> {
        let since = self.opts.from - self.grid.max_lateness;
        let (c, t, p) = (self.cfg.clone(), topic.to_string(), self.progress.clone());
        tokio::task::spawn_blocking(move || read_since(&c, &t, since, &p)).await.expect("read")
    }

    fn in_range(&self, start: Millis) -> bool {
        start >= self.opts.from && start < self.opts.to
    }

    /// Books are closed as of `to` plus grace: every interval that ends by `to` is closed, none
    /// after.
    fn closing_time(&self) -> Millis {
        self.opts.to + self.grid.grace
    }

    /// Contacts into queue and agent-queue rows, one book per partition as `consume` keeps them.
    async fn contacts(&self, out: &mut Reports, summary: &mut ReplaySummary) -> Result<(), OpsError> {
        let records = self.read(&self.cfg.topics.contact).await?;
        summary.records_read += records.len() as u64;
        let settings = QueueSettings {
            grid: self.grid,
            threshold_seconds: self.cfg.sla.threshold_seconds,
            formula: self.cfg.sla.formula,
            zero_fill: self.cfg.interval.zero_fill_days as i64 * 86_400_000,
        };
        let mut books: HashMap<i32, QueueBook> = HashMap::new();
        for (partition, _, bytes) in &records {
            // Unusable records were dead-lettered by `consume`; replay counts what it counted.
            if let Some(c) = self.codec.decode_contact(bytes).ok().filter(|c| acd_schemas::check::contact(c).is_ok()) {
                books.entry(*partition).or_insert_with(|| QueueBook::new(settings)).add(&c);
            }
        }
        for book in books.values_mut() {
            for r in book.close(Millis::MAX / 2, self.closing_time()) {
                if self.in_range(r.start) {
                    let e = out.intraday.entry(r.start).or_default();
                    e.queue_report.extend(r.queue_rows);
                    e.agent_queue_report.extend(r.agent_queue_rows);
                }
            }
        }
        Ok(())
    }

    /// Rows counted by the ACD, rolled up to whole intervals as `consume` delivers them.
    async fn interval_rows(&self, out: &mut Reports, summary: &mut ReplaySummary) -> Result<(), OpsError> {
        let records = self.read(&self.cfg.topics.interval).await?;
        summary.records_read += records.len() as u64;
        let mut rollup = acd_interval::rollup::Rollup::new(self.grid.length, self.cfg.sla.formula);
        for (_, _, bytes) in &records {
            let Ok(row) = self.codec.decode::<IntervalRow>(Stream::Interval, bytes) else { continue };
            if acd_schemas::check::interval_row(&row, self.cfg.interval.minutes).is_err() {
                continue;
            }
            let Some(whole) = rollup.add(row) else { continue };
            if self.in_range(whole.start_date) {
                let e = out.intraday.entry(whole.start_date).or_default();
                e.queue_report.extend(whole.queue);
                e.agent_queue_report.extend(whole.agent_queue);
                e.agent_system_performance_report.extend(whole.agent_performance);
            }
        }
        Ok(())
    }

    /// Activity lists sent by the ACD, whole.
    async fn activity_lists(&self, out: &mut Reports, summary: &mut ReplaySummary) -> Result<(), OpsError> {
        let records = self.read(&self.cfg.topics.agent_activity).await?;
        summary.records_read += records.len() as u64;
        for (_, _, bytes) in &records {
            let Ok(a) = self.codec.decode::<AgentActivity>(Stream::AgentActivity, bytes) else { continue };
            if acd_schemas::check::agent_activity(&a, self.cfg.interval.minutes).is_ok() && self.in_range(a.start_date)
            {
                out.activity.entry(a.start_date).or_default().push(requests::activity_entry(&a));
            }
        }
        Ok(())
    }

    /// Agent states into agent performance rows and activity lists; with `agent-states`, the
    /// states in range themselves.
    async fn agent_states(
        &self,
        out: &mut Reports,
        summary: &mut ReplaySummary,
        agents: &acd_interval::agent_map::AgentMap,
    ) -> Result<(), OpsError> {
        let wants = |s: &str| self.opts.streams.iter().any(|x| x == s);
        let records = self.read(&self.cfg.topics.agent_state).await?;
        summary.records_read += records.len() as u64;
        let mut books: HashMap<i32, AgentBook> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (partition, offset, bytes) in &records {
            let Some(s) =
                self.codec.decode_agent_state(bytes).ok().filter(|s| acd_schemas::check::agent_state(s).is_ok())
            else {
                continue;
            };
            if wants("agent-states") && self.in_range(s.event_utc_time) && seen.insert((s.key(), s.event_utc_time)) {
                out.states.push((
                    *partition,
                    *offset,
                    AgentStateJson {
                        login_id: s.login_id.clone(),
                        acd_id: s.acd_id.clone(),
                        event_code: s.event_code.clone(),
                        reason_code: s.reason_code.clone(),
                        event_utc_time: format_millis(s.event_utc_time),
                    },
                ));
            }
            books
                .entry(*partition)
                .or_insert_with(|| AgentBook::new(self.grid, Categories::default(), agents.clone()))
                .add(&s);
        }
        for book in books.values_mut() {
            for r in book.close(Millis::MAX / 2, self.closing_time()) {
                if self.in_range(r.start) {
                    if wants("intraday") {
                        out.intraday.entry(r.start).or_default().agent_system_performance_report.extend(r.performance);
                    }
                    if wants("agent-activity") {
                        out.activity.entry(r.start).or_default().extend(r.activity);
                    }
                }
            }
        }
        Ok(())
    }
}

/// How replay posts: with retries (sleeping between them), or only saying what it would post.
struct Sender<P> {
    wfm: crate::wfm::WfmClient,
    attempts: u32,
    dry_run: bool,
    progress: P,
    sent: usize,
    refused: usize,
}

impl<P: Fn(String)> Post for Sender<P> {
    async fn post(&mut self, path: &str, start: Millis, body: &[u8], kind: Kind, _tag: &str) -> Sent {
        let what = format!("{} {}", kind.as_str(), format_millis(start));
        if self.dry_run {
            (self.progress)(format!("would POST {} bytes to {path} ({what})", body.len()));
            self.sent += 1;
            return Sent::Done;
        }
        match deliver(&self.wfm, self.attempts, path, body, kind, &mut Sleeper).await {
            Delivery::Done => {
                (self.progress)(format!("{what}: sent"));
                self.sent += 1;
                Sent::Done
            }
            Delivery::DeadLetter(letter) => Sent::Refused(letter),
            Delivery::Abandoned => Sent::Abandoned,
        }
    }

    async fn refused(&mut self, letter: DeadLetter, start: Millis, what: &str) -> bool {
        // Replay tells the operator; it writes no dead letters (`consume` did, the first time).
        let status = letter.get("dlq.http.status").unwrap_or("").to_string();
        (self.progress)(format!("{} {} {what}: refused {status}", letter.kind.as_str(), format_millis(start)));
        self.refused += 1;
        true
    }
}

/// Runs a replay: reads each stream asked for, computes its intervals with the same library
/// and request building as `consume`, and sends them.
pub async fn replay(
    cfg: &Config,
    opts: &ReplayOptions,
    progress: impl Fn(String) + Send + Sync + Clone + 'static,
) -> Result<ReplaySummary, OpsError> {
    let grid = requests::grid(cfg);
    let codec = acd_core::kafka::codec(cfg).await?;
    let agents = crate::intervals::load_agent_map(cfg).map_err(|e| OpsError::Usage(e.to_string()))?;
    let wants = |s: &str| opts.streams.iter().any(|x| x == s);
    let run = Replay { cfg, opts, grid, codec, progress: progress.clone() };
    let mut summary = ReplaySummary::default();
    let mut reports = Reports::default();
    if wants("intraday") {
        run.contacts(&mut reports, &mut summary).await?;
        run.interval_rows(&mut reports, &mut summary).await?;
    }
    if wants("agent-activity") {
        run.activity_lists(&mut reports, &mut summary).await?;
    }
    if wants("intraday") || wants("agent-activity") || wants("agent-states") {
        run.agent_states(&mut reports, &mut summary, &agents).await?;
    }
    summary.intervals = reports.intraday.len().max(reports.activity.len());
    let builder = Requests::new(cfg);
    let wfm = crate::wfm::WfmClient::new(&cfg.wfm, acd_core::metrics::Registry::default());
    let mut sender =
        Sender { wfm, attempts: cfg.wfm.max_attempts, dry_run: opts.dry_run, progress, sent: 0, refused: 0 };
    let paths = &cfg.wfm.paths;
    for (start, data) in reports.intraday {
        let list =
            builder.intraday(start, data.queue_report, data.agent_queue_report, data.agent_system_performance_report);
        requests::send_intraday(&mut sender, &builder, &paths.intraday, "replay", start, list).await;
    }
    for (start, lists) in reports.activity {
        requests::send_activity(&mut sender, &builder, &paths.agent_activity, "replay", start, &lists).await;
    }
    // Agent states in range, each agent's in the order they were read.
    reports.states.sort_by_key(|(p, o, _)| (*p, *o));
    for chunk in reports.states.chunks(cfg.wfm.agent_state_batch.max(1)) {
        let body =
            serde_json::to_vec(&AgentStateList { agent_state_list: chunk.iter().map(|(_, _, s)| s.clone()).collect() })
                .expect("states");
        let start = acd_schemas::time::parse_rfc3339(&chunk[0].2.event_utc_time).unwrap_or_default();
        let sent_before = sender.sent;
        match sender.post(&paths.agent_states, start, &body, Kind::AgentStates, "replay").await {
            Sent::Refused(letter) => {
                sender.refused(letter, start, &format!("{} states", chunk.len())).await;
            }
            Sent::Done | Sent::Abandoned => {}
        }
        if sender.sent > sent_before {
            summary.agent_states_sent += chunk.len();
        }
    }
    summary.requests_sent = sender.sent;
    summary.requests_refused = sender.refused;
    Ok(summary)
}
