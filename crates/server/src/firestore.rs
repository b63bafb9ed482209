//! Firestore REST v1, the document bindings: `GET` (get a document, or list a collection),
//! `PATCH`, `DELETE` and `POST` (createDocument) under
//! `/v1/projects/{project}/databases/{database}/documents/{path}`. The translation of names,
//! values and write semantics is `claimdb_firestore`'s; this module reads the HTTP request (query
//! parameters, a JSON body sent as `application/json` or `text/plain`) and writes the answer or
//! the `google.rpc.Status` error with its HTTP status.
//!
//! Authentication is the same extractor as `/v1/docs` (`Authorization: Bearer`, the session
//! cookie), so rules, audit, custom claims and revocation apply unchanged.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::Arc;

use claimdb_engine::RequestContext;
use claimdb_firestore::rpc::{self, Project, Rpc};
use claimdb_firestore::{Code, Status};
use serde_json::{Map as JsonMap, Value as Json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Ctx;

/// The document routes and the RPCs on the database's documents.
pub(crate) fn routes() -> Router<AppState> {
    let mut router = Router::new().route(
        "/v1/projects/{project}/databases/{database}/documents/{*path}",
        get(get_or_list).patch(patch).delete(delete).post(create),
    );
    for rpc in Rpc::ALL {
        let Some(verb) = rpc.verb() else { continue };
        router = router.route(
            &format!("/v1/projects/{{project}}/databases/{{database}}/documents:{verb}"),
            post(
                move |state: State<AppState>,
                      ctx: Result<Ctx, ApiError>,
                      path: Path<(String, String)>,
                      query: RawQuery,
                      body: Bytes| root_rpc(state, ctx, path, query, body, rpc),
            ),
        );
    }
    router
}

/// The database a request's URL names: the configured project's, or in emulator mode any
/// project's (each its own, made on first use).
pub(crate) async fn project(
    state: &AppState,
    project: &str,
    database: &str,
) -> Result<Arc<Project>, Status> {
    let served = &state.firestore;
    match &state.emulator {
        Some(emulator) if project != served.db.project() => {
            emulator.project(project, database).await
        }
        _ => {
            served.db.check(project, database)?;
            Ok(served.clone())
        }
    }
}

/// A Firestore error as a REST answer.
pub(crate) struct FsError(Status);

impl From<Status> for FsError {
    fn from(s: Status) -> Self {
        FsError(s)
    }
}

impl From<claimdb_engine::EngineError> for FsError {
    fn from(e: claimdb_engine::EngineError) -> Self {
        if matches!(e, claimdb_engine::EngineError::Internal { .. }) {
            tracing::error!("firestore request failed: {e}");
        }
        FsError(e.into())
    }
}

/// The refusals of the shared extractors (a malformed `Authorization`, a cross-origin cookie
/// write) in Firestore's shape.
impl From<ApiError> for FsError {
    fn from(e: ApiError) -> Self {
        FsError(status_of(e))
    }
}

/// An [`ApiError`] as the `google.rpc` status with the same meaning (REST and gRPC alike).
pub(crate) fn status_of(e: ApiError) -> Status {
    let code = match e.status {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::CONFLICT => Code::Aborted,
        StatusCode::PAYLOAD_TOO_LARGE => Code::InvalidArgument,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        s if s.is_client_error() => Code::InvalidArgument,
        _ => Code::Internal,
    };
    let mut status = Status::new(code, e.message);
    status.retry_after_secs = e.retry_after_secs;
    status
}

impl FsError {
    /// A refusal made outside the Firestore handlers (routing, the body limit) in Firestore's
    /// shape, keeping its HTTP status (405, 413) in the status line and the body's `code`.
    pub(crate) fn keeping_status(e: ApiError) -> Response {
        let http = e.status;
        let mut body = FsError::from(e).0.to_json();
        body["error"]["code"] = Json::from(http.as_u16());
        (http, axum::Json(body)).into_response()
    }
}

impl IntoResponse for FsError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(self.0.to_json())).into_response();
        if let Some(secs) = self.0.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

type FsResult = Result<Response, FsError>;

