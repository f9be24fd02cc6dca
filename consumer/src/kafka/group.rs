//! What both pipelines share about being a consumer-group member: counting rebalances, so a round
//! can tell it was overtaken by one; starting an assignment from positions read up front; reading
//! fetched records many at a time from each partition's own queue ([`Fetched`]); and waiting
//! with the partitions paused while still polling, so the group keeps the member however long a
//! retry waits.

use std::collections::VecDeque;
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_core::link::KafkaLink;
use futures::FutureExt;
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, RebalanceProtocol, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message, OwnedMessage, Timestamp};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Counts revocations (the eager protocol revokes every partition on each rebalance), and
/// routes the records of assigned partitions to the member's [`Fetched`] queue when it has one.
pub struct Ctx {
    pub generation: Arc<AtomicU64>,
    /// Where connection failures go instead of the log (see [`acd_core::link`]).
    pub link: Arc<KafkaLink>,
    /// Which pipeline, for the log.
    pub pipeline: &'static str,
    /// Whether the member starts its partitions at the rebuild offsets in its commits' metadata
    /// (the interval group; see [`start_positions`]).
    rebuilds: bool,
    /// Whether a [`Fetched`] reads this member's records.
    fetched: AtomicBool,
    /// The record queue of every partition assigned so far (see [`Fetched`]).
    queues: Mutex<Vec<PartitionQueue>>,
    /// Woken when one of those queues gets a record after being empty.
    wake: Notify,
    /// Next offsets whose checkpoint is on disk, by topic and partition: committed synchronously
    /// when their partition is revoked, so the next owner starts after them instead of sending
    /// that work again.
    checkpointed: Mutex<std::collections::HashMap<(String, i32), i64>>,
    /// The process's shutdown: the rebuild offsets are not asked for again once it is requested.
    stopping: Option<CancellationToken>,
    /// Set when an assignment's rebuild offsets were given up for shutdown: nothing of it may be
    /// committed (see [`Ctx::assignment_unread`]).
    unread: AtomicBool,
}

/// A partition's own record queue, detached from the consumer queue.
struct PartitionQueue {
    topic: String,
    partition: i32,
    queue: *mut rdsys::rd_kafka_queue_t,
}

// SAFETY: librdkafka queues may be used from any thread.
unsafe impl Send for PartitionQueue {}

impl Ctx {
    pub fn new(generation: Arc<AtomicU64>, pipeline: &'static str, link: Arc<KafkaLink>) -> Ctx {
        Ctx {
            generation,
            link,
            pipeline,
            rebuilds: false,
            fetched: AtomicBool::new(false),
            queues: Mutex::new(Vec::new()),
            wake: Notify::new(),
            checkpointed: Mutex::new(std::collections::HashMap::new()),
            stopping: None,
            unread: AtomicBool::new(false),
        }
    }
}

impl Ctx {
    /// A member whose partitions start at the rebuild offsets its commits name, and which does not
    /// start them anywhere else (see [`start_positions`]).
    pub fn rebuilding(mut self) -> Ctx {
        self.rebuilds = true;
        self
    }

    /// Gives up asking for rebuild offsets once `shutdown` is requested.
    pub fn stopping_on(mut self, shutdown: CancellationToken) -> Ctx {
        self.stopping = Some(shutdown);
        self
    }

    /// True when an assignment came while shutting down and its rebuild offsets could not be
    /// read: its books would be incomplete, so the member must not commit.
    pub fn assignment_unread(&self) -> bool {
        self.unread.load(Ordering::SeqCst)
    }

    /// Notes a partition's next offset once its checkpoint is on disk (see `checkpointed`).
    pub fn note_checkpointed(&self, topic: &str, partition: i32, next: i64) {
        self.checkpointed.lock().expect("checkpointed").insert((topic.to_string(), partition), next);
    }

    /// Commits, before the revoked partitions are let go, every checkpointed offset of theirs.
    fn commit_checkpointed(&self, base: &BaseConsumer<Self>, revoked: &TopicPartitionList) {
        let mut tpl = TopicPartitionList::new();
        {
            let mut done = self.checkpointed.lock().expect("checkpointed");
            for e in revoked.elements() {
                if let Some(next) = done.remove(&(e.topic().to_string(), e.partition())) {
                    let _ = tpl.add_partition_offset(e.topic(), e.partition(), Offset::Offset(next));
                }
            }
        }
        if tpl.count() == 0 {
            return;
        }
        match base.commit(&tpl, rdkafka::consumer::CommitMode::Sync) {
            Ok(()) => tracing::info!(
                pipeline = self.pipeline,
                partitions = tpl.count(),
                "checkpointed offsets committed before the partitions were released"
            ),
            Err(e) => {
                self.link.client_error("offset commit on revoke (the next owner re-reads from the last commit)", &e)
            }
        }
    }
}

impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        acd_core::link::log_through(&self.link, self.pipeline, level, fac, message)
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        acd_core::link::error_through(&self.link, self.pipeline, error, reason)
    }
}

impl ConsumerContext for Ctx {
    /// rdkafka's own rebalance, with the assignment's start positions filled in first (see
    /// `start_positions`).
    fn rebalance(&self, base: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let assign = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
        if assign && !start_positions(base, tpl, self.pipeline, self.rebuilds, self.stopping.as_ref()) {
            self.unread.store(true, Ordering::SeqCst);
        }
        let rebalance = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            _ => {
                let code: rdkafka::types::RDKafkaErrorCode = err.into();
                tracing::error!(pipeline = self.pipeline, error = %code, "rebalance failed");
                Rebalance::Error(rdkafka::error::KafkaError::Rebalance(code))
            }
        };
        self.pre_rebalance(base, &rebalance);
        let rk = base.client().native_ptr();
        let cooperative = matches!(base.rebalance_protocol(), RebalanceProtocol::Cooperative);
        // SAFETY: the live client and a list it handed us; as rdkafka's default does.
        unsafe {
            let error = match (assign, cooperative) {
                (true, true) => rdsys::rd_kafka_incremental_assign(rk, tpl.ptr()),
                (false, true) => rdsys::rd_kafka_incremental_unassign(rk, tpl.ptr()),
                (true, false) => {
                    let _ = rdsys::rd_kafka_assign(rk, tpl.ptr());
                    std::ptr::null_mut()
                }
                (false, false) => {
                    let _ = rdsys::rd_kafka_assign(rk, std::ptr::null());
                    std::ptr::null_mut()
                }
            };
            if !error.is_null() {
                rdsys::rd_kafka_error_destroy(error);
            }
        }
        self.post_rebalance(base, &rebalance);
    }

    fn pre_rebalance(&self, base: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                self.commit_checkpointed(base, tpl);
                self.generation.fetch_add(1, Ordering::SeqCst);
                tracing::info!(pipeline = self.pipeline, partitions = tpl.count(), "partitions revoked");
            }
            Rebalance::Assign(tpl) => {
                // What was checkpointed for these partitions in an earlier assignment is stale.
                {
                    let mut done = self.checkpointed.lock().expect("checkpointed");
                    for e in tpl.elements() {
                        done.remove(&(e.topic().to_string(), e.partition()));
                    }
                }
                // Before the assignment takes effect, so that no record of these partitions is
                // fetched into the consumer queue first (that would put it out of order).
                if !self.fetched.load(Ordering::SeqCst) {
                    return;
                }
                let rk = base.client().native_ptr();
                let mut queues = self.queues.lock().expect("partition queues");
                for e in tpl.elements() {
                    if queues.iter().any(|q| q.partition == e.partition() && q.topic == e.topic()) {
                        continue;
                    }
                    let Ok(topic) = CString::new(e.topic()) else { continue };
                    // SAFETY: `rk` is this live client. Forwarding to nothing detaches the
                    // partition's queue from the consumer queue for the client's lifetime
                    // (librdkafka marks it app-forwarded and leaves it so across assignments);
                    // the callback's opaque is this context's `Notify`, which outlives the
                    // client's threads, and `Fetched` removes the callback when it goes.
                    let queue = unsafe {
                        let q = rdsys::rd_kafka_queue_get_partition(rk, topic.as_ptr(), e.partition());
                        if !q.is_null() {
                            rdsys::rd_kafka_queue_forward(q, std::ptr::null_mut());
                            rdsys::rd_kafka_queue_cb_event_enable(
                                q,
                                Some(wake_cb),
                                &self.wake as *const Notify as *mut c_void,
                            );
                        }
                        q
                    };
                    tracing::debug!(
                        pipeline = self.pipeline,
                        topic = e.topic(),
                        partition = e.partition(),
                        detached = !queue.is_null(),
                        "partition queue detached"
                    );
                    if !queue.is_null() {
                        queues.push(PartitionQueue { topic: e.topic().to_string(), partition: e.partition(), queue });
                    }
                }
            }
            Rebalance::Error(_) => {}
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(pipeline = self.pipeline, partitions = tpl.count(), "partitions assigned");
        }
    }
}

