//! Calendar arithmetic for `timestamp` and `duration` values (nanosecond precision, UTC), built
//! on the `time` crate. Range checks live here so every constructor refuses the same values.

use time::{Date, Month, OffsetDateTime};

use crate::error::EvalError;

pub(crate) const NANOS_PER_SEC: i128 = 1_000_000_000;
const NANOS_PER_DAY: i128 = 86_400 * NANOS_PER_SEC;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z in nanoseconds.
const MIN_TS: i128 = -62_135_596_800 * NANOS_PER_SEC;
const MAX_TS: i128 = 253_402_300_800 * NANOS_PER_SEC - 1;
/// Durations are bounded to ±10,000 years, like protobuf durations.
const MAX_DURATION: i128 = 315_576_000_000 * NANOS_PER_SEC;

pub(crate) fn check_timestamp(ns: i128) -> Result<i128, EvalError> {
    if (MIN_TS..=MAX_TS).contains(&ns) {
        Ok(ns)
    } else {
        Err(EvalError::invalid(
            "timestamp out of range (0001-01-01 to 9999-12-31)",
        ))
    }
}

pub(crate) fn check_duration(ns: i128) -> Result<i128, EvalError> {
    if (-MAX_DURATION..=MAX_DURATION).contains(&ns) {
        Ok(ns)
    } else {
        Err(EvalError::invalid("duration out of range (±10,000 years)"))
    }
}

fn datetime(ns: i128) -> Result<OffsetDateTime, EvalError> {
    OffsetDateTime::from_unix_timestamp_nanos(ns)
        .map_err(|_| EvalError::invalid("timestamp out of range"))
}

pub(crate) fn format_timestamp(ns: i128) -> String {
    match datetime(ns) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond()
        ),
        Err(_) => format!("timestamp({ns}ns)"),
    }
}

/// `timestamp.date(year, month, day)`.
pub(crate) fn from_date(year: i64, month: i64, day: i64) -> Result<i128, EvalError> {
    let bad = || EvalError::invalid(format!("{year}-{month}-{day} is not a valid date"));
    let y = i32::try_from(year).map_err(|_| bad())?;
    let m = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let d = u8::try_from(day).map_err(|_| bad())?;
    let date = Date::from_calendar_date(y, m, d).map_err(|_| bad())?;
    let ns = i128::from(date.midnight().assume_utc().unix_timestamp()) * NANOS_PER_SEC;
    check_timestamp(ns)
}

/// A timestamp method with no arguments (`year()`, `dayOfWeek()`, `toMillis()`, …).
pub(crate) fn component(ns: i128, name: &str) -> Result<crate::value::Val<'static>, EvalError> {
    use crate::value::Val;
    let t = datetime(ns)?;
    let midnight = ns - ns.rem_euclid(NANOS_PER_DAY);
    Ok(match name {
        "year" => Val::Int(i64::from(t.year())),
        "month" => Val::Int(i64::from(u8::from(t.month()))),
        "day" => Val::Int(i64::from(t.day())),
        "hours" => Val::Int(i64::from(t.hour())),
        "minutes" => Val::Int(i64::from(t.minute())),
        "seconds" => Val::Int(i64::from(t.second())),
        "nanos" => Val::Int(i64::from(t.nanosecond())),
        // 1 = Monday … 7 = Sunday.
        "dayOfWeek" => Val::Int(i64::from(t.weekday().number_from_monday())),
        "dayOfYear" => Val::Int(i64::from(t.ordinal())),
        "date" => Val::Timestamp(midnight),
        "time" => Val::Duration(ns - midnight),
        "toMillis" => Val::Int(
            i64::try_from(ns.div_euclid(1_000_000))
                .map_err(|_| EvalError::invalid("timestamp out of range"))?,
        ),
        other => return Err(EvalError::ty(format!("timestamp has no method {other}()"))),
    })
}

/// `timestamp.value('…')`: `yyyy-MM-ddTHH:mm:ss`, an optional fraction, and `Z` or `±HH:mm`,
/// read leniently as the emulator reads it (a month, day or hour too large runs into the next;
/// fraction digits past the ninth are dropped). Nanoseconds since the epoch, before any range
/// check.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i128> {
    let (date, rest) = s.split_once('T')?;
    let mut fields = date.split('-');
    let (year, month, day) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let (time, offset) = if let Some(time) = rest.strip_suffix('Z') {
        (time, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (time, zone) = rest.split_at(at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (h, m) = zone.get(1..)?.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        (
            time,
            sign * (lenient_number(h)? * 3600 + lenient_number(m)? * 60),
        )
    };
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut fields = clock.split(':');
    let (hour, minute, second) = (fields.next()?, fields.next()?, fields.next()?);
    if fields.next().is_some() {
        return None;
    }
    let (year, month, day) = (
        lenient_number(year)?,
        lenient_number(month)?,
        lenient_number(day)?,
    );
    // Months and days past their end roll over.
    let months = year * 12 + month - 1;
    let days = days_from_civil(months.div_euclid(12), months.rem_euclid(12) + 1) + day - 1;
    let seconds = i128::from(days) * 86_400
        + i128::from(
            lenient_number(hour)? * 3600 + lenient_number(minute)? * 60 + lenient_number(second)?,
        )
        - i128::from(offset);
    let digits = fraction.get(..fraction.len().min(9)).unwrap_or("");
    let nanos: i128 = format!("{digits:0<9}").parse().ok()?;
    Some(seconds * NANOS_PER_SEC + nanos)
}

fn lenient_number(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days from 1970-01-01 to the first of `month` (1 to 12) of `year`.
fn days_from_civil(year: i64, month: i64) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// Nanoseconds in one `unit` of `duration.value(n, unit)`.
pub(crate) fn unit_nanos(unit: &str) -> Result<i128, EvalError> {
    Ok(match unit {
        "w" => 7 * NANOS_PER_DAY,
        "d" => NANOS_PER_DAY,
        "h" => 3_600 * NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "s" => NANOS_PER_SEC,
        "ms" => 1_000_000,
        "ns" => 1,
        other => {
            return Err(EvalError::invalid(format!(
                "unknown duration unit '{other}'; use w, d, h, m, s, ms or ns"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_components() {
        let ns = from_date(2024, 2, 29).unwrap();
        assert_eq!(format_timestamp(ns), "2024-02-29T00:00:00.000000000Z");
        assert!(from_date(2023, 2, 29).is_err());
        assert!(from_date(10_000, 1, 1).is_err());
        let day = |n: &str| match component(ns, n).unwrap() {
            crate::value::Val::Int(i) => i,
            _ => -1,
        };
        assert_eq!((day("year"), day("month"), day("day")), (2024, 2, 29));
        assert_eq!(day("dayOfWeek"), 4); // a Thursday
        assert_eq!(day("dayOfYear"), 60);
        assert!(unit_nanos("fortnight").is_err());
        let at = |s| parse_rfc3339(s).map(|ns| ns / NANOS_PER_SEC);
        assert_eq!(at("2020-01-02T03:04:05Z"), Some(1_577_934_245));
        assert_eq!(at("2020-01-02T03:04:05+01:00"), Some(1_577_934_245 - 3600));
        assert_eq!(at("2020-13-02T03:04:05Z"), at("2021-01-02T03:04:05Z"));
        assert_eq!(at("2020-02-30T00:00:00Z"), at("2020-03-01T00:00:00Z"));
        for bad in [
            "2020-01-02",
            "2020-01-02T03:04:05",
            "2020-01-02T03:04:05+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