/// The query parameters of the document bindings, transcoded into the request message's
/// fields (`mask.fieldPaths=a` → `"mask": {"fieldPaths": ["a"]}`); which of them apply is the
/// RPC's to say ([`rpc::call`] refuses fields its request does not have).
fn transcode(query: Option<&str>) -> Result<JsonMap<String, Json>, Status> {
    let mut request = JsonMap::new();
    // `outer.inner = value`, a repeated `inner` collecting its values in a list.
    let mut member = |outer: &str, inner: &str, value: Json, repeated: bool| {
        let entry = request
            .entry(outer.to_string())
            .or_insert_with(|| Json::Object(JsonMap::new()));
        if let Json::Object(members) = entry {
            if repeated {
                let list = members
                    .entry(inner.to_string())
                    .or_insert_with(|| Json::Array(Vec::new()));
                if let Json::Array(list) = list {
                    list.push(value);
                }
            } else {
                members.insert(inner.to_string(), value);
            }
        }
    };
    let mut top = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*name {
            "mask.fieldPaths" => member("mask", "fieldPaths", value.into(), true),
            "updateMask.fieldPaths" => member("updateMask", "fieldPaths", value.into(), true),
            "currentDocument.exists" => {
                let exists = Json::Bool(boolean(&name, &value)?);
                member("currentDocument", "exists", exists, false);
            }
            "currentDocument.updateTime" => {
                member("currentDocument", "updateTime", value.into(), false);
            }
            "pageSize" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| Status::invalid(format!("pageSize {value:?} is not a number")))?;
                top.push(("pageSize", Json::from(n)));
            }
            "showMissing" => top.push(("showMissing", Json::Bool(boolean(&name, &value)?))),
            "documentId" => top.push(("documentId", value.into())),
            "pageToken" => top.push(("pageToken", value.into())),
            "orderBy" => top.push(("orderBy", value.into())),
            "readTime" => top.push(("readTime", value.into())),
            // System parameters of Google APIs: the API key, the response format.
            "key" | "alt" | "$alt" | "prettyPrint" | "$prettyPrint" | "quotaUser" => {}
            other => {
                return Err(Status::invalid(format!(
                    "unknown query parameter {other:?}"
                )));
            }
        }
    }
    for (name, value) in top {
        request.insert(name.to_string(), value);
    }
    Ok(request)
}

fn boolean(name: &str, value: &str) -> Result<bool, Status> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Status::invalid(format!(
            "{name} must be true or false, not {value:?}"
        ))),
    }
}

