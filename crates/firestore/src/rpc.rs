//! The one table of Firestore's RPCs, over their proto3-JSON request messages: each front end
//! turns what it received into the request message's JSON — REST transcodes the URL, the query
//! string and the body as the `google.api.http` bindings say; gRPC serializes the decoded
//! message — and calls [`call`], so every rule, precondition, transform, transaction and error
//! is the same on both.
//!
//! [`target`] says which name a request is about (its `name`, `parent`, `database` or
//! `document.name`), from which the front end picks the database ([`Project`]) to run it on.
//! The answer is the response message's JSON; a server-streaming RPC's responses come as one
//! JSON array (the REST form), which gRPC sends one message each.
//!
//! Not here: the bidirectional streams (`Listen`, `Write`) and anything of HTTP or gRPC.

use std::sync::Arc;

use claimdb_engine::{Direction, Engine, EngineError, ListPage, ListRequest, Query, QueryPaging};
use claimdb_engine::{Document, ReadTime, RequestContext};
use claimdb_model::{DocPath, FieldPath};
use serde_json::{Map as JsonMap, Value as Json, json};

use crate::commit;
use crate::consistency;
use crate::documents::{self, Precondition};
use crate::names::{Database, Resource};
use crate::query;
use crate::status::{Code, Status};
use crate::transactions::{self, Transactions};
use crate::value;

/// One Firestore database and what serves it: the engine (so its store and rules), the
/// database's names, and the transactions open on it on this node.
pub struct Project {
    pub engine: Arc<Engine>,
    pub db: Database,
    pub transactions: Transactions,
}

impl Project {
    pub fn new(engine: Arc<Engine>, db: Database) -> Self {
        Project {
            engine,
            db,
            transactions: Transactions::default(),
        }
    }
}

/// The unary and server-streaming RPCs of `google.firestore.v1.Firestore`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rpc {
    GetDocument,
    ListDocuments,
    CreateDocument,
    UpdateDocument,
    DeleteDocument,
    BatchGetDocuments,
    BeginTransaction,
    Commit,
    Rollback,
    RunQuery,
    RunAggregationQuery,
    PartitionQuery,
    ListCollectionIds,
    BatchWrite,
}

impl Rpc {
    pub const ALL: [Rpc; 14] = [
        Rpc::GetDocument,
        Rpc::ListDocuments,
        Rpc::CreateDocument,
        Rpc::UpdateDocument,
        Rpc::DeleteDocument,
        Rpc::BatchGetDocuments,
        Rpc::BeginTransaction,
        Rpc::Commit,
        Rpc::Rollback,
        Rpc::RunQuery,
        Rpc::RunAggregationQuery,
        Rpc::PartitionQuery,
        Rpc::ListCollectionIds,
        Rpc::BatchWrite,
    ];

