//! Encodes records and publishes them as one unit of acknowledgement: [`Publisher::publish`]
//! returns only when Kafka acknowledged every record, or fails when any was refused or the
//! deadline passed. A failed publish may have written some records; the client retries and the
//! consumer removes the duplicates.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_core::config::Config;
use acd_core::link::KafkaLink;
use acd_core::metrics::Registry;
use acd_schemas::{ingest::Parsed, Codec, Stream};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use tokio::sync::Notify;

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

/// One encoded record (its topic is its stream's).
pub struct Outgoing {
    pub key: String,
    pub value: Vec<u8>,
}

/// The acknowledgements of one publish: every record carries the same `Arc` as its delivery
/// opaque, so a request of 500 records costs one allocation to wait on, not one future each.
pub struct Acks {
    /// Records not yet acknowledged or refused.
    left: AtomicUsize,
    /// The first refusal.
    refused: Mutex<Option<String>>,
    /// Woken when the last record is acknowledged or one is refused.
    settled: Notify,
}

impl Acks {
    fn new(records: usize) -> Acks {
        Acks { left: AtomicUsize::new(records), refused: Mutex::new(None), settled: Notify::new() }
    }

    /// One record's delivery report: acknowledged (`None`) or refused.
    fn report(&self, refused: Option<String>) {
        if let Some(e) = refused {
            self.refused.lock().expect("refusal").get_or_insert(e);
            self.settled.notify_one();
        }
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settled.notify_one();
        }
    }

    /// Resolves once every record is acknowledged (`Ok`) or one was refused (`Err`).
    async fn wait(&self) -> Result<(), String> {
        loop {
            if let Some(e) = self.refused.lock().expect("refusal").clone() {
                return Err(e);
            }
            if self.left.load(Ordering::Acquire) == 0 {
                return Ok(());
            }
            // A wake-up between the checks and here is kept by `Notify` as a permit.
            self.settled.notified().await;
        }
    }
}

/// Routes each delivery report to the [`Acks`] of its publish, and librdkafka's connection
/// failures to the process's [`KafkaLink`] (one log line per outage, not one per retry).
pub struct Deliveries {
    link: Arc<KafkaLink>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        acd_core::link::log_through(&self.link, "producer", level, fac, message)
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        acd_core::link::error_through(&self.link, "producer", error, reason)
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Arc<Acks>;

    fn delivery(&self, result: &DeliveryResult<'_>, acks: Arc<Acks>) {
        acks.report(result.as_ref().err().map(|(e, _)| e.to_string()));
    }
}

/// The librdkafka producer of a [`Publisher`]; its own thread serves the delivery reports.
pub type KafkaProducer = ThreadedProducer<Deliveries>;

/// The producer's one way to Kafka.
pub struct Publisher {
    producer: Arc<KafkaProducer>,
    codec: Arc<Codec>,
    topics: acd_core::config::Topics,
    /// Records acknowledged, by stream, for `/metrics`.
    published: [Arc<AtomicU64>; 5],
    /// The process's metrics, for the connectors publishing through it.
    metrics: Registry,
}

impl Publisher {
    /// An idempotent producer and the codec for `cfg`.
    pub async fn new(
        cfg: &Config,
        metrics: Registry,
        link: Arc<KafkaLink>,
    ) -> Result<Publisher, acd_core::kafka::KafkaError> {
        let producer = Arc::new(acd_core::kafka::producer_config(cfg)?.create_with_context(Deliveries { link })?);
        let codec = acd_core::kafka::codec(cfg).await?;
        let topics = cfg.topics.clone();
        let published = Stream::ALL.map(|s| {
            metrics.counter("acd_producer_records_total", "Records acknowledged by Kafka", &[("stream", s.name())])
        });
        Ok(Publisher { producer, codec, topics, published, metrics })
    }

    /// The process's metrics.
    pub fn metrics(&self) -> &Registry {
        &self.metrics
    }

    /// The Kafka connection state its client reports to.
    pub fn link(&self) -> &Arc<KafkaLink> {
        &self.producer.context().link
    }

    /// The librdkafka client, for readiness probes.
    pub fn producer(&self) -> &KafkaProducer {
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
            let out = items
                .iter()
                .map(|r| Ok(Outgoing { key: key(r), value: p.codec.encode(stream, r)? }))
                .collect::<Result<Vec<_>, PublishError>>()?;
            Ok((stream, out))
        }
        match parsed {
            Parsed::AgentStates(v) => {
                let out =
                    v.iter().map(|r| Outgoing { key: r.key(), value: self.codec.encode_agent_state(r) }).collect();
                Ok((Stream::AgentState, out))
            }
            Parsed::Contacts(v) => {
                let out = v.iter().map(|r| Outgoing { key: r.key(), value: self.codec.encode_contact(r) }).collect();
                Ok((Stream::Contact, out))
            }
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
        let topic = self.topic(stream);
        let acks = Arc::new(Acks::new(n));
        for r in &records {
            let mut rec = BaseRecord::with_opaque_to(topic, acks.clone()).key(&r.key).payload(&r.value);
            loop {
                match self.producer.send(rec) {
                    Ok(()) => break,
                    Err((rdkafka::error::KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: let librdkafka drain it, then try again.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        rec = back;
                    }
                    Err((e, _)) => return Err(PublishError::Kafka(e.to_string())),
                }
            }
        }
        tokio::time::timeout(deadline, acks.wait())
            .await
            .map_err(|_| PublishError::Timeout(deadline))?
            .map_err(PublishError::Kafka)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_publish_settles_on_its_last_ack_or_its_first_refusal() {
        // Every ack, from another thread, some before the wait starts.
        let acks = Arc::new(Acks::new(500));
        for _ in 0..100 {
            acks.report(None);
        }
        let reporter = {
            let acks = acks.clone();
            std::thread::spawn(move || (0..400).for_each(|_| acks.report(None)))
        };
        tokio::time::timeout(Duration::from_secs(10), acks.wait()).await.unwrap().unwrap();
        reporter.join().unwrap();

        // One ack short: still waiting.
        let acks = Acks::new(3);
        acks.report(None);
        acks.report(None);
        assert!(tokio::time::timeout(Duration::from_millis(50), acks.wait()).await.is_err());

        // The first refusal ends the wait at once and is the one reported.
        let acks = Acks::new(3);
        acks.report(Some("Broker: Message size too large".into()));
        acks.report(Some("a later one".into()));
        assert_eq!(acks.wait().await, Err("Broker: Message size too large".into()));
    }
}
