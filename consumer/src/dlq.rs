//! The dead-letter topic (CONTRACT section 7): one record per failed upload or unusable input
//! record, its value the exact body sent (or the original bytes), headers saying why.

use std::time::Duration;

use acd_core::config::Config;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The longest `dlq.error` header.
pub const MAX_ERROR: usize = 1024;
/// The longest `dlq.response.body` header.
pub const MAX_RESPONSE: usize = 4096;

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
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    /// A producer for `topics.dlq`.
    pub fn new(cfg: &Config) -> Result<DeadLetters, acd_core::kafka::KafkaError> {
        Ok(DeadLetters { producer: acd_core::kafka::producer(cfg)?, topic: cfg.topics.dlq.clone() })
    }

    /// Writes one and waits for Kafka's acknowledgement, retrying until it comes: a dead letter
    /// is the last copy of what it carries.
    pub async fn send(&self, letter: &DeadLetter) {
        loop {
            let mut headers = OwnedHeaders::new_with_capacity(letter.headers.len());
            for (k, v) in &letter.headers {
                headers = headers.insert(Header { key: k, value: Some(v.as_bytes()) });
            }
            let rec = FutureRecord::to(&self.topic).key(&letter.key).payload(&letter.value).headers(headers);
            match self.producer.send(rec, Duration::from_secs(30)).await {
                Ok(_) => return,
                Err((e, _)) => {
                    tracing::warn!(error = %e, "dead-letter write failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}