    /// The gRPC method's name (`/google.firestore.v1.Firestore/{method}`).
    pub fn method(self) -> &'static str {
        match self {
            Rpc::GetDocument => "GetDocument",
            Rpc::ListDocuments => "ListDocuments",
            Rpc::CreateDocument => "CreateDocument",
            Rpc::UpdateDocument => "UpdateDocument",
            Rpc::DeleteDocument => "DeleteDocument",
            Rpc::BatchGetDocuments => "BatchGetDocuments",
            Rpc::BeginTransaction => "BeginTransaction",
            Rpc::Commit => "Commit",
            Rpc::Rollback => "Rollback",
            Rpc::RunQuery => "RunQuery",
            Rpc::RunAggregationQuery => "RunAggregationQuery",
            Rpc::PartitionQuery => "PartitionQuery",
            Rpc::ListCollectionIds => "ListCollectionIds",
            Rpc::BatchWrite => "BatchWrite",
        }
    }

    /// The REST binding's custom verb, for the RPCs posted to `{database}/documents:{verb}`
    /// (and, for the query RPCs and `listCollectionIds`, to `{document}:{verb}`).
    pub fn verb(self) -> Option<&'static str> {
        Some(match self {
            Rpc::Commit => "commit",
            Rpc::BatchGetDocuments => "batchGet",
            Rpc::RunQuery => "runQuery",
            Rpc::RunAggregationQuery => "runAggregationQuery",
            Rpc::BeginTransaction => "beginTransaction",
            Rpc::Rollback => "rollback",
            Rpc::BatchWrite => "batchWrite",
            Rpc::PartitionQuery => "partitionQuery",
            Rpc::ListCollectionIds => "listCollectionIds",
            _ => return None,
        })
    }

    /// Whether the request's resource is a parent (a document or the root), so the verb also
    /// binds to `{document}:{verb}`.
    pub fn takes_parent(self) -> bool {
        self.target_field() == "parent"
    }

    /// Whether the answer is a stream of responses (a JSON array of them).
    pub fn server_streaming(self) -> bool {
        matches!(
            self,
            Rpc::BatchGetDocuments | Rpc::RunQuery | Rpc::RunAggregationQuery
        )
    }

    /// The request message's name, for errors.
    fn request_name(self) -> &'static str {
        match self {
            Rpc::GetDocument => "GetDocumentRequest",
            Rpc::ListDocuments => "ListDocumentsRequest",
            Rpc::CreateDocument => "CreateDocumentRequest",
            Rpc::UpdateDocument => "UpdateDocumentRequest",
            Rpc::DeleteDocument => "DeleteDocumentRequest",
            Rpc::BatchGetDocuments => "BatchGetDocumentsRequest",
            Rpc::BeginTransaction => "BeginTransactionRequest",
            Rpc::Commit => "CommitRequest",
            Rpc::Rollback => "RollbackRequest",
            Rpc::RunQuery => "RunQueryRequest",
            Rpc::RunAggregationQuery => "RunAggregationQueryRequest",
            Rpc::PartitionQuery => "PartitionQueryRequest",
            Rpc::ListCollectionIds => "ListCollectionIdsRequest",
            Rpc::BatchWrite => "BatchWriteRequest",
        }
    }

    /// The request field holding the resource name the RPC is about.
    fn target_field(self) -> &'static str {
        match self {
            Rpc::GetDocument | Rpc::DeleteDocument => "name",
            Rpc::ListDocuments
            | Rpc::CreateDocument
            | Rpc::RunQuery
            | Rpc::RunAggregationQuery
            | Rpc::PartitionQuery
            | Rpc::ListCollectionIds => "parent",
            Rpc::UpdateDocument => "document.name",
            Rpc::BatchGetDocuments
            | Rpc::BeginTransaction
            | Rpc::Commit
            | Rpc::Rollback
            | Rpc::BatchWrite => "database",
        }
    }
}

/// The resource name `request` is about (absent or empty: `None`), from which a front end
/// picks the database ([`database_of`]).
pub fn target(rpc: Rpc, request: &JsonMap<String, Json>) -> Option<&str> {
    let value = match rpc.target_field() {
        "document.name" => request.get("document").and_then(|d| d.get("name")),
        field => request.get(field),
    };
    value.and_then(Json::as_str).filter(|s| !s.is_empty())
}

/// The project and database ids of a resource name (`projects/{p}/databases/{d}[/…]`).
pub fn database_of(name: &str) -> Result<(&str, &str), Status> {
    let bad = || {
        Status::invalid(format!(
            "{name:?} is not a resource name of the form projects/{{project}}/databases/{{database}}/…"
        ))
    };
    let rest = name.strip_prefix("projects/").ok_or_else(bad)?;
    let (project, rest) = rest.split_once('/').ok_or_else(bad)?;
    let rest = rest.strip_prefix("databases/").ok_or_else(bad)?;
    let database = rest.split('/').next().unwrap_or_default();
    if project.is_empty() || database.is_empty() {
        return Err(bad());
    }
    Ok((project, database))
}

