//! Which agent states were already forwarded: the deduplication by (acdId, loginId, eventUtcTime)
//! of docs/intervals.md. Pure: no I/O, no clock; the caller hands in a reader of its store.
//!
//! Memory holds each agent's admitted times of the last few minutes of event time (the *hot*
//! times, from [`HOT`] before the highest time of the partition furthest behind, cut at a whole
//! minute, within [`HOT_BUDGET`]), sorted, where nearly every duplicate lands: a state re-read
//! after a restart or a rebalance, a client's retry.
//! Older times are *cold*: they are written to the checkpoint store, one value per minute of
//! event time (`seen-cold/<minute>`, grouped by agent and delta-encoded like the journal), when
//! they leave the hot range, and a state older than the hot range is looked up there. (One value
//! per agent and minute would be tens of thousands of store keys a minute; sled holds about a
//! kilobyte of memory per key written, so the store would grow in memory what it saved.) So memory does not grow with the
//! lateness window: it holds a few minutes of states, however long the window.
//!
//! In the store, each polled round also adds one journal entry holding only what that round
//! admitted to memory, grouped by agent and delta-encoded (a few bytes a state), so a round
//! costs one small write however many agents it touched. An entry is deleted once all its times
//! are cold (in the same write as the cold values); where the hot range starts is kept beside
//! them (`seen-cold-until`), so a restart loads only the hot times. Cold values leave the
//! store with the lateness window.
//!
//! The maps hash agent keys with FxHash: SipHash took a twentieth of the forwarding thread. The
//! keys are agent ids from the ACD (an authenticated source), and there are as many as agents.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rustc_hash::FxHashMap as HashMap;

use acd_interval::varint::{get_varint, put_varint, unzigzag, zigzag};
use acd_schemas::time::Millis;

use crate::checkpoint::Write;

/// The key prefix of journal entries.
pub const PREFIX: &[u8] = b"seen-log/";
/// The key prefix of cold times.
pub const COLD_PREFIX: &[u8] = b"seen-cold/";
/// The key of where the hot range starts.
pub const UNTIL_KEY: &[u8] = b"seen-cold-until";
/// How far before the highest time admitted times stay in memory (plus up to a minute).
pub const HOT: Millis = 120_000;
/// Cold times are kept per agent and minute.
const BUCKET: Millis = 60_000;
/// Hot times kept in memory at most. The hot range follows the partition furthest behind (see
/// [`Seen::take_writes`]); should that hold more than this (a partition that stopped while the
/// others went on), it follows the highest time admitted instead.
pub const HOT_BUDGET: usize = 500_000;
/// How many rounds' cold writes are kept in memory too: the store holds them only once the
/// committer, which runs up to three rounds behind, has written them.
const UNCONFIRMED_ROUNDS: usize = 4;

/// Reads a key of the caller's store.
pub type StoreGet<'a> = dyn FnMut(&[u8]) -> Option<Vec<u8>> + 'a;

/// The set of forwarded states.
#[derive(Debug)]
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
    /// The highest event time seen per partition: an agent's states are all on one partition.
    partition_high: HashMap<i32, Millis>,
    /// Times before this are cold.
    cold_until: Millis,
    /// Cold minutes read or changed this round (complete, by agent), and which changed.
    cold_round: BTreeMap<Millis, Minute>,
    cold_changed: BTreeSet<Millis>,
    /// Cold minutes written by the last rounds (as written), newest last.
    unconfirmed: VecDeque<BTreeMap<Millis, Vec<u8>>>,
    /// Cold values before this minute were handed out for removal.
    expired_until: Millis,
}

impl Default for Seen {
    fn default() -> Seen {
        Seen {
            window: 0,
            agents: HashMap::default(),
            pending: HashMap::default(),
            journal: VecDeque::new(),
            next_seq: 0,
            high: Millis::MIN,
            partition_high: HashMap::default(),
            cold_until: Millis::MIN,
            cold_round: BTreeMap::new(),
            cold_changed: BTreeSet::new(),
            unconfirmed: VecDeque::new(),
            expired_until: Millis::MIN,
        }
    }
}

