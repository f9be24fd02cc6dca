//! The wire contracts of acd-bridge, and nothing else: what travels on Kafka and over HTTP.
//!
//! Layout:
//! - [`canonical`]: the Avro Parsing Canonical Form and CRC-64-AVRO fingerprints, written from
//!   the specification (apache-avro's own `canonical_form()` keeps logical types, which changes
//!   the fingerprint).
//! - [`codec`]: Avro single-object encoding and the Confluent wire format, one decoder for both,
//!   with schema resolution so that records written by an older schema version still decode.
//! - [`records`]: the typed Kafka records, one per topic, mirroring the `.avsc` files.
//! - [`check`]: the ingest rules applied to records read back from Kafka.
//! - [`ingest`] and [`wfm`]: the JSON bodies of the push-ingest API and of the WFM API.
//! - [`time`]: UTC millisecond timestamps and their one text form.
//!
//! This crate does no I/O: fetching a schema from a registry is the Kafka adapter's job.

pub mod canonical;
pub mod check;
pub mod codec;
pub mod fast;
pub mod ingest;
pub mod records;
pub mod time;
pub mod wfm;

pub use codec::{Codec, CodecError, Framing, Stream};
