//! Reading JSON text strictly: the one parser for every JSON claimdb accepts — request bodies
//! (documents, batches, queries, custom claims, rules explanations, minting) and the header and
//! payload of tokens.
//!
//! - A name repeated in one object, at any depth, is refused ([`parse_strict`]): JSON leaves
//!   its meaning open (RFC 8259 §4), parsers disagree on which copy wins, and a checker and a
//!   consumer reading different copies is how a claim or a field gets smuggled. Firestore
//!   refuses duplicate field names in a write's map too.
//! - In request bodies ([`parse_body`]) every integer literal must fit a signed 64-bit integer
//!   (Firestore's integer): serde_json (without `arbitrary_precision`) turns an integer literal
//!   beyond `u64` into a double silently, so the value's type alone cannot tell
//!   `18446744073709551617` (refused) from `18446744073709551617.0` or `1e20` (doubles, kept).
//!   Only when the parsed value holds a number that an out-of-range integer literal could have
//!   produced is the text scanned again, for the literal and its path.
//!
//! Token parsing uses [`parse_strict`] (or [`StrictValue`] inside its own visitor); it keeps
//! accepting any JSON number, as issuers write them.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::error::ModelError;

/// Parses JSON text, refusing a repeated name in any object ([`ModelError::DuplicateKey`]) and
/// anything that is not one JSON value ([`ModelError::InvalidJson`], serde_json's message).
pub fn parse_strict(text: &[u8]) -> Result<Json, ModelError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = StrictValue::deserialize(&mut de)
        .and_then(|StrictValue(v)| de.end().map(|()| v))
        .map_err(|e| match duplicate_key_in(&e) {
            Some(name) => ModelError::DuplicateKey(name),
            None => ModelError::InvalidJson(e.to_string()),
        })?;
    Ok(value)
}

/// [`parse_strict`] for a request body: also refuses an integer literal outside the signed
/// 64-bit range, naming where it is (`writes[0].data.count`).
pub fn parse_body(text: &[u8]) -> Result<Json, ModelError> {
    let value = parse_strict(text)?;
    if may_hold_a_wide_integer(&value)
        && let Some((path, literal)) = first_wide_integer(text)
    {
        let shown: String = literal.chars().take(40).collect();
        let at = if path.is_empty() {
            "the body".to_string()
        } else {
            path
        };
        return Err(ModelError::InvalidValue(format!(
            "integer {shown} at {at} is outside the 64-bit signed range ({} to {}); write a \
             double (with a decimal point or an exponent) or a string instead",
            i64::MIN,
            i64::MAX
        )));
    }
    Ok(value)
}

/// A JSON value that refuses repeated object names at any depth.
pub struct StrictValue(pub Json);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

/// The visitor behind [`StrictValue`], public so that a caller's own visitor can hand it the
/// values it does not handle itself.
pub struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
        Ok(Json::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            // One search per name: the slot found for the check is the one filled.
            match out.entry(k) {
                serde_json::map::Entry::Occupied(e) => return Err(duplicate_key(e.key())),
                serde_json::map::Entry::Vacant(e) => {
                    let StrictValue(v) = map.next_value()?;
                    e.insert(v);
                }
            }
        }
        Ok(Json::Object(out))
    }
}

/// The error a strict visitor returns for a repeated `name`; [`duplicate_key_in`] reads the
/// name back out of the parser's error.
pub fn duplicate_key<E: de::Error>(name: &str) -> E {
    let shown: String = name.chars().take(64).collect();
    E::custom(format!("{DUPLICATE_MARK}{shown}{DUPLICATE_END}"))
}

/// The repeated name, when `e` is the error of a strict parse that met one.
pub fn duplicate_key_in(e: &serde_json::Error) -> Option<String> {
    let text = e.to_string();
    let name = text.strip_prefix(DUPLICATE_MARK)?;
    Some(name.split(DUPLICATE_END).next().unwrap_or(name).to_owned())
}

const DUPLICATE_MARK: &str = "duplicate name \u{1}";
const DUPLICATE_END: char = '\u{1}';

/// Whether some number in `value` could come from an integer literal outside `i64`: a `u64`
/// above `i64::MAX`, or a whole double at or beyond ±2^63 (serde_json's result for a longer
/// literal). Whole doubles that large are rare, so the text is rarely scanned again.
fn may_hold_a_wide_integer(value: &Json) -> bool {
    // 2^63 as a double; every whole double with a magnitude below it fits an i64.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    match value {
        Json::Number(n) => {
            if n.is_u64() {
                n.as_u64().is_some_and(|u| i64::try_from(u).is_err())
            } else if n.is_f64() {
                n.as_f64()
                    .is_some_and(|d| d.fract() == 0.0 && (d >= TWO_63 || d <= -TWO_63))
            } else {
                false
            }
        }
        Json::Array(items) => items.iter().any(may_hold_a_wide_integer),
        Json::Object(map) => map.values().any(may_hold_a_wide_integer),
        _ => false,
    }
}

