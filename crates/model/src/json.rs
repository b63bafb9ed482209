//! The JSON form of documents, on the wire and in storage: plain JSON, plus single-key objects
//! whose key starts with `$` for what JSON lacks (`$timestamp`, `$bytes`, `$ref`, `$geo`,
//! `$double` for NaN/±Infinity) and, in writes only, the transforms (`$serverTimestamp`,
//! `$increment`, `$arrayUnion`, `$arrayRemove`, `$delete`). Integers and doubles keep their JSON
//! form: `2` is an integer, `2.0` a double. A user field name starting with `$` is refused.
//!
//! Decoding enforces the document limits (depth, field-name length); the caller checks the
//! whole-document size on the final document with [`document_size`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Number, Value as Json};

mod direct;

pub use direct::{Encoded, EncodedMap, decode_document_text, document_text};

use crate::error::ModelError;
use crate::field::FieldPath;
use crate::limits::{MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_FIELD_NAME_BYTES};
use crate::path::DocPath;
use crate::transform::Transform;
use crate::value::{Map, Timestamp, Value};

/// Where a decoded value may hold transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Stored data, query operands: no transforms.
    Plain,
    /// A create/set body: transforms except `$delete`.
    Write,
    /// An update (PATCH) body: every transform including `$delete`.
    Update,
}

/// A write body split into plain data and transforms addressed by full field path.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedWrite {
    pub data: Map,
    pub transforms: Vec<(FieldPath, Transform)>,
}

/// An update body: each top-level key is a dotted field path whose value replaces that field.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedUpdate {
    pub fields: Vec<(FieldPath, Value)>,
    pub transforms: Vec<(FieldPath, Transform)>,
}

/// Decodes a stored or plain document: a JSON object with no transforms.
pub fn decode_document(json: &Json) -> Result<Map, ModelError> {
    let decoded = decode_write_body(json, Mode::Plain)?;
    Ok(decoded.data)
}

/// Decodes a create/set body: a JSON object; field names are taken literally.
pub fn decode_write(json: &Json) -> Result<DecodedWrite, ModelError> {
    decode_write_body(json, Mode::Write)
}

fn decode_write_body(json: &Json, mode: Mode) -> Result<DecodedWrite, ModelError> {
    let Json::Object(object) = json else {
        return Err(ModelError::InvalidDocument(format!(
            "a document must be a JSON object, not {}",
            json_kind(json)
        )));
    };
    let mut out = DecodedWrite::default();
    let mut prefix = Vec::new();
    decode_map_into(
        object,
        mode,
        1,
        &mut prefix,
        &mut out.data,
        &mut out.transforms,
    )?;
    Ok(out)
}

/// Decodes an update (PATCH) body: `{"a.b": 1, "c": {"$delete": true}}`.
pub fn decode_update(json: &Json) -> Result<DecodedUpdate, ModelError> {
    let Json::Object(object) = json else {
        return Err(ModelError::InvalidDocument(format!(
            "an update must be a JSON object of field paths, not {}",
            json_kind(json)
        )));
    };
    let mut out = DecodedUpdate::default();
    for (key, value) in object {
        let path = FieldPath::parse(key)?;
        if let Some(bad) = path.segments().iter().find(|s| s.starts_with('$')) {
            return Err(ModelError::InvalidDocument(format!(
                "field name {bad:?} starts with '$', which is reserved"
            )));
        }
        if let Some(earlier) = out
            .fields
            .iter()
            .map(|(p, _)| p)
            .chain(out.transforms.iter().map(|(p, _)| p))
            .find(|p| p.is_prefix_of(&path) || path.is_prefix_of(p))
        {
            return Err(ModelError::InvalidDocument(format!(
                "field paths {earlier} and {path} overlap in one update"
            )));
        }
        let depth = path.segments().len();
        let mut segments = path.segments().to_vec();
        if let Some(v) = decode_value_at(
            value,
            Mode::Update,
            depth,
            &mut segments,
            &mut out.transforms,
        )? {
            out.fields.push((path, v));
        }
    }
    Ok(out)
}

/// Decodes one plain value (a query operand, a cursor value).
pub fn decode_value(json: &Json) -> Result<Value, ModelError> {
    let mut transforms = Vec::new();
    let mut prefix = Vec::new();
    match decode_value_at(json, Mode::Plain, 1, &mut prefix, &mut transforms)? {
        Some(v) => Ok(v),
        None => Err(ModelError::InvalidValue(
            "a transform is not a value".into(),
        )),
    }
}

