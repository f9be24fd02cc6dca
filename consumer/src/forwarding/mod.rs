//! The consumer-group loop for agent states.
//!
//! One round: collect records (see `Pipeline::collect` for when a round ends), decode, drop
//! the states already forwarded, post the new ones to the WFM in Kafka order in requests of at
//! most `agent_state_batch`, then write the dedup buckets and the next offsets in one flushed
//! checkpoint, then commit the offsets to Kafka. A round's first
//! attempts are in flight while the next round is read; the next round is decoded and sent only
//! once the previous one is settled, so each agent's order holds across rounds.
//!
//! While a call waits to be retried, the assigned partitions are paused and the consumer keeps
//! polling, so it stays in its group however long the WFM is away. A rebalance (eager protocol:
//! every partition is revoked) abandons the round: nothing of it is committed, the dedup state is
//! reloaded from the last checkpoint, and the partitions are read again from the committed
//! offsets by whoever owns them now. Delivery is therefore at least once; a state is sent twice
//! only when a crash or rebalance falls between the WFM's answer and the checkpoint.

pub mod seen;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_core::config::Config;
use acd_core::kafka::Registry as SchemaRegistry;
use acd_schemas::records::{AgentState, AgentStateRef};
use acd_schemas::time::{format_millis, now_millis, Millis};
use acd_schemas::wfm::AgentStateJson;
use acd_schemas::{Codec, CodecError, Stream};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::Checkpoints;
use crate::deadletter::{input_letter, DeadLetter, DeadLetters, Kind, Reason};
use crate::forwarding::seen::Seen;
use crate::kafka::group::{owned, serve_events, Ctx, Fetched, Member};
use crate::status::{PartitionStatus, SharedBoard};
use crate::wfm::classify::{classify, Outcome};
use crate::wfm::delivery::{deliver, Delivery, Waiter};
use crate::wfm::WfmClient;
use crate::ConsumerError;

/// A round holds at most this many WFM requests' worth of states. Rounds are this large only
/// while catching up on a backlog (otherwise `agent_state_linger_ms` ends them): each round costs
/// a flushed checkpoint and an offset commit, and at 16 requests the commits doubled the broker's
/// work in a catch-up.
const ROUND_REQUESTS: usize = 64;

/// Latency buckets (milliseconds) from producer receipt to WFM acceptance.
const LATENCY_BUCKETS: [u64; 12] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 60000];

/// A record as polled: read in place, checked and written as the JSON it will be sent as, on the
/// spot; or kept whole for the slow path (a schema to fetch from the registry, or a dead letter).
enum Polled {
    State { partition: i32, offset: i64, item: Item },
    Raw(OwnedMessage),
}

impl Polled {
    fn position(&self) -> (i32, i64) {
        match self {
            Polled::State { partition, offset, .. } => (*partition, *offset),
            Polled::Raw(m) => (m.partition(), m.offset()),
        }
    }
}

