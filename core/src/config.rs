//! The configuration of docs/configuration.md: one TOML file, every key overridable by
//! `ACD_BRIDGE__<SECTION>__<KEY>`, unknown keys refused with their path, secrets from files.
//!
//! Secrets are [`Secret`]s: they print as `***` in `Debug`, so no log line can carry them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A configuration error; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.to_string(), message: message.into() }
}

/// A secret string: never printed.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub kafka: KafkaConfig,
    pub topics: Topics,
    pub ingest: IngestConfig,
    pub consumer: ConsumerConfig,
    pub interval: IntervalConfig,
    pub sla: SlaConfig,
    pub wfm: WfmConfig,
    pub agents: AgentsConfig,
    pub connectors: Connectors,
}

/// `[kafka]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    pub brokers: String,
    /// librdkafka properties passed through (security.protocol, sasl.*, ssl.*).
    pub properties: BTreeMap<String, toml::Value>,
    /// A librdkafka properties file (`key=value` lines), read at start; its values are secret.
    pub properties_file: String,
    pub schema_registry_url: String,
    pub partitions: i32,
    pub replication_factor: i32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            properties: BTreeMap::new(),
            properties_file: String::new(),
            schema_registry_url: String::new(),
            partitions: 6,
            replication_factor: 1,
        }
    }
}

/// `[topics]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Topics {
    pub agent_state: String,
    pub contact: String,
    pub interval: String,
    pub agent_activity: String,
    pub connector_status: String,
    pub dlq: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            agent_state: "acd.agent-state.v1".into(),
            contact: "acd.contact.v1".into(),
            interval: "acd.interval.v1".into(),
            agent_activity: "acd.agent-activity.v1".into(),
            connector_status: "acd.connector-status.v1".into(),
            dlq: "wfm.dlq.v1".into(),
        }
    }
}

impl Topics {
    /// The input topics, in stream order.
    pub fn inputs(&self) -> [&str; 5] {
        [&self.agent_state, &self.contact, &self.interval, &self.agent_activity, &self.connector_status]
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub listen: String,
    pub ack_timeout_ms: u64,
    pub tokens: Vec<Secret>,
    /// One token per line; added to `tokens`.
    pub tokens_file: String,
    pub max_body_bytes: usize,
    /// PEM certificate chain; with `tls_key_file`, the API is served over TLS only.
    pub tls_cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.
    pub tls_key_file: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            listen: "127.0.0.1:8080".into(),
            ack_timeout_ms: 15_000,
            tokens: Vec::new(),
            tokens_file: String::new(),
            max_body_bytes: 10 * 1024 * 1024,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
        }
    }
}

/// `[consumer]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsumerConfig {
    pub group_id: String,
    pub state_dir: String,
    pub admin_listen: String,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: "acd-bridge".into(),
            state_dir: "./state".into(),
            admin_listen: "127.0.0.1:9400".into(),
        }
    }
}

/// `[interval]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntervalConfig {
    pub minutes: u32,
    pub grace_seconds: u64,
    pub idle_close_seconds: u64,
    pub max_lateness_hours: u64,
    pub zero_fill_days: u64,
}

impl Default for IntervalConfig {
    fn default() -> Self {
        IntervalConfig {
            minutes: 15,
            grace_seconds: 120,
            idle_close_seconds: 30,
            max_lateness_hours: 48,
            zero_fill_days: 7,
        }
    }
}

/// `[sla]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    pub threshold_seconds: f64,
    /// Parsed when the file is read: an unknown formula is a configuration error naming the key.
    pub formula: acd_interval::sla::Formula,
}

impl Default for SlaConfig {
    fn default() -> Self {
        SlaConfig { threshold_seconds: 20.0, formula: acd_interval::sla::Formula::default() }
    }
}

/// `[wfm]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WfmConfig {
    pub base_url: String,
    pub tenant: String,
    pub access_key_id: String,
    pub access_key_secret: Secret,
    /// Read at start into `access_key_secret`.
    pub access_key_secret_file: String,
    pub acd_type: String,
    pub report_version: String,
    pub max_rows_per_request: usize,
    pub agent_state_batch: usize,
    pub agent_state_linger_ms: u64,
    pub timeout_seconds: u64,
    pub max_attempts: u32,
    pub paths: WfmPaths,
}

