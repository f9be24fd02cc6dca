//! One retrying send, shared by every pipeline: post a body until the WFM takes it, refuses it,
//! or the caller's wait is cut short (rebalance, shutdown). How to wait (pause the partitions and
//! keep polling) is the caller's [`Waiter`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use acd_schemas::time::{format_millis, now_millis};

use crate::deadletter::{DeadLetter, Kind, Reason};
use crate::wfm::classify::{classify, Outcome};
use crate::wfm::retry::Schedule;
use crate::wfm::{truncate, Answer, WfmClient};

/// How a pipeline waits between attempts.
pub trait Waiter {
    /// Waits `wait`, keeping the consumer in its group; false when the round must be abandoned.
    fn wait(&mut self, wait: Duration) -> impl std::future::Future<Output = bool>;
    /// Called once the call was answered for good (resume paused partitions).
    fn settled(&mut self);
}

/// The outcome of delivering one request.
pub enum Delivery {
    Done,
    /// Refused (or retries ran out while other calls succeeded): for the dead-letter topic.
    DeadLetter(DeadLetter),
    /// A rebalance or shutdown overtook the round.
    Abandoned,
}

/// Posts `body` to `path` until it is settled.
pub async fn deliver(
    wfm: &WfmClient,
    max_attempts: u32,
    path: &str,
    body: &[u8],
    kind: Kind,
    waiter: &mut impl Waiter,
) -> Delivery {
    let mut schedule = Schedule::new(Duration::from_millis(200), Duration::from_secs(30));
    let first = now_millis();
    // When this request first failed: only a call sent after that and answered with success
    // shows the WFM taking others while refusing this one.
    let mut first_failure: Option<i64> = None;
    let mut attempts: u32 = 0;
    loop {
        attempts += 1;
        let answer = wfm.call(reqwest::Method::POST, path, Some(body)).await;
        let outcome = classify(&answer.attempt);
        match outcome {
            Outcome::Success => {
                waiter.settled();
                return Delivery::Done;
            }
            Outcome::Reject => {
                waiter.settled();
                return Delivery::DeadLetter(report_letter(
                    path,
                    body,
                    &answer,
                    Reason::WfmRejected,
                    kind,
                    attempts,
                    first,
                ));
            }
            // A second 401 right after a renewal is retried like any transient failure.
            Outcome::Retry(_) | Outcome::Renew => {
                // An outage (nothing succeeds) never dead-letters: only a record that keeps failing
                // while other calls, sent after its first failure, succeed does.
                let failed_at = *first_failure.get_or_insert_with(now_millis);
                let others_succeed = wfm.last_success.load(Ordering::Relaxed) > failed_at;
                if attempts >= max_attempts && others_succeed {
                    waiter.settled();
                    return Delivery::DeadLetter(report_letter(
                        path,
                        body,
                        &answer,
                        Reason::RetriesExhausted,
                        kind,
                        attempts,
                        first,
                    ));
                }
                let retry_after = match outcome {
                    Outcome::Retry(after) => after,
                    _ => None,
                };
                let wait = schedule.next(retry_after);
                tracing::warn!(path, attempts, status = ?answer.status(), wait_ms = wait.as_millis() as u64, "WFM call failed; retrying");
                if !waiter.wait(wait).await {
                    return Delivery::Abandoned;
                }
            }
        }
    }
}

/// A dead letter for a report the WFM would not take.
pub fn report_letter(
    path: &str,
    body: &[u8],
    answer: &Answer,
    reason: Reason,
    kind: Kind,
    attempts: u32,
    first: i64,
) -> DeadLetter {
    let mut letter = DeadLetter::new(reason, kind, body.to_vec()).header("dlq.endpoint", path);
    if let Some(s) = answer.status() {
        letter = letter.header("dlq.http.status", s.to_string());
    }
    letter
        .header("dlq.error", format!("{:?}", answer.attempt))
        .header("dlq.response.body", truncate(&answer.body, crate::deadletter::MAX_RESPONSE))
        .header("dlq.attempts", attempts.to_string())
        .header("dlq.first.attempt.utc", format_millis(first))
        .header("dlq.last.attempt.utc", format_millis(now_millis()))
}
