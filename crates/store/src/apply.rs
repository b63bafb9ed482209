//! What one write does to one document, independent of any backend: the precondition check, the
//! new data (set, merge of update paths, transforms at the commit time) and the size limit.
//! Backends read the current document, call [`apply_write`] and store what it returns.

use claimdb_model::json::check_document_size;
use claimdb_model::limits::{MAX_DEPTH, MAX_FIELD_NAME_BYTES};
use claimdb_model::{FieldPath, Map, Timestamp, Transform, Value};

use crate::{Document, Precondition, StoreError, Write, WriteOp};

/// The document after `write`, given the current one (`None` when it is deleted or stays
/// missing), with the commit's time and version.
pub fn apply_write(
    current: Option<&Document>,
    write: &Write,
    now: Timestamp,
    version: u64,
) -> Result<Option<Document>, StoreError> {
    let path = &write.path;
    match (write.precondition, current) {
        (Precondition::None, _) => {}
        (Precondition::Exists, Some(_)) | (Precondition::Missing, None) => {}
        (Precondition::Exists, None) => {
            return Err(StoreError::FailedPrecondition(format!(
                "document {path} does not exist"
            )));
        }
        (Precondition::Missing, Some(_)) => {
            return Err(StoreError::FailedPrecondition(format!(
                "document {path} already exists"
            )));
        }
        (Precondition::Version(v), Some(doc)) if doc.version == v => {}
        (Precondition::Version(v), Some(doc)) => {
            return Err(StoreError::FailedPrecondition(format!(
                "document {path} is at version {}, not {v}",
                doc.version
            )));
        }
        (Precondition::Version(v), None) => {
            return Err(StoreError::FailedPrecondition(format!(
                "document {path} does not exist (expected version {v})"
            )));
        }
    }
    let data = match &write.op {
        WriteOp::Delete => return Ok(None),
        WriteOp::Create { data, transforms } => {
            if current.is_some() {
                return Err(StoreError::AlreadyExists(format!(
                    "document {path} already exists"
                )));
            }
            transformed(data.clone(), transforms, now)?
        }
        WriteOp::Set { data, transforms } => transformed(data.clone(), transforms, now)?,
        WriteOp::Update { fields, transforms } => {
            let Some(doc) = current else {
                return Err(StoreError::NotFound(format!(
                    "document {path} does not exist"
                )));
            };
            let mut data = doc.data.clone();
            for (field, value) in fields {
                check_field(field)?;
                field.set(&mut data, value.clone());
            }
            transformed(data, transforms, now)?
        }
    };
    check_names(&data, 1)?;
    check_document_size(&data)?;
    Ok(Some(Document {
        path: path.clone(),
        data,
        create_time: current.map_or(now, |d| d.create_time),
        update_time: now,
        version,
    }))
}

fn transformed(
    mut data: Map,
    transforms: &[(FieldPath, Transform)],
    now: Timestamp,
) -> Result<Map, StoreError> {
    for (field, transform) in transforms {
        check_field(field)?;
        match transform.apply(field.get(&data), now)? {
            Some(value) => field.set(&mut data, value),
            None => {
                field.delete(&mut data);
            }
        }
    }
    Ok(data)
}

fn check_field(field: &FieldPath) -> Result<(), StoreError> {
    if field.segments().is_empty() || field.is_document_id() {
        return Err(StoreError::InvalidArgument(format!(
            "cannot write the field {field}"
        )));
    }
    Ok(())
}

