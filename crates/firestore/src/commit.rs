//! `commit` and `batchGet`: Firestore's atomic batch of writes and its multi-document read, as
//! one engine batch and per-document engine reads, so each write and read is decided by the
//! rules exactly as on claimdb's own API (a batch's writes one by one, `getAfter` seeing the
//! whole batch; a denied write fails the commit and nothing is applied).
//!
//! The JSON here is proto3 JSON of `CommitRequest`/`CommitResponse` and
//! `BatchGetDocumentsRequest`/`Response`, read leniently where proto3 JSON is lenient (absent
//! fields are defaults) and strictly where a wrong shape would change meaning.

use claimdb_engine::{
    Document, Engine, EngineError, Precondition as StorePrecondition, ReadCheck, RequestContext,
    Write, WriteOp,
};
use claimdb_model::{DocPath, FieldPath, Map, Timestamp, Transform, Value};
use serde_json::{Map as JsonMap, Value as Json, json};

use crate::consistency;
use crate::documents::{self, Precondition};
use crate::names::Database;
use crate::status::{Code, Status};
use crate::transactions::Transactions;
use crate::value;

/// How often a commit whose masked updates were pinned to the documents' state is retried when
/// a document appeared, vanished or changed between looking and committing.
const COMMIT_ATTEMPTS: usize = 3;

/// One write of a commit, decoded.
#[derive(Debug, Clone, PartialEq)]
struct FsWrite {
    path: DocPath,
    kind: Kind,
    transforms: Vec<(FieldPath, Transform)>,
    precondition: Precondition,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// `update` without a mask: the document becomes `fields`.
    Set(Map),
    /// `update` with a mask (or a transform-only write: an empty mask): only the masked fields.
    Merge {
        fields: Map,
        mask: Vec<FieldPath>,
    },
    Delete,
    /// `verify`: no change; the document must be as the precondition says when the commit
    /// applies (a transaction's read that was not written).
    Verify,
}

/// Decodes `CommitRequest.writes`.
fn decode_writes(body: &JsonMap<String, Json>, db: &Database) -> Result<Vec<FsWrite>, Status> {
    let writes = match body.get("writes") {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Array(writes)) => writes,
        Some(_) => return Err(Status::invalid("writes must be an array of Write")),
    };
    writes
        .iter()
        .enumerate()
        .map(|(i, w)| {
            decode_write(w, db)
                .map_err(|e| Status::new(e.code, format!("write {i}: {}", e.message)))
        })
        .collect()
}

