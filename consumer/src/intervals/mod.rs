//! The interval pipeline: contacts, agent states, pre-aggregated rows and activity lists in;
//! intraday and agent-activity reports of closed intervals out.
//!
//! It is a second member of the process, in the consumer group `<group_id>.intervals`, so its
//! offsets are its own. It keeps one book per partition in memory and never adds to figures it
//! delivered before: each partition's commit carries its *rebuild offset*, the first record
//! of any interval that may still change (within `max_lateness_hours`, plus the agent state in
//! force at that horizon), in the commit's metadata beside the read position (the committed
//! offset proper, so that lag tools see the real lag); a new owner starts from the rebuild
//! offset. Killed at any instant, or with its partitions moved to another
//! instance, the book is rebuilt by reading again from there, recomputing every figure from
//! complete input. The checkpoint store remembers a hash of each report delivered, so a rebuild
//! does not send again what the WFM already has; the figures never depend on it.

pub mod keystore;
pub mod requests;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_core::config::Config;
use acd_interval::agent_map::AgentMap;
use acd_interval::agents::{AgentBook, AgentClose};
use acd_interval::categories::Categories;
use acd_interval::queues::{QueueBook, QueueReport, QueueSettings};
use acd_interval::rollup::Rollup;
use acd_interval::sla::Formula;
use acd_interval::{Admit, Grid};
use acd_schemas::check::{self, Invalid};
use acd_schemas::records::{AgentActivity, IntervalRow};
use acd_schemas::time::{format_millis, now_millis, Millis};
use acd_schemas::wfm::{AgentActivityEntry, AgentPerformanceRow, AgentQueueRow, QueueRow};
use acd_schemas::{Codec, CodecError, Stream};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::Checkpoints;
use crate::deadletter::{self, DeadLetter, DeadLetters, Kind, Reason};
use crate::intervals::keystore::{SledCold, SledKeys, SledSent};
use crate::intervals::requests::{Post, Requests, Sent};
use crate::kafka::group::{serve_events, Ctx, Fetched, FetchedMessage, Member};
use crate::status::OpenIntervals;
use crate::wfm::delivery::{deliver, Delivery, Waiter};
use crate::wfm::WfmClient;
use crate::ConsumerError;

/// What one partition holds.
enum Book {
    Queues(Box<QueueBook>),
    Agents(Box<AgentBook>),
    Rows(Box<Rollup>),
    /// Activity lists from the ACD, passed through as they come.
    Activity,
}

/// One partition: its book and what its rebuild offset depends on.
struct Part {
    book: Book,
    last_record: Instant,
    /// The offset after the last record read.
    next: i64,
    /// Contacts and agent states: the first offset of each interval's records.
    by_interval: BTreeMap<Millis, i64>,
    /// The interval [`Part::note_interval`] noted last.
    noted: Option<Millis>,
    /// Where this instance had read to when it last delivered from this partition: a rebuilt
    /// book closes nothing before it has read that far again, so it sends each interval once,
    /// whole, instead of every intermediate version it passes on the way.
    replay_until: i64,
    /// Pre-aggregated rows and activity waiting to be delivered: their offsets.
    pending: BTreeMap<i64, ()>,
    high: Option<Millis>,
    /// The partition's end offset as last fetched from the broker, and when. Idle is not the
    /// same as unreachable: the wall-clock rule closes intervals only while this instance has
    /// read to an end fetched after its last record (see [`Part::idle_for`]).
    end_seen: Option<(Instant, i64)>,
}

/// One closed book's reports: its partition, queue reports, agent reports, rolled-up rows.
type Closed = ((Stream, i32), Vec<QueueReport>, Vec<AgentClose>, Vec<IntervalRow>);

/// Rows and activity segments of closed reports held before they are sent (see
/// `close_and_deliver`).
const REPORT_BATCH: usize = 200_000;

/// Activity segments built at once when an interval's lists are sent (a few MB): the lists are
/// built a page of agents at a time, each page's bodies sent before the next is built. Debug
/// builds (the tests') use pages of a few agents, so that every test interval spans pages.
const ACTIVITY_PAGE: usize = if cfg!(debug_assertions) { 25 } else { 20_000 };

/// How often the end offsets of idle partitions are fetched, and how long one fetched stays good.
const END_PROBE_EVERY: Duration = Duration::from_secs(1);
const END_FRESH_FOR: Duration = Duration::from_secs(5);

impl Part {
    /// How long the partition has been idle, for the wall-clock rule: the time since its last
    /// record when this instance has read to an end offset fetched since then (and recently),
    /// else 0. While the broker cannot be reached no end is fetched, so nothing closes by the
    /// wall clock.
    fn idle_for(&self) -> Millis {
        match self.end_seen {
            Some((at, end)) if at > self.last_record && at.elapsed() < END_FRESH_FOR && self.next >= end => {
                self.last_record.elapsed().as_millis() as Millis
            }
            _ => 0,
        }
    }

    /// Notes the offset of a record of interval `start`: the first one read is the lowest.
    fn note_interval(&mut self, start: Millis, offset: i64) {
        if self.noted != Some(start) {
            self.by_interval.entry(start).or_insert(offset);
            self.noted = Some(start);
        }
    }

