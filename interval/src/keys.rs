//! Contact deduplication keys, kept in memory only for the intervals near the watermark.
//!
//! A contact's key is a 128-bit hash of (acdId, contactId). Keys of the *hot* intervals (the
//! last [`HOT_INTERVALS`] before the watermark, where nearly every duplicate lands) are in a
//! map; keys of older intervals go, one batch per interval, to a [`KeyStore`], which the
//! consumer backs with its sled store, so memory does not grow with the lateness window. A late
//! contact for a cold interval is looked up in the store under its own interval.
//!
//! Limitation: a duplicate whose `endedUtc` differs from the original's, with the original's
//! interval already cold, is not recognised. ACDs re-send the same record; a contact whose end
//! time changed between sends is a different report of it.

use std::collections::{BTreeMap, HashSet};

use rustc_hash::FxHashMap as HashMap;

use acd_schemas::time::Millis;

/// How many intervals before the watermark's keep their keys in memory.
pub const HOT_INTERVALS: i64 = 4;

/// Where the keys of cold intervals are kept.
pub trait KeyStore: Send + Sync {
    /// Adds `keys` to interval `start`.
    fn spill(&mut self, start: Millis, keys: Vec<u128>);
    /// True when `key` was spilled under interval `start`.
    fn contains(&mut self, start: Millis, key: u128) -> bool;
    /// Forgets every interval before `start`.
    fn forget_before(&mut self, start: Millis);
}

/// A [`KeyStore`] in memory: for tests and for one-shot recomputations.
#[derive(Debug, Default)]
pub struct MemoryKeys(BTreeMap<Millis, HashSet<u128>>);

impl KeyStore for MemoryKeys {
    fn spill(&mut self, start: Millis, keys: Vec<u128>) {
        self.0.entry(start).or_default().extend(keys);
    }

    fn contains(&mut self, start: Millis, key: u128) -> bool {
        self.0.get(&start).is_some_and(|k| k.contains(&key))
    }

    fn forget_before(&mut self, start: Millis) {
        self.0 = self.0.split_off(&start);
    }
}

/// The keys of one book.
pub struct Keys {
    hot: HashMap<u128, Millis>,
    cold: Box<dyn KeyStore>,
    /// Intervals before this one are cold.
    hot_from: Millis,
    spilled: u64,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("hot", &self.hot.len()).field("hot_from", &self.hot_from).finish()
    }
}

impl Keys {
    /// Keys spilling to `cold`.
    pub fn new(cold: Box<dyn KeyStore>) -> Keys {
        Keys { hot: HashMap::default(), cold, hot_from: Millis::MIN, spilled: 0 }
    }

    /// True when `key` (of a contact in interval `start`) was counted before.
    pub fn contains(&mut self, key: u128, start: Millis) -> bool {
        self.hot.contains_key(&key) || (start < self.hot_from && self.cold.contains(start, key))
    }

    /// Remembers a counted contact's key.
    pub fn insert(&mut self, key: u128, start: Millis) {
        self.hot.insert(key, start);
    }

    /// Moves the keys of intervals before `hot_from` to the store.
    pub fn cool(&mut self, hot_from: Millis) {
        if hot_from <= self.hot_from {
            return;
        }
        self.hot_from = hot_from;
        let mut out: BTreeMap<Millis, Vec<u128>> = BTreeMap::new();
        self.hot.retain(|k, s| {
            if *s < hot_from {
                out.entry(*s).or_default().push(*k);
                false
            } else {
                true
            }
        });
        for (start, mut keys) in out {
            keys.sort_unstable();
            self.spilled += keys.len() as u64;
            self.cold.spill(start, keys);
        }
    }

    /// Forgets the keys of intervals before `horizon` (out of the lateness window).
    pub fn forget_before(&mut self, horizon: Millis) {
        self.hot.retain(|_, s| *s >= horizon);
        self.cold.forget_before(horizon);
    }

    /// Keys in memory.
    pub fn in_memory(&self) -> usize {
        self.hot.len()
    }

    /// Keys moved to the store so far.
    pub fn spilled(&self) -> u64 {
        self.spilled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_keys_leave_memory_and_are_still_found_under_their_interval() {
        let mut k = Keys::new(Box::new(MemoryKeys::default()));
        for i in 0..100u128 {
            k.insert(i, (i as Millis % 10) * 100);
        }
        k.cool(500);
        assert_eq!(k.in_memory(), 50, "intervals 500..900 stay hot");
        assert_eq!(k.spilled(), 50);
        assert!(k.contains(3, 300), "found in the store under its interval");
        assert!(k.contains(7, 700), "found in memory");
        assert!(!k.contains(3, 400), "a cold key is looked up under the contact's own interval only");
        assert!(!k.contains(1000, 300));
        // Out of the lateness window: gone from the store too.
        k.cool(600);
        k.forget_before(400);
        assert!(!k.contains(3, 300));
        assert!(k.contains(5, 500));
    }
}
