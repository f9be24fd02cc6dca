//! Exponential backoff with full jitter, behind a small seam: the one retry policy of every HTTP
//! client of acd-bridge (the WFM client of `consume`, the LiveVox connector of `produce`).
//!
//! The exponential ceiling comes from the `backoff` crate, which is no longer maintained and
//! jitters around the ceiling rather than below it; so this module takes only the ceiling from it
//! and draws the actual wait uniformly from `[0, ceiling]` (full jitter). Replacing the crate
//! means changing this file only.

use std::time::Duration;

use backoff::backoff::Backoff as _;
use backoff::ExponentialBackoff;
use rand::Rng;

/// Successive waits between attempts of one call.
pub struct Schedule {
    ceiling: ExponentialBackoff,
    cap: Duration,
}

impl Schedule {
    /// Starting at `base`, doubling, never above `cap`.
    pub fn new(base: Duration, cap: Duration) -> Schedule {
        let ceiling = ExponentialBackoff {
            current_interval: base,
            initial_interval: base,
            randomization_factor: 0.0,
            multiplier: 2.0,
            max_interval: cap,
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        Schedule { ceiling, cap }
    }

    /// The next wait; at least `floor` (a `Retry-After`), at most `cap` otherwise.
    pub fn next(&mut self, floor: Option<Duration>) -> Duration {
        let ceiling = self.ceiling.next_backoff().unwrap_or(self.cap).min(self.cap);
        let jittered = Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=ceiling.as_secs_f64()));
        match floor {
            Some(f) => jittered.max(f.min(Duration::from_secs(300))),
            None => jittered,
        }
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.ceiling.reset();
    }
}

/// Parses `Retry-After` given in seconds (HTTP dates are treated as absent).
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value?.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_below_the_cap_and_honours_retry_after() {
        let mut s = Schedule::new(Duration::from_millis(100), Duration::from_secs(2));
        let waits: Vec<Duration> = (0..20).map(|_| s.next(None)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(2)));
        assert!(s.next(Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        s.reset();
        assert!(s.next(None) <= Duration::from_millis(100));
    }
}