/// Where we are in the text while scanning it again.
enum Frame {
    Object { key: Option<String>, want_key: bool },
    Array { index: usize },
}

/// The first integer literal (no fraction, no exponent) in `text` that does not fit an `i64`,
/// with its path (`a.b[2]`). `text` is valid JSON (it parsed), so the scan only needs to tell
/// strings, numbers and structure apart.
fn first_wide_integer(text: &[u8]) -> Option<(String, String)> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { want_key, .. }) => *want_key = true,
                None => {}
            },
            b'"' => {
                let start = i;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key, want_key }) = stack.last_mut()
                    && *want_key
                {
                    let raw = text.get(start..=i).unwrap_or_default();
                    *key = serde_json::from_slice::<String>(raw).ok();
                    *want_key = false;
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < text.len()
                    && matches!(text[i + 1], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let literal = std::str::from_utf8(&text[start..=i]).unwrap_or_default();
                let integer = !literal.contains(['.', 'e', 'E']);
                if integer && literal.parse::<i64>().is_err() {
                    return Some((render_path(&stack), literal.to_owned()));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn render_path(stack: &[Frame]) -> String {
    let mut out = String::new();
    for frame in stack {
        match frame {
            Frame::Array { index } => out.push_str(&format!("[{index}]")),
            Frame::Object { key, .. } => {
                let key = key.as_deref().unwrap_or("");
                if !out.is_empty() {
                    out.push('.');
                }
                let plain = !key.is_empty()
                    && !key.starts_with(|c: char| c.is_ascii_digit())
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if plain {
                    out.push_str(key);
                } else {
                    out.push('`');
                    out.push_str(&key.replace('\\', "\\\\").replace('`', "\\`"));
                    out.push('`');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(text: &str) -> Result<Json, String> {
        parse_body(text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn repeated_names_are_refused_at_any_depth() {
        for (text, name) in [
            (r#"{"a": 1, "a": 2}"#, "a"),
            (r#"{"x": {"b": [{"c": 1, "c": 1}]}}"#, "c"),
            (r#"[{"moderator": true, "moderator": false}]"#, "moderator"),
        ] {
            match parse_strict(text.as_bytes()) {
                Err(ModelError::DuplicateKey(n)) => assert_eq!(n, name, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // The same name in different objects is fine.
        assert!(parse_strict(br#"{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}"#).is_ok());
        assert!(matches!(
            parse_strict(b"{\"a\": 1} x"),
            Err(ModelError::InvalidJson(_))
        ));
    }

    /// `{"a": 18446744073709551617}` was stored as a double while 2^63…2^64−1 were refused:
    /// every integer literal outside the signed 64-bit range is refused, naming where it is;
    /// double literals of any size stay doubles.
    #[test]
    fn integer_literals_outside_i64_are_refused_with_their_path() {
        for (text, at) in [
            (
                r#"{"a": 18446744073709551617}"#,
                "integer 18446744073709551617 at a ",
            ),
            (r#"{"a": 9223372036854775808}"#, "at a "),
            (r#"{"a": 18446744073709551615}"#, "at a "),
            (
                r#"{"a": -9223372036854775809}"#,
                "integer -9223372036854775809 at a ",
            ),
            (
                r#"{"writes": [{"op": "set", "data": {"x.y": [1, 2, 99999999999999999999999]}}]}"#,
                "at writes[0].data.`x.y`[2] ",
            ),
            (
                r#"{"where": [["n", "==", 1e3], ["m", "in", [1, 123456789012345678901]]]}"#,
                "at where[1][2][1] ",
            ),
            ("18446744073709551617", "at the body "),
        ] {
            let e = body(text).unwrap_err();
            assert!(e.contains(at), "{text}: {e}");
            assert!(e.contains("64-bit signed range"), "{e}");
        }
        for text in [
            r#"{"a": 9223372036854775807, "b": -9223372036854775808}"#,
            r#"{"a": 1e20, "b": 18446744073709551617.0, "c": -1E19, "d": 1.5e300}"#,
            r#"{"s": "18446744073709551617", "k": {"99999999999999999999": 1e19}}"#,
            r#"{"esc\"aped": 1e19, "x": "\\", "y": 1}"#,
        ] {
            assert!(body(text).is_ok(), "{text}");
        }
        let kept = body(r#"{"a": 18446744073709551617.0}"#).unwrap();
        assert_eq!(kept["a"].as_f64(), Some(18_446_744_073_709_551_617.0));
    }
}
