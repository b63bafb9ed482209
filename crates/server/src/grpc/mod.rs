//! Firestore's gRPC API, `google.firestore.v1.Firestore`, on claimdb's port: requests whose
//! `content-type` is `application/grpc…` come here instead of the router (the accept loop's
//! [`Dispatch`](crate::Dispatch)), over the same HTTP/2 connections as REST.
//!
//! One translation, not two: each call's request message is turned into its proto3 JSON
//! (`json.rs`) and run by [`crate::firestore::dispatch`], the very function the REST bindings
//! call, whose JSON answer becomes the response message(s). So rules, preconditions,
//! transforms, transactions (the lazy `newTransaction` of the Node SDKs and explicit
//! `BeginTransaction`) and errors are the REST ones; an error is the status with the same code
//! (`PERMISSION_DENIED`, `UNAUTHENTICATED`, `ABORTED`, …). The database is the one the
//! request's `database`/`parent`/`name` names, or the `google-cloud-resource-prefix` metadata's
//! when it names none (in emulator mode each project its own).
//!
//! Authentication is the REST one, from the metadata: `authorization: Bearer <token>` (in
//! emulator mode also `Bearer owner` and unsigned tokens) and `x-claimdb-admin-key`; session
//! cookies are not credentials here. Messages are limited to `max_body_bytes`, as REST bodies
//! are. Each call is counted in `claimdb_http_requests_total` under its method's path
//! (`/google.firestore.v1.Firestore/Commit`), with the HTTP status of its code.
//!
//! `Listen` and `Write`, the bidirectional streams, are the same translation over a stream: each
//! request message becomes its JSON for `claimdb_firestore`'s stream logic, each JSON response a
//! message (`streams.rs`: the database from the first request, one task per stream, a bounded
//! channel of responses).

mod json;
mod streams;

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;
use claimdb_engine::RequestContext;
use claimdb_firestore::{Code, Rpc, Status};
use claimdb_firestore_proto::v1 as pb;
use claimdb_firestore_proto::v1::firestore_server::{Firestore, FirestoreServer};
use claimdb_firestore_proto::well_known::Empty;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use tonic::codegen::tokio_stream::{self, Stream, StreamExt as _};
use tonic::metadata::MetadataMap;
use tower::ServiceExt as _;
use tracing::Instrument as _;

use crate::AppState;
use crate::extract::REQUEST_ID;
use crate::request_id::MakeId;

/// The gRPC metadata naming the database a client works on.
const RESOURCE_PREFIX: &str = "google-cloud-resource-prefix";

/// Whether a request is a gRPC call (`application/grpc`, `application/grpc+proto`, …).
pub(crate) fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Whether a request is a bidirectional stream (`Listen`, `Write`): its request body is the
/// client's messages and stays open as long as the stream lives, so no deadline for its end
/// applies (the connection's `body_read_timeout` is for bodies that should arrive at once).
pub(crate) fn is_bidi_stream<B>(request: &Request<B>) -> bool {
    is_grpc(request)
        && matches!(
            request.uri().path(),
            "/google.firestore.v1.Firestore/Listen" | "/google.firestore.v1.Firestore/Write"
        )
}

/// The Firestore service as one connection's callee: request ids and the tracing span as the
/// REST front gives them, then tonic's codec and router.
#[derive(Clone)]
pub(crate) struct Grpc {
    server: FirestoreServer<Api>,
    ids: MakeId,
}

impl Grpc {
    pub(crate) fn new(state: AppState) -> Self {
        let limit = state.config.max_body_bytes;
        let server = FirestoreServer::new(Api { state })
            .max_decoding_message_size(limit)
            .max_encoding_message_size(usize::MAX);
        Grpc {
            server,
            ids: MakeId::new(),
        }
    }

    /// Answers one gRPC call.
    pub(crate) async fn call(self, mut request: Request<Body>) -> Response {
        let id = match request.headers().get(REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = self.ids.next_header();
                request.headers_mut().insert(REQUEST_ID, id.clone());
                id
            }
        };
        let span = tracing::info_span!(
            "request",
            method = "POST",
            path = %request.uri().path(),
            request_id = %id.to_str().unwrap_or(""),
        );
        let answered: Result<_, Infallible> = self.server.oneshot(request).instrument(span).await;
        let mut response = match answered {
            Ok(response) => response.map(Body::new),
            Err(never) => match never {},
        };
        response.headers_mut().insert(REQUEST_ID, id);
        response
    }
}

/// The service's methods.
#[derive(Clone)]
struct Api {
    state: AppState,
}

/// A stream of response messages.
type Answer<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>;