/// Work for the committer: checkpoint writes, then the offsets they cover.
enum Job {
    Commit {
        writes: Vec<crate::checkpoint::Write>,
        offsets: BTreeMap<i32, i64>,
        generation: u64,
    },
    /// Answered once everything sent before it is done.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Writes checkpoints and commits offsets in the background, in round order, so the next round
/// is decoded while the store flushes. Offsets are committed only after their checkpoint is on
/// disk; after a failed checkpoint nothing more is committed and the pipeline stops.
struct Committer {
    tx: tokio::sync::mpsc::Sender<Job>,
    failed: Arc<Mutex<Option<String>>>,
}

impl Committer {
    fn spawn(
        store: Checkpoints,
        consumer: Arc<StreamConsumer<Ctx>>,
        generation: Arc<AtomicU64>,
        topic: String,
    ) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(2);
        let failed = Arc::new(Mutex::new(None));
        let f = failed.clone();
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                match job {
                    Job::Barrier(done) => {
                        let _ = done.send(());
                    }
                    Job::Commit { .. } if f.lock().expect("committer").is_some() => {}
                    Job::Commit { writes, offsets, generation: gen } => {
                        let store = store.clone();
                        match tokio::task::spawn_blocking(move || store.commit(writes)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                *f.lock().expect("committer") = Some(e.to_string());
                                continue;
                            }
                            Err(e) => {
                                *f.lock().expect("committer") = Some(e.to_string());
                                continue;
                            }
                        }
                        if generation.load(Ordering::SeqCst) != gen || offsets.is_empty() {
                            // The partitions are someone else's now; the group keeps its offsets.
                            continue;
                        }
                        for (partition, next) in &offsets {
                            consumer.context().note_checkpointed(&topic, *partition, *next);
                        }
                        let mut tpl = TopicPartitionList::new();
                        for (partition, next) in offsets {
                            let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(next));
                        }
                        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                            consumer
                                .context()
                                .link
                                .client_error("agent-states offset commit (the checkpoint has them)", &e);
                        }
                    }
                }
            }
        });
        Committer { tx, failed }
    }

    async fn submit(&self, job: Job) {
        let _ = self.tx.send(job).await;
    }

    /// Waits until everything submitted is checkpointed (and its offsets committed).
    async fn drain(&self) -> Result<(), ConsumerError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Barrier(tx)).await;
        let _ = rx.await;
        self.check()
    }

    fn check(&self) -> Result<(), ConsumerError> {
        match self.failed.lock().expect("committer").clone() {
            Some(e) => Err(ConsumerError::Checkpoint(e)),
            None => Ok(()),
        }
    }
}

/// The running consumer.
pub struct Pipeline {
    cfg: Config,
    consumer: Arc<StreamConsumer<Ctx>>,
    generation: Arc<AtomicU64>,
    /// The same consumer, for pausing while a retry waits.
    member: Member,
    wfm: WfmClient,
    store: Checkpoints,
    seen: Seen,
    dlq: Arc<DeadLetters>,
    codec: Arc<Codec>,
    schema_registry: Option<SchemaRegistry>,
    /// Records read while paused, with the rebalance generation they were read in, to be
    /// processed first in the next round.
    stash: VecDeque<(u64, Polled)>,
    /// The assigned partitions' fetched records.
    fetched: Fetched,
    /// Where polled states are written.
    slab: Slab,
    committer: Committer,
    board: SharedBoard,
    shutdown: CancellationToken,
    read: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
    duplicates: Arc<AtomicU64>,
    latency: Vec<Arc<AtomicU64>>,
    latency_count: Arc<AtomicU64>,
    latency_sum: Arc<AtomicU64>,
    /// Total lag of the assigned agent-state partitions, for `/metrics`.
    lag_gauge: Arc<std::sync::atomic::AtomicI64>,
    /// The WFM connection for `/metrics`: 2 CONNECTED, 1 DEGRADED, 0 DISCONNECTED.
    wfm_gauge: Arc<std::sync::atomic::AtomicI64>,
}

