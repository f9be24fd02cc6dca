//! The WFM side: the API client with its token life cycle ([`client`]), the one place that
//! decides what an answer means ([`classify`]), the backoff schedule ([`retry`]), and delivering
//! one request with retries until it is done, refused or abandoned ([`delivery`]).

pub mod classify;
pub mod client;
pub mod delivery;
pub mod retry;

pub use client::*;
