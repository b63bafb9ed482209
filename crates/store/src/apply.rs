//! What one write does to one document, independent of any backend: the precondition check, the
//! new data (set, merge of update paths, transforms at the commit time) and the size limit.
//! Backends read the current document, call [`apply_write`] and store what it returns.

use claimdb_model::json::check_document_size;
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

/// Field names starting with `$` are reserved for the JSON form's tagged values; a stored one
/// would not read back as written. Nesting is bounded like decoded documents.
fn check_names(map: &Map, depth: usize) -> Result<(), StoreError> {
    if depth > claimdb_model::limits::MAX_DEPTH {
        return Err(StoreError::InvalidArgument(format!(
            "the document nests deeper than {} levels",
            claimdb_model::limits::MAX_DEPTH
        )));
    }
    for (name, value) in map {
        if name.starts_with('$') {
            return Err(StoreError::InvalidArgument(format!(
                "field name {name:?} starts with '$', which is reserved"
            )));
        }
        check_value(value, depth)?;
    }
    Ok(())
}

fn check_value(value: &Value, depth: usize) -> Result<(), StoreError> {
    match value {
        Value::Map(inner) => check_names(inner, depth + 1),
        Value::Array(items) => {
            if depth + 1 > claimdb_model::limits::MAX_DEPTH {
                return Err(StoreError::InvalidArgument(format!(
                    "the document nests deeper than {} levels",
                    claimdb_model::limits::MAX_DEPTH
                )));
            }
            items.iter().try_for_each(|v| check_value(v, depth + 1))
        }
        _ => Ok(()),
    }
}