fn decode_write(json: &Json, db: &Database) -> Result<FsWrite, Status> {
    let Json::Object(write) = json else {
        return Err(Status::invalid("a Write must be an object"));
    };
    for key in write.keys() {
        if !matches!(
            key.as_str(),
            "update"
                | "delete"
                | "transform"
                | "verify"
                | "updateMask"
                | "updateTransforms"
                | "currentDocument"
        ) {
            return Err(Status::invalid(format!("{key:?} is not a field of Write")));
        }
    }
    let operations = ["update", "delete", "transform", "verify"]
        .iter()
        .filter(|k| write.get(**k).is_some_and(|v| !v.is_null()))
        .count();
    if operations != 1 {
        return Err(Status::invalid(
            "a Write has exactly one of update, delete, transform or verify",
        ));
    }
    let precondition = decode_precondition(write.get("currentDocument"))?;
    let mut transforms = match write.get("updateTransforms") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(list)) => decode_transforms(list, db)?,
        Some(_) => return Err(Status::invalid("updateTransforms must be an array")),
    };
    let mask = match write.get("updateMask") {
        None | Some(Json::Null) => None,
        Some(Json::Object(mask)) => Some(field_paths(mask.get("fieldPaths"))?),
        Some(_) => {
            return Err(Status::invalid(
                "updateMask must be {\"fieldPaths\": [...]}",
            ));
        }
    };
    if let Some(Json::Object(update)) = write.get("update") {
        let name = update
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| Status::invalid("update.name is required"))?;
        let path = db.parse_document_name(name)?;
        let fields = value::decode_fields(update.get("fields"), db)?;
        let kind = match mask {
            None => Kind::Set(fields),
            Some(mask) => Kind::Merge { fields, mask },
        };
        return Ok(FsWrite {
            path,
            kind,
            transforms,
            precondition,
        });
    }
    // `verify` and `delete` name a document and take nothing else but a precondition.
    for (member, kind) in [("verify", Kind::Verify), ("delete", Kind::Delete)] {
        let Some(name) = write.get(member) else {
            continue;
        };
        let name = name
            .as_str()
            .ok_or_else(|| Status::invalid(format!("{member} is a document name")))?;
        if mask.is_some() || !transforms.is_empty() {
            return Err(Status::invalid(format!(
                "a {member} takes no updateMask or updateTransforms"
            )));
        }
        if kind == Kind::Verify && precondition == Precondition::None {
            return Err(Status::invalid("a verify needs currentDocument"));
        }
        return Ok(FsWrite {
            path: db.parse_document_name(name)?,
            kind,
            transforms,
            precondition,
        });
    }
    // The older form: `transform: {document, fieldTransforms}` on its own.
    let Some(Json::Object(transform)) = write.get("transform") else {
        return Err(Status::invalid(
            "update must be a Document and transform a DocumentTransform",
        ));
    };
    let name = transform
        .get("document")
        .and_then(Json::as_str)
        .ok_or_else(|| Status::invalid("transform.document is required"))?;
    let path = db.parse_document_name(name)?;
    if let Some(Json::Array(list)) = transform.get("fieldTransforms") {
        transforms.extend(decode_transforms(list, db)?);
    }
    Ok(FsWrite {
        path,
        kind: Kind::Merge {
            fields: Map::new(),
            mask: Vec::new(),
        },
        transforms,
        precondition,
    })
}

pub(crate) fn decode_precondition(json: Option<&Json>) -> Result<Precondition, Status> {
    let Some(Json::Object(p)) = json else {
        return match json {
            None | Some(Json::Null) => Ok(Precondition::None),
            Some(_) => Err(Status::invalid("currentDocument must be an object")),
        };
    };
    match (p.get("exists"), p.get("updateTime")) {
        (Some(Json::Bool(exists)), None) => Ok(Precondition::Exists(*exists)),
        (None, Some(Json::String(time))) => Ok(Precondition::UpdateTime(
            Timestamp::parse(time).map_err(|e| Status::invalid(e.to_string()))?,
        )),
        (None, None) => Ok(Precondition::None),
        _ => Err(Status::invalid(
            "currentDocument takes exists (a boolean) or updateTime (a timestamp), not both",
        )),
    }
}

pub(crate) fn field_paths(json: Option<&Json>) -> Result<Vec<FieldPath>, Status> {
    match json {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(paths)) => paths
            .iter()
            .map(|p| {
                let text = p
                    .as_str()
                    .ok_or_else(|| Status::invalid("a field path is a string"))?;
                FieldPath::parse(text).map_err(|e| Status::invalid(e.to_string()))
            })
            .collect(),
        Some(_) => Err(Status::invalid("fieldPaths must be an array of strings")),
    }
}