/// A bidirectional stream's requests or responses, as proto3 JSON: the form the stream RPCs'
/// logic takes and answers.
pub(crate) type JsonStream = Pin<Box<dyn Stream<Item = Result<Json, Status>> + Send>>;

/// A call's own state: its context and the database its metadata names.
struct Call {
    ctx: RequestContext,
    prefix: Option<String>,
    start: Instant,
}

fn status(s: Status) -> tonic::Status {
    tonic::Status::new(tonic::Code::from_i32(s.code as i32), s.message)
}

fn internal(what: &str, e: impl std::fmt::Display) -> tonic::Status {
    tracing::error!("gRPC {what}: {e}");
    tonic::Status::internal("internal error")
}

/// Counts a finished call as REST counts a request: by its path, with the HTTP status its code
/// has on REST.
fn observe(rpc: &str, code: tonic::Code, start: Instant) {
    let http = Code::ALL
        .iter()
        .find(|c| **c as i32 == code as i32)
        .map_or(200, |c| c.http_status());
    let status = StatusCode::from_u16(http).unwrap_or(StatusCode::OK);
    let path = format!("/google.firestore.v1.Firestore/{rpc}");
    crate::metrics::observe(&path, &Method::POST, status, start);
}

impl Api {
    fn call(metadata: &MetadataMap) -> Result<Call, tonic::Status> {
        let start = Instant::now();
        let headers = metadata.clone().into_headers();
        let ctx = crate::extract::header_context(&headers)
            .map_err(|e| status(crate::firestore::status_of(e)))?;
        let prefix = metadata
            .get(RESOURCE_PREFIX)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Call { ctx, prefix, start })
    }

    /// Runs `rpc` with `request` as [`crate::firestore::dispatch`] does for REST; its JSON
    /// answer.
    async fn answer<Req: Serialize>(
        &self,
        rpc: Rpc,
        request: tonic::Request<Req>,
    ) -> Result<Json, tonic::Status> {
        let call = Self::call(request.metadata());
        let start = call.as_ref().map_or_else(|_| Instant::now(), |c| c.start);
        let result = async {
            let call = call?;
            let message = match json::to_json(request.get_ref()) {
                Ok(Json::Object(message)) => message,
                Ok(other) => return Err(internal("request as JSON", other)),
                Err(e) => return Err(internal("request as JSON", e)),
            };
            let prefix = call.prefix.as_deref();
            crate::firestore::dispatch(&self.state, &call.ctx, rpc, message, prefix)
                .await
                .map_err(status)
        }
        .await;
        let code = result
            .as_ref()
            .map_or_else(tonic::Status::code, |_| tonic::Code::Ok);
        observe(rpc.method(), code, start);
        result
    }

    async fn unary<Req: Serialize, Resp: DeserializeOwned + json::Nulls>(
        &self,
        rpc: Rpc,
        request: tonic::Request<Req>,
    ) -> Result<tonic::Response<Resp>, tonic::Status> {
        let answer = self.answer(rpc, request).await?;
        let message = json::from_json(answer).map_err(|e| internal("response from JSON", e))?;
        Ok(tonic::Response::new(message))
    }

    /// A server-streaming RPC: the JSON array of its answer, one message each.
    async fn streaming<Req: Serialize, Resp: DeserializeOwned + json::Nulls + Send + 'static>(
        &self,
        rpc: Rpc,
        request: tonic::Request<Req>,
    ) -> Result<tonic::Response<Answer<Resp>>, tonic::Status> {
        let answer = match self.answer(rpc, request).await? {
            Json::Array(items) => items,
            other => vec![other],
        };
        let messages = answer
            .into_iter()
            .map(|item| json::from_json(item).map_err(|e| internal("response from JSON", e)))
            .collect::<Vec<_>>();
        Ok(tonic::Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    /// A bidirectional stream: the requests as JSON into `logic`, its JSON out as messages.
    fn bidi<Req, Resp>(
        &self,
        request: tonic::Request<tonic::Streaming<Req>>,
        logic: fn(
            AppState,
            RequestContext,
            Option<String>,
            JsonStream,
        ) -> Result<JsonStream, Status>,
    ) -> Result<tonic::Response<Answer<Resp>>, tonic::Status>
    where
        Req: Serialize + Send + 'static,
        Resp: DeserializeOwned + json::Nulls + Send + 'static,
    {
        let call = Self::call(request.metadata())?;
        let requests: JsonStream = Box::pin(request.into_inner().map(|message| {
            let message = message.map_err(|e| Status::new(Code::Cancelled, e.message()))?;
            json::to_json(&message)
                .map_err(|e| Status::new(Code::Internal, format!("request as JSON: {e}")))
        }));
        let responses =
            logic(self.state.clone(), call.ctx, call.prefix, requests).map_err(status)?;
        let messages = responses.map(|answer| {
            let answer = answer.map_err(status)?;
            json::from_json(answer).map_err(|e| internal("response from JSON", e))
        });
        Ok(tonic::Response::new(Box::pin(messages)))
    }
}

type Unary<T> = Result<tonic::Response<T>, tonic::Status>;
type Streamed<T> = Result<tonic::Response<Answer<T>>, tonic::Status>;

#[tonic::async_trait]
impl Firestore for Api {
    async fn get_document(&self, r: tonic::Request<pb::GetDocumentRequest>) -> Unary<pb::Document> {
        self.unary(Rpc::GetDocument, r).await
    }

    async fn list_documents(
        &self,
        r: tonic::Request<pb::ListDocumentsRequest>,
    ) -> Unary<pb::ListDocumentsResponse> {
        self.unary(Rpc::ListDocuments, r).await
    }

    async fn update_document(
        &self,
        r: tonic::Request<pb::UpdateDocumentRequest>,
    ) -> Unary<pb::Document> {
        self.unary(Rpc::UpdateDocument, r).await
    }

    async fn delete_document(&self, r: tonic::Request<pb::DeleteDocumentRequest>) -> Unary<Empty> {
        self.unary(Rpc::DeleteDocument, r).await
    }

    type BatchGetDocumentsStream = Answer<pb::BatchGetDocumentsResponse>;

    async fn batch_get_documents(
        &self,
        r: tonic::Request<pb::BatchGetDocumentsRequest>,
    ) -> Streamed<pb::BatchGetDocumentsResponse> {
        self.streaming(Rpc::BatchGetDocuments, r).await
    }

    async fn begin_transaction(
        &self,
        r: tonic::Request<pb::BeginTransactionRequest>,
    ) -> Unary<pb::BeginTransactionResponse> {
        self.unary(Rpc::BeginTransaction, r).await
    }

    async fn commit(&self, r: tonic::Request<pb::CommitRequest>) -> Unary<pb::CommitResponse> {
        self.unary(Rpc::Commit, r).await
    }

    async fn rollback(&self, r: tonic::Request<pb::RollbackRequest>) -> Unary<Empty> {
        self.unary(Rpc::Rollback, r).await
    }

    type RunQueryStream = Answer<pb::RunQueryResponse>;

    async fn run_query(
        &self,
        r: tonic::Request<pb::RunQueryRequest>,
    ) -> Streamed<pb::RunQueryResponse> {
        self.streaming(Rpc::RunQuery, r).await
    }

    type ExecutePipelineStream = Answer<pb::ExecutePipelineResponse>;

    async fn execute_pipeline(
        &self,
        _r: tonic::Request<pb::ExecutePipelineRequest>,
    ) -> Streamed<pb::ExecutePipelineResponse> {
        Err(tonic::Status::unimplemented(
            "ExecutePipeline is not served by claimdb",
        ))
    }

    type RunAggregationQueryStream = Answer<pb::RunAggregationQueryResponse>;

    async fn run_aggregation_query(
        &self,
        r: tonic::Request<pb::RunAggregationQueryRequest>,
    ) -> Streamed<pb::RunAggregationQueryResponse> {
        self.streaming(Rpc::RunAggregationQuery, r).await
    }

    async fn partition_query(
        &self,
        r: tonic::Request<pb::PartitionQueryRequest>,
    ) -> Unary<pb::PartitionQueryResponse> {
        self.unary(Rpc::PartitionQuery, r).await
    }

    type WriteStream = Answer<pb::WriteResponse>;

    async fn write(
        &self,
        r: tonic::Request<tonic::Streaming<pb::WriteRequest>>,
    ) -> Streamed<pb::WriteResponse> {
        self.bidi(r, streams::write)
    }

    type ListenStream = Answer<pb::ListenResponse>;

    async fn listen(
        &self,
        r: tonic::Request<tonic::Streaming<pb::ListenRequest>>,
    ) -> Streamed<pb::ListenResponse> {
        self.bidi(r, streams::listen)
    }

    async fn list_collection_ids(
        &self,
        r: tonic::Request<pb::ListCollectionIdsRequest>,
    ) -> Unary<pb::ListCollectionIdsResponse> {
        self.unary(Rpc::ListCollectionIds, r).await
    }

    async fn batch_write(
        &self,
        r: tonic::Request<pb::BatchWriteRequest>,
    ) -> Unary<pb::BatchWriteResponse> {
        self.unary(Rpc::BatchWrite, r).await
    }

    async fn create_document(
        &self,
        r: tonic::Request<pb::CreateDocumentRequest>,
    ) -> Unary<pb::Document> {
        self.unary(Rpc::CreateDocument, r).await
    }
}
