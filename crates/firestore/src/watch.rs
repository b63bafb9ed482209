//! Firestore's `Listen` stream (`google.firestore.v1.Firestore/Listen`) as protocol logic over
//! proto3 JSON, with no transport: [`serve`] reads `ListenRequest`s from a stream and answers
//! `ListenResponse`s into a bounded channel, so gRPC (and later WebChannel) only convert
//! messages and carry them. Each target is one engine [`Listener`] (or one per named document),
//! so the rules decide it like a get or a list when it starts and again whenever the caller's
//! claims, revocation or the rules change.
//!
//! What the SDKs need, in order (firebase-js-sdk `remote/watch_change.ts`, `remote_store.ts`):
//!
//! - `addTarget` → `targetChange{ADD, [id]}`; a `documentChange` (`targetIds: [id]`) per
//!   document of the result — a named document that does not exist sends nothing, the SDK
//!   concludes its absence from `CURRENT`; `targetChange{CURRENT, [id], resumeToken, readTime}`;
//!   then the global `targetChange{NO_CHANGE, targetIds: [], readTime}`, the only message that
//!   makes the SDK raise a snapshot. A target that asks to resume with a `resumeToken` this
//!   node gave (the engine's [`Engine::resume`]) gets, between `ADD` and `CURRENT`, only the
//!   changes from the result behind the token; otherwise (a token too old, another node's or
//!   another caller's, or a `readTime`) `RESET` — the SDK drops what it held, so documents
//!   deleted meanwhile leave its cache — and the whole result.
//! - a change of a target's result → `documentChange` for added and modified documents;
//!   `documentDelete` for a deleted one; for a document that left a query's result, the
//!   document as it is now with `removedTargetIds` (it still exists), `documentDelete` (it was
//!   deleted) or `documentRemove` (it can no longer be read) — told apart by reading it again
//!   under the rules; then `NO_CHANGE` with the target's new resume token (its listeners' engine
//!   tokens, as bytes) and the global `NO_CHANGE` with the read time.
//! - `removeTarget` → `targetChange{REMOVE, [id]}`, the listener dropped.
//! - a target the rules refuse, at start or later (`permission-denied`; `unauthenticated` for a
//!   revoked caller), or that is malformed → `targetChange{REMOVE, [id], cause}`, which the SDK
//!   turns into the listener's error; the stream goes on. A malformed request, an expired token
//!   (the SDK refreshes it and reconnects) or an unavailable store end the stream with the status.
//!
//! Bounded: the engine's listener coalesces what a slow consumer missed into the net change,
//! and the outgoing channel is the transport's, bounded; [`serve`] waits on it rather than
//! queueing. At most [`MAX_LISTENERS`] listeners per stream (a target is one; a documents target
//! one per document, at most [`MAX_TARGET_DOCUMENTS`]).
//!
//! Not here: existence filters; `expectedCount`, `labels` and `requestOptions` are ignored.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use claimdb_engine::listen::{ChangeKind, DocChange, ListenEvent, Listener};
use claimdb_engine::{Document, Engine, EngineError, RequestContext};
use claimdb_model::Timestamp;
use futures_util::stream::{self, Stream, StreamExt};
use serde_json::{Map as JsonMap, Value as Json, json};
use tokio::sync::mpsc;
use tokio_stream::StreamMap;

use crate::names::Database;
use crate::status::{Code, Status};
use crate::{rpc, value};

mod target;

/// Most engine listeners one stream may hold at once: one per target, or per document of a
/// documents target.
pub const MAX_LISTENERS: usize = 1_000;

/// Most documents one `documents` target may name.
pub const MAX_TARGET_DOCUMENTS: usize = 100;