fn decode_transforms(list: &[Json], db: &Database) -> Result<Vec<(FieldPath, Transform)>, Status> {
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        let Json::Object(t) = t else {
            return Err(Status::invalid("a FieldTransform must be an object"));
        };
        let path = t
            .get("fieldPath")
            .and_then(Json::as_str)
            .ok_or_else(|| Status::invalid("FieldTransform.fieldPath is required"))?;
        let path = FieldPath::parse(path).map_err(|e| Status::invalid(e.to_string()))?;
        let kinds: Vec<(&String, &Json)> = t.iter().filter(|(k, _)| *k != "fieldPath").collect();
        let [(kind, arg)] = kinds.as_slice() else {
            return Err(Status::invalid(format!(
                "the transform of {path} must have exactly one kind"
            )));
        };
        let array = |arg: &Json| -> Result<Vec<Value>, Status> {
            match value::decode(&json!({ "arrayValue": arg }), db)? {
                Value::Array(items) => Ok(items),
                _ => Err(Status::invalid("an ArrayValue is expected")),
            }
        };
        let number = |arg: &Json| -> Result<Value, Status> {
            let v = value::decode(arg, db)?;
            if v.is_number() {
                Ok(v)
            } else {
                Err(Status::invalid(format!("{kind} of {path} takes a number")))
            }
        };
        let transform = match kind.as_str() {
            "setToServerValue" => match arg {
                Json::String(s) if s == "REQUEST_TIME" => Transform::ServerTimestamp,
                Json::Number(n) if n.as_u64() == Some(1) => Transform::ServerTimestamp,
                _ => return Err(Status::invalid("setToServerValue must be REQUEST_TIME")),
            },
            "increment" => Transform::Increment(number(arg)?),
            "maximum" => Transform::Maximum(number(arg)?),
            "minimum" => Transform::Minimum(number(arg)?),
            "appendMissingElements" => Transform::ArrayUnion(array(arg)?),
            "removeAllFromArray" => Transform::ArrayRemove(array(arg)?),
            other => {
                return Err(Status::invalid(format!(
                    "{other:?} is not a field transform"
                )));
            }
        };
        out.push((path, transform));
    }
    Ok(out)
}

/// `commit`: the writes as one atomic engine batch; in a transaction, only if every document
/// the transaction read (and every `verify`) is still as it was. Answers `CommitResponse`.
pub async fn commit(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    transactions: &Transactions,
    body: &JsonMap<String, Json>,
) -> Result<Json, Status> {
    let writes = decode_writes(body, db)?;
    let ended = match body.get("transaction") {
        None | Some(Json::Null) => None,
        Some(Json::String(id)) => Some(transactions.end(id)?),
        Some(_) => return Err(Status::invalid("transaction must be a base64 string")),
    };
    let changes: Vec<usize> = (0..writes.len())
        .filter(|i| writes[*i].kind != Kind::Verify)
        .collect();
    if ended.as_ref().is_some_and(|t| t.read_only) && !changes.is_empty() {
        return Err(Status::invalid("a read-only transaction cannot write"));
    }
    let mut reads = ended.map(|t| t.reads).unwrap_or_default();
    for w in writes.iter().filter(|w| w.kind == Kind::Verify) {
        reads.push(verify(engine, w).await?);
    }
    if changes.is_empty() {
        // Nothing to write: the commit succeeds if what was read still holds now.
        if let Some(path) = engine.changed(&reads).await? {
            return Err(Status::new(
                Code::Aborted,
                format!("{path} changed after it was read; retry the transaction"),
            ));
        }
        let now = engine.clock().timestamp().to_string();
        let results = writes
            .iter()
            .map(|_| json!({ "updateTime": now }))
            .collect::<Vec<_>>();
        return Ok(json!({ "writeResults": results, "commitTime": now }));
    }
    let real: Vec<FsWrite> = changes.iter().map(|i| writes[*i].clone()).collect();
    let mut last = None;
    for _ in 0..COMMIT_ATTEMPTS {
        let batch = plan(engine, &real).await?;
        match engine.batch_pinned(ctx, batch, reads.clone()).await {
            Ok(result) => return Ok(commit_response(&writes, &result, db)),
            Err(e) => {
                let failed = e.write_index().and_then(|i| real.get(i));
                // A pin of ours (not the client's precondition) failed: the document changed
                // between looking and committing; look again.
                let ours = failed.is_some_and(|w| {
                    w.precondition == Precondition::None && matches!(w.kind, Kind::Merge { .. })
                });
                let retry = ours
                    && matches!(
                        e,
                        EngineError::FailedPrecondition { .. }
                            | EngineError::AlreadyExists { .. }
                            | EngineError::NotFound { .. }
                    );
                if !retry {
                    let precondition = failed.map_or(Precondition::None, |w| w.precondition);
                    return Err(documents::as_firestore(e, precondition).into());
                }
                last = Some(e);
            }
        }
    }
    let cause = last.map(|e| e.to_string()).unwrap_or_default();
    Err(Status::new(
        Code::Aborted,
        format!("documents kept changing while the commit was prepared; retry ({cause})"),
    ))
}

