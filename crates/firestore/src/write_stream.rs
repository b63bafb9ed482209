//! Firestore's `Write` stream (`google.firestore.v1.Firestore/Write`) as protocol logic over
//! proto3 JSON, with no transport: [`serve`] reads `WriteRequest`s and answers
//! `WriteResponse`s into a bounded channel (gRPC now, WebChannel later carry them).
//!
//! The exchange the full SDKs use (firebase-js-sdk `remote/persistent_stream.ts`):
//!
//! - the handshake: a first request with `database` and no writes → `{streamId, streamToken}`;
//! - then each `{streamToken, writes}` → the writes committed atomically by the same function as
//!   the REST `:commit` (`commit::commit`: rules, preconditions, transforms, audit) →
//!   `{streamId, streamToken, writeResults, commitTime}`. Requests are answered in order; the
//!   SDK sends the next batch before the last answer arrived, so a request may carry any token
//!   this stream has sent, not only the last. A request without writes (the SDK's farewell) is
//!   answered with no results.
//! - a failed commit (denied, a failed precondition, a malformed write) ends the stream with its
//!   status, nothing of that request applied; the SDK fails that batch and opens a new stream.
//!
//! Not here: resuming a stream (`streamId` in the handshake is refused: each request's writes
//! are committed and acknowledged before the next is read, so a new stream loses nothing but an
//! acknowledgement in flight, which the SDK's retry of that batch settles as a normal write).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use claimdb_engine::{Engine, RequestContext};
use futures_util::stream::{Stream, StreamExt};
use serde_json::{Map as JsonMap, Value as Json, json};
use tokio::sync::mpsc;

use crate::names::Database;
use crate::status::{Code, Status};
use crate::transactions::Transactions;
use crate::{commit, rpc};

/// Serves one `Write` stream: reads `WriteRequest`s (proto3 JSON) from `requests` and sends
/// `WriteResponse`s into `out`; a failure is sent as the last item, ends the stream and is
/// returned. Returns when the client half-closes, a request fails, or `out` is closed.
pub async fn serve<S>(
    engine: Arc<Engine>,
    ctx: RequestContext,
    db: Database,
    mut requests: S,
    out: mpsc::Sender<Result<Json, Status>>,
) -> Result<(), Status>
where
    S: Stream<Item = Result<Json, Status>> + Unpin,
{
    let mut stream = WriteStream {
        engine,
        ctx,
        db,
        id: claimdb_engine::generate_id(),
        sent: 0,
        transactions: Transactions::default(),
    };
    let gone = || Err(Status::new(Code::Cancelled, "the client went away"));
    loop {
        let request = tokio::select! {
            request = requests.next() => request,
            () = out.closed() => return gone(),
        };
        let answer = match request {
            None => return Ok(()),
            Some(Ok(request)) => stream.answer(request).await,
            Some(Err(status)) => Err(status),
        };
        let failed = answer.as_ref().err().cloned();
        if out.send(answer).await.is_err() {
            return gone();
        }
        if let Some(status) = failed {
            return Err(status);
        }
    }
}

struct WriteStream {
    engine: Arc<Engine>,
    ctx: RequestContext,
    db: Database,
    /// The stream's id, sent with every response.
    id: String,
    /// Responses sent so far; the token of the n-th response is n.
    sent: u64,
    /// Never holds a transaction (a `WriteRequest` has none): `commit` takes one to look in.
    transactions: Transactions,
}

impl WriteStream {
    async fn answer(&mut self, request: Json) -> Result<Json, Status> {
        let Json::Object(mut request) = request else {
            return Err(Status::invalid("a WriteRequest must be an object"));
        };
        rpc::take_database(&self.db, &mut request)?;
        if let Some(key) = request
            .keys()
            .find(|k| !matches!(k.as_str(), "streamId" | "streamToken" | "writes" | "labels"))
        {
            return Err(Status::invalid(format!(
                "{key:?} is not a field of WriteRequest"
            )));
        }
        let stream_id = match request.get("streamId") {
            None | Some(Json::Null) => None,
            Some(Json::String(id)) if id.is_empty() => None,
            Some(Json::String(id)) => Some(id.as_str()),
            Some(_) => return Err(Status::invalid("streamId must be a string")),
        };
        let writes = match request.get("writes") {
            None | Some(Json::Null) => &[][..],
            Some(Json::Array(writes)) => writes.as_slice(),
            Some(_) => return Err(Status::invalid("writes must be an array of Write")),
        };
        if self.sent == 0 {
            return self.handshake(&request, stream_id, writes);
        }
        if stream_id.is_some_and(|id| id != self.id) {
            return Err(Status::invalid(format!(
                "streamId {stream_id:?} is not this stream's ({:?})",
                self.id
            )));
        }
        self.check_token(request.get("streamToken"))?;
        let (write_results, commit_time) = if writes.is_empty() {
            (
                Json::Array(Vec::new()),
                self.engine.clock().timestamp().to_string().into(),
            )
        } else {
            let mut body = JsonMap::new();
            body.insert("writes".into(), Json::Array(writes.to_vec()));
            let mut response =
                commit::commit(&self.engine, &self.ctx, &self.db, &self.transactions, &body)
                    .await?;
            (
                response["writeResults"].take(),
                response["commitTime"].take(),
            )
        };
        let token = self.next_token();
        Ok(json!({
            "streamId": self.id,
            "streamToken": token,
            "writeResults": write_results,
            "commitTime": commit_time,
        }))
    }

    fn handshake(
        &mut self,
        request: &JsonMap<String, Json>,
        stream_id: Option<&str>,
        writes: &[Json],
    ) -> Result<Json, Status> {
        if let Some(id) = stream_id {
            return Err(Status::invalid(format!(
                "write stream {id:?} cannot be resumed: claimdb keeps no write streams; open a new one without streamId"
            )));
        }
        if !writes.is_empty() {
            return Err(Status::invalid(
                "the first request of a write stream carries no writes: send them after the handshake's answer",
            ));
        }
        if request
            .get("streamToken")
            .and_then(Json::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            return Err(Status::invalid(
                "the first request of a write stream carries no streamToken",
            ));
        }
        Ok(json!({ "streamId": self.id, "streamToken": self.next_token() }))
    }

    /// A request acknowledges a response with the token it carried: any this stream has sent.
    fn check_token(&self, token: Option<&Json>) -> Result<(), Status> {
        let Some(Json::String(token)) = token else {
            return Err(Status::invalid(
                "a write request after the handshake carries the last streamToken received",
            ));
        };
        let sent = STANDARD
            .decode(token)
            .or_else(|_| URL_SAFE.decode(token))
            .ok()
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map(u64::from_be_bytes)
            .filter(|n| (1..=self.sent).contains(n));
        if sent.is_none() {
            return Err(Status::new(
                Code::InvalidArgument,
                "streamToken was not sent on this stream",
            ));
        }
        Ok(())
    }

    fn next_token(&mut self) -> String {
        self.sent += 1;
        STANDARD.encode(self.sent.to_be_bytes())
    }
}
