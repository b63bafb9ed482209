//! `/v1/docs/{*path}`: read, list, set, update, delete and create documents. Each handler
//! extracts, makes one engine call and maps the result; paths, bodies and conditional headers
//! are validated by the extractors and the model before anything is written.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use claimdb_engine::Document;
use claimdb_model::json::{decode_update, decode_write};
use claimdb_model::{CollectionPath, DocPath};
use serde_json::Value as Json_;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, Conditions, Ctx, RawPath};
use crate::wire::{DocumentOut, ListOut, ListParams};

/// `GET`: a document path reads the document (304 when `If-None-Match` names its current
/// version); a collection path lists the collection.
pub(crate) async fn get(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawPath(raw): RawPath,
    ApiQuery(params): ApiQuery<ListParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if names_collection(&raw) {
        let collection = CollectionPath::parse(&raw).map_err(invalid)?;
        let page = state.engine.list(&ctx, &collection, &params.into()).await?;
        return Ok(Json(ListOut::from(&page)).into_response());
    }
    let path = DocPath::parse(&raw).map_err(invalid)?;
    if !params.is_empty() {
        return Err(ApiError::invalid(
            "page_size and page_token only apply to a collection path",
        ));
    }
    let doc = state.engine.get(&ctx, &path).await?;
    if not_modified(&headers, doc.version) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(etag) = HeaderValue::from_str(&etag(doc.version)) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        return Ok(response);
    }
    Ok(document_response(StatusCode::OK, &doc, None))
}

/// Whether a read's `If-None-Match` (a list of tags, weak or strong, or `*`) names `version`.
/// An unparsable header is ignored, as HTTP caches do, and the document is sent.
fn not_modified(headers: &HeaderMap, version: u64) -> bool {
    let Some(value) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value.split(',').map(str::trim).any(|tag| {
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag.trim_matches('"').parse::<u64>().ok() == Some(version)
    })
}

/// `PUT`: replace or create (201 when created). `If-Match` / `If-None-Match: *` apply.
pub(crate) async fn put(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawPath(raw): RawPath,
    Conditions(condition): Conditions,
    ApiJson(body): ApiJson<Json_>,
) -> Result<Response, ApiError> {
    let path = DocPath::parse(&raw).map_err(invalid)?;
    let data = decode_write(&body).map_err(invalid)?;
    let outcome = state.engine.set(&ctx, path, data, condition).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(document_response(status, &outcome.document, None))
}

/// `PATCH`: merge dotted field paths into an existing document.
pub(crate) async fn patch(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawPath(raw): RawPath,
    Conditions(condition): Conditions,
    ApiJson(body): ApiJson<Json_>,
) -> Result<Response, ApiError> {
    let path = DocPath::parse(&raw).map_err(invalid)?;
    let update = decode_update(&body).map_err(invalid)?;
    let doc = state.engine.update(&ctx, path, update, condition).await?;
    Ok(document_response(StatusCode::OK, &doc, None))
}

/// `DELETE`: 204, whether or not the document existed, unless a condition fails.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawPath(raw): RawPath,
    Conditions(condition): Conditions,
) -> Result<StatusCode, ApiError> {
    let path = DocPath::parse(&raw).map_err(invalid)?;
    state.engine.delete(&ctx, path, condition).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST` to a collection: create a document with a generated id (201 + `Location`).
pub(crate) async fn post(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawPath(raw): RawPath,
    ApiJson(body): ApiJson<Json_>,
) -> Result<Response, ApiError> {
    let collection = CollectionPath::parse(&raw).map_err(invalid)?;
    let data = decode_write(&body).map_err(invalid)?;
    let doc = state
        .engine
        .create_with_generated_id(&ctx, &collection, data)
        .await?;
    let location = format!("/v1/docs/{}", percent_encode_path(doc.path.as_str()));
    Ok(document_response(StatusCode::CREATED, &doc, Some(location)))
}

/// A document path has an even number of segments; anything else is read as a collection (and
/// validated as one, so `a//b` still gets the "empty segment" message).
fn names_collection(raw: &str) -> bool {
    raw.split('/').count() % 2 == 1
}

fn document_response(status: StatusCode, doc: &Document, location: Option<String>) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(etag) = HeaderValue::from_str(&etag(doc.version)) {
        headers.insert(header::ETAG, etag);
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    (status, headers, Json(DocumentOut::from(doc))).into_response()
}

/// The entity tag of a document version.
pub(crate) fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// Percent-encodes everything but unreserved characters and `/`, so any path fits a header.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn invalid(e: claimdb_model::ModelError) -> ApiError {
    ApiError::invalid(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_percent_encoded() {
        assert_eq!(percent_encode_path("a b/ü"), "a%20b/%C3%BC");
        assert_eq!(percent_encode_path("movies/AbC09"), "movies/AbC09");
    }

    #[test]
    fn if_none_match_on_reads() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(not_modified(&with("\"7\""), 7));
        assert!(not_modified(&with("\"1\", W/\"7\""), 7));
        assert!(not_modified(&with("*"), 7));
        assert!(!not_modified(&with("\"6\""), 7));
        assert!(!not_modified(&with("garbage"), 7));
        assert!(!not_modified(&HeaderMap::new(), 7));
    }

    #[test]
    fn odd_segment_counts_name_collections() {
        assert!(names_collection("movies"));
        assert!(names_collection("a/b/c"));
        assert!(!names_collection("a/b"));
        assert!(names_collection("a//b"));
    }
}
