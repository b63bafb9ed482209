//! Time inputs of audit queries (`--since`, `--until`, `?since=`): a duration back from now
//! (`90s`, `30m`, `1h`, `2d`, `1w`) or an RFC 3339 time (`2026-11-23T14:00:00Z`, any offset).

use std::time::{Duration, SystemTime};

use claimdb_model::Timestamp;

use super::AuditError;
use super::event::system_time_from_micros;

/// Parses `text` as a duration before `now` or as an RFC 3339 time.
pub fn parse_time_spec(text: &str, now: SystemTime) -> Result<SystemTime, AuditError> {
    let text = text.trim();
    if let Some(duration) = parse_duration(text)? {
        return now.checked_sub(duration).ok_or_else(|| {
            AuditError::TimeSpec(format!("{text:?} reaches back before the clock's range"))
        });
    }
    match Timestamp::parse(text) {
        Ok(ts) => Ok(system_time_from_micros(ts.micros())),
        Err(_) => Err(AuditError::TimeSpec(format!(
            "{text:?} is neither a duration (90s, 30m, 1h, 2d, 1w) nor an RFC 3339 time \
             (2026-11-23T14:00:00Z)"
        ))),
    }
}

/// `Some` for `<digits><unit>`; `None` when `text` is not shaped like a duration at all; an error
/// for a duration with an unknown unit or out of range.
fn parse_duration(text: &str) -> Result<Option<Duration>, AuditError> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits == text.len() {
        if digits == text.len() && digits > 0 {
            return Err(AuditError::TimeSpec(format!(
                "{text:?} needs a unit: s, m, h, d or w (for example {text}m)"
            )));
        }
        return Ok(None);
    }
    let (number, unit) = text.split_at(digits);
    let seconds_per_unit: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        // An RFC 3339 time starts with digits too.
        _ if unit.starts_with('-') => return Ok(None),
        _ => {
            return Err(AuditError::TimeSpec(format!(
                "{text:?} has an unknown unit {unit:?}; use s, m, h, d or w"
            )));
        }
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(seconds_per_unit))
        .ok_or_else(|| AuditError::TimeSpec(format!("{text:?} is too long a duration")))?;
    Ok(Some(Duration::from_secs(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_count_back_from_now() {
        let now = system_time_from_micros(1_800_000_000_000_000);
        for (text, seconds) in [
            ("90s", 90),
            ("30m", 1_800),
            ("1h", 3_600),
            ("2d", 172_800),
            ("1w", 604_800),
            (" 0s ", 0),
        ] {
            assert_eq!(
                parse_time_spec(text, now).unwrap(),
                now - Duration::from_secs(seconds),
                "{text}"
            );
        }
    }

    #[test]
    fn rfc3339_times_in_any_offset() {
        let now = SystemTime::now();
        let t = parse_time_spec("2026-11-23T14:00:00.123456Z", now).unwrap();
        assert_eq!(
            super::super::event::format_time(t),
            "2026-11-23T14:00:00.123456Z"
        );
        let t = parse_time_spec("2026-11-23T15:00:00+01:00", now).unwrap();
        assert_eq!(
            super::super::event::format_time(t),
            "2026-11-23T14:00:00.000000Z"
        );
    }

    #[test]
    fn bad_inputs_say_what_is_accepted() {
        let now = SystemTime::now();
        for (text, says) in [
            ("yesterday", "neither a duration"),
            ("1y", "unknown unit"),
            ("10", "needs a unit"),
            ("1hour", "unknown unit"),
            ("", "neither a duration"),
            ("-1h", "neither a duration"),
            ("2026-13-01T00:00:00Z", "neither a duration"),
            ("99999999999999999999s", "too long"),
            ("9999999999999999d", "too long"),
        ] {
            let err = parse_time_spec(text, now).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}