/// The read check a `verify` write stands for.
async fn verify(engine: &Engine, w: &FsWrite) -> Result<ReadCheck, Status> {
    let current = engine
        .store()
        .get(&w.path)
        .await
        .map_err(EngineError::from)?;
    let version = match (w.precondition, current) {
        (Precondition::Exists(false), None) => None,
        (Precondition::Exists(true), Some(doc)) => Some(doc.version),
        (Precondition::UpdateTime(time), Some(doc)) if doc.update_time == time => Some(doc.version),
        _ => {
            return Err(Status::new(
                Code::FailedPrecondition,
                format!(
                    "{} is not as the verify expects; retry the transaction",
                    w.path
                ),
            ));
        }
    };
    Ok(ReadCheck {
        path: w.path.clone(),
        version,
    })
}

/// The engine writes for a commit. A masked update without a precondition updates the document
/// if it exists and creates it if not: which one is decided on the document as it is now, and
/// pinned (its version, or its absence) so the store refuses the write if that changed.
async fn plan(engine: &Engine, writes: &[FsWrite]) -> Result<Vec<Write>, Status> {
    let mut out = Vec::with_capacity(writes.len());
    for w in writes {
        let precondition = match w.precondition {
            Precondition::None => StorePrecondition::None,
            Precondition::Exists(true) => StorePrecondition::Exists,
            Precondition::Exists(false) => StorePrecondition::Missing,
            Precondition::UpdateTime(time) => match engine
                .store()
                .get(&w.path)
                .await
                .map_err(EngineError::from)?
            {
                Some(doc) if doc.update_time == time => StorePrecondition::Version(doc.version),
                _ => {
                    return Err(Status::new(
                        Code::FailedPrecondition,
                        format!("document {} was not last updated at {time}", w.path),
                    ));
                }
            },
        };
        let (op, precondition) = match &w.kind {
            Kind::Set(fields) => (
                WriteOp::Set {
                    data: fields.clone(),
                    transforms: w.transforms.clone(),
                },
                precondition,
            ),
            Kind::Delete => (WriteOp::Delete, precondition),
            // Taken out before planning (they are read checks).
            Kind::Verify => continue,
            Kind::Merge { fields, mask } => {
                let existing = match precondition {
                    StorePrecondition::Exists | StorePrecondition::Version(_) => Some(precondition),
                    StorePrecondition::Missing => None,
                    StorePrecondition::None => engine
                        .store()
                        .get(&w.path)
                        .await
                        .map_err(EngineError::from)?
                        .map(|doc| StorePrecondition::Version(doc.version)),
                };
                match existing {
                    Some(pin) => {
                        let update = documents::masked_update(fields, mask);
                        let mut transforms = update.transforms;
                        transforms.extend(w.transforms.iter().cloned());
                        (
                            WriteOp::Update {
                                fields: update.fields,
                                transforms,
                            },
                            pin,
                        )
                    }
                    None => (
                        WriteOp::Create {
                            data: documents::project(fields, mask),
                            transforms: w.transforms.clone(),
                        },
                        StorePrecondition::None,
                    ),
                }
            }
        };
        out.push(Write::new(w.path.clone(), op).with_precondition(precondition));
    }
    Ok(out)
}

fn commit_response(
    writes: &[FsWrite],
    result: &claimdb_engine::CommitResult,
    db: &Database,
) -> Json {
    let commit_time = result.commit_time.to_string();
    let mut applied = result.results.iter();
    let results: Vec<Json> = writes
        .iter()
        .map(|w| {
            let mut out = JsonMap::new();
            let r = if w.kind == Kind::Verify {
                None
            } else {
                applied.next()
            };
            let document = r.and_then(|r| r.document.as_ref());
            let update_time =
                document.map_or_else(|| commit_time.clone(), |d| d.update_time.to_string());
            out.insert("updateTime".into(), Json::String(update_time));
            if !w.transforms.is_empty()
                && let Some(doc) = document
            {
                let values = w
                    .transforms
                    .iter()
                    .map(|(path, _)| {
                        documents::lookup(&doc.data, path)
                            .map_or_else(|| json!({"nullValue": null}), |v| value::encode(v, db))
                    })
                    .collect();
                out.insert("transformResults".into(), Json::Array(values));
            }
            Json::Object(out)
        })
        .collect();
    json!({ "writeResults": results, "commitTime": commit_time })
}