/// A minute as bytes that sort like the number.
fn minute_bytes(minute: Millis) -> [u8; 8] {
    ((minute as u64) ^ (1 << 63)).to_be_bytes()
}

/// One cold minute: each agent's times in it, sorted.
type Minute = HashMap<String, Vec<Millis>>;

fn cold_key(minute: Millis) -> Vec<u8> {
    let mut k = COLD_PREFIX.to_vec();
    k.extend_from_slice(&minute_bytes(minute));
    k
}

fn decode_minute(bytes: &[u8]) -> Option<Minute> {
    let mut out = Minute::default();
    for (agent, t) in decode(bytes)? {
        out.entry(agent).or_default().push(t);
    }
    for times in out.values_mut() {
        times.sort_unstable();
        times.dedup();
    }
    Some(out)
}

fn key(seq: u64) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(format!("{seq:020}").as_bytes());
    k
}

/// Encodes times by agent: per agent its name, a count and delta-encoded sorted times.
fn encode(pending: &mut HashMap<String, Vec<Millis>>) -> Vec<u8> {
    let mut agents: Vec<(&String, &mut Vec<Millis>)> = pending.iter_mut().filter(|(_, t)| !t.is_empty()).collect();
    agents.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(agents.iter().map(|(a, t)| a.len() + t.len() * 3 + 4).sum());
    for (agent, times) in agents {
        times.sort_unstable();
        put_agent(&mut out, agent, times);
    }
    out
}

