//! Connector connection state on `topics.connector_status` (key `acdId/connector`): a record on
//! every change and at least every 60 s, so a reader can also tell a silent producer from a
//! connected one. The consumer turns these into the WFM `connection` calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acd_schemas::records::{ConnectionState, ConnectorStatus};
use acd_schemas::time::{now_millis, Millis};
use acd_schemas::Stream;
use tokio_util::sync::CancellationToken;

use crate::publisher::{Outgoing, Publisher};

/// How often every connector's state is published even when nothing changed.
pub const HEARTBEAT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Entry {
    status: ConnectionState,
    since: Millis,
    last_event: Option<Millis>,
    detail: String,
    changed: bool,
}

/// The state of every connector of this producer, keyed by (acdId, connector). Cheap to clone.
#[derive(Clone, Default)]
pub struct Statuses {
    inner: Arc<Mutex<BTreeMap<(String, String), Entry>>>,
    wake: Arc<tokio::sync::Notify>,
}

impl Statuses {
    /// Sets a connector's state; a change is published at once.
    pub fn set(&self, acd_id: &str, connector: &str, status: ConnectionState, detail: &str) {
        let now = now_millis();
        let mut map = self.inner.lock().expect("statuses");
        let e = map.entry((acd_id.to_string(), connector.to_string())).or_insert_with(|| Entry {
            status,
            since: now,
            last_event: None,
            detail: String::new(),
            changed: true,
        });
        if e.status != status {
            e.status = status;
            e.since = now;
            e.changed = true;
        }
        if e.detail != detail {
            e.detail = detail.to_string();
            e.changed = true;
        }
        let changed = e.changed;
        drop(map);
        if changed {
            self.wake.notify_one();
        }
    }

    /// Records that a connector received ACD data at `at`: CONNECTED from then on.
    pub fn saw_data(&self, acd_id: &str, connector: &str, at: Millis) {
        {
            let mut map = self.inner.lock().expect("statuses");
            if let Some(e) = map.get_mut(&(acd_id.to_string(), connector.to_string())) {
                if e.status == ConnectionState::Connected {
                    e.last_event = Some(e.last_event.map_or(at, |t| t.max(at)));
                    return;
                }
            }
        }
        self.set(acd_id, connector, ConnectionState::Connected, "receiving data");
        if let Some(e) = self.inner.lock().expect("statuses").get_mut(&(acd_id.to_string(), connector.to_string())) {
            e.last_event = Some(at);
        }
    }

    /// The records to publish: the changed ones, or all of them when `all`.
    fn take(&self, all: bool) -> Vec<ConnectorStatus> {
        let now = now_millis();
        let mut map = self.inner.lock().expect("statuses");
        map.iter_mut()
            .filter(|(_, e)| all || e.changed)
            .map(|((acd_id, connector), e)| {
                e.changed = false;
                ConnectorStatus {
                    acd_id: acd_id.clone(),
                    connector: connector.clone(),
                    status: e.status,
                    since: e.since,
                    last_event_utc: e.last_event,
                    detail: e.detail.clone(),
                    reported_utc: now,
                }
            })
            .collect()
    }

    fn mark_unsent(&self, records: &[ConnectorStatus]) {
        let mut map = self.inner.lock().expect("statuses");
        for r in records {
            if let Some(e) = map.get_mut(&(r.acd_id.clone(), r.connector.clone())) {
                e.changed = true;
            }
        }
    }

    /// Every connector DISCONNECTED, for a clean stop.
    fn disconnect_all(&self, detail: &str) {
        let keys: Vec<(String, String)> = self.inner.lock().expect("statuses").keys().cloned().collect();
        for (acd, connector) in keys {
            self.set(&acd, &connector, ConnectionState::Disconnected, detail);
        }
    }
}

/// Publishes changes at once and everything every [`HEARTBEAT`]; on `shutdown`, every connector
/// as DISCONNECTED.
pub fn spawn(
    statuses: Statuses,
    publisher: Arc<Publisher>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let all = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = heartbeat.tick() => true,
                _ = statuses.wake.notified() => false,
            };
            publish(&statuses, &publisher, all).await;
        }
        statuses.disconnect_all("producer stopped");
        publish(&statuses, &publisher, false).await;
    })
}

async fn publish(statuses: &Statuses, publisher: &Publisher, all: bool) {
    let records = statuses.take(all);
    if records.is_empty() {
        return;
    }
    let mut out = Vec::with_capacity(records.len());
    for r in &records {
        match publisher.encode_one(Stream::ConnectorStatus, r) {
            Ok(value) => out.push(Outgoing { key: format!("{}/{}", r.acd_id, r.connector), value }),
            Err(e) => tracing::error!(error = %e, "connector status does not encode"),
        }
    }
    if let Err(e) = publisher.publish(Stream::ConnectorStatus, out, Duration::from_secs(10)).await {
        tracing::warn!(error = %e, "connector status not published; retrying with the next change or heartbeat");
        statuses.mark_unsent(&records);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_published_once_and_heartbeats_carry_everything() {
        let s = Statuses::default();
        s.saw_data("east", "push", 1_000);
        s.saw_data("east", "push", 2_000);
        s.set("west", "simulator", ConnectionState::Connected, "generating");
        let first = s.take(false);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].last_event_utc, Some(2_000));
        s.saw_data("east", "push", 3_000);
        assert!(s.take(false).is_empty(), "new data is not a change of state");
        let beat = s.take(true);
        assert_eq!(beat.len(), 2);
        assert_eq!(beat[0].last_event_utc, Some(3_000), "a heartbeat carries the latest event time");
        s.disconnect_all("stopped");
        let last = s.take(false);
        assert!(last.iter().all(|r| r.status == ConnectionState::Disconnected && r.detail == "stopped"));
        s.mark_unsent(&last);
        assert_eq!(s.take(false).len(), 2, "an unpublished change is tried again");
    }
}