impl Default for WfmConfig {
    fn default() -> Self {
        WfmConfig {
            base_url: "http://127.0.0.1:9500".into(),
            tenant: "tenant".into(),
            access_key_id: String::new(),
            access_key_secret: Secret::default(),
            access_key_secret_file: String::new(),
            acd_type: "Generic_acdName".into(),
            report_version: "0".into(),
            max_rows_per_request: 1000,
            agent_state_batch: 500,
            agent_state_linger_ms: 100,
            timeout_seconds: 30,
            max_attempts: 8,
            paths: WfmPaths::default(),
        }
    }
}

/// `[wfm.paths]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WfmPaths {
    pub token: String,
    pub refresh: String,
    pub details: String,
    pub agent_activity: String,
    pub intraday: String,
    pub agent_states: String,
    pub connection: String,
}

impl Default for WfmPaths {
    fn default() -> Self {
        WfmPaths {
            token: "/authentication/v1/token/access-key".into(),
            refresh: "/public/user/refresh".into(),
            details: "/wfm/acd/v1/details".into(),
            agent_activity: "/wfm/acd/v1/agent-activity".into(),
            intraday: "/wfm/acd/v1/intraday".into(),
            agent_states: "/wfm/acd/v1/agent-states".into(),
            connection: "/wfm/acd/v1/connection-status".into(),
        }
    }
}

/// `[agents]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentsConfig {
    /// CSV with the header `loginId,agentValue,agentId,userName`.
    pub map_file: String,
}

/// `[connectors.*]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Connectors {
    pub simulator: Option<SimulatorConfig>,
    pub livevox: Option<LiveVoxConfig>,
    pub avaya_cms: Option<AvayaCmsConfig>,
}

/// `[connectors.avaya_cms]`: Avaya CMS's real-time socket, External Call History files and
/// historical exports (docs/connectors.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AvayaCmsConfig {
    pub enabled: bool,
    pub acd_id: String,
    /// IANA zone of the switch, for the historical export times.
    pub time_zone: String,
    /// queueName per split; default: the split number.
    pub queue_names: std::collections::BTreeMap<String, String>,
    /// `host:port` CMS connects to; empty: off.
    pub rt_listen: String,
    /// One character, or `whitespace` (runs of blanks).
    pub rt_delimiter: String,
    pub rt_columns: Vec<String>,
    pub rt_end_marker: String,
    pub rt_refresh_seconds: u64,
    /// External Call History drop directory; empty: off.
    pub ech_dir: String,
    pub ech_settle_ms: u64,
    /// hsplit/hagent CSV export drop directory; empty: off.
    pub hist_dir: String,
    /// Also publish agentSystemPerformanceReport rows from hagent.
    pub hist_agent_performance: bool,
}

impl Default for AvayaCmsConfig {
    fn default() -> Self {
        AvayaCmsConfig {
            enabled: false,
            acd_id: "cms".into(),
            time_zone: "UTC".into(),
            queue_names: Default::default(),
            rt_listen: String::new(),
            rt_delimiter: "|".into(),
            rt_columns: ["LOGID", "WORKMODE", "DIRECTION", "AUXREASON", "AGTIME", "WORKSKILL"]
                .map(String::from)
                .to_vec(),
            rt_end_marker: "END_OF_SNAPSHOT".into(),
            rt_refresh_seconds: 15,
            ech_dir: String::new(),
            ech_settle_ms: 2000,
            hist_dir: String::new(),
            hist_agent_performance: false,
        }
    }
}

