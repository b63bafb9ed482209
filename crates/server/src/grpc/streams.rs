//! `Listen` and `Write`, the bidirectional streams, on the gRPC service: the database is the one
//! the first request's `database` names (the `google-cloud-resource-prefix` metadata's when it
//! names none; in emulator mode each project its own), and the stream is then served by
//! `claimdb_firestore::watch` / `write_stream` — transport-free logic over proto3 JSON — in a
//! task of its own, whose responses wait in a bounded channel: a client that reads slowly holds
//! up only its own stream. A client that goes away closes the channel, which ends the task and
//! drops its listeners.

use std::time::Instant;

use claimdb_engine::RequestContext;
use claimdb_firestore::{Code, Status, rpc};
use serde_json::Value as Json;
use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::tokio_stream::{self, StreamExt as _};

use super::JsonStream;
use crate::AppState;

/// Responses a stream may hold unsent before its logic waits for the client.
const BUFFER: usize = 32;

/// Which stream.
#[derive(Clone, Copy)]
enum Kind {
    Listen,
    Write,
}

/// `Listen`: targets followed by the engine's realtime listeners.
pub(super) fn listen(
    state: AppState,
    ctx: RequestContext,
    prefix: Option<String>,
    requests: JsonStream,
) -> Result<JsonStream, Status> {
    Ok(spawn(Kind::Listen, state, ctx, prefix, requests))
}

/// `Write`: batches of writes, each committed atomically.
pub(super) fn write(
    state: AppState,
    ctx: RequestContext,
    prefix: Option<String>,
    requests: JsonStream,
) -> Result<JsonStream, Status> {
    Ok(spawn(Kind::Write, state, ctx, prefix, requests))
}

fn spawn(
    kind: Kind,
    state: AppState,
    ctx: RequestContext,
    prefix: Option<String>,
    mut requests: JsonStream,
) -> JsonStream {
    let (out, responses) = mpsc::channel(BUFFER);
    tokio::spawn(async move {
        let start = Instant::now();
        let first = tokio::select! {
            first = requests.next() => first,
            // The client went away before its first request.
            () = out.closed() => return,
        };
        let first = match first {
            Some(Ok(first)) => first,
            // Closed before a first request: nothing to serve.
            None => return,
            Some(Err(status)) => {
                let _ = out.send(Err(status)).await;
                return;
            }
        };
        let project = match database(&first, prefix.as_deref()) {
            Ok((project, database)) => crate::firestore::project(&state, &project, &database).await,
            Err(status) => Err(status),
        };
        let project = match project {
            Ok(project) => project,
            Err(status) => {
                observe(kind, Some(status.code), start);
                let _ = out.send(Err(status)).await;
                return;
            }
        };
        let requests = tokio_stream::once(Ok(first)).chain(requests);
        let (engine, db) = (project.engine.clone(), project.db.clone());
        let ended = match kind {
            Kind::Listen => claimdb_firestore::watch::serve(engine, ctx, db, requests, out).await,
            Kind::Write => {
                claimdb_firestore::write_stream::serve(engine, ctx, db, requests, out).await
            }
        };
        observe(kind, ended.err().map(|s| s.code), start);
    });
    Box::pin(ReceiverStream::new(responses))
}

/// The project and database a stream works on: its first request's `database`, or the
/// metadata's resource prefix.
fn database(first: &Json, prefix: Option<&str>) -> Result<(String, String), Status> {
    let name = first
        .get("database")
        .and_then(Json::as_str)
        .filter(|name| !name.is_empty())
        .or(prefix)
        .ok_or_else(|| {
            Status::invalid("the first request of a stream names its database (database)")
        })?;
    let (project, database) = rpc::database_of(name)?;
    Ok((project.to_owned(), database.to_owned()))
}

/// Counts a finished stream under its method's path, as unary calls are counted: `OK` when the
/// client half-closed it, else the code it ended with (`CANCELLED` when the client went away).
fn observe(kind: Kind, code: Option<Code>, start: Instant) {
    let method = match kind {
        Kind::Listen => "Listen",
        Kind::Write => "Write",
    };
    let code = code.map_or(tonic::Code::Ok, |c| tonic::Code::from_i32(c as i32));
    super::observe(method, code, start);
}
