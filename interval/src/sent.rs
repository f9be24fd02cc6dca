//! What the WFM may hold for each interval: the keys of every row a book returned for it, so that
//! a later recomputation that no longer produces a row overwrites it (a zero row, an empty
//! activity list) instead of leaving a stale figure behind.
//!
//! A book keeps these keys behind the [`SentStore`] seam. In memory ([`MemorySent`]) they last as
//! long as the book; the consumer's store keeps them across a rebuild, so a book rebuilt after a
//! crash or a rebalance still knows which rows an earlier book delivered.
//!
//! The keys only grow: a row overwritten with zeros stays listed, and is overwritten again (with
//! the same zeros) by every later recomputation. That way the keys written before a report is
//! sent are always a superset of what the WFM holds, whatever was interrupted on the way.

use std::collections::{BTreeMap, BTreeSet};

use acd_schemas::time::Millis;

/// The keys of the rows returned for one interval of one book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// queueReport rows: queueValue -> (queueName, isOutbound), so a zero row keeps its name.
    pub queues: BTreeMap<String, (String, bool)>,
    /// agentQueueReport rows: (queueValue, agentValue).
    pub agent_queues: BTreeSet<(String, String)>,
    /// agentSystemPerformanceReport rows: agentValue.
    pub agents: BTreeSet<String>,
    /// Agent activity lists: agentValue.
    pub lists: BTreeSet<String>,
}

impl Sent {
    /// True when no row is listed.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty() && self.agent_queues.is_empty() && self.agents.is_empty() && self.lists.is_empty()
    }

    /// Every key of `other` added to these.
    pub fn extend(&mut self, other: Sent) {
        self.queues.extend(other.queues);
        self.agent_queues.extend(other.agent_queues);
        self.agents.extend(other.agents);
        self.lists.extend(other.lists);
    }

    /// A compact byte form: one tagged, length-prefixed entry per key.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |tag: u8, parts: &[&str]| {
            out.push(tag);
            for p in parts {
                out.extend_from_slice(&(p.len() as u32).to_le_bytes());
                out.extend_from_slice(p.as_bytes());
            }
        };
        for (q, (name, outbound)) in &self.queues {
            put(if *outbound { b'O' } else { b'Q' }, &[q, name]);
        }
        for (q, a) in &self.agent_queues {
            put(b'A', &[q, a]);
        }
        for a in &self.agents {
            put(b'P', &[a]);
        }
        for a in &self.lists {
            put(b'L', &[a]);
        }
        out
    }

    /// Reads [`Sent::to_bytes`]; `None` when the bytes are not of that form.
    pub fn from_bytes(mut bytes: &[u8]) -> Option<Sent> {
        fn text(bytes: &mut &[u8]) -> Option<String> {
            let (len, rest) = bytes.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let s = String::from_utf8(rest.get(..len)?.to_vec()).ok()?;
            *bytes = &rest[len..];
            Some(s)
        }
        let mut sent = Sent::default();
        while let Some((tag, rest)) = bytes.split_first() {
            bytes = rest;
            match tag {
                b'Q' | b'O' => {
                    let (q, name) = (text(&mut bytes)?, text(&mut bytes)?);
                    sent.queues.insert(q, (name, *tag == b'O'));
                }
                b'A' => {
                    let (q, a) = (text(&mut bytes)?, text(&mut bytes)?);
                    sent.agent_queues.insert((q, a));
                }
                b'P' => {
                    sent.agents.insert(text(&mut bytes)?);
                }
                b'L' => {
                    sent.lists.insert(text(&mut bytes)?);
                }
                _ => return None,
            }
        }
        Some(sent)
    }
}

/// Where a book keeps the keys of the rows it returned, per interval start.
pub trait SentStore: Send {
    /// The keys returned for the interval `start` so far (empty when none).
    fn get(&mut self, start: Millis) -> Sent;
    /// Replaces the keys of interval `start`.
    fn put(&mut self, start: Millis, sent: &Sent);
    /// Forgets every interval starting before `start`: no event can change them any more.
    fn forget_before(&mut self, start: Millis);
}

/// A book's store, with a `Debug` that does not look inside.
pub(crate) struct SentBox(pub(crate) Box<dyn SentStore>);

impl std::fmt::Debug for SentBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentStore")
    }
}

/// Keys in memory, for as long as the book lives.
#[derive(Debug, Default, Clone)]
pub struct MemorySent(pub BTreeMap<Millis, Sent>);

impl SentStore for MemorySent {
    fn get(&mut self, start: Millis) -> Sent {
        self.0.get(&start).cloned().unwrap_or_default()
    }

    fn put(&mut self, start: Millis, sent: &Sent) {
        self.0.insert(start, sent.clone());
    }

    fn forget_before(&mut self, start: Millis) {
        self.0 = self.0.split_off(&start);
    }
}

/// A shared in-memory store, for tests that rebuild a book over the same keys.
#[derive(Debug, Default, Clone)]
pub struct SharedSent(pub std::sync::Arc<std::sync::Mutex<MemorySent>>);

impl SentStore for SharedSent {
    fn get(&mut self, start: Millis) -> Sent {
        self.0.lock().expect("sent").get(start)
    }

    fn put(&mut self, start: Millis, sent: &Sent) {
        self.0.lock().expect("sent").put(start, sent)
    }

    fn forget_before(&mut self, start: Millis) {
        self.0.lock().expect("sent").forget_before(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_bytes_and_garbage_is_refused() {
        let mut s = Sent::default();
        s.queues.insert("8057".into(), ("Chat|Skill\n".into(), true));
        s.queues.insert("q2".into(), (String::new(), false));
        s.agent_queues.insert(("8057".into(), "a-1".into()));
        s.agents.insert("a-1".into());
        s.agents.insert("ü".into());
        s.lists.insert("a-2".into());
        assert_eq!(Sent::from_bytes(&s.to_bytes()), Some(s.clone()));
        assert_eq!(Sent::from_bytes(&[]), Some(Sent::default()));
        let bytes = s.to_bytes();
        assert_eq!(Sent::from_bytes(&bytes[..bytes.len() - 1]), None, "cut short");
        assert_eq!(Sent::from_bytes(b"Z"), None, "unknown tag");
    }

    #[test]
    fn memory_keys_are_forgotten_before_a_start() {
        let mut m = MemorySent::default();
        let one = Sent { agents: ["a".to_string()].into(), ..Sent::default() };
        m.put(0, &one);
        m.put(900_000, &one);
        m.forget_before(900_000);
        assert!(m.get(0).is_empty());
        assert_eq!(m.get(900_000), one);
    }
}
