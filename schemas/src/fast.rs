//! A hand-written Avro binary encoder and decoder for [`AgentState`] with the current schema: the
//! one record on the hot path of both ingest and delivery. apache-avro builds a value tree and
//! resolves the schema on every call; this writes and reads the bytes directly. Tests check it
//! byte for byte against apache-avro; any other writer schema goes through apache-avro.

use crate::records::{AgentState, AgentStateRef, Contact, ContactRef, Outcome, Party};

fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends the datum of `s` (no framing).
pub fn encode_agent_state(s: &AgentState, out: &mut Vec<u8>) {
    put_str(out, &s.acd_id);
    put_str(out, &s.login_id);
    put_str(out, &s.event_code);
    put_str(out, &s.reason_code);
    put_long(out, s.event_utc_time);
    match s.received_utc {
        None => put_long(out, 0),
        Some(t) => {
            put_long(out, 1);
            put_long(out, t);
        }
    }
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_long(out, 0),
        Some(s) => {
            put_long(out, 1);
            put_str(out, s);
        }
    }
}

/// Appends the datum of `c` (no framing): the field order of `contact.avsc`.
pub fn encode_contact(c: &ContactRef<'_>, out: &mut Vec<u8>) {
    put_str(out, c.acd_id);
    put_str(out, c.contact_id);
    put_str(out, c.queue_value);
    put_str(out, c.queue_name);
    out.push(c.is_outbound as u8);
    put_long(out, if c.outcome == Outcome::Handled { 0 } else { 1 });
    put_long(out, c.arrived_utc);
    put_long(out, c.ended_utc);
    for d in [c.queue_delay_sec, c.talk_sec, c.hold_sec, c.work_sec] {
        out.extend_from_slice(&d.to_le_bytes());
    }
    put_opt_str(out, c.agent_value);
    put_opt_str(out, c.agent_id);
    match c.party {
        None => put_long(out, 0),
        Some(p) => {
            put_long(out, 1);
            put_long(out, if p == Party::Right { 0 } else { 1 });
        }
    }
    match c.received_utc {
        None => put_long(out, 0),
        Some(t) => {
            put_long(out, 1);
            put_long(out, t);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn long(&mut self) -> Option<i64> {
        let mut z: u64 = 0;
        let mut shift = 0;
        loop {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            if shift > 63 {
                return None;
            }
            z |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        Some((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    fn double(&mut self) -> Option<f64> {
        if self.0.len() < 8 {
            return None;
        }
        let (b, rest) = self.0.split_at(8);
        self.0 = rest;
        Some(f64::from_le_bytes(b.try_into().ok()?))
    }

    fn boolean(&mut self) -> Option<bool> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        match b {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn opt_str(&mut self) -> Option<Option<&'a str>> {
        match self.long()? {
            0 => Some(None),
            1 => Some(Some(self.str()?)),
            _ => None,
        }
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.long()?).ok()?;
        if n > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        std::str::from_utf8(s).ok()
    }
}

/// Reads a datum written with the current schema; `None` when the bytes do not fit it.
pub fn decode_agent_state(datum: &[u8]) -> Option<AgentState> {
    let s = decode_agent_state_ref(datum)?;
    Some(AgentState {
        acd_id: s.acd_id.to_string(),
        login_id: s.login_id.to_string(),
        event_code: s.event_code.to_string(),
        reason_code: s.reason_code.to_string(),
        event_utc_time: s.event_utc_time,
        received_utc: s.received_utc,
    })
}

/// [`decode_agent_state`] without copying: the strings borrow from `datum`.
pub fn decode_agent_state_ref(datum: &[u8]) -> Option<AgentStateRef<'_>> {
    let mut r = Reader(datum);
    let s = AgentStateRef {
        acd_id: r.str()?,
        login_id: r.str()?,
        event_code: r.str()?,
        reason_code: r.str()?,
        event_utc_time: r.long()?,
        received_utc: match r.long()? {
            0 => None,
            1 => Some(r.long()?),
            _ => return None,
        },
    };
    r.0.is_empty().then_some(s)
}

/// Reads a [`Contact`] datum written with the current schema; `None` when the bytes do not fit.
pub fn decode_contact(datum: &[u8]) -> Option<Contact> {
    decode_contact_ref(datum).map(|c| c.to_contact())
}

/// [`decode_contact`] without copying: the strings borrow from `datum`.
pub fn decode_contact_ref(datum: &[u8]) -> Option<ContactRef<'_>> {
    let mut r = Reader(datum);
    let c = ContactRef {
        acd_id: r.str()?,
        contact_id: r.str()?,
        queue_value: r.str()?,
        queue_name: r.str()?,
        is_outbound: r.boolean()?,
        outcome: match r.long()? {
            0 => Outcome::Handled,
            1 => Outcome::Abandoned,
            _ => return None,
        },
        arrived_utc: r.long()?,
        ended_utc: r.long()?,
        queue_delay_sec: r.double()?,
        talk_sec: r.double()?,
        hold_sec: r.double()?,
        work_sec: r.double()?,
        agent_value: r.opt_str()?,
        agent_id: r.opt_str()?,
        party: match r.long()? {
            0 => None,
            1 => match r.long()? {
                0 => Some(Party::Right),
                1 => Some(Party::Wrong),
                _ => return None,
            },
            _ => return None,
        },
        received_utc: match r.long()? {
            0 => None,
            1 => Some(r.long()?),
            _ => return None,
        },
    };
    r.0.is_empty().then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Codec, Framing, Stream};

    #[test]
    fn contacts_byte_for_byte_what_apache_avro_writes() {
        let schema = apache_avro::Schema::parse_str(Stream::Contact.schema_text()).unwrap();
        let base = Contact {
            acd_id: "east".into(),
            contact_id: "c-1".into(),
            queue_value: "8057".into(),
            queue_name: "Chat ä".into(),
            is_outbound: false,
            outcome: Outcome::Handled,
            arrived_utc: 1_713_348_062_000,
            ended_utc: 1_713_348_400_000,
            queue_delay_sec: 12.5,
            talk_sec: 250.0,
            hold_sec: 20.0,
            work_sec: 6.0,
            agent_value: Some("967385".into()),
            agent_id: Some("11eceb46".into()),
            party: None,
            received_utc: Some(5),
        };
        let cases = [
            base.clone(),
            Contact {
                outcome: Outcome::Abandoned,
                agent_value: None,
                agent_id: None,
                received_utc: None,
                ..base.clone()
            },
            Contact { is_outbound: true, party: Some(Party::Right), ..base.clone() },
            Contact {
                is_outbound: true,
                party: Some(Party::Wrong),
                arrived_utc: -1,
                queue_name: String::new(),
                ..base
            },
        ];
        for c in cases {
            let value = apache_avro::to_value(&c).unwrap().resolve(&schema).unwrap();
            let want = apache_avro::to_avro_datum(&schema, value).unwrap();
            let mut got = Vec::new();
            encode_contact(&c.as_ref(), &mut got);
            assert_eq!(got, want, "{c:?}");
            assert_eq!(decode_contact(&want), Some(c.clone()));
            let framed = Codec::new(Framing::SingleObject).encode_contact(&c);
            assert_eq!(&framed[10..], &want[..]);
        }
    }

    #[test]
    fn byte_for_byte_what_apache_avro_writes() {
        let schema = apache_avro::Schema::parse_str(Stream::AgentState.schema_text()).unwrap();
        for (i, received) in
            [None, Some(0), Some(-5), Some(1_714_000_000_123), Some(i64::MAX), Some(i64::MIN)].into_iter().enumerate()
        {
            let s = AgentState {
                acd_id: "east-ä".into(),
                login_id: "x".repeat(i * 70),
                event_code: "ACW".into(),
                reason_code: String::new(),
                event_utc_time: 1_696_147_149_860 - i as i64 * 1_000_000_000_000,
                received_utc: received,
            };
            let value = apache_avro::to_value(&s).unwrap().resolve(&schema).unwrap();
            let want = apache_avro::to_avro_datum(&schema, value).unwrap();
            let mut got = Vec::new();
            encode_agent_state(&s, &mut got);
            assert_eq!(got, want, "{s:?}");
            assert_eq!(decode_agent_state(&want), Some(s.clone()));
            let codec = Codec::new(Framing::SingleObject);
            let framed = codec.encode(Stream::AgentState, &s).unwrap();
            assert_eq!(&framed[10..], &want[..]);
        }
    }

    #[test]
    fn contacts_read_what_apache_avro_writes() {
        let codec = Codec::new(Framing::SingleObject);
        let base = Contact {
            acd_id: "east".into(),
            contact_id: "c-1".into(),
            queue_value: "8057".into(),
            queue_name: "ChatSkill_11".into(),
            is_outbound: true,
            outcome: Outcome::Handled,
            arrived_utc: 1_713_348_062_000,
            ended_utc: 1_713_348_400_000,
            queue_delay_sec: 12.5,
            talk_sec: 250.0,
            hold_sec: 20.0,
            work_sec: 6.0,
            agent_value: Some("967385".into()),
            agent_id: None,
            party: Some(Party::Wrong),
            received_utc: Some(5),
        };
        let variants = [
            base.clone(),
            Contact {
                outcome: Outcome::Abandoned,
                agent_value: None,
                party: None,
                received_utc: None,
                is_outbound: false,
                ..base.clone()
            },
            Contact { agent_id: Some("id".into()), party: Some(Party::Right), ..base.clone() },
        ];
        for c in variants {
            let bytes = codec.encode(Stream::Contact, &c).unwrap();
            assert_eq!(decode_contact(&bytes[10..]), Some(c.clone()));
            assert_eq!(decode_contact(&bytes[10..bytes.len() - 1]), None);
        }
    }

    #[test]
    fn truncated_or_trailing_bytes_are_refused() {
        let s = AgentState {
            acd_id: "a".into(),
            login_id: "b".into(),
            event_code: "c".into(),
            reason_code: "d".into(),
            event_utc_time: 1,
            received_utc: Some(2),
        };
        let mut bytes = Vec::new();
        encode_agent_state(&s, &mut bytes);
        for n in 0..bytes.len() {
            assert_eq!(decode_agent_state(&bytes[..n]), None);
        }
        bytes.push(0);
        assert_eq!(decode_agent_state(&bytes), None);
    }
}
