//! Avro framing for Kafka values.
//!
//! Without a schema registry a value is Avro single-object encoded: `C3 01`, the schema's 8-byte
//! CRC-64-AVRO fingerprint (little-endian), the datum. With one, it is in the Confluent wire
//! format: `00`, the 4-byte big-endian schema id, the datum. [`Codec::decode`] reads both and
//! resolves an older writer schema (from `schemas/history/`) to the current one.

use std::collections::HashMap;
use std::sync::RwLock;

use apache_avro::{from_avro_datum, from_value, to_avro_datum, to_value, Schema};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value as Json;

use crate::canonical::{canonical_form, fingerprint};

/// The five record streams, one per topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    AgentState,
    Contact,
    Interval,
    AgentActivity,
    ConnectorStatus,
}

impl Stream {
    /// Every stream, in topic order.
    pub const ALL: [Stream; 5] =
        [Stream::AgentState, Stream::Contact, Stream::Interval, Stream::AgentActivity, Stream::ConnectorStatus];

    /// The current `.avsc` text.
    pub fn schema_text(self) -> &'static str {
        match self {
            Stream::AgentState => include_str!("../agent-state.avsc"),
            Stream::Contact => include_str!("../contact.avsc"),
            Stream::Interval => include_str!("../interval.avsc"),
            Stream::AgentActivity => include_str!("../agent-activity.avsc"),
            Stream::ConnectorStatus => include_str!("../connector-status.avsc"),
        }
    }

    /// Earlier versions still readable.
    fn history(self) -> &'static [&'static str] {
        match self {
            Stream::AgentState => &[include_str!("../history/agent-state.1.avsc")],
            _ => &[],
        }
    }

    /// A short name for logs, metrics and subjects.
    pub fn name(self) -> &'static str {
        match self {
            Stream::AgentState => "agent-state",
            Stream::Contact => "contact",
            Stream::Interval => "interval",
            Stream::AgentActivity => "agent-activity",
            Stream::ConnectorStatus => "connector-status",
        }
    }
}

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty value")]
    Empty,
    #[error("unknown framing: first byte {0:#04x} is neither single-object (C3 01) nor Confluent (00)")]
    Framing(u8),
    #[error("value too short for its header")]
    Truncated,
    #[error("no known schema has fingerprint {0}")]
    UnknownFingerprint(String),
    #[error("schema id {0} is not known yet")]
    UnknownSchemaId(u32),
    #[error("written with a schema of {found:?}, read as {expected:?}")]
    WrongStream { expected: Stream, found: Stream },
    #[error("avro: {0}")]
    Avro(String),
}

/// How values are framed on the way out.
#[derive(Debug, Clone, Default)]
pub enum Framing {
    /// Avro single-object encoding.
    #[default]
    SingleObject,
    /// Confluent wire format with the registry's id of each stream's current schema.
    Confluent(HashMap<Stream, u32>),
}

struct Current {
    schema: Schema,
    fingerprint: [u8; 8],
}

/// Encodes and decodes the records of every stream. Cheap to share behind an `Arc`.
pub struct Codec {
    current: HashMap<Stream, Current>,
    /// Writer schemas by fingerprint: the current ones and every historic version.
    by_fingerprint: HashMap<[u8; 8], (Stream, Schema)>,
    /// Writer schemas by registry id, filled by the adapter that talks to the registry.
    by_id: RwLock<HashMap<u32, (Stream, Schema)>>,
    framing: Framing,
}

impl Default for Codec {
    fn default() -> Self {
        Codec::new(Framing::SingleObject)
    }
}

fn parse(text: &str) -> (Schema, [u8; 8]) {
    let json: Json = serde_json::from_str(text).expect("bundled schema is JSON");
    let schema = Schema::parse(&json).expect("bundled schema is valid Avro");
    (schema, fingerprint(&canonical_form(&json)))
}

/// The most apache-avro may allocate for one length it reads (a string's bytes, an array's or a
/// map's items). Its default (512 MiB) lets a corrupt array count reserve tens of GiB (the
/// reservation is count x the size of a value) and abort the process; acd-bridge's records are
/// far below 1 MiB, so a larger length is an error.
pub const MAX_AVRO_ALLOCATION: usize = 1024 * 1024;

