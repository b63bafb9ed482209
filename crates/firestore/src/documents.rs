//! Firestore's single-document operations as engine calls: `get` (with a field mask), list
//! (with `showMissing`), `listCollectionIds`,
//! `createDocument`, `patch` (with or without an update mask) and `delete`, each with the
//! `currentDocument` precondition. `updateTime` is the concurrency token: the store gives every
//! commit a strictly later time, so a document's update time names its version, and an
//! `updateTime` precondition becomes a version precondition the store checks inside the commit.

use claimdb_engine::{
    Child, Document, Engine, EngineError, ListPage, ListRequest, ReadTime, RequestContext,
    WriteCondition,
};
use serde_json::{Map as JsonMap, Value as Json};

use crate::names::{Database, Resource};
use crate::status::Status;
use claimdb_model::json::{DecodedUpdate, DecodedWrite};
use claimdb_model::{CollectionPath, DocPath, FieldPath, Map, Timestamp, Transform, Value};

/// `currentDocument`: what the document must be like for a write to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// `exists: true` / `exists: false`.
    Exists(bool),
    /// `updateTime`: the document exists with exactly this update time.
    UpdateTime(Timestamp),
}

/// How often a masked patch without a precondition is retried when the document appeared or
/// changed between looking at it and committing.
const PATCH_ATTEMPTS: usize = 3;

/// Reads a document as of `at`; `mask` keeps only the named fields in the answer.
pub async fn get(
    engine: &Engine,
    ctx: &RequestContext,
    path: &DocPath,
    mask: Option<&[FieldPath]>,
    at: ReadTime,
) -> Result<Document, EngineError> {
    let mut doc = engine.get_at(ctx, path, at).await?;
    if let Some(mask) = mask {
        doc.data = project(&doc.data, mask);
    }
    Ok(doc)
}

/// Lists a collection as of `at`, one page at a time; `mask` as for [`get`].
pub async fn list(
    engine: &Engine,
    ctx: &RequestContext,
    collection: &CollectionPath,
    request: &ListRequest,
    mask: Option<&[FieldPath]>,
    at: ReadTime,
) -> Result<ListPage, EngineError> {
    let mut page = engine.list_at(ctx, collection, request, at).await?;
    if let Some(mask) = mask {
        for doc in &mut page.documents {
            doc.data = project(&doc.data, mask);
        }
    }
    Ok(page)
}

/// A list with `showMissing=true`: the collection's documents and its missing ones (absent,
/// with documents in their subcollections, answered as `{name}` alone), in id order, as the
/// `ListDocumentsResponse` JSON. Needs the admin condition and the rules' list decision
/// ([`Engine::list_with_missing`]); `mask` as for [`get`]; as of `at`.
pub async fn list_with_missing(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    collection: &CollectionPath,
    request: &ListRequest,
    mask: Option<&[FieldPath]>,
    at: ReadTime,
) -> Result<Json, Status> {
    let page = engine
        .list_with_missing_at(ctx, collection, request, at)
        .await?;
    let mut out = JsonMap::new();
    if !page.entries.is_empty() {
        let docs = page
            .entries
            .into_iter()
            .map(|entry| match entry {
                Child::Document(mut doc) => {
                    if let Some(mask) = mask {
                        doc.data = project(&doc.data, mask);
                    }
                    crate::value::encode_document(&doc, db)
                }
                Child::Missing(path) => serde_json::json!({ "name": db.document_name(&path) }),
            })
            .collect();
        out.insert("documents".into(), Json::Array(docs));
    }
    if let Some(token) = page.next_page_token {
        out.insert("nextPageToken".into(), Json::String(token));
    }
    Ok(Json::Object(out))
}

/// `listCollectionIds` on `parent` (the database root or a document): the request
/// `{pageSize, pageToken, readTime}` answered `{collectionIds, nextPageToken}`, ids in order
/// (as of `readTime` when given). Needs the
/// admin condition ([`Engine::list_collection_ids`]): collection ids reveal the database's
/// structure, and Firestore serves them to administrators only.
pub async fn list_collection_ids(
    engine: &Engine,
    ctx: &RequestContext,
    parent: &Resource,
    body: &JsonMap<String, Json>,
) -> Result<Json, Status> {
    let parent = match parent {
        Resource::Root => None,
        Resource::Document(path) => Some(path),
        Resource::Collection(_) => {
            return Err(Status::invalid(
                "listCollectionIds' parent is a document or the database root",
            ));
        }
    };
    let mut request = ListRequest::default();
    let mut at = ReadTime::Latest;
    for (key, value) in body {
        match key.as_str() {
            "pageSize" => {
                let n = match value {
                    Json::Null => None,
                    Json::Number(n) => n.as_i64(),
                    Json::String(s) => s.parse().ok(),
                    _ => None,
                };
                let n = n
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| Status::invalid("pageSize must be a non-negative integer"))?;
                // 0 is the default page size; a larger one than claimdb's largest page gets
                // that page (a page size is a maximum, and the token continues).
                request.page_size = usize::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(|n| n.min(claimdb_engine::MAX_PAGE_SIZE));
            }
            "pageToken" => match value {
                Json::String(s) if !s.is_empty() => request.page_token = Some(s.clone()),
                Json::String(_) | Json::Null => {}
                _ => return Err(Status::invalid("pageToken must be a string")),
            },
            "readTime" if value.is_null() => {}
            "readTime" => at = ReadTime::At(crate::consistency::read_time(Some(value))?),
            other => {
                return Err(Status::invalid(format!(
                    "{other:?} is not a field of ListCollectionIdsRequest"
                )));
            }
        }
    }
    let page = engine
        .list_collection_ids_at(ctx, parent, &request, at)
        .await?;
    let mut out = JsonMap::new();
    out.insert(
        "collectionIds".into(),
        Json::Array(page.collection_ids.into_iter().map(Json::String).collect()),
    );
    if let Some(token) = page.next_page_token {
        out.insert("nextPageToken".into(), Json::String(token));
    }
    Ok(Json::Object(out))
}

