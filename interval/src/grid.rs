//! Interval boundaries and the closing rule.

use acd_schemas::time::Millis;
use serde::{Deserialize, Serialize};

/// The interval grid and the timing rules of docs/intervals.md.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Interval length L.
    pub length: Millis,
    /// Wait this long after an interval's end for late events.
    pub grace: Millis,
    /// A partition idle this long closes intervals whose end + grace passed on the wall clock.
    pub idle_close: Millis,
    /// Events for intervals that ended longer ago than this (before the watermark) are too late.
    pub max_lateness: Millis,
}

impl Grid {
    /// A grid of `minutes`-minute intervals with the contract's defaults otherwise.
    pub fn minutes(minutes: i64) -> Grid {
        Grid { length: minutes * 60_000, grace: 120_000, idle_close: 30_000, max_lateness: 48 * 3_600_000 }
    }

    /// The start of the interval of instant `t`: `floor(t / L) * L`.
    pub fn start_of(&self, t: Millis) -> Millis {
        t.div_euclid(self.length) * self.length
    }

    /// The end (exclusive) of the interval starting at `start`.
    pub fn end_of(&self, start: Millis) -> Millis {
        start + self.length
    }

    /// The start of the first interval not yet closed, given the partition's highest event time,
    /// how long the partition has been idle, and the wall clock. Every interval starting before
    /// it is closed.
    pub fn open_from(&self, high: Option<Millis>, idle_for: Millis, now: Millis) -> Millis {
        // [s, s+L) is closed when the watermark (high - grace) reaches s+L.
        let by_watermark = high.map_or(Millis::MIN, |h| self.start_of(h - self.grace));
        let by_idle = if idle_for >= self.idle_close { self.start_of(now - self.grace) } else { Millis::MIN };
        by_watermark.max(by_idle)
    }

    /// The start of the oldest interval an event could still reach at `high`: an interval
    /// starting before it is beyond `max_lateness` (with one interval to spare).
    pub fn lateness_floor(&self, high: Option<Millis>) -> Millis {
        high.map_or(Millis::MIN, |h| self.start_of(h - self.max_lateness) - self.length)
    }

    /// True when an event of interval `start` is too late for a partition at `high`.
    pub fn too_late(&self, start: Millis, high: Option<Millis>) -> bool {
        high.is_some_and(|h| self.end_of(start) < h - self.max_lateness)
    }
}

/// Which intervals a book has returned, and which of those late events changed since: the
/// closing bookkeeping every book shares.
#[derive(Debug, Clone, Default)]
pub struct Closing {
    /// Every interval starting before this was returned.
    closed_until: Option<Millis>,
    /// Returned intervals changed since by late events.
    dirty: std::collections::BTreeSet<Millis>,
    /// Empty intervals passed over because they lay beyond the lateness window when closed.
    passed_over: u64,
}

impl Closing {
    /// Where returned intervals end: every interval starting before it was returned.
    pub fn closed_until(&self) -> Option<Millis> {
        self.closed_until
    }

    /// True when the interval starting at `start` was returned already.
    pub fn is_closed(&self, start: Millis) -> bool {
        self.closed_until.is_some_and(|until| start < until)
    }

    /// The intervals not returned yet, first and last start, from the book's earliest interval
    /// `first` to the interval of its highest event time `high`.
    pub fn open(&self, first: Option<Millis>, high: Option<Millis>, grid: &Grid) -> Option<(Millis, Millis)> {
        let (first, high) = (first?, grid.start_of(high?));
        let from = self.closed_until.unwrap_or(first).max(first);
        (from <= high).then_some((from, high))
    }

    /// How many empty intervals were passed over beyond the lateness window (see [`Closing::due`]).
    pub fn passed_over(&self) -> u64 {
        self.passed_over
    }

    /// Marks a returned interval for recomputation.
    pub fn reopen(&mut self, start: Millis) {
        self.dirty.insert(start);
    }

