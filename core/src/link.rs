//! The Kafka connection as an operator sees it: one log line when it is lost, then at most one
//! every [`REMIND_EVERY`] while it stays lost (saying what is waiting), and one when it is back.
//! librdkafka's own errors and every pipeline of a process report here instead of logging each
//! failure, so a broker outage is a handful of lines, not several a second. The state is on
//! `/status` ([`KafkaLink::view`]) and in the metrics (`acd_kafka_connected`,
//! `acd_kafka_errors_total`), both read from the one place that logs it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;
use serde::Serialize;

use crate::metrics::Registry;

/// How often a lasting outage is logged again.
pub const REMIND_EVERY: Duration = Duration::from_secs(30);

/// A failure reported this soon after Kafka was reached again is, most often, a client's report
/// from before the reconnection arriving late: it does not start a new logged outage at once. It
/// still marks the link down, and an outage that lasts is logged by the reminder.
pub const SETTLE_AFTER_REACHED: Duration = Duration::from_secs(10);

/// What waits while Kafka cannot be reached, for the log line (set by the process that owns it).
pub type Waiting = Box<dyn Fn() -> String + Send + Sync>;

/// The connection state shared by a process's Kafka clients.
pub struct KafkaLink {
    state: Mutex<State>,
    /// 1 while connected, 0 while not.
    connected: Arc<AtomicI64>,
    errors: Arc<AtomicU64>,
    waiting: Mutex<Option<Waiting>>,
}

#[derive(Default)]
struct State {
    /// When the outage began; `None` while connected.
    down_since: Option<Instant>,
    down_since_utc: Option<String>,
    /// Failures reported during this outage.
    failures: u64,
    last_error: String,
    /// When the outage was last logged.
    logged: Option<Instant>,
    /// The outage began within [`SETTLE_AFTER_REACHED`] of the last one's end: not logged as a
    /// new one.
    quiet: bool,
    /// When Kafka was last reached again after an outage.
    reached_at: Option<Instant>,
}

/// The state for `/status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LinkView {
    /// CONNECTED or DISCONNECTED.
    pub state: String,
    /// When the current outage began.
    pub since_utc: Option<String>,
    /// The latest failure of the current outage.
    pub last_error: Option<String>,
}

impl KafkaLink {
    /// A link, connected until something says otherwise.
    pub fn new(metrics: &Registry) -> Arc<KafkaLink> {
        let connected =
            metrics.gauge("acd_kafka_connected", "1 while the Kafka cluster answers, 0 during an outage", &[]);
        connected.store(1, Ordering::Relaxed);
        Arc::new(KafkaLink {
            state: Mutex::new(State::default()),
            connected,
            errors: metrics.counter("acd_kafka_errors_total", "Kafka client failures (connection, timeouts)", &[]),
            waiting: Mutex::new(None),
        })
    }

    /// Sets what the reminder lines say is waiting.
    pub fn set_waiting(&self, waiting: Waiting) {
        *self.waiting.lock().expect("link") = Some(waiting);
    }

    /// Reports a failure to reach Kafka: logged when it starts an outage, else counted and
    /// remembered for the next reminder.
    pub fn failed(&self, source: &str, error: &dyn std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().expect("link");
        s.failures += 1;
        s.last_error = format!("{source}: {error}");
        match s.down_since {
            None => {
                s.down_since = Some(Instant::now());
                s.down_since_utc = Some(acd_schemas::time::format_millis(acd_schemas::time::now_millis()));
                s.logged = Some(Instant::now());
                self.connected.store(0, Ordering::Relaxed);
                s.quiet = s.reached_at.is_some_and(|r| r.elapsed() < SETTLE_AFTER_REACHED);
                if !s.quiet {
                    tracing::warn!(error = %s.last_error, "Kafka unreachable; waiting for it (one line every 30 s until it is back)");
                }
            }
            Some(since) if s.logged.is_none_or(|l| l.elapsed() >= REMIND_EVERY) => {
                s.logged = Some(Instant::now());
                // Logged now: its end will be too.
                s.quiet = false;
                let waiting = self.waiting.lock().expect("link").as_ref().map(|w| w()).unwrap_or_default();
                tracing::warn!(
                    down_for_s = since.elapsed().as_secs(),
                    failures = s.failures,
                    last_error = %s.last_error,
                    waiting = %waiting,
                    "Kafka still unreachable"
                );
            }
            Some(_) => {}
        }
    }

    /// Reports that Kafka answered: ends an outage, with one line.
    pub fn reached(&self) {
        let mut s = self.state.lock().expect("link");
        if let Some(since) = s.down_since.take() {
            self.connected.store(1, Ordering::Relaxed);
            // A quiet outage that was never logged ends without a line too.
            if !s.quiet {
                tracing::info!(down_for_s = since.elapsed().as_secs(), failures = s.failures, "Kafka reachable again");
            }
            *s = State { reached_at: Some(Instant::now()), ..State::default() };
        }
    }

