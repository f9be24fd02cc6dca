//! The consumer's librdkafka code: group membership, assignments and each partition's own
//! record queue ([`group`]).

pub mod group;

/// Bounds on librdkafka's prefetch for both consumer groups. librdkafka keeps fetching ahead
/// until its queues hold `queued.min.messages` records a partition or `queued.max.messages.kbytes`
/// in all; its defaults (100,000 records, 64 MiB) made most of the consumer's resident memory.
/// These keep a few rounds' worth ahead of the reader, enough to keep it busy while a round is
/// decoded and delivered; an operator can override any of them in `kafka.properties`.
pub fn bound_prefetch(cc: &mut rdkafka::ClientConfig, properties: &std::collections::BTreeMap<String, String>) {
    for (key, value) in PREFETCH {
        if !properties.contains_key(*key) {
            cc.set(*key, *value);
        }
    }
}

/// The prefetch bounds and their values (see [`bound_prefetch`]).
pub const PREFETCH: &[(&str, &str)] = &[
    ("queued.min.messages", "20000"),
    ("queued.max.messages.kbytes", "16384"),
    ("fetch.max.bytes", "8388608"),
    ("max.partition.fetch.bytes", "1048576"),
];
