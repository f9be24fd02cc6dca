//! The consumer's librdkafka code: group membership, assignments and each partition's own
//! record queue ([`group`]).

pub mod group;
