//! Documents to and from rows: the `jsonb` form of the data, and the exact JSON text kept beside
//! it for the few documents `jsonb` would change.
//!
//! `jsonb` rejects U+0000 in strings and field names and stores numbers as `numeric`, which drops
//! the sign of `-0.0` and prints large doubles without a fraction or exponent (`1e16` becomes
//! `10000000000000000`, which reads back as an integer). A document holding any of those keeps
//! its exact JSON in `data_exact` and a `jsonb` approximation (U+0000 as U+FFFD) in `data`, so
//! SQL tools still see the document while claimdb reads it back bit for bit.

use claimdb_model::json;
use claimdb_model::{DocPath, Map, Timestamp, Value};
use claimdb_store::{Document, StoreError};
use serde_json::Value as Json;
use tokio_postgres::Row;

/// Doubles at least this large print in exponent form (or would lose their fraction in
/// `numeric`); a little below the real boundary (1e16) to stay clear of it.
const EXACT_DOUBLE_LIMIT: f64 = 1e15;

/// The stored form of a document's data: the `jsonb` value and, when that is not exact, the
/// exact JSON text.
pub(crate) fn encode(data: &Map) -> Result<(Json, Option<Vec<u8>>), StoreError> {
    let encoded = json::encode_document(data);
    if map_is_exact(data) {
        return Ok((encoded, None));
    }
    let exact = serde_json::to_vec(&encoded)
        .map_err(|e| StoreError::Internal(format!("encoding a document: {e}")))?;
    Ok((jsonb_safe(encoded), Some(exact)))
}

fn map_is_exact(map: &Map) -> bool {
    map.iter()
        .all(|(k, v)| !k.contains('\0') && value_is_exact(v))
}

fn value_is_exact(value: &Value) -> bool {
    match value {
        Value::Double(d) => double_is_exact(*d),
        Value::GeoPoint { lat, lng } => double_is_exact(*lat) && double_is_exact(*lng),
        Value::String(s) => !s.contains('\0'),
        Value::Array(items) => items.iter().all(value_is_exact),
        Value::Map(m) => map_is_exact(m),
        _ => true,
    }
}

fn double_is_exact(d: f64) -> bool {
    // NaN and the infinities are tagged strings, so exact.
    !(d == 0.0 && d.is_sign_negative()) && (!d.is_finite() || d.abs() < EXACT_DOUBLE_LIMIT)
}

/// The JSON with every U+0000 replaced (which `jsonb` cannot hold).
fn jsonb_safe(json: Json) -> Json {
    let clean = |s: String| {
        if s.contains('\0') {
            s.replace('\0', "\u{FFFD}")
        } else {
            s
        }
    };
    match json {
        Json::String(s) => Json::String(clean(s)),
        Json::Array(items) => Json::Array(items.into_iter().map(jsonb_safe).collect()),
        Json::Object(map) => Json::Object(
            map.into_iter()
                .map(|(k, v)| (clean(k), jsonb_safe(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Decodes a row whose first columns, from `offset`, are `schema::DOC_COLUMNS`.
pub(crate) fn read_document(row: &Row, offset: usize) -> Result<Document, StoreError> {
    let path: String = row.try_get(offset).map_err(column)?;
    let corrupt = |what: &str| StoreError::Internal(format!("stored document {path}: {what}"));
    let exact: Option<Vec<u8>> = row.try_get(offset + 2).map_err(column)?;
    let data = match exact {
        Some(bytes) => {
            let json: Json =
                serde_json::from_slice(&bytes).map_err(|e| corrupt(&format!("bad JSON: {e}")))?;
            json::decode_document(&json)
        }
        None => {
            let json: Json = row.try_get(offset + 1).map_err(column)?;
            json::decode_document(&json)
        }
    }
    .map_err(|e| corrupt(&e.to_string()))?;
    let create_us: i64 = row.try_get(offset + 3).map_err(column)?;
    let update_us: i64 = row.try_get(offset + 4).map_err(column)?;
    let version: i64 = row.try_get(offset + 5).map_err(column)?;
    Ok(Document {
        path: DocPath::parse(&path).map_err(|e| corrupt(&e.to_string()))?,
        data,
        create_time: Timestamp::from_micros(create_us).map_err(|e| corrupt(&e.to_string()))?,
        update_time: Timestamp::from_micros(update_us).map_err(|e| corrupt(&e.to_string()))?,
        version: u64::try_from(version).map_err(|e| corrupt(&e.to_string()))?,
    })
}

fn column(e: tokio_postgres::Error) -> StoreError {
    StoreError::Internal(format!("reading a PostgreSQL row: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(j: serde_json::Value) -> Map {
        json::decode_document(&j).unwrap()
    }

    #[test]
    fn ordinary_documents_are_stored_as_jsonb_alone() {
        let data =
            doc(serde_json::json!({"a": 1, "b": 2.5, "c": [1e14, "x"], "g": {"$geo": [1.0, 2.0]}}));
        let (json, exact) = encode(&data).unwrap();
        assert!(exact.is_none());
        assert_eq!(json::decode_document(&json).unwrap(), data);
    }

    #[test]
    fn what_jsonb_would_change_keeps_its_exact_text() {
        for j in [
            serde_json::json!({"s": "a\u{0}b"}),
            serde_json::json!({"k\u{0}": 1}),
            serde_json::json!({"d": 1e16}),
            serde_json::json!({"d": -0.0}),
            serde_json::json!({"a": [{"d": 1e300}]}),
        ] {
            let data = doc(j.clone());
            let (json, exact) = encode(&data).unwrap();
            let exact = exact.unwrap_or_else(|| panic!("{j} should keep its exact text"));
            let back: Json = serde_json::from_slice(&exact).unwrap();
            assert_eq!(json::decode_document(&back).unwrap(), data);
            assert!(!json.to_string().contains("\\u0000"), "{json}");
        }
    }
}