/// Runs `rpc` on `project` with its request message's proto3 JSON; the response message's
/// JSON (a server-streaming RPC's responses as one array).
pub async fn call(
    project: &Project,
    ctx: &RequestContext,
    rpc: Rpc,
    mut request: JsonMap<String, Json>,
) -> Result<Json, Status> {
    let (engine, db, txs) = (&*project.engine, &project.db, &project.transactions);
    let now = || engine.clock().timestamp();
    // Request tags, for Firestore's own monitoring: nothing for claimdb to do.
    match request.remove("requestOptions") {
        None | Some(Json::Null | Json::Object(_)) => {}
        Some(_) => {
            return Err(Status::invalid(
                "requestOptions must be a RequestOptions object",
            ));
        }
    }
    match rpc {
        Rpc::GetDocument => get_document(engine, ctx, db, txs, &request).await,
        Rpc::ListDocuments => list_documents(engine, ctx, db, &request).await,
        Rpc::CreateDocument => create_document(engine, ctx, db, &request).await,
        Rpc::UpdateDocument => update_document(engine, ctx, db, &request).await,
        Rpc::DeleteDocument => {
            only(rpc, &request, &["name", "currentDocument"])?;
            let path = db.parse_document_name(string(&request, "name")?)?;
            let precondition = commit::decode_precondition(request.get("currentDocument"))?;
            documents::delete(engine, ctx, &path, precondition).await?;
            Ok(Json::Object(JsonMap::new()))
        }
        Rpc::BatchGetDocuments => {
            take_database(db, &mut request)?;
            commit::batch_get(engine, ctx, db, txs, &request, now()).await
        }
        Rpc::Commit => {
            take_database(db, &mut request)?;
            commit::commit(engine, ctx, db, txs, &request).await
        }
        Rpc::BatchWrite => {
            take_database(db, &mut request)?;
            commit::batch_write(engine, ctx, db, txs, &request).await
        }
        Rpc::RunQuery => {
            let parent = take_parent(db, &mut request)?;
            query::run_query(engine, ctx, db, txs, &parent, &request, now()).await
        }
        Rpc::RunAggregationQuery => {
            let parent = take_parent(db, &mut request)?;
            query::run_aggregation(engine, ctx, db, txs, &parent, &request, now()).await
        }
        Rpc::ListCollectionIds => {
            let parent = take_parent(db, &mut request)?;
            documents::list_collection_ids(engine, ctx, &parent, &request).await
        }
        Rpc::PartitionQuery => {
            let parent = take_parent(db, &mut request)?;
            // Split points name documents: only a caller whose credential holds may ask.
            engine.authenticate(ctx).await?;
            query::partition_query(db, &parent, &request)
        }
        Rpc::BeginTransaction => {
            take_database(db, &mut request)?;
            // Only a caller with a valid credential (or none) may hold server state: a refused
            // token is refused here too.
            engine.authenticate(ctx).await?;
            only(rpc, &request, &["options"])?;
            let options = transactions::options(request.get("options"))?;
            // A time the history cannot answer is refused now, not at the first read.
            if let Some(time) = options.read_time {
                engine.check_read_time(time).await?;
            }
            Ok(json!({ "transaction": txs.begin(options)? }))
        }
        Rpc::Rollback => {
            take_database(db, &mut request)?;
            engine.authenticate(ctx).await?;
            only(rpc, &request, &["transaction"])?;
            let Some(Json::String(id)) = request.get("transaction") else {
                return Err(Status::invalid("transaction is required"));
            };
            txs.end(id)?;
            Ok(Json::Object(JsonMap::new()))
        }
    }
}

/// Refuses a request field other than `allowed`: one claimdb does not serve
/// (`explainOptions`) as UNIMPLEMENTED, any other as INVALID_ARGUMENT.
fn only(rpc: Rpc, request: &JsonMap<String, Json>, allowed: &[&str]) -> Result<(), Status> {
    match request.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) if key == "explainOptions" => Err(Status::new(
            Code::Unimplemented,
            format!("{key} is not supported on {}", rpc.method()),
        )),
        Some(key) => Err(Status::invalid(format!(
            "{key:?} is not a field of {}",
            rpc.request_name()
        ))),
    }
}

fn string<'a>(request: &'a JsonMap<String, Json>, field: &str) -> Result<&'a str, Status> {
    match request.get(field) {
        Some(Json::String(s)) if !s.is_empty() => Ok(s),
        None | Some(Json::Null) | Some(Json::String(_)) => {
            Err(Status::invalid(format!("{field} is required")))
        }
        Some(_) => Err(Status::invalid(format!("{field} must be a string"))),
    }
}

/// Takes out the request's `database` (the other fields are the RPC's), which must be this
/// database's name when given.
pub(crate) fn take_database(
    db: &Database,
    request: &mut JsonMap<String, Json>,
) -> Result<(), Status> {
    match request.remove("database") {
        None | Some(Json::Null) => Ok(()),
        Some(Json::String(name)) if name.is_empty() => Ok(()),
        Some(Json::String(name)) => {
            let (project, database) = database_of(&name)?;
            db.check(project, database)?;
            if name.len() > "projects//databases/".len() + project.len() + database.len() {
                return Err(Status::invalid(format!(
                    "database {name:?} is not a database name (projects/{{project}}/databases/{{database}})"
                )));
            }
            Ok(())
        }
        Some(_) => Err(Status::invalid("database must be a string")),
    }
}

/// Takes out the request's `parent`: the database's documents root or a document.
fn take_parent(db: &Database, request: &mut JsonMap<String, Json>) -> Result<Resource, Status> {
    let parent = match request.remove("parent") {
        Some(Json::String(name)) if !name.is_empty() => name,
        None | Some(Json::Null) | Some(Json::String(_)) => {
            return Err(Status::invalid("parent is required"));
        }
        Some(_) => return Err(Status::invalid("parent must be a string")),
    };
    db.parse_name(&parent)
}