/// `[connectors.livevox]`: LiveVox's agent event feed (docs/connectors.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveVoxConfig {
    pub enabled: bool,
    pub acd_id: String,
    pub base_url: String,
    /// The `LV-Access` token, read from this file at start.
    pub access_token_file: String,
    pub client_name: String,
    pub user_name: String,
    /// The API user's password, read from this file at start.
    pub password_file: String,
    pub feed_timeout_ms: u64,
    /// Where the feed token is kept.
    pub state_dir: String,
    /// The agent event field holding the not-ready reason.
    pub reason_field: String,
    pub paths: LiveVoxPaths,
    /// Read from `access_token_file`; never in the file itself.
    #[serde(skip)]
    pub access_token: Secret,
    /// Read from `password_file`; never in the file itself.
    #[serde(skip)]
    pub password: Secret,
}

impl Default for LiveVoxConfig {
    fn default() -> Self {
        LiveVoxConfig {
            enabled: false,
            acd_id: "livevox".into(),
            base_url: "https://api.livevox.com".into(),
            access_token_file: String::new(),
            client_name: String::new(),
            user_name: String::new(),
            password_file: String::new(),
            feed_timeout_ms: 20_000,
            state_dir: "./livevox-state".into(),
            reason_field: "reasonCode".into(),
            paths: LiveVoxPaths::default(),
            access_token: Secret(String::new()),
            password: Secret(String::new()),
        }
    }
}

impl AvayaCmsConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let key = |k: &str| format!("connectors.avaya_cms.{k}");
        if self.acd_id.trim().is_empty() {
            return Err(err(&key("acd_id"), "must not be empty"));
        }
        if self.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(err(
                &key("time_zone"),
                format!("must be an IANA zone such as America/New_York, is {:?}", self.time_zone),
            ));
        }
        if self.rt_listen.is_empty() && self.ech_dir.is_empty() && self.hist_dir.is_empty() {
            return Err(err(
                &key("rt_listen"),
                "the connector is enabled but rt_listen, ech_dir and hist_dir are all empty",
            ));
        }
        if !self.rt_listen.is_empty() {
            if self.rt_listen.parse::<std::net::SocketAddr>().is_err() {
                return Err(err(
                    &key("rt_listen"),
                    format!("must be an address like 0.0.0.0:7001, is {:?}", self.rt_listen),
                ));
            }
            if self.rt_delimiter != "whitespace" && self.rt_delimiter.chars().count() != 1 {
                return Err(err(
                    &key("rt_delimiter"),
                    format!("must be one character or \"whitespace\", is {:?}", self.rt_delimiter),
                ));
            }
            for required in ["LOGID", "WORKMODE"] {
                if !self.rt_columns.iter().any(|c| c.eq_ignore_ascii_case(required)) {
                    return Err(err(&key("rt_columns"), format!("must name the column {required}")));
                }
            }
            if self.rt_end_marker.is_empty() {
                return Err(err(&key("rt_end_marker"), "must not be empty"));
            }
            if self.rt_refresh_seconds < 1 {
                return Err(err(&key("rt_refresh_seconds"), "must be at least 1"));
            }
        }
        Ok(())
    }
}

/// `[connectors.livevox.paths]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveVoxPaths {
    pub login: String,
    /// `DELETE <logout>/<sessionId>`.
    pub logout: String,
    pub agent_event_feed: String,
}

impl Default for LiveVoxPaths {
    fn default() -> Self {
        LiveVoxPaths {
            login: "/session/login".into(),
            logout: "/session/logout".into(),
            agent_event_feed: "/realtime/v6.0/agentEvent/feed".into(),
        }
    }
}

/// `[connectors.simulator]`: a traffic simulator publishing through the same path as ingest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub enabled: bool,
    pub acd_id: String,
    pub agents: u32,
    pub queues: u32,
    /// Simulated seconds per wall-clock second.
    pub speed: f64,
    /// Stop after this many simulated minutes; 0 runs until stopped.
    pub minutes: u64,
    pub seed: u64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig { enabled: true, acd_id: "sim".into(), agents: 50, queues: 5, speed: 1.0, minutes: 0, seed: 1 }
    }
}

const ENV_PREFIX: &str = "ACD_BRIDGE__";

/// Configuration and secret files are small: a larger one (or a device such as `/dev/zero`) is
/// refused rather than read forever.
pub const MAX_FILE: u64 = 4 * 1024 * 1024;

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?.take(MAX_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!("larger than {MAX_FILE} bytes")));
    }
    Ok(text)
}

