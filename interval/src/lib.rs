//! The interval arithmetic of docs/intervals.md, When Contact Ended: events and "now" go in,
//! the rows of closed intervals come out. No Kafka, no store, no clock, no I/O: the consumer
//! feeds it and delivers what it returns, and this crate is tested on its own.
//!
//! Layout:
//! - [`grid`]: interval boundaries, the closing rule (watermark, grace, idle), rounding.
//! - [`sla`]: the three service-level formulas.
//! - [`queues`]: contacts into queue and agent-per-queue rows, deduplicated, zero-filled;
//!   [`keys`]: their dedup keys, in memory near the watermark, behind a store seam further back.
//! - [`agents`]: agent states into login/ready/not-ready time and activity segments;
//!   [`cold`]: each agent's states packed, and intervals older than the hot ones behind a store
//!   seam; [`varint`]: the integer packing they use.
//! - [`categories`] and [`agent_map`]: event codes to categories, loginIds to agent values.
//! - [`rollup`]: pre-aggregated half-interval rows summed into whole ones.
//! - [`sent`]: the keys of the rows returned per interval, behind a store seam, so that a
//!   recomputation (even by a rebuilt book) overwrites a row it no longer produces.
//!
//! One book ([`queues::QueueBook`], [`agents::AgentBook`]) serves one input partition: its
//! watermark is that partition's. A late event re-opens the intervals it changes, which are then
//! returned again whole; a row delivered earlier that a recomputation no longer produces comes
//! back as a zero row (or an empty activity list) so that the WFM's upsert overwrites it.

pub mod agent_map;
pub mod agents;
pub mod categories;
pub mod cold;
pub mod grid;
pub mod keys;
pub mod queues;
pub mod rollup;
pub mod sent;
pub mod sla;
pub mod varint;

pub use grid::Grid;

/// What happened to one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Counted.
    Counted,
    /// Seen before: not counted again.
    Duplicate,
    /// Its interval ended longer than `max_lateness` before the watermark: for the DLQ.
    TooLate,
}
