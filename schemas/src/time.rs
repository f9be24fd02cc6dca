//! UTC timestamps as milliseconds since the Unix epoch, parsed from RFC 3339 and written back in the
//! one form every API of acd-bridge uses: `YYYY-MM-DDTHH:MM:SS.mmmZ`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Parses RFC 3339 with `Z` or an offset; a timestamp without a zone is an error.
pub fn parse_rfc3339(text: &str) -> Result<Millis, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("not an RFC 3339 timestamp with a zone ({e}): {text:?}"))
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_millis(millis: Millis) -> String {
    match DateTime::<Utc>::from_timestamp_millis(millis) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{millis}ms"),
    }
}

/// The wall clock, for adapters only: the arithmetic takes "now" as an argument.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_normalises_offsets() {
        let t = parse_rfc3339("2024-04-17T12:01:02.5+02:00").unwrap();
        assert_eq!(format_millis(t), "2024-04-17T10:01:02.500Z");
        assert_eq!(parse_rfc3339("2023-10-01T07:59:09.860Z").unwrap(), 1_696_147_149_860);
    }

    #[test]
    fn a_timestamp_without_zone_is_refused() {
        assert!(parse_rfc3339("2024-04-17T10:01:02").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
