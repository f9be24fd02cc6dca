//! Which agent states were already forwarded: the deduplication by (acdId, loginId, eventUtcTime)
//! of docs/intervals.md. Pure: no I/O, no clock.
//!
//! In memory, each agent's admitted event times are kept sorted (8 bytes a state) for the
//! lateness window. In the checkpoint store, each polled round adds one journal entry holding only
//! what that round admitted, grouped by agent and delta-encoded (a few bytes a state), so a round
//! costs one small write however many agents it touched. Journal entries whose newest time has
//! left the window are deleted.
//!
//! The maps hash agent keys with FxHash: SipHash took a twentieth of the forwarding thread. The
//! keys are agent ids from the ACD (an authenticated source), and there are as many as agents.

use std::collections::VecDeque;

use rustc_hash::FxHashMap as HashMap;

use acd_schemas::time::Millis;

use crate::checkpoint::Write;

/// The key prefix of journal entries.
pub const PREFIX: &[u8] = b"seen-log/";

/// The set of forwarded states.
#[derive(Debug, Default)]
pub struct Seen {
    window: Millis,
    /// Sorted admitted times per agent key.
    agents: HashMap<String, Vec<Millis>>,
    /// Admitted since the last journal entry, by agent (agents with none stay, emptied).
    pending: HashMap<String, Vec<Millis>>,
    /// Journal entries in the store: (sequence, newest time in it).
    journal: VecDeque<(u64, Millis)>,
    next_seq: u64,
    /// The highest event time admitted.
    high: Millis,
}

fn key(seq: u64) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(format!("{seq:020}").as_bytes());
    k
}

fn put_varint(out: &mut Vec<u8>, v: u64) {
    let mut v = v;
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

/// Encodes times by agent: per agent its name, a count and delta-encoded sorted times.
fn encode(pending: &mut HashMap<String, Vec<Millis>>) -> Vec<u8> {
    let mut agents: Vec<(&String, &mut Vec<Millis>)> = pending.iter_mut().filter(|(_, t)| !t.is_empty()).collect();
    agents.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(agents.iter().map(|(a, t)| a.len() + t.len() * 3 + 4).sum());
    for (agent, times) in agents {
        times.sort_unstable();
        put_varint(&mut out, agent.len() as u64);
        out.extend_from_slice(agent.as_bytes());
        put_varint(&mut out, times.len() as u64);
        let mut prev = 0;
        for t in times.iter() {
            put_varint(&mut out, zigzag(t - prev));
            prev = *t;
        }
    }
    out
}

fn decode(mut bytes: &[u8]) -> Option<Vec<(String, Millis)>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let n = get_varint(&mut bytes)? as usize;
        if n > bytes.len() {
            return None;
        }
        let (name, rest) = bytes.split_at(n);
        bytes = rest;
        let agent = String::from_utf8(name.to_vec()).ok()?;
        let count = get_varint(&mut bytes)?;
        let mut prev = 0;
        for _ in 0..count {
            prev += unzigzag(get_varint(&mut bytes)?);
            out.push((agent.clone(), prev));
        }
    }
    Some(out)
}

impl Seen {
    /// Keeps times for `window` milliseconds of event time.
    pub fn new(window: Millis) -> Seen {
        Seen { window, ..Seen::default() }
    }

    /// Replays the stored journal (entries in key order).
    pub fn load(&mut self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) {
        for (k, v) in entries {
            let Some(seq) = k.strip_prefix(PREFIX).and_then(|s| std::str::from_utf8(s).ok()?.parse::<u64>().ok())
            else {
                continue;
            };
            let Some(pairs) = decode(&v) else { continue };
            let mut newest = Millis::MIN;
            for (agent, t) in pairs {
                newest = newest.max(t);
                self.insert(&agent, t);
            }
            self.journal.push_back((seq, newest));
            self.next_seq = self.next_seq.max(seq + 1);
        }
    }