impl Pipeline {
    /// Opens the checkpoint store, loads the dedup state and subscribes.
    pub async fn new(
        cfg: Config,
        wfm: WfmClient,
        store: Checkpoints,
        shared: crate::Shared,
    ) -> Result<Pipeline, ConsumerError> {
        let crate::Shared { board, metrics, link, dlq, codec, shutdown } = shared;
        // Next offsets were once kept in the store too; Kafka alone keeps them now.
        store.remove_range(b"offset/", b"offset0")?;
        let mut seen = Seen::new(cfg.interval.max_lateness_hours as i64 * 3_600_000);
        seen.load(store.scan(crate::forwarding::seen::PREFIX)?, store.get(crate::forwarding::seen::UNTIL_KEY)?);
        tracing::info!(remembered = seen.len(), state_dir = %cfg.consumer.state_dir, "checkpoint loaded");
        let generation = Arc::new(AtomicU64::new(0));
        let mut cc = acd_core::kafka::client_config(&cfg)?;
        cc.set("group.id", &cfg.consumer.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest");
        crate::kafka::group_defaults(&mut cc, &cfg.kafka_properties().unwrap_or_default(), crate::kafka::FORWARDING);
        let consumer: Arc<StreamConsumer<Ctx>> =
            Arc::new(cc.create_with_context(Ctx::new(generation.clone(), "agent-states", link.clone()))?);
        let fetched = Fetched::new(consumer.clone());
        consumer.subscribe(&[&cfg.topics.agent_state])?;
        let url = cfg.kafka.schema_registry_url.trim();
        let schema_registry = (!url.is_empty()).then(|| SchemaRegistry::new(url));
        let c = |name: &str, help: &str| metrics.counter(name, help, &[]);
        let latency = LATENCY_BUCKETS
            .iter()
            .map(|le| {
                metrics.counter(
                    "acd_agent_state_latency_ms_bucket",
                    "Agent states by latency from ingest to WFM acceptance (cumulative)",
                    &[("le", &le.to_string())],
                )
            })
            .collect();
        let committer =
            Committer::spawn(store.clone(), consumer.clone(), generation.clone(), cfg.topics.agent_state.clone());
        let member = Member { consumer: consumer.clone(), generation: generation.clone(), paused: false };
        Ok(Pipeline {
            member,
            committer,
            dlq,
            read: c("acd_agent_states_read_total", "Agent state records read from Kafka"),
            delivered: c("acd_agent_states_delivered_total", "Agent states accepted by the WFM"),
            duplicates: c("acd_agent_states_duplicates_total", "Agent states dropped as duplicates"),
            latency_count: c("acd_agent_state_latency_ms_count", "Agent states with a measured latency"),
            latency_sum: c("acd_agent_state_latency_ms_sum", "Sum of measured latencies, ms"),
            latency,
            wfm_gauge: metrics.gauge(
                "acd_wfm_state",
                "WFM connection: 2 CONNECTED, 1 DEGRADED (recent failures), 0 DISCONNECTED (outage)",
                &[],
            ),
            lag_gauge: metrics.gauge(
                "acd_consumer_lag",
                "Records not yet forwarded on the assigned agent-state partitions",
                &[],
            ),
            cfg,
            consumer,
            generation,
            wfm,
            store,
            seen,
            codec,
            schema_registry,
            stash: VecDeque::new(),
            fetched,
            slab: Slab::default(),
            board,
            shutdown,
        })
    }

    /// The status board the admin API serves.
    pub fn board(&self) -> SharedBoard {
        self.board.clone()
    }

    /// Runs until shutdown; the round in progress is finished (or abandoned uncommitted).
    pub async fn run(mut self) -> Result<(), ConsumerError> {
        let lag =
            spawn_lag_watch(self.consumer.clone(), self.board.clone(), self.lag_gauge.clone(), self.shutdown.clone());
        let max_round = self.cfg.wfm.agent_state_batch * ROUND_REQUESTS;
        // One round's first attempts are in flight while the next round is read.
        let mut in_flight: Option<Round> = None;
        while !self.shutdown.is_cancelled() {
            // With a round in flight, reading waits at most the linger, so the round is settled
            // even when nothing more comes.
            let t = std::time::Instant::now();
            let (generation, batch) = self.collect(max_round, in_flight.as_mut().map(|r| &mut r.sends)).await;
            let collected = t.elapsed();
            if let Some(round) = in_flight.take() {
                let settled = self.finish(round).await?;
                tracing::debug!(
                    collect_ms = collected.as_secs_f64() * 1e3,
                    finish_ms = (t.elapsed() - collected).as_secs_f64() * 1e3,
                    next = batch.len(),
                    "agent-state round settled"
                );
                self.update_board();
                if !settled {
                    // Abandoned (rebalance or shutdown): what was read since is read again.
                    continue;
                }
            }
            if batch.is_empty() || generation != self.generation.load(Ordering::SeqCst) {
                continue;
            }
            in_flight = Some(self.prepare(generation, batch).await);
            self.committer.check()?;
            self.update_board();
        }
        if let Some(round) = in_flight.take() {
            self.finish(round).await?;
        }
        self.update_board();
        lag.abort();
        // Everything processed is checkpointed and committed before leaving the group.
        let drained = self.committer.drain().await;
        self.consumer.unsubscribe();
        drained
    }

    /// Collects a round. It ends at `max` records, `agent_state_linger_ms` after its first record
    /// (after its start while `previous` is in flight), or, once no request of ours is in flight
    /// (the WFM has answered `previous`, or there is none) and nothing more is fetched, at once:
    /// empty, so `previous` is settled without waiting, or with whatever it holds, as Nagle's
    /// algorithm sends. The linger only gathers while a request is in flight, so a quiet center's
    /// states go out as they come and a busy one's still travel in full requests.
    ///
    /// Records read before a rebalance are dropped (the new owner reads them again from the
    /// committed offsets); those read after it, from the new assignment, are kept.
    async fn collect(&mut self, max: usize, mut previous: Option<&mut Sends>) -> (u64, Vec<Polled>) {
        let bounded = previous.is_some();
        let mut generation = self.generation.load(Ordering::SeqCst);
        let mut batch: Vec<Polled> = self.stash.drain(..).filter(|(g, _)| *g == generation).map(|(_, p)| p).collect();
        let linger = Duration::from_millis(self.cfg.wfm.agent_state_linger_ms);
        // One timer for the round, armed by the first record (far away until then, unless
        // `bounded`).
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400);
        let armed_now = bounded || !batch.is_empty();
        let timer = tokio::time::sleep_until(if armed_now { tokio::time::Instant::now() + linger } else { far });
        tokio::pin!(timer);
        let mut armed = armed_now;
        let mut answered = previous.as_ref().is_none_or(|s| s.answered());
        while batch.len() < max {
            if answered && batch.is_empty() && bounded {
                // Nothing was waiting when the WFM answered: settle the previous round now.
                break;
            }
            // Rebalances and errors first, then what is fetched already (all of it, while
            // catching up), many records a call.
            let early = serve_events(&self.consumer, "agent-states");
            if let Some(m) = &early {
                add(&mut batch, &mut generation, &self.generation, &self.codec, &mut self.slab, m);
            }
            let room = max.saturating_sub(batch.len());
            let (codec, slab, current) = (&self.codec, &mut self.slab, &self.generation);
            let (n, drained) = self.fetched.read(&self.consumer, room, "agent-states", |m| {
                add(&mut batch, &mut generation, current, codec, slab, &m)
            });
            if (n > 0 || early.is_some()) && !armed {
                timer.as_mut().reset(tokio::time::Instant::now() + linger);
                armed = true;
            }
            if !drained {
                continue;
            }
            if answered && !batch.is_empty() {
                break;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = &mut timer => break,
                _ = async { if let Some(s) = previous.as_mut() { s.answer().await } }, if !answered => {
                    answered = true;
                }
                _ = self.fetched.arrived() => {}
                // Rebalances and errors; records only if fetched before their partition's
                // queue was detached for `fetched`.
                m = self.consumer.recv() => match m {
                    Ok(m) => {
                        add(&mut batch, &mut generation, &self.generation, &self.codec, &mut self.slab, &m);
                        if !armed {
                            timer.as_mut().reset(tokio::time::Instant::now() + linger);
                            armed = true;
                        }
                    }
                    Err(e) => {
                        self.consumer.context().link.client_error("agent-states", &e);
                        if !armed {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                },
            }
        }
        if self.generation.load(Ordering::SeqCst) != generation {
            batch.clear();
        }
        (generation, batch)
    }

    async fn decode(&self, payload: &[u8]) -> Result<AgentState, CodecError> {
        // Values of the current schema were read in `polled`; this is the path of the others.
        match self.codec.decode_agent_state(payload) {
            Err(CodecError::UnknownSchemaId(id)) if self.schema_registry.is_some() => {
                if let Some(r) = &self.schema_registry {
                    if let Err(e) = r.learn(&self.codec, id).await {
                        tracing::warn!(error = %e, id, "schema registry lookup failed");
                    }
                }
                self.codec.decode(Stream::AgentState, payload)
            }
            other => other,
        }
    }

    /// Decodes and deduplicates a round, then starts its first attempts: every lane's chunks
    /// concurrently, each lane in order, stopping a lane at its first answer that is not a
    /// success.
    async fn prepare(&mut self, generation: u64, batch: Vec<Polled>) -> Round {
        let mut next_offsets: BTreeMap<i32, i64> = BTreeMap::new();
        let mut fresh: Vec<Item> = Vec::with_capacity(batch.len());
        self.read.fetch_add(batch.len() as u64, Ordering::Relaxed);
        let mut held = std::collections::HashSet::new();
        for p in batch {
            let (partition, offset) = p.position();
            if held.contains(&partition) {
                continue;
            }
            next_offsets.insert(partition, offset + 1);
            let item = match p {
                Polled::State { item, .. } => item,
                Polled::Raw(m) => {
                    let usable = match self.decode(m.payload().unwrap_or_default()).await {
                        Ok(s) => acd_schemas::check::agent_state(&s)
                            .map(|()| self.slab.item(&s.as_ref()))
                            .map_err(|e| (Reason::Invalid, e.to_string())),
                        Err(e) => Err((Reason::Undecodable, e.to_string())),
                    };
                    match usable {
                        Ok(item) => item,
                        Err((reason, e)) => {
                            if !self.dlq.send(&input_letter(&m, reason, &e)).await {
                                // Shutting down before it was written: the partition's offset
                                // stays before it, so it is read (and dead-lettered) again.
                                held.insert(partition);
                                next_offsets.insert(partition, offset);
                            }
                            continue;
                        }
                    }
                }
            };
            let store = &self.store;
            if self.seen.admit(partition, item.agent(), item.time, &mut |k| store.get(k).ok().flatten()) {
                fresh.push(item);
            } else {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
        let path = self.wfm.paths().agent_states.clone();
        let lanes = lanes(fresh);
        let size = self.cfg.wfm.agent_state_batch;
        let bodies: Bodies = lanes.iter().map(|lane| lane.chunks(size).map(states_body).collect()).collect();
        let sends = Sends::InFlight(tokio::spawn(first_attempts(self.wfm.clone(), path, bodies)));
        Round { generation, lanes, next_offsets, sends }
    }

    /// Completes a round: takes the first attempts' answers, retries the chunks they left, then
    /// checkpoints the dedup journal with the next offsets and hands the offsets to the
    /// committer. False when the round was abandoned (rebalance or shutdown while retrying).
    async fn finish(&mut self, round: Round) -> Result<bool, ConsumerError> {
        let Round { generation, lanes, next_offsets, sends } = round;
        let path = self.wfm.paths().agent_states.clone();
        let (bodies, sent) = sends.into_answers().await;
        let size = self.cfg.wfm.agent_state_batch;
        for ((lane, bodies), accepted) in lanes.iter().zip(bodies).zip(sent) {
            for (i, (chunk, body)) in lane.chunks(size).zip(bodies).enumerate() {
                if i < accepted {
                    self.accepted(chunk);
                    continue;
                }
                let (wfm, attempts) = (self.wfm.clone(), self.cfg.wfm.max_attempts);
                let mut waiter = PollingWaiter { pipeline: self, generation };
                match deliver(&wfm, attempts, &path, &body, Kind::AgentStates, &mut waiter).await {
                    Delivery::Done => self.accepted(chunk),
                    Delivery::DeadLetter(letter) => {
                        let letter =
                            DeadLetter { key: format!("agent-states/{}", format_millis(chunk[0].time)), ..letter };
                        if !self.dlq.send(&letter).await {
                            self.abandon().await?;
                            return Ok(false);
                        }
                    }
                    Delivery::Abandoned => {
                        self.abandon().await?;
                        return Ok(false);
                    }
                }
            }
        }
        // The dedup journal, flushed before the offsets it covers are committed. (The offsets
        // themselves live in Kafka only: a restart that re-reads past a lost commit finds every
        // state in the journal.)
        let writes = self.seen.take_writes();
        if let Some((from, to)) = self.seen.expired() {
            // Times beyond the lateness window: nothing refers to them any more.
            if let Err(e) = self.store.remove_range(&from, &to) {
                tracing::warn!(error = %e, "could not remove expired dedup times");
            }
        }
        self.committer.submit(Job::Commit { writes, offsets: next_offsets, generation }).await;
        Ok(true)
    }

    fn accepted(&self, chunk: &[Item]) {
        let now = now_millis();
        for item in chunk {
            if let Some(r) = item.received {
                self.observe_latency((now - r).max(0) as u64);
            }
        }
        self.delivered.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if let Some(last) = chunk.last() {
            self.board.lock().expect("board").last_delivered_agent_state_utc = Some(format_millis(last.time));
        }
    }

    async fn abandon(&mut self) -> Result<(), ConsumerError> {
        // Forget what this round admitted: reload the last checkpoint, once it is all written.
        self.committer.drain().await?;
        let mut seen = Seen::new(self.cfg.interval.max_lateness_hours as i64 * 3_600_000);
        seen.load(
            self.store.scan(crate::forwarding::seen::PREFIX)?,
            self.store.get(crate::forwarding::seen::UNTIL_KEY)?,
        );
        self.seen = seen;
        // Keep what was read from the new assignment.
        let now = self.generation.load(Ordering::SeqCst);
        self.stash.retain(|(g, _)| *g == now);
        self.resume();
        tracing::info!("round abandoned (rebalance or shutdown); its records will be read again");
        Ok(())
    }

    fn observe_latency(&self, ms: u64) {
        for (le, c) in LATENCY_BUCKETS.iter().zip(&self.latency) {
            if ms <= *le {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum.fetch_add(ms, Ordering::Relaxed);
    }

    /// Waits with the partitions paused, polling so the group keeps us. False when a rebalance
    /// or shutdown came in the meantime.
    async fn wait_polling(&mut self, wait: Duration, generation: u64) -> bool {
        self.board.lock().expect("board").paused = true;
        let (codec, slab) = (self.codec.clone(), &mut self.slab);
        self.member.wait_polling(wait, generation, &self.shutdown, &mut self.stash, |m| polled(&codec, slab, m)).await
    }

    fn resume(&mut self) {
        self.member.resume();
        self.board.lock().expect("board").paused = false;
    }

    fn update_board(&self) {
        let mut b = self.board.lock().expect("board");
        b.agent_states_read = self.read.load(Ordering::Relaxed);
        b.agent_states_delivered = self.delivered.load(Ordering::Relaxed);
        b.agent_states_duplicates = self.duplicates.load(Ordering::Relaxed);
        b.dead_letters = self.dlq.total();
        let last = self.wfm.last_success.load(Ordering::Relaxed);
        b.wfm_last_success_utc = (last > 0).then(|| format_millis(last));
        let failures = self.wfm.failures_in_a_row.load(Ordering::Relaxed);
        b.wfm_failures_in_a_row = failures;
        let (state, gauge) = match failures {
            0 => ("CONNECTED", 2),
            1..=3 => ("DEGRADED", 1),
            _ => ("DISCONNECTED", 0),
        };
        b.wfm_state = state.to_string();
        self.wfm_gauge.store(gauge, Ordering::Relaxed);
    }
}

/// Waits between attempts with the partitions paused, polling (see [`Pipeline::wait_polling`]).
struct PollingWaiter<'a> {
    pipeline: &'a mut Pipeline,
    generation: u64,
}

impl Waiter for PollingWaiter<'_> {
    async fn wait(&mut self, wait: Duration) -> bool {
        self.pipeline.wait_polling(wait, self.generation).await
    }

    fn settled(&mut self) {
        self.pipeline.resume();
    }
}

/// Reads a polled record when it can (in place for the current schema, the common case: its
/// JSON is written into the slab).
fn polled(codec: &Codec, slab: &mut Slab, m: &impl Message) -> Polled {
    let item = codec.with_agent_state(m.payload().unwrap_or_default(), |s| {
        acd_schemas::check::agent_state_ref(s).is_ok().then(|| slab.item(s))
    });
    match item {
        Ok(Some(item)) => Polled::State { partition: m.partition(), offset: m.offset(), item },
        _ => Polled::Raw(owned(m)),
    }
}

/// Adds a record to the round being collected; a rebalance since it began empties it first.
fn add(
    batch: &mut Vec<Polled>,
    generation: &mut u64,
    current: &AtomicU64,
    codec: &Codec,
    slab: &mut Slab,
    m: &impl Message,
) {
    let now = current.load(Ordering::SeqCst);
    if now != *generation {
        batch.clear();
        *generation = now;
    }
    batch.push(polled(codec, slab, m));
}

/// Request bodies by lane, in order.
type Bodies = Vec<Vec<Vec<u8>>>;

/// A round whose first attempts are in flight.
struct Round {
    generation: u64,
    /// The states to forward, by lane.
    lanes: Vec<Vec<Item>>,
    next_offsets: BTreeMap<i32, i64>,
    sends: Sends,
}

/// A round's first attempts: the request bodies by lane and chunk, and how many chunks of each
/// lane the WFM accepted; in flight, then answered.
enum Sends {
    InFlight(tokio::task::JoinHandle<(Bodies, Vec<usize>)>),
    Answered(Bodies, Vec<usize>),
}

impl Sends {
    fn answered(&self) -> bool {
        matches!(self, Sends::Answered(..))
    }

    /// Waits for the answers (cancel-safe: the attempts go on if this is dropped).
    async fn answer(&mut self) {
        if let Sends::InFlight(handle) = self {
            let (bodies, accepted) = handle.await.expect("first attempts");
            *self = Sends::Answered(bodies, accepted);
        }
    }

    async fn into_answers(mut self) -> (Bodies, Vec<usize>) {
        self.answer().await;
        match self {
            Sends::Answered(bodies, accepted) => (bodies, accepted),
            Sends::InFlight(_) => unreachable!("answered above"),
        }
    }
}

/// Sends every lane's chunks concurrently, each lane in order, stopping a lane at its first
/// answer that is not a success. Returns the bodies with how many chunks of each lane were
/// accepted; the rest go through [`deliver`] with its retries, in the same order.
async fn first_attempts(wfm: WfmClient, path: String, bodies: Bodies) -> (Bodies, Vec<usize>) {
    let sends = bodies.iter().map(|lane| {
        let (wfm, path) = (&wfm, &path);
        async move {
            let mut accepted = 0;
            for body in lane {
                let answer = wfm.call(reqwest::Method::POST, path, Some(body)).await;
                if classify(&answer.attempt) != Outcome::Success {
                    break;
                }
                accepted += 1;
            }
            accepted
        }
    });
    let accepted = futures::future::join_all(sends).await;
    (bodies, accepted)
}

/// A state to forward: its agent key and its JSON object in one buffer, its lane, its event
/// time, and the producer's receipt time for the latency metric.
struct Item {
    /// `acdId/loginId`, then the JSON object: a slice of a shared slab (see [`Slab`]).
    bytes: bytes::Bytes,
    agent_len: usize,
    lane: u8,
    time: Millis,
    received: Option<Millis>,
}

/// Where items are written: large shared buffers that items slice, so a state costs no
/// allocation of its own (one per state, and its free, were a fifth of the forwarding thread).
/// A buffer is freed when the last item slicing it is dropped.
#[derive(Default)]
struct Slab {
    buf: bytes::BytesMut,
    scratch: Vec<u8>,
}

impl Slab {
    const CHUNK: usize = 256 * 1024;

    fn item(&mut self, s: &AgentStateRef<'_>) -> Item {
        let w = &mut self.scratch;
        w.clear();
        w.extend_from_slice(s.acd_id.as_bytes());
        w.push(b'/');
        w.extend_from_slice(s.login_id.as_bytes());
        let agent_len = w.len();
        let lane = lane_of(&w[..agent_len]);
        AgentStateJson::write(s, w);
        if self.buf.capacity() - self.buf.len() < w.len() {
            self.buf = bytes::BytesMut::with_capacity(Self::CHUNK.max(w.len()));
        }
        self.buf.extend_from_slice(w);
        let bytes = self.buf.split().freeze();
        Item { bytes, agent_len, lane, time: s.event_utc_time, received: s.received_utc }
    }
}

impl Item {
    /// `acdId/loginId`: the dedup key's agent.
    fn agent(&self) -> &str {
        // SAFETY: `Slab::item` wrote these bytes from two `&str` joined by `/`, and `Bytes` is
        // immutable, so they are UTF-8 (checking again cost a visible share of the thread).
        unsafe { std::str::from_utf8_unchecked(&self.bytes[..self.agent_len]) }
    }

    fn json(&self) -> &[u8] {
        &self.bytes[self.agent_len..]
    }
}

/// Concurrent delivery lanes; an agent always maps to the same lane, so its order holds.
const LANES: usize = 4;

/// The lane of an agent key. FNV-1a: stable, and cheap on short keys.
fn lane_of(agent: &[u8]) -> u8 {
    let h = agent.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3));
    (h % LANES as u64) as u8
}

/// Splits states into lanes by agent, keeping their order within each lane.
fn lanes(fresh: Vec<Item>) -> Vec<Vec<Item>> {
    let mut out: Vec<Vec<Item>> = (0..LANES).map(|_| Vec::with_capacity(fresh.len() / LANES + 16)).collect();
    for item in fresh {
        out[item.lane as usize].push(item);
    }
    out.retain(|l| !l.is_empty());
    out
}

/// `{"agentStateList":[...]}` from the items' JSON.
fn states_body(chunk: &[Item]) -> Vec<u8> {
    let mut body = Vec::with_capacity(chunk.iter().map(|i| i.json().len() + 1).sum::<usize>() + 24);
    body.extend_from_slice(b"{\"agentStateList\":[");
    for (i, item) in chunk.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.json());
    }
    body.extend_from_slice(b"]}");
    body
}