impl Codec {
    /// A codec with the bundled schemas.
    pub fn new(framing: Framing) -> Codec {
        apache_avro::util::max_allocation_bytes(MAX_AVRO_ALLOCATION);
        let mut current = HashMap::new();
        let mut by_fingerprint = HashMap::new();
        for stream in Stream::ALL {
            let (schema, fp) = parse(stream.schema_text());
            by_fingerprint.insert(fp, (stream, schema.clone()));
            current.insert(stream, Current { schema, fingerprint: fp });
            for old in stream.history() {
                let (schema, fp) = parse(old);
                by_fingerprint.insert(fp, (stream, schema));
            }
        }
        Codec { current, by_fingerprint, by_id: RwLock::new(HashMap::new()), framing }
    }

    /// The fingerprint of a stream's current schema.
    pub fn fingerprint(&self, stream: Stream) -> [u8; 8] {
        self.current[&stream].fingerprint
    }

    /// Teaches the decoder a registry id (from the registry, or from registering our own).
    pub fn learn_schema_id(&self, id: u32, schema_text: &str) -> Result<(), CodecError> {
        let json: Json = serde_json::from_str(schema_text).map_err(|e| CodecError::Avro(e.to_string()))?;
        let fp = fingerprint(&canonical_form(&json));
        let stream = match self.by_fingerprint.get(&fp) {
            Some((s, _)) => *s,
            None => {
                // A schema we do not bundle: match it to a stream by its record name.
                let name = json.get("name").and_then(Json::as_str).unwrap_or("");
                Stream::ALL
                    .into_iter()
                    .find(|s| {
                        serde_json::from_str::<Json>(s.schema_text())
                            .ok()
                            .and_then(|j| j.get("name").and_then(Json::as_str).map(|n| n == name))
                            == Some(true)
                    })
                    .ok_or_else(|| CodecError::UnknownFingerprint(hex(&fp)))?
            }
        };
        let schema = Schema::parse(&json).map_err(|e| CodecError::Avro(e.to_string()))?;
        self.by_id.write().expect("schema id lock").insert(id, (stream, schema));
        Ok(())
    }

    /// Encodes one record of `stream` in the configured framing.
    pub fn encode<T: Serialize>(&self, stream: Stream, record: &T) -> Result<Vec<u8>, CodecError> {
        let current = &self.current[&stream];
        let value =
            to_value(record).and_then(|v| v.resolve(&current.schema)).map_err(|e| CodecError::Avro(e.to_string()))?;
        let datum = to_avro_datum(&current.schema, value).map_err(|e| CodecError::Avro(e.to_string()))?;
        let mut out = Vec::with_capacity(datum.len() + 10);
        self.header(stream, &mut out);
        out.extend_from_slice(&datum);
        Ok(out)
    }

