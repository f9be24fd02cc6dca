//! The consumer side of acd-bridge: Kafka in, WFM API out, exactly as counted.
//!
//! Layout (each folder one idea; dependencies run one way, down this list):
//! - [`forwarding`]: agent states to the WFM in real time: read, deduplicate ([`forwarding::seen`]),
//!   post in rounds, checkpoint, then commit. It never commits past work that is neither
//!   delivered nor checkpointed.
//! - [`intervals`]: the interval pipeline: books per partition (the `acd-interval` library),
//!   rebuild offsets, what the store keeps for them ([`intervals::keystore`]), and the one way to
//!   cut interval reports into requests ([`intervals::requests`]).
//! - [`wfm`]: the WFM API client, what an answer means, backoff, and delivery with retries.
//! - [`deadletter`]: the dead-letter topic: typed reasons and kinds, one place that writes,
//!   counts and logs each letter.
//! - [`kafka`]: librdkafka group membership and per-partition record queues.
//! - [`checkpoint`]: the sled seam.
//! - [`status`]: the board, the admin API, the ACD connection state, `acd-bridge status`.
//! - [`tools`]: `acd-bridge dlq` and `acd-bridge replay`.

pub mod checkpoint;
pub mod deadletter;
pub mod forwarding;
pub mod intervals;
pub mod kafka;
pub mod status;
pub mod tools;
pub mod wfm;

use acd_core::config::Config;
use acd_core::kafka::TopicSpec;
use acd_core::metrics::Registry;
use tokio_util::sync::CancellationToken;

/// What the parts of a running `consume` share: the status board, the metrics, the Kafka
/// connection state and the shutdown signal.
#[derive(Clone)]
pub struct Shared {
    pub board: status::SharedBoard,
    pub metrics: Registry,
    pub link: std::sync::Arc<acd_core::link::KafkaLink>,
    /// The one dead-letter writer of the process.
    pub dlq: std::sync::Arc<deadletter::DeadLetters>,
    /// The one Avro codec of the process, built from the configuration (schema registry or not).
    pub codec: std::sync::Arc<acd_schemas::Codec>,
    pub shutdown: CancellationToken,
}

