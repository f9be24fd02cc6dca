//! The dead-letter topic (docs/kafka.md): one record per failed upload or unusable input
//! record, its value the exact body sent (or the original bytes), headers saying why.
//!
//! A letter is typed ([`Reason`], [`Kind`]) and [`DeadLetters::send`] is the one place that
//! writes it, counts it (`acd_dead_letters_total{reason,kind}`, and the total the status board
//! shows) and logs it, so the log, the metrics and `/status` cannot disagree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_core::config::Config;
use acd_core::link::{KafkaLink, LinkContext};
use acd_core::metrics::Registry;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio_util::sync::CancellationToken;

/// The longest `dlq.error` header.
pub const MAX_ERROR: usize = 1024;
/// The longest `dlq.response.body` header.
pub const MAX_RESPONSE: usize = 4096;

/// What is kept of a value too large for the dead-letter topic.
const MAX_CUT: usize = 512 * 1024;

fn is_too_large(e: &rdkafka::error::KafkaError) -> bool {
    // librdkafka reports a local size refusal with the broker's code.
    matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge))
}

/// Why a record is dead-lettered (`dlq.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The WFM refused the request (400, 403, 404, 409, 413, 422).
    WfmRejected,
    /// `wfm.max_attempts` failures while other calls succeeded.
    RetriesExhausted,
    /// An input record that is not Avro of a known schema.
    Undecodable,
    /// An input record that decodes but breaks the push API's rules.
    Invalid,
    /// An event for an interval beyond `max_lateness_hours`.
    TooLate,
}

impl Reason {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::WfmRejected => "wfm-rejected",
            Reason::RetriesExhausted => "retries-exhausted",
            Reason::Undecodable => "undecodable",
            Reason::Invalid => "invalid",
            Reason::TooLate => "too-late",
        }
    }
}

/// What a dead letter carries (`dlq.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Intraday,
    AgentActivity,
    AgentStates,
    /// An input record, as read from its topic.
    Input,
}

impl Kind {
    /// The header value, and the first part of a report letter's key.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Intraday => "intraday",
            Kind::AgentActivity => "agent-activity",
            Kind::AgentStates => "agent-states",
            Kind::Input => "input",
        }
    }
}

/// A dead letter about to be written.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub reason: Reason,
    pub kind: Kind,
    pub key: String,
    pub value: Vec<u8>,
    /// Headers beyond `dlq.reason` and `dlq.kind`, which are written from the two fields.
    pub headers: Vec<(String, String)>,
}

impl DeadLetter {
    /// A letter of `reason` and `kind` for `value`, its key still to be set.
    pub fn new(reason: Reason, kind: Kind, value: Vec<u8>) -> DeadLetter {
        DeadLetter { reason, kind, key: String::new(), value, headers: Vec::new() }
    }

    /// The value of a header, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Adds a header, cutting `dlq.error` and `dlq.response.body` to their limits.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> DeadLetter {
        let value = value.into();
        let limit = match name {
            "dlq.error" => MAX_ERROR,
            "dlq.response.body" => MAX_RESPONSE,
            _ => usize::MAX,
        };
        let value = acd_core::truncate(&value, limit).to_string();
        self.headers.push((name.to_string(), value));
        self
    }
}

/// A letter for an input record that cannot be used: its original bytes, key and position.
pub fn input_letter<M: rdkafka::message::Message>(m: &M, reason: Reason, error: &str) -> DeadLetter {
    let mut letter = DeadLetter::new(reason, Kind::Input, m.payload().unwrap_or_default().to_vec())
        .header("dlq.error", error)
        .header("dlq.source.topic", m.topic())
        .header("dlq.source.partition", m.partition().to_string())
        .header("dlq.source.offset", m.offset().to_string());
    letter.key = m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default();
    letter
}

/// Writes dead letters. Cheap to share: every pipeline of a process uses one.
pub struct DeadLetters {
    producer: FutureProducer<LinkContext>,
    topic: String,
    /// Where failed writes are reported (the producer's context has it too).
    link: Arc<KafkaLink>,
    metrics: Registry,
    /// Every letter written by this process: the status board's figure.
    total: Arc<AtomicU64>,
    /// A write waits for Kafka until this fires.
    shutdown: CancellationToken,
}