/// Refuses what the stored JSON form could not read back (it is decoded with
/// `claimdb_model::json::decode_document` on every read): empty, `$`-prefixed or overlong field
/// names, nesting beyond the limit (counted as the decoder counts), geopoints out of range.
fn check_names(map: &Map, depth: usize) -> Result<(), StoreError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    for (name, value) in map {
        if name.is_empty() {
            return Err(StoreError::InvalidArgument("a field name is empty".into()));
        }
        if name.starts_with('$') {
            return Err(StoreError::InvalidArgument(format!(
                "field name {:?} starts with '$', which is reserved",
                name.chars().take(60).collect::<String>()
            )));
        }
        if name.len() > MAX_FIELD_NAME_BYTES {
            return Err(StoreError::InvalidArgument(format!(
                "a field name is {} bytes; the limit is {MAX_FIELD_NAME_BYTES}",
                name.len()
            )));
        }
        check_value(value, depth)?;
    }
    Ok(())
}

fn check_value(value: &Value, depth: usize) -> Result<(), StoreError> {
    if depth > MAX_DEPTH {
        return Err(too_deep());
    }
    match value {
        Value::Map(inner) => check_names(inner, depth + 1),
        Value::Array(items) => items.iter().try_for_each(|v| check_value(v, depth + 1)),
        Value::GeoPoint { lat, lng }
            if !(-90.0..=90.0).contains(lat) || !(-180.0..=180.0).contains(lng) =>
        {
            Err(StoreError::InvalidArgument(format!(
                "geopoint [{lat}, {lng}] is out of range (latitude ±90, longitude ±180)"
            )))
        }
        _ => Ok(()),
    }
}

fn too_deep() -> StoreError {
    StoreError::InvalidArgument(format!("the document nests deeper than {MAX_DEPTH} levels"))
}

#[cfg(test)]
mod tests {
    use claimdb_model::json::{decode_document, encode_document};
    use claimdb_model::{DocPath, Map, Timestamp, Value};

    use super::*;

    fn set(data: Map) -> Result<Option<Document>, StoreError> {
        let write = Write::new(
            DocPath::parse("c/d").unwrap(),
            WriteOp::Set {
                data,
                transforms: vec![],
            },
        );
        apply_write(None, &write, Timestamp::from_micros(1).unwrap(), 1)
    }

    fn nested(depth: usize, leaf: Value) -> Value {
        (1..depth).fold(leaf, |v, _| Value::Array(vec![v]))
    }

    /// Whatever a write stores must decode again, as itself; otherwise every later read of it
    /// fails or (a `$ref` key inside a map) silently changes its meaning.
    #[test]
    fn refuses_exactly_what_the_stored_form_cannot_read_back() {
        let mut cases: Vec<Map> = Vec::new();
        let one = |k: &str, v: Value| Map::from([(k.to_string(), v)]);
        cases.push(one("", Value::Null));
        cases.push(one("$x", Value::Null));
        cases.push(one(&"n".repeat(MAX_FIELD_NAME_BYTES + 1), Value::Null));
        cases.push(one(
            "g",
            Value::GeoPoint {
                lat: 91.0,
                lng: 0.0,
            },
        ));
        cases.push(one(
            "g",
            Value::GeoPoint {
                lat: f64::NAN,
                lng: 0.0,
            },
        ));
        cases.push(one("a", nested(MAX_DEPTH + 1, Value::Null)));
        cases.push(one(
            "m",
            Value::Map(one("$ref", Value::String("a/b".into()))),
        ));
        for data in cases {
            let stored = set(data.clone());
            assert!(
                matches!(stored, Err(StoreError::InvalidArgument(_))),
                "{data:?}: {stored:?}"
            );
            // Each refused document would fail to decode, or decode as something else.
            let read_back = decode_document(&encode_document(&data)).ok();
            assert_ne!(read_back, Some(data));
        }
        for data in [
            one("a", nested(MAX_DEPTH, Value::Null)),
            one("a", nested(MAX_DEPTH, Value::Array(vec![]))),
            one(
                "g",
                Value::GeoPoint {
                    lat: -90.0,
                    lng: 180.0,
                },
            ),
            one("d", Value::Double(f64::NAN)),
        ] {
            assert!(set(data.clone()).is_ok(), "{data:?}");
            assert!(decode_document(&encode_document(&data)).is_ok(), "{data:?}");
        }
    }
}