/// Returns `Some(value)`, or `None` when the JSON was a transform (recorded in `transforms`).
fn decode_value_at(
    json: &Json,
    mode: Mode,
    depth: usize,
    path: &mut Vec<String>,
    transforms: &mut Vec<(FieldPath, Transform)>,
) -> Result<Option<Value>, ModelError> {
    if depth > MAX_DEPTH {
        return Err(ModelError::InvalidDocument(format!(
            "nesting is deeper than {MAX_DEPTH} levels at {}",
            FieldPath::from_segments(path.clone())
        )));
    }
    Ok(Some(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => decode_number(n, path)?,
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                // Transforms are not allowed inside arrays: decode elements as plain values.
                match decode_value_at(item, Mode::Plain, depth + 1, path, transforms)? {
                    Some(v) => out.push(v),
                    None => unreachable_transform()?,
                }
            }
            Value::Array(out)
        }
        Json::Object(object) => {
            if let Some((key, inner)) = single_dollar_key(object) {
                return decode_tagged(key, inner, mode, depth, path, transforms);
            }
            let mut map = Map::new();
            decode_map_into(object, mode, depth + 1, path, &mut map, transforms)?;
            Value::Map(map)
        }
    }))
}

fn unreachable_transform() -> Result<(), ModelError> {
    Err(ModelError::InvalidValue(
        "transforms are not allowed inside arrays".into(),
    ))
}

fn decode_map_into(
    object: &serde_json::Map<String, Json>,
    mode: Mode,
    depth: usize,
    path: &mut Vec<String>,
    out: &mut Map,
    transforms: &mut Vec<(FieldPath, Transform)>,
) -> Result<(), ModelError> {
    if depth > MAX_DEPTH {
        return Err(ModelError::InvalidDocument(format!(
            "nesting is deeper than {MAX_DEPTH} levels at {}",
            FieldPath::from_segments(path.clone())
        )));
    }
    for (name, value) in object {
        check_field_name(name)?;
        path.push(name.clone());
        let decoded = decode_value_at(value, mode, depth, path, transforms);
        path.pop();
        if let Some(v) = decoded? {
            out.insert(name.clone(), v);
        }
    }
    Ok(())
}

