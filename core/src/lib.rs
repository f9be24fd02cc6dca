//! What the producer and the consumer share: configuration, the Kafka adapter and connection
//! state, shutdown and metrics. The configuration holds every section of the file, the WFM and
//! interval settings included, as checked plain data (the SLA formula already parsed into the
//! interval library's type); what those settings mean is the consumer's and the interval
//! library's business, not this crate's.
//!
//! Layout:
//! - [`config`]: the TOML file of docs/configuration.md, `ACD_BRIDGE__…` overrides, secret files.
//! - [`kafka`]: librdkafka clients built from the configuration, topic creation, the codec with
//!   its schema-registry seam.
//! - [`link`]: the Kafka connection state, logged once per change instead of once per failure.
//! - [`memory`]: gives the allocator's free memory back after large, short-lived work.
//! - [`metrics`]: counters and gauges rendered as Prometheus text.
//! - [`retry`]: exponential backoff with full jitter, and `Retry-After`: every HTTP client's policy.
//! - [`shutdown`]: one cancellation token, fired by SIGINT or SIGTERM.

pub mod config;
pub mod kafka;
pub mod link;
pub mod memory;
pub mod metrics;
pub mod retry;
pub mod shutdown;

pub use config::{Config, ConfigError, Secret};

/// At most `n` bytes of `s`, cut at a character boundary: for error texts and headers of
/// bounded size.
pub fn truncate(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