    fn insert(&mut self, agent: &str, time: Millis) -> bool {
        let times = match self.agents.get_mut(agent) {
            Some(t) => t,
            None => self.agents.entry(agent.to_string()).or_default(),
        };
        let pos = match times.last() {
            Some(&last) if last < time => times.len(),
            _ => match times.binary_search(&time) {
                Ok(_) => return false,
                Err(pos) => pos,
            },
        };
        times.insert(pos, time);
        self.high = self.high.max(time);
        true
    }

    /// True when `(agent, time)` is new; remembers it.
    pub fn admit(&mut self, agent: &str, time: Millis) -> bool {
        if self.insert(agent, time) {
            match self.pending.get_mut(agent) {
                Some(times) => times.push(time),
                None => {
                    self.pending.insert(agent.to_string(), vec![time]);
                }
            }
            true
        } else {
            false
        }
    }

    /// The store writes for this round: one journal entry for what it admitted, and the
    /// deletion of entries (and times) that left the window.
    pub fn take_writes(&mut self) -> Vec<Write> {
        let mut out = Vec::new();
        if self.pending.values().any(|t| !t.is_empty()) {
            let newest = self.pending.values().flatten().copied().max().unwrap_or(Millis::MIN);
            out.push((key(self.next_seq), Some(encode(&mut self.pending))));
            // The agents stay, with their lists emptied: the next rounds mostly see them again.
            for times in self.pending.values_mut() {
                times.clear();
            }
            self.journal.push_back((self.next_seq, newest));
            self.next_seq += 1;
        }
        let cutoff = self.high.saturating_sub(self.window);
        while let Some(&(seq, newest)) = self.journal.front() {
            if newest >= cutoff {
                break;
            }
            self.journal.pop_front();
            out.push((key(seq), None));
        }
        if !out.iter().all(|(_, v)| v.is_some()) {
            for times in self.agents.values_mut() {
                let keep = times.partition_point(|t| *t < cutoff);
                times.drain(..keep);
            }
            self.agents.retain(|_, t| !t.is_empty());
            self.pending.retain(|_, t| !t.is_empty());
        }
        out
    }

    /// How many times are remembered.
    pub fn len(&self) -> usize {
        self.agents.values().map(Vec::len).sum()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Journal entries in the store, for `status`.
    pub fn journal_len(&self) -> usize {
        self.journal.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;

    fn by_key(writes: &[Write]) -> std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        writes.iter().cloned().collect()
    }

    #[test]
    fn duplicates_and_out_of_order() {
        let mut s = Seen::new(48 * HOUR);
        assert!(s.admit("e/a", 10));
        assert!(s.admit("e/a", 5));
        assert!(!s.admit("e/a", 10));
        assert!(s.admit("e/b", 10));
        assert!(!s.admit("e/a", 5));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn one_small_journal_entry_a_round_and_a_faithful_reload() {
        let mut s = Seen::new(48 * HOUR);
        for a in 0..100 {
            for t in 0..10 {
                s.admit(&format!("east/agent{a:03}"), 1_714_000_000_000 + t * 1000);
            }
        }
        let writes = s.take_writes();
        assert_eq!(writes.len(), 1);
        let bytes = writes[0].1.as_ref().unwrap().len();
        assert!(bytes < 1000 * 6, "{bytes} bytes for 1000 states");
        let mut t = Seen::new(48 * HOUR);
        t.load(writes.iter().map(|(k, v)| (k.clone(), v.clone().unwrap())));
        assert_eq!(t.len(), 1000);
        assert!(!t.admit("east/agent042", 1_714_000_005_000));
        assert!(t.admit("east/agent042", 1_714_000_005_001));
        let next = t.take_writes();
        assert_eq!(next.len(), 1);
        assert_ne!(next[0].0, writes[0].0, "a new sequence number after reload");
    }

    #[test]
    fn entries_leave_the_window() {
        let mut s = Seen::new(2 * HOUR);
        s.admit("e/a", 1_000);
        let first = s.take_writes();
        s.admit("e/a", 10 * HOUR);
        let w = by_key(&s.take_writes());
        assert_eq!(w.get(&first[0].0), Some(&None), "the old entry is deleted");
        assert!(s.admit("e/a", 1_000), "expired times are forgotten");
    }
}