impl Config {
    /// Reads `path` (when given), applies the environment's overrides, reads secret files and
    /// checks every value.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// [`Config::load`] with an explicit environment, for tests.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let text = read_bounded(p).map_err(|e| err("--config", format!("cannot read {}: {e}", p.display())))?;
                Self::from_toml_str_named(&text, &p.display().to_string(), env)
            }
            None => Self::from_toml_str_named("", "", env),
        }
    }

    /// A configuration from TOML text and an environment (the fuzz target's entry).
    pub fn from_toml_str(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        Self::from_toml_str_named(text, "configuration", env)
    }

    fn from_toml_str_named(
        text: &str,
        name: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = toml::from_str::<toml::Table>(text).map_err(|e| err(name, e.message().to_string()))?;
        let defaults = toml::Table::try_from(Config::default()).expect("defaults serialise");
        let mut env: Vec<_> = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
        env.sort();
        for (name, raw) in env {
            let path: Vec<String> = name[ENV_PREFIX.len()..].split("__").map(|s| s.to_lowercase()).collect();
            let key = path.join(".");
            if path.iter().any(String::is_empty) {
                return Err(err(&name, "malformed variable name"));
            }
            let value = env_value(&defaults, &path, &raw);
            set_path(&mut table, &path, value).map_err(|m| err(&key, m))?;
        }
        let mut cfg: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner().to_string();
            let inner = inner.trim().to_string();
            ConfigError { key, message: inner }
        })?;
        cfg.read_secret_files()?;
        cfg.check()?;
        Ok(cfg)
    }

    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        let read = |key: &str, file: &str| {
            read_bounded(Path::new(file)).map_err(|e| err(key, format!("cannot read {file}: {e}")))
        };
        if !self.wfm.access_key_secret_file.is_empty() {
            let text = read("wfm.access_key_secret_file", &self.wfm.access_key_secret_file)?;
            self.wfm.access_key_secret = Secret(text.trim().to_string());
        }
        if let Some(lv) = self.connectors.livevox.as_mut().filter(|lv| lv.enabled) {
            for (key, file) in [
                ("connectors.livevox.access_token_file", &lv.access_token_file),
                ("connectors.livevox.password_file", &lv.password_file),
            ] {
                if file.is_empty() {
                    return Err(err(key, "must name a file when the connector is enabled"));
                }
            }
            lv.access_token =
                Secret(read("connectors.livevox.access_token_file", &lv.access_token_file)?.trim().into());
            lv.password = Secret(
                read("connectors.livevox.password_file", &lv.password_file)?.trim_end_matches(['\r', '\n']).into(),
            );
        }
        if !self.ingest.tokens_file.is_empty() {
            let text = read("ingest.tokens_file", &self.ingest.tokens_file)?;
            self.ingest.tokens.extend(
                text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|l| Secret(l.into())),
            );
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        if ![15, 30].contains(&self.interval.minutes) {
            return Err(err("interval.minutes", format!("must be 15 or 30, is {}", self.interval.minutes)));
        }
        if self.kafka.brokers.trim().is_empty() {
            return Err(err("kafka.brokers", "must not be empty"));
        }
        if self.kafka.partitions < 1 {
            return Err(err("kafka.partitions", "must be at least 1"));
        }
        if self.kafka.replication_factor < 1 {
            return Err(err("kafka.replication_factor", "must be at least 1"));
        }
        if self.wfm.max_attempts < 1 {
            return Err(err("wfm.max_attempts", "must be at least 1"));
        }
        if self.wfm.agent_state_batch < 1 {
            return Err(err("wfm.agent_state_batch", "must be at least 1"));
        }
        if self.wfm.max_rows_per_request < 1 {
            return Err(err("wfm.max_rows_per_request", "must be at least 1"));
        }
        if !self.sla.threshold_seconds.is_finite() || self.sla.threshold_seconds < 0.0 {
            return Err(err("sla.threshold_seconds", "must be a number >= 0"));
        }
        for (key, addr) in
            [("ingest.listen", &self.ingest.listen), ("consumer.admin_listen", &self.consumer.admin_listen)]
        {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(err(key, format!("must be an address like 127.0.0.1:8080, is {addr:?}")));
            }
        }
        if !(self.wfm.base_url.starts_with("http://") || self.wfm.base_url.starts_with("https://")) {
            return Err(err(
                "wfm.base_url",
                format!("must start with http:// or https://, is {:?}", self.wfm.base_url),
            ));
        }
        if let Some(lv) = self.connectors.livevox.as_ref().filter(|lv| lv.enabled) {
            if !(lv.base_url.starts_with("http://") || lv.base_url.starts_with("https://")) {
                return Err(err(
                    "connectors.livevox.base_url",
                    format!("must start with http:// or https://, is {:?}", lv.base_url),
                ));
            }
            for (key, v) in [
                ("connectors.livevox.acd_id", &lv.acd_id),
                ("connectors.livevox.client_name", &lv.client_name),
                ("connectors.livevox.user_name", &lv.user_name),
                ("connectors.livevox.state_dir", &lv.state_dir),
                ("connectors.livevox.reason_field", &lv.reason_field),
            ] {
                if v.trim().is_empty() {
                    return Err(err(key, "must not be empty"));
                }
            }
            if lv.feed_timeout_ms < 1000 {
                return Err(err("connectors.livevox.feed_timeout_ms", "must be at least 1000"));
            }
        }
        match (self.ingest.tls_cert_file.is_empty(), self.ingest.tls_key_file.is_empty()) {
            (true, false) => return Err(err("ingest.tls_cert_file", "must be set when ingest.tls_key_file is")),
            (false, true) => return Err(err("ingest.tls_key_file", "must be set when ingest.tls_cert_file is")),
            _ => {}
        }
        if let Some(cms) = self.connectors.avaya_cms.as_ref().filter(|c| c.enabled) {
            cms.check()?;
        }
        for (name, v) in self.topics_named() {
            if v.is_empty() {
                return Err(err(&format!("topics.{name}"), "must not be empty"));
            }
        }
        Ok(())
    }

    fn topics_named(&self) -> [(&'static str, &str); 6] {
        let t = &self.topics;
        [
            ("agent_state", &t.agent_state),
            ("contact", &t.contact),
            ("interval", &t.interval),
            ("agent_activity", &t.agent_activity),
            ("connector_status", &t.connector_status),
            ("dlq", &t.dlq),
        ]
    }

    /// The librdkafka properties: `kafka.properties`, then the properties file.
    pub fn kafka_properties(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut out: BTreeMap<String, String> = self
            .kafka
            .properties
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect();
        if !self.kafka.properties_file.is_empty() {
            let text = read_bounded(Path::new(&self.kafka.properties_file)).map_err(|e| {
                err("kafka.properties_file", format!("cannot read {}: {e}", self.kafka.properties_file))
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (k, v) = line
                    .split_once('=')
                    .ok_or_else(|| err("kafka.properties_file", format!("line {}: expected key=value", n + 1)))?;
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        Ok(out)
    }

    /// Where the consumer keeps its checkpoints.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(&self.consumer.state_dir)
    }
}

/// An environment value, typed by the default at the same path: strings stay strings ("0123"),
/// anything else is read as a TOML value (numbers, booleans, lists, inline tables).
fn env_value(defaults: &toml::Table, path: &[String], raw: &str) -> toml::Value {
    let mut cur: Option<&toml::Value> = None;
    let mut table = Some(defaults);
    for p in path {
        cur = table.and_then(|t| t.get(p));
        table = cur.and_then(|v| v.as_table());
    }
    if let Some(toml::Value::String(_)) = cur {
        return toml::Value::String(raw.to_string());
    }
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = table;
    for p in parents {
        let next = cur.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = next.as_table_mut().ok_or_else(|| format!("{p} is not a section"))?;
    }
    cur.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str) -> tempfile_path::TempPath {
        tempfile_path::TempPath::with(text)
    }

    mod tempfile_path {
        use super::*;
        pub struct TempPath(pub PathBuf);
        impl TempPath {
            pub fn with(text: &str) -> TempPath {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let p = std::env::temp_dir().join(format!("acd-bridge-cfg-{}-{n}.toml", std::process::id()));
                std::fs::File::create(&p).unwrap().write_all(text.as_bytes()).unwrap();
                TempPath(p)
            }
        }
        impl Drop for TempPath {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let f = write(text);
        Config::load_with_env(Some(&f.0), env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn defaults_are_the_contracts() {
        let c = load("", &[]).unwrap();
        assert_eq!(c.kafka.brokers, "127.0.0.1:9092");
        assert_eq!(c.topics.dlq, "wfm.dlq.v1");
        assert_eq!(c.ingest.max_body_bytes, 10_485_760);
        assert_eq!(c.interval.minutes, 15);
        assert_eq!(c.wfm.paths.token, "/authentication/v1/token/access-key");
        assert_eq!(c.wfm.max_attempts, 8);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = load("[kafka]\nbrokerz = \"x\"\n", &[]).unwrap_err();
        assert_eq!(e.key, "kafka.brokerz");
        assert!(e.message.contains("brokerz"), "{e}");
        let e = load("", &[("ACD_BRIDGE__WFM__PATHS__TOKENN", "/x")]).unwrap_err();
        assert!(e.to_string().contains("tokenn"), "{e}");
        let e = load("[interval]\nminutes = 20\n", &[]).unwrap_err();
        assert_eq!(e.key, "interval.minutes");
        let e = load("[ingest]\nack_timeout_ms = \"soon\"\n", &[]).unwrap_err();
        assert_eq!(e.key, "ingest.ack_timeout_ms");
        let e = load("[sla]\nformula = \"handled/all\"\n", &[]).unwrap_err();
        assert_eq!(e.key, "sla.formula");
        assert!(e.message.contains("handled_within/received"), "{e}");
    }

    #[test]
    fn the_sla_formula_is_read_once_into_its_type() {
        use acd_interval::sla::Formula;
        let c = load("[sla]\nformula = \"(handled_within + abandoned_within)/received\"\n", &[]).unwrap();
        assert_eq!(c.sla.formula, Formula::HandledAndShortAbandonsOverReceived);
        let c = load("", &[("ACD_BRIDGE__SLA__FORMULA", "handled_within/(received-abandoned_within)")]).unwrap();
        assert_eq!(c.sla.formula, Formula::HandledOverReceivedLessShortAbandons);
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            "[kafka]\nbrokers = \"a:1\"\n",
            &[
                ("ACD_BRIDGE__KAFKA__BROKERS", "b:2"),
                ("ACD_BRIDGE__KAFKA__PARTITIONS", "3"),
                ("ACD_BRIDGE__WFM__TENANT", "0123"),
                ("ACD_BRIDGE__INGEST__TOKENS", "[\"t1\", \"t2\"]"),
                ("ACD_BRIDGE__WFM__PATHS__TOKEN", "/t"),
            ],
        )
        .unwrap();
        assert_eq!(c.kafka.brokers, "b:2");
        assert_eq!(c.kafka.partitions, 3);
        assert_eq!(c.wfm.tenant, "0123");
        assert_eq!(c.ingest.tokens.len(), 2);
        assert_eq!(c.wfm.paths.token, "/t");
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let secret = write("s3cr3t\n");
        let tokens = write("tok-a\n\n# comment\ntok-b\n");
        let c = load(
            &format!(
                "[wfm]\naccess_key_secret_file = {:?}\n[ingest]\ntokens_file = {:?}\n",
                secret.0.display().to_string(),
                tokens.0.display().to_string()
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.wfm.access_key_secret.expose(), "s3cr3t");
        assert_eq!(c.ingest.tokens.iter().map(Secret::expose).collect::<Vec<_>>(), ["tok-a", "tok-b"]);
        let printed = format!("{c:?}");
        assert!(!printed.contains("s3cr3t") && !printed.contains("tok-a"), "{printed}");
    }
}