/// The JSON object of a request body (sent as `application/json` or, by the web SDKs,
/// `text/plain`); an empty body is an empty message.
fn body_object(body: &[u8], what: &str) -> Result<JsonMap<String, Json>, Status> {
    if body.is_empty() {
        return Ok(JsonMap::new());
    }
    match claimdb_model::json_text::parse_body(body) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(Status::invalid(format!("the request body must be {what}"))),
        Err(e) => Err(Status::invalid(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

fn json(value: Json) -> Response {
    axum::Json(value).into_response()
}

fn context(ctx: Result<Ctx, ApiError>) -> Result<RequestContext, FsError> {
    Ok(ctx?.0)
}

/// `projects/{project}/databases/{database}/documents`.
fn documents_name(project: &str, database: &str) -> String {
    format!("projects/{project}/databases/{database}/documents")
}

/// A name below the documents (`{path}` of a route) as its parent's name and its last id.
fn split_last(documents: &str, path: &str) -> (String, String) {
    let path = path.trim_matches('/');
    match path.rsplit_once('/') {
        Some((parent, id)) => (format!("{documents}/{parent}"), id.to_string()),
        None => (documents.to_string(), path.to_string()),
    }
}

/// Whether a `{path}` below the documents names a document (an even number of segments).
fn names_document(path: &str) -> bool {
    path.trim_matches('/').split('/').count().is_multiple_of(2)
}

/// Runs `rpc` with its request message: on the database its target name (or, when the request
/// names none, `fallback`: a gRPC call's `google-cloud-resource-prefix`) is in — the
/// configured project's, or in emulator mode any project's. Both front ends call this.
pub(crate) async fn dispatch(
    state: &AppState,
    ctx: &RequestContext,
    rpc: Rpc,
    request: JsonMap<String, Json>,
    fallback: Option<&str>,
) -> Result<Json, Status> {
    let name = rpc::target(rpc, &request)
        .or(fallback)
        .ok_or_else(|| Status::invalid(format!("{} names no database", rpc.method())))?;
    let (project, database) = rpc::database_of(name)?;
    let project = self::project(state, project, database).await?;
    rpc::call(&project, ctx, rpc, request).await
}

async fn get_or_list(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> FsResult {
    let ctx = context(ctx)?;
    let mut request = transcode(query.as_deref())?;
    let documents = documents_name(&project, &database);
    let rpc = if names_document(&path) {
        request.insert("name".into(), format!("{documents}/{path}").into());
        Rpc::GetDocument
    } else {
        let (parent, id) = split_last(&documents, &path);
        request.insert("parent".into(), parent.into());
        request.insert("collectionId".into(), id.into());
        Rpc::ListDocuments
    };
    Ok(json(dispatch(&state, &ctx, rpc, request, None).await?))
}

async fn patch(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> FsResult {
    let ctx = context(ctx)?;
    let mut request = transcode(query.as_deref())?;
    if !names_document(&path) {
        return Err(Status::invalid("patch names a document").into());
    }
    let mut document = body_object(&body, "a Document object")?;
    let name = format!("{}/{path}", documents_name(&project, &database));
    document.insert("name".into(), name.into());
    request.insert("document".into(), Json::Object(document));
    let rpc = Rpc::UpdateDocument;
    Ok(json(dispatch(&state, &ctx, rpc, request, None).await?))
}

async fn delete(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> FsResult {
    let ctx = context(ctx)?;
    let mut request = transcode(query.as_deref())?;
    if !names_document(&path) {
        return Err(Status::invalid("delete names a document").into());
    }
    let name = format!("{}/{path}", documents_name(&project, &database));
    request.insert("name".into(), name.into());
    let rpc = Rpc::DeleteDocument;
    Ok(json(dispatch(&state, &ctx, rpc, request, None).await?))
}

async fn create(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> FsResult {
    let ctx = context(ctx)?;
    let documents = documents_name(&project, &database);
    // `…/documents/{parent document}:runQuery` shares this route with createDocument.
    for rpc in Rpc::ALL.into_iter().filter(|r| r.takes_parent()) {
        let Some(verb) = rpc.verb() else { continue };
        if let Some(parent) = path.strip_suffix(&format!(":{verb}")) {
            let mut request = body_object(&body, "a JSON object")?;
            if !transcode(query.as_deref())?.is_empty() {
                return Err(Status::invalid(format!("{verb} takes no query parameters")).into());
            }
            request.insert("parent".into(), format!("{documents}/{parent}").into());
            return Ok(json(dispatch(&state, &ctx, rpc, request, None).await?));
        }
    }
    let mut request = transcode(query.as_deref())?;
    if names_document(&path) {
        return Err(Status::invalid("createDocument names a collection").into());
    }
    let (parent, id) = split_last(&documents, &path);
    request.insert("parent".into(), parent.into());
    request.insert("collectionId".into(), id.into());
    let document = body_object(&body, "a Document object")?;
    request.insert("document".into(), Json::Object(document));
    let rpc = Rpc::CreateDocument;
    Ok(json(dispatch(&state, &ctx, rpc, request, None).await?))
}

/// `POST …/documents:{verb}`.
async fn root_rpc(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
    rpc: Rpc,
) -> FsResult {
    let ctx = context(ctx)?;
    if !transcode(query.as_deref())?.is_empty() {
        return Err(Status::invalid("this RPC takes no query parameters").into());
    }
    let mut request = body_object(&body, "a JSON object")?;
    let (field, name) = if rpc.takes_parent() {
        ("parent", documents_name(&project, &database))
    } else {
        (
            "database",
            format!("projects/{project}/databases/{database}"),
        )
    };
    request.insert(field.into(), name.into());
    Ok(json(dispatch(&state, &ctx, rpc, request, None).await?))
}
