//! The agent states of cold intervals, behind a store seam, so that an [`crate::agents::AgentBook`]'s
//! memory does not grow with the lateness window.
//!
//! An agent book keeps in memory the states of its *hot* intervals (the last
//! [`HOT_INTERVALS`] before the watermark and everything after) and, per agent, the state in
//! force where the hot intervals begin. Each older interval is written once, when it leaves the
//! hot range, as one [`ColdInterval`]: every agent's state in force at its start (logged-out ones
//! left out) and every state inside it. That is all a recomputation of the interval needs, so a
//! late state that re-opens a cold interval reads one value per interval it changes. The
//! consumer keeps these values in its sled store; they are rebuilt from Kafka with their book,
//! so they need no flush.

use std::collections::BTreeMap;

use acd_schemas::time::Millis;

/// How many intervals before the watermark's keep their agent states in memory.
pub const HOT_INTERVALS: i64 = 4;

/// Where the states of cold intervals are kept: one value per interval start.
pub trait ColdStore: Send + Sync {
    /// Keeps `bytes` for interval `start`, replacing what was there.
    fn put(&mut self, start: Millis, bytes: Vec<u8>);
    /// What was kept for interval `start`.
    fn get(&mut self, start: Millis) -> Option<Vec<u8>>;
    /// Forgets every interval before `start`.
    fn forget_before(&mut self, start: Millis);
}

/// A [`ColdStore`] in memory, for tests and one-shot computations (still a tenth of the size of
/// the states in a book).
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

/// One agent state as a cold interval keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdState {
    pub time: Millis,
    pub code: String,
    pub reason: String,
    /// The book's tag (the consumer's Kafka offset).
    pub tag: i64,
}

/// One agent in one cold interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColdAgent {
    /// The state in force at the interval's start, unless it is a logged-out one.
    pub in_force: Option<ColdState>,
    /// The states inside the interval, by time.
    pub states: Vec<ColdState>,
}

impl ColdAgent {
    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.in_force.is_none() && self.states.is_empty()
    }
}

/// One cold interval: by loginId.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColdInterval {
    pub agents: BTreeMap<String, ColdAgent>,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    (v >> 1) as i64 ^ -((v & 1) as i64)
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn get_text(bytes: &mut &[u8]) -> Option<String> {
    let n = get_varint(bytes)? as usize;
    if n > bytes.len() {
        return None;
    }
    let (s, rest) = bytes.split_at(n);
    *bytes = rest;
    String::from_utf8(s.to_vec()).ok()
}

impl ColdInterval {
    /// True when some agent has a state inside the interval.
    pub fn has_states(&self) -> bool {
        self.agents.values().any(|a| !a.states.is_empty())
    }

    /// A compact form: a table of the codes and reasons, then per agent its loginId, the state
    /// in force and the states inside, times as differences, codes as table indexes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut index: BTreeMap<&str, u64> = BTreeMap::new();
        let mut table: Vec<&str> = Vec::new();
        for agent in self.agents.values() {
            for st in agent.in_force.iter().chain(&agent.states) {
                for text in [st.code.as_str(), st.reason.as_str()] {
                    index.entry(text).or_insert_with(|| {
                        table.push(text);
                        table.len() as u64 - 1
                    });
                }
            }
        }
        let mut out = Vec::with_capacity(self.agents.len() * 24 + table.iter().map(|t| t.len() + 1).sum::<usize>());
        put_varint(&mut out, table.len() as u64);
        for t in &table {
            put_text(&mut out, t);
        }
        let state = |out: &mut Vec<u8>, s: &ColdState, prev: Millis| {
            put_varint(out, zigzag(s.time.wrapping_sub(prev)));
            put_varint(out, index[s.code.as_str()]);
            put_varint(out, index[s.reason.as_str()]);
            put_varint(out, zigzag(s.tag));
        };
        put_varint(&mut out, self.agents.len() as u64);
        for (login, agent) in &self.agents {
            put_text(&mut out, login);
            match &agent.in_force {
                Some(s) => {
                    out.push(1);
                    state(&mut out, s, 0);
                }
                None => out.push(0),
            }
            put_varint(&mut out, agent.states.len() as u64);
            let mut prev = 0;
            for s in &agent.states {
                state(&mut out, s, prev);
                prev = s.time;
            }
        }
        out
    }

    /// Reads [`ColdInterval::to_bytes`]; `None` when the bytes are not of that form.
    pub fn from_bytes(mut bytes: &[u8]) -> Option<ColdInterval> {
        let b = &mut bytes;
        let n = get_varint(b)? as usize;
        let mut table = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            table.push(get_text(b)?);
        }
        let state = |b: &mut &[u8], prev: Millis| -> Option<ColdState> {
            let time = prev.wrapping_add(unzigzag(get_varint(b)?));
            let code = table.get(get_varint(b)? as usize)?.clone();
            let reason = table.get(get_varint(b)? as usize)?.clone();
            Some(ColdState { time, code, reason, tag: unzigzag(get_varint(b)?) })
        };
        let agents = get_varint(b)? as usize;
        let mut out = ColdInterval::default();
        for _ in 0..agents {
            let login = get_text(b)?;
            let (&flag, rest) = b.split_first()?;
            *b = rest;
            let in_force = match flag {
                0 => None,
                1 => Some(state(b, 0)?),
                _ => return None,
            };
            let count = get_varint(b)? as usize;
            let mut states = Vec::with_capacity(count.min(4096));
            let mut prev = 0;
            for _ in 0..count {
                let s = state(b, prev)?;
                prev = s.time;
                states.push(s);
            }
            out.agents.insert(login, ColdAgent { in_force, states });
        }
        b.is_empty().then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(time: Millis, code: &str, tag: i64) -> ColdState {
        ColdState { time, code: code.into(), reason: if code == "AUX" { "BREAK".into() } else { String::new() }, tag }
    }

    #[test]
    fn a_cold_interval_reads_back_as_written() {
        let mut c = ColdInterval::default();
        c.agents.insert(
            "1001".into(),
            ColdAgent {
                in_force: Some(s(-5, "AVAIL", 7)),
                states: vec![s(1_714_000_000_000, "AUX", 9), s(1_714_000_060_000, "ACD", 12)],
            },
        );
        c.agents.insert("1002".into(), ColdAgent { in_force: Some(s(1_713_999_000_000, "AUX", 3)), states: vec![] });
        let bytes = c.to_bytes();
        assert_eq!(ColdInterval::from_bytes(&bytes), Some(c.clone()));
        assert!(c.has_states());
        assert!(bytes.len() < 100, "{} bytes", bytes.len());
        for cut in 0..bytes.len() {
            assert_eq!(ColdInterval::from_bytes(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(ColdInterval::from_bytes(&[]), None);
        assert_eq!(ColdInterval::from_bytes(&[0, 0]), Some(ColdInterval::default()));
    }
}