/// Errors that stop `consume`.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// A configuration the WFM disagrees with: exit status 2.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Kafka(#[from] acd_core::kafka::KafkaError),
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Store(#[from] checkpoint::StoreError),
    #[error("checkpoint store: {0}")]
    Checkpoint(String),
    #[error(transparent)]
    Wfm(#[from] wfm::WfmError),
    #[error("admin listener {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

/// How often free heap memory is handed back to the system.
const RELEASE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `acd-bridge consume` until `shutdown`.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), ConsumerError> {
    let listener = tokio::net::TcpListener::bind(&cfg.consumer.admin_listen)
        .await
        .map_err(|source| ConsumerError::Listen { addr: cfg.consumer.admin_listen.clone(), source })?;
    serve(cfg, listener, shutdown).await
}

/// [`run`] with an admin listener the caller bound.
pub async fn serve(
    cfg: Config,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ConsumerError> {
    let metrics = Registry::default();
    let link = acd_core::link::KafkaLink::new(&metrics);
    let wfm = wfm::WfmClient::new(&cfg.wfm, metrics.clone());
    // The allocator keeps freed memory resident; hand it back now and then (acd_core::memory).
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(RELEASE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = every.tick() => {
                    let _ = tokio::task::spawn_blocking(acd_core::memory::release).await;
                }
            }
        }
    });
    // Forwarding needs only its input and the dead-letter topic; it starts once those are seen
    // to, while the other topics are still being checked or created (creating a partition takes
    // the broker a few milliseconds, so on a first start that is most of the start-up).
    let forwarding_topics = async {
        let specs = [TopicSpec::new(&cfg.topics.agent_state, cfg.kafka.partitions), TopicSpec::dlq(&cfg)];
        let t = std::time::Instant::now();
        let r = acd_core::kafka::ensure(&cfg, &specs).await.map_err(ConsumerError::from);
        tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "agent-state and dead-letter topics checked");
        r
    };
    let state_dir = cfg.state_dir();
    // One store for the process: sled allows one open handle per folder.
    let open_store = async {
        tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            let store = checkpoint::Checkpoints::open(&state_dir);
            tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "checkpoint store opened");
            store
        })
        .await
        .expect("store task")
        .map_err(ConsumerError::from)
    };
    let ((), (), store) = tokio::try_join!(check_details(&cfg, &wfm, &shutdown), forwarding_topics, open_store)?;
    let agents = intervals::load_agent_map(&cfg)?;
    let board = std::sync::Arc::new(std::sync::Mutex::new(status::Board {
        group_id: cfg.consumer.group_id.clone(),
        ..status::Board::default()
    }));
    let dlq = std::sync::Arc::new(deadletter::DeadLetters::new(&cfg, link.clone(), metrics.clone(), shutdown.clone())?);
    let codec = acd_core::kafka::codec(&cfg).await?;
    let shared = Shared {
        codec,
        board: board.clone(),
        metrics: metrics.clone(),
        link: link.clone(),
        dlq: dlq.clone(),
        shutdown: shutdown.clone(),
    };
    let pipeline = forwarding::Pipeline::new(cfg.clone(), wfm.clone(), store.clone(), shared.clone()).await?;
    {
        let board = board.clone();
        link.set_waiting(Box::new(move || waiting(&board.lock().expect("board"))));
    }
    let admin = status::http::spawn(listener, board.clone(), metrics.clone(), link.clone(), shutdown.clone());
    let probe = spawn_link_probe(&cfg, link.clone(), shutdown.clone())?;
    // The interval pipeline and the connection-state consumer, once their topics are there.
    let rest = {
        let (cfg, board, shutdown) = (cfg.clone(), board.clone(), shutdown.clone());
        let iv_wfm = wfm.with_own_connections(&cfg.wfm);
        async move {
            let other =
                [&cfg.topics.contact, &cfg.topics.interval, &cfg.topics.agent_activity, &cfg.topics.connector_status];
            let specs: Vec<TopicSpec<'_>> = other.iter().map(|n| TopicSpec::new(n, cfg.kafka.partitions)).collect();
            let t = std::time::Instant::now();
            acd_core::kafka::ensure(&cfg, &specs).await?;
            tracing::debug!(ms = t.elapsed().as_secs_f64() * 1e3, "interval and connection topics checked");
            let (iv_cfg, iv_shared) = (cfg.clone(), shared.clone());
            let (ready, interval_task) =
                run_on_own_thread(move || intervals::Intervals::new(iv_cfg, iv_wfm, store, agents, iv_shared));
            ready
                .await
                .unwrap_or_else(|_| Err(ConsumerError::Refused("the interval pipeline did not start".into())))?;
            let connections = status::connections::spawn(
                cfg,
                wfm,
                board,
                link,
                shared.codec.clone(),
                shared.metrics.clone(),
                shutdown,
            );
            let result = interval_task.await.unwrap_or(Ok(()));
            let _ = connections.await;
            result
        }
    };
    // Either side ending (shutdown, or an error) ends the other.
    let stop = shutdown.clone();
    let rest = async move {
        let r = rest.await;
        stop.cancel();
        r
    };
    let forward = async {
        let r = pipeline.run().await;
        shutdown.cancel();
        r
    };
    let (result, rest_result) = tokio::join!(forward, rest);
    let _ = admin.await;
    let _ = probe.await;
    result.and(rest_result)
}

/// What waits while Kafka is away, for the outage's reminder lines.
fn waiting(b: &status::Board) -> String {
    let open: usize = b.open_intervals.values().map(|o| o.count).max().unwrap_or(0);
    format!(
        "{} agent states read and not yet delivered, {} open intervals in {} partitions",
        b.agent_states_read.saturating_sub(b.agent_states_delivered + b.agent_states_duplicates),
        open,
        b.interval_partitions
    )
}