/// Every five seconds: committed offsets, high watermarks and lag of the assigned partitions.
fn spawn_lag_watch(
    consumer: Arc<StreamConsumer<Ctx>>,
    board: SharedBoard,
    gauge: Arc<std::sync::atomic::AtomicI64>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let c = consumer.clone();
            let parts = tokio::task::spawn_blocking(move || -> Vec<PartitionStatus> {
                let Ok(assignment) = c.assignment() else { return Vec::new() };
                let committed = c.committed_offsets(assignment, Duration::from_secs(5)).unwrap_or_default();
                committed
                    .elements()
                    .iter()
                    .map(|e| {
                        let (low, high) =
                            c.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5)).unwrap_or((0, 0));
                        let next = match e.offset() {
                            Offset::Offset(o) => o,
                            _ => low,
                        };
                        PartitionStatus {
                            topic: e.topic().to_string(),
                            partition: e.partition(),
                            committed: next,
                            high_watermark: high,
                            lag: (high - next).max(0),
                        }
                    })
                    .collect()
            })
            .await
            .unwrap_or_default();
            {
                let mut b = board.lock().expect("board");
                b.lag_total = parts.iter().map(|p| p.lag).sum();
                gauge.store(b.lag_total, Ordering::Relaxed);
                b.partitions = parts;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    })
}
