//! What both pipelines share about being a consumer-group member: counting rebalances, so a round
//! can tell it was overtaken by one, and waiting with the partitions paused while still polling,
//! so the group keeps the member however long a retry waits; and taking what is already fetched.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::ClientContext;
use tokio_util::sync::CancellationToken;

/// Counts revocations (the eager protocol revokes every partition on each rebalance).
pub struct Ctx {
    pub generation: Arc<AtomicU64>,
    /// Which pipeline, for the log.
    pub pipeline: &'static str,
}

impl ClientContext for Ctx {}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.generation.fetch_add(1, Ordering::SeqCst);
            tracing::info!(pipeline = self.pipeline, partitions = tpl.count(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(pipeline = self.pipeline, partitions = tpl.count(), "partitions assigned");
        }
    }
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

/// Hands `take` up to `room` records that librdkafka has already fetched, without waiting and
/// without a turn through the caller's `select!` per record; stops at the first that is not ready.
pub fn take_ready<'c>(
    consumer: &'c StreamConsumer<Ctx>,
    room: usize,
    pipeline: &str,
    mut take: impl FnMut(BorrowedMessage<'c>),
) {
    for _ in 0..room {
        match consumer.recv().now_or_never() {
            Some(Ok(m)) => take(m),
            Some(Err(e)) => {
                tracing::warn!(pipeline, error = %e, "kafka consumer error");
                return;
            }
            None => return,
        }
    }
}
