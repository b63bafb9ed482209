//! Values and documents in Firestore's proto3 JSON (`google.firestore.v1.Value`, `Document`),
//! to and from claimdb's model. The mapping is exact both ways: integers are int64 (sent as
//! JSON strings, numbers accepted), doubles keep NaN and the infinities (as the strings proto3
//! JSON uses), timestamps are microsecond-precise (finer digits are dropped, as Firestore does),
//! references are full names on the wire and paths inside.
//!
//! Field names obey claimdb's rules (`claimdb_model::json::check_field_name`): a name starting
//! with `$` is refused, because claimdb's own JSON form uses such names for typed values.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use claimdb_engine::Document;
use claimdb_model::limits::MAX_DEPTH;
use claimdb_model::{FieldPath, Map, Timestamp, Value};
use serde_json::{Map as JsonMap, Value as Json, json};

use crate::names::Database;
use crate::status::Status;

/// A value in proto3 JSON.
pub fn encode(value: &Value, db: &Database) -> Json {
    match value {
        Value::Null => json!({ "nullValue": null }),
        Value::Bool(b) => json!({ "booleanValue": b }),
        Value::Int(i) => json!({ "integerValue": i.to_string() }),
        Value::Double(d) => json!({ "doubleValue": double(*d) }),
        Value::Timestamp(t) => json!({ "timestampValue": t.to_string() }),
        Value::String(s) => json!({ "stringValue": s }),
        Value::Bytes(b) => json!({ "bytesValue": STANDARD.encode(b) }),
        Value::Reference(p) => json!({ "referenceValue": db.document_name(p) }),
        Value::GeoPoint { lat, lng } => {
            json!({ "geoPointValue": { "latitude": double(*lat), "longitude": double(*lng) } })
        }
        // proto3 JSON leaves empty repeated and map fields out.
        Value::Array(items) if items.is_empty() => json!({ "arrayValue": {} }),
        Value::Array(items) => {
            let values: Vec<Json> = items.iter().map(|v| encode(v, db)).collect();
            json!({ "arrayValue": { "values": values } })
        }
        Value::Map(map) if map.is_empty() => json!({ "mapValue": {} }),
        Value::Map(map) => json!({ "mapValue": { "fields": encode_fields(map, db) } }),
    }
}

/// A document's fields (`Document.fields`, `MapValue.fields`).
pub fn encode_fields(map: &Map, db: &Database) -> Json {
    Json::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), encode(v, db)))
            .collect(),
    )
}

/// A document: `{name, fields, createTime, updateTime}` (`fields` left out when empty).
pub fn encode_document(doc: &Document, db: &Database) -> Json {
    let mut out = JsonMap::new();
    out.insert("name".into(), Json::String(db.document_name(&doc.path)));
    if !doc.data.is_empty() {
        out.insert("fields".into(), encode_fields(&doc.data, db));
    }
    out.insert(
        "createTime".into(),
        Json::String(doc.create_time.to_string()),
    );
    out.insert(
        "updateTime".into(),
        Json::String(doc.update_time.to_string()),
    );
    Json::Object(out)
}

fn double(d: f64) -> Json {
    if d.is_nan() {
        Json::from("NaN")
    } else if d == f64::INFINITY {
        Json::from("Infinity")
    } else if d == f64::NEG_INFINITY {
        Json::from("-Infinity")
    } else {
        Json::from(d)
    }
}

/// A value from proto3 JSON: an object with exactly one of the `Value` fields.
pub fn decode(json: &Json, db: &Database) -> Result<Value, Status> {
    let mut path = Vec::new();
    decode_at(json, db, 1, &mut path)
}

/// A document's (or map's) `fields`; absent or `null` is an empty document.
pub fn decode_fields(json: Option<&Json>, db: &Database) -> Result<Map, Status> {
    let mut path = Vec::new();
    decode_fields_at(json, db, 1, &mut path)
}

fn decode_fields_at(
    json: Option<&Json>,
    db: &Database,
    depth: usize,
    path: &mut Vec<String>,
) -> Result<Map, Status> {
    let fields = match json {
        None | Some(Json::Null) => return Ok(Map::new()),
        Some(Json::Object(fields)) => fields,
        Some(_) => return Err(at(path, "fields must be an object of field name → Value")),
    };
    if depth > MAX_DEPTH {
        return Err(at(
            path,
            &format!("nesting is deeper than {MAX_DEPTH} levels"),
        ));
    }
    let mut map = Map::new();
    for (name, value) in fields {
        claimdb_model::json::check_field_name(name).map_err(|e| Status::invalid(e.to_string()))?;
        path.push(name.clone());
        let decoded = decode_at(value, db, depth, path);
        path.pop();
        map.insert(name.clone(), decoded?);
    }
    Ok(map)
}