/// A `DocumentMask` (`{fieldPaths: […]}`), if the request has one.
fn mask(request: &JsonMap<String, Json>, field: &str) -> Result<Option<Vec<FieldPath>>, Status> {
    match request.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Object(mask)) => {
            if let Some(key) = mask.keys().find(|k| *k != "fieldPaths") {
                return Err(Status::invalid(format!(
                    "{key:?} is not a field of DocumentMask"
                )));
            }
            commit::field_paths(mask.get("fieldPaths")).map(Some)
        }
        Some(_) => Err(Status::invalid(format!(
            "{field} must be {{\"fieldPaths\": [...]}}"
        ))),
    }
}

async fn get_document(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    txs: &Transactions,
    request: &JsonMap<String, Json>,
) -> Result<Json, Status> {
    only(
        Rpc::GetDocument,
        request,
        &["name", "mask", "transaction", "readTime"],
    )?;
    let path = db.parse_document_name(string(request, "name")?)?;
    let mask = mask(request, "mask")?;
    let consistency = consistency::select(txs, request)?;
    let read = documents::get(engine, ctx, &path, mask.as_deref(), consistency.at).await;
    if let Some(id) = consistency
        .transaction
        .as_deref()
        .filter(|_| consistency.pins_reads())
    {
        match &read {
            Ok(doc) => txs.record(id, &[doc], &[])?,
            Err(EngineError::NotFound { .. }) => txs.record(id, &[], &[&path])?,
            Err(_) => {}
        }
    }
    Ok(value::encode_document(&read?, db))
}

