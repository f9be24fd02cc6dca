//! ACD connection state: what the producers' connectors report on `topics.connector_status`,
//! folded per ACD and passed on to the WFM `connection` endpoint on every change and at least
//! every 60 s (docs/wfm-api.md).
//!
//! [`Connections`] is the pure fold. A connector that has not reported for [`STALE_MS`] counts
//! as DISCONNECTED whatever it said last: its producer is gone. An ACD with several connectors is
//! CONNECTED when all are, DISCONNECTED when none is connected, DEGRADED in between.

use std::collections::BTreeMap;
use std::time::Duration;

use acd_core::config::Config;
use acd_schemas::records::{ConnectionState, ConnectorStatus};
use acd_schemas::time::{format_millis, now_millis, Millis};
use acd_schemas::wfm::ConnectionStatusJson;
use acd_schemas::{Codec, Stream};
use std::sync::Arc;

use acd_core::link::{KafkaLink, LinkContext};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::board::{ConnectorView, SharedBoard};
use crate::wfm::classify::{classify, Outcome};
use crate::wfm::WfmClient;

/// A connector silent this long (three missed heartbeats) is DISCONNECTED.
pub const STALE_MS: Millis = 180_000;
/// How far back a reader looks for the latest report of every connector.
pub const LOOK_BACK_MS: Millis = 24 * 3_600_000;
/// The WFM hears every ACD's state at least this often.
pub const WFM_EVERY: Duration = Duration::from_secs(60);

/// One ACD, all its connectors folded.
#[derive(Debug, Clone, PartialEq)]
pub struct AcdConnection {
    pub status: ConnectionState,
    /// When the latest of its connectors entered its state.
    pub since: Millis,
    pub last_event: Option<Millis>,
    pub detail: String,
}

/// The latest report of every connector.
#[derive(Debug, Default, Clone)]
pub struct Connections {
    latest: BTreeMap<(String, String), ConnectorStatus>,
}

impl Connections {
    /// Takes a report; an older one than what is known is ignored.
    pub fn apply(&mut self, r: ConnectorStatus) {
        let key = (r.acd_id.clone(), r.connector.clone());
        match self.latest.get(&key) {
            Some(known) if known.reported_utc > r.reported_utc => {}
            _ => {
                self.latest.insert(key, r);
            }
        }
    }

    /// A connector's effective state at `now`: stale reports mean DISCONNECTED.
    fn effective(r: &ConnectorStatus, now: Millis) -> (ConnectionState, Millis, String) {
        if r.status != ConnectionState::Disconnected && now - r.reported_utc > STALE_MS {
            let detail = format!("no report since {} (producer stopped or unreachable)", format_millis(r.reported_utc));
            (ConnectionState::Disconnected, r.reported_utc + STALE_MS, detail)
        } else {
            (r.status, r.since, r.detail.clone())
        }
    }

    /// Every connector, as of `now`.
    pub fn connectors(&self, now: Millis) -> Vec<ConnectorView> {
        self.latest
            .values()
            .map(|r| {
                let (status, since, detail) = Self::effective(r, now);
                ConnectorView {
                    acd_id: r.acd_id.clone(),
                    connector: r.connector.clone(),
                    status,
                    since: format_millis(since),
                    last_event_utc: r.last_event_utc.map(format_millis),
                    detail,
                    reported_utc: format_millis(r.reported_utc),
                }
            })
            .collect()
    }

    /// Every ACD, its connectors folded, as of `now`.
    pub fn per_acd(&self, now: Millis) -> BTreeMap<String, AcdConnection> {
        let mut out: BTreeMap<String, Vec<(&str, AcdConnection)>> = BTreeMap::new();
        for r in self.latest.values() {
            let (status, since, detail) = Self::effective(r, now);
            let one = AcdConnection { status, since, last_event: r.last_event_utc, detail };
            out.entry(r.acd_id.clone()).or_default().push((&r.connector, one));
        }
        out.into_iter()
            .map(|(acd, parts)| {
                let count = |s: ConnectionState| parts.iter().filter(|(_, p)| p.status == s).count();
                let status = if count(ConnectionState::Connected) == parts.len() {
                    ConnectionState::Connected
                } else if count(ConnectionState::Disconnected) == parts.len() {
                    ConnectionState::Disconnected
                } else {
                    ConnectionState::Degraded
                };
                let since = parts.iter().map(|(_, p)| p.since).max().unwrap_or(now);
                let last_event = parts.iter().filter_map(|(_, p)| p.last_event).max();
                let detail = if parts.len() == 1 {
                    parts[0].1.detail.clone()
                } else {
                    parts.iter().map(|(name, p)| format!("{name}: {}", p.detail)).collect::<Vec<_>>().join("; ")
                };
                (acd, AcdConnection { status, since, last_event, detail })
            })
            .collect()
    }
}

