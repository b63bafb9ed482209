//! `GET /v1/listen`: claimdb's own realtime API, as server-sent events (`text/event-stream`),
//! for apps that use no Firebase SDK. `?path=c/d` watches a document; `?query=<JSON>` watches
//! a query, the JSON being what `POST /v1/query` takes (its paging fields aside). The same
//! credentials (bearer token, session cookie) and rules apply: a listener the rules do not allow
//! is refused with the usual JSON error before any event; one that stops being allowed ends with
//! an `error` event. The engine's `listen` does the watching; this module frames its events:
//!
//! - `snapshot` (first): `{"documents": [...]}` — the whole result;
//! - `changes`: `{"changes": [{"type": "added"|"modified"|"removed", "document": {...},
//!   "old_index": n|null, "new_index": n|null}, ...]}` — applied in order, they turn the last
//!   result into the new one;
//! - `error`: claimdb's error shape (`{"error": {"code", "message", …}}`), then the stream ends;
//! - a comment line every [`HEARTBEAT`], so proxies and clients see the connection alive.
//!
//! Each `snapshot` and `changes` event carries an `id`: a resume token. A client that reconnects
//! with `Last-Event-ID` (browsers' `EventSource` does it by itself) gets, as its first event, the
//! `changes` from the result it last received to the result now — only what it missed, possibly
//! nothing — or, when the token cannot be used (too old, made on another node, not the same
//! caller and target), a whole `snapshot` to start over from (`Engine::resume`). The events wait
//! in a bounded buffer; a client that reads slowly holds up only its own listener, which then
//! reports the net change when it catches up.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use claimdb_engine::listen::{ListenEvent, ListenTarget};
use claimdb_engine::{EngineError, Query};
use claimdb_model::DocPath;
use http_body_util::channel::{Channel, Sender};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Ctx, json_body};
use crate::wire::{DocumentOut, QueryRequest};

/// How often an idle stream sends a comment line.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(15);

/// Events a stream may hold unsent before its listener waits for the client.
const BUFFER: usize = 16;

pub(crate) async fn listen(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    RawQuery(params): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = target(params.as_deref())?;
    let resume_from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty());
    let (mut listener, first) = match resume_from {
        Some(token) => state.engine.resume(ctx, target, token).await?,
        None => {
            let listener = state.engine.listen(ctx, target).await?;
            let first = listener.snapshot();
            (listener, first)
        }
    };
    let (mut tx, body) = Channel::<Bytes>::new(BUFFER);
    tokio::spawn(async move {
        if send(&mut tx, &listener.resume_token(), &first)
            .await
            .is_err()
        {
            return;
        }
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.reset();
        loop {
            // The listener's next event, with heartbeats meanwhile (its future is kept across
            // them, never dropped half-way).
            let event = {
                let next = listener.next();
                tokio::pin!(next);
                loop {
                    tokio::select! {
                        event = &mut next => break event,
                        _ = heartbeat.tick() => {
                            if tx.send_data(Bytes::from_static(b": heartbeat\n\n")).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            };
            let sent = match event {
                Ok(event) => send(&mut tx, &listener.resume_token(), &event).await,
                Err(e) => {
                    let _ = send_error(&mut tx, e).await;
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let mut response = Body::new(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell buffering proxies (nginx) to pass events on as they come.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// What the query string names: `path` (a document) or `query` (the JSON of `/v1/query`).
fn target(params: Option<&str>) -> Result<ListenTarget, ApiError> {
    let mut target = None;
    for (name, value) in form_urlencoded::parse(params.unwrap_or("").as_bytes()) {
        let next = match &*name {
            "path" => ListenTarget::Document(
                DocPath::parse(&value).map_err(|e| ApiError::invalid(format!("path: {e}")))?,
            ),
            "query" => {
                let mut request: QueryRequest = json_body(value.as_bytes())
                    .map_err(|e| ApiError::invalid(format!("query: {}", e.message)))?;
                let paging = request.take_paging();
                if paging.page_size.is_some() || paging.page_token.is_some() {
                    return Err(ApiError::invalid(
                        "a listener's query takes no page_size or page_token",
                    ));
                }
                ListenTarget::Query(Box::new(Query::try_from(request)?))
            }
            // The API key parameter browsers' EventSource users tend to add; ignored.
            "key" => continue,
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter {other:?}: use path=… or query=…"
                )));
            }
        };
        if target.replace(next).is_some() {
            return Err(ApiError::invalid(
                "name one document (path=…) or one query (query=…)",
            ));
        }
    }
    target.ok_or_else(|| ApiError::invalid("name a document (path=…) or a query (query=…)"))
}

/// Sends one event with its resume token; `Err` when the client is gone.
async fn send(
    tx: &mut Sender<Bytes>,
    id: &str,
    event: &ListenEvent,
) -> Result<(), http_body_util::channel::SendError> {
    let (name, data) = match event {
        ListenEvent::Snapshot { documents } => (
            "snapshot",
            json!({
                "documents": documents.iter().map(DocumentOut::from).collect::<Vec<_>>(),
            }),
        ),
        ListenEvent::Changes { changes } => (
            "changes",
            json!({
                "changes": changes.iter().map(|c| json!({
                    "type": c.kind.name(),
                    "document": DocumentOut::from(&c.document),
                    "old_index": c.old_index,
                    "new_index": c.new_index,
                })).collect::<Vec<_>>(),
            }),
        ),
    };
    // JSON text has no raw newline, so the data is one `data:` line; the token is printable
    // ASCII without a newline.
    let text = format!("id: {id}\nevent: {name}\ndata: {data}\n\n");
    tx.send_data(Bytes::from(text)).await
}

/// The last event: an error, without an `id` (a client resumes from the last result it got).
async fn send_error(
    tx: &mut Sender<Bytes>,
    e: EngineError,
) -> Result<(), http_body_util::channel::SendError> {
    let error = ApiError::from(e);
    let text = format!("event: error\ndata: {}\n\n", error.body());
    tx.send_data(Bytes::from(text)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_one_document_or_one_query() {
        assert_eq!(
            target(Some("path=c%2Fd")).unwrap(),
            ListenTarget::Document(DocPath::parse("c/d").unwrap())
        );
        let q = form_urlencoded::byte_serialize(br#"{"collection": "c", "limit": 3}"#)
            .collect::<String>();
        assert!(matches!(
            target(Some(&format!("query={q}"))).unwrap(),
            ListenTarget::Query(_)
        ));
        for bad in [
            None,
            Some("path=c"),
            Some("path=c/d&path=c/e"),
            Some("other=1"),
            Some("query=%7B"),
        ] {
            assert_eq!(target(bad).unwrap_err().status, 400, "{bad:?}");
        }
        let paged = form_urlencoded::byte_serialize(br#"{"collection": "c", "page_size": 3}"#)
            .collect::<String>();
        assert!(target(Some(&format!("query={paged}"))).is_err());
    }
}
