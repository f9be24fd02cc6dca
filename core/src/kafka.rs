//! The Kafka adapter: librdkafka clients built from the configuration, topic creation, and the
//! Avro codec wired to a schema registry when `kafka.schema_registry_url` is set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use acd_schemas::{Codec, Framing, Stream};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;

use crate::config::Config;

/// What can go wrong talking to Kafka or the schema registry.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    #[error("creating topic {topic}: {message}")]
    CreateTopic { topic: String, message: String },
    #[error("schema registry: {0}")]
    Registry(String),
    #[error("kafka: cannot use the brokers {brokers}: {error}; the connection failed with: {cause}")]
    Unreachable { brokers: String, error: String, cause: String },
}

/// A client context that keeps librdkafka's first warnings and errors, so that a failure at
/// start can say why (a refused SASL login, an untrusted certificate) and not only that it
/// failed.
#[derive(Default)]
pub struct LastWords {
    said: std::sync::Mutex<Vec<String>>,
}

impl LastWords {
    /// The most telling thing librdkafka said: the first that is more than "all brokers down".
    pub fn last(&self) -> Option<String> {
        let said = self.said.lock().ok()?;
        said.iter().find(|m| !m.contains("brokers are down") && !m.contains("AllBrokersDown")).or(said.first()).cloned()
    }

    fn keep(&self, m: String) {
        if let Ok(mut said) = self.said.lock() {
            if said.len() < 16 {
                said.push(m);
            }
        }
    }
}

impl rdkafka::ClientContext for LastWords {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        if (level as i32) <= (rdkafka::config::RDKafkaLogLevel::Warning as i32) {
            self.keep(format!("{fac}: {message}"));
        }
        tracing::debug!(target: "librdkafka", facility = fac, "{message}");
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.keep(format!("{error}: {reason}"));
    }
}

impl rdkafka::producer::ProducerContext for LastWords {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// The base client configuration: brokers and every passed-through property.
pub fn client_config(cfg: &Config) -> Result<ClientConfig, KafkaError> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &cfg.kafka.brokers);
    for (k, v) in cfg.kafka_properties()? {
        cc.set(k, v);
    }
    Ok(cc)
}

/// An idempotent producer (`acks=all`), tuned for many small records.
pub fn producer(cfg: &Config) -> Result<FutureProducer, KafkaError> {
    Ok(producer_config(cfg)?.create()?)
}

/// Sets each of `defaults` that the operator's `kafka.properties` (`given`) does not set.
pub fn set_defaults<'a>(
    cc: &mut ClientConfig,
    given: &std::collections::BTreeMap<String, String>,
    defaults: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    for (key, value) in defaults {
        if !given.contains_key(key) {
            cc.set(key, value);
        }
    }
}

/// The producer's settings, each overridden by the same key in `kafka.properties`.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "1"),
    ("compression.type", "lz4"),
    ("batch.num.messages", "10000"),
    ("queue.buffering.max.messages", "1000000"),
    // Give up on a record after 5 minutes; ingest answers 503 long before.
    ("message.timeout.ms", "300000"),
];

/// The configuration of [`producer`], for a producer with its own context.
pub fn producer_config(cfg: &Config) -> Result<ClientConfig, KafkaError> {
    let mut cc = client_config(cfg)?;
    set_defaults(&mut cc, &cfg.kafka_properties()?, PRODUCER_DEFAULTS.iter().copied());
    Ok(cc)
}

/// Creates every topic of `names` that is missing, with `kafka.partitions` and
/// `kafka.replication_factor`. Existing topics are left as they are.
pub async fn ensure_topics(cfg: &Config, names: &[&str]) -> Result<(), KafkaError> {
    let specs: Vec<TopicSpec<'_>> = names.iter().map(|n| TopicSpec::new(n, cfg.kafka.partitions)).collect();
    ensure(cfg, &specs).await
}

/// The largest dead letter: a whole WFM request body (requests are kept under 4 MiB) with room.
pub const DLQ_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Creates the missing topics of `names` with `partitions` partitions.
pub async fn ensure_topics_with_partitions(cfg: &Config, names: &[&str], partitions: i32) -> Result<(), KafkaError> {
    let specs: Vec<TopicSpec<'_>> = names.iter().map(|n| TopicSpec::new(n, partitions)).collect();
    ensure(cfg, &specs).await
}

/// A topic to have: created with these partitions and settings when it is missing.
pub struct TopicSpec<'a> {
    pub name: &'a str,
    pub partitions: i32,
    pub settings: Vec<(&'static str, String)>,
}

impl<'a> TopicSpec<'a> {
    pub fn new(name: &'a str, partitions: i32) -> Self {
        TopicSpec { name, partitions, settings: Vec::new() }
    }

    /// The dead-letter topic: one partition, so that an offset names one dead letter, and room
    /// for a whole request body.
    pub fn dlq(cfg: &'a Config) -> Self {
        TopicSpec {
            name: &cfg.topics.dlq,
            partitions: 1,
            settings: vec![("max.message.bytes", DLQ_MAX_BYTES.to_string())],
        }
    }
}