/// The metadata of an interval-group commit: the offset its partition's book is rebuilt from.
pub fn rebuild_metadata(offset: i64) -> String {
    format!("{REBUILD_TAG}{offset}")
}

const REBUILD_TAG: &str = "acd-bridge rebuild=";

/// The rebuild offset a commit's metadata names, if it names one no later than the committed
/// offset (a commit of an older release, with the rebuild offset as the offset itself and no
/// metadata, names none: it starts at the committed offset, as it did then).
pub fn rebuild_from(metadata: &str, committed: i64) -> Option<i64> {
    let o: i64 = metadata.strip_prefix(REBUILD_TAG)?.parse().ok()?;
    (0..=committed).contains(&o).then_some(o)
}

/// Fills in where each newly assigned partition starts: the rebuild offset its commit's
/// metadata names (the interval group, see [`rebuild_metadata`]), else its committed offset, or
/// the earliest record when the group has none (both pipelines read with
/// `auto.offset.reset=earliest`). But for the rebuild offset, that is what librdkafka would do
/// itself, except that for a partition without a committed offset it waits a fixed 100 ms first
/// (a new group's first start).
///
/// If the offsets cannot be read, forwarding lets the assignment go as it came (librdkafka reads
/// them itself). The interval group cannot: started at the read position instead of the rebuild
/// offset, its books would miss records, so it asks again, and after `REBUILD_READ_ATTEMPTS`
/// failures the process stops with an error (a restart rebuilds correctly) rather than count
/// from an incomplete book; while the process shuts down it stops asking and returns false.
fn start_positions(
    base: &BaseConsumer<Ctx>,
    tpl: &mut TopicPartitionList,
    pipeline: &str,
    rebuilds: bool,
    stopping: Option<&CancellationToken>,
) -> bool {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match base.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
            Ok(committed) => {
                for e in committed.elements() {
                    let start = match e.offset() {
                        Offset::Offset(o) if o >= 0 => Offset::Offset(rebuild_from(e.metadata(), o).unwrap_or(o)),
                        _ => Offset::Beginning,
                    };
                    let _ = tpl.set_partition_offset(e.topic(), e.partition(), start);
                }
                return true;
            }
            Err(e) if !rebuilds => {
                tracing::warn!(pipeline, error = %e, "committed offsets not read; librdkafka reads them");
                return true;
            }
            Err(e) if stopping.is_some_and(CancellationToken::is_cancelled) => {
                tracing::info!(pipeline, error = %e, "shutting down: rebuild offsets not read; nothing of this assignment is committed");
                return false;
            }
            Err(e) if attempt < REBUILD_READ_ATTEMPTS => {
                tracing::warn!(pipeline, error = %e, attempt, "committed offsets and rebuild offsets not read; asking again");
            }
            Err(e) => {
                tracing::error!(
                    pipeline,
                    error = %e,
                    attempts = attempt,
                    "the rebuild offsets of the assigned partitions could not be read; stopping rather than \
                     counting from incomplete books (a restart rebuilds them)"
                );
                std::process::exit(1);
            }
        }
    }
}

/// How many times (10 s each) the interval group asks for its rebuild offsets on assignment.
const REBUILD_READ_ATTEMPTS: u32 = 12;

/// The fetched records of a member's assigned partitions, read many at a time.
///
/// librdkafka's consumer queue hands records out one call each, with the rebalance and error
/// events among them; that per-record round trip was two fifths of the forwarding thread. Here
/// each partition's queue is detached from the consumer queue when the partition is first
/// assigned (before it is fetched), and read with `rd_kafka_consume_batch_queue`, many records
/// a call; the consumer queue is still served for everything else. A partition's records stay
/// in its own queue, in order, whatever assignments come and go; those of a revoked assignment
/// are dropped by librdkafka's version barrier, as on the consumer queue. (Forwarding the
/// partition queues to one queue instead would not do: librdkafka clears a partition's
/// forwarding when it stops fetching it, which can land after the next assignment.)
pub struct Fetched {
    consumer: Arc<StreamConsumer<Ctx>>,
    buf: Vec<*mut rdsys::rd_kafka_message_t>,
    /// The partition read first next time, so that none waits behind the others.
    next: usize,
}

