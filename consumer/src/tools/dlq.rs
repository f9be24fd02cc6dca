//! `acd-bridge dlq list|show|redrive|export`: the dead-letter topic as an operator reads and
//! re-drives it. Reading never joins the group or changes an offset; a redrive records each
//! outcome on `<topics.dlq>.redrive`.

use std::collections::BTreeMap;
use std::time::Duration;

use acd_core::config::Config;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use serde_json::{json, Value};

use super::{reader, OpsError, TIMEOUT};

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
    pub fn header(&self, name: &str) -> &str {
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
        error = format!("{}...", acd_core::truncate(&error, 77));
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
        let mut schedule = crate::wfm::retry::Schedule::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut attempts = 0;
        let (outcome, status) = loop {
            attempts += 1;
            let answer = wfm.call(reqwest::Method::POST, endpoint, Some(&l.body)).await;
            match crate::wfm::classify::classify(&answer.attempt) {
                crate::wfm::classify::Outcome::Success => break ("delivered", answer.status()),
                crate::wfm::classify::Outcome::Reject => break ("rejected", answer.status()),
                crate::wfm::classify::Outcome::Retry(after) if attempts < cfg.wfm.max_attempts => {
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