/// Decides which ACDs the WFM must hear about now: a change, or [`WFM_EVERY`] since the last
/// accepted call.
#[derive(Default)]
pub struct Notifier {
    sent: BTreeMap<String, (ConnectionState, Millis)>,
}

impl Notifier {
    /// The bodies to post at `now`.
    pub fn due(&self, acds: &BTreeMap<String, AcdConnection>, now: Millis) -> Vec<ConnectionStatusJson> {
        acds.iter()
            .filter(|(acd, c)| match self.sent.get(*acd) {
                Some((status, at)) => *status != c.status || now - at >= WFM_EVERY.as_millis() as Millis,
                None => true,
            })
            .map(|(acd, c)| ConnectionStatusJson {
                acd_id: acd.clone(),
                status: state_name(c.status).to_string(),
                since: format_millis(c.since),
                last_event_utc: c.last_event.map(format_millis),
                detail: c.detail.clone(),
            })
            .collect()
    }

    /// The WFM accepted `body` at `now`.
    pub fn accepted(&mut self, body: &ConnectionStatusJson, now: Millis) {
        let status = match body.status.as_str() {
            "CONNECTED" => ConnectionState::Connected,
            "DEGRADED" => ConnectionState::Degraded,
            _ => ConnectionState::Disconnected,
        };
        self.sent.insert(body.acd_id.clone(), (status, now));
    }
}

/// CONNECTED, DEGRADED or DISCONNECTED.
pub fn state_name(s: ConnectionState) -> &'static str {
    match s {
        ConnectionState::Connected => "CONNECTED",
        ConnectionState::Degraded => "DEGRADED",
        ConnectionState::Disconnected => "DISCONNECTED",
    }
}

/// A reader of `topics.connector_status` from [`LOOK_BACK_MS`] ago, outside any group.
pub fn reader(cfg: &Config, link: Arc<KafkaLink>) -> Result<BaseConsumer<LinkContext>, rdkafka::error::KafkaError> {
    let topic = &cfg.topics.connector_status;
    let mut cc =
        acd_core::kafka::client_config(cfg).map_err(|e| rdkafka::error::KafkaError::ClientCreation(e.to_string()))?;
    cc.set("group.id", format!("{}.connections", cfg.consumer.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let c: BaseConsumer<LinkContext> = cc.create_with_context(LinkContext { link, name: "connector-status" })?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let since = now_millis() - LOOK_BACK_MS;
    let mut query = TopicPartitionList::new();
    for t in md.topics().iter().filter(|t| t.error().is_none()) {
        for p in t.partitions() {
            query.add_partition_offset(topic, p.id(), Offset::Offset(since))?;
        }
    }
    if query.count() > 0 {
        let found = c.offsets_for_times(query, Duration::from_secs(10))?;
        let mut starts = TopicPartitionList::new();
        for e in found.elements_for_topic(topic) {
            // No record since then: start at the end.
            let offset = if matches!(e.offset(), Offset::Offset(_)) { e.offset() } else { Offset::End };
            starts.add_partition_offset(topic, e.partition(), offset)?;
        }
        c.assign(&starts)?;
    }
    Ok(c)
}

/// Everything on the topic up to now, folded: for `acd-bridge status`.
pub fn read_now(cfg: &Config, codec: &Codec) -> Result<Connections, rdkafka::error::KafkaError> {
    let c = reader(cfg, KafkaLink::new(&acd_core::metrics::Registry::default()))?;
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let assignment = c.assignment()?;
    for e in assignment.elements() {
        let (_, hi) = c.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))?;
        let start = match e.offset() {
            Offset::Offset(o) => o,
            _ => hi,
        };
        if start < hi {
            ends.insert(e.partition(), hi);
        }
    }
    let mut out = Connections::default();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !ends.is_empty() && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            if ends.get(&m.partition()).is_some_and(|hi| m.offset() + 1 >= *hi) {
                ends.remove(&m.partition());
            }
            if let Ok(r) = codec.decode::<ConnectorStatus>(Stream::ConnectorStatus, m.payload().unwrap_or_default()) {
                out.apply(r);
            }
        }
    }
    Ok(out)
}

