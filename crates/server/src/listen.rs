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
//! Each event carries an `id` (a counter per stream). A client that reconnects (with or without
//! `Last-Event-ID`) gets a fresh snapshot: the stream does not replay what it missed. The events
//! wait in a bounded buffer; a client that reads slowly holds up only its own listener, which
//! then reports the net change when it catches up.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
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
) -> Result<Response, ApiError> {
    let target = target(params.as_deref())?;
    let mut listener = state.engine.listen(ctx, target).await?;
    let (mut tx, body) = Channel::<Bytes>::new(BUFFER);
    tokio::spawn(async move {
        let mut id = 0u64;
        if send(&mut tx, &mut id, "snapshot", &listener.snapshot())
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
                Ok(event @ ListenEvent::Changes { .. }) => {
                    send(&mut tx, &mut id, "changes", &event).await
                }
                Ok(ListenEvent::Snapshot { .. }) => Ok(()),
                Err(e) => {
                    let _ = send_error(&mut tx, &mut id, e).await;
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

/// Sends one event; `Err` when the client is gone.
async fn send(
    tx: &mut Sender<Bytes>,
    id: &mut u64,
    name: &str,
    event: &ListenEvent,
) -> Result<(), http_body_util::channel::SendError> {
    let data = match event {
        ListenEvent::Snapshot { documents } => json!({
            "documents": documents.iter().map(DocumentOut::from).collect::<Vec<_>>(),
        }),
        ListenEvent::Changes { changes } => json!({
            "changes": changes.iter().map(|c| json!({
                "type": c.kind.name(),
                "document": DocumentOut::from(&c.document),
                "old_index": c.old_index,
                "new_index": c.new_index,
            })).collect::<Vec<_>>(),
        }),
    };
    frame(tx, id, name, &data).await
}

async fn send_error(
    tx: &mut Sender<Bytes>,
    id: &mut u64,
    e: EngineError,
) -> Result<(), http_body_util::channel::SendError> {
    let error = ApiError::from(e);
    frame(tx, id, "error", &error.body()).await
}

async fn frame(
    tx: &mut Sender<Bytes>,
    id: &mut u64,
    name: &str,
    data: &serde_json::Value,
) -> Result<(), http_body_util::channel::SendError> {
    *id += 1;
    // JSON text has no raw newline, so the data is one `data:` line.
    let text = format!("id: {id}\nevent: {name}\ndata: {data}\n\n");
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