/// `batchWrite`: each write applied on its own, not atomically — each one is a commit of one
/// write (with the same semantics and rules decision as in `commit`), and gets its own result
/// and `google.rpc.Status` (`{}` for OK). Answers `BatchWriteResponse`.
pub async fn batch_write(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    transactions: &Transactions,
    body: &JsonMap<String, Json>,
) -> Result<Json, Status> {
    if let Some(key) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "writes" | "labels"))
    {
        return Err(Status::invalid(format!(
            "{key:?} is not a field of BatchWriteRequest"
        )));
    }
    let writes = match body.get("writes") {
        None | Some(Json::Null) => &[][..],
        Some(Json::Array(writes)) => writes.as_slice(),
        Some(_) => return Err(Status::invalid("writes must be an array of Write")),
    };
    if writes.len() > claimdb_model::limits::MAX_BATCH_WRITES {
        return Err(Status::invalid(format!(
            "a batch write has at most {} writes, not {}",
            claimdb_model::limits::MAX_BATCH_WRITES,
            writes.len()
        )));
    }
    // Every write must decode before any is applied: a malformed request changes nothing.
    for (i, w) in writes.iter().enumerate() {
        decode_write(w, db)
            .map_err(|e| Status::new(e.code, format!("write {i}: {}", e.message)))?;
        if w.get("verify").is_some() {
            return Err(Status::invalid(format!(
                "write {i}: verify is only for commit"
            )));
        }
    }
    let mut results = Vec::with_capacity(writes.len());
    let mut statuses = Vec::with_capacity(writes.len());
    for w in writes {
        let mut one = JsonMap::new();
        one.insert("writes".into(), Json::Array(vec![w.clone()]));
        match commit(engine, ctx, db, transactions, &one).await {
            Ok(answer) => {
                results.push(answer["writeResults"][0].clone());
                statuses.push(json!({}));
            }
            Err(status) => {
                results.push(json!({}));
                statuses.push(status.to_rpc_json());
            }
        }
    }
    Ok(json!({ "writeResults": results, "status": statuses }))
}

