//! What the interval books keep in the checkpoint store.
//!
//! - [`SledKeys`]: the dedup keys of cold intervals ([`acd_interval::keys`]): one value per
//!   interval and spill (`ckeys/<stream>/<partition>/<interval>/<seq>`, 16 bytes a key), so a
//!   million keys cost a few hundred store entries, not a million. These keys are rebuilt from
//!   Kafka with their book, so they are written without a flush, and a book's keys are dropped
//!   when the book is created.
//! - [`SledCold`]: the agent states of cold intervals ([`acd_interval::cold`]), one value per
//!   interval (`cold/<stream>/<partition>/<interval>`). Rebuilt from Kafka with their book like
//!   the dedup keys: written without a flush, dropped when the book is created.
//! - [`SledSent`]: the keys of the rows each interval report carried
//!   ([`acd_interval::sent`]), one value per interval (`sent/<stream>/<partition>/<interval>`).
//!   These are what a rebuilt book cannot learn from Kafka, so they outlive every book; the
//!   interval pipeline flushes them before it sends the reports that carry them.

use std::collections::HashSet;

use acd_interval::cold::ColdStore;
use acd_interval::keys::KeyStore;
use acd_interval::sent::{Sent, SentStore};
use acd_schemas::time::Millis;

use crate::checkpoint::Checkpoints;

/// The prefix of every spilled key.
pub const PREFIX: &str = "ckeys/";

/// One book's cold keys.
pub struct SledKeys {
    store: Checkpoints,
    prefix: Vec<u8>,
    seq: u32,
    /// The keys of the interval looked up last: late contacts come in bursts.
    cache: Option<(Millis, HashSet<u128>)>,
}

/// An interval start as bytes that sort like the number.
fn start_bytes(start: Millis) -> [u8; 8] {
    ((start as u64) ^ (1 << 63)).to_be_bytes()
}

/// The key of interval `start` under `prefix`.
fn interval_key(prefix: &[u8], start: Millis) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&start_bytes(start));
    k
}

/// Removes every key under `prefix` (a new book's rebuilt data starts empty).
fn clear(store: &Checkpoints, prefix: &[u8], what: &str) {
    let mut end = prefix.to_vec();
    end.push(0xff);
    if let Err(e) = store.remove_range(prefix, &end) {
        tracing::error!(error = %e, "could not clear {what}");
    }
}

impl SledKeys {
    /// The store of the book `tag` (topic and partition), emptied.
    pub fn new(store: Checkpoints, tag: &str) -> SledKeys {
        let prefix = format!("{PREFIX}{tag}/").into_bytes();
        clear(&store, &prefix, "spilled dedup keys");
        SledKeys { store, prefix, seq: 0, cache: None }
    }

    fn interval_key(&self, start: Millis) -> Vec<u8> {
        interval_key(&self.prefix, start)
    }
}

impl KeyStore for SledKeys {
    fn spill(&mut self, start: Millis, keys: Vec<u128>) {
        let mut k = self.interval_key(start);
        k.extend_from_slice(&self.seq.to_be_bytes());
        self.seq += 1;
        let mut value = Vec::with_capacity(keys.len() * 16);
        for key in &keys {
            value.extend_from_slice(&key.to_le_bytes());
        }
        if let Err(e) = self.store.put(&k, value) {
            tracing::error!(error = %e, "could not spill dedup keys");
        }
        if let Some((s, set)) = &mut self.cache {
            if *s == start {
                set.extend(keys);
            }
        }
    }

    fn contains(&mut self, start: Millis, key: u128) -> bool {
        if self.cache.as_ref().is_none_or(|(s, _)| *s != start) {
            let mut set = HashSet::new();
            match self.store.scan(&self.interval_key(start)) {
                Ok(entries) => {
                    for (_, v) in entries {
                        set.extend(v.chunks_exact(16).map(|c| u128::from_le_bytes(c.try_into().expect("16 bytes"))));
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not read spilled dedup keys"),
            }
            self.cache = Some((start, set));
        }
        self.cache.as_ref().is_some_and(|(_, set)| set.contains(&key))
    }

    fn forget_before(&mut self, start: Millis) {
        if let Err(e) = self.store.remove_range(&self.prefix, &self.interval_key(start)) {
            tracing::error!(error = %e, "could not drop expired dedup keys");
        }
        if self.cache.as_ref().is_some_and(|(s, _)| *s < start) {
            self.cache = None;
        }
    }
}

/// The prefix of every cold interval's agent states.
pub const COLD_PREFIX: &str = "cold/";

/// One agent book's cold intervals.
pub struct SledCold {
    store: Checkpoints,
    prefix: Vec<u8>,
}

impl SledCold {
    /// The store of the book `tag` (stream and partition), emptied.
    pub fn new(store: Checkpoints, tag: &str) -> SledCold {
        let prefix = format!("{COLD_PREFIX}{tag}/").into_bytes();
        clear(&store, &prefix, "cold agent states");
        SledCold { store, prefix }
    }

    fn interval_key(&self, start: Millis) -> Vec<u8> {
        interval_key(&self.prefix, start)
    }
}

impl ColdStore for SledCold {
    fn put(&mut self, start: Millis, bytes: Vec<u8>) {
        if let Err(e) = self.store.put(&self.interval_key(start), bytes) {
            tracing::error!(error = %e, "could not keep cold agent states");
        }
    }

    fn get(&mut self, start: Millis) -> Option<Vec<u8>> {
        self.store.get(&self.interval_key(start)).unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not read cold agent states");
            None
        })
    }

