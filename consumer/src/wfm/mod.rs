//! The WFM side: the API client with its token life cycle ([`client`]), the one place that
//! decides what an answer means ([`classify`]), the shared backoff schedule ([`retry`]), and delivering
//! one request with retries until it is done, refused or abandoned ([`delivery`]).

pub mod classify;
pub mod client;
pub mod delivery;

/// The retry policy, shared with the LiveVox connector (see [`acd_core::retry`]).
pub use acd_core::retry;

pub use client::*;