/// Refuses a field name claimdb cannot store: empty, starting with `$` (the JSON form's typed
/// values), or longer than [`MAX_FIELD_NAME_BYTES`].
pub fn check_field_name(name: &str) -> Result<(), ModelError> {
    if name.is_empty() {
        return Err(ModelError::InvalidDocument("a field name is empty".into()));
    }
    if name.starts_with('$') {
        return Err(ModelError::InvalidDocument(format!(
            "field name {:?} starts with '$', which is reserved for typed values and transforms",
            name.chars().take(60).collect::<String>()
        )));
    }
    if name.len() > MAX_FIELD_NAME_BYTES {
        return Err(ModelError::InvalidDocument(format!(
            "a field name is {} bytes; the limit is {MAX_FIELD_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

fn single_dollar_key(object: &serde_json::Map<String, Json>) -> Option<(&str, &Json)> {
    if object.len() != 1 {
        return None;
    }
    let (k, v) = object.iter().next()?;
    k.starts_with('$').then_some((k.as_str(), v))
}

fn decode_tagged(
    key: &str,
    inner: &Json,
    mode: Mode,
    depth: usize,
    path: &mut Vec<String>,
    transforms: &mut Vec<(FieldPath, Transform)>,
) -> Result<Option<Value>, ModelError> {
    let bad = |what: &str| ModelError::InvalidValue(format!("{key} takes {what}"));
    let value = match key {
        "$timestamp" => Value::Timestamp(Timestamp::parse(
            inner.as_str().ok_or_else(|| bad("an RFC 3339 string"))?,
        )?),
        "$bytes" => Value::Bytes(
            BASE64
                .decode(inner.as_str().ok_or_else(|| bad("a base64 string"))?)
                .map_err(|e| {
                    ModelError::InvalidValue(format!("$bytes is not valid base64: {e}"))
                })?,
        ),
        "$ref" => Value::Reference(DocPath::parse(
            inner
                .as_str()
                .ok_or_else(|| bad("a document path string"))?,
        )?),
        "$geo" => {
            let pair = inner
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| bad("[latitude, longitude]"))?;
            let lat = pair[0]
                .as_f64()
                .ok_or_else(|| bad("[latitude, longitude] numbers"))?;
            let lng = pair[1]
                .as_f64()
                .ok_or_else(|| bad("[latitude, longitude] numbers"))?;
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                return Err(ModelError::InvalidValue(format!(
                    "$geo [{lat}, {lng}] is out of range (latitude ±90, longitude ±180)"
                )));
            }
            Value::GeoPoint { lat, lng }
        }
        "$double" => match inner.as_str() {
            Some("NaN") => Value::Double(f64::NAN),
            Some("Infinity") => Value::Double(f64::INFINITY),
            Some("-Infinity") => Value::Double(f64::NEG_INFINITY),
            _ => return Err(bad("\"NaN\", \"Infinity\" or \"-Infinity\"")),
        },
        "$serverTimestamp" | "$increment" | "$arrayUnion" | "$arrayRemove" | "$delete" => {
            if mode == Mode::Plain || path.is_empty() {
                return Err(ModelError::InvalidValue(format!(
                    "{key} is a write transform; it is not allowed here"
                )));
            }
            let transform = match key {
                "$serverTimestamp" => {
                    if inner != &Json::Bool(true) {
                        return Err(bad("true"));
                    }
                    Transform::ServerTimestamp
                }
                "$delete" => {
                    if mode != Mode::Update {
                        return Err(ModelError::InvalidValue(
                            "$delete is only allowed in an update (PATCH)".into(),
                        ));
                    }
                    if inner != &Json::Bool(true) {
                        return Err(bad("true"));
                    }
                    Transform::Delete
                }
                "$increment" => match inner {
                    Json::Number(n) => Transform::Increment(decode_number(n, path)?),
                    _ => return Err(bad("a number")),
                },
                _ => {
                    let items = inner.as_array().ok_or_else(|| bad("an array"))?;
                    let mut values = Vec::with_capacity(items.len());
                    for item in items {
                        let mut none = Vec::new();
                        match decode_value_at(item, Mode::Plain, depth + 1, path, &mut none)? {
                            Some(v) => values.push(v),
                            None => unreachable_transform()?,
                        }
                    }
                    if key == "$arrayUnion" {
                        Transform::ArrayUnion(values)
                    } else {
                        Transform::ArrayRemove(values)
                    }
                }
            };
            transforms.push((FieldPath::from_segments(path.clone()), transform));
            return Ok(None);
        }
        other => {
            return Err(ModelError::InvalidValue(format!(
                "unknown typed value {:?}; field names may not start with '$'",
                other.chars().take(60).collect::<String>()
            )));
        }
    };
    Ok(Some(value))
}

/// A number at field `path` (empty for a bare value).
fn decode_number(n: &Number, path: &[String]) -> Result<Value, ModelError> {
    if let Some(i) = n.as_i64() {
        return Ok(Value::Int(i));
    }
    let at = if path.is_empty() {
        String::new()
    } else {
        format!(" at {}", FieldPath::from_segments(path.to_vec()))
    };
    if n.is_u64() {
        return Err(ModelError::InvalidValue(format!(
            "integer {n}{at} is outside the 64-bit signed range"
        )));
    }
    match n.as_f64() {
        Some(d) if d.is_finite() => Ok(Value::Double(d)),
        _ => Err(ModelError::InvalidValue(format!(
            "number {n}{at} is not a finite double"
        ))),
    }
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Encodes a value into its JSON form.
pub fn encode_value(value: &Value) -> Json {
    let tagged = |k: &str, v: Json| {
        let mut m = serde_json::Map::with_capacity(1);
        m.insert(k.to_string(), v);
        Json::Object(m)
    };
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::Number((*i).into()),
        Value::Double(d) => match Number::from_f64(*d) {
            Some(n) => Json::Number(n),
            None => tagged(
                "$double",
                Json::String(
                    if d.is_nan() {
                        "NaN"
                    } else if *d > 0.0 {
                        "Infinity"
                    } else {
                        "-Infinity"
                    }
                    .into(),
                ),
            ),
        },
        Value::Timestamp(t) => tagged("$timestamp", Json::String(t.to_string())),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => tagged("$bytes", Json::String(BASE64.encode(b))),
        Value::Reference(p) => tagged("$ref", Json::String(p.to_string())),
        Value::GeoPoint { lat, lng } => tagged(
            "$geo",
            Json::Array(vec![
                encode_value(&Value::Double(*lat)),
                encode_value(&Value::Double(*lng)),
            ]),
        ),
        Value::Array(items) => Json::Array(items.iter().map(encode_value).collect()),
        Value::Map(map) => encode_document(map),
    }
}

/// Encodes a document (or map) into a JSON object.
pub fn encode_document(map: &Map) -> Json {
    Json::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), encode_value(v)))
            .collect(),
    )
}

/// The stored size of a document: the length of its JSON text.
pub fn document_size(map: &Map) -> usize {
    direct::text_len(map)
}

/// Refuses a document larger than [`MAX_DOCUMENT_BYTES`].
pub fn check_document_size(map: &Map) -> Result<usize, ModelError> {
    let size = document_size(map);
    if size > MAX_DOCUMENT_BYTES {
        return Err(ModelError::InvalidDocument(format!(
            "the document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}"
        )));
    }
    Ok(size)
}