    /// The offset from which this partition's book can be rebuilt.
    fn rebuild_offset(&mut self, grid: &Grid) -> i64 {
        let horizon = self.high.map_or(Millis::MIN, |h| grid.start_of(h - grid.max_lateness) - grid.length);
        self.by_interval.retain(|start, _| *start >= horizon);
        self.noted = None;
        let mut min = self.next;
        if let Some(o) = self.by_interval.values().min() {
            min = min.min(*o);
        }
        // Agent states from the horizon on are in `by_interval`; each agent's state in force at
        // the horizon (its offset is its tag in the book) lasts into them.
        if let Book::Agents(book) = &mut self.book {
            if let Some(o) = book.lowest_tag_in_force(horizon) {
                min = min.min(o);
            }
        }
        if let Some((o, _)) = self.pending.iter().next() {
            min = min.min(*o);
        }
        min
    }
}

/// The interval pipeline.
pub struct Intervals {
    cfg: Config,
    grid: Grid,
    formula: Formula,
    categories: Categories,
    agents: AgentMap,
    consumer: Arc<StreamConsumer<Ctx>>,
    /// The assigned partitions' fetched records.
    fetched: Fetched,
    generation: Arc<AtomicU64>,
    /// The same consumer, for pausing while a retry waits.
    member: Member,
    wfm: WfmClient,
    store: Checkpoints,
    dlq: Arc<DeadLetters>,
    codec: Arc<Codec>,
    parts: HashMap<(Stream, i32), Part>,
    /// The rebalance generation the books were built in.
    books_generation: u64,
    /// Records read while paused, with the generation they were read in.
    stash: VecDeque<(u64, OwnedMessage)>,
    shutdown: CancellationToken,
    reports: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
    read: Arc<AtomicU64>,
    metrics: acd_core::metrics::Registry,
    /// Queues seen in contacts and in pre-aggregated rows: a queue should be fed one way.
    fed_by_contacts: std::collections::HashSet<String>,
    fed_by_rows: std::collections::HashSet<String>,
    warned_both: std::collections::HashSet<String>,
    /// Hashes of reports delivered this round, written with one flush at the end of the round.
    delivered: Vec<crate::checkpoint::Write>,
    /// True when a dead letter of this round could not be written (shutting down): the round's
    /// offsets are not committed.
    unsettled: bool,
    /// How reports become requests.
    requests: Requests,
    board: crate::status::SharedBoard,
    /// The Kafka connection state, which the end-offset probes report to.
    link: Arc<acd_core::link::KafkaLink>,
    /// When the end offsets of idle partitions were last fetched.
    last_probe: Option<Instant>,
}

/// The group of the interval pipeline.
pub fn group_id(cfg: &Config) -> String {
    format!("{}.intervals", cfg.consumer.group_id)
}

impl Intervals {
    /// Subscribes to the interval inputs.
    pub async fn new(
        cfg: Config,
        wfm: WfmClient,
        store: Checkpoints,
        agents: AgentMap,
        shared: crate::Shared,
    ) -> Result<Intervals, ConsumerError> {
        let crate::Shared { board, metrics, link, dlq, codec, shutdown } = shared;
        // Spilled dedup keys belong to books of the last run; books are rebuilt from Kafka.
        store.remove_range(crate::intervals::keystore::PREFIX.as_bytes(), b"ckeys0")?;
        let generation = Arc::new(AtomicU64::new(0));
        let mut cc = acd_core::kafka::client_config(&cfg)?;
        cc.set("group.id", group_id(&cfg))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        crate::kafka::group_defaults(&mut cc, &cfg.kafka_properties().unwrap_or_default(), crate::kafka::INTERVALS);
        let consumer: StreamConsumer<Ctx> = cc.create_with_context(
            Ctx::new(generation.clone(), "intervals", link.clone()).rebuilding().stopping_on(shutdown.clone()),
        )?;
        let consumer = Arc::new(consumer);
        let fetched = Fetched::new(consumer.clone());
        let t = &cfg.topics;
        consumer.subscribe(&[&t.contact, &t.agent_state, &t.interval, &t.agent_activity])?;
        let grid = requests::grid(&cfg);
        let formula = cfg.sla.formula;
        let c = |name: &str, help: &str| metrics.counter(name, help, &[]);
        Ok(Intervals {
            dlq,
            codec,
            grid,
            formula,
            categories: Categories::default(),
            agents,
            member: Member { consumer: consumer.clone(), generation: generation.clone(), paused: false },
            consumer,
            fetched,
            generation,
            wfm,
            store,
            parts: HashMap::new(),
            books_generation: 0,
            stash: VecDeque::new(),
            shutdown,
            reports: c("acd_interval_reports_delivered_total", "Interval report requests accepted by the WFM"),
            skipped: c(
                "acd_interval_reports_unchanged_total",
                "Reports not sent again after a rebuild: the WFM has them",
            ),
            read: c("acd_interval_records_read_total", "Records read by the interval pipeline"),
            metrics: metrics.clone(),
            fed_by_contacts: Default::default(),
            fed_by_rows: Default::default(),
            warned_both: Default::default(),
            delivered: Vec::new(),
            unsettled: false,
            requests: Requests::new(&cfg),
            board,
            link,
            last_probe: None,
            cfg,
        })
    }

