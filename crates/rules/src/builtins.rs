//! The pure global and namespaced functions: conversions (`string`, `int`, `float`, `bool`,
//! `path`), `math.*`, `timestamp.*`, `duration.*`, `latlng.value` and `hashing.*`.
//!
//! Document access (`get`, `exists`, …) and `debug` need the request and live in `eval.rs`.

use crate::error::EvalError;
use crate::program::Builtin;
use crate::time::{NANOS_PER_SEC, check_duration, check_timestamp, from_date, unit_nanos};
use std::sync::Arc;

use md5::Digest;

use crate::value::{BytesV, Val, fmt_float, short, shorten_text};

fn int_arg(v: &Val<'_>, what: &str) -> Result<i64, EvalError> {
    match v {
        Val::Int(i) => Ok(*i),
        other => Err(EvalError::ty(format!(
            "{what} must be an int, found {}",
            other.type_name()
        ))),
    }
}

fn num_arg(v: &Val<'_>, what: &str) -> Result<f64, EvalError> {
    match v {
        Val::Int(i) => Ok(*i as f64),
        Val::Float(f) => Ok(*f),
        other => Err(EvalError::ty(format!(
            "{what} must be a number, found {}",
            other.type_name()
        ))),
    }
}

/// Applies a pure builtin to evaluated arguments (arity already checked).
pub fn call<'a>(b: Builtin, args: &[Val<'a>]) -> Result<Val<'a>, EvalError> {
    let a0 = args.first().cloned().unwrap_or(Val::Null);
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Val::Null);
    match b {
        Builtin::String => Ok(match &a0 {
            Val::Str(_) => a0.clone(),
            Val::Float(f) => Val::str(&fmt_float(*f)),
            other => Val::str(&other.to_string()),
        }),
        Builtin::Int => match &a0 {
            Val::Int(_) => Ok(a0.clone()),
            Val::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(Val::Int(f.trunc() as i64)),
            Val::Float(f) => Err(EvalError::invalid(format!(
                "int({}) is out of range",
                fmt_float(*f)
            ))),
            Val::Str(s) => s.as_str().trim().parse::<i64>().map(Val::Int).map_err(|_| {
                EvalError::invalid(format!(
                    "int(): '{}' is not an integer",
                    shorten_text(s.as_str())
                ))
            }),
            other => Err(EvalError::ty(format!(
                "int() cannot convert a {}",
                other.type_name()
            ))),
        },
        Builtin::Float => match &a0 {
            Val::Int(i) => Ok(Val::Float(*i as f64)),
            Val::Float(_) => Ok(a0.clone()),
            Val::Str(s) => s
                .as_str()
                .trim()
                .parse::<f64>()
                .map(Val::Float)
                .map_err(|_| {
                    EvalError::invalid(format!(
                        "float(): '{}' is not a number",
                        shorten_text(s.as_str())
                    ))
                }),
            other => Err(EvalError::ty(format!(
                "float() cannot convert a {}",
                other.type_name()
            ))),
        },
        Builtin::Bool => match &a0 {
            Val::Bool(_) => Ok(a0.clone()),
            Val::Str(s) if s.as_str() == "true" => Ok(Val::Bool(true)),
            Val::Str(s) if s.as_str() == "false" => Ok(Val::Bool(false)),
            other => Err(EvalError::ty(format!(
                "bool() cannot convert {}",
                short(other)
            ))),
        },
        Builtin::Path => match &a0 {
            Val::Str(s) => Ok(Val::path(
                s.as_str()
                    .split('/')
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect(),
            )),
            Val::Path(_) => Ok(a0.clone()),
            other => Err(EvalError::ty(format!(
                "path() needs a string, found {}",
                other.type_name()
            ))),
        },
        Builtin::MathAbs => match a0 {
            Val::Int(i) => i
                .checked_abs()
                .map(Val::Int)
                .ok_or_else(|| EvalError::Overflow("math.abs".into())),
            v => Ok(Val::Float(num_arg(&v, "math.abs()")?.abs())),
        },
        // Firestore returns an integer from ceil, floor and round.
        Builtin::MathCeil | Builtin::MathFloor | Builtin::MathRound => match a0 {
            Val::Int(i) => Ok(Val::Int(i)),
            v => {
                let f = num_arg(&v, "the argument")?;
                let r = match b {
                    Builtin::MathCeil => f.ceil(),
                    Builtin::MathFloor => f.floor(),
                    _ => f.round(),
                };
                if r.is_finite() && r.abs() < 9.2e18 {
                    Ok(Val::Int(r as i64))
                } else {
                    Err(EvalError::invalid(format!(
                        "{} does not fit in an int",
                        fmt_float(r)
                    )))
                }
            }
        },
        Builtin::MathSqrt => Ok(Val::Float(num_arg(&a0, "math.sqrt()")?.sqrt())),
        Builtin::MathPow => Ok(Val::Float(
            num_arg(&a0, "math.pow() base")?.powf(num_arg(&arg(1), "math.pow() exponent")?),
        )),
        Builtin::MathIsNaN => Ok(Val::Bool(num_arg(&a0, "math.isNaN()")?.is_nan())),
        Builtin::MathIsInfinite => Ok(Val::Bool(num_arg(&a0, "math.isInfinite()")?.is_infinite())),
        Builtin::TimestampDate => from_date(
            int_arg(&a0, "year")?,
            int_arg(&arg(1), "month")?,
            int_arg(&arg(2), "day")?,
        )
        .map(Val::Timestamp),
        Builtin::TimestampValue => {
            check_timestamp(i128::from(int_arg(&a0, "milliseconds")?) * 1_000_000)
                .map(Val::Timestamp)
        }
        Builtin::DurationValue => {
            let unit = match arg(1) {
                Val::Str(s) => unit_nanos(s.as_str())?,
                other => {
                    return Err(EvalError::ty(format!(
                        "the unit must be a string, found {}",
                        other.type_name()
                    )));
                }
            };
            let n = match a0 {
                Val::Int(i) => i128::from(i) * unit,
                Val::Float(f) if f.is_finite() => (f * unit as f64) as i128,
                other => {
                    return Err(EvalError::ty(format!(
                        "duration.value() needs a number, found {}",
                        other.type_name()
                    )));
                }
            };
            check_duration(n).map(Val::Duration)
        }
        Builtin::DurationTime => {
            let h = i128::from(int_arg(&a0, "hours")?);
            let m = i128::from(int_arg(&arg(1), "minutes")?);
            let s = i128::from(int_arg(&arg(2), "seconds")?);
            let ns = i128::from(int_arg(&arg(3), "nanos")?);
            check_duration(((h * 60 + m) * 60 + s) * NANOS_PER_SEC + ns).map(Val::Duration)
        }
        Builtin::DurationAbs => match a0 {
            Val::Duration(d) => Ok(Val::Duration(d.abs())),
            other => Err(EvalError::ty(format!(
                "duration.abs() needs a duration, found {}",
                other.type_name()
            ))),
        },
        Builtin::LatLngValue => {
            let lat = num_arg(&a0, "latitude")?;
            let lng = num_arg(&arg(1), "longitude")?;
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                return Err(EvalError::invalid(format!(
                    "latlng({lat}, {lng}) is out of range"
                )));
            }
            Ok(Val::LatLng(lat, lng))
        }
        // Every hash returns bytes (a CRC as its 4 bytes, big-endian).
        Builtin::HashCrc32 | Builtin::HashCrc32c | Builtin::HashMd5 | Builtin::HashSha256 => {
            let bytes = match &a0 {
                Val::Str(s) => s.as_str().as_bytes(),
                Val::Bytes(b) => b.as_slice(),
                other => {
                    return Err(EvalError::ty(format!(
                        "hashing needs a string or bytes, found {}",
                        other.type_name()
                    )));
                }
            };
            let digest: Vec<u8> = match b {
                Builtin::HashCrc32 => crc(0xEDB8_8320, bytes).to_be_bytes().to_vec(),
                Builtin::HashCrc32c => crc(0x82F6_3B78, bytes).to_be_bytes().to_vec(),
                Builtin::HashMd5 => md5::Md5::digest(bytes).to_vec(),
                _ => sha2::Sha256::digest(bytes).to_vec(),
            };
            Ok(Val::Bytes(BytesV::O(Arc::from(digest))))
        }
        Builtin::Get
        | Builtin::Exists
        | Builtin::GetAfter
        | Builtin::ExistsAfter
        | Builtin::Debug => Err(EvalError::invalid(
            "internal: impure builtin reached the pure library",
        )),
    }
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
    use super::crc;

    #[test]
    fn crc_check_values() {
        // The standard "123456789" check values.
        assert_eq!(crc(0xEDB8_8320, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc(0x82F6_3B78, b"123456789"), 0xE306_9283);
    }
}