    fn forget_before(&mut self, start: Millis) {
        if let Err(e) = self.store.remove_range(&self.prefix, &self.interval_key(start)) {
            tracing::error!(error = %e, "could not drop expired cold agent states");
        }
    }
}

/// The prefix of every interval's sent keys.
pub const SENT_PREFIX: &str = "sent/";

/// One book's sent keys, kept across books of the same partition.
pub struct SledSent {
    store: Checkpoints,
    prefix: Vec<u8>,
    /// Where the last `forget_before` cut: cutting again there finds nothing.
    forgotten: Millis,
}

impl SledSent {
    /// The sent keys of the book `tag` (stream and partition), as earlier books left them.
    pub fn new(store: Checkpoints, tag: &str) -> SledSent {
        SledSent { store, prefix: format!("{SENT_PREFIX}{tag}/").into_bytes(), forgotten: Millis::MIN }
    }

    fn interval_key(&self, start: Millis) -> Vec<u8> {
        interval_key(&self.prefix, start)
    }
}

impl SentStore for SledSent {
    fn get(&mut self, start: Millis) -> Sent {
        match self.store.get(&self.interval_key(start)) {
            Ok(Some(v)) => Sent::from_bytes(&v).unwrap_or_else(|| {
                tracing::error!(interval = start, "unreadable sent keys in the checkpoint store; ignored");
                Sent::default()
            }),
            Ok(None) => Sent::default(),
            Err(e) => {
                tracing::error!(error = %e, "could not read sent keys");
                Sent::default()
            }
        }
    }

    fn put(&mut self, start: Millis, sent: &Sent) {
        // Flushed by the pipeline before the report that carries these rows is sent.
        if let Err(e) = self.store.put(&self.interval_key(start), sent.to_bytes()) {
            tracing::error!(error = %e, "could not keep sent keys");
        }
    }

    fn forget_before(&mut self, start: Millis) {
        if start <= self.forgotten {
            return;
        }
        self.forgotten = start;
        if let Err(e) = self.store.remove_range(&self.prefix, &self.interval_key(start)) {
            tracing::error!(error = %e, "could not drop expired sent keys");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_keys_are_found_by_interval_and_dropped_with_it() {
        let dir = std::env::temp_dir().join(format!("acd-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Checkpoints::open(&dir).unwrap();
        let mut k = SledKeys::new(store.clone(), "contacts/3");
        k.spill(-900_000, vec![1, 2]);
        k.spill(900_000, vec![3]);
        k.spill(900_000, vec![4]);
        assert!(k.contains(-900_000, 2), "a start before the epoch sorts first");
        assert!(k.contains(900_000, 3) && k.contains(900_000, 4));
        assert!(!k.contains(900_000, 1), "looked up under its own interval only");
        k.forget_before(900_000);
        assert!(!k.contains(-900_000, 2));
        assert!(k.contains(900_000, 4));
        // Another book's keys are its own; a new book starts empty.
        let mut other = SledKeys::new(store.clone(), "contacts/30");
        assert!(!other.contains(900_000, 4));
        let mut again = SledKeys::new(store, "contacts/3");
        assert!(!again.contains(900_000, 4));
        drop((k, other, again));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cold_intervals_are_kept_by_interval_and_a_new_book_starts_empty() {
        let dir = std::env::temp_dir().join(format!("acd-cold-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Checkpoints::open(&dir).unwrap();
        let mut c = SledCold::new(store.clone(), "agent-states/3");
        c.put(-900_000, vec![1]);
        c.put(900_000, vec![2]);
        c.put(900_000, vec![3]);
        assert_eq!(c.get(900_000), Some(vec![3]), "replaced");
        c.forget_before(0);
        assert_eq!(c.get(-900_000), None);
        assert_eq!(SledCold::new(store.clone(), "agent-states/30").get(900_000), None);
        assert_eq!(SledCold::new(store, "agent-states/3").get(900_000), None, "a new book starts empty");
        drop(c);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sent_keys_outlive_the_book_and_expire_by_interval() {
        let dir = std::env::temp_dir().join(format!("acd-sent-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Checkpoints::open(&dir).unwrap();
        let rows = Sent { agents: ["a".to_string()].into(), ..Sent::default() };
        let mut s = SledSent::new(store.clone(), "agent-states/1");
        s.put(-900_000, &rows);
        s.put(900_000, &rows);
        drop(s);
        let mut again = SledSent::new(store.clone(), "agent-states/1");
        assert_eq!(again.get(900_000), rows, "a new book of the partition sees them");
        assert!(SledSent::new(store, "agent-states/2").get(900_000).is_empty(), "another partition's are its own");
        again.forget_before(0);
        assert!(again.get(-900_000).is_empty());
        assert_eq!(again.get(900_000), rows);
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
