//! The pure global and namespaced functions, as the Firestore emulator has them: conversions
//! (`string`, `int`, `float`, `path`), `math.*`, `timestamp.*`, `duration.*`, `latlng.value` and
//! `hashing.*`. Java semantics show through: `int(2.5e19)` saturates, `int(' 42')` is an error,
//! `math.floor`/`math.ceil` return floats, `math.round(-2.5) == -2`, `math.abs` of the smallest
//! int is that int, `string(1e7) == '1.0E7'`.
//!
//! Document access (`get`, `exists`, …) and `debug` need the request and live in `eval.rs`.

use std::sync::Arc;

use md5::Digest;

use crate::error::EvalError;
use crate::methods::to_string;
use crate::program::Builtin;
use crate::time::{NANOS_PER_SEC, check_duration, check_timestamp, from_date, unit_nanos};
use crate::value::{BytesV, Val, java_double, parse_java_double, parse_java_long, shorten_text};

fn wrong(b: Builtin, args: &[Val<'_>], want: &str) -> EvalError {
    let given: Vec<&str> = args.iter().map(Val::type_name).collect();
    EvalError::ty(format!(
        "{}({}) is not defined; it takes {want}",
        b.name(),
        given.join(", ")
    ))
}

fn number(v: &Val<'_>) -> Option<f64> {
    match v {
        Val::Int(i) => Some(*i as f64),
        Val::Float(f) => Some(*f),
        _ => None,
    }
}

/// Applies a pure builtin to evaluated arguments.
pub(crate) fn call<'a>(b: Builtin, args: &[Val<'a>]) -> Result<Val<'a>, EvalError> {
    let want = Builtin::lookup_arity(b);
    if args.len() != want {
        return Err(EvalError::ty(format!(
            "{}() takes {want} argument{}, given {}",
            b.name(),
            if want == 1 { "" } else { "s" },
            args.len()
        )));
    }
    let a0 = &args[0];
    match b {
        Builtin::String => to_string(a0).map(|s| Val::str(&s)),
        Builtin::Int => match a0 {
            Val::Int(_) => Ok(a0.clone()),
            // Java's cast: toward zero, saturating, NaN to 0.
            Val::Float(f) => Ok(Val::Int(*f as i64)),
            Val::Str(s) => parse_java_long(s.as_str()).map(Val::Int).ok_or_else(|| {
                EvalError::invalid(format!(
                    "int(): '{}' is not an integer",
                    shorten_text(s.as_str())
                ))
            }),
            _ => Err(wrong(b, args, "an int, a float or a string")),
        },
        Builtin::Float => match a0 {
            Val::Int(i) => Ok(Val::Float(*i as f64)),
            Val::Float(_) => Ok(a0.clone()),
            Val::Str(s) => parse_java_double(s.as_str())
                .map(Val::Float)
                .ok_or_else(|| {
                    EvalError::invalid(format!(
                        "float(): '{}' is not a number",
                        shorten_text(s.as_str())
                    ))
                }),
            _ => Err(wrong(b, args, "an int, a float or a string")),
        },
        Builtin::Path => match a0 {
            Val::Str(s) => parse_path(s.as_str()),
            _ => Err(wrong(b, args, "a string")),
        },
        Builtin::MathAbs => match a0 {
            Val::Int(i) => Ok(Val::Int(i.wrapping_abs())),
            Val::Float(f) => Ok(Val::Float(f.abs())),
            _ => Err(wrong(b, args, "a number")),
        },
        Builtin::MathCeil | Builtin::MathFloor | Builtin::MathSqrt | Builtin::MathIsNaN => {
            let Some(x) = number(a0) else {
                return Err(wrong(b, args, "a number"));
            };
            Ok(match b {
                Builtin::MathCeil => Val::Float(x.ceil()),
                Builtin::MathFloor => Val::Float(x.floor()),
                Builtin::MathSqrt => Val::Float(x.sqrt()),
                _ => Val::Bool(x.is_nan()),
            })
        }
        Builtin::MathRound => match a0 {
            Val::Int(i) => Ok(Val::Int(*i)),
            Val::Float(f) => Ok(Val::Int(java_round(*f))),
            _ => Err(wrong(b, args, "a number")),
        },
        Builtin::MathPow => match (number(a0), number(&args[1])) {
            (Some(x), Some(y)) => Ok(Val::Float(x.powf(y))),
            _ => Err(wrong(b, args, "two numbers")),
        },
        Builtin::TimestampDate => {
            let (Val::Int(y), Val::Int(m), Val::Int(d)) = (a0, &args[1], &args[2]) else {
                return Err(wrong(b, args, "three ints"));
            };
            from_date(*y, *m, *d).map(Val::Timestamp)
        }
        Builtin::TimestampValue => match a0 {
            Val::Int(ms) => check_timestamp(i128::from(*ms) * 1_000_000).map(Val::Timestamp),
            Val::Str(s) => crate::time::parse_rfc3339(s.as_str())
                .ok_or_else(|| {
                    EvalError::invalid(format!(
                        "timestamp.value(): '{}' is not an RFC 3339 timestamp",
                        shorten_text(s.as_str())
                    ))
                })
                .and_then(check_timestamp)
                .map(Val::Timestamp),
            _ => Err(wrong(b, args, "an int (milliseconds) or a string")),
        },
        Builtin::DurationValue => {
            let (Val::Int(n), Val::Str(unit)) = (a0, &args[1]) else {
                return Err(wrong(b, args, "an int and a unit string"));
            };
            let unit = unit_nanos(unit.as_str())?;
            check_duration(i128::from(*n) * unit).map(Val::Duration)
        }
        Builtin::DurationTime => {
            let (Val::Int(h), Val::Int(m), Val::Int(s), Val::Int(ns)) =
                (a0, &args[1], &args[2], &args[3])
            else {
                return Err(wrong(b, args, "four ints"));
            };
            let [h, m, s, ns] = [*h, *m, *s, *ns].map(i128::from);
            check_duration(((h * 60 + m) * 60 + s) * NANOS_PER_SEC + ns).map(Val::Duration)
        }
        Builtin::DurationAbs => match a0 {
            Val::Duration(d) => check_duration(d.abs()).map(Val::Duration),
            _ => Err(wrong(b, args, "a duration")),
        },
        Builtin::LatLngValue => {
            let (Some(lat), Some(lng)) = (number(a0), number(&args[1])) else {
                return Err(wrong(b, args, "two numbers"));
            };
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                return Err(EvalError::invalid(format!(
                    "latlng({}, {}) is out of range",
                    java_double(lat),
                    java_double(lng)
                )));
            }
            Ok(Val::LatLng(lat, lng))
        }
        // Every hash returns bytes; a CRC as its 4 bytes, least significant first (as the
        // emulator gives them).
        Builtin::HashCrc32 | Builtin::HashCrc32c | Builtin::HashMd5 | Builtin::HashSha256 => {
            let bytes = match a0 {
                Val::Str(s) => s.as_str().as_bytes(),
                Val::Bytes(x) => x.as_slice(),
                _ => return Err(wrong(b, args, "a string or bytes")),
            };
            let digest: Vec<u8> = match b {
                Builtin::HashCrc32 => crc(0xEDB8_8320, bytes).to_le_bytes().to_vec(),
                Builtin::HashCrc32c => crc(0x82F6_3B78, bytes).to_le_bytes().to_vec(),
                Builtin::HashMd5 => md5::Md5::digest(bytes).to_vec(),
                _ => sha2::Sha256::digest(bytes).to_vec(),
            };
            Ok(Val::Bytes(BytesV::O(Arc::from(digest))))
        }
        Builtin::Get
        | Builtin::Exists
        | Builtin::GetAfter
        | Builtin::ExistsAfter
        | Builtin::Value
        | Builtin::Debug => Err(EvalError::invalid(
            "internal: impure builtin reached the pure library",
        )),
    }
}

