//! What a `Listen` stream's `addTarget` asks for, decoded and checked: the engine targets (a
//! listener per named document, or one for a query), whether and from what it resumes, and
//! `once`. A malformed target is an error for that target alone (the stream goes on).

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use claimdb_engine::listen::ListenTarget;
use claimdb_model::Timestamp;
use serde_json::{Map as JsonMap, Value as Json};

use super::MAX_TARGET_DOCUMENTS;
use crate::names::Database;
use crate::query;
use crate::status::{Code, Status};

/// Separates the engine tokens of a documents target's listeners in its resume token (they are
/// `{hex}.{hex}`).
pub(super) const TOKEN_SEPARATOR: char = ',';

/// An `addTarget`, decoded.
pub(super) struct Decoded {
    pub(super) targets: Vec<ListenTarget>,
    pub(super) documents: bool,
    /// It asks to resume: with these engine tokens (one per listener, when the resume token
    /// holds as many), or from a read time or another server's token (`Some(vec![])`).
    pub(super) resume: Option<Vec<String>>,
    /// `once`: removed as soon as it is current.
    pub(super) once: bool,
}

/// What an `addTarget` asks for; an error rejects the target (not the stream).
pub(super) fn decode(db: &Database, target: &JsonMap<String, Json>) -> Result<Decoded, Status> {
    let once = match target.get("once") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(once)) => *once,
        Some(_) => return Err(Status::invalid("once must be a boolean")),
    };
    let token = match target.get("resumeToken") {
        None | Some(Json::Null) => None,
        Some(Json::String(token)) => Some(
            STANDARD
                .decode(token)
                .or_else(|_| URL_SAFE.decode(token))
                .map_err(|_| Status::invalid("resumeToken must be base64"))?,
        ),
        Some(_) => return Err(Status::invalid("resumeToken must be base64")),
    }
    .filter(|token| !token.is_empty());
    let read_time = match target.get("readTime") {
        None | Some(Json::Null) => None,
        Some(Json::String(time)) => {
            Some(Timestamp::parse(time).map_err(|e| Status::invalid(e.to_string()))?)
        }
        Some(_) => return Err(Status::invalid("readTime must be a timestamp")),
    };
    if token.is_some() && read_time.is_some() {
        return Err(Status::invalid(
            "a Target takes resumeToken or readTime, not both",
        ));
    }
    // Engine tokens are printable ASCII; what is not is another server's: a reset.
    let resume = match (token, read_time) {
        (Some(token), _) => Some(
            String::from_utf8(token)
                .map(|t| t.split(TOKEN_SEPARATOR).map(str::to_owned).collect())
                .unwrap_or_default(),
        ),
        (None, Some(_)) => Some(Vec::new()),
        (None, None) => None,
    };
    let documents = target.get("documents").filter(|v| !v.is_null());
    let query = target.get("query").filter(|v| !v.is_null());
    if target.get("pipelineQuery").is_some_and(|v| !v.is_null()) {
        return Err(Status::new(
            Code::Unimplemented,
            "pipeline queries are not supported",
        ));
    }
    let (targets, named) = match (documents, query) {
        (Some(documents), None) => (documents_target(db, documents)?, true),
        (None, Some(query)) => (vec![query_target(db, query)?], false),
        _ => {
            return Err(Status::invalid(
                "a Target has exactly one of documents or query",
            ));
        }
    };
    Ok(Decoded {
        targets,
        documents: named,
        resume,
        once,
    })
}

fn documents_target(db: &Database, json: &Json) -> Result<Vec<ListenTarget>, Status> {
    let Json::Object(target) = json else {
        return Err(Status::invalid("documents must be a DocumentsTarget"));
    };
    if let Some(key) = target.keys().find(|k| *k != "documents") {
        return Err(Status::invalid(format!(
            "{key:?} is not a field of DocumentsTarget"
        )));
    }
    let names = match target.get("documents") {
        Some(Json::Array(names)) if !names.is_empty() => names,
        _ => {
            return Err(Status::invalid(
                "documents.documents must name at least one document",
            ));
        }
    };
    if names.len() > MAX_TARGET_DOCUMENTS {
        return Err(Status::invalid(format!(
            "a documents target names at most {MAX_TARGET_DOCUMENTS} documents, not {}",
            names.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut targets = Vec::with_capacity(names.len());
    for name in names {
        let name = name
            .as_str()
            .ok_or_else(|| Status::invalid("a document name is a string"))?;
        let path = db.parse_document_name(name)?;
        if seen.insert(path.clone()) {
            targets.push(ListenTarget::Document(path));
        }
    }
    Ok(targets)
}

fn query_target(db: &Database, json: &Json) -> Result<ListenTarget, Status> {
    let Json::Object(target) = json else {
        return Err(Status::invalid("query must be a QueryTarget"));
    };
    if let Some(key) = target
        .keys()
        .find(|k| !matches!(k.as_str(), "parent" | "structuredQuery"))
    {
        return Err(Status::invalid(format!(
            "{key:?} is not a field of QueryTarget"
        )));
    }
    let parent = target
        .get("parent")
        .and_then(Json::as_str)
        .ok_or_else(|| Status::invalid("query.parent is required"))?;
    let parent = db.parse_name(parent)?;
    let structured = query::decode(
        target.get("structuredQuery").unwrap_or(&Json::Null),
        &parent,
        db,
    )?;
    if structured.select.is_some() {
        return Err(Status::invalid("a listened query takes no select"));
    }
    Ok(ListenTarget::Query(Box::new(structured.query)))
}

/// A target id: an int32, not negative (0 asks the server to choose one).
pub(super) fn target_id(json: &Json) -> Result<i32, Status> {
    let id = match json {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    };
    id.and_then(|id| i32::try_from(id).ok())
        .filter(|id| *id >= 0)
        .ok_or_else(|| Status::invalid(format!("a target id is a non-negative int32, not {json}")))
}
