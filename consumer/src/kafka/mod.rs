//! The consumer's librdkafka code: group membership, assignments and each partition's own
//! record queue ([`group`]).

pub mod group;

/// Defaults for both consumer groups, each of which an operator can override in
/// `kafka.properties`: bounds on librdkafka's prefetch, and membership timing. librdkafka
/// fetches a partition again while its queue holds fewer than `queued.min.messages` records,
/// and each fetch brings up to `max.partition.fetch.bytes` a partition: bytes as stored,
/// compressed, so 1 MiB of lz4 agent states is some 70,000 records. With librdkafka's defaults
/// (100,000 records, 1 MiB, 50 MiB a fetch) both groups held nearly a whole 1,000,000-record
/// topic, decompressed, most of the consumer's memory. These keep a round or two ahead of the
/// reader, which is enough to keep it busy (a run of 1,000,000 states was faster with them).
pub fn group_defaults(
    cc: &mut rdkafka::ClientConfig,
    properties: &std::collections::BTreeMap<String, String>,
    group: Prefetch,
) {
    let (ahead, wait) = (group.records_ahead.to_string(), group.fetch_wait_ms.to_string());
    let bounds = GROUP_DEFAULTS
        .iter()
        .copied()
        .chain([("queued.min.messages", ahead.as_str()), ("fetch.wait.max.ms", wait.as_str())]);
    acd_core::kafka::set_defaults(cc, properties, bounds);
}

/// What one consumer group fetches ahead.
#[derive(Debug, Clone, Copy)]
pub struct Prefetch {
    /// Records fetched ahead per partition (`queued.min.messages`).
    pub records_ahead: usize,
    /// How long the broker may hold a fetch for partitions without new records
    /// (`fetch.wait.max.ms`).
    pub fetch_wait_ms: u32,
}

/// The forwarding group, whose rounds take up to 32,000 records from all partitions at once.
/// librdkafka has one fetch at a time in flight to a broker: a fetch of only partitions without
/// new records (those read to the end, or while the others' queues are full) is held by the
/// broker up to `fetch.wait.max.ms`, and the partitions that drained meanwhile wait for it. A
/// short wait lets a small queue ahead keep the reader busy.
pub const FORWARDING: Prefetch = Prefetch { records_ahead: 2000, fetch_wait_ms: 25 };

/// The interval group, which reads 5,000 records a round and then works on them (aggregates,
/// checkpoints). It reads four topics, so its fetches often hold partitions without new records:
/// with a 100 ms wait, 1,000,000 contacts ran at 170,000/s with 3,000 ahead and 409,000/s with
/// 10,000; with 25 ms, at 517,000/s with 3,000.
pub const INTERVALS: Prefetch = Prefetch { records_ahead: 3000, fetch_wait_ms: 25 };

/// The prefetch bounds and membership timing both groups share (see [`group_defaults`]).
pub const GROUP_DEFAULTS: &[(&str, &str)] = &[
    ("queued.max.messages.kbytes", "8192"),
    // librdkafka refuses less than `message.max.bytes` (1,000,000).
    ("fetch.max.bytes", "1048576"),
    ("max.partition.fetch.bytes", "131072"),
    // librdkafka 2.x postpones the next fetch of a partition by this much once its queue is full
    // (default 1 s): a fast reader then stalls for most of a second at a time.
    ("fetch.queue.backoff.ms", "5"),
    // A member that stops is noticed, and its partitions moved, within 10 s (default 45 s).
    ("session.timeout.ms", "10000"),
    ("heartbeat.interval.ms", "1000"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_bounds_per_group_and_an_operator_property_wins() {
        let mut cc = rdkafka::ClientConfig::new();
        group_defaults(&mut cc, &Default::default(), INTERVALS);
        assert_eq!(cc.get("queued.min.messages"), Some("3000"));
        assert_eq!(cc.get("fetch.wait.max.ms"), Some("25"));
        assert_eq!(cc.get("fetch.queue.backoff.ms"), Some("5"));
        assert_eq!(cc.get("session.timeout.ms"), Some("10000"));
        assert_eq!(cc.get("max.partition.fetch.bytes"), Some("131072"));

        let mut cc = rdkafka::ClientConfig::new();
        let given: std::collections::BTreeMap<String, String> =
            [("queued.min.messages", "500"), ("fetch.wait.max.ms", "500")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into();
        cc.set("queued.min.messages", "500").set("fetch.wait.max.ms", "500");
        group_defaults(&mut cc, &given, FORWARDING);
        assert_eq!(cc.get("queued.min.messages"), Some("500"));
        assert_eq!(cc.get("fetch.wait.max.ms"), Some("500"));
        assert_eq!(cc.get("fetch.max.bytes"), Some("1048576"));
    }
}
