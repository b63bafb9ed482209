//! The one total order over values, as bytes: `encode(a) < encode(b)` (compared as byte strings)
//! exactly when `a` sorts before `b`. Indexes store these keys and queries compare them, so an
//! index scan and an in-memory sort can never disagree.
//!
//! The order (Firestore's): null < booleans (false < true) < numbers (NaN first, then integers
//! and doubles compared by numeric value, `1 == 1.0`, `-0.0 == 0.0`) < timestamps < strings
//! (UTF-8 byte order) < bytes < references (segment by segment) < geopoints (latitude, then
//! longitude) < arrays (element by element, a prefix first) < maps (entries in key order, key then
//! value, a prefix first).
//!
//! Like Firestore, comparisons see only the first [`MAX_INDEX_KEY_BYTES`] bytes of a key
//! ([`index_key`]); values that agree on that prefix compare equal in queries.

use std::cmp::Ordering;

use crate::limits::MAX_INDEX_KEY_BYTES;
use crate::value::Value;

const NULL: u8 = 0x10;
const BOOL: u8 = 0x20;
const NUMBER: u8 = 0x30;
const TIMESTAMP: u8 = 0x40;
const STRING: u8 = 0x50;
const BYTES: u8 = 0x60;
const REFERENCE: u8 = 0x70;
const GEO: u8 = 0x80;
const ARRAY: u8 = 0x90;
const MAP: u8 = 0xA0;
/// One past the highest tag: the upper bound of "every value".
const END_OF_TYPES: u8 = 0xB0;

/// The full order-preserving encoding of `value`.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode_into(&mut out, value);
    out
}

/// The key queries and indexes use: [`encode`] cut to [`MAX_INDEX_KEY_BYTES`].
pub fn index_key(value: &Value) -> Vec<u8> {
    let mut out = encode(value);
    out.truncate(MAX_INDEX_KEY_BYTES);
    out
}

/// Compares two values in the total order (on their index keys).
pub fn compare(a: &Value, b: &Value) -> Ordering {
    index_key(a).cmp(&index_key(b))
}

/// The half-open key range `[lo, hi)` holding every value of the same type class as `value`
/// (numbers are one class). Range filters (`<`, `>`, …) only match values of their operand's
/// class, as in Firestore.
pub fn type_range(value: &Value) -> (Vec<u8>, Vec<u8>) {
    let tag = tag_of(value);
    if tag == NUMBER {
        // NaN sorts first among numbers but no range filter matches it.
        (vec![NUMBER, 0x01], vec![NUMBER + 1])
    } else {
        (vec![tag], vec![tag + 1])
    }
}

/// The range holding every value.
pub fn full_range() -> (Vec<u8>, Vec<u8>) {
    (vec![NULL], vec![END_OF_TYPES])
}

/// The smallest key strictly greater than every key that starts with `key`.
pub fn prefix_successor(key: &[u8]) -> Vec<u8> {
    let mut out = key.to_vec();
    out.push(0xFF);
    out.extend_from_slice(&[0xFF; 8]);
    out
}

fn tag_of(value: &Value) -> u8 {
    match value {
        Value::Null => NULL,
        Value::Bool(_) => BOOL,
        Value::Int(_) | Value::Double(_) => NUMBER,
        Value::Timestamp(_) => TIMESTAMP,
        Value::String(_) => STRING,
        Value::Bytes(_) => BYTES,
        Value::Reference(_) => REFERENCE,
        Value::GeoPoint { .. } => GEO,
        Value::Array(_) => ARRAY,
        Value::Map(_) => MAP,
    }
}

fn encode_into(out: &mut Vec<u8>, value: &Value) {
    out.push(tag_of(value));
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Int(i) => encode_number(out, *i as f64, residual(*i)),
        Value::Double(d) => {
            if d.is_nan() {
                out.push(0x00);
            } else {
                encode_number(out, *d, 0);
            }
        }
        Value::Timestamp(t) => out.extend_from_slice(&ordered_i64(t.micros())),
        Value::String(s) => encode_escaped(out, s.as_bytes()),
        Value::Bytes(b) => encode_escaped(out, b),
        Value::Reference(p) => {
            for segment in p.segments() {
                encode_escaped(out, segment.as_bytes());
            }
            out.extend_from_slice(&[0x00, 0x00]);
        }
        Value::GeoPoint { lat, lng } => {
            out.extend_from_slice(&ordered_f64(*lat));
            out.extend_from_slice(&ordered_f64(*lng));
        }
        Value::Array(items) => {
            for item in items {
                encode_into(out, item);
                if out.len() > MAX_INDEX_KEY_BYTES {
                    return;
                }
            }
            out.push(0x00);
        }
        Value::Map(map) => {
            for (k, v) in map {
                encode_escaped(out, k.as_bytes());
                encode_into(out, v);
                if out.len() > MAX_INDEX_KEY_BYTES {
                    return;
                }
            }
            out.extend_from_slice(&[0x00, 0x00]);
        }
    }
}

/// Numbers: a marker byte (0x01; NaN uses 0x00), the value as an ordered double, then the integer's
/// distance from that double so integers beyond 2^53 keep their exact order.
fn encode_number(out: &mut Vec<u8>, approx: f64, residual: i64) {
    out.push(0x01);
    out.extend_from_slice(&ordered_f64(approx));
    out.extend_from_slice(&ordered_i64(residual));
}

