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
use acd_interval::sla::Formula;
use acd_interval::Grid;
use acd_schemas::records::{AgentActivity, IntervalRow};
use acd_schemas::time::{format_millis, Millis};
use acd_schemas::wfm::{AgentStateJson, AgentStateList, ReportData};
use acd_schemas::Stream;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::delivery::{deliver, Delivery, Waiter};
use crate::intervals::intraday_body as intraday;
use crate::ops::OpsError;

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

/// Runs a replay.
pub async fn replay(
    cfg: &Config,
    opts: &ReplayOptions,
    progress: impl Fn(String) + Send + Sync + Clone + 'static,
) -> Result<ReplaySummary, OpsError> {
    let mut grid = Grid::minutes(cfg.interval.minutes as i64);
    grid.grace = cfg.interval.grace_seconds as i64 * 1000;
    grid.max_lateness = cfg.interval.max_lateness_hours as i64 * 3_600_000;
    let since = opts.from - grid.max_lateness;
    // Books are closed as of `to` plus grace: every interval that ends by `to` is closed, none after.
    let codec = acd_core::kafka::codec(cfg).await?;
    let agents = crate::intervals::load_agent_map(cfg).map_err(|e| OpsError::Usage(e.to_string()))?;
    let wants = |s: &str| opts.streams.iter().any(|x| x == s);
    let mut summary = ReplaySummary::default();
    let mut queue_reports = BTreeMap::new();
    let mut agent_reports = BTreeMap::new();
    let mut states_in_range: Vec<(i32, i64, AgentStateJson)> = Vec::new();

    if wants("intraday") {
        let (c, t, p) = (cfg.clone(), cfg.topics.contact.clone(), progress.clone());
        let records = tokio::task::spawn_blocking(move || read_since(&c, &t, since, &p)).await.expect("read")?;
        summary.records_read += records.len() as u64;
        let settings = QueueSettings {
            grid,
            threshold_seconds: cfg.sla.threshold_seconds,
            formula: Formula::parse(&cfg.sla.formula).unwrap_or(Formula::HandledOverReceived),
            zero_fill: cfg.interval.zero_fill_days as i64 * 86_400_000,
        };
        let mut books: HashMap<i32, QueueBook> = HashMap::new();
        for (partition, _, bytes) in &records {
            // Unusable records were dead-lettered by `consume`; replay counts what it counted.
            if let Some(c) = codec.decode_contact(bytes).ok().filter(|c| acd_schemas::check::contact(c).is_ok()) {
                books.entry(*partition).or_insert_with(|| QueueBook::new(settings)).add(&c);
            }
        }
        for book in books.values_mut() {
            for r in book.close(Millis::MAX / 2, opts.to + grid.grace) {
                if r.start >= opts.from && r.start < opts.to {
                    let e: &mut ReportData = queue_reports.entry(r.start).or_default();
                    e.queue_report.extend(r.queue_rows);
                    e.agent_queue_report.extend(r.agent_queue_rows);
                }
            }
        }
    }
    // Pre-aggregated rows and activity lists from ACDs that count for themselves, as `consume`
    // delivers them: rows rolled up to whole intervals, lists whole.
    let minutes = cfg.interval.minutes;
    if wants("intraday") {
        let (c, t, p) = (cfg.clone(), cfg.topics.interval.clone(), progress.clone());
        let records = tokio::task::spawn_blocking(move || read_since(&c, &t, since, &p)).await.expect("read")?;
        summary.records_read += records.len() as u64;
        let formula = Formula::parse(&cfg.sla.formula).unwrap_or(Formula::HandledOverReceived);
        let mut rollup = acd_interval::rollup::Rollup::new(grid.length, formula);
        for (_, _, bytes) in &records {
            let Ok(row) = codec.decode::<IntervalRow>(Stream::Interval, bytes) else { continue };
            if acd_schemas::check::interval_row(&row, minutes).is_err() {
                continue;
            }
            let Some(whole) = rollup.add(row) else { continue };
            if whole.start_date >= opts.from && whole.start_date < opts.to {
                let e: &mut ReportData = queue_reports.entry(whole.start_date).or_default();
                e.queue_report.extend(whole.queue);
                e.agent_queue_report.extend(whole.agent_queue);
                e.agent_system_performance_report.extend(whole.agent_performance);
            }
        }
    }
    if wants("agent-activity") {
        let (c, t, p) = (cfg.clone(), cfg.topics.agent_activity.clone(), progress.clone());
        let records = tokio::task::spawn_blocking(move || read_since(&c, &t, since, &p)).await.expect("read")?;
        summary.records_read += records.len() as u64;
        for (_, _, bytes) in &records {
            let Ok(a) = codec.decode::<AgentActivity>(Stream::AgentActivity, bytes) else { continue };
            if acd_schemas::check::agent_activity(&a, minutes).is_ok()
                && a.start_date >= opts.from
                && a.start_date < opts.to
            {
                agent_reports.entry(a.start_date).or_insert_with(Vec::new).push(crate::intervals::activity_entry(&a));
            }
        }
    }
    if wants("intraday") || wants("agent-activity") || wants("agent-states") {
        let (c, t, p) = (cfg.clone(), cfg.topics.agent_state.clone(), progress.clone());
        let records = tokio::task::spawn_blocking(move || read_since(&c, &t, since, &p)).await.expect("read")?;
        summary.records_read += records.len() as u64;
        let mut books: HashMap<i32, AgentBook> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        for (partition, offset, bytes) in &records {
            let Some(s) = codec.decode_agent_state(bytes).ok().filter(|s| acd_schemas::check::agent_state(s).is_ok())
            else {
                continue;
            };
            if wants("agent-states")
                && s.event_utc_time >= opts.from
                && s.event_utc_time < opts.to
                && seen.insert((s.key(), s.event_utc_time))
            {
                states_in_range.push((
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
                .or_insert_with(|| AgentBook::new(grid, Categories::default(), agents.clone()))
                .add(&s);
        }
        for book in books.values_mut() {
            for r in book.close(Millis::MAX / 2, opts.to + grid.grace) {
                if r.start >= opts.from && r.start < opts.to {
                    if wants("intraday") {
                        queue_reports.entry(r.start).or_default().agent_system_performance_report.extend(r.performance);
                    }
                    if wants("agent-activity") {
                        agent_reports.entry(r.start).or_insert_with(Vec::new).extend(r.activity);
                    }
                }
            }
        }
    }
    summary.intervals = queue_reports.len().max(agent_reports.len());
    let wfm = crate::wfm::WfmClient::new(&cfg.wfm, acd_core::metrics::Registry::default());
    let max = cfg.wfm.max_rows_per_request.max(1);
    let send = |path: String, body: Vec<u8>, what: String| {
        let wfm = wfm.clone();
        let attempts = cfg.wfm.max_attempts;
        let dry = opts.dry_run;
        let progress = progress.clone();
        async move {
            if dry {
                progress(format!("would POST {} bytes to {path} ({what})", body.len()));
                return true;
            }
            let ok = matches!(deliver(&wfm, attempts, &path, &body, &mut Sleeper).await, Delivery::Done);
            progress(format!("{what}: {}", if ok { "sent" } else { "refused" }));
            ok
        }
    };
    let mut results = Vec::new();
    let post_intraday = |start: Millis, data: ReportData, what: &str| {
        send(
            cfg.wfm.paths.intraday.clone(),
            intraday(cfg, &grid, start, data),
            format!("{what} {}", format_millis(start)),
        )
    };
    for (start, data) in queue_reports {
        let aq = data.agent_queue_report;
        for chunk in data.queue_report.chunks(max) {
            let q = chunk.to_vec();
            let a: Vec<_> = aq.iter().filter(|r| q.iter().any(|x| x.queue_value == r.queue_value)).cloned().collect();
            let rows = ReportData { queue_report: q, agent_queue_report: a, ..ReportData::default() };
            results.push(post_intraday(start, rows, "intraday").await);
        }
        for chunk in data.agent_system_performance_report.chunks(max) {
            let rows = ReportData { agent_system_performance_report: chunk.to_vec(), ..ReportData::default() };
            results.push(post_intraday(start, rows, "agent rows").await);
        }
    }
    for (start, lists) in agent_reports {
        for (body, _) in crate::intervals::activity_bodies(cfg, &grid, start, &lists, max) {
            results.push(
                send(cfg.wfm.paths.agent_activity.clone(), body, format!("agent activity {}", format_millis(start)))
                    .await,
            );
        }
    }
    // Agent states in range, each agent's in the order they were read.
    states_in_range.sort_by_key(|(p, o, _)| (*p, *o));
    for chunk in states_in_range.chunks(cfg.wfm.agent_state_batch.max(1)) {
        let body =
            serde_json::to_vec(&AgentStateList { agent_state_list: chunk.iter().map(|(_, _, s)| s.clone()).collect() })
                .expect("states");
        let ok = send(cfg.wfm.paths.agent_states.clone(), body, format!("{} agent states", chunk.len())).await;
        if ok {
            summary.agent_states_sent += chunk.len();
        }
        results.push(ok);
    }
    summary.requests_sent = results.iter().filter(|ok| **ok).count();
    summary.requests_refused = results.iter().filter(|ok| !**ok).count();
    Ok(summary)
}