/// `createDocument`: a new document with `id`, or a generated one; `ALREADY_EXISTS` if taken.
pub async fn create(
    engine: &Engine,
    ctx: &RequestContext,
    collection: &CollectionPath,
    id: Option<&str>,
    fields: Map,
) -> Result<Document, EngineError> {
    let data = DecodedWrite {
        data: fields,
        transforms: Vec::new(),
    };
    match id {
        Some(id) => {
            let path = collection.doc(id).map_err(invalid)?;
            engine.create(ctx, path, data).await
        }
        None => engine.create_with_generated_id(ctx, collection, data).await,
    }
}

/// `patch`: without `update_mask` the document is replaced (or created); with one, only the
/// masked fields change — a masked field absent from `fields` is removed, fields outside the
/// mask are ignored — and a missing document is created from the masked fields.
pub async fn patch(
    engine: &Engine,
    ctx: &RequestContext,
    path: &DocPath,
    fields: Map,
    update_mask: Option<&[FieldPath]>,
    precondition: Precondition,
) -> Result<Document, EngineError> {
    let Some(mask) = update_mask else {
        let condition = condition(engine, path, precondition).await?;
        let data = DecodedWrite {
            data: fields,
            transforms: Vec::new(),
        };
        let outcome = engine.set(ctx, path.clone(), data, condition).await;
        return outcome
            .map(|o| o.document)
            .map_err(|e| as_firestore(e, precondition));
    };
    check_mask(mask)?;
    match precondition {
        Precondition::Exists(true) => {
            let update = masked_update(&fields, mask);
            engine
                .update(ctx, path.clone(), update, WriteCondition::Exists)
                .await
                .map_err(|e| as_firestore(e, precondition))
        }
        Precondition::Exists(false) => create_masked(engine, ctx, path, &fields, mask).await,
        Precondition::UpdateTime(_) => {
            let condition = condition(engine, path, precondition).await?;
            let update = masked_update(&fields, mask);
            engine.update(ctx, path.clone(), update, condition).await
        }
        Precondition::None => {
            // Update if it exists, create if not; the store re-checks which inside the commit,
            // and a document that appeared or changed meanwhile is looked at again.
            let mut last = None;
            for _ in 0..PATCH_ATTEMPTS {
                let attempt = match engine.store().get(path).await? {
                    Some(doc) => {
                        let update = masked_update(&fields, mask);
                        let condition = WriteCondition::VersionIn(vec![doc.version]);
                        engine.update(ctx, path.clone(), update, condition).await
                    }
                    None => create_masked(engine, ctx, path, &fields, mask).await,
                };
                match attempt {
                    Err(
                        e @ (EngineError::FailedPrecondition { .. }
                        | EngineError::AlreadyExists { .. }
                        | EngineError::NotFound { .. }),
                    ) => last = Some(e),
                    other => return other,
                }
            }
            let cause = last.map(|e| e.to_string()).unwrap_or_default();
            Err(EngineError::Aborted {
                message: format!(
                    "document {path} kept changing while it was patched; retry ({cause})"
                ),
                write_index: None,
            })
        }
    }
}

/// `delete`: removes the document (a missing one is fine unless the precondition says not).
pub async fn delete(
    engine: &Engine,
    ctx: &RequestContext,
    path: &DocPath,
    precondition: Precondition,
) -> Result<(), EngineError> {
    let condition = condition(engine, path, precondition).await?;
    engine
        .delete(ctx, path.clone(), condition)
        .await
        .map_err(|e| as_firestore(e, precondition))
}