/// One agent's entry: its name, a count and its sorted times delta-encoded.
fn put_agent(out: &mut Vec<u8>, agent: &str, times: &[Millis]) {
    put_varint(out, agent.len() as u64);
    out.extend_from_slice(agent.as_bytes());
    put_varint(out, times.len() as u64);
    let mut prev = 0;
    for t in times {
        put_varint(out, zigzag(t - prev));
        prev = *t;
    }
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

    /// Replays the stored journal (entries in key order), with where the hot range started
    /// (the value of [`UNTIL_KEY`]).
    pub fn load(&mut self, entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>, until: Option<Vec<u8>>) {
        if let Some(until) = until.and_then(|v| Some(Millis::from_le_bytes(v.try_into().ok()?))) {
            self.cold_until = until;
            self.high = self.high.max(until);
        }
        for (k, v) in entries {
            let Some(seq) = k.strip_prefix(PREFIX).and_then(|s| std::str::from_utf8(s).ok()?.parse::<u64>().ok())
            else {
                continue;
            };
            let Some(pairs) = decode(&v) else { continue };
            let mut newest = Millis::MIN;
            for (agent, t) in pairs {
                newest = newest.max(t);
                // Older ones were made cold (and written) after this entry.
                if t >= self.cold_until {
                    self.insert(&agent, t);
                }
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

    /// True when `(agent, time)`, read from `partition`, is new; remembers it. A time before the
    /// hot range is looked up with `store` (unless this round or a recent one read or wrote its
    /// value).
    pub fn admit(&mut self, partition: i32, agent: &str, time: Millis, store: &mut StoreGet<'_>) -> bool {
        let high = self.partition_high.entry(partition).or_insert(time);
        *high = (*high).max(time);
        if time >= self.cold_until {
            if !self.insert(agent, time) {
                return false;
            }
            match self.pending.get_mut(agent) {
                Some(times) => times.push(time),
                None => {
                    self.pending.insert(agent.to_string(), vec![time]);
                }
            }
            return true;
        }
        if time < self.high.saturating_sub(self.window) {
            // Beyond the lateness window: nothing is remembered that far back.
            return true;
        }
        let minute = time.div_euclid(BUCKET) * BUCKET;
        if !self.cold_round.contains_key(&minute) {
            // A minute a recent round wrote may not be in the store yet.
            let recent = self.unconfirmed.iter().rev().find_map(|round| round.get(&minute).cloned());
            let times = recent.or_else(|| store(&cold_key(minute))).and_then(|v| decode_minute(&v)).unwrap_or_default();
            self.cold_round.insert(minute, times);
        }
        let times = self.cold_round.get_mut(&minute).expect("read").entry(agent.to_string()).or_default();
        match times.binary_search(&time) {
            Ok(_) => false,
            Err(pos) => {
                times.insert(pos, time);
                self.cold_changed.insert(minute);
                true
            }
        }
    }

    /// The store writes for this round: one journal entry for what it admitted to memory, the
    /// cold values it changed, and, when the hot range moved on, the times that left it (one
    /// value per agent and minute) with the journal entries they empty.
    ///
    /// The hot range starts [`HOT`] before the highest time of the partition furthest behind,
    /// not before the highest time of all: partitions are read side by side, a fetch at a time,
    /// and while catching up one can be many minutes of event time ahead of another. Measured
    /// from the highest time of all, nearly every state of the others would be older than the
    /// hot range, each looked up in and written back to the store.
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
        let mut written: BTreeMap<Millis, Vec<u8>> = BTreeMap::new();
        for minute in std::mem::take(&mut self.cold_changed) {
            let mut times = self.cold_round.remove(&minute).expect("read before changed");
            written.insert(minute, encode(&mut times));
        }
        self.cold_round.clear();
        let highest = self.high.saturating_sub(HOT);
        let until = match self.partition_high.values().min() {
            Some(slowest) if self.len() <= HOT_BUDGET => slowest.saturating_sub(HOT).min(highest),
            _ => highest,
        };
        let until = until.div_euclid(BUCKET) * BUCKET;
        if until > self.cold_until {
            // Each minute's value is written as its agents come (the order of agents in a value
            // does not matter to the reader).
            for (agent, times) in self.agents.iter_mut() {
                let n = times.partition_point(|t| *t < until);
                let mut rest = &times[..n];
                while let Some(first) = rest.first() {
                    let minute = first.div_euclid(BUCKET) * BUCKET;
                    let m = rest.partition_point(|t| *t < minute + BUCKET);
                    put_agent(written.entry(minute).or_default(), agent, &rest[..m]);
                    rest = &rest[m..];
                }
                times.drain(..n);
            }
            self.agents.retain(|_, t| !t.is_empty());
            self.pending.retain(|_, t| !t.is_empty());
            self.cold_until = until;
            out.push((UNTIL_KEY.to_vec(), Some(until.to_le_bytes().to_vec())));
            while let Some(&(seq, newest)) = self.journal.front() {
                if newest >= until {
                    break;
                }
                self.journal.pop_front();
                out.push((key(seq), None));
            }
        }
        for (minute, bytes) in &written {
            out.push((cold_key(*minute), Some(bytes.clone())));
        }
        self.unconfirmed.push_back(written);
        if self.unconfirmed.len() > UNCONFIRMED_ROUNDS {
            self.unconfirmed.pop_front();
        }
        out
    }

    /// When cold values left the lateness window since the last call: the key range
    /// `[COLD_PREFIX, end)` they lie in, for the caller to remove.
    pub fn expired(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        let cutoff = self.high.saturating_sub(self.window).div_euclid(BUCKET) * BUCKET;
        if cutoff <= self.expired_until || self.high == Millis::MIN {
            return None;
        }
        self.expired_until = cutoff;
        let mut end = COLD_PREFIX.to_vec();
        end.extend_from_slice(&minute_bytes(cutoff));
        Some((COLD_PREFIX.to_vec(), end))
    }

    /// How many times are in memory.
    pub fn len(&self) -> usize {
        self.agents.values().map(Vec::len).sum()
    }

    /// True when nothing is in memory.
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
    use std::collections::BTreeMap;

    const HOUR: Millis = 3_600_000;
    const T0: Millis = 1_714_000_000_000;

    /// A store the writes are applied to.
    #[derive(Default)]
    struct Store(BTreeMap<Vec<u8>, Vec<u8>>);

    impl Store {
        fn apply(&mut self, writes: Vec<Write>) {
            for (k, v) in writes {
                match v {
                    Some(v) => self.0.insert(k, v),
                    None => self.0.remove(&k),
                };
            }
        }

        fn journal(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
            self.0.iter().filter(|(k, _)| k.starts_with(PREFIX)).map(|(k, v)| (k.clone(), v.clone())).collect()
        }

        fn reload(&self, window: Millis) -> Seen {
            let mut s = Seen::new(window);
            s.load(self.journal(), self.0.get(UNTIL_KEY).cloned());
            s
        }

        fn remove(&mut self, (from, to): (Vec<u8>, Vec<u8>)) {
            self.0.retain(|k, _| !(k.as_slice() >= from.as_slice() && k.as_slice() < to.as_slice()));
        }
    }

    fn admit(s: &mut Seen, store: &Store, agent: &str, t: Millis) -> bool {
        s.admit(0, agent, t, &mut |k| store.0.get(k).cloned())
    }

    #[test]
    fn duplicates_and_out_of_order() {
        let (mut s, store) = (Seen::new(48 * HOUR), Store::default());
        assert!(admit(&mut s, &store, "e/a", 10));
        assert!(admit(&mut s, &store, "e/a", 5));
        assert!(!admit(&mut s, &store, "e/a", 10));
        assert!(admit(&mut s, &store, "e/b", 10));
        assert!(!admit(&mut s, &store, "e/a", 5));
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn one_small_journal_entry_a_round_and_a_faithful_reload() {
        let (mut s, mut store) = (Seen::new(48 * HOUR), Store::default());
        for a in 0..100 {
            for t in 0..10 {
                admit(&mut s, &store, &format!("east/agent{a:03}"), T0 + t * 1000);
            }
        }
        let writes = s.take_writes();
        let journal: Vec<&Write> = writes.iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
        assert_eq!(journal.len(), 1);
        let bytes = journal[0].1.as_ref().unwrap().len();
        assert!(bytes < 1000 * 6, "{bytes} bytes for 1000 states");
        let first_key = journal[0].0.clone();
        store.apply(writes);
        let mut t = store.reload(48 * HOUR);
        assert_eq!(t.len(), 1000);
        assert!(!admit(&mut t, &store, "east/agent042", T0 + 5_000));
        assert!(admit(&mut t, &store, "east/agent042", T0 + 5_001));
        let next = t.take_writes();
        let journal: Vec<&Write> = next.iter().filter(|(k, _)| k.starts_with(PREFIX)).collect();
        assert_eq!(journal.len(), 1);
        assert_ne!(journal[0].0, first_key, "a new sequence number after reload");
    }

    #[test]
    fn memory_keeps_minutes_and_older_times_are_found_in_the_store_across_a_reload() {
        let (mut s, mut store) = (Seen::new(48 * HOUR), Store::default());
        // Two hours of one state a second for ten agents, a round every ten seconds.
        for sec in 0..7_200 {
            for a in 0..10 {
                assert!(admit(&mut s, &store, &format!("e/{a}"), T0 + sec * 1000 + a));
            }
            if sec % 10 == 9 {
                store.apply(s.take_writes());
            }
        }
        assert!(s.len() <= 10 * 180, "{} times in memory", s.len());
        assert!(s.journal_len() <= 20, "{} journal entries", s.journal_len());
        // Duplicates of old and of recent times, and a new time between old ones.
        assert!(!admit(&mut s, &store, "e/3", T0 + 5_000 + 3));
        assert!(!admit(&mut s, &store, "e/3", T0 + 7_199_000 + 3));
        assert!(admit(&mut s, &store, "e/3", T0 + 5_500));
        assert!(!admit(&mut s, &store, "e/3", T0 + 5_500), "this round knows it");
        let writes = s.take_writes();
        // The committer has not written them yet: the next rounds still know.
        assert!(!admit(&mut s, &store, "e/3", T0 + 5_500), "a recent round wrote it");
        store.apply(writes);
        store.apply(s.take_writes());
        let mut again = store.reload(48 * HOUR);
        assert!(again.len() <= 10 * 180);
        assert!(!admit(&mut again, &store, "e/3", T0 + 5_500), "cold, after a reload");
        assert!(!admit(&mut again, &store, "e/7", T0 + 3_600_000 + 7));
        assert!(!admit(&mut again, &store, "e/7", T0 + 7_199_000 + 7), "hot, after a reload");
        assert!(admit(&mut again, &store, "e/7", T0 + 7_199_500));
    }

    #[test]
    fn times_leave_the_window() {
        let (mut s, mut store) = (Seen::new(2 * HOUR), Store::default());
        admit(&mut s, &store, "e/a", T0);
        store.apply(s.take_writes());
        admit(&mut s, &store, "e/a", T0 + 10 * HOUR);
        store.apply(s.take_writes());
        assert_eq!(store.0.keys().filter(|k| k.starts_with(COLD_PREFIX)).count(), 1, "one value a minute");
        store.remove(s.expired().expect("expired values"));
        assert!(!store.0.keys().any(|k| k.starts_with(COLD_PREFIX)), "the old value is removed");
        assert!(s.expired().is_none(), "once");
        assert!(admit(&mut s, &store, "e/a", T0), "expired times are forgotten");
    }

    #[test]
    fn the_hot_range_follows_the_partition_furthest_behind() {
        let (mut s, mut store) = (Seen::new(48 * HOUR), Store::default());
        let reads = std::cell::Cell::new(0);
        let admit_on = |s: &mut Seen, store: &Store, p: i32, agent: &str, t: Millis| {
            s.admit(p, agent, t, &mut |k| {
                reads.set(reads.get() + 1);
                store.0.get(k).cloned()
            })
        };
        // Partition 1 runs 30 minutes of event time ahead of partition 0, a state a second each.
        for sec in 0..3_600 {
            assert!(admit_on(&mut s, &store, 1, "e/b", T0 + (1_800 + sec) * 1000));
            assert!(admit_on(&mut s, &store, 0, "e/a", T0 + sec * 1000));
            if sec % 10 == 9 {
                store.apply(s.take_writes());
            }
        }
        assert_eq!(reads.get(), 0, "no state of the partition behind was looked up in the store");
        assert!(s.len() <= 2 * 1_800 + 2 * 180, "{} times in memory: the skew and the hot minutes", s.len());
        // Duplicates are still found, hot and cold.
        assert!(!admit_on(&mut s, &store, 0, "e/a", T0 + 3_599_000));
        assert!(!admit_on(&mut s, &store, 0, "e/a", T0 + 60_000));
        assert!(reads.get() > 0, "the old one from the store");
        // Without the partition behind (a reload, as after a rebalance), the highest time rules.
        store.apply(s.take_writes());
        let mut again = store.reload(48 * HOUR);
        assert!(admit_on(&mut again, &store, 1, "e/b", T0 + 5_400 * 1000));
        store.apply(again.take_writes());
        assert!(again.len() <= 180, "{} times in memory", again.len());
        assert!(!admit_on(&mut again, &store, 0, "e/a", T0 + 3_000_000), "found in the store");
    }

    #[test]
    fn a_partition_left_behind_does_not_hold_more_than_the_budget() {
        let (mut s, store) = (Seen::new(48 * HOUR), Store::default());
        s.admit(0, "e/a", T0, &mut |_| None);
        for i in 0..(HOT_BUDGET as i64 + 10_000) {
            s.admit(1, &format!("e/{}", i % 1000), T0 + i * 10, &mut |k| store.0.get(k).cloned());
            if i % 50_000 == 0 {
                s.take_writes();
            }
        }
        s.take_writes();
        assert!(s.len() < 2 * 1000 * 18, "{} times in memory", s.len());
    }
}
