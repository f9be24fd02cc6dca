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
pub fn bound_prefetch(cc: &mut rdkafka::ClientConfig, properties: &std::collections::BTreeMap<String, String>) {
    for (key, value) in PREFETCH {
        if !properties.contains_key(*key) {
            cc.set(*key, *value);
        }
    }
}

/// The prefetch bounds and their values (see [`bound_prefetch`]).
pub const PREFETCH: &[(&str, &str)] = &[
    ("queued.min.messages", "2000"),
    ("queued.max.messages.kbytes", "8192"),
    // librdkafka refuses less than `message.max.bytes` (1,000,000).
    ("fetch.max.bytes", "1048576"),
    ("max.partition.fetch.bytes", "131072"),
];
