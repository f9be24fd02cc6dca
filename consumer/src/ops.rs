//! The operator's read-only tools: `acd-bridge status` and `acd-bridge dlq list|show|export`.
//! They read Kafka (and the consumer's admin API when it answers); they never join the group or
//! change an offset.

use std::collections::BTreeMap;
use std::time::Duration;

use acd_core::config::Config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::{json, Value};

/// Errors of the tools.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Config(#[from] acd_core::kafka::KafkaError),
    #[error("{0}")]
    Usage(String),
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn reader(cfg: &Config, group: &str) -> Result<BaseConsumer, OpsError> {
    let mut cc = acd_core::kafka::client_config(cfg)?;
    cc.set("group.id", group).set("enable.auto.commit", "false").set("enable.partition.eof", "true");
    Ok(cc.create()?)
}

/// One dead letter as read back.
#[derive(Debug, Clone, Serialize)]
pub struct Letter {
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: String,
    pub headers: BTreeMap<String, String>,
    /// The body as JSON when it is JSON.
    pub json: Option<Value>,
    /// The body as base64 when it is not.
    pub base64: Option<String>,
    /// The last `dlq redrive` outcome for it, if any (`delivered`, `rejected`, `failed`).
    pub redriven: Option<String>,
    #[serde(skip)]
    body: Vec<u8>,
}

