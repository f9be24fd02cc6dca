//! Encodes records and publishes them as one unit of acknowledgement: [`Publisher::publish`]
//! returns only when Kafka acknowledged every record, or fails when any was refused or the
//! deadline passed. A failed publish may have written some records; the client retries and the
//! consumer removes the duplicates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use acd_core::config::Config;
use acd_core::metrics::Registry;
use acd_schemas::{ingest::Parsed, Codec, Stream};
use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// Why a batch was not acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("no acknowledgement from Kafka within {0:?}")]
    Timeout(Duration),
    #[error("kafka refused a record: {0}")]
    Kafka(String),
    #[error("encoding: {0}")]
    Encode(#[from] acd_schemas::CodecError),
}

/// One encoded record bound for a topic.
pub struct Outgoing {
    pub topic: String,
    pub key: String,
    pub value: Vec<u8>,
}

/// The producer's one way to Kafka.
pub struct Publisher {
    producer: FutureProducer,
    codec: Arc<Codec>,
    topics: acd_core::config::Topics,
    /// Records acknowledged, by stream, for `/metrics`.
    published: [Arc<AtomicU64>; 5],
}

impl Publisher {
    /// An idempotent producer and the codec for `cfg`.
    pub async fn new(cfg: &Config, metrics: Registry) -> Result<Publisher, acd_core::kafka::KafkaError> {
        let producer = acd_core::kafka::producer(cfg)?;
        let codec = acd_core::kafka::codec(cfg).await?;
        let topics = cfg.topics.clone();
        let published = Stream::ALL.map(|s| {
            metrics.counter("acd_producer_records_total", "Records acknowledged by Kafka", &[("stream", s.name())])
        });
        Ok(Publisher { producer, codec, topics, published })
    }

    /// The librdkafka client, for readiness probes.
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// The topic of a stream.
    pub fn topic(&self, stream: Stream) -> &str {
        match stream {
            Stream::AgentState => &self.topics.agent_state,
            Stream::Contact => &self.topics.contact,
            Stream::Interval => &self.topics.interval,
            Stream::AgentActivity => &self.topics.agent_activity,
            Stream::ConnectorStatus => &self.topics.connector_status,
        }
    }

    /// Encodes every record of a parsed request; nothing is sent when any fails to encode.
    pub fn encode(&self, parsed: &Parsed) -> Result<(Stream, Vec<Outgoing>), PublishError> {
        fn all<T: serde::Serialize>(
            p: &Publisher,
            stream: Stream,
            items: &[T],
            key: impl Fn(&T) -> String,
        ) -> Result<(Stream, Vec<Outgoing>), PublishError> {
            let topic = p.topic(stream).to_string();
            let out = items
                .iter()
                .map(|r| Ok(Outgoing { topic: topic.clone(), key: key(r), value: p.codec.encode(stream, r)? }))
                .collect::<Result<Vec<_>, PublishError>>()?;
            Ok((stream, out))
        }
        match parsed {
            Parsed::AgentStates(v) => {
                let topic = self.topic(Stream::AgentState).to_string();
                let out = v
                    .iter()
                    .map(|r| Outgoing { topic: topic.clone(), key: r.key(), value: self.codec.encode_agent_state(r) })
                    .collect();
                Ok((Stream::AgentState, out))
            }
            Parsed::Contacts(v) => all(self, Stream::Contact, v, |r| r.key()),
            Parsed::IntervalRows(v) => all(self, Stream::Interval, v, |r| r.key()),
            Parsed::AgentActivity(v) => all(self, Stream::AgentActivity, v, |r| r.key()),
        }
    }

    /// Encodes one record of `stream`.
    pub fn encode_one<T: serde::Serialize>(&self, stream: Stream, record: &T) -> Result<Vec<u8>, PublishError> {
        Ok(self.codec.encode(stream, record)?)
    }

    /// Encodes and publishes one parsed request, waiting at most `deadline` for every ack.
    pub async fn publish_parsed(&self, parsed: &Parsed, deadline: Duration) -> Result<usize, PublishError> {
        let (stream, records) = self.encode(parsed)?;
        self.publish(stream, records, deadline).await
    }

    /// Publishes `records`, waiting at most `deadline` for every acknowledgement.
    pub async fn publish(
        &self,
        stream: Stream,
        records: Vec<Outgoing>,
        deadline: Duration,
    ) -> Result<usize, PublishError> {
        let n = records.len();
        let mut pending = Vec::with_capacity(n);
        for r in &records {
            let mut rec = FutureRecord::to(&r.topic).key(&r.key).payload(&r.value);
            loop {
                match self.producer.send_result(rec) {
                    Ok(delivery) => {
                        pending.push(delivery);
                        break;
                    }
                    Err((e, back)) => {
                        if matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ) {
                            // The local queue is full: let librdkafka drain it, then try again.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            rec = back;
                        } else {
                            return Err(PublishError::Kafka(e.to_string()));
                        }
                    }
                }
            }
        }
        let acks =
            tokio::time::timeout(deadline, join_all(pending)).await.map_err(|_| PublishError::Timeout(deadline))?;
        for ack in acks {
            match ack {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(PublishError::Kafka(e.to_string())),
                Err(_) => return Err(PublishError::Kafka("delivery cancelled".into())),
            }
        }
        let idx = Stream::ALL.iter().position(|s| *s == stream).unwrap_or(0);
        self.published[idx].fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Waits (up to 30 s) for everything queued to be delivered.
    pub async fn flush(&self) {
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30))).await;
    }
}
