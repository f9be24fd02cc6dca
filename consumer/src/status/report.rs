//! `acd-bridge status`: lag per partition, the interval group's rebuild backlog, dead letters by
//! reason, the ACDs' connection state from the topic, and the running consumer's own view from
//! its admin API when it answers.

use std::collections::BTreeMap;
use std::time::Duration;

use acd_core::config::Config;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::tools::dlq::read_dlq;
use crate::tools::{reader, OpsError, TIMEOUT};

/// `acd-bridge status --json`: lag per partition, DLQ depth by reason, the consumer's view.
pub fn status(cfg: &Config) -> Result<Value, OpsError> {
    // Both groups commit what they have read (forwarding: delivered), so the distance to the end
    // is lag. The interval group keeps beside it, in the commit's metadata, the offset its books
    // are rebuilt from (see `intervals`): the distance from there to the end is what a restart
    // reads again, shown as the rebuild backlog.
    let intervals_group = crate::intervals::group_id(cfg);
    let t = &cfg.topics;
    let views: [(&str, &str); 5] = [
        (t.agent_state.as_str(), cfg.consumer.group_id.as_str()),
        (t.contact.as_str(), intervals_group.as_str()),
        (t.agent_state.as_str(), intervals_group.as_str()),
        (t.interval.as_str(), intervals_group.as_str()),
        (t.agent_activity.as_str(), intervals_group.as_str()),
    ];
    let mut partitions = Vec::new();
    let mut lag_total = 0;
    let mut rebuild_total = 0;
    for (topic, group) in views {
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
        let committed = committed_offsets(&c, tpl)?;
        for e in committed.elements() {
            let (lo, hi) = c.fetch_watermarks(topic, e.partition(), TIMEOUT)?;
            let next = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            let lag = hi - next.unwrap_or(lo);
            lag_total += lag;
            let mut p = json!({"topic": topic, "group": group, "partition": e.partition(), "committed": next,
                "high_watermark": hi, "lag": lag});
            if group == intervals_group {
                let from = next.map_or(lo, |o| crate::kafka::group::rebuild_from(e.metadata(), o).unwrap_or(o));
                rebuild_total += hi - from;
                p["rebuild_from"] = json!(from);
                p["rebuild_backlog"] = json!(hi - from);
            }
            partitions.push(p);
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
    // The same codec `consume` builds: with a schema registry, records are in its framing.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let codec = rt.block_on(acd_core::kafka::codec(cfg))?;
    let connections = crate::status::connections::read_now(cfg, &codec)?;
    let now = acd_schemas::time::now_millis();
    let acds: BTreeMap<String, Value> = connections
        .per_acd(now)
        .into_iter()
        .map(|(acd, c)| {
            (
                acd,
                json!({"status": crate::status::connections::state_name(c.status),
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
        "  {:<40} {:<28} {:>9} {:>12} {:>12} {:>9} {:>9}\n",
        "topic", "group", "partition", "committed", "end", "lag", "re-read"
    ));
    for p in v["partitions"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {:<40} {:<28} {:>9} {:>12} {:>12} {:>9} {:>9}\n",
            p["topic"].as_str().unwrap_or(""),
            p["group"].as_str().unwrap_or(""),
            p["partition"],
            p["committed"].as_i64().map_or("-".to_string(), |o| o.to_string()),
            p["high_watermark"],
            p["lag"],
            p.get("rebuild_backlog").map_or("-".to_string(), |b| b.to_string())
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

/// A group's committed offsets, asked again for up to 20 s while the group's coordinator is
/// moving or loading (a just-started or just-restarted broker answers `NotCoordinator` or
/// `CoordinatorLoadInProgress` for a while): `status` reports, it does not fail on a broker's
/// passing state.
fn committed_offsets(
    c: &rdkafka::consumer::BaseConsumer,
    tpl: TopicPartitionList,
) -> Result<TopicPartitionList, rdkafka::error::KafkaError> {
    use rdkafka::types::RDKafkaErrorCode::*;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match c.committed_offsets(tpl.clone(), TIMEOUT) {
            Err(e)
                if std::time::Instant::now() < deadline
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(NotCoordinator | CoordinatorLoadInProgress | CoordinatorNotAvailable)
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}