/// Firestore's codes for a failed `exists` precondition: NOT_FOUND when the document had to
/// exist, ALREADY_EXISTS when it had to be missing (the engine, like HTTP, says failed
/// precondition for both).
pub(crate) fn as_firestore(e: EngineError, precondition: Precondition) -> EngineError {
    match (e, precondition) {
        (EngineError::FailedPrecondition { message, .. }, Precondition::Exists(true)) => {
            EngineError::not_found(format!("no document to update ({message})"))
        }
        (
            EngineError::FailedPrecondition {
                message,
                write_index,
            },
            Precondition::Exists(false),
        ) => EngineError::AlreadyExists {
            message: format!("the document already exists ({message})"),
            write_index,
        },
        (e, _) => e,
    }
}

async fn create_masked(
    engine: &Engine,
    ctx: &RequestContext,
    path: &DocPath,
    fields: &Map,
    mask: &[FieldPath],
) -> Result<Document, EngineError> {
    let data = DecodedWrite {
        data: project(fields, mask),
        transforms: Vec::new(),
    };
    engine.create(ctx, path.clone(), data).await
}

/// The engine's condition for a precondition. An `updateTime` is matched against the document
/// now, and becomes its version, which the store checks again inside the commit.
async fn condition(
    engine: &Engine,
    path: &DocPath,
    precondition: Precondition,
) -> Result<WriteCondition, EngineError> {
    Ok(match precondition {
        Precondition::None => WriteCondition::None,
        Precondition::Exists(true) => WriteCondition::Exists,
        Precondition::Exists(false) => WriteCondition::Missing,
        Precondition::UpdateTime(time) => match engine.store().get(path).await? {
            Some(doc) if doc.update_time == time => WriteCondition::VersionIn(vec![doc.version]),
            Some(doc) => {
                return Err(EngineError::failed_precondition(format!(
                    "document {path} was last updated at {}, not {time}",
                    doc.update_time
                )));
            }
            None => {
                return Err(EngineError::failed_precondition(format!(
                    "document {path} does not exist, so it has no update time {time}"
                )));
            }
        },
    })
}

/// Mask paths may not overlap (`a` and `a.b`), as in Firestore.
fn check_mask(mask: &[FieldPath]) -> Result<(), EngineError> {
    for (i, a) in mask.iter().enumerate() {
        for b in &mask[i + 1..] {
            if a.is_prefix_of(b) || b.is_prefix_of(a) {
                return Err(EngineError::invalid_argument(format!(
                    "the update mask names {a} and {b}, which overlap"
                )));
            }
        }
    }
    Ok(())
}

/// The update a mask describes: each masked field set from `fields`, or removed when absent.
pub(crate) fn masked_update(fields: &Map, mask: &[FieldPath]) -> DecodedUpdate {
    let mut update = DecodedUpdate::default();
    for path in mask {
        match lookup(fields, path) {
            Some(value) => update.fields.push((path.clone(), value.clone())),
            None => update.transforms.push((path.clone(), Transform::Delete)),
        }
    }
    update
}

/// The value at `path` in `map`, if any.
pub(crate) fn lookup<'a>(map: &'a Map, path: &FieldPath) -> Option<&'a Value> {
    let (first, rest) = path.segments().split_first()?;
    let mut value = map.get(first)?;
    for segment in rest {
        match value {
            Value::Map(inner) => value = inner.get(segment)?,
            _ => return None,
        }
    }
    Some(value)
}

/// Only the fields `mask` names (nested maps keep only the named parts).
pub fn project(map: &Map, mask: &[FieldPath]) -> Map {
    let mut out = Map::new();
    for path in mask {
        if let Some(value) = lookup(map, path) {
            insert(&mut out, path.segments(), value.clone());
        }
    }
    out
}

fn insert(map: &mut Map, segments: &[String], value: Value) {
    match segments {
        [] => {}
        [last] => {
            map.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = map
                .entry(first.clone())
                .or_insert_with(|| Value::Map(Map::new()));
            if !matches!(entry, Value::Map(_)) {
                *entry = Value::Map(Map::new());
            }
            if let Value::Map(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

fn invalid(e: claimdb_model::ModelError) -> EngineError {
    EngineError::invalid_argument(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: serde_json::Value) -> Map {
        claimdb_model::json::decode_document(&json).unwrap()
    }

    fn paths(list: &[&str]) -> Vec<FieldPath> {
        list.iter().map(|p| FieldPath::parse(p).unwrap()).collect()
    }

    #[test]
    fn masks_project_nested_fields_and_absent_fields_become_deletes() {
        let doc = map(serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}));
        let projected = project(&doc, &paths(&["b.c", "e", "missing"]));
        assert_eq!(projected, map(serde_json::json!({"b": {"c": 2}, "e": 4})));
        let update = masked_update(&doc, &paths(&["a", "gone", "b.d"]));
        assert_eq!(update.fields.len(), 2);
        assert_eq!(
            update.transforms,
            vec![(FieldPath::parse("gone").unwrap(), Transform::Delete)]
        );
        assert!(check_mask(&paths(&["a", "a.b"])).is_err());
        assert!(check_mask(&paths(&["a", "ab"])).is_ok());
    }
}