    /// Runs until shutdown.
    pub async fn run(mut self) -> Result<(), ConsumerError> {
        while !self.shutdown.is_cancelled() {
            let consumer = self.consumer.clone();
            let t0 = Instant::now();
            let (generation, batch) = self.collect(&consumer).await;
            let (t1, n) = (Instant::now(), batch.len());
            if generation != self.books_generation {
                // Eager rebalance: every partition was revoked; books are rebuilt from the
                // rebuild offsets committed for whatever is assigned now.
                self.parts.clear();
                self.books_generation = generation;
            }
            let now = Instant::now();
            for r in &batch {
                match r {
                    Rec::Fetched(m) => self.add(m, now).await,
                    Rec::Borrowed(m) => self.add(m, now).await,
                    Rec::Owned(m) => self.add(m, now).await,
                }
            }
            drop(batch);
            let t2 = Instant::now();
            let settled = self.close_and_deliver(generation).await?;
            let t3 = Instant::now();
            // What the WFM accepted this round, so a rebuild does not send it again.
            let mut hashes = std::mem::take(&mut self.delivered);
            if !hashes.is_empty() {
                for ((stream, partition), part) in &self.parts {
                    if *partition >= 0 {
                        hashes.push((read_key(*stream, *partition), Some(part.next.to_le_bytes().to_vec())));
                    }
                }
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || store.commit(hashes)).await.expect("checkpoint task")?;
            }
            if settled && !std::mem::take(&mut self.unsettled) {
                self.commit(generation);
            }
            tracing::debug!(
                records = n,
                collect_ms = (t1 - t0).as_secs_f64() * 1e3,
                add_ms = (t2 - t1).as_secs_f64() * 1e3,
                deliver_ms = (t3 - t2).as_secs_f64() * 1e3,
                checkpoint_ms = t3.elapsed().as_secs_f64() * 1e3,
                "interval round"
            );
            let (mut in_memory, mut spilled) = (0, 0);
            for part in self.parts.values() {
                if let Book::Queues(b) = &part.book {
                    in_memory += b.remembered() as i64;
                    spilled += b.spilled() as i64;
                }
            }
            self.metrics
                .gauge("acd_contact_keys_in_memory", "Contact dedup keys held in memory (hot intervals)", &[])
                .store(in_memory, Ordering::Relaxed);
            self.metrics
                .gauge("acd_contact_keys_spilled", "Contact dedup keys moved to the checkpoint store", &[])
                .store(spilled, Ordering::Relaxed);
            let open = self.open_intervals();
            let mut board = self.board.lock().expect("board");
            board.interval_partitions = self.parts.len();
            board.open_intervals = open;
        }
        self.consumer.unsubscribe();
        Ok(())
    }

    /// The intervals each output stream has open, over every partition: from the earliest open
    /// one to the latest.
    fn open_intervals(&self) -> BTreeMap<String, OpenIntervals> {
        let mut spans: BTreeMap<&str, (Millis, Millis)> = BTreeMap::new();
        for part in self.parts.values() {
            let (range, streams): (_, &[&str]) = match &part.book {
                Book::Queues(b) => (b.open_intervals(), &["intraday"]),
                Book::Agents(b) => (b.open_intervals(), &["intraday", "agent-activity"]),
                _ => (None, &[]),
            };
            if let Some((first, last)) = range {
                for stream in streams {
                    let span = spans.entry(stream).or_insert((first, last));
                    *span = (span.0.min(first), span.1.max(last));
                }
            }
        }
        spans
            .into_iter()
            .map(|(stream, (first, last))| {
                let count = ((last - first) / self.grid.length + 1) as usize;
                (stream.to_string(), OpenIntervals { count, first: format_millis(first), last: format_millis(last) })
            })
            .collect()
    }

    /// Collects a round: records read before a rebalance are dropped, those read after it kept.
    /// Records stay in librdkafka's buffers until the round is done: nothing is copied.
    async fn collect<'c>(&mut self, consumer: &'c StreamConsumer<Ctx>) -> (u64, Vec<Rec<'c>>) {
        let mut generation = self.generation.load(Ordering::SeqCst);
        let mut batch: Vec<Rec<'c>> =
            self.stash.drain(..).filter(|(g, _)| *g == generation).map(|(_, m)| Rec::Owned(m)).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(if batch.is_empty() { 1000 } else { 200 });
        let timer = tokio::time::sleep_until(deadline);
        tokio::pin!(timer);
        while batch.len() < 5000 {
            // What is fetched already, many records a call (see `Fetched`).
            let room = 5000 - batch.len();
            let current = &self.generation;
            let mut keep = |rec: Rec<'c>| {
                let now = current.load(Ordering::SeqCst);
                if now != generation {
                    batch.clear();
                    generation = now;
                }
                batch.push(rec);
            };
            if let Some(m) = serve_events(consumer, "intervals") {
                keep(Rec::Borrowed(m));
            }
            let (_, drained) = self.fetched.read(consumer, room, "intervals", |m| keep(Rec::Fetched(m)));
            if !drained {
                continue;
            }
            tokio::select! {
                biased;
                _ = self.fetched.arrived() => {}
                // Rebalances and errors; records only if fetched before their partition's
                // queue was detached for `fetched`.
                m = consumer.recv() => match m {
                    Ok(m) => keep(Rec::Borrowed(m)),
                    Err(e) => self.link.client_error("intervals", &e),
                },
                _ = self.shutdown.cancelled() => break,
                _ = &mut timer => break,
            }
        }
        if self.generation.load(Ordering::SeqCst) != generation {
            batch.clear();
            generation = self.generation.load(Ordering::SeqCst);
        }
        (generation, batch)
    }

    fn stream_of(&self, topic: &str) -> Stream {
        let t = &self.cfg.topics;
        if topic == t.contact {
            Stream::Contact
        } else if topic == t.agent_state {
            Stream::AgentState
        } else if topic == t.interval {
            Stream::Interval
        } else {
            Stream::AgentActivity
        }
    }

    fn topic_of(&self, stream: Stream) -> &str {
        let t = &self.cfg.topics;
        match stream {
            Stream::Contact => &t.contact,
            Stream::AgentState => &t.agent_state,
            Stream::Interval => &t.interval,
            _ => &t.agent_activity,
        }
    }

    fn part(&mut self, stream: Stream, partition: i32) -> &mut Part {
        if self.parts.contains_key(&(stream, partition)) {
            return self.parts.get_mut(&(stream, partition)).expect("part");
        }
        let settings = QueueSettings {
            grid: self.grid,
            threshold_seconds: self.cfg.sla.threshold_seconds,
            formula: self.formula,
            zero_fill: self.cfg.interval.zero_fill_days as i64 * 86_400_000,
        };
        let (grid, categories, agents, formula) = (self.grid, &self.categories, &self.agents, self.formula);
        let store = self.store.clone();
        let tag = format!("{}/{partition}", stream.name());
        let replay_until = self
            .store
            .get(&read_key(stream, partition))
            .ok()
            .flatten()
            .and_then(|v| Some(i64::from_le_bytes(v.try_into().ok()?)))
            .unwrap_or(0);
        self.parts.entry((stream, partition)).or_insert_with(|| Part {
            book: match stream {
                Stream::Contact => Book::Queues(Box::new(QueueBook::with_stores(
                    settings,
                    Box::new(SledKeys::new(store.clone(), &tag)),
                    Box::new(SledSent::new(store, &tag)),
                ))),
                Stream::AgentState => Book::Agents(Box::new(AgentBook::with_stores(
                    grid,
                    categories.clone(),
                    agents.clone(),
                    Box::new(SledSent::new(store.clone(), &tag)),
                    Box::new(SledCold::new(store, &tag)),
                ))),
                Stream::Interval => Book::Rows(Box::new(Rollup::new(grid.length, formula))),
                _ => Book::Activity,
            },
            last_record: Instant::now(),
            next: 0,
            by_interval: BTreeMap::new(),
            noted: None,
            replay_until,
            pending: BTreeMap::new(),
            high: None,
            end_seen: None,
        })
    }

    /// Counts (and logs once) a queue fed both by contacts and by pre-aggregated rows.
    fn fed(&mut self, queue: &str, by_rows: bool) {
        let (mine, other) = if by_rows {
            (&mut self.fed_by_rows, &self.fed_by_contacts)
        } else {
            (&mut self.fed_by_contacts, &self.fed_by_rows)
        };
        if mine.contains(queue) {
            return;
        }
        mine.insert(queue.to_string());
        if other.contains(queue) && self.warned_both.insert(queue.to_string()) {
            tracing::warn!(
                queue,
                "queue is fed both by contacts and by pre-aggregated interval rows; the WFM gets both"
            );
            self.metrics
                .counter(
                    "acd_queue_fed_both_ways_total",
                    "Queues fed both by contacts and by interval rows",
                    &[("queue", queue)],
                )
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn add<M: Message>(&mut self, m: &M, now: Instant) {
        self.read.fetch_add(1, Ordering::Relaxed);
        let (partition, offset) = (m.partition(), m.offset());
        let payload = m.payload().unwrap_or_default();
        let stream = self.stream_of(m.topic());
        let grid = self.grid;
        let minutes = (grid.length / 60_000) as u32;
        let admit = match stream {
            Stream::Contact => {
                let codec = self.codec.clone();
                match codec.with_contact(payload, |c| -> Result<Admit, Unusable> {
                    check::contact_ref(c).map_err(invalid)?;
                    self.fed(c.queue_value, false);
                    let part = self.part(stream, partition);
                    let Book::Queues(book) = &mut part.book else { unreachable!("contact book") };
                    let admit = book.add_ref(c);
                    if admit == Admit::Counted {
                        part.high = book.high();
                        part.note_interval(grid.start_of(c.ended_utc), offset);
                    }
                    Ok(admit)
                }) {
                    Ok(admit) => admit,
                    Err(e) => Err(undecodable(e)),
                }
            }
            Stream::AgentState => {
                let codec = self.codec.clone();
                match codec.with_agent_state(payload, |s| -> Result<Admit, Unusable> {
                    check::agent_state_ref(s).map_err(invalid)?;
                    let part = self.part(stream, partition);
                    let Book::Agents(book) = &mut part.book else { unreachable!("agent book") };
                    let admit = book.add_ref(s, offset);
                    if admit == Admit::Counted {
                        part.note_interval(grid.start_of(s.event_utc_time), offset);
                        part.high = Some(part.high.map_or(s.event_utc_time, |h| h.max(s.event_utc_time)));
                    }
                    Ok(admit)
                }) {
                    Ok(admit) => admit,
                    Err(e) => Err(undecodable(e)),
                }
            }
            Stream::Interval => {
                match self.codec.decode::<IntervalRow>(stream, payload).map_err(undecodable).and_then(|r| {
                    check::interval_row(&r, minutes).map_err(invalid)?;
                    Ok(r)
                }) {
                    Ok(row) => {
                        let queue = row
                            .queue
                            .as_ref()
                            .map(|q| &q.queue_value)
                            .or(row.agent_queue.as_ref().map(|q| &q.queue_value));
                        if let Some(q) = queue.cloned() {
                            self.fed(&q, true);
                        }
                        let end = row.end_date;
                        let part = self.part(stream, partition);
                        let Book::Rows(rollup) = &mut part.book else { unreachable!("rollup") };
                        part.high = Some(part.high.map_or(end, |h| h.max(end)));
                        if let Some(whole) = rollup.add(row) {
                            self.deliver_rows(&[whole], stream, partition).await;
                        } else {
                            part.pending.insert(offset, ());
                        }
                        Ok(Admit::Counted)
                    }
                    Err(e) => Err(e),
                }
            }
            _ => match self.codec.decode::<AgentActivity>(stream, payload).map_err(undecodable).and_then(|a| {
                check::agent_activity(&a, minutes).map_err(invalid)?;
                Ok(a)
            }) {
                Ok(a) => {
                    self.part(stream, partition);
                    self.deliver_activity_record(&a).await;
                    Ok(Admit::Counted)
                }
                Err(e) => Err(e),
            },
        };
        let part = self.part(stream, partition);
        part.next = offset + 1;
        part.last_record = now;
        match admit {
            Ok(Admit::TooLate) => self.input_letter(m, Reason::TooLate, "event older than max_lateness_hours").await,
            // An unusable agent state is dead-lettered once, by the forwarding pipeline.
            Err(_) if stream == Stream::AgentState => {}
            Err((reason, e)) => self.input_letter(m, reason, &e).await,
            Ok(_) => {}
        }
    }

    async fn input_letter<M: Message>(&mut self, m: &M, reason: Reason, error: &str) {
        if !self.dlq.send(&deadletter::input_letter(m, reason, error)).await {
            self.unsettled = true;
        }
    }

    /// Fetches the end offsets of the partitions that have been idle `idle_close_seconds`, at
    /// most once a second, all in one request: what [`Part::idle_for`] compares the read
    /// position with. A failure means the broker cannot be reached: nothing is closed by the
    /// wall clock until it answers again.
    async fn probe_ends(&mut self) {
        let idle_close = Duration::from_millis(self.grid.idle_close.max(0) as u64);
        if self.last_probe.is_some_and(|t| t.elapsed() < END_PROBE_EVERY) {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((stream, partition), part) in &self.parts {
            if *partition >= 0 && part.last_record.elapsed() >= idle_close {
                let _ = tpl.add_partition_offset(self.topic_of(*stream), *partition, Offset::End);
            }
        }
        if tpl.count() == 0 {
            return;
        }
        self.last_probe = Some(Instant::now());
        let consumer = self.consumer.clone();
        let asked = Instant::now();
        let answer = tokio::task::spawn_blocking(move || consumer.offsets_for_times(tpl, Duration::from_secs(2)))
            .await
            .expect("end offsets task");
        match answer {
            Ok(ends) => {
                self.link.reached();
                for e in ends.elements() {
                    let (Offset::Offset(end), true) = (e.offset(), e.error().is_ok()) else { continue };
                    let stream = self.stream_of(e.topic());
                    if let Some(part) = self.parts.get_mut(&(stream, e.partition())) {
                        part.end_seen = Some((asked, end));
                    }
                }
            }
            Err(e) => self.link.client_error("intervals end offsets", &e),
        }
    }

    /// Closes every book, makes the keys of the rows about to be sent durable, then delivers
    /// what closed. False when the round was overtaken.
    async fn close_and_deliver(&mut self, generation: u64) -> Result<bool, ConsumerError> {
        self.probe_ends().await;
        let now = now_millis();
        let keys: Vec<(Stream, i32)> = self.parts.keys().cloned().collect();
        // Books are closed in turn and their reports sent in batches of about REPORT_BATCH rows
        // and segments: one store flush for many small reports, and no more than a batch of
        // large ones in memory at once.
        let mut closed: Vec<Closed> = Vec::new();
        let (mut size, mut total) = (0, 0);
        for key in keys {
            let part = self.parts.get_mut(&key).expect("part");
            let idle = part.idle_for();
            if part.next < part.replay_until && idle < self.grid.idle_close {
                continue;
            }
            let mut passed = 0;
            let (queues, agents, rows): (Vec<QueueReport>, Vec<AgentClose>, Vec<IntervalRow>) = match &mut part.book {
                Book::Queues(b) => {
                    let before = b.passed_over();
                    let out = b.close(idle, now);
                    passed = b.passed_over() - before;
                    (out, Vec::new(), Vec::new())
                }
                Book::Agents(b) => {
                    let before = b.passed_over();
                    let out = b.close_paged(idle, now);
                    passed = b.passed_over() - before;
                    (Vec::new(), out, Vec::new())
                }
                Book::Rows(r) => {
                    let open_from = self.grid.open_from(part.high, idle, now);
                    let rows = r.flush_closed(open_from);
                    if !rows.is_empty() {
                        part.pending.clear();
                    }
                    (Vec::new(), Vec::new(), rows)
                }
                Book::Activity => Default::default(),
            };
            self.passed_over(&key, passed);
            if queues.is_empty() && agents.is_empty() && rows.is_empty() {
                continue;
            }
            size += queues.iter().map(|r| r.queue_rows.len() + r.agent_queue_rows.len()).sum::<usize>()
                + agents.iter().map(|r| r.performance.len() + r.listed.len() + r.emptied.len()).sum::<usize>();
            closed.push((key, queues, agents, rows));
            if size >= REPORT_BATCH {
                if !self.send_closed(std::mem::take(&mut closed), generation).await? {
                    return Ok(false);
                }
                total += size;
                size = 0;
            }
        }
        if !self.send_closed(closed, generation).await? {
            return Ok(false);
        }
        if total + size >= REPORT_BATCH / 4 {
            // Large reports are short-lived: give their memory back (not after every small
            // round: each call costs the page faults of memory taken again).
            acd_core::memory::release();
        }
        Ok(true)
    }

    /// Sends closed books' reports, once the row keys they carry are on disk.
    async fn send_closed(&mut self, closed: Vec<Closed>, generation: u64) -> Result<bool, ConsumerError> {
        if closed.iter().any(|(_, q, a, _)| !q.is_empty() || !a.is_empty()) {
            // The books wrote the keys of these reports' rows to the store: on disk before the
            // WFM can hold the rows, so a rebuilt book knows to overwrite them.
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.flush()).await.expect("checkpoint task")?;
        }
        for (key, queues, agents, rows) in closed {
            for r in queues {
                if !self.send_intraday(&key, r.start, r.queue_rows, r.agent_queue_rows, Vec::new(), generation).await {
                    return Ok(false);
                }
            }
            for mut r in agents {
                let performance = std::mem::take(&mut r.performance);
                if !self.send_intraday(&key, r.start, Vec::new(), Vec::new(), performance, generation).await {
                    return Ok(false);
                }
                if !self.send_activity_pages(&key, r, generation).await {
                    return Ok(false);
                }
            }
            if !rows.is_empty() {
                self.deliver_rows(&rows, key.0, key.1).await;
            }
        }
        Ok(true)
    }

    /// Says so when event time jumped by more than the lateness window and empty intervals
    /// beyond it were passed over (no zero rows, no time in force for them).
    fn passed_over(&self, key: &(Stream, i32), n: u64) {
        if n == 0 {
            return;
        }
        tracing::warn!(
            topic = self.topic_of(key.0),
            partition = key.1,
            intervals = n,
            "event time jumped by more than max_lateness_hours: empty intervals beyond it were passed over"
        );
        self.metrics
            .counter(
                "acd_intervals_passed_over_total",
                "Empty intervals passed over when event time jumped by more than max_lateness_hours",
                &[],
            )
            .fetch_add(n, Ordering::Relaxed);
    }

    async fn deliver_rows(&mut self, rows: &[IntervalRow], stream: Stream, partition: i32) {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut by_start: BTreeMap<Millis, (Vec<_>, Vec<_>, Vec<_>)> = BTreeMap::new();
        for r in rows {
            let e = by_start.entry(r.start_date).or_default();
            e.0.extend(r.queue.clone());
            e.1.extend(r.agent_queue.clone());
            e.2.extend(r.agent_performance.clone());
        }
        for (start, (q, aq, a)) in by_start {
            if !self.send_intraday(&(stream, partition), start, q, aq, a, generation).await {
                return;
            }
        }
    }

    /// One interval's intraday rows, through [`requests::send_intraday`]. False when abandoned.
    async fn send_intraday(
        &mut self,
        key: &(Stream, i32),
        start: Millis,
        queues: Vec<QueueRow>,
        agent_queues: Vec<AgentQueueRow>,
        agents: Vec<AgentPerformanceRow>,
        generation: u64,
    ) -> bool {
        let list = self.requests.intraday(start, queues, agent_queues, agents);
        let (requests, path) = (self.requests.clone(), self.wfm.paths().intraday.clone());
        let tag = format!("intraday/{}/{}/{start}", key.0.name(), key.1);
        requests::send_intraday(&mut Poster { pipeline: self, generation }, &requests, &path, &tag, start, list).await
    }

    /// One interval's activity lists, through [`requests::send_activity`]. False when abandoned.
    async fn send_activity(
        &mut self,
        key: &(Stream, i32),
        start: Millis,
        lists: Vec<AgentActivityEntry>,
        generation: u64,
    ) -> bool {
        let (requests, path) = (self.requests.clone(), self.wfm.paths().agent_activity.clone());
        let tag = format!("activity/{}/{}/{start}", key.0.name(), key.1);
        requests::send_activity(&mut Poster { pipeline: self, generation }, &requests, &path, &tag, start, &lists).await
    }

    /// One closed interval's activity lists, built a page of agents at a time
    /// ([`ACTIVITY_PAGE`] segments) by the partition's book and sent as each request fills: the
    /// same requests as [`requests::send_activity`] would send, without the whole interval's
    /// lists in memory. False when abandoned.
    async fn send_activity_pages(&mut self, key: &(Stream, i32), closed: AgentClose, generation: u64) -> bool {
        let (requests, path) = (self.requests.clone(), self.wfm.paths().agent_activity.clone());
        let tag = format!("activity/{}/{}/{}", key.0.name(), key.1, closed.start);
        let mut bodies = requests.activity_bodies(closed.start);
        let (mut sent, mut rest) = (0, &closed.listed[..]);
        let (mut emptied, mut last) = (closed.emptied, false);
        while !last {
            let lists = if !rest.is_empty() {
                let Some(Part { book: Book::Agents(book), .. }) = self.parts.get_mut(key) else {
                    // The partition left this instance: its new owner computes the interval.
                    return false;
                };
                let (lists, taken) = book.activity(closed.start, rest, ACTIVITY_PAGE);
                rest = &rest[taken..];
                lists
            } else {
                last = true;
                std::mem::take(&mut emptied)
            };
            let mut ready: Vec<(Vec<u8>, String)> = lists.iter().filter_map(|list| bodies.push(list)).collect();
            if last {
                ready.extend(bodies.finish());
            }
            for (body, agent) in ready {
                let mut poster = Poster { pipeline: self, generation };
                let tag = format!("{tag}/{sent}");
                if !requests::send_activity_body(&mut poster, &path, &tag, closed.start, &body, &agent).await {
                    return false;
                }
                sent += 1;
            }
        }
        true
    }

    async fn deliver_activity_record(&mut self, a: &AgentActivity) {
        let generation = self.generation.load(Ordering::SeqCst);
        let entry = requests::activity_entry(a);
        let key = (Stream::AgentActivity, -1);
        self.send_activity(&key, a.start_date, vec![entry], generation).await;
    }

    /// Sends unless the same body was delivered before (a rebuild recomputing what the WFM has).
    async fn send(&mut self, path: &str, start: Millis, body: &[u8], kind: Kind, tag: &str, generation: u64) -> Sent {
        let hash = report_hash(body).to_le_bytes().to_vec();
        let key = format!("delivered/{tag}").into_bytes();
        let pending = self.delivered.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        let stored = match pending {
            Some(v) => v,
            None => self.store.get(&key).ok().flatten(),
        };
        if stored.as_deref() == Some(&hash[..]) {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            self.note_delivered(path, start);
            return Sent::Done;
        }
        let (wfm, attempts) = (self.wfm.clone(), self.cfg.wfm.max_attempts);
        let mut waiter = IntervalWaiter { pipeline: self, generation };
        match deliver(&wfm, attempts, path, body, kind, &mut waiter).await {
            Delivery::Done => {
                self.reports.fetch_add(1, Ordering::Relaxed);
                self.delivered.push((key, Some(hash)));
                self.note_delivered(path, start);
                Sent::Done
            }
            Delivery::DeadLetter(letter) => Sent::Refused(letter),
            Delivery::Abandoned => Sent::Abandoned,
        }
    }

    /// Keeps the latest delivered interval per stream on the status board.
    fn note_delivered(&self, path: &str, start: Millis) {
        let stream = if path == self.wfm.paths().agent_activity { "agent-activity" } else { "intraday" };
        self.metrics
            .gauge(
                "acd_interval_last_delivery_timestamp_seconds",
                "When the WFM last accepted (or already had) an interval report, Unix seconds",
                &[("stream", stream)],
            )
            .store(now_millis() / 1000, Ordering::Relaxed);
        let start_date = format_millis(start);
        let mut b = self.board.lock().expect("board");
        let last = b.last_delivered_interval.entry(stream.to_string()).or_default();
        if start_date > *last {
            *last = start_date;
        }
    }

    /// Commits each partition's read position (what lag tools compare with the end), with its
    /// rebuild offset beside it in the commit's metadata, which Kafka stores with the offset in
    /// one write: a new owner starts reading from the rebuild offset (see
    /// [`crate::kafka::group::rebuild_from`]).
    fn commit(&mut self, generation: u64) {
        // An assignment whose rebuild offsets were not read (given up for shutdown) holds
        // incomplete books: committing their rebuild offsets would lose the real ones.
        if self.generation.load(Ordering::SeqCst) != generation || self.consumer.context().assignment_unread() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        let grid = self.grid;
        let topics: HashMap<Stream, String> =
            [Stream::Contact, Stream::AgentState, Stream::Interval, Stream::AgentActivity]
                .into_iter()
                .map(|s| (s, self.topic_of(s).to_string()))
                .collect();
        for ((stream, partition), part) in self.parts.iter_mut() {
            if *partition < 0 {
                continue;
            }
            let rebuild = part.rebuild_offset(&grid);
            let mut e = tpl.add_partition(&topics[stream], *partition);
            let _ = e.set_offset(Offset::Offset(part.next));
            e.set_metadata(crate::kafka::group::rebuild_metadata(rebuild));
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                self.link.client_error("intervals offset commit", &e);
            }
        }
    }

    async fn wait_polling(&mut self, wait: Duration, generation: u64) -> bool {
        self.member.wait_polling(wait, generation, &self.shutdown, &mut self.stash, |m| m.detach()).await
    }

    fn resume(&mut self) {
        self.member.resume();
    }
}