/// A JSON value taken literally (no `$`-tagged forms), as token claims are read: an integral
/// number that fits is an int, any other number a double.
pub fn plain(json: &Json) -> Value {
    match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Array(items.iter().map(plain).collect()),
        Json::Object(m) => Value::Map(plain_map(m)),
    }
}

/// A JSON object taken literally, as [`plain`] does.
pub fn plain_map(m: &serde_json::Map<String, Json>) -> Map {
    m.iter().map(|(k, v)| (k.clone(), plain(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_every_type() {
        let doc = json!({
            "n": null, "b": true, "i": 2, "d": 2.0, "neg": -7, "f": 0.25,
            "t": {"$timestamp": "2026-01-01T00:00:00.000000Z"},
            "s": "hi", "bytes": {"$bytes": "AAEC"}, "r": {"$ref": "users/alice"},
            "g": {"$geo": [48.5, 2.25]}, "a": [1, "x", [2]], "m": {"k": {"deep": 1.5}},
            "nan": {"$double": "NaN"}
        });
        let map = decode_document(&doc).unwrap();
        assert_eq!(map["i"], Value::Int(2));
        assert_eq!(map["d"], Value::Double(2.0));
        assert_eq!(map["bytes"], Value::Bytes(vec![0, 1, 2]));
        assert_eq!(encode_document(&map), doc);
        assert_eq!(
            serde_json::to_string(&encode_value(&map["d"])).unwrap(),
            "2.0"
        );
    }

    #[test]
    fn refuses_bad_documents_with_a_reason() {
        let cases = [
            (json!([1]), "must be a JSON object"),
            (json!({"$x": 1, "y": 2}), "starts with '$'"),
            (json!({"a": {"$nope": 1}}), "unknown typed value"),
            (json!({"": 1}), "empty"),
            (json!({"t": {"$timestamp": "soon"}}), "RFC 3339"),
            (json!({"t": {"$bytes": "!!"}}), "base64"),
            (json!({"t": {"$ref": "users"}}), "names a collection"),
            (json!({"t": {"$geo": [91, 0]}}), "out of range"),
            (
                json!({"i": 18446744073709551615u64}),
                "at i is outside the 64-bit",
            ),
            (json!({"t": {"$serverTimestamp": true}}), "not allowed here"),
        ];
        for (doc, why) in cases {
            let err = decode_document(&doc).unwrap_err().to_string();
            assert!(err.contains(why), "{doc}: {err}");
        }
        let long_name = "f".repeat(1_501);
        let err = decode_document(&json!({ long_name: 1 }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("limit is 1500"), "{err}");
    }

    #[test]
    fn depth_is_limited_to_twenty() {
        let mut ok = json!(1);
        for _ in 0..20 {
            ok = json!({ "a": ok });
        }
        assert!(decode_document(&ok).is_ok());
        let too_deep = json!({ "a": ok });
        assert!(
            decode_document(&too_deep)
                .unwrap_err()
                .to_string()
                .contains("deeper than 20")
        );
        let mut arrays = json!(1);
        for _ in 0..20 {
            arrays = json!([arrays]);
        }
        assert!(decode_document(&json!({ "a": arrays })).is_err());
    }

    #[test]
    fn splits_transforms_out_of_write_bodies() {
        let w = decode_write(&json!({
            "title": "x", "at": {"$serverTimestamp": true},
            "stats": {"views": {"$increment": 1}, "kind": "a"},
            "tags": {"$arrayUnion": ["a", "b"]}
        }))
        .unwrap();
        assert_eq!(w.data.len(), 2);
        let paths: Vec<String> = w.transforms.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(paths, ["at", "stats.views", "tags"]);
        assert!(decode_write(&json!({"a": {"$delete": true}})).is_err());
        assert!(decode_write(&json!({"a": [{"$increment": 1}]})).is_err());
    }

    #[test]
    fn update_bodies_take_dotted_paths() {
        let u =
            decode_update(&json!({"a.b": 1, "c": {"$delete": true}, "`x.y`": {"z": 2}})).unwrap();
        let fields: Vec<String> = u.fields.iter().map(|(p, _)| p.to_string()).collect();
        // serde_json objects iterate in key order.
        assert_eq!(fields, ["`x.y`", "a.b"]);
        assert_eq!(u.transforms[0].0.to_string(), "c");
        assert!(
            decode_update(&json!({"a": 1, "a.b": 2}))
                .unwrap_err()
                .to_string()
                .contains("overlap")
        );
        assert!(decode_update(&json!({"$a": 1})).is_err());
    }

    #[test]
    fn document_size_is_limited() {
        let big = json!({"s": "x".repeat(1_048_576)});
        let map = decode_document(&big).unwrap();
        assert!(
            check_document_size(&map)
                .unwrap_err()
                .to_string()
                .contains("limit is 1048576")
        );
    }
}