/// Serves one `Listen` stream: reads `ListenRequest`s (proto3 JSON) from `requests` until it
/// ends and sends `ListenResponse`s into `out`. An `Err` from `requests` (a message the
/// transport could not decode) ends the stream with that status; so does a malformed request
/// or a failure of the whole stream, sent as the last item of `out` and returned. Returns when
/// the client half-closes, the stream fails, or `out` is closed (the client is gone).
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
    let read_time = engine.clock().timestamp();
    let mut watch = Watch {
        engine,
        ctx,
        db,
        targets: HashMap::new(),
        updates: StreamMap::new(),
        read_time,
        next_assigned: 0,
    };
    let out = Out(&out);
    match watch.run(&mut requests, &out).await {
        Err(End::Status(status)) => {
            let _ = out.0.send(Err(status.clone())).await;
            Err(status)
        }
        Err(End::Gone) => Err(Status::new(Code::Cancelled, "the client went away")),
        Ok(()) => Ok(()),
    }
}

/// Why a stream ends early.
enum End {
    /// With this status, sent to the client.
    Status(Status),
    /// The client is gone: nothing more to send.
    Gone,
}

impl From<Status> for End {
    fn from(status: Status) -> Self {
        End::Status(status)
    }
}

/// The outgoing half.
struct Out<'a>(&'a mpsc::Sender<Result<Json, Status>>);

impl Out<'_> {
    async fn send(&self, response: Json) -> Result<(), End> {
        self.0.send(Ok(response)).await.map_err(|_| End::Gone)
    }
}

/// One listener's events, in order, each with the resume token after it, as a stream (its
/// `next` future is kept between polls, so nothing is lost when the stream loop attends to a
/// request meanwhile).
type Updates = Pin<Box<dyn Stream<Item = (Result<ListenEvent, EngineError>, String)> + Send>>;

fn updates(listener: Listener) -> Updates {
    Box::pin(stream::unfold(listener, |mut listener| async move {
        let event = listener.next().await;
        let token = listener.resume_token();
        Some(((event, token), listener))
    }))
}

/// A target being listened to.
struct Target {
    /// Named documents (whose removal is a deletion) rather than a query.
    documents: bool,
    /// Each listener's resume token after its last event (keys `(id, 0..len)` of
    /// `Watch::updates`).
    tokens: Vec<String>,
}

struct Watch {
    engine: Arc<Engine>,
    ctx: RequestContext,
    db: Database,
    targets: HashMap<i32, Target>,
    /// Every listener's events, keyed by (target id, index within the target).
    updates: StreamMap<(i32, usize), Updates>,
    /// The last read time sent: read times never go back on a stream (the SDK ignores a
    /// snapshot older than the last one it applied).
    read_time: Timestamp,
    /// The last target id the server assigned (for `targetId` 0).
    next_assigned: i32,
}