/// The error for the value at `path`.
fn at(path: &[String], what: &str) -> Status {
    if path.is_empty() {
        Status::invalid(what.to_string())
    } else {
        let field = FieldPath::from_segments(path.to_vec());
        Status::invalid(format!("field {field}: {what}"))
    }
}

fn decode_at(
    json: &Json,
    db: &Database,
    depth: usize,
    path: &mut Vec<String>,
) -> Result<Value, Status> {
    if depth > MAX_DEPTH {
        return Err(at(
            path,
            &format!("nesting is deeper than {MAX_DEPTH} levels"),
        ));
    }
    let Json::Object(object) = json else {
        return Err(at(
            path,
            "a Value must be a JSON object such as {\"stringValue\": \"…\"}",
        ));
    };
    let mut entries = object.iter();
    let (Some((kind, inner)), None) = (entries.next(), entries.next()) else {
        return Err(at(
            path,
            &format!(
                "a Value must have exactly one field (nullValue, booleanValue, integerValue, …), not {}",
                object.len()
            ),
        ));
    };
    let bad = |what: &str| at(path, &format!("{kind} must be {what}"));
    Ok(match kind.as_str() {
        "nullValue" => match inner {
            Json::Null => Value::Null,
            Json::String(s) if s == "NULL_VALUE" => Value::Null,
            Json::Number(n) if n.as_u64() == Some(0) => Value::Null,
            _ => return Err(bad("null")),
        },
        "booleanValue" => Value::Bool(inner.as_bool().ok_or_else(|| bad("true or false"))?),
        "integerValue" => {
            Value::Int(integer(inner).ok_or_else(|| bad("a 64-bit integer (a string of digits)"))?)
        }
        "doubleValue" => Value::Double(
            number(inner).ok_or_else(|| bad("a number, \"NaN\", \"Infinity\" or \"-Infinity\""))?,
        ),
        "timestampValue" => {
            let text = inner.as_str().ok_or_else(|| bad("an RFC 3339 string"))?;
            Value::Timestamp(Timestamp::parse(text).map_err(|e| at(path, &e.to_string()))?)
        }
        "stringValue" => Value::String(inner.as_str().ok_or_else(|| bad("a string"))?.to_string()),
        "bytesValue" => {
            let text = inner.as_str().ok_or_else(|| bad("a base64 string"))?;
            // proto3 JSON accepts both alphabets.
            let bytes = STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE.decode(text))
                .map_err(|_| bad("a base64 string"))?;
            Value::Bytes(bytes)
        }
        "referenceValue" => {
            let name = inner.as_str().ok_or_else(|| bad("a document name"))?;
            Value::Reference(
                db.parse_document_name(name)
                    .map_err(|e| at(path, &e.message))?,
            )
        }
        "geoPointValue" => {
            let point = match inner {
                Json::Object(point) => point,
                _ => return Err(bad("{\"latitude\": …, \"longitude\": …}")),
            };
            let coordinate = |name: &str| match point.get(name) {
                None | Some(Json::Null) => Some(0.0),
                Some(v) => number(v),
            };
            let (Some(lat), Some(lng)) = (coordinate("latitude"), coordinate("longitude")) else {
                return Err(bad("{\"latitude\": number, \"longitude\": number}"));
            };
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
                return Err(at(
                    path,
                    &format!(
                        "geoPointValue ({lat}, {lng}) is out of range (latitude ±90, longitude ±180)"
                    ),
                ));
            }
            Value::GeoPoint { lat, lng }
        }
        "arrayValue" => {
            let values = match inner {
                Json::Object(array) => array.get("values"),
                Json::Null => None,
                _ => return Err(bad("{\"values\": [Value, …]}")),
            };
            match values {
                None | Some(Json::Null) => Value::Array(Vec::new()),
                Some(Json::Array(items)) => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        if item
                            .as_object()
                            .is_some_and(|o| o.contains_key("arrayValue"))
                        {
                            return Err(at(path, "an array cannot directly contain an array"));
                        }
                        out.push(decode_at(item, db, depth + 1, path)?);
                    }
                    Value::Array(out)
                }
                Some(_) => return Err(bad("{\"values\": [Value, …]}")),
            }
        }
        "mapValue" => {
            let fields = match inner {
                Json::Object(map) => map.get("fields"),
                Json::Null => None,
                _ => return Err(bad("{\"fields\": {name: Value, …}}")),
            };
            Value::Map(decode_fields_at(fields, db, depth + 1, path)?)
        }
        other => {
            return Err(at(
                path,
                &format!(
                    "{other:?} is not a Value field (nullValue, booleanValue, integerValue, doubleValue, timestampValue, stringValue, bytesValue, referenceValue, geoPointValue, arrayValue, mapValue)"
                ),
            ));
        }
    })
}