fn residual(i: i64) -> i64 {
    let approx = i as f64;
    // `approx` is integral and within ±2^63 (inclusive), so i128 holds both sides exactly.
    (i as i128 - approx as i128) as i64
}

fn ordered_f64(d: f64) -> [u8; 8] {
    let d = if d == 0.0 { 0.0 } else { d };
    let bits = d.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    };
    ordered.to_be_bytes()
}

fn ordered_i64(i: i64) -> [u8; 8] {
    ((i as u64) ^ (1 << 63)).to_be_bytes()
}

/// Byte strings: `0x00` becomes `0x00 0xFF`, and `0x00 0x01` terminates, so a prefix sorts first
/// and concatenations of encoded strings compare element by element.
pub fn encode_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Reverses [`encode_escaped`] for one string, returning it and the rest of the input.
pub fn decode_escaped(bytes: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0 {
            match bytes.get(i + 1)? {
                0xFF => out.push(0),
                0x01 => return Some((out, &bytes[i + 2..])),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::DocPath;
    use crate::value::{Map, Timestamp};

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<Map>(),
        )
    }

    #[test]
    fn follows_the_documented_total_order() {
        let ordered = vec![
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            Value::Double(f64::NAN),
            Value::Double(f64::NEG_INFINITY),
            Value::Int(i64::MIN),
            Value::Double(-1.5),
            Value::Int(-1),
            Value::Int(0),
            Value::Double(0.5),
            Value::Int(1),
            Value::Double(1.5),
            Value::Int(9_007_199_254_740_992), // 2^53
            Value::Int(9_007_199_254_740_993), // 2^53 + 1: not a double
            Value::Double(9_007_199_254_740_994.0),
            Value::Int(i64::MAX),
            Value::Double(f64::INFINITY),
            Value::Timestamp(Timestamp::from_micros(-5).unwrap()),
            Value::Timestamp(Timestamp::from_micros(5).unwrap()),
            Value::String(String::new()),
            Value::String("a".into()),
            Value::String("a\0".into()),
            Value::String("ab".into()),
            Value::String("b".into()),
            Value::String("é".into()),
            Value::Bytes(vec![]),
            Value::Bytes(vec![0]),
            Value::Bytes(vec![1]),
            Value::Reference(DocPath::parse("a/b").unwrap()),
            Value::Reference(DocPath::parse("a/b/c/d").unwrap()),
            Value::Reference(DocPath::parse("a-b/c").unwrap()),
            Value::GeoPoint {
                lat: -10.0,
                lng: 100.0,
            },
            Value::GeoPoint {
                lat: 1.0,
                lng: -1.0,
            },
            Value::GeoPoint { lat: 1.0, lng: 2.0 },
            Value::Array(vec![]),
            Value::Array(vec![Value::Null]),
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Int(1), Value::Int(0)]),
            Value::Array(vec![Value::Int(2)]),
            Value::Array(vec![Value::String("a".into())]),
            map(&[]),
            map(&[("a", Value::Int(1))]),
            map(&[("a", Value::Int(1)), ("b", Value::Int(0))]),
            map(&[("a", Value::Int(2))]),
            map(&[("b", Value::Int(0))]),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                compare(&pair[0], &pair[1]),
                Ordering::Less,
                "{:?} < {:?}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn integers_and_doubles_with_the_same_value_are_equal() {
        assert_eq!(
            compare(&Value::Int(1), &Value::Double(1.0)),
            Ordering::Equal
        );
        assert_eq!(
            compare(&Value::Double(-0.0), &Value::Int(0)),
            Ordering::Equal
        );
        assert_eq!(
            compare(&Value::Int(1 << 60), &Value::Double((1u64 << 60) as f64)),
            Ordering::Equal
        );
    }

    #[test]
    fn type_range_covers_exactly_one_class() {
        let (lo, hi) = type_range(&Value::Int(5));
        let inside = |v: &Value| {
            let k = index_key(v);
            k >= lo && k < hi
        };
        assert!(inside(&Value::Double(-1e300)));
        assert!(inside(&Value::Int(i64::MAX)));
        assert!(!inside(&Value::Double(f64::NAN)));
        assert!(!inside(&Value::String("5".into())));
        assert!(!inside(&Value::Bool(true)));
    }

    #[test]
    fn long_values_compare_on_their_first_1500_bytes() {
        let a = Value::String(format!("{}a", "x".repeat(2_000)));
        let b = Value::String(format!("{}b", "x".repeat(2_000)));
        assert_eq!(compare(&a, &b), Ordering::Equal);
        assert!(index_key(&a).len() <= MAX_INDEX_KEY_BYTES);
    }

    #[test]
    fn escaped_strings_round_trip() {
        let mut out = Vec::new();
        encode_escaped(&mut out, b"a\0b");
        encode_escaped(&mut out, b"");
        let (first, rest) = decode_escaped(&out).unwrap();
        assert_eq!(first, b"a\0b");
        let (second, rest) = decode_escaped(rest).unwrap();
        assert!(second.is_empty() && rest.is_empty());
        assert!(decode_escaped(b"ab").is_none());
    }
}