async fn list_documents(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    request: &JsonMap<String, Json>,
) -> Result<Json, Status> {
    only(
        Rpc::ListDocuments,
        request,
        &[
            "parent",
            "collectionId",
            "pageSize",
            "pageToken",
            "orderBy",
            "mask",
            "showMissing",
            "readTime",
        ],
    )?;
    let collection = collection(db, request)?;
    let mask = mask(request, "mask")?;
    let at = match request.get("readTime") {
        None | Some(Json::Null) => ReadTime::Latest,
        time => ReadTime::At(consistency::read_time(time)?),
    };
    let page_size = match request.get("pageSize") {
        None | Some(Json::Null) => None,
        Some(Json::Number(n)) => match n.as_u64() {
            Some(0) => None,
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            None => return Err(Status::invalid("pageSize must be a non-negative integer")),
        },
        Some(_) => return Err(Status::invalid("pageSize must be a number")),
    };
    let page_token = match request.get("pageToken") {
        None | Some(Json::Null) => None,
        Some(Json::String(t)) => Some(t.clone()).filter(|t| !t.is_empty()),
        Some(_) => return Err(Status::invalid("pageToken must be a string")),
    };
    let order_by = match request.get("orderBy") {
        None | Some(Json::Null) => "",
        Some(Json::String(text)) => text.as_str(),
        Some(_) => return Err(Status::invalid("orderBy must be a string")),
    };
    let show_missing = match request.get("showMissing") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err(Status::invalid("showMissing must be true or false")),
    };
    let list = ListRequest {
        page_size,
        page_token,
    };
    if show_missing {
        if !order_by.is_empty() {
            return Err(Status::invalid("showMissing lists in id order: no orderBy"));
        }
        let answer =
            documents::list_with_missing(engine, ctx, db, &collection, &list, mask.as_deref(), at);
        return answer.await;
    }
    let orders = query::list_order(order_by)?;
    let by_name = orders
        .iter()
        .all(|o| o.field.to_string() == "__name__" && o.direction == Direction::Asc);
    let page = if by_name {
        documents::list(engine, ctx, &collection, &list, mask.as_deref(), at).await?
    } else {
        // Ordered by fields: the collection as a query (documents without an ordered field are
        // left out, as in Firestore).
        let mut query = Query::collection(collection);
        query.order_by = orders;
        let paging = QueryPaging {
            page_size: list.page_size,
            page_token: list.page_token,
        };
        let results = engine.query_at(ctx, &query, &paging, at).await?;
        let mut documents = results.documents;
        if let Some(mask) = &mask {
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
    Ok(Json::Object(out))
}

/// The collection a `parent` and `collectionId` name.
fn collection(
    db: &Database,
    request: &JsonMap<String, Json>,
) -> Result<claimdb_model::CollectionPath, Status> {
    let id = string(request, "collectionId")?;
    let parent = match db.parse_name(string(request, "parent")?)? {
        Resource::Root => String::new(),
        Resource::Document(path) => format!("{path}/"),
        Resource::Collection(_) => {
            return Err(Status::invalid("parent is a document or the database root"));
        }
    };
    match db.resource(&format!("{parent}{id}"))? {
        Resource::Collection(collection) => Ok(collection),
        _ => Err(Status::invalid(format!(
            "collectionId {id:?} is not a collection id"
        ))),
    }
}

/// A `Document`'s fields (its other members are the server's to set, and ignored).
fn fields_of(document: Option<&Json>, db: &Database) -> Result<claimdb_model::Map, Status> {
    match document {
        None | Some(Json::Null) => Ok(claimdb_model::Map::new()),
        Some(Json::Object(document)) => value::decode_fields(document.get("fields"), db),
        Some(_) => Err(Status::invalid("document must be a Document object")),
    }
}

/// The document as the request's `mask` shows it.
fn masked(mut doc: Document, mask: Option<&[FieldPath]>, db: &Database) -> Json {
    if let Some(mask) = mask {
        doc.data = documents::project(&doc.data, mask);
    }
    value::encode_document(&doc, db)
}

async fn create_document(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    request: &JsonMap<String, Json>,
) -> Result<Json, Status> {
    only(
        Rpc::CreateDocument,
        request,
        &["parent", "collectionId", "documentId", "document", "mask"],
    )?;
    let collection = collection(db, request)?;
    let id = match request.get("documentId") {
        None | Some(Json::Null) => None,
        Some(Json::String(id)) => Some(id.as_str()).filter(|id| !id.is_empty()),
        Some(_) => return Err(Status::invalid("documentId must be a string")),
    };
    let fields = fields_of(request.get("document"), db)?;
    let mask = mask(request, "mask")?;
    let doc = documents::create(engine, ctx, &collection, id, fields).await?;
    Ok(masked(doc, mask.as_deref(), db))
}

async fn update_document(
    engine: &Engine,
    ctx: &RequestContext,
    db: &Database,
    request: &JsonMap<String, Json>,
) -> Result<Json, Status> {
    only(
        Rpc::UpdateDocument,
        request,
        &["document", "updateMask", "mask", "currentDocument"],
    )?;
    let name = target(Rpc::UpdateDocument, request)
        .ok_or_else(|| Status::invalid("document.name is required"))?;
    let path: DocPath = db.parse_document_name(name)?;
    let fields = fields_of(request.get("document"), db)?;
    let update_mask = mask(request, "updateMask")?;
    let mask = mask(request, "mask")?;
    let precondition: Precondition = commit::decode_precondition(request.get("currentDocument"))?;
    let doc = documents::patch(
        engine,
        ctx,
        &path,
        fields,
        update_mask.as_deref(),
        precondition,
    )
    .await?;
    Ok(masked(doc, mask.as_deref(), db))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_databases_are_read_from_the_request() {
        let request = |j: Json| j.as_object().cloned().unwrap();
        let get = request(json!({"name": "projects/p/databases/(default)/documents/c/d"}));
        assert_eq!(
            target(Rpc::GetDocument, &get),
            Some("projects/p/databases/(default)/documents/c/d")
        );
        let update = request(json!({"document": {"name": "projects/q/databases/d/documents/c/d"}}));
        let name = target(Rpc::UpdateDocument, &update).unwrap();
        assert_eq!(database_of(name).unwrap(), ("q", "d"));
        assert_eq!(target(Rpc::Commit, &request(json!({"database": ""}))), None);
        assert_eq!(
            database_of("projects/p/databases/(default)").unwrap(),
            ("p", "(default)")
        );
        for bad in ["", "projects/p", "projects//databases/x", "databases/x"] {
            assert_eq!(database_of(bad).unwrap_err().code, Code::InvalidArgument);
        }
        assert!(Rpc::RunQuery.takes_parent() && !Rpc::Commit.takes_parent());
        assert_eq!(Rpc::ALL.iter().filter(|r| r.server_streaming()).count(), 3);
    }

    #[test]
    fn a_database_field_must_name_this_database() {
        let db = Database::new("p").unwrap();
        let mut ok = json!({"database": "projects/p/databases/(default)", "writes": []});
        take_database(&db, ok.as_object_mut().unwrap()).unwrap();
        assert_eq!(ok, json!({"writes": []}));
        for (bad, code) in [
            ("projects/q/databases/(default)", Code::NotFound),
            ("projects/p/databases/other", Code::NotFound),
            (
                "projects/p/databases/(default)/documents",
                Code::InvalidArgument,
            ),
        ] {
            let mut request = json!({ "database": bad });
            let e = take_database(&db, request.as_object_mut().unwrap()).unwrap_err();
            assert_eq!(e.code, code, "{bad}");
        }
    }
}