/// Creates the topics of `specs` that are missing. Only the named topics are asked about (a
/// cluster may hold thousands), all at once, with topic auto-creation off for the question; an
/// admin client is made only when something is missing.
pub async fn ensure(cfg: &Config, specs: &[TopicSpec<'_>]) -> Result<(), KafkaError> {
    let mut cc = client_config(cfg)?;
    cc.set("allow.auto.create.topics", "false");
    // Ask first: clusters that forbid CreateTopics still work when the topics exist. The
    // questions go out together, from a plain client (an admin client's took 100 ms longer).
    let asker: Arc<rdkafka::producer::BaseProducer<LastWords>> =
        Arc::new(cc.create_with_context(LastWords::default())?);
    let asks: Vec<_> = specs
        .iter()
        .map(|spec| {
            let (a, name) = (asker.clone(), spec.name.to_string());
            tokio::task::spawn_blocking(move || {
                let m =
                    rdkafka::producer::Producer::client(&*a).fetch_metadata(Some(&name), Duration::from_secs(30))?;
                let found =
                    m.topics().iter().any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty());
                Ok::<_, rdkafka::error::KafkaError>(found.then_some(name))
            })
        })
        .collect();
    let mut existing: Vec<String> = Vec::new();
    for ask in asks {
        match ask.await.expect("metadata task") {
            Ok(found) => existing.extend(found),
            Err(error) => {
                // Serve the queued error callbacks: they carry the reason.
                asker.poll(Duration::from_millis(200));
                return Err(match rdkafka::producer::Producer::context(&*asker).last() {
                    Some(cause) => {
                        KafkaError::Unreachable { brokers: cfg.kafka.brokers.clone(), error: error.to_string(), cause }
                    }
                    None => KafkaError::Kafka(error),
                });
            }
        }
    }
    let missing: Vec<&TopicSpec<'_>> = specs.iter().filter(|s| !existing.iter().any(|e| e == s.name)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    tracing::info!(topics = ?missing.iter().map(|s| s.name).collect::<Vec<_>>(), "creating missing topics");
    let admin: AdminClient<DefaultClientContext> = cc.create()?;
    let topics: Vec<NewTopic> = missing
        .iter()
        .map(|s| {
            s.settings.iter().fold(
                NewTopic::new(s.name, s.partitions, TopicReplication::Fixed(cfg.kafka.replication_factor)),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&topics, &opts).await? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(KafkaError::CreateTopic { topic, message: code.to_string() }),
        }
    }
    Ok(())
}

/// The codec for this configuration: single-object encoding, or Confluent wire format with the
/// current schemas registered under `<topic>-value`.
pub async fn codec(cfg: &Config) -> Result<Arc<Codec>, KafkaError> {
    let url = cfg.kafka.schema_registry_url.trim_end_matches('/');
    if url.is_empty() {
        return Ok(Arc::new(Codec::new(Framing::SingleObject)));
    }
    let registry = Registry::new(url);
    let topics = cfg.topics.inputs();
    let mut ids = HashMap::new();
    let mut known = Vec::new();
    for (stream, topic) in Stream::ALL.into_iter().zip(topics) {
        let id = registry.register(&format!("{topic}-value"), stream.schema_text()).await?;
        ids.insert(stream, id);
        known.push((id, stream.schema_text()));
    }
    let codec = Codec::new(Framing::Confluent(ids));
    for (id, text) in known {
        codec.learn_schema_id(id, text).map_err(|e| KafkaError::Registry(e.to_string()))?;
    }
    Ok(Arc::new(codec))
}

/// A Confluent-compatible schema registry.
#[derive(Clone)]
pub struct Registry {
    url: String,
    http: reqwest::Client,
}

impl Registry {
    /// A client for the registry at `url`.
    pub fn new(url: &str) -> Registry {
        Registry {
            url: url.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("http client"),
        }
    }

    /// Registers (or finds) `schema` under `subject`, returning its id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, KafkaError> {
        let body = serde_json::json!({ "schema": schema });
        let resp = self
            .http
            .post(format!("{}/subjects/{subject}/versions", self.url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&body)
            .send()
            .await
            .map_err(|e| KafkaError::Registry(e.to_string()))?;
        let status = resp.status();
        let json: serde_json::Value = resp.json().await.map_err(|e| KafkaError::Registry(e.to_string()))?;
        json.get("id")
            .and_then(serde_json::Value::as_u64)
            .map(|id| id as u32)
            .ok_or_else(|| KafkaError::Registry(format!("registering {subject}: {status} {json}")))
    }

    /// Fetches schema `id` and teaches it to `codec`.
    pub async fn learn(&self, codec: &Codec, id: u32) -> Result<(), KafkaError> {
        let resp = self
            .http
            .get(format!("{}/schemas/ids/{id}", self.url))
            .send()
            .await
            .map_err(|e| KafkaError::Registry(e.to_string()))?;
        let json: serde_json::Value = resp.json().await.map_err(|e| KafkaError::Registry(e.to_string()))?;
        let text = json
            .get("schema")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| KafkaError::Registry(format!("schema id {id}: {json}")))?;
        codec.learn_schema_id(id, text).map_err(|e| KafkaError::Registry(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_settings_have_defaults_that_kafka_properties_override() {
        let plain = Config::from_toml_str("", Vec::new()).unwrap();
        let cc = producer_config(&plain).unwrap();
        assert_eq!(cc.get("linger.ms"), Some("1"));
        assert_eq!(cc.get("acks"), Some("all"));

        let text = "[kafka]\nproperties = { \"linger.ms\" = \"20\", \"compression.type\" = \"zstd\" }\n";
        let tuned = Config::from_toml_str(text, Vec::new()).unwrap();
        let cc = producer_config(&tuned).unwrap();
        assert_eq!(cc.get("linger.ms"), Some("20"));
        assert_eq!(cc.get("compression.type"), Some("zstd"));
        assert_eq!(cc.get("enable.idempotence"), Some("true"), "the others keep their defaults");
    }
}