    /// The interval starts to (re)compute now: those closed since the last call, in order, from
    /// `first` (the book's earliest interval) up to `open_from`, then those reopened.
    ///
    /// Intervals starting before `floor` (see [`Grid::lateness_floor`]) are beyond the lateness
    /// window: no event can reach them any more. They only come due when event time jumps by
    /// more than the window (history replayed after a gap, an ACD clock error), and of those only
    /// the ones `with_events` names (interval starts with an event, in `[from, to)`) are computed;
    /// the empty ones are passed over and counted, so a jump of years is not walked interval by
    /// interval.
    pub fn due(
        &mut self,
        first: Millis,
        open_from: Millis,
        length: Millis,
        floor: Millis,
        with_events: impl FnOnce(Millis, Millis) -> std::collections::BTreeSet<Millis>,
    ) -> Vec<Millis> {
        let mut dirty = std::mem::take(&mut self.dirty);
        let mut out = Vec::new();
        let mut s = self.closed_until.unwrap_or(first).max(first);
        let skip_to = floor.min(open_from);
        if s < skip_to {
            let busy = with_events(s, skip_to);
            let walked = (skip_to - s + length - 1) / length;
            self.passed_over += walked as u64 - busy.len() as u64;
            for b in busy {
                dirty.remove(&b);
                out.push(b);
            }
            s += walked * length;
        }
        while s < open_from {
            dirty.remove(&s);
            out.push(s);
            s += length;
        }
        if open_from > self.closed_until.unwrap_or(Millis::MIN) {
            self.closed_until = Some(open_from.max(first));
        }
        out.extend(dirty);
        out
    }
}

/// Milliseconds to whole seconds, half away from zero.
pub fn round_seconds(ms: Millis) -> i64 {
    if ms >= 0 {
        (ms + 500) / 1000
    } else {
        -((-ms + 500) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    #[test]
    fn intervals_are_aligned_to_the_epoch() {
        let g = Grid::minutes(15);
        assert_eq!(g.start_of(0), 0);
        assert_eq!(g.start_of(15 * MIN - 1), 0);
        assert_eq!(g.start_of(15 * MIN), 15 * MIN, "an instant on a boundary starts the next interval");
        assert_eq!(g.start_of(-1), -15 * MIN);
        assert_eq!(Grid::minutes(30).start_of(45 * MIN), 30 * MIN);
    }

    #[test]
    fn closing_by_watermark_and_by_idleness() {
        let g = Grid::minutes(15);
        let t = 100 * 15 * MIN; // a boundary
                                // Highest event at t + grace - 1 ms: the interval ending at t is not closed yet.
        assert_eq!(g.open_from(Some(t + g.grace - 1), 0, 0), t - 15 * MIN);
        // At t + grace it is.
        assert_eq!(g.open_from(Some(t + g.grace), 0, 0), t);
        // Idle long enough, and the wall clock past end + grace: closed without new events.
        assert_eq!(g.open_from(Some(t - 5 * MIN), g.idle_close, t + g.grace), t);
        assert_eq!(g.open_from(Some(t - 5 * MIN), g.idle_close - 1, t + g.grace), t - 15 * MIN);
        assert_eq!(g.open_from(None, 0, t), Millis::MIN);
    }

    #[test]
    fn too_late_is_relative_to_the_watermark() {
        let g = Grid::minutes(15);
        let high = 1_000 * 15 * MIN;
        assert!(!g.too_late(high - g.max_lateness - 15 * MIN, Some(high)));
        assert!(g.too_late(high - g.max_lateness - 15 * MIN - 1, Some(high)));
        assert!(!g.too_late(0, None));
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_seconds(499), 0);
        assert_eq!(round_seconds(500), 1);
        assert_eq!(round_seconds(1_499), 1);
        assert_eq!(round_seconds(2_500), 3);
        assert_eq!(round_seconds(-500), -1);
        assert_eq!(round_seconds(-499), 0);
    }
}
