//! The agent states of an [`crate::agents::AgentBook`], packed, and those of its cold intervals
//! behind a store seam, so that the book's memory does not grow with the lateness window.
//!
//! A book keeps in memory the states of its *hot* intervals (every one not closed yet and the
//! last [`HOT_INTERVALS`] closed) and, per agent, the state in force where the hot intervals
//! begin, each agent's states packed in a [`Line`] (about 7 bytes a state). Each older interval
//! is written once, when it leaves the hot range, as one [`ColdInterval`]: every agent's state in
//! force at its start (logged-out ones left out) and every state inside it. That is all a
//! recomputation of the interval needs, so a late state that re-opens a cold interval reads one
//! value per interval it changes. Codes are the book's own text ids: a cold interval is read only
//! by the book that wrote it. The consumer keeps these values in its sled store; they are
//! rebuilt from Kafka with their book, so they need no flush.

use std::collections::BTreeMap;

use acd_schemas::time::Millis;

use crate::varint::{get_varint, put_varint, unzigzag, zigzag};

/// How many closed intervals keep their agent states in memory.
pub const HOT_INTERVALS: i64 = 1;

/// Where the states of cold intervals are kept: one value per interval start.
pub trait ColdStore: Send + Sync {
    /// Keeps `bytes` for interval `start`, replacing what was there.
    fn put(&mut self, start: Millis, bytes: Vec<u8>);
    /// What was kept for interval `start`.
    fn get(&mut self, start: Millis) -> Option<Vec<u8>>;
    /// Forgets every interval before `start`.
    fn forget_before(&mut self, start: Millis);
}

/// A [`ColdStore`] in memory, for tests and one-shot computations (still a fraction of the size
/// of unpacked states).
#[derive(Debug, Default)]
pub struct MemoryCold(BTreeMap<Millis, Vec<u8>>);

impl ColdStore for MemoryCold {
    fn put(&mut self, start: Millis, bytes: Vec<u8>) {
        self.0.insert(start, bytes);
    }

    fn get(&mut self, start: Millis) -> Option<Vec<u8>> {
        self.0.get(&start).cloned()
    }

    fn forget_before(&mut self, start: Millis) {
        self.0 = self.0.split_off(&start);
    }
}

/// A state as a book keeps it: its event and reason codes as ids of the book's text table, and
/// the caller's tag (the consumer's Kafka offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    pub code: u32,
    pub reason: u32,
    pub tag: i64,
}

/// A state and its eventUtcTime.
pub type Timed = (Millis, Kept);

/// Writes a state as differences from the previous one (time and tag), codes as they are.
fn put_state(out: &mut Vec<u8>, prev: &mut (Millis, i64), (t, k): &Timed) {
    put_varint(out, zigzag(t.wrapping_sub(prev.0)));
    put_varint(out, k.code as u64);
    put_varint(out, k.reason as u64);
    put_varint(out, zigzag(k.tag.wrapping_sub(prev.1)));
    *prev = (*t, k.tag);
}

fn get_state(bytes: &mut &[u8], prev: &mut (Millis, i64)) -> Option<Timed> {
    let t = prev.0.wrapping_add(unzigzag(get_varint(bytes)?));
    let code = u32::try_from(get_varint(bytes)?).ok()?;
    let reason = u32::try_from(get_varint(bytes)?).ok()?;
    let tag = prev.1.wrapping_add(unzigzag(get_varint(bytes)?));
    *prev = (t, tag);
    Some((t, Kept { code, reason, tag }))
}

/// One agent's states, sorted by time, packed. States come in time order almost always: those
/// are appended; any other change unpacks the agent's states and packs them again.
#[derive(Debug, Clone, Default)]
pub struct Line {
    packed: Vec<u8>,
    len: u32,
    first: Millis,
    last: (Millis, i64),
}

impl Line {
    /// A line of `states` (sorted by time, no time twice).
    pub fn pack(states: &[Timed]) -> Line {
        let mut line = Line::default();
        for s in states {
            line.push(*s);
        }
        line.packed.shrink_to_fit();
        line
    }

    /// Its states.
    pub fn unpack(&self) -> Vec<Timed> {
        let mut out = Vec::with_capacity(self.len as usize);
        let (mut bytes, mut prev) = (self.packed.as_slice(), (0, 0));
        while let Some(s) = get_state(&mut bytes, &mut prev) {
            out.push(s);
        }
        out
    }

    /// How many states it holds.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The time of its first state.
    pub fn first(&self) -> Option<Millis> {
        (self.len > 0).then_some(self.first)
    }

    /// Appends a state later than every other.
    fn push(&mut self, s: Timed) {
        debug_assert!(self.len == 0 || s.0 > self.last.0);
        if self.len == 0 {
            self.first = s.0;
        }
        let mut prev = self.last;
        put_state(&mut self.packed, &mut prev, &s);
        self.last = prev;
        self.len += 1;
    }

    /// True when a state of time `t` is in it.
    pub fn contains(&self, t: Millis) -> bool {
        self.len > 0
            && t >= self.first
            && t <= self.last.0
            && (t == self.last.0 || self.unpack().binary_search_by_key(&t, |(x, _)| *x).is_ok())
    }

    /// Adds a state; false (and nothing changes) when one of its time is there.
    pub fn insert(&mut self, s: Timed) -> bool {
        if self.len == 0 || s.0 > self.last.0 {
            self.push(s);
            return true;
        }
        let mut states = self.unpack();
        match states.binary_search_by_key(&s.0, |(x, _)| *x) {
            Ok(_) => false,
            Err(pos) => {
                states.insert(pos, s);
                *self = Line::pack(&states);
                true
            }
        }
    }

