//! The consumer's librdkafka code: group membership, assignments and each partition's own
//! record queue ([`group`]).

pub mod group;

/// Bounds on librdkafka's prefetch for both consumer groups. librdkafka fetches a partition
/// again while its queue holds fewer than `queued.min.messages` records, and each fetch brings
/// up to `max.partition.fetch.bytes` a partition: bytes as stored, compressed, so 1 MiB of lz4
/// agent states is some 70,000 records. With librdkafka's defaults (100,000 records, 1 MiB,
/// 50 MiB a fetch) both groups held nearly a whole 1,000,000-record topic, decompressed, most
/// of the consumer's memory. These keep a round or two ahead of the reader, which is enough to
/// keep it busy (a run of 1,000,000 states was faster with them); an operator can override any
/// of them in `kafka.properties`.
pub fn bound_prefetch(
    cc: &mut rdkafka::ClientConfig,
    properties: &std::collections::BTreeMap<String, String>,
    records_ahead: usize,
) {
    let ahead = records_ahead.to_string();
    let bounds = PREFETCH.iter().copied().chain([("queued.min.messages", ahead.as_str())]);
    acd_core::kafka::set_defaults(cc, properties, bounds);
}

/// Records fetched ahead per partition (`queued.min.messages`) for the forwarding group, whose
/// rounds take up to 32,000 records from all partitions at once.
pub const FORWARDING_AHEAD: usize = 2000;

/// The same for the interval group, which reads 5,000 records a round and then works on them
/// (aggregates, checkpoints): with less ahead it waited on fetches (1,000,000 contacts: 158,000/s
/// at 2,000 ahead, 465,000/s at 20,000).
pub const INTERVALS_AHEAD: usize = 10_000;

/// The prefetch bounds both groups share (see [`bound_prefetch`]).
pub const PREFETCH: &[(&str, &str)] = &[
    ("queued.max.messages.kbytes", "8192"),
    // librdkafka refuses less than `message.max.bytes` (1,000,000).
    ("fetch.max.bytes", "1048576"),
    ("max.partition.fetch.bytes", "131072"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_bounds_per_group_and_an_operator_property_wins() {
        let mut cc = rdkafka::ClientConfig::new();
        bound_prefetch(&mut cc, &Default::default(), INTERVALS_AHEAD);
        assert_eq!(cc.get("queued.min.messages"), Some("10000"));
        assert_eq!(cc.get("max.partition.fetch.bytes"), Some("131072"));

        let mut cc = rdkafka::ClientConfig::new();
        let given: std::collections::BTreeMap<String, String> =
            [("queued.min.messages".to_string(), "500".to_string())].into();
        cc.set("queued.min.messages", "500");
        bound_prefetch(&mut cc, &given, FORWARDING_AHEAD);
        assert_eq!(cc.get("queued.min.messages"), Some("500"));
        assert_eq!(cc.get("fetch.max.bytes"), Some("1048576"));
    }
}
