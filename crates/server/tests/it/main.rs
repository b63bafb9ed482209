//! Integration tests of the HTTP API: the real router over a real `SqliteStore` in a temporary
//! directory, driven in-process with `tower::ServiceExt::oneshot` (no sockets) — except the
//! graceful-shutdown test and the gRPC tests, which serve on 127.0.0.1:0 through `run`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batch;
mod conditional;
mod console;
mod console_api;
mod docs;
mod errors;
mod grpc;
mod grpc_streams;
mod health;
mod query;
mod util;