impl Builtin {
    /// How many arguments the builtin takes.
    pub(crate) fn lookup_arity(self) -> usize {
        let name = self.name();
        let (ns, f) = match name.split_once('.') {
            Some((ns, f)) => (Some(ns), f),
            None => (None, name),
        };
        Builtin::lookup(ns, f).map_or(1, |(_, n)| n)
    }
}

/// `path('a/b')`: with or without a leading slash, no empty segment; segments are
/// URL-decoded like a path literal's.
fn parse_path<'a>(s: &str) -> Result<Val<'a>, EvalError> {
    if s.is_empty() {
        return Err(EvalError::invalid("path(): the path is empty"));
    }
    let body = s.strip_prefix('/').unwrap_or(s);
    let segments: Vec<String> = body.split('/').map(url_decode).collect();
    if segments.iter().any(String::is_empty) {
        return Err(EvalError::invalid(format!(
            "path(): '{}' has an empty segment",
            shorten_text(s)
        )));
    }
    Ok(Val::path(segments))
}

/// A path segment as Java's `URLDecoder` reads it: `%XX` escapes and `+` for a space.
pub(crate) fn url_decode(text: &str) -> String {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| char::from(b).to_digit(16);
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Java's `Math.round`: the nearest int, halves up, saturating, NaN to 0.
fn java_round(x: f64) -> i64 {
    let floor = x.floor();
    let rounded = if x - floor >= 0.5 { floor + 1.0 } else { floor };
    rounded as i64
}

/// Bit-wise reflected CRC-32 with the given polynomial (IEEE or Castagnoli).
fn crc(poly: u32, bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ poly } else { c >> 1 };
        }
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_values() {
        // The standard "123456789" check values.
        assert_eq!(crc(0xEDB8_8320, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc(0x82F6_3B78, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn java_rounding_and_decoding() {
        assert_eq!(java_round(2.5), 3);
        assert_eq!(java_round(-2.5), -2);
        assert_eq!(java_round(f64::NAN), 0);
        assert_eq!(java_round(1e300), i64::MAX);
        assert_eq!(url_decode("a%20b+c"), "a b c");
        assert_eq!(url_decode("100%"), "100%");
    }
}