/// How the pipeline posts a report: skipped when its delivered hash matches, retried with the
/// partitions paused, dead-lettered through the process's one writer.
struct Poster<'a> {
    pipeline: &'a mut Intervals,
    generation: u64,
}

impl Post for Poster<'_> {
    async fn post(&mut self, path: &str, start: Millis, body: &[u8], kind: Kind, tag: &str) -> Sent {
        self.pipeline.send(path, start, body, kind, tag, self.generation).await
    }

    async fn refused(&mut self, letter: DeadLetter, start: Millis, what: &str) -> bool {
        let sent = self.pipeline.dlq.send(&requests::keyed_letter(letter, start, what)).await;
        if !sent {
            // Shutting down before the letter was written: the round is not committed, and the
            // report is computed and refused again after the restart.
            self.pipeline.unsettled = true;
        }
        sent
    }
}

/// A hash of a report body whose value is fixed by its definition (64-bit FNV-1a), not by the
/// Rust release: the delivered hashes in the store must still match after an upgrade.
pub fn report_hash(body: &[u8]) -> u64 {
    body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

struct IntervalWaiter<'a> {
    pipeline: &'a mut Intervals,
    generation: u64,
}

impl Waiter for IntervalWaiter<'_> {
    async fn wait(&mut self, wait: Duration) -> bool {
        self.pipeline.wait_polling(wait, self.generation).await
    }

    fn settled(&mut self) {
        self.pipeline.resume();
    }
}