/// While the Kafka link is down, asks the cluster for its metadata every second, so the end of
/// an outage is seen (and logged once) even when no record is waiting to show it.
fn spawn_link_probe(
    cfg: &Config,
    link: std::sync::Arc<acd_core::link::KafkaLink>,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, ConsumerError> {
    let client: rdkafka::consumer::BaseConsumer<acd_core::link::LinkContext> = acd_core::kafka::client_config(cfg)?
        .create_with_context(acd_core::link::LinkContext { link: link.clone(), name: "probe" })?;
    let client = std::sync::Arc::new(client);
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
            if !link.is_down() {
                continue;
            }
            let c = client.clone();
            let answered = tokio::task::spawn_blocking(move || {
                use rdkafka::consumer::Consumer;
                c.fetch_metadata(None, std::time::Duration::from_secs(2)).is_ok_and(|m| !m.brokers().is_empty())
            })
            .await
            .unwrap_or(false);
            if answered {
                link.reached();
            }
        }
    }))
}

/// Runs the interval pipeline on a thread and runtime of its own: its work is CPU-bound in long
/// stretches (a round of records, a recomputation after late events), and on the shared runtime
/// it would hold up agent-state forwarding, whose latency matters. For the same reason the thread
/// runs at a lower scheduling priority (nice +10), as do the threads it starts: its Kafka
/// client's and its runtime's. Interval reports are due only after `interval.grace_seconds`, so
/// when the two compete for a busy machine, real-time agent states go first; on a machine with
/// CPU to spare the priority changes nothing. The first receiver answers once the pipeline is
/// built (or failed to be), the second when it ends.
#[allow(clippy::type_complexity)]
fn run_on_own_thread<F>(
    make: impl FnOnce() -> F + Send + 'static,
) -> (
    tokio::sync::oneshot::Receiver<Result<(), ConsumerError>>,
    tokio::sync::oneshot::Receiver<Result<(), ConsumerError>>,
)
where
    F: std::future::Future<Output = Result<intervals::Intervals, ConsumerError>>,
{
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("intervals".into())
        .spawn(move || {
            lower_priority();
            // Two workers of its own drive its HTTP connections and background writes while
            // this thread decodes and aggregates.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("intervals-io")
                .enable_all()
                .build()
                .expect("interval runtime");
            let result = rt.block_on(async move {
                let pipeline = match make().await {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let _ = ready_tx.send(Ok(()));
                pipeline.run().await
            });
            let _ = tx.send(result);
        })
        .expect("interval thread");
    (ready_rx, rx)
}

/// Nice +10 for the calling thread and the threads it goes on to start (Linux keeps the nice
/// value per thread and passes it on to new threads). Elsewhere, or if refused, nothing changes.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, tid, 10) != 0 {
            tracing::debug!("could not lower the interval pipeline's priority");
        }
    }
}

/// Refuses to run when the WFM counts intervals of another length. A WFM that cannot be reached
/// is waited for (with backoff), since that is an outage, not a misconfiguration.
async fn check_details(cfg: &Config, wfm: &wfm::WfmClient, shutdown: &CancellationToken) -> Result<(), ConsumerError> {
    let mut schedule =
        wfm::retry::Schedule::new(std::time::Duration::from_millis(200), std::time::Duration::from_secs(30));
    loop {
        match wfm.details().await {
            Ok(d) if d.interval_minutes != cfg.interval.minutes => {
                return Err(ConsumerError::Refused(format!(
                    "configuration: interval.minutes: is {}, but the WFM counts {}-minute intervals (details of acdId {:?})",
                    cfg.interval.minutes, d.interval_minutes, d.acd_id
                )));
            }
            Ok(d) => {
                tracing::info!(acd_id = %d.acd_id, interval_minutes = d.interval_minutes, paradigm = %d.paradigm, "WFM details checked");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "WFM details not available yet; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(schedule.next(None)) => {}
                }
            }
        }
    }
}
