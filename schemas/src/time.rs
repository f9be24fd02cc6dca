//! UTC timestamps as milliseconds since the Unix epoch, parsed from RFC 3339 and written back in the
//! one form every API of acd-bridge uses: `YYYY-MM-DDTHH:MM:SS.mmmZ`.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;

/// Parses RFC 3339 with `Z` or an offset; a timestamp without a zone is an error.
pub fn parse_rfc3339(text: &str) -> Result<Millis, String> {
    if let Some(t) = parse_common(text.as_bytes()) {
        return Ok(t);
    }
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("not an RFC 3339 timestamp with a zone ({e}): {text:?}"))
}

/// The common form, read without chrono: `YYYY-MM-DDTHH:MM:SS`, an optional fraction of 1-9
/// digits, then `Z` or `+HH:MM`/`-HH:MM`. Every field is range-checked (the day against its
/// month, leap years included); anything else (a leap second, lower-case letters, blanks, another
/// separator) is `None` and goes to chrono, which this agrees with wherever it answers. This runs
/// once per agent state and twice per contact at ingest.
fn parse_common(b: &[u8]) -> Option<Millis> {
    let digits = |at: usize, n: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(at..at + n)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || b.get(10) != Some(&b'T') {
        return None;
    }
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[month as usize - 1] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let n = at - start;
        if !(1..=9).contains(&n) {
            return None;
        }
        // Milliseconds: the first three digits, the rest truncated (as chrono does).
        for i in 0..3 {
            millis = millis * 10 + if i < n { (b[start + i] - b'0') as i64 } else { 0 };
        }
    }
    let offset = match b.get(at..)? {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |x: u8, y: u8| -> Option<i64> {
                (x.is_ascii_digit() && y.is_ascii_digit()).then(|| ((x - b'0') * 10 + (y - b'0')) as i64)
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let o = (h * 60 + m) * 60_000;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 from the civil date (Howard Hinnant's algorithm).
    let y = year - (month <= 2) as i64;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset)
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
    fn the_fast_parser_agrees_with_chrono() {
        let chrono = |t: &str| DateTime::parse_from_rfc3339(t.trim()).map(|t| t.timestamp_millis()).ok();
        // Walk across days, leap years, month ends and times of day, with every form of fraction
        // and offset; then the edge cases.
        let fractions = ["", ".5", ".05", ".123", ".1234", ".123456789", ".9999999999", "."];
        let offsets = ["Z", "+00:00", "-00:00", "+02:00", "-05:30", "+23:59", "+24:00", "-01:60", "z", "+0200", ""];
        let mut t: Millis = -86_400_000 * 365 * 3;
        let mut i = 0usize;
        while t < 253_402_300_799_999 {
            let base = DateTime::<Utc>::from_timestamp_millis(t).unwrap().format("%Y-%m-%dT%H:%M:%S").to_string();
            let text = format!("{base}{}{}", fractions[i % fractions.len()], offsets[i / 3 % offsets.len()]);
            assert_eq!(parse_common(text.as_bytes()).or(chrono(&text)), chrono(&text), "{text}");
            if let Some(fast) = parse_common(text.as_bytes()) {
                assert_eq!(Some(fast), chrono(&text), "{text}");
            }
            t += 86_399_999_937 / 7;
            i += 1;
        }
        for text in [
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2000-02-29T23:59:59.999+01:00",
            "2024-04-31T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-01T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T23:60:00Z",
            "2024-12-31T23:59:60Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01 00:00:00Z",
            " 2024-01-01T00:00:00Z",
            "2024-01-01T00:00:00Z ",
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00.001-23:59",
            "9999-12-31T23:59:59.999Z",
            "+2024-01-01T00:00:00Z",
            "2024-1-01T00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "1969-12-31T23:59:59.999Z",
            "2024-01-01T00:00:00Zjunk",
        ] {
            if let Some(fast) = parse_common(text.as_bytes()) {
                assert_eq!(Some(fast), chrono(text), "{text}");
            }
            assert_eq!(parse_rfc3339(text).ok(), chrono(text), "{text}");
        }
        assert!(parse_common(b"2023-10-01T07:59:09.860Z").is_some(), "the common form is read without chrono");
        assert!(parse_common(b"2024-04-17T10:01:02.005+02:00").is_some());
    }

    #[test]
    fn a_timestamp_without_zone_is_refused() {
        assert!(parse_rfc3339("2024-04-17T10:01:02").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
