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

use claimdb_engine::{
    Direction, Engine, ListPage, ListRequest, Query, QueryPaging, ReadTime, RequestContext,
};
use claimdb_firestore::documents::{self, Precondition};
use claimdb_firestore::names::{Database, Resource};
use claimdb_firestore::transactions::Transactions;
use claimdb_firestore::{Code, Status, commit as rpc, query as queries, value};
use claimdb_model::{FieldPath, Timestamp};
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
    for rpc in RootRpc::ALL {
        router = router.route(
            &format!(
                "/v1/projects/{{project}}/databases/{{database}}/documents:{}",
                rpc.name()
            ),
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

/// One Firestore database and what serves it: the engine (so its store and rules), the
/// database's names, and the transactions open on it on this node.
pub struct FirestoreProject {
    pub engine: Arc<Engine>,
    pub db: Database,
    pub transactions: Transactions,
}

impl FirestoreProject {
    pub fn new(engine: Arc<Engine>, db: Database) -> Self {
        FirestoreProject {
            engine,
            db,
            transactions: Transactions::default(),
        }
    }
}

/// The database a request's URL names: the configured project's, or in emulator mode any
/// project's (each its own, made on first use).
pub(crate) async fn project(
    state: &AppState,
    project: &str,
    database: &str,
) -> Result<Arc<FirestoreProject>, Status> {
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
        FsError(status)
    }
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

/// The query parameters of the document bindings.
#[derive(Debug, Default)]
struct Params {
    mask: Option<Vec<FieldPath>>,
    update_mask: Option<Vec<FieldPath>>,
    exists: Option<bool>,
    update_time: Option<Timestamp>,
    document_id: Option<String>,
    page_size: Option<usize>,
    page_token: Option<String>,
    order_by: Option<String>,
    show_missing: bool,
    read_time: Option<Timestamp>,
}

impl Params {
    fn parse(query: Option<&str>) -> Result<Params, Status> {
        let mut p = Params::default();
        let field = |value: &str| {
            FieldPath::parse(value).map_err(|e| Status::invalid(format!("field path: {e}")))
        };
        for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*name {
                "mask.fieldPaths" => p.mask.get_or_insert_with(Vec::new).push(field(&value)?),
                "updateMask.fieldPaths" => p
                    .update_mask
                    .get_or_insert_with(Vec::new)
                    .push(field(&value)?),
                "currentDocument.exists" => {
                    p.exists = Some(boolean(&name, &value)?);
                }
                "currentDocument.updateTime" => {
                    p.update_time =
                        Some(Timestamp::parse(&value).map_err(|e| Status::invalid(e.to_string()))?);
                }
                "documentId" => p.document_id = Some(value.into_owned()),
                "pageSize" => {
                    p.page_size = Some(value.parse().map_err(|_| {
                        Status::invalid(format!("pageSize {value:?} is not a number"))
                    })?);
                }
                "pageToken" => p.page_token = Some(value.into_owned()).filter(|t| !t.is_empty()),
                "orderBy" => p.order_by = Some(value.into_owned()),
                "showMissing" => p.show_missing = boolean(&name, &value)?,
                "readTime" => {
                    p.read_time = Some(
                        Timestamp::parse(&value)
                            .map_err(|e| Status::invalid(format!("readTime: {e}")))?,
                    );
                }
                // System parameters of Google APIs: the API key, the response format.
                "key" | "alt" | "$alt" | "prettyPrint" | "$prettyPrint" | "quotaUser" => {}
                other => {
                    return Err(Status::invalid(format!(
                        "unknown query parameter {other:?}"
                    )));
                }
            }
        }
        Ok(p)
    }

    fn precondition(&self) -> Result<Precondition, Status> {
        match (self.exists, self.update_time) {
            (Some(_), Some(_)) => Err(Status::invalid(
                "currentDocument takes exists or updateTime, not both",
            )),
            (Some(exists), None) => Ok(Precondition::Exists(exists)),
            (None, Some(time)) => Ok(Precondition::UpdateTime(time)),
            (None, None) => Ok(Precondition::None),
        }
    }

    /// Refuses parameters that do not apply to this method.
    fn only(&self, allowed: &[&str]) -> Result<(), Status> {
        let given = [
            ("mask", self.mask.is_some()),
            ("updateMask", self.update_mask.is_some()),
            (
                "currentDocument",
                self.exists.is_some() || self.update_time.is_some(),
            ),
            ("documentId", self.document_id.is_some()),
            ("pageSize", self.page_size.is_some()),
            ("pageToken", self.page_token.is_some()),
            ("orderBy", self.order_by.is_some()),
            ("showMissing", self.show_missing),
            ("readTime", self.read_time.is_some()),
        ];
        match given
            .iter()
            .find(|(name, set)| *set && !allowed.contains(name))
        {
            Some((name, _)) => Err(Status::invalid(format!(
                "{name} does not apply to this request"
            ))),
            None => Ok(()),
        }
    }
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

/// The fields of a `Document` body (its `name`, times and other members are ignored, as
/// Firestore does for the ones it computes).
fn body_fields(db: &Database, body: &[u8]) -> Result<claimdb_model::Map, Status> {
    if body.is_empty() {
        return Ok(claimdb_model::Map::new());
    }
    let json = claimdb_model::json_text::parse_body(body)
        .map_err(|e| Status::invalid(format!("the request body is not valid JSON: {e}")))?;
    let Json::Object(document) = json else {
        return Err(Status::invalid(
            "the request body must be a Document object",
        ));
    };
    value::decode_fields(document.get("fields"), db)
}

fn json(value: Json) -> Response {
    axum::Json(value).into_response()
}

fn context(ctx: Result<Ctx, ApiError>) -> Result<RequestContext, FsError> {
    Ok(ctx?.0)
}

async fn get_or_list(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> FsResult {
    let ctx = context(ctx)?;
    let params = Params::parse(query.as_deref())?;
    let project = self::project(&state, &project, &database).await?;
    let (engine, db) = (&project.engine, &project.db);
    let at = ReadTime::from_option(params.read_time);
    match db.resource(&path)? {
        Resource::Document(path) => {
            params.only(&["mask", "readTime"])?;
            let doc = documents::get(engine, &ctx, &path, params.mask.as_deref(), at).await?;
            Ok(json(value::encode_document(&doc, db)))
        }
        Resource::Collection(collection) => {
            params.only(&[
                "mask",
                "pageSize",
                "pageToken",
                "orderBy",
                "showMissing",
                "readTime",
            ])?;
            if params.show_missing {
                if params.order_by.is_some() {
                    return Err(Status::invalid("showMissing lists in id order: no orderBy").into());
                }
                let request = ListRequest {
                    page_size: params.page_size,
                    page_token: params.page_token.clone(),
                };
                let mask = params.mask.as_deref();
                let answer =
                    documents::list_with_missing(engine, &ctx, db, &collection, &request, mask, at);
                return Ok(json(answer.await?));
            }
            let orders = match params.order_by.as_deref() {
                Some(text) => queries::list_order(text)?,
                None => Vec::new(),
            };
            let by_name = orders
                .iter()
                .all(|o| o.field.to_string() == "__name__" && o.direction == Direction::Asc);
            let page = if by_name {
                let request = ListRequest {
                    page_size: params.page_size,
                    page_token: params.page_token.clone(),
                };
                let mask = params.mask.as_deref();
                documents::list(engine, &ctx, &collection, &request, mask, at).await?
            } else {
                // Ordered by fields: the collection as a query (documents without an ordered
                // field are left out, as in Firestore).
                let mut query = Query::collection(collection);
                query.order_by = orders;
                let paging = QueryPaging {
                    page_size: params.page_size,
                    page_token: params.page_token.clone(),
                };
                let results = engine.query_at(&ctx, &query, &paging, at).await?;
                let mut documents = results.documents;
                if let Some(mask) = &params.mask {
                    for doc in &mut documents {
                        doc.data = documents::project(&doc.data, mask);
                    }
                }
                ListPage {
                    documents,
                    next_page_token: results.next_page_token,
                }
            };
            let mut out = JsonMap::new();
            if !page.documents.is_empty() {
                let docs = page
                    .documents
                    .iter()
                    .map(|d| value::encode_document(d, db))
                    .collect();
                out.insert("documents".into(), Json::Array(docs));
            }
            if let Some(token) = page.next_page_token {
                out.insert("nextPageToken".into(), Json::String(token));
            }
            Ok(json(Json::Object(out)))
        }
        Resource::Root => Err(Status::invalid("name a document or a collection").into()),
    }
}

async fn patch(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> FsResult {
    let ctx = context(ctx)?;
    let params = Params::parse(query.as_deref())?;
    params.only(&["mask", "updateMask", "currentDocument"])?;
    let project = self::project(&state, &project, &database).await?;
    let Resource::Document(path) = project.db.resource(&path)? else {
        return Err(Status::invalid("patch names a document").into());
    };
    let fields = body_fields(&project.db, &body)?;
    let doc = documents::patch(
        &project.engine,
        &ctx,
        &path,
        fields,
        params.update_mask.as_deref(),
        params.precondition()?,
    )
    .await?;
    let data = match &params.mask {
        Some(mask) => documents::project(&doc.data, mask),
        None => doc.data.clone(),
    };
    let shown = claimdb_engine::Document { data, ..doc };
    Ok(json(value::encode_document(&shown, &project.db)))
}

async fn delete(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> FsResult {
    let ctx = context(ctx)?;
    let params = Params::parse(query.as_deref())?;
    params.only(&["currentDocument"])?;
    let project = self::project(&state, &project, &database).await?;
    let Resource::Document(path) = project.db.resource(&path)? else {
        return Err(Status::invalid("delete names a document").into());
    };
    documents::delete(&project.engine, &ctx, &path, params.precondition()?).await?;
    Ok(json(Json::Object(JsonMap::new())))
}

async fn create(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database, path)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> FsResult {
    let ctx = context(ctx)?;
    let project = self::project(&state, &project, &database).await?;
    // `…/documents/{parent document}:runQuery` shares this route with createDocument.
    for rpc in [
        RootRpc::RunQuery,
        RootRpc::RunAggregationQuery,
        RootRpc::ListCollectionIds,
    ] {
        if let Some(parent) = path.strip_suffix(&format!(":{}", rpc.name())) {
            let parent = project.db.resource(parent)?;
            Params::parse(query.as_deref())?.only(&[])?;
            let body = rpc_body(&body)?;
            return Ok(json(rpc.call(&project, &ctx, parent, body).await?));
        }
    }
    let params = Params::parse(query.as_deref())?;
    params.only(&["mask", "documentId"])?;
    let Resource::Collection(collection) = project.db.resource(&path)? else {
        return Err(Status::invalid("createDocument names a collection").into());
    };
    let fields = body_fields(&project.db, &body)?;
    let id = params.document_id.as_deref().filter(|id| !id.is_empty());
    let mut doc = documents::create(&project.engine, &ctx, &collection, id, fields).await?;
    if let Some(mask) = &params.mask {
        doc.data = documents::project(&doc.data, mask);
    }
    Ok(json(value::encode_document(&doc, &project.db)))
}

/// The JSON object of an RPC's request body (sent as `application/json` or, by the web SDKs,
/// `text/plain`).
fn rpc_body(body: &[u8]) -> Result<JsonMap<String, Json>, Status> {
    if body.is_empty() {
        return Ok(JsonMap::new());
    }
    match claimdb_model::json_text::parse_body(body) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(Status::invalid("the request body must be a JSON object")),
        Err(e) => Err(Status::invalid(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// The RPCs posted to `…/documents:{rpc}` (the query RPCs also below a document).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RootRpc {
    Commit,
    BatchGet,
    RunQuery,
    RunAggregationQuery,
    BeginTransaction,
    Rollback,
    BatchWrite,
    PartitionQuery,
    ListCollectionIds,
}

impl RootRpc {
    const ALL: [RootRpc; 9] = [
        RootRpc::Commit,
        RootRpc::BatchGet,
        RootRpc::RunQuery,
        RootRpc::RunAggregationQuery,
        RootRpc::BeginTransaction,
        RootRpc::Rollback,
        RootRpc::BatchWrite,
        RootRpc::PartitionQuery,
        RootRpc::ListCollectionIds,
    ];

    fn name(self) -> &'static str {
        match self {
            RootRpc::Commit => "commit",
            RootRpc::BatchGet => "batchGet",
            RootRpc::RunQuery => "runQuery",
            RootRpc::RunAggregationQuery => "runAggregationQuery",
            RootRpc::BeginTransaction => "beginTransaction",
            RootRpc::Rollback => "rollback",
            RootRpc::BatchWrite => "batchWrite",
            RootRpc::PartitionQuery => "partitionQuery",
            RootRpc::ListCollectionIds => "listCollectionIds",
        }
    }

    /// Runs the RPC on `project` with `parent` (the root, or a document for queries) and the
    /// request's JSON body; the answer (a stream's responses as one JSON array).
    async fn call(
        self,
        project: &FirestoreProject,
        ctx: &RequestContext,
        parent: Resource,
        body: JsonMap<String, Json>,
    ) -> Result<Json, FsError> {
        let (engine, db, transactions) = (&*project.engine, &project.db, &project.transactions);
        let now = || engine.clock().timestamp();
        Ok(match self {
            RootRpc::Commit => rpc::commit(engine, ctx, db, transactions, &body).await?,
            RootRpc::BatchGet => {
                rpc::batch_get(engine, ctx, db, transactions, &body, now()).await?
            }
            RootRpc::RunQuery => {
                queries::run_query(engine, ctx, db, transactions, &parent, &body, now()).await?
            }
            RootRpc::RunAggregationQuery => {
                queries::run_aggregation(engine, ctx, db, transactions, &parent, &body, now())
                    .await?
            }
            RootRpc::BatchWrite => rpc::batch_write(engine, ctx, db, transactions, &body).await?,
            RootRpc::ListCollectionIds => {
                documents::list_collection_ids(engine, ctx, &parent, &body).await?
            }
            RootRpc::PartitionQuery => {
                // Split points name documents: only a caller whose credential holds may ask.
                engine.authenticate(ctx).await?;
                queries::partition_query(db, &parent, &body)?
            }
            RootRpc::BeginTransaction => {
                // Only a caller with a valid credential (or none) may hold server state: a
                // refused token is refused here too.
                engine.authenticate(ctx).await?;
                if let Some(key) = body.keys().find(|k| *k != "options") {
                    return Err(Status::invalid(format!(
                        "{key:?} is not a field of BeginTransactionRequest"
                    ))
                    .into());
                }
                let options = claimdb_firestore::transactions::options(body.get("options"))?;
                // A time the history cannot answer is refused now, not at the first read.
                if let Some(time) = options.read_time {
                    engine.check_read_time(time).await?;
                }
                serde_json::json!({ "transaction": transactions.begin(options)? })
            }
            RootRpc::Rollback => {
                engine.authenticate(ctx).await?;
                let Some(Json::String(id)) = body.get("transaction") else {
                    return Err(Status::invalid("transaction is required").into());
                };
                transactions.end(id)?;
                Json::Object(JsonMap::new())
            }
        })
    }
}

/// `POST …/documents:{rpc}`.
async fn root_rpc(
    State(state): State<AppState>,
    ctx: Result<Ctx, ApiError>,
    Path((project, database)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
    rpc: RootRpc,
) -> FsResult {
    let ctx = context(ctx)?;
    Params::parse(query.as_deref())?.only(&[])?;
    let project = self::project(&state, &project, &database).await?;
    let body = rpc_body(&body)?;
    Ok(json(rpc.call(&project, &ctx, Resource::Root, body).await?))
}