/// An int64 as proto3 JSON allows it: a string of digits or an integral number.
fn integer(json: &Json) -> Option<i64> {
    match json {
        Json::String(s) => s.parse().ok(),
        Json::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// A double as proto3 JSON allows it: a number, or a string of one (including the special
/// values).
fn number(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok().filter(|f: &f64| f.is_finite()),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_model::DocPath;
    use proptest::prelude::*;

    fn db() -> Database {
        Database::new("demo-test").unwrap()
    }

    /// Any value Firestore can hold (no array directly in an array).
    fn value() -> impl Strategy<Value = Value> {
        claimdb_model::arbitrary::value(false)
    }

    /// The text of a value, so NaN compares equal to itself.
    fn text(v: &Value) -> String {
        serde_json::to_string(&claimdb_model::json::Encoded(v)).unwrap()
    }

    proptest! {
        #[test]
        fn every_value_round_trips_exactly(v in value()) {
            let wire = encode(&v, &db());
            // Through text, as it travels.
            let wire: Json = serde_json::from_str(&wire.to_string()).unwrap();
            let back = decode(&wire, &db()).unwrap();
            prop_assert_eq!(text(&back), text(&v));
        }
    }

    #[test]
    fn reads_what_clients_send() {
        let db = db();
        let cases = [
            (json!({"integerValue": "8"}), Value::Int(8)),
            (json!({"integerValue": 8}), Value::Int(8)),
            (
                json!({"integerValue": "-9223372036854775808"}),
                Value::Int(i64::MIN),
            ),
            (json!({"doubleValue": 8}), Value::Double(8.0)),
            (json!({"doubleValue": "1.5"}), Value::Double(1.5)),
            (json!({"nullValue": "NULL_VALUE"}), Value::Null),
            (
                json!({"timestampValue": "2026-12-07T10:00:00.123456789Z"}),
                Value::Timestamp(Timestamp::parse("2026-12-07T10:00:00.123456Z").unwrap()),
            ),
            (
                json!({"bytesValue": "-_8="}),
                Value::Bytes(vec![0xfb, 0xff]),
            ),
            (json!({"arrayValue": {}}), Value::Array(vec![])),
            (json!({"mapValue": {}}), Value::Map(Map::new())),
            (
                json!({"geoPointValue": {"latitude": 1.5}}),
                Value::GeoPoint { lat: 1.5, lng: 0.0 },
            ),
            (
                json!({"referenceValue": "projects/demo-test/databases/(default)/documents/a/b"}),
                Value::Reference(DocPath::parse("a/b").unwrap()),
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(decode(&wire, &db).unwrap(), want, "{wire}");
        }
    }

    #[test]
    fn refuses_malformed_values_with_the_field_named() {
        let db = db();
        let refused = [
            json!({}),
            json!({"integerValue": "1", "stringValue": "x"}),
            json!({"integerValue": "9223372036854775808"}),
            json!({"integerValue": "1.5"}),
            json!({"booleanValue": "true"}),
            json!({"timestampValue": "yesterday"}),
            json!({"bytesValue": "***"}),
            json!({"referenceValue": "a/b"}),
            json!({"referenceValue": "projects/other/databases/(default)/documents/a/b"}),
            json!({"geoPointValue": {"latitude": 91}}),
            json!({"arrayValue": {"values": [{"arrayValue": {}}]}}),
            json!({"mapValue": {"fields": {"$timestamp": {"nullValue": null}}}}),
            json!({"mapValue": {"fields": {"": {"nullValue": null}}}}),
            json!({"pipelineValue": "x"}),
            json!("plain"),
        ];
        for wire in refused {
            let e = decode(&wire, &db).unwrap_err();
            assert_eq!(e.code, crate::Code::InvalidArgument, "{wire}");
        }
        let nested = json!({"mapValue": {"fields": {"inner": {"integerValue": "x"}}}});
        let e = decode(&nested, &db).unwrap_err();
        assert!(e.message.contains("field inner"), "{}", e.message);
        let mut deep = json!({"nullValue": null});
        for _ in 0..MAX_DEPTH {
            deep = json!({"mapValue": {"fields": {"m": deep}}});
        }
        assert!(decode_fields(Some(&json!({"top": deep})), &db).is_err());
    }
}
