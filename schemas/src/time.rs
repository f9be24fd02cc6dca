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

/// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ` (years 0000..=9999; others through chrono).
pub fn format_millis(millis: Millis) -> String {
    let mut out = Vec::with_capacity(24);
    write_millis(millis, &mut out);
    String::from_utf8(out).expect("ascii")
}

/// [`format_millis`] appended to `out`, without an allocation of its own.
pub fn write_millis(millis: Millis, out: &mut Vec<u8>) {
    const MAX: Millis = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    if !(0..=MAX).contains(&millis) {
        let text = match DateTime::<Utc>::from_timestamp_millis(millis) {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => format!("{millis}ms"),
        };
        out.extend_from_slice(text.as_bytes());
        return;
    }
    let days = millis.div_euclid(86_400_000);
    let ms_of_day = millis.rem_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    let (h, m, sec, ms) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    // Written into a fixed buffer and appended once: this runs for every state forwarded.
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, v: i64| {
        let mut v = v;
        for d in text[at..at + width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, h);
    put(14, 2, m);
    put(17, 2, sec);
    put(20, 3, ms);
    out.extend_from_slice(&text);
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
    fn the_fast_formatter_agrees_with_chrono() {
        let mut t: Millis = 0;
        while t < 253_402_300_799_999 {
            let want = DateTime::<Utc>::from_timestamp_millis(t).unwrap().to_rfc3339_opts(SecondsFormat::Millis, true);
            assert_eq!(format_millis(t), want);
            t += 86_399_999_937; // walks across days, leap years and month ends
        }
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn a_timestamp_without_zone_is_refused() {
        assert!(parse_rfc3339("2024-04-17T10:01:02").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