/// Follows the topic and tells the WFM, until `shutdown`. Never fails the consumer: without the
/// topic or the WFM it keeps trying and says so in the log.
pub fn spawn(
    cfg: Config,
    wfm: WfmClient,
    board: SharedBoard,
    link: Arc<KafkaLink>,
    codec: Arc<Codec>,
    metrics: acd_core::metrics::Registry,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ConnectorStatus>(1024);
    let follow_stop = shutdown.clone();
    let follow_cfg = cfg.clone();
    std::thread::spawn(move || follow(&follow_cfg, tx, link, &codec, &follow_stop));
    tokio::spawn(async move {
        let path = wfm.paths().connection.clone();
        let mut known = Connections::default();
        let mut notifier = Notifier::default();
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = rx.recv() => match r {
                    Some(r) => {
                        known.apply(r);
                        while let Ok(r) = rx.try_recv() {
                            known.apply(r);
                        }
                    }
                    None => return,
                },
                _ = tick.tick() => {}
            }
            let now = now_millis();
            let views = known.connectors(now);
            for v in &views {
                let value = match v.status {
                    ConnectionState::Connected => 2,
                    ConnectionState::Degraded => 1,
                    ConnectionState::Disconnected => 0,
                };
                metrics
                    .gauge(
                        "acd_connector_state",
                        "ACD connector state as its producer reports it: 2 CONNECTED, 1 DEGRADED, 0 DISCONNECTED",
                        &[("acd_id", &v.acd_id), ("connector", &v.connector)],
                    )
                    .store(value, std::sync::atomic::Ordering::Relaxed);
            }
            board.lock().expect("board").connectors = views;
            for body in notifier.due(&known.per_acd(now), now) {
                let json = serde_json::to_vec(&body).expect("connection body serialises");
                let answer = wfm.call(reqwest::Method::POST, &path, Some(&json)).await;
                match classify(&answer.attempt) {
                    Outcome::Success => notifier.accepted(&body, now_millis()),
                    // A refused report is not retried every tick; the next change or heartbeat is.
                    Outcome::Reject => {
                        tracing::warn!(acd_id = %body.acd_id, status = ?answer.status(), "WFM refused a connection report");
                        notifier.accepted(&body, now_millis());
                    }
                    _ => tracing::debug!(acd_id = %body.acd_id, "connection report not delivered; retrying"),
                }
            }
        }
    })
}

fn follow(
    cfg: &Config,
    tx: tokio::sync::mpsc::Sender<ConnectorStatus>,
    link: Arc<KafkaLink>,
    codec: &Codec,
    shutdown: &CancellationToken,
) {
    let mut wait = Duration::from_secs(1);
    while !shutdown.is_cancelled() {
        let c = match reader(cfg, link.clone()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "connector status topic not readable yet; retrying");
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        while !shutdown.is_cancelled() {
            match c.poll(Duration::from_millis(250)) {
                Some(Ok(m)) => {
                    match codec.decode::<ConnectorStatus>(Stream::ConnectorStatus, m.payload().unwrap_or_default()) {
                        Ok(r) => {
                            if tx.blocking_send(r).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(offset = m.offset(), error = %e, "unreadable connector status skipped")
                        }
                    }
                }
                Some(Err(e)) => tracing::debug!(error = %e, "connector status read"),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(acd: &str, connector: &str, status: ConnectionState, at: Millis) -> ConnectorStatus {
        ConnectorStatus {
            acd_id: acd.into(),
            connector: connector.into(),
            status,
            since: at - 1_000,
            last_event_utc: Some(at - 10),
            detail: format!("{connector} ok"),
            reported_utc: at,
        }
    }

    #[test]
    fn connectors_fold_per_acd_and_silence_means_disconnected() {
        use ConnectionState::*;
        let mut c = Connections::default();
        c.apply(report("east", "push", Connected, 100_000));
        c.apply(report("east", "cms", Connected, 100_000));
        c.apply(report("west", "push", Disconnected, 100_000));
        c.apply(report("east", "cms", Disconnected, 90_000));
        let acds = c.per_acd(110_000);
        assert_eq!(acds["east"].status, Connected, "an older report does not win");
        assert_eq!(acds["west"].status, Disconnected);
        c.apply(report("east", "cms", Disconnected, 120_000));
        assert_eq!(c.per_acd(121_000)["east"].status, Degraded);
        assert!(c.per_acd(121_000)["east"].detail.contains("cms: cms ok"));
        // Nothing heard from east's push connector for three minutes.
        let later = c.per_acd(120_000 + STALE_MS + 1);
        assert_eq!(later["east"].status, Disconnected);
        let views = c.connectors(120_000 + STALE_MS + 1);
        assert!(views.iter().any(|v| v.connector == "push" && v.detail.contains("no report since")));
    }

    #[test]
    fn the_wfm_hears_changes_at_once_and_everything_every_minute() {
        use ConnectionState::*;
        let mut c = Connections::default();
        c.apply(report("east", "push", Connected, 100_000));
        let mut n = Notifier::default();
        let due = n.due(&c.per_acd(100_000), 100_000);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].status, "CONNECTED");
        n.accepted(&due[0], 100_000);
        assert!(n.due(&c.per_acd(101_000), 101_000).is_empty());
        c.apply(report("east", "push", Degraded, 102_000));
        assert_eq!(n.due(&c.per_acd(102_000), 102_000)[0].status, "DEGRADED");
        c.apply(report("east", "push", Connected, 103_000));
        assert!(n.due(&c.per_acd(103_000), 103_000).is_empty(), "back to what the WFM knows");
        assert_eq!(n.due(&c.per_acd(160_000), 160_000).len(), 1, "a minute later it hears it again");
    }
}
