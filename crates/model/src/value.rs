//! Typed document values (Firestore's value model) and timestamps with microsecond precision.

use std::collections::BTreeMap;
use std::fmt;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::ModelError;
use crate::path::DocPath;

/// A document body or nested map: field name → value, ordered by field name (UTF-8 byte order).
pub type Map = BTreeMap<String, Value>;

/// One value of a document field.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Timestamp(Timestamp),
    String(String),
    Bytes(Vec<u8>),
    Reference(DocPath),
    GeoPoint { lat: f64, lng: f64 },
    Array(Vec<Value>),
    Map(Map),
}

impl Value {
    /// The type name used in error messages and documentation.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Double(_) => "double",
            Value::Timestamp(_) => "timestamp",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Reference(_) => "reference",
            Value::GeoPoint { .. } => "geopoint",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Double(_))
    }
}

/// A point in time, microseconds since the Unix epoch, between 0001-01-01 and 9999-12-31 (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// 0001-01-01T00:00:00Z in microseconds.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
/// 9999-12-31T23:59:59.999999Z in microseconds.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl Timestamp {
    pub fn from_micros(micros: i64) -> Result<Self, ModelError> {
        if (MIN_MICROS..=MAX_MICROS).contains(&micros) {
            Ok(Timestamp(micros))
        } else {
            Err(ModelError::InvalidValue(format!(
                "timestamp {micros}µs is outside 0001-01-01..9999-12-31"
            )))
        }
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let micros = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000;
        Timestamp(micros.clamp(MIN_MICROS as i128, MAX_MICROS as i128) as i64)
    }

    /// `time` to the microsecond (rounded down), clamped to the representable range: the
    /// conversion for a time read from an injected clock.
    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        let micros = match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i128::try_from(d.as_micros()).unwrap_or(i128::MAX),
            // Before the epoch: round down, as for later times.
            Err(e) => {
                let d = e.duration();
                let whole = i128::try_from(d.as_micros()).unwrap_or(i128::MAX);
                -whole - i128::from(d.subsec_nanos() % 1_000 != 0)
            }
        };
        Timestamp(micros.clamp(MIN_MICROS as i128, MAX_MICROS as i128) as i64)
    }

    /// Parses RFC 3339 (`2026-01-01T00:00:00.000000Z`, any offset); precision below a microsecond
    /// is rounded down, as Firestore does.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
            ModelError::InvalidValue(format!("timestamp {text:?} is not RFC 3339: {e}"))
        })?;
        let nanos = parsed.unix_timestamp_nanos();
        Timestamp::from_micros(nanos.div_euclid(1_000) as i64)
    }
}

impl fmt::Display for Timestamp {
    /// Always `YYYY-MM-DDTHH:MM:SS.ffffffZ`, so timestamps sort as text too. Written digit by
    /// digit into a fixed buffer: every document a response carries formats two of these.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(1_000_000);
        let micros = self.0.rem_euclid(1_000_000);
        let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
            return write!(f, "{}µs", self.0);
        };
        let (year, month, day) = t.to_calendar_date();
        let (hour, minute, second) = t.to_hms();
        let Ok(year) = u32::try_from(year) else {
            return write!(f, "{}µs", self.0);
        };
        if year > 9999 {
            return write!(f, "{}µs", self.0);
        }
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        digits(&mut text[0..4], year);
        digits(&mut text[5..7], u32::from(u8::from(month)));
        digits(&mut text[8..10], u32::from(day));
        digits(&mut text[11..13], u32::from(hour));
        digits(&mut text[14..16], u32::from(minute));
        digits(&mut text[17..19], u32::from(second));
        // `micros` is in 0..1_000_000 (rem_euclid), so it fits.
        digits(&mut text[20..26], u32::try_from(micros).unwrap_or(0));
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// Writes `n`'s last `out.len()` decimal digits into `out`, zero-padded.
fn digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        // A digit: `n % 10` is below 10.
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digit-by-digit formatting says what `write!` with padded fields says, at the edges
    /// of the range, around the epoch and on a leap day.
    #[test]
    fn timestamps_format_as_padded_rfc3339_with_microseconds() {
        let reference = |t: Timestamp| {
            let secs = t.micros().div_euclid(1_000_000);
            let d = OffsetDateTime::from_unix_timestamp(secs).unwrap();
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                d.year(),
                u8::from(d.month()),
                d.day(),
                d.hour(),
                d.minute(),
                d.second(),
                t.micros().rem_euclid(1_000_000)
            )
        };
        for micros in [
            MIN_MICROS,
            MAX_MICROS,
            0,
            -1,
            1,
            951_782_400_000_001,
            1_700_000_000_123_456,
            -62_000_000_000_000_007,
        ] {
            let t = Timestamp::from_micros(micros).unwrap();
            assert_eq!(t.to_string(), reference(t), "{micros}");
        }
        assert_eq!(
            Timestamp::from_micros(951_782_400_000_001)
                .unwrap()
                .to_string(),
            "2000-02-29T00:00:00.000001Z"
        );
        assert_eq!(
            Timestamp::from_micros(MIN_MICROS).unwrap().to_string(),
            "0001-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn system_times_convert_to_the_microsecond_rounding_down_and_clamp() {
        use std::time::{Duration, UNIX_EPOCH};
        let at = |t| Timestamp::from_system_time(t).micros();
        assert_eq!(
            at(UNIX_EPOCH + Duration::from_nanos(1_500_001_999)),
            1_500_001
        );
        assert_eq!(at(UNIX_EPOCH - Duration::from_nanos(1_500)), -2);
        assert_eq!(at(UNIX_EPOCH - Duration::from_micros(3)), -3);
        assert_eq!(
            at(UNIX_EPOCH + Duration::from_secs(400_000_000_000)),
            MAX_MICROS
        );
        assert_eq!(
            at(UNIX_EPOCH - Duration::from_secs(400_000_000_000)),
            MIN_MICROS
        );
    }

    #[test]
    fn timestamps_round_trip_and_round_down() {
        let t = Timestamp::parse("2026-01-01T00:00:00.1234569Z").unwrap();
        assert_eq!(t.to_string(), "2026-01-01T00:00:00.123456Z");
        let t = Timestamp::parse("1969-12-31T23:59:59.9999995Z").unwrap();
        assert_eq!(t.micros(), -1);
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.999999Z");
        let t = Timestamp::parse("2026-06-01T12:00:00+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-06-01T10:00:00.000000Z");
        assert_eq!(
            Timestamp::parse("0001-01-01T00:00:00Z").unwrap().micros(),
            MIN_MICROS
        );
        assert!(Timestamp::parse("yesterday").is_err());
        assert!(Timestamp::from_micros(MAX_MICROS + 1).is_err());
    }
}
