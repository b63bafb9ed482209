//! The writer's hot loop: an event as one JSON line, written straight into the output buffer.
//!
//! Hand-written because it bounds the writer thread's throughput (and so the audit log's share
//! of a 2-core machine): serde_json's generic path spent about 1.5 µs per event here, mostly
//! escaping byte by byte and formatting the time through `fmt`. This escapes eight bytes at a
//! time and formats the time arithmetically. The output is exactly what serde_json writes
//! for the same strings (tests compare them); reading goes through serde_json.

use std::time::SystemTime;

use super::event::{AuditEvent, micros_since_epoch};

/// Appends `event` as one JSON line, keys in a fixed order, `time` first.
pub(crate) fn encode(event: &AuditEvent, out: &mut Vec<u8>) {
    out.reserve(
        200 + event.request_id.len()
            + event.path.len()
            + event.reason.as_ref().map_or(0, String::len),
    );
    out.extend_from_slice(b"{\"time\":\"");
    time(event.time, out);
    out.extend_from_slice(b"\",\"request_id\":");
    string(&event.request_id, out);
    out.extend_from_slice(b",\"uid\":");
    optional(event.uid.as_deref(), out);
    out.extend_from_slice(b",\"provider\":");
    optional(event.provider.as_deref(), out);
    out.extend_from_slice(b",\"method\":");
    string(&event.method, out);
    out.extend_from_slice(b",\"path\":");
    string(&event.path, out);
    out.extend_from_slice(b",\"decision\":\"");
    out.extend_from_slice(event.decision.as_str().as_bytes());
    out.extend_from_slice(b"\",\"rule\":");
    optional(event.rule.as_deref(), out);
    out.extend_from_slice(b",\"reason\":");
    optional(event.reason.as_deref(), out);
    out.extend_from_slice(b"}\n");
}

fn optional(text: Option<&str>, out: &mut Vec<u8>) {
    match text {
        Some(text) => string(text, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// A JSON string: `"`, `\` and control characters escaped as serde_json does, everything else
/// (UTF-8 included) copied.
fn string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Skip eight clean bytes at a time.
        if let Some(chunk) = bytes.get(i..i + 8)
            && let Ok(word) = <[u8; 8]>::try_from(chunk)
            && !needs_escape(u64::from_le_bytes(word))
        {
            i += 8;
            continue;
        }
        let escape: &[u8] = match bytes[i] {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            c @ 0x00..=0x1f => {
                out.extend_from_slice(&bytes[copied..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
                i += 1;
                copied = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[copied..i]);
        out.extend_from_slice(escape);
        i += 1;
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether any of the eight bytes is a control character, `"` or `\` (may report a false
/// positive, never a false negative: the byte loop decides).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    below_space
        | has_zero(word ^ (ONES * u64::from(b'"')))
        | has_zero(word ^ (ONES * u64::from(b'\\')))
        != 0
}

/// `2026-11-23T14:00:00.123456Z` (years 0001–9999).
fn time(t: SystemTime, out: &mut Vec<u8>) {
    let micros = micros_since_epoch(t);
    let days = micros.div_euclid(86_400_000_000);
    let of_day = micros.rem_euclid(86_400_000_000);
    let (year, month, day) = civil_from_days(days);
    let seconds = of_day / 1_000_000;
    digits(year, 4, out);
    out.push(b'-');
    digits(month, 2, out);
    out.push(b'-');
    digits(day, 2, out);
    out.push(b'T');
    digits(seconds / 3600, 2, out);
    out.push(b':');
    digits(seconds / 60 % 60, 2, out);
    out.push(b':');
    digits(seconds % 60, 2, out);
    out.push(b'.');
    digits(of_day % 1_000_000, 6, out);
    out.push(b'Z');
}

/// Zero-padded decimal of a non-negative `value` below 10^`width`.
fn digits(value: i64, width: u32, out: &mut Vec<u8>) {
    let mut divisor = 10i64.pow(width - 1);
    while divisor > 0 {
        out.push(b'0' + (value / divisor % 10) as u8);
        divisor /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The time of a line this module wrote, read from its fixed prefix
/// (`{"time":"2026-11-23T14:00:00.123456Z"`) without parsing the rest; `None` for any other
/// shape (the caller then parses the line in full).
pub(crate) fn line_time(line: &[u8]) -> Option<i64> {
    let t = line.strip_prefix(b"{\"time\":\"")?.get(..28)?;
    let punctuation = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if t[27] != b'"' || t[26] != b'Z' || punctuation.iter().any(|&(i, c)| t[i] != c) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        t[range].iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let micros = number(20..26)?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000) + micros)
}

/// (year, month, day) to days since 1970-01-01 (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::event::{format_time, system_time_from_micros};
    use super::*;

    fn encoded(text: &str) -> String {
        let mut out = Vec::new();
        string(text, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        for c in (0u32..0x80).chain([0x7f, 0x80, 0xe9, 0x2028, 0x1f600]) {
            let c = char::from_u32(c).unwrap();
            // The character alone, and at every position of a longer string (the 8-byte path).
            let mut cases = vec![c.to_string()];
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrs".chars().take(at).collect();
                s.push(c);
                s.push_str("tail-of-the-string");
                cases.push(s);
            }
            for s in cases {
                assert_eq!(encoded(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
            }
        }
        assert_eq!(encoded(""), "\"\"");
    }

    #[test]
    fn times_match_rfc3339_formatting() {
        let samples = [
            0i64,
            -1,
            1,
            951_782_400_000_000,   // 2000-02-29
            1_795_442_400_123_456, // 2026-11-23T14:00:00.123456Z
            4_107_542_399_999_999, // 2100-02-28T23:59:59.999999Z
            -62_135_596_800_000_000,
            253_402_300_799_999_999,
        ];
        // And a spread across the range, with odd offsets.
        let spread = (0..2000).map(|i: i64| -62_135_596_800_000_000 + i * 157_768_948_800_123);
        for micros in samples.into_iter().chain(spread) {
            let t = system_time_from_micros(micros);
            let mut out = Vec::new();
            time(t, &mut out);
            assert_eq!(
                String::from_utf8(out.clone()).unwrap(),
                format_time(t),
                "{micros}"
            );
            // And the prefix reader inverts it.
            let mut line = b"{\"time\":\"".to_vec();
            line.extend_from_slice(&out);
            line.extend_from_slice(b"\",\"request_id\":\"r\"}");
            assert_eq!(line_time(&line), Some(micros), "{micros}");
        }
    }

    #[test]
    fn line_time_refuses_other_shapes() {
        for line in [
            &b""[..],
            b"{\"time\":\"2026-11-23T14:00:00.123456Z",
            b"{\"time\":\"2026-11-23T14:00:00.123456+01:00\"}",
            b"{\"time\":\"2026-11-23T14:00:00Z\",\"x\":1}",
            b"{\"time\":\"2026-13-23T14:00:00.123456Z\"}",
            b"{\"time\":\"2026-11-23T24:00:00.123456Z\"}",
            b"{\"time\":\"2026-11-23 14:00:00.123456Z\"}",
            b"{\"time\":\"2026-11-2xT14:00:00.123456Z\"}",
            b"{ \"time\":\"2026-11-23T14:00:00.123456Z\"}",
        ] {
            assert_eq!(line_time(line), None, "{}", String::from_utf8_lossy(line));
        }
    }
}
