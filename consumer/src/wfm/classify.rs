//! The one place that decides what an HTTP outcome means (docs/wfm-api.md). Everything that
//! retries, renews or dead-letters asks [`classify`].

use std::time::Duration;

/// What happened to one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The WFM answered with this status (and maybe `Retry-After`).
    Status { status: u16, retry_after: Option<Duration> },
    /// No answer in time.
    Timeout,
    /// No connection.
    Connect,
}

/// What to do about it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    /// Try again later, no sooner than the given time when the WFM said so.
    Retry(Option<Duration>),
    /// The token was refused: renew it once and repeat the call.
    Renew,
    /// The record is refused; retrying cannot help.
    Reject,
}

/// Classifies an attempt.
pub fn classify(attempt: &Attempt) -> Outcome {
    match attempt {
        Attempt::Status { status, retry_after } => match *status {
            200..=299 => Outcome::Success,
            401 => Outcome::Renew,
            400 | 403 | 404 | 409 | 413 | 422 => Outcome::Reject,
            408 | 425 | 429 | 500..=599 => Outcome::Retry(*retry_after),
            // Anything else (3xx, other 4xx) is not in the contract: treat as transient so that
            // nothing is dead-lettered on a misconfigured proxy, and let the attempts run out.
            _ => Outcome::Retry(*retry_after),
        },
        Attempt::Timeout | Attempt::Connect => Outcome::Retry(None),
    }
}

pub use acd_core::retry::parse_retry_after;

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16) -> Outcome {
        classify(&Attempt::Status { status: s, retry_after: None })
    }

    #[test]
    fn the_contracts_table() {
        for s in [200, 201, 202, 204] {
            assert_eq!(status(s), Outcome::Success, "{s}");
        }
        for s in [400, 403, 404, 409, 413, 422] {
            assert_eq!(status(s), Outcome::Reject, "{s}");
        }
        assert_eq!(status(401), Outcome::Renew);
        for s in [408, 425, 429, 500, 502, 503, 504] {
            assert_eq!(status(s), Outcome::Retry(None), "{s}");
        }
        assert_eq!(classify(&Attempt::Timeout), Outcome::Retry(None));
        assert_eq!(classify(&Attempt::Connect), Outcome::Retry(None));
        let ra = Some(Duration::from_secs(7));
        assert_eq!(classify(&Attempt::Status { status: 429, retry_after: ra }), Outcome::Retry(ra));
    }

    #[test]
    fn retry_after_in_seconds() {
        assert_eq!(parse_retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(None), None);
    }
}