impl Letter {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The topic where `dlq redrive` records outcomes (key: `PARTITION:OFFSET` of the dead letter).
pub fn redrive_topic(cfg: &Config) -> String {
    format!("{}.redrive", cfg.topics.dlq)
}

/// Every record of the dead-letter topic, in offset order per partition, with redrive outcomes.
pub fn read_dlq(cfg: &Config) -> Result<Vec<Letter>, OpsError> {
    let mut letters = read_topic(cfg, &cfg.topics.dlq)?;
    let outcomes: BTreeMap<String, String> = read_topic(cfg, &redrive_topic(cfg))?
        .into_iter()
        .filter_map(|l| Some((l.key.clone(), l.json?.get("outcome")?.as_str()?.to_string())))
        .collect();
    for l in &mut letters {
        l.redriven = outcomes.get(&format!("{}:{}", l.partition, l.offset)).cloned();
    }
    Ok(letters)
}

fn read_topic(cfg: &Config, topic: &str) -> Result<Vec<Letter>, OpsError> {
    let c = reader(cfg, "acd-bridge-dlq-reader")?;
    let Ok(md) = c.fetch_metadata(Some(topic), TIMEOUT) else { return Ok(Vec::new()) };
    let mut tpl = TopicPartitionList::new();
    let mut remaining = BTreeMap::new();
    for t in md.topics().iter().filter(|t| t.error().is_none()) {
        for p in t.partitions() {
            let (lo, hi) = c.fetch_watermarks(topic, p.id(), TIMEOUT)?;
            if hi > lo {
                tpl.add_partition_offset(topic, p.id(), Offset::Offset(lo))?;
                remaining.insert(p.id(), hi);
            }
        }
    }
    let mut out = Vec::new();
    if remaining.is_empty() {
        return Ok(out);
    }
    c.assign(&tpl)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !remaining.is_empty() && std::time::Instant::now() < deadline {
        match c.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                if remaining.get(&m.partition()).is_some_and(|hi| m.offset() + 1 >= *hi) {
                    remaining.remove(&m.partition());
                }
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| {
                                (x.key.to_string(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let body = m.payload().unwrap_or_default();
                let json = serde_json::from_slice::<Value>(body).ok();
                out.push(Letter {
                    partition: m.partition(),
                    offset: m.offset(),
                    timestamp_ms: m.timestamp().to_millis(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()).unwrap_or_default(),
                    base64: json.is_none().then(|| base64(body)),
                    json,
                    headers,
                    redriven: None,
                    body: body.to_vec(),
                });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => {
                remaining.remove(&p);
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    out.sort_by_key(|l| (l.partition, l.offset));
    Ok(out)
}

/// `dlq list` filters.
#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub reason: Option<String>,
    pub kind: Option<String>,
    /// Records written at or after this time.
    pub since_ms: Option<i64>,
}

/// The records `dlq list` shows.
pub fn list(cfg: &Config, filter: &ListFilter) -> Result<Vec<Letter>, OpsError> {
    Ok(read_dlq(cfg)?
        .into_iter()
        .filter(|l| filter.reason.as_deref().is_none_or(|r| l.header("dlq.reason") == r))
        .filter(|l| filter.kind.as_deref().is_none_or(|k| l.header("dlq.kind") == k))
        .filter(|l| filter.since_ms.is_none_or(|s| l.timestamp_ms.unwrap_or(0) >= s))
        .collect())
}

/// One line of `dlq list`.
pub fn list_line(l: &Letter) -> String {
    let time = l.timestamp_ms.map(acd_schemas::time::format_millis).unwrap_or_default();
    let mut error = l.header("dlq.error").replace('\n', " ");
    if error.len() > 80 {
        error = format!("{}...", crate::wfm::truncate(&error, 77));
    }
    let interval = match l.header("dlq.interval.start") {
        "" if l.header("dlq.kind") == "input" => format!(
            "{}[{}]@{}",
            l.header("dlq.source.topic"),
            l.header("dlq.source.partition"),
            l.header("dlq.source.offset")
        ),
        s => s.to_string(),
    };
    let redriven = l.redriven.as_deref().unwrap_or("no");
    format!(
        "{:>8}  {:<24}  {:<14}  {:<17}  {:>6}  {:<24}  {:<8}  {}",
        display_offset(l),
        time,
        l.header("dlq.kind"),
        l.header("dlq.reason"),
        l.header("dlq.http.status"),
        interval,
        redriven,
        error
    )
}

/// The header line of `dlq list`.
pub fn list_header() -> String {
    format!(
        "{:>8}  {:<24}  {:<14}  {:<17}  {:>6}  {:<24}  {:<8}  {}",
        "offset", "time", "kind", "reason", "status", "interval / source", "redriven", "error"
    )
}

fn display_offset(l: &Letter) -> String {
    if l.partition == 0 {
        l.offset.to_string()
    } else {
        format!("{}:{}", l.partition, l.offset)
    }
}

/// `dlq redrive` options.
#[derive(Debug, Default, Clone)]
pub struct RedriveOptions {
    pub reason: Option<String>,
    pub offsets: Option<Vec<i64>>,
    pub dry_run: bool,
    pub force: bool,
}

/// What a redrive did.
#[derive(Debug, Default, Serialize)]
pub struct RedriveSummary {
    pub considered: usize,
    pub skipped_already_delivered: usize,
    pub skipped_not_reports: usize,
    pub delivered: usize,
    pub rejected: usize,
    pub failed: usize,
}

/// Re-sends dead-lettered reports to the WFM in offset order, recording each outcome in
/// [`redrive_topic`] so that a second redrive skips what was delivered (unless `force`). Input
/// records (`dlq.kind=input`) have no endpoint and are skipped. `progress` gets one line a record.
pub async fn redrive(
    cfg: &Config,
    opts: &RedriveOptions,
    progress: impl Fn(String),
) -> Result<RedriveSummary, OpsError> {
    let c = cfg.clone();
    let letters = tokio::task::spawn_blocking(move || read_dlq(&c)).await.expect("dlq read")?;
    let selected: Vec<Letter> = letters
        .into_iter()
        .filter(|l| opts.reason.as_deref().is_none_or(|r| l.header("dlq.reason") == r))
        .filter(|l| opts.offsets.as_ref().is_none_or(|o| o.contains(&l.offset)))
        .collect();
    let mut summary = RedriveSummary { considered: selected.len(), ..RedriveSummary::default() };
    if !opts.dry_run {
        acd_core::kafka::ensure_topics_with_partitions(cfg, &[&redrive_topic(cfg)], 1).await?;
    }
    let wfm = crate::wfm::WfmClient::new(&cfg.wfm, acd_core::metrics::Registry::default());
    let producer = acd_core::kafka::producer(cfg)?;
    let total = selected.len();
    let outcomes_topic = redrive_topic(cfg);
    for (i, l) in selected.iter().enumerate() {
        let at = format!("{}/{total} offset {}", i + 1, display_offset(l));
        let endpoint = l.header("dlq.endpoint");
        if l.header("dlq.kind") == "input" || endpoint.is_empty() {
            summary.skipped_not_reports += 1;
            progress(format!("{at}: skipped (an input record, not a report)"));
            continue;
        }
        if l.redriven.as_deref() == Some("delivered") && !opts.force {
            summary.skipped_already_delivered += 1;
            progress(format!("{at}: skipped (already re-driven)"));
            continue;
        }
        if opts.dry_run {
            progress(format!("{at}: would POST {} bytes to {endpoint} ({})", l.body.len(), l.key));
            continue;
        }
        let mut schedule = crate::retry::Schedule::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut attempts = 0;
        let (outcome, status) = loop {
            attempts += 1;
            let answer = wfm.call(reqwest::Method::POST, endpoint, Some(&l.body)).await;
            match crate::classify::classify(&answer.attempt) {
                crate::classify::Outcome::Success => break ("delivered", answer.status()),
                crate::classify::Outcome::Reject => break ("rejected", answer.status()),
                crate::classify::Outcome::Retry(after) if attempts < cfg.wfm.max_attempts => {
                    tokio::time::sleep(schedule.next(after)).await;
                }
                _ => break ("failed", answer.status()),
            }
        };
        match outcome {
            "delivered" => summary.delivered += 1,
            "rejected" => summary.rejected += 1,
            _ => summary.failed += 1,
        }
        let record = json!({"dlqPartition": l.partition, "dlqOffset": l.offset, "outcome": outcome,
            "httpStatus": status, "attempts": attempts, "at": acd_schemas::time::format_millis(acd_schemas::time::now_millis())});
        let key = format!("{}:{}", l.partition, l.offset);
        let value = record.to_string();
        let rec = rdkafka::producer::FutureRecord::to(&outcomes_topic).key(&key).payload(&value);
        producer.send(rec, Duration::from_secs(30)).await.map_err(|(e, _)| OpsError::Kafka(e))?;
        progress(format!("{at}: {outcome} ({})", status.map_or("no answer".to_string(), |s| s.to_string())));
    }
    Ok(summary)
}

/// `dlq show OFFSET` (or `PARTITION:OFFSET`).
pub fn show(cfg: &Config, which: &str) -> Result<String, OpsError> {
    let (partition, offset) = match which.split_once(':') {
        Some((p, o)) => (p.parse::<i32>().ok(), o.parse::<i64>().ok()),
        None => (Some(0), which.parse::<i64>().ok()),
    };
    let (Some(partition), Some(offset)) = (partition, offset) else {
        return Err(OpsError::Usage(format!("dlq show: {which:?} is not an offset (N or PARTITION:N)")));
    };
    let letter = read_dlq(cfg)?
        .into_iter()
        .find(|l| l.partition == partition && l.offset == offset)
        .ok_or_else(|| OpsError::Usage(format!("dlq show: no dead letter at offset {which}")))?;
    let mut out = format!("offset {}\nkey {}\n", display_offset(&letter), letter.key);
    for (k, v) in &letter.headers {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push('\n');
    match (&letter.json, &letter.base64) {
        (Some(j), _) => out.push_str(&serde_json::to_string_pretty(j).unwrap_or_default()),
        (_, Some(b)) => out.push_str(&format!("(not JSON; base64) {b}")),
        _ => {}
    }
    out.push('\n');
    Ok(out)
}

/// `dlq export`: every dead letter as one JSON line.
pub fn export(cfg: &Config) -> Result<Vec<String>, OpsError> {
    Ok(read_dlq(cfg)?.iter().map(|l| serde_json::to_string(l).unwrap_or_default()).collect())
}

/// `acd-bridge status --json`: lag per partition, DLQ depth by reason, the consumer's view.
pub fn status(cfg: &Config) -> Result<Value, OpsError> {
    // Agent-state forwarding commits what it delivered: the distance to the end is its lag. The
    // interval group commits rebuild offsets on purpose (see `intervals`): the distance to the end
    // is what a restart reads again, shown as the rebuild backlog, not as lag.
    let intervals_group = crate::intervals::group_id(cfg);
    let t = &cfg.topics;
    let views: [(&str, &str, &str); 4] = [
        (t.agent_state.as_str(), cfg.consumer.group_id.as_str(), "lag"),
        (t.contact.as_str(), intervals_group.as_str(), "rebuild_backlog"),
        (t.interval.as_str(), intervals_group.as_str(), "rebuild_backlog"),
        (t.agent_activity.as_str(), intervals_group.as_str(), "rebuild_backlog"),
    ];
    let mut partitions = Vec::new();
    let mut lag_total = 0;
    let mut rebuild_total = 0;
    for (topic, group, kind) in views {
        let c = reader(cfg, group)?;
        let Ok(md) = c.fetch_metadata(Some(topic), TIMEOUT) else { continue };
        let mut tpl = TopicPartitionList::new();
        for t in md.topics().iter().filter(|t| t.error().is_none()) {
            for p in t.partitions() {
                tpl.add_partition(topic, p.id());
            }
        }
        if tpl.count() == 0 {
            continue;
        }
        let committed = c.committed_offsets(tpl, TIMEOUT)?;
        for e in committed.elements() {
            let (lo, hi) = c.fetch_watermarks(topic, e.partition(), TIMEOUT)?;
            let next = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            let behind = hi - next.unwrap_or(lo);
            if kind == "lag" {
                lag_total += behind;
            } else {
                rebuild_total += behind;
            }
            partitions.push(json!({"topic": topic, "group": group, "partition": e.partition(), "committed": next,
                "high_watermark": hi, kind: behind}));
        }
    }
    let mut dlq_by_reason: BTreeMap<String, u64> = BTreeMap::new();
    let letters = read_dlq(cfg)?;
    for l in &letters {
        *dlq_by_reason.entry(l.header("dlq.reason").to_string()).or_default() += 1;
    }
    let admin = format!("http://{}/status", cfg.consumer.admin_listen);
    let consumer = fetch_json(&admin);
    // Read from the topic, so that the ACD side shows even while `consume` is down.
    let connections = crate::connection::read_now(cfg)?;
    let now = acd_schemas::time::now_millis();
    let acds: BTreeMap<String, Value> = connections
        .per_acd(now)
        .into_iter()
        .map(|(acd, c)| {
            (
                acd,
                json!({"status": crate::connection::state_name(c.status),
                "since": acd_schemas::time::format_millis(c.since),
                "last_event_utc": c.last_event.map(acd_schemas::time::format_millis), "detail": c.detail}),
            )
        })
        .collect();
    Ok(json!({
        "group_id": cfg.consumer.group_id,
        "lag_total": lag_total,
        "rebuild_backlog_total": rebuild_total,
        "partitions": partitions,
        "dlq_depth": letters.len(),
        "dlq_by_reason": dlq_by_reason,
        "acd_connections": acds,
        "connectors": connections.connectors(now),
        "consumer": consumer,
    }))
}

fn fetch_json(url: &str) -> Option<Value> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async {
        let c = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().ok()?;
        c.get(url).send().await.ok()?.json().await.ok()
    })
}

/// `acd-bridge status` as text.
pub fn status_text(v: &Value) -> String {
    let mut out = format!(
        "consumer group {}: total lag {} (interval books re-read {} records on a restart)\n",
        v["group_id"].as_str().unwrap_or(""),
        v["lag_total"],
        v["rebuild_backlog_total"]
    );
    out.push_str(&format!(
        "  {:<40} {:>9} {:>12} {:>12} {:>16}\n",
        "topic", "partition", "committed", "end", "lag / re-read"
    ));
    for p in v["partitions"].as_array().into_iter().flatten() {
        let behind = p.get("lag").or(p.get("rebuild_backlog")).cloned().unwrap_or_default();
        let tag = if p.get("lag").is_some() { "lag" } else { "re-read" };
        out.push_str(&format!(
            "  {:<40} {:>9} {:>12} {:>12} {:>8} {tag}\n",
            p["topic"].as_str().unwrap_or(""),
            p["partition"],
            p["committed"].as_i64().map_or("-".to_string(), |o| o.to_string()),
            p["high_watermark"],
            behind
        ));
    }
    out.push_str(&format!("dead letters: {}", v["dlq_depth"]));
    if let Some(m) = v["dlq_by_reason"].as_object().filter(|m| !m.is_empty()) {
        let parts: Vec<String> = m.iter().map(|(k, n)| format!("{k} {n}")).collect();
        out.push_str(&format!(" ({})", parts.join(", ")));
    }
    out.push('\n');
    match v.get("consumer").filter(|c| !c.is_null()) {
        Some(c) => out.push_str(&format!(
            "consumer: WFM {} (last success {}), agent states read {}, delivered {}, duplicates removed {}, last delivered {}\n",
            c["wfm_state"].as_str().unwrap_or("?"),
            c["wfm_last_success_utc"].as_str().unwrap_or("never"),
            c["agent_states_read"],
            c["agent_states_delivered"],
            c["agent_states_duplicates"],
            c["last_delivered_agent_state_utc"].as_str().unwrap_or("-"),
        )),
        None => out.push_str("consumer: admin API not answering (is `consume` running?)\n"),
    }
    if let Some(k) = v["consumer"].get("kafka").filter(|k| !k.is_null()) {
        match k["state"].as_str() {
            Some("DISCONNECTED") => out.push_str(&format!(
                "kafka: DISCONNECTED since {} ({})\n",
                k["since_utc"].as_str().unwrap_or("?"),
                k["last_error"].as_str().unwrap_or("")
            )),
            Some(state) => out.push_str(&format!("kafka: {state}\n")),
            None => {}
        }
    }
    if let Some(m) = v["consumer"]["open_intervals"].as_object().filter(|m| !m.is_empty()) {
        let parts: Vec<String> = m
            .iter()
            .map(|(k, o)| {
                format!(
                    "{k} {} ({} to {})",
                    o["count"],
                    o["first"].as_str().unwrap_or(""),
                    o["last"].as_str().unwrap_or("")
                )
            })
            .collect();
        out.push_str(&format!("open intervals: {}\n", parts.join(", ")));
    }
    if let Some(m) = v["consumer"]["last_delivered_interval"].as_object().filter(|m| !m.is_empty()) {
        let parts: Vec<String> = m.iter().map(|(k, s)| format!("{k} {}", s.as_str().unwrap_or(""))).collect();
        out.push_str(&format!("last delivered interval: {}\n", parts.join(", ")));
    }
    match v["connectors"].as_array().filter(|c| !c.is_empty()) {
        None => out.push_str("ACD connections: no connector has reported in the last 24 hours\n"),
        Some(list) => {
            out.push_str("ACD connections:\n");
            for (acd, c) in v["acd_connections"].as_object().into_iter().flatten() {
                out.push_str(&format!(
                    "  {acd}: {} since {}, last event {}\n",
                    c["status"].as_str().unwrap_or("?"),
                    c["since"].as_str().unwrap_or("?"),
                    c["last_event_utc"].as_str().unwrap_or("-")
                ));
                for k in list.iter().filter(|k| k["acd_id"].as_str() == Some(acd)) {
                    out.push_str(&format!(
                        "    {:<12} {:<12} {}\n",
                        k["connector"].as_str().unwrap_or(""),
                        k["status"].as_str().unwrap_or(""),
                        k["detail"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    out
}