impl DeadLetters {
    /// A producer for `topics.dlq`.
    pub fn new(
        cfg: &Config,
        link: Arc<KafkaLink>,
        metrics: Registry,
        shutdown: CancellationToken,
    ) -> Result<DeadLetters, acd_core::kafka::KafkaError> {
        let mut cc = acd_core::kafka::client_config(cfg)?;
        cc.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("message.max.bytes", acd_core::kafka::DLQ_MAX_BYTES.to_string());
        let producer = cc
            .create_with_context(LinkContext { link: link.clone(), name: "dead letters" })
            .map_err(acd_core::kafka::KafkaError::from)?;
        let total = Arc::default();
        Ok(DeadLetters { producer, topic: cfg.topics.dlq.clone(), link, metrics, total, shutdown })
    }

    /// Every letter this process wrote.
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Writes one, counts it and logs it, waiting for Kafka's acknowledgement and retrying until
    /// it comes: a dead letter is the last copy of what it carries. On shutdown the wait ends
    /// and false is returned: the letter was not written, and the caller must not commit past
    /// the record it is about (it is read and dead-lettered again after the restart). A letter
    /// too large for the topic (one created elsewhere with a smaller `max.message.bytes`) is
    /// written with its value cut, and says so in `dlq.truncated`; reports can be recomputed with
    /// `replay`.
    pub async fn send(&self, letter: &DeadLetter) -> bool {
        let mut value: &[u8] = &letter.value;
        let mut headers_extra: Vec<(String, String)> = Vec::new();
        loop {
            let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len() + headers_extra.len() + 2);
            headers = headers.insert(Header { key: "dlq.reason", value: Some(letter.reason.as_str()) });
            headers = headers.insert(Header { key: "dlq.kind", value: Some(letter.kind.as_str()) });
            for (k, v) in letter.headers.iter().chain(&headers_extra) {
                headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
            }
            let rec = FutureRecord::to(&self.topic).key(&letter.key).payload(value).headers(headers);
            let sent = tokio::select! {
                r = self.producer.send(rec, Duration::from_secs(30)) => r,
                _ = self.shutdown.cancelled() => {
                    tracing::warn!(key = %letter.key, reason = letter.reason.as_str(), "dead letter not written before shutdown; it is written again after the restart");
                    return false;
                }
            };
            match sent {
                Ok(_) => {
                    self.emitted(letter);
                    return true;
                }
                Err((e, _)) if is_too_large(&e) && value.len() > MAX_CUT => {
                    tracing::error!(key = %letter.key, bytes = letter.value.len(), "dead letter too large for the topic; its value is cut");
                    value = &value[..MAX_CUT];
                    headers_extra = vec![("dlq.truncated".into(), letter.value.len().to_string())];
                }
                Err((e, _)) => {
                    self.link.client_error("dead-letter write (retrying)", &e);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = self.shutdown.cancelled() => {}
                    }
                }
            }
        }
    }

    /// The one log line and the counts of a letter written.
    fn emitted(&self, letter: &DeadLetter) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .counter(
                "acd_dead_letters_total",
                "Records written to the dead-letter topic, by reason and kind",
                &[("reason", letter.reason.as_str()), ("kind", letter.kind.as_str())],
            )
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            reason = letter.reason.as_str(),
            kind = letter.kind.as_str(),
            key = %letter.key,
            status = letter.get("dlq.http.status").unwrap_or(""),
            error = letter.get("dlq.error").unwrap_or(""),
            "dead-lettered"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_waiting_for_an_unreachable_kafka_ends_at_shutdown_unwritten() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut cfg = Config::default();
            cfg.kafka.brokers = "127.0.0.1:1".into();
            let metrics = Registry::default();
            let link = KafkaLink::new(&metrics);
            let shutdown = CancellationToken::new();
            let dlq = DeadLetters::new(&cfg, link, metrics.clone(), shutdown.clone()).unwrap();
            let letter = DeadLetter::new(Reason::WfmRejected, Kind::Intraday, b"{}".to_vec());
            let stop = shutdown.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                stop.cancel();
            });
            let written = tokio::time::timeout(Duration::from_secs(60), dlq.send(&letter)).await;
            assert_eq!(written, Ok(false), "shutdown ends the wait, and says the letter was not written");
            assert_eq!(dlq.total(), 0);
            assert!(!metrics.render().contains("acd_dead_letters_total{"), "nothing counted");
        });
    }

    #[test]
    fn reasons_and_kinds_are_the_documented_header_values() {
        let reasons =
            [Reason::WfmRejected, Reason::RetriesExhausted, Reason::Undecodable, Reason::Invalid, Reason::TooLate];
        let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["wfm-rejected", "retries-exhausted", "undecodable", "invalid", "too-late"]);
        let kinds = [Kind::Intraday, Kind::AgentActivity, Kind::AgentStates, Kind::Input];
        let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(names, ["intraday", "agent-activity", "agent-states", "input"]);
    }
}