impl Watch {
    async fn run<S>(&mut self, requests: &mut S, out: &Out<'_>) -> Result<(), End>
    where
        S: Stream<Item = Result<Json, Status>> + Unpin,
    {
        loop {
            tokio::select! {
                request = requests.next() => match request {
                    None => return Ok(()),
                    Some(Err(status)) => return Err(End::Status(status)),
                    Some(Ok(request)) => self.request(request, out).await?,
                },
                Some(((id, i), (event, token))) = self.updates.next(), if !self.updates.is_empty() => {
                    self.event(id, i, event, token, out).await?;
                }
                () = out.0.closed() => return Err(End::Gone),
            }
        }
    }

    async fn request(&mut self, request: Json, out: &Out<'_>) -> Result<(), End> {
        let Json::Object(mut request) = request else {
            return Err(Status::invalid("a ListenRequest must be an object").into());
        };
        rpc::take_database(&self.db, &mut request)?;
        if let Some(key) = request.keys().find(|k| {
            !matches!(
                k.as_str(),
                "addTarget" | "removeTarget" | "labels" | "requestOptions"
            )
        }) {
            return Err(Status::invalid(format!("{key:?} is not a field of ListenRequest")).into());
        }
        let add = request.get("addTarget").filter(|v| !v.is_null());
        let remove = request.get("removeTarget").filter(|v| !v.is_null());
        match (add, remove) {
            (Some(Json::Object(target)), None) => self.add(target, out).await,
            (Some(_), None) => Err(Status::invalid("addTarget must be a Target").into()),
            (None, Some(id)) => {
                let id = target::target_id(id)?;
                if id == 0 {
                    return Err(Status::invalid("removeTarget must name a target id").into());
                }
                self.remove(id);
                out.send(target_change("REMOVE", &[id])).await
            }
            _ => Err(Status::invalid(
                "a ListenRequest has exactly one of addTarget or removeTarget",
            )
            .into()),
        }
    }

    async fn add(&mut self, target: &JsonMap<String, Json>, out: &Out<'_>) -> Result<(), End> {
        if let Some(key) = target.keys().find(|k| {
            !matches!(
                k.as_str(),
                "targetId"
                    | "documents"
                    | "query"
                    | "pipelineQuery"
                    | "resumeToken"
                    | "readTime"
                    | "once"
                    | "expectedCount"
            )
        }) {
            return Err(Status::invalid(format!("{key:?} is not a field of Target")).into());
        }
        let id = match target.get("targetId") {
            None | Some(Json::Null) => 0,
            Some(id) => target::target_id(id)?,
        };
        let id = if id == 0 { self.assign_id() } else { id };
        if self.targets.contains_key(&id) {
            return Err(Status::invalid(format!(
                "target {id} is already listened to on this stream; remove it first"
            ))
            .into());
        }
        let decoded = match target::decode(&self.db, target) {
            Ok(decoded) => decoded,
            Err(status) => return reject(id, &status, out).await,
        };
        if self.updates.len() + decoded.targets.len() > MAX_LISTENERS {
            let status = Status::new(
                Code::ResourceExhausted,
                format!(
                    "a stream holds at most {MAX_LISTENERS} listeners at once (one per target, \
                     or per document of a documents target); remove targets first"
                ),
            );
            return reject(id, &status, out).await;
        }
        let tokens = decoded
            .resume
            .as_ref()
            .filter(|tokens| tokens.len() == decoded.targets.len());
        let mut listeners = Vec::with_capacity(decoded.targets.len());
        let mut resumed = Vec::with_capacity(decoded.targets.len());
        for (i, target) in decoded.targets.into_iter().enumerate() {
            let started = match tokens.and_then(|t| t.get(i)) {
                Some(token) => self.engine.resume(self.ctx.clone(), target, token).await,
                None => self.engine.listen(self.ctx.clone(), target).await.map(|l| {
                    let snapshot = l.snapshot();
                    (l, snapshot)
                }),
            };
            match started {
                Ok((listener, first)) => {
                    listeners.push(listener);
                    resumed.push(first);
                }
                Err(e) => return failed(id, e, out).await,
            }
        }
        out.send(target_change("ADD", &[id])).await?;
        // Resumed: the changes since the tokens' results, if every listener could resume;
        // else the SDK drops what it held and gets everything.
        let changes = resumed
            .iter()
            .all(|e| matches!(e, ListenEvent::Changes { .. }));
        if decoded.resume.is_some() && !changes {
            out.send(target_change("RESET", &[id])).await?;
        }
        if decoded.resume.is_some() && changes {
            for event in resumed {
                if let ListenEvent::Changes { changes } = event {
                    for response in self.changes(id, decoded.documents, changes).await {
                        out.send(response).await?;
                    }
                }
            }
        } else {
            let mut latest = None;
            for listener in &listeners {
                let ListenEvent::Snapshot { documents } = listener.snapshot() else {
                    continue;
                };
                for doc in documents {
                    latest = latest.max(Some(doc.update_time));
                    out.send(document_change(&doc, id, &self.db)).await?;
                }
            }
            self.advance(latest);
        }
        let tokens: Vec<String> = listeners.iter().map(Listener::resume_token).collect();
        let read_time = self.advance(None);
        out.send(json!({
            "targetChange": {
                "targetChangeType": "CURRENT",
                "targetIds": [id],
                "resumeToken": resume_token(&tokens),
                "readTime": read_time.to_string(),
            }
        }))
        .await?;
        out.send(global(read_time)).await?;
        if decoded.once {
            return out.send(target_change("REMOVE", &[id])).await;
        }
        self.targets.insert(
            id,
            Target {
                documents: decoded.documents,
                tokens,
            },
        );
        for (i, listener) in listeners.into_iter().enumerate() {
            self.updates.insert((id, i), updates(listener));
        }
        Ok(())
    }

    /// A change of a target's result (from its listener `i`), or its listener's end.
    async fn event(
        &mut self,
        id: i32,
        i: usize,
        event: Result<ListenEvent, EngineError>,
        token: String,
        out: &Out<'_>,
    ) -> Result<(), End> {
        let changes = match event {
            Ok(ListenEvent::Changes { changes }) => changes,
            Ok(ListenEvent::Snapshot { .. }) => return Ok(()),
            Err(e) => {
                self.remove(id);
                return failed(id, e, out).await;
            }
        };
        let Some(target) = self.targets.get_mut(&id) else {
            return Ok(());
        };
        if let Some(slot) = target.tokens.get_mut(i) {
            *slot = token;
        }
        let tokens = resume_token(&target.tokens);
        let named = target.documents;
        for response in self.changes(id, named, changes).await {
            out.send(response).await?;
        }
        let read_time = self.advance(None);
        out.send(json!({
            "targetChange": {
                "targetChangeType": "NO_CHANGE",
                "targetIds": [id],
                "resumeToken": tokens,
            }
        }))
        .await?;
        out.send(global(read_time)).await
    }

    /// The responses that tell a client a target's changes (`named`: a documents target).
    async fn changes(&mut self, id: i32, named: bool, changes: Vec<DocChange>) -> Vec<Json> {
        let mut responses = Vec::with_capacity(changes.len());
        for change in changes {
            let doc = &change.document;
            let response = match change.kind {
                ChangeKind::Added | ChangeKind::Modified => {
                    self.advance(Some(doc.update_time));
                    document_change(doc, id, &self.db)
                }
                // A named document's listener reads it as a get: gone means deleted.
                ChangeKind::Removed if named => self.gone(doc, id, "documentDelete"),
                ChangeKind::Removed => self.left_query(doc, id).await,
            };
            responses.push(response);
        }
        responses
    }

    /// A document that left a query's result: still there (it no longer matches, or fell past
    /// the limit) — sent as it is now, removed from the target —, deleted, or no longer
    /// readable (then only its removal from the target is said). Read under the rules, as a get.
    async fn left_query(&mut self, doc: &Document, id: i32) -> Json {
        match self.engine.get(&self.ctx, &doc.path).await {
            Ok(now) => {
                self.advance(Some(now.update_time));
                json!({
                    "documentChange": {
                        "document": value::encode_document(&now, &self.db),
                        "removedTargetIds": [id],
                    }
                })
            }
            Err(EngineError::NotFound { .. }) => self.gone(doc, id, "documentDelete"),
            Err(_) => self.gone(doc, id, "documentRemove"),
        }
    }

    /// `documentDelete` or `documentRemove` of a document for a target.
    fn gone(&mut self, doc: &Document, id: i32, kind: &str) -> Json {
        let read_time = self.advance(None);
        let mut body = JsonMap::new();
        body.insert(
            "document".into(),
            Json::String(self.db.document_name(&doc.path)),
        );
        body.insert("removedTargetIds".into(), json!([id]));
        body.insert("readTime".into(), Json::String(read_time.to_string()));
        let mut response = JsonMap::new();
        response.insert(kind.into(), Json::Object(body));
        Json::Object(response)
    }

    fn remove(&mut self, id: i32) {
        if let Some(target) = self.targets.remove(&id) {
            for i in 0..target.tokens.len() {
                self.updates.remove(&(id, i));
            }
        }
    }

    /// The read time of what is sent now: never before the last one sent, nor before a document
    /// it shows (`latest`).
    fn advance(&mut self, latest: Option<Timestamp>) -> Timestamp {
        let now = self.engine.clock().timestamp();
        self.read_time = self.read_time.max(now).max(latest.unwrap_or(now));
        self.read_time
    }

    /// A target id for an `addTarget` without one (Firestore assigns one and says it in `ADD`).
    fn assign_id(&mut self) -> i32 {
        loop {
            self.next_assigned = self.next_assigned.checked_add(1).unwrap_or(1);
            if !self.targets.contains_key(&self.next_assigned) {
                return self.next_assigned;
            }
        }
    }
}

/// A listener that ended (or could not start): the target is rejected with the error as its
/// cause, except for what the client should answer by reconnecting — an expired token (the
/// SDK refreshes it first) or an unavailable store or identity provider —, which ends the
/// stream.
async fn failed(id: i32, e: EngineError, out: &Out<'_>) -> Result<(), End> {
    let ends_stream = matches!(
        e,
        EngineError::Unavailable { .. }
            | EngineError::CredentialUnavailable { .. }
            | EngineError::Unauthenticated {
                reason: "expired",
                ..
            }
    );
    let status = Status::from(e);
    if ends_stream {
        return Err(End::Status(status));
    }
    reject(id, &status, out).await
}

/// `targetChange{REMOVE, [id], cause}`: the SDK fails the target's listener with `cause`.
async fn reject(id: i32, status: &Status, out: &Out<'_>) -> Result<(), End> {
    out.send(json!({
        "targetChange": {
            "targetChangeType": "REMOVE",
            "targetIds": [id],
            "cause": status.to_rpc_json(),
        }
    }))
    .await
}

fn target_change(kind: &str, ids: &[i32]) -> Json {
    json!({ "targetChange": { "targetChangeType": kind, "targetIds": ids } })
}

/// The global `NO_CHANGE`: every target is consistent at `read_time`; the SDK raises its
/// snapshots on this message alone.
fn global(read_time: Timestamp) -> Json {
    json!({
        "targetChange": {
            "targetChangeType": "NO_CHANGE",
            "targetIds": [],
            "readTime": read_time.to_string(),
        }
    })
}

fn document_change(doc: &Document, id: i32, db: &Database) -> Json {
    json!({
        "documentChange": {
            "document": value::encode_document(doc, db),
            "targetIds": [id],
        }
    })
}

/// A target's resume token: its listeners' engine tokens, in order, as bytes (base64 in proto3
/// JSON); opaque to clients.
fn resume_token(tokens: &[String]) -> String {
    STANDARD.encode(tokens.join(&target::TOKEN_SEPARATOR.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the client should answer by reconnecting ends the stream (an expired token: the
    /// SDK refreshes it first; an unavailable store or identity provider); anything else ends
    /// only the target, with its error as the cause the SDK hands to the listener.
    #[tokio::test]
    async fn an_expired_token_ends_the_stream_and_a_denial_or_revocation_the_target() {
        let (tx, mut rx) = mpsc::channel(4);
        let out = Out(&tx);
        let m = |s: &str| s.to_string();
        let stream_enders = [
            EngineError::Unauthenticated {
                message: m("expired"),
                reason: "expired",
            },
            EngineError::Unavailable {
                message: m("feed ended"),
                write_index: None,
            },
        ];
        for e in stream_enders {
            let code = Status::from(e.clone()).code;
            let ended = failed(2, e, &out).await;
            assert!(matches!(ended, Err(End::Status(s)) if s.code == code));
            assert!(rx.try_recv().is_err(), "nothing sent for the target");
        }
        let target_enders = [
            (
                EngineError::Unauthenticated {
                    message: m("revoked"),
                    reason: "revoked",
                },
                Code::Unauthenticated,
            ),
            (
                EngineError::PermissionDenied {
                    message: m("no"),
                    details: None,
                    write_index: None,
                },
                Code::PermissionDenied,
            ),
            (
                EngineError::invalid_argument("bad query"),
                Code::InvalidArgument,
            ),
        ];
        for (e, code) in target_enders {
            assert!(failed(2, e, &out).await.is_ok());
            let removed = rx.try_recv().unwrap().unwrap();
            assert_eq!(removed["targetChange"]["targetChangeType"], "REMOVE");
            assert_eq!(removed["targetChange"]["targetIds"], json!([2]));
            assert_eq!(removed["targetChange"]["cause"]["code"], code as i32);
        }
    }
}
