//! Which agent states were already forwarded: the deduplication by (acdId, loginId, eventUtcTime)
//! of CONTRACT section 6. Pure: no I/O, no clock.
//!
//! Times are kept per agent and per hour of event time, so a polled batch rewrites only the few
//! small hour buckets it touched, and buckets older than the lateness window are dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use acd_schemas::time::Millis;

const HOUR: Millis = 3_600_000;

/// The set of forwarded states.
#[derive(Debug, Default)]
pub struct Seen {
    window: Millis,
    /// Sorted event times by (agent key, hour).
    buckets: HashMap<String, BTreeMap<Millis, Vec<Millis>>>,
    dirty: BTreeSet<(String, Millis)>,
    /// The highest event time admitted; buckets older than it minus the window expire.
    high: Millis,
    expired: Vec<(String, Millis)>,
}

/// The store key of a bucket.
pub fn bucket_key(agent: &str, hour: Millis) -> Vec<u8> {
    format!("seen/{agent}\u{0}{hour}").into_bytes()
}

impl Seen {
    /// Keeps times for `window` milliseconds of event time.
    pub fn new(window: Millis) -> Seen {
        Seen { window, ..Seen::default() }
    }

    /// Loads one stored bucket.
    pub fn load(&mut self, key: &[u8], value: &[u8]) {
        let Some(rest) = key.strip_prefix(b"seen/") else { return };
        let text = String::from_utf8_lossy(rest);
        let Some((agent, hour)) = text.rsplit_once('\u{0}') else { return };
        let Ok(hour) = hour.parse::<Millis>() else { return };
        let times: Vec<Millis> =
            value.chunks_exact(8).map(|c| Millis::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        if let Some(&last) = times.last() {
            self.high = self.high.max(last);
        }
        self.buckets.entry(agent.to_string()).or_default().insert(hour, times);
    }

    /// True when `(agent, time)` is new; remembers it.
    pub fn admit(&mut self, agent: &str, time: Millis) -> bool {
        let hour = time.div_euclid(HOUR) * HOUR;
        let bucket = self.buckets.entry(agent.to_string()).or_default().entry(hour).or_default();
        match bucket.binary_search(&time) {
            Ok(_) => false,
            Err(pos) => {
                bucket.insert(pos, time);
                self.dirty.insert((agent.to_string(), hour));
                if time > self.high {
                    self.high = time;
                }
                true
            }
        }
    }

    /// Drops buckets that ended more than the window before the highest time seen.
    pub fn expire(&mut self) {
        let cutoff = self.high - self.window - HOUR;
        for (agent, hours) in self.buckets.iter_mut() {
            let old: Vec<Millis> = hours.range(..cutoff).map(|(h, _)| *h).collect();
            for h in old {
                hours.remove(&h);
                self.expired.push((agent.clone(), h));
            }
        }
        self.buckets.retain(|_, h| !h.is_empty());
    }

    /// The store writes for everything changed since the last call.
    pub fn take_writes(&mut self) -> Vec<crate::checkpoint::Write> {
        let mut out = Vec::with_capacity(self.dirty.len() + self.expired.len());
        for (agent, hour) in std::mem::take(&mut self.dirty) {
            if let Some(times) = self.buckets.get(&agent).and_then(|h| h.get(&hour)) {
                let bytes: Vec<u8> = times.iter().flat_map(|t| t.to_le_bytes()).collect();
                out.push((bucket_key(&agent, hour), Some(bytes)));
            }
        }
        for (agent, hour) in std::mem::take(&mut self.expired) {
            out.push((bucket_key(&agent, hour), None));
        }
        out
    }

    /// How many times are remembered.
    pub fn len(&self) -> usize {
        self.buckets.values().flat_map(|h| h.values()).map(Vec::len).sum()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn survives_a_round_trip_through_the_store_and_expires() {
        let mut s = Seen::new(2 * HOUR);
        s.admit("e/a", 1_000);
        s.admit("e/a", HOUR + 5);
        let writes = s.take_writes();
        assert_eq!(writes.len(), 2);
        let mut t = Seen::new(2 * HOUR);
        for (k, v) in &writes {
            t.load(k, v.as_ref().unwrap());
        }
        assert!(!t.admit("e/a", 1_000));
        assert!(t.take_writes().is_empty());
        t.admit("e/a", 10 * HOUR);
        t.expire();
        let w = t.take_writes();
        assert_eq!(w.iter().filter(|(_, v)| v.is_none()).count(), 2);
        assert!(t.admit("e/a", 1_000), "expired times are forgotten");
    }
}