// SAFETY: `buf` is scratch space of one `read` call (which takes `&mut`), each message in it
// moved into a `FetchedMessage` at once; through `&Fetched` only the context's `Notify` is
// reached.
unsafe impl Send for Fetched {}
unsafe impl Sync for Fetched {}

/// Records read per librdkafka call.
const FETCHED_BATCH: usize = 1024;

unsafe extern "C" fn wake_cb(_rk: *mut rdsys::rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Notify` of the client's context, which outlives the client's
    // threads (the only callers); the callbacks are removed before `Fetched` goes.
    unsafe { (*(opaque as *const Notify)).notify_one() }
}

impl Fetched {
    /// Must be made before `subscribe`, so that every assigned partition is read here.
    pub fn new(consumer: Arc<StreamConsumer<Ctx>>) -> Fetched {
        consumer.context().fetched.store(true, Ordering::SeqCst);
        Fetched { consumer, buf: vec![std::ptr::null_mut(); FETCHED_BATCH], next: 0 }
    }

    /// Resolves when records may have arrived since the queues were last found empty.
    pub async fn arrived(&self) {
        self.consumer.context().wake.notified().await
    }

    /// Hands `take` up to `room` records already fetched, without waiting. Returns how many it
    /// handed over and whether it found every partition's queue empty. `consumer` is the one
    /// these queues belong to; the records borrow it.
    pub fn read<'c>(
        &mut self,
        consumer: &'c StreamConsumer<Ctx>,
        room: usize,
        pipeline: &str,
        mut take: impl FnMut(FetchedMessage<'c>),
    ) -> (usize, bool) {
        debug_assert!(std::ptr::eq(consumer, &*self.consumer), "records of another consumer");
        let queues = consumer.context().queues.lock().expect("partition queues");
        let count = queues.len();
        self.next = (self.next + 1) % count.max(1);
        let mut taken = 0;
        for i in 0..count {
            let queue = queues[(self.next + i) % count].queue;
            loop {
                let want = (room - taken).min(FETCHED_BATCH);
                if want == 0 {
                    return (taken, false);
                }
                // SAFETY: `buf` has room for `want` pointers; each message returned is owned by
                // exactly one `FetchedMessage` below, which destroys it.
                let n = unsafe { rdsys::rd_kafka_consume_batch_queue(queue, 0, self.buf.as_mut_ptr(), want) };
                let n = n.max(0) as usize;
                for &m in &self.buf[..n] {
                    let m = FetchedMessage { m, _consumer: std::marker::PhantomData };
                    // SAFETY: a message just returned by librdkafka, not yet destroyed.
                    let err = unsafe { (*m.m).err };
                    if err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                        take(m);
                        taken += 1;
                    } else {
                        let e: rdkafka::types::RDKafkaErrorCode = err.into();
                        consumer
                            .context()
                            .link
                            .client_error(pipeline, &rdkafka::error::KafkaError::MessageConsumption(e));
                    }
                }
                if n < want {
                    break;
                }
            }
        }
        (taken, true)
    }
}

impl Drop for Fetched {
    fn drop(&mut self) {
        let ctx = self.consumer.context();
        ctx.fetched.store(false, Ordering::SeqCst);
        for q in ctx.queues.lock().expect("partition queues").drain(..) {
            // SAFETY: the callback is removed before the handle is released; the client is
            // still alive (`self.consumer`). The partition's queue itself stays detached.
            unsafe {
                rdsys::rd_kafka_queue_cb_event_enable(q.queue, None, std::ptr::null_mut());
                rdsys::rd_kafka_queue_destroy(q.queue);
            }
        }
    }
}

/// A record read from [`Fetched`], destroyed when dropped; it borrows its consumer.
pub struct FetchedMessage<'c> {
    m: *mut rdsys::rd_kafka_message_t,
    _consumer: std::marker::PhantomData<&'c StreamConsumer<Ctx>>,
}

// SAFETY: a librdkafka message may be read and destroyed from any thread.
unsafe impl Send for FetchedMessage<'_> {}
unsafe impl Sync for FetchedMessage<'_> {}

impl Drop for FetchedMessage<'_> {
    fn drop(&mut self) {
        // SAFETY: owned by this value alone; the client is alive (borrowed for `'c`).
        unsafe { rdsys::rd_kafka_message_destroy(self.m) }
    }
}

impl FetchedMessage<'_> {
    fn bytes(&self, ptr: *mut c_void, len: usize) -> Option<&[u8]> {
        // SAFETY: librdkafka's pointer and length of this live message's payload or key.
        (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr as *const u8, len) })
    }
}