/// `batchGet`: each named document read as a get (decided by the rules one by one; a denial
/// fails the whole call, as in Firestore), at the request's read time, or its transaction's.
/// Answers the stream of `BatchGetDocumentsResponse` as a JSON array, `found` or `missing`, each
/// with the read time.
pub async fn batch_get(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    transactions: &Transactions,
    body: &JsonMap<String, Json>,
    now: Timestamp,
) -> Result<Json, Status> {
    if let Some(other) = body.keys().find(|k| {
        !matches!(
            k.as_str(),
            "documents" | "mask" | "transaction" | "newTransaction" | "readTime"
        )
    }) {
        return Err(Status::invalid(format!(
            "{other:?} is not a field of BatchGetDocumentsRequest"
        )));
    }
    let names = match body.get("documents") {
        Some(Json::Array(names)) => names.as_slice(),
        None | Some(Json::Null) => &[],
        Some(_) => return Err(Status::invalid("documents must be an array of names")),
    };
    let mask = match body.get("mask") {
        Some(Json::Object(mask)) => Some(field_paths(mask.get("fieldPaths"))?),
        _ => None,
    };
    let paths = names
        .iter()
        .map(|name| {
            let name = name
                .as_str()
                .ok_or_else(|| Status::invalid("a document name is a string"))?;
            Ok((name, db.parse_document_name(name)?))
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let read = consistency::select(transactions, body)?;
    let read_time = Json::String(read.answered_time(now).to_string());
    let mut out = Vec::with_capacity(names.len() + 1);
    if let (Some(id), true) = (&read.transaction, read.begun) {
        out.push(json!({ "transaction": id }));
    }
    let mut found_docs = Vec::new();
    let mut missing_paths = Vec::new();
    for (name, path) in paths {
        match documents::get(engine, ctx, &path, mask.as_deref(), read.at).await {
            Ok(doc) => {
                out.push(json!({ "found": found(&doc, db), "readTime": read_time }));
                found_docs.push(doc);
            }
            Err(EngineError::NotFound { .. }) => {
                out.push(json!({ "missing": name, "readTime": read_time }));
                missing_paths.push(path);
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let (Some(id), true) = (&read.transaction, read.pins_reads()) {
        let found: Vec<&Document> = found_docs.iter().collect();
        let missing: Vec<&DocPath> = missing_paths.iter().collect();
        transactions.record(id, &found, &missing)?;
    }
    Ok(Json::Array(out))
}

fn found(doc: &Document, db: &Database) -> Json {
    value::encode_document(doc, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Database {
        Database::new("p").unwrap()
    }

    fn writes(json: Json) -> Result<Vec<FsWrite>, Status> {
        let Json::Object(body) = json!({ "writes": json }) else {
            unreachable!()
        };
        decode_writes(&body, &db())
    }

    const NAME: &str = "projects/p/databases/(default)/documents/c/d";

    #[test]
    fn decodes_what_the_sdks_send() {
        let w = writes(json!([
            {"update": {"name": NAME, "fields": {"a": {"integerValue": "1"}}},
             "updateMask": {"fieldPaths": ["a", "b.c"]},
             "updateTransforms": [
                {"fieldPath": "t", "setToServerValue": "REQUEST_TIME"},
                {"fieldPath": "n", "increment": {"integerValue": "2"}},
                {"fieldPath": "m", "maximum": {"doubleValue": 1.5}},
                {"fieldPath": "l", "appendMissingElements": {"values": [{"stringValue": "x"}]}},
                {"fieldPath": "r", "removeAllFromArray": {}}
             ],
             "currentDocument": {"exists": true}},
            {"delete": NAME, "currentDocument": {"updateTime": "2026-01-01T00:00:00.000001Z"}},
            {"update": {"name": NAME, "fields": {}}, "currentDocument": {"exists": false}}
        ]))
        .unwrap();
        assert_eq!(w.len(), 3);
        assert!(matches!(&w[0].kind, Kind::Merge { mask, .. } if mask.len() == 2));
        assert_eq!(w[0].transforms.len(), 5);
        assert_eq!(w[0].transforms[4].1, Transform::ArrayRemove(vec![]));
        assert_eq!(w[0].precondition, Precondition::Exists(true));
        assert!(matches!(w[1].precondition, Precondition::UpdateTime(_)));
        assert!(matches!(w[2].kind, Kind::Set(_)));
    }

    #[test]
    fn refuses_malformed_writes_naming_the_write() {
        for (bad, code) in [
            (
                json!([{"update": {"name": NAME}, "delete": NAME}]),
                Code::InvalidArgument,
            ),
            (json!([{}]), Code::InvalidArgument),
            (
                json!([{"delete": NAME, "updateMask": {"fieldPaths": ["a"]}}]),
                Code::InvalidArgument,
            ),
            (json!([{"update": {"fields": {}}}]), Code::InvalidArgument),
            (
                json!([{"update": {"name": NAME}, "updateTransforms": [{"fieldPath": "a", "increment": {"stringValue": "x"}}]}]),
                Code::InvalidArgument,
            ),
            (
                json!([{"update": {"name": NAME}, "updateTransforms": [{"fieldPath": "a"}]}]),
                Code::InvalidArgument,
            ),
            (
                json!([{"update": {"name": NAME}, "currentDocument": {"exists": true, "updateTime": "2026-01-01T00:00:00Z"}}]),
                Code::InvalidArgument,
            ),
            (json!([{"verify": NAME}]), Code::InvalidArgument),
            (
                json!([{"delete": "projects/other/databases/(default)/documents/c/d"}]),
                Code::NotFound,
            ),
        ] {
            let e = writes(bad.clone()).unwrap_err();
            assert_eq!(e.code, code, "{bad}: {}", e.message);
            assert!(e.message.starts_with("write 0: "), "{}", e.message);
        }
    }
}
