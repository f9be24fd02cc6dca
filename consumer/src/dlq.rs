//! The dead-letter topic (docs/kafka.md): one record per failed upload or unusable input
//! record, its value the exact body sent (or the original bytes), headers saying why.

use std::time::Duration;

use acd_core::config::Config;
use rdkafka::message::{Header, OwnedHeaders};
use std::sync::Arc;

use acd_core::link::{KafkaLink, LinkContext};
use rdkafka::producer::{FutureProducer, FutureRecord};

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

/// A dead letter about to be written.
#[derive(Debug, Clone, Default)]
pub struct DeadLetter {
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl DeadLetter {
    /// Adds a header, cutting `dlq.error` and `dlq.response.body` to their limits.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> DeadLetter {
        let value = value.into();
        let limit = match name {
            "dlq.error" => MAX_ERROR,
            "dlq.response.body" => MAX_RESPONSE,
            _ => usize::MAX,
        };
        let value = crate::wfm::truncate(&value, limit).to_string();
        self.headers.push((name.to_string(), value));
        self
    }
}

/// Writes dead letters.
pub struct DeadLetters {
    producer: FutureProducer<LinkContext>,
    topic: String,
    /// Where failed writes are reported (the producer's context has it too).
    link: Arc<KafkaLink>,
}

impl DeadLetters {
    /// A producer for `topics.dlq`.
    pub fn new(cfg: &Config, link: Arc<KafkaLink>) -> Result<DeadLetters, acd_core::kafka::KafkaError> {
        let mut cc = acd_core::kafka::client_config(cfg)?;
        cc.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("message.max.bytes", acd_core::kafka::DLQ_MAX_BYTES.to_string());
        let producer = cc
            .create_with_context(LinkContext { link: link.clone(), name: "dead letters" })
            .map_err(acd_core::kafka::KafkaError::from)?;
        Ok(DeadLetters { producer, topic: cfg.topics.dlq.clone(), link })
    }

    /// Writes one and waits for Kafka's acknowledgement, retrying until it comes: a dead letter
    /// is the last copy of what it carries. A letter too large for the topic (one created
    /// elsewhere with a smaller `max.message.bytes`) is written with its value cut, and says so in
    /// `dlq.truncated`; reports can be recomputed with `replay`.
    pub async fn send(&self, letter: &DeadLetter) {
        let mut value: &[u8] = &letter.value;
        let mut headers_extra: Vec<(String, String)> = Vec::new();
        loop {
            let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len() + headers_extra.len());
            for (k, v) in letter.headers.iter().chain(&headers_extra) {
                headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
            }
            let rec = FutureRecord::to(&self.topic).key(&letter.key).payload(value).headers(headers);
            match self.producer.send(rec, Duration::from_secs(30)).await {
                Ok(_) => return,
                Err((e, _)) if is_too_large(&e) && value.len() > MAX_CUT => {
                    tracing::error!(key = %letter.key, bytes = letter.value.len(), "dead letter too large for the topic; its value is cut");
                    value = &value[..MAX_CUT];
                    headers_extra = vec![("dlq.truncated".into(), letter.value.len().to_string())];
                }
                Err((e, _)) => {
                    self.link.client_error("dead-letter write (retrying)", &e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