/// Reads `[agents] map_file`, if set.
pub fn load_agent_map(cfg: &Config) -> Result<AgentMap, ConsumerError> {
    if cfg.agents.map_file.is_empty() {
        return Ok(AgentMap::default());
    }
    let text = std::fs::read_to_string(&cfg.agents.map_file).map_err(|e| {
        ConsumerError::Refused(format!("configuration: agents.map_file: cannot read {}: {e}", cfg.agents.map_file))
    })?;
    AgentMap::parse(&text).map_err(|e| ConsumerError::Refused(format!("configuration: agents.map_file: {e}")))
}

/// The store key of how far a partition had been read when its last delivery was recorded.
fn read_key(stream: Stream, partition: i32) -> Vec<u8> {
    format!("read/{}/{partition}", stream.name()).into_bytes()
}

/// A record of a round: in librdkafka's buffer, or copied out while the consumer was paused.
enum Rec<'c> {
    Fetched(FetchedMessage<'c>),
    Borrowed(BorrowedMessage<'c>),
    Owned(OwnedMessage),
}

/// Why an input record cannot be used: the dead-letter reason and the error.
type Unusable = (Reason, String);

fn undecodable(e: CodecError) -> Unusable {
    (Reason::Undecodable, e.to_string())
}

fn invalid(e: Invalid) -> Unusable {
    (Reason::Invalid, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_hashes_are_fnv_1a_and_so_fixed_across_releases() {
        assert_eq!(report_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(report_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(report_hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn idle_counts_only_when_read_to_an_end_fetched_after_the_last_record() {
        let long_ago = Instant::now() - Duration::from_secs(60);
        let mut part = Part {
            book: Book::Activity,
            last_record: long_ago,
            next: 100,
            by_interval: BTreeMap::new(),
            noted: None,
            replay_until: 0,
            pending: BTreeMap::new(),
            high: None,
            end_seen: None,
        };
        assert_eq!(part.idle_for(), 0, "no end fetched: the broker may be unreachable");
        part.end_seen = Some((long_ago - Duration::from_secs(1), 100));
        assert_eq!(part.idle_for(), 0, "an end fetched before the last record says nothing");
        part.end_seen = Some((Instant::now(), 120));
        assert_eq!(part.idle_for(), 0, "records are waiting: not idle, behind");
        part.end_seen = Some((Instant::now(), 100));
        assert!(part.idle_for() >= 60_000, "read to the end: idle since the last record");
        part.end_seen = Some((Instant::now() - END_FRESH_FOR, 100));
        assert_eq!(part.idle_for(), 0, "an end fetched too long ago (the broker may be gone since)");
    }
}