    /// True during an outage.
    pub fn is_down(&self) -> bool {
        self.state.lock().expect("link").down_since.is_some()
    }

    /// The state for `/status`.
    pub fn view(&self) -> LinkView {
        let s = self.state.lock().expect("link");
        match s.down_since {
            None => LinkView { state: "CONNECTED".into(), since_utc: None, last_error: None },
            Some(_) => LinkView {
                state: "DISCONNECTED".into(),
                since_utc: s.down_since_utc.clone(),
                last_error: Some(s.last_error.clone()),
            },
        }
    }

    /// Routes an error of a Kafka client: connection failures to the link, anything else to the
    /// log as librdkafka's own error.
    pub fn client_error(&self, source: &str, error: &KafkaError) {
        if is_connection_error(error) {
            self.failed(source, error);
        } else {
            tracing::error!(source, error = %error, "kafka client error");
        }
    }
}

/// True for errors that say the cluster (or a broker of it) cannot be reached right now.
pub fn is_connection_error(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            BrokerTransportFailure
                | AllBrokersDown
                | Resolve
                | OperationTimedOut
                | RequestTimedOut
                | MessageTimedOut
                | NetworkException
                | CoordinatorNotAvailable
                | NotCoordinator
                | BrokerNotAvailable
                | LeaderNotAvailable
                | NotLeaderForPartition
                | CoordinatorLoadInProgress
                | TimedOutQueue
        )
    )
}

/// A librdkafka client context that reports to a link: connection failures logged by
/// librdkafka (its `FAIL` lines, its error callback) become link failures, everything else is
/// logged as rdkafka would.
pub struct LinkContext {
    pub link: Arc<KafkaLink>,
    /// Which client, for the log.
    pub name: &'static str,
}

impl rdkafka::consumer::ConsumerContext for LinkContext {}

impl ClientContext for LinkContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        log_through(&self.link, self.name, level, fac, message)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        error_through(&self.link, self.name, error, reason)
    }
}

/// [`ClientContext::log`] for contexts that report to a link.
pub fn log_through(link: &KafkaLink, name: &str, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel::*;
    // Lines that say a broker cannot be reached (or stopped answering) start an outage; during
    // one, every warning is part of it and goes into the reminder, not the log.
    let lost = matches!(fac, "FAIL" | "REQTMOUT" | "SESSTMOUT" | "ERROR");
    match level {
        Emerg | Alert | Critical | Error | Warning if lost || link.is_down() => link.failed(name, &message),
        Emerg | Alert | Critical | Error => tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}"),
        Warning => tracing::warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
        Notice => tracing::info!(target: "librdkafka", "librdkafka: {fac} {message}"),
        Info => tracing::info!(target: "librdkafka", "librdkafka: {fac} {message}"),
        Debug => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
    }
}

/// [`ClientContext::error`] for contexts that report to a link.
pub fn error_through(link: &KafkaLink, name: &str, error: KafkaError, reason: &str) {
    if is_connection_error(&error) {
        link.failed(name, &reason);
    } else {
        tracing::error!(client = name, error = %error, "librdkafka: {reason}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_is_one_state_change_with_its_failures_counted() {
        let metrics = Registry::default();
        let link = KafkaLink::new(&metrics);
        assert_eq!(link.view().state, "CONNECTED");
        let refused = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        assert!(is_connection_error(&refused));
        assert!(!is_connection_error(&KafkaError::Global(RDKafkaErrorCode::TopicAuthorizationFailed)));
        for _ in 0..50 {
            link.client_error("intervals", &refused);
        }
        let v = link.view();
        assert_eq!(v.state, "DISCONNECTED");
        assert!(v.since_utc.is_some() && v.last_error.unwrap().contains("intervals"));
        assert!(metrics.render().contains("acd_kafka_connected 0"), "{}", metrics.render());
        assert!(metrics.render().contains("acd_kafka_errors_total 50"));
        link.reached();
        assert!(!link.is_down());
        assert_eq!(link.view(), LinkView { state: "CONNECTED".into(), since_utc: None, last_error: None });
        assert!(metrics.render().contains("acd_kafka_connected 1"));
        // A client's stale report just after the reconnection: down again, but not a new outage
        // in the log.
        link.client_error("agent-states", &refused);
        assert!(link.is_down() && link.state.lock().unwrap().quiet);
        assert_eq!(link.view().state, "DISCONNECTED");
        link.reached();
        assert!(!link.is_down());
    }
}