    /// The time of the first state after `t`.
    pub fn next_after(&self, t: Millis) -> Option<Millis> {
        if self.len == 0 || t >= self.last.0 {
            return None;
        }
        if t < self.first {
            return Some(self.first);
        }
        let states = self.unpack();
        states.get(states.partition_point(|(x, _)| *x <= t)).map(|(x, _)| *x)
    }
}

/// One agent in one cold interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColdAgent {
    /// The state in force at the interval's start, unless it is a logged-out one.
    pub in_force: Option<Timed>,
    /// The states inside the interval, by time.
    pub states: Vec<Timed>,
}

impl ColdAgent {
    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.in_force.is_none() && self.states.is_empty()
    }

    /// The state in force at the interval's start, then those inside.
    pub fn timeline(&self) -> Vec<Timed> {
        self.in_force.into_iter().chain(self.states.iter().copied()).collect()
    }
}

/// One cold interval: by loginId.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColdInterval {
    pub agents: BTreeMap<String, ColdAgent>,
}

impl ColdInterval {
    /// True when some agent has a state inside the interval.
    pub fn has_states(&self) -> bool {
        self.agents.values().any(|a| !a.states.is_empty())
    }

    /// Appends one agent's record to `out`: its loginId, the state in force, the states inside.
    /// The bytes of a cold interval are its agents' records one after the other.
    pub fn put_agent(out: &mut Vec<u8>, login: &str, in_force: Option<&Timed>, states: &[Timed]) {
        put_varint(out, login.len() as u64);
        out.extend_from_slice(login.as_bytes());
        match in_force {
            Some(s) => {
                out.push(1);
                put_state(out, &mut (0, 0), s);
            }
            None => out.push(0),
        }
        put_varint(out, states.len() as u64);
        let mut prev = (0, 0);
        for s in states {
            put_state(out, &mut prev, s);
        }
    }

    /// The compact form (see [`ColdInterval::put_agent`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (login, agent) in &self.agents {
            ColdInterval::put_agent(&mut out, login, agent.in_force.as_ref(), &agent.states);
        }
        out
    }

    /// Reads [`ColdInterval::to_bytes`]; `None` when the bytes are not of that form.
    pub fn from_bytes(mut bytes: &[u8]) -> Option<ColdInterval> {
        let b = &mut bytes;
        let mut out = ColdInterval::default();
        while !b.is_empty() {
            let n = get_varint(b)? as usize;
            if n > b.len() {
                return None;
            }
            let (login, rest) = b.split_at(n);
            *b = rest;
            let login = String::from_utf8(login.to_vec()).ok()?;
            let (&flag, rest) = b.split_first()?;
            *b = rest;
            let in_force = match flag {
                0 => None,
                1 => Some(get_state(b, &mut (0, 0))?),
                _ => return None,
            };
            let count = get_varint(b)? as usize;
            let mut states = Vec::with_capacity(count.min(4096));
            let mut prev = (0, 0);
            for _ in 0..count {
                states.push(get_state(b, &mut prev)?);
            }
            out.agents.insert(login, ColdAgent { in_force, states });
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(time: Millis, code: u32, tag: i64) -> Timed {
        (time, Kept { code, reason: code / 2, tag })
    }

    #[test]
    fn a_cold_interval_reads_back_as_written() {
        let mut c = ColdInterval::default();
        c.agents.insert(
            "1001".into(),
            ColdAgent {
                in_force: Some(s(-5, 3, 7)),
                states: vec![s(1_714_000_000_000, 1, 9), s(1_714_000_060_000, 2, 12)],
            },
        );
        c.agents.insert("1002".into(), ColdAgent { in_force: Some(s(1_713_999_000_000, 4, 3)), states: vec![] });
        let bytes = c.to_bytes();
        assert_eq!(ColdInterval::from_bytes(&bytes), Some(c.clone()));
        assert!(c.has_states());
        assert!(bytes.len() < 64, "{} bytes", bytes.len());
        assert_eq!(ColdInterval::from_bytes(&bytes[..bytes.len() - 1]), None, "cut inside a record");
        assert_eq!(ColdInterval::from_bytes(&[]), Some(ColdInterval::default()));
        assert_eq!(ColdInterval::from_bytes(&[1, b'a', 7]), None);
    }

    #[test]
    fn a_line_keeps_its_states_sorted_and_packed() {
        let mut line = Line::default();
        assert!(line.insert(s(1_000, 1, 10)));
        assert!(line.insert(s(3_000, 2, 12)));
        assert!(line.insert(s(2_000, 3, 11)), "out of order");
        assert!(!line.insert(s(2_000, 4, 99)), "a time twice");
        assert!(line.insert(s(-500, 5, -1)), "before the first, before the epoch");
        assert_eq!(line.unpack(), vec![s(-500, 5, -1), s(1_000, 1, 10), s(2_000, 3, 11), s(3_000, 2, 12)]);
        assert_eq!((line.len(), line.first()), (4, Some(-500)));
        assert!(line.contains(2_000) && line.contains(3_000) && !line.contains(2_500) && !line.contains(9_000));
        assert_eq!(line.next_after(-1_000), Some(-500));
        assert_eq!(line.next_after(1_000), Some(2_000));
        assert_eq!(line.next_after(2_500), Some(3_000));
        assert_eq!(line.next_after(3_000), None);
        let mut many = Line::default();
        for i in 0..1000 {
            many.insert(s(1_714_000_000_000 + i * 500, (i % 4) as u32, 5_000_000 + i * 3));
        }
        assert!(many.packed.len() <= 1000 * 6, "{} bytes for 1000 states", many.packed.len());
    }
}