    /// Encodes an agent state (the hot path: no value tree, no schema resolution).
    pub fn encode_agent_state(&self, s: &crate::records::AgentState) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + s.acd_id.len() + s.login_id.len() + s.event_code.len());
        self.header(Stream::AgentState, &mut out);
        crate::fast::encode_agent_state(s, &mut out);
        out
    }

    /// Encodes a contact (no value tree, no schema resolution).
    pub fn encode_contact(&self, c: &crate::records::Contact) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + c.contact_id.len() + c.queue_name.len());
        self.header(Stream::Contact, &mut out);
        crate::fast::encode_contact(&c.as_ref(), &mut out);
        out
    }

    /// The datum of a single-object value written with the current schema of `stream`: the
    /// values the hand-written fast path reads.
    fn current_datum<'b>(&self, stream: Stream, bytes: &'b [u8]) -> Option<&'b [u8]> {
        let current = &self.current[&stream];
        (bytes.len() >= 10 && bytes[0] == 0xC3 && bytes[1] == 0x01 && bytes[2..10] == current.fingerprint)
            .then(|| &bytes[10..])
    }

    /// Decodes an agent state; values written with the current schema take the fast path.
    pub fn decode_agent_state(&self, bytes: &[u8]) -> Result<crate::records::AgentState, CodecError> {
        if let Some(datum) = self.current_datum(Stream::AgentState, bytes) {
            if let Some(s) = crate::fast::decode_agent_state(datum) {
                return Ok(s);
            }
        }
        self.decode(Stream::AgentState, bytes)
    }

    /// Decodes a contact; values written with the current schema take the fast path.
    pub fn decode_contact(&self, bytes: &[u8]) -> Result<crate::records::Contact, CodecError> {
        if let Some(datum) = self.current_datum(Stream::Contact, bytes) {
            if let Some(c) = crate::fast::decode_contact(datum) {
                return Ok(c);
            }
        }
        self.decode(Stream::Contact, bytes)
    }

    /// Decodes an agent state and hands it to `f`; values written with the current schema are
    /// read in place.
    pub fn with_agent_state<R>(
        &self,
        bytes: &[u8],
        f: impl FnOnce(&crate::records::AgentStateRef<'_>) -> R,
    ) -> Result<R, CodecError> {
        if let Some(datum) = self.current_datum(Stream::AgentState, bytes) {
            if let Some(s) = crate::fast::decode_agent_state_ref(datum) {
                return Ok(f(&s));
            }
        }
        let s: crate::records::AgentState = self.decode(Stream::AgentState, bytes)?;
        Ok(f(&s.as_ref()))
    }

    /// Decodes a contact and hands it to `f`; values written with the current schema are read in
    /// place, without copying a string.
    pub fn with_contact<R>(
        &self,
        bytes: &[u8],
        f: impl FnOnce(&crate::records::ContactRef<'_>) -> R,
    ) -> Result<R, CodecError> {
        if let Some(datum) = self.current_datum(Stream::Contact, bytes) {
            if let Some(c) = crate::fast::decode_contact_ref(datum) {
                return Ok(f(&c));
            }
        }
        let c: crate::records::Contact = self.decode(Stream::Contact, bytes)?;
        Ok(f(&c.as_ref()))
    }

    fn header(&self, stream: Stream, out: &mut Vec<u8>) {
        match &self.framing {
            Framing::SingleObject => {
                out.extend_from_slice(&[0xC3, 0x01]);
                out.extend_from_slice(&self.current[&stream].fingerprint);
            }
            Framing::Confluent(ids) => {
                out.push(0);
                out.extend_from_slice(&ids.get(&stream).copied().unwrap_or(0).to_be_bytes());
            }
        }
    }

    /// Decodes one value of `stream`, whichever framing and schema version wrote it.
    pub fn decode<T: DeserializeOwned>(&self, stream: Stream, bytes: &[u8]) -> Result<T, CodecError> {
        let reader = &self.current[&stream].schema;
        let (_, value) = match bytes.first() {
            None => return Err(CodecError::Empty),
            Some(0xC3) => {
                if bytes.len() < 10 || bytes[1] != 0x01 {
                    return Err(CodecError::Truncated);
                }
                let fp: [u8; 8] = bytes[2..10].try_into().expect("8 bytes");
                let (found, writer) =
                    self.by_fingerprint.get(&fp).ok_or_else(|| CodecError::UnknownFingerprint(hex(&fp)))?;
                check(stream, *found)?;
                (*found, read(writer, reader, &bytes[10..])?)
            }
            Some(0x00) => {
                if bytes.len() < 5 {
                    return Err(CodecError::Truncated);
                }
                let id = u32::from_be_bytes(bytes[1..5].try_into().expect("4 bytes"));
                let ids = self.by_id.read().expect("schema id lock");
                let (found, writer) = ids.get(&id).ok_or(CodecError::UnknownSchemaId(id))?;
                check(stream, *found)?;
                (*found, read(writer, reader, &bytes[5..])?)
            }
            Some(&b) => return Err(CodecError::Framing(b)),
        };
        from_value(&value).map_err(|e| CodecError::Avro(e.to_string()))
    }
}

fn check(expected: Stream, found: Stream) -> Result<(), CodecError> {
    if expected == found {
        Ok(())
    } else {
        Err(CodecError::WrongStream { expected, found })
    }
}

fn read(writer: &Schema, reader: &Schema, mut datum: &[u8]) -> Result<apache_avro::types::Value, CodecError> {
    let reader = if std::ptr::eq(writer, reader) || writer == reader { None } else { Some(reader) };
    let value = from_avro_datum(writer, &mut datum, reader).map_err(|e| CodecError::Avro(e.to_string()))?;
    if !datum.is_empty() {
        return Err(CodecError::Avro(format!("{} bytes left over after the datum", datum.len())));
    }
    Ok(value)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::*;

    #[test]
    fn a_corrupt_array_count_is_an_error_not_an_abort() {
        // Found by the avro_decode fuzz target: an agent-activity value in Confluent framing
        // whose array count made apache-avro reserve 22 GB.
        let bytes = [
            0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x2f, 0x00, 0x00, 0x00, 0x00, 0xfd, 0xff, 0xff, 0xff, 0x02, 0x02,
            0x26, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2f, 0xff, 0x00, 0x00, 0x00,
        ];
        let codec = Codec::new(Framing::Confluent(HashMap::from([(Stream::AgentActivity, 4)])));
        codec.learn_schema_id(4, Stream::AgentActivity.schema_text()).unwrap();
        let e = codec.decode::<serde_json::Value>(Stream::AgentActivity, &bytes).unwrap_err().to_string();
        assert!(e.contains("allocate"), "refused for its size, before any allocation: {e}");
        assert!(codec.decode::<AgentActivity>(Stream::AgentActivity, &bytes).is_err());
    }

    fn state() -> AgentState {
        AgentState {
            acd_id: "east".into(),
            login_id: "a1".into(),
            event_code: "AVAIL".into(),
            reason_code: "".into(),
            event_utc_time: 1_700_000_000_123,
            received_utc: Some(1_700_000_000_200),
        }
    }

    #[test]
    fn single_object_round_trip() {
        let codec = Codec::default();
        let bytes = codec.encode(Stream::AgentState, &state()).unwrap();
        assert_eq!(&bytes[..2], &[0xC3, 0x01]);
        assert_eq!(&bytes[2..10], &codec.fingerprint(Stream::AgentState));
        let back: AgentState = codec.decode(Stream::AgentState, &bytes).unwrap();
        assert_eq!(back, state());
    }

    #[test]
    fn confluent_round_trip_once_the_id_is_known() {
        let codec = Codec::new(Framing::Confluent(HashMap::from([(Stream::AgentState, 7)])));
        let bytes = codec.encode(Stream::AgentState, &state()).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 7]);
        assert!(matches!(codec.decode::<AgentState>(Stream::AgentState, &bytes), Err(CodecError::UnknownSchemaId(7))));
        codec.learn_schema_id(7, Stream::AgentState.schema_text()).unwrap();
        assert_eq!(codec.decode::<AgentState>(Stream::AgentState, &bytes).unwrap(), state());
    }

    #[test]
    fn a_record_of_schema_version_1_still_decodes() {
        let json: Json = serde_json::from_str(Stream::AgentState.history()[0]).unwrap();
        let old = Schema::parse(&json).unwrap();
        let mut v1 = apache_avro::types::Record::new(&old).unwrap();
        v1.put("acdId", "east");
        v1.put("loginId", "a1");
        v1.put("eventCode", "AUX");
        v1.put("reasonCode", "lunch");
        v1.put("eventUtcTime", apache_avro::types::Value::TimestampMillis(5));
        let mut bytes = vec![0xC3, 0x01];
        bytes.extend_from_slice(&fingerprint(&canonical_form(&json)));
        bytes.extend(to_avro_datum(&old, v1).unwrap());
        let back: AgentState = Codec::default().decode(Stream::AgentState, &bytes).unwrap();
        assert_eq!(back.event_code, "AUX");
        assert_eq!(back.event_utc_time, 5);
        assert_eq!(back.received_utc, None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let codec = Codec::default();
        for bad in [&b""[..], b"\x01", b"\xC3\x01\x00", b"\xC3\x01AAAAAAAAxx", b"\x00\x00\x00\x00\x09x"] {
            assert!(codec.decode::<AgentState>(Stream::AgentState, bad).is_err(), "{bad:?}");
        }
        let good = codec.encode(Stream::AgentState, &state()).unwrap();
        assert!(matches!(codec.decode::<Contact>(Stream::Contact, &good), Err(CodecError::WrongStream { .. })));
    }
}