impl Message for FetchedMessage<'_> {
    type Headers = rdkafka::message::BorrowedHeaders;

    fn key(&self) -> Option<&[u8]> {
        // SAFETY: `m` is live while `self` is.
        let (p, n) = unsafe { ((*self.m).key, (*self.m).key_len) };
        self.bytes(p, n)
    }

    fn payload(&self) -> Option<&[u8]> {
        // SAFETY: as above.
        let (p, n) = unsafe { ((*self.m).payload, (*self.m).len) };
        self.bytes(p, n)
    }

    unsafe fn payload_mut(&mut self) -> Option<&mut [u8]> {
        // SAFETY: as above; the caller upholds the trait's contract.
        let (p, n) = unsafe { ((*self.m).payload, (*self.m).len) };
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
    }

    fn topic(&self) -> &str {
        // SAFETY: the topic handle outlives its messages; its name is NUL-terminated.
        unsafe {
            let name = rdsys::rd_kafka_topic_name((*self.m).rkt);
            if name.is_null() {
                return "";
            }
            std::ffi::CStr::from_ptr(name).to_str().unwrap_or("")
        }
    }

    fn partition(&self) -> i32 {
        // SAFETY: as above.
        unsafe { (*self.m).partition }
    }

    fn offset(&self) -> i64 {
        // SAFETY: as above.
        unsafe { (*self.m).offset }
    }

    fn timestamp(&self) -> Timestamp {
        let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: as above.
        let ms = unsafe { rdsys::rd_kafka_message_timestamp(self.m, &mut kind) };
        match kind {
            rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_CREATE_TIME => Timestamp::CreateTime(ms),
            rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME => Timestamp::LogAppendTime(ms),
            _ => Timestamp::NotAvailable,
        }
    }

    fn headers(&self) -> Option<&Self::Headers> {
        None
    }
}

/// A record kept whole, from either queue (headers are not kept: nothing downstream reads them).
pub fn owned(m: &impl Message) -> OwnedMessage {
    OwnedMessage::new(
        m.payload().map(<[u8]>::to_vec),
        m.key().map(<[u8]>::to_vec),
        m.topic().to_string(),
        m.timestamp(),
        m.partition(),
        m.offset(),
        None,
    )
}

/// A member's pause state.
pub struct Member {
    pub consumer: Arc<StreamConsumer<Ctx>>,
    pub generation: Arc<AtomicU64>,
    pub paused: bool,
}

impl Member {
    /// The current rebalance generation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Waits `wait` with the assignment paused, polling; what arrives anyway goes to `stash`
    /// tagged with its generation. False when a rebalance (or shutdown) came in the meantime.
    pub async fn wait_polling<T>(
        &mut self,
        wait: Duration,
        expected: u64,
        shutdown: &CancellationToken,
        stash: &mut VecDeque<(u64, T)>,
        mut keep: impl FnMut(&BorrowedMessage<'_>) -> T,
    ) -> bool {
        if !self.paused {
            if let Ok(assignment) = self.consumer.assignment() {
                self.paused = self.consumer.pause(&assignment).is_ok();
            }
        }
        let until = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return false,
                _ = tokio::time::sleep_until(until) => break,
                m = self.consumer.recv() => {
                    if let Ok(m) = m {
                        stash.push_back((self.generation(), keep(&m)));
                    }
                }
            }
            if self.generation() != expected {
                return false;
            }
        }
        self.generation() == expected
    }

    /// Resumes a paused assignment.
    pub fn resume(&mut self) {
        if self.paused {
            if let Ok(assignment) = self.consumer.assignment() {
                let _ = self.consumer.resume(&assignment);
            }
            self.paused = false;
        }
    }
}

/// Serves the consumer's own queue once, without waiting: rebalance and error events (which
/// [`Fetched`] does not carry) run their callbacks, and a record fetched before its partition
/// was detached for [`Fetched`] is returned. Called between batch reads, so that a member busy
/// with a backlog still answers a rebalance at once.
pub fn serve_events<'c>(consumer: &'c StreamConsumer<Ctx>, pipeline: &str) -> Option<BorrowedMessage<'c>> {
    match consumer.recv().now_or_never() {
        Some(Ok(m)) => Some(m),
        Some(Err(e)) => {
            consumer.context().link.client_error(pipeline, &e);
            None
        }
        None => None,
    }
}
