//! The Firestore crate's integration tests: the `Listen` and `Write` streams driven through their
//! public `serve` functions against a real engine over a temporary SQLite store, as a transport
//! would drive them (a request stream in, a bounded response channel out).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod watch;
mod write_stream;

use std::sync::Arc;
use std::time::Duration;

use claimdb_engine::{Engine, EngineOptions, RequestContext};
use claimdb_firestore::transactions::Transactions;
use claimdb_firestore::{Database, Status};
use serde_json::{Value as Json, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Rules for the tests: `open/*` anyone reads and writes, `closed/*` nobody reads.
pub(crate) const RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /open/{id} { allow read, write: if true; }
    match /closed/{id} { allow read: if false; allow write: if true; }
  }
}";

pub(crate) const PROJECT: &str = "p";

/// An engine deciding by [`RULES`] over a fresh store (kept while the fixture lives).
pub(crate) struct Fixture {
    pub(crate) engine: Arc<Engine>,
    pub(crate) db: Database,
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let rules = claimdb_rules::Ruleset::compile(RULES).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(claimdb_store::SqliteStore::open(dir.path()).unwrap());
        let engine = Arc::new(Engine::new(store, EngineOptions::new(rules, "test")));
        Fixture {
            engine,
            db: Database::new(PROJECT).unwrap(),
            _dir: dir,
        }
    }

    pub(crate) fn name(&self, path: &str) -> String {
        format!("projects/{PROJECT}/databases/(default)/documents/{path}")
    }

    /// Commits `writes` (proto3 JSON `Write`s) as the REST `:commit` does.
    pub(crate) async fn commit(&self, writes: Json) -> Json {
        let Json::Object(body) = json!({ "writes": writes }) else {
            unreachable!()
        };
        claimdb_firestore::commit::commit(
            &self.engine,
            &RequestContext::new("test"),
            &self.db,
            &Transactions::default(),
            &body,
        )
        .await
        .unwrap()
    }

    /// Sets `path` to `{n: n}` (plus `owner` when given).
    pub(crate) async fn set(&self, path: &str, n: i64) {
        self.commit(json!([{ "update": {
            "name": self.name(path),
            "fields": { "n": { "integerValue": n.to_string() } },
        }}]))
        .await;
    }

    pub(crate) async fn delete(&self, path: &str) {
        self.commit(json!([{ "delete": self.name(path) }])).await;
    }
}

/// One stream as its client sees it.
pub(crate) struct Client {
    requests: mpsc::Sender<Result<Json, Status>>,
    responses: mpsc::Receiver<Result<Json, Status>>,
}

/// How long a test waits for a response that must come.
const WAIT: Duration = Duration::from_secs(10);

impl Client {
    /// Starts a stream served by `serve` (`watch::serve` or `write_stream::serve`) with a
    /// response buffer of `buffer`.
    pub(crate) fn start<F, Fut>(buffer: usize, serve: F) -> Self
    where
        F: FnOnce(ReceiverStream<Result<Json, Status>>, mpsc::Sender<Result<Json, Status>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (requests, incoming) = mpsc::channel(16);
        let (out, responses) = mpsc::channel(buffer);
        tokio::spawn(serve(ReceiverStream::new(incoming), out));
        Client {
            requests,
            responses,
        }
    }

    pub(crate) fn listen(f: &Fixture, ctx: RequestContext) -> Self {
        Self::listen_buffered(f, ctx, 64)
    }

    pub(crate) fn listen_buffered(f: &Fixture, ctx: RequestContext, buffer: usize) -> Self {
        let (engine, db) = (f.engine.clone(), f.db.clone());
        Self::start(buffer, move |requests, out| async move {
            let _ = claimdb_firestore::watch::serve(engine, ctx, db, requests, out).await;
        })
    }

    pub(crate) fn write(f: &Fixture, ctx: RequestContext) -> Self {
        let (engine, db) = (f.engine.clone(), f.db.clone());
        Self::start(16, move |requests, out| async move {
            let _ = claimdb_firestore::write_stream::serve(engine, ctx, db, requests, out).await;
        })
    }

    pub(crate) async fn send(&self, request: Json) {
        self.requests.send(Ok(request)).await.unwrap();
    }

    /// The next response, which must come within [`WAIT`].
    pub(crate) async fn next(&mut self) -> Result<Json, Status> {
        tokio::time::timeout(WAIT, self.responses.recv())
            .await
            .expect("a response within the wait")
            .expect("the stream is still open")
    }

    pub(crate) async fn ok(&mut self) -> Json {
        match self.next().await {
            Ok(json) => json,
            Err(status) => panic!("the stream failed: {status:?}"),
        }
    }

    /// The status the stream ends with; then the stream is closed.
    pub(crate) async fn failure(&mut self) -> Status {
        let status = self.next().await.expect_err("the stream fails");
        let end = tokio::time::timeout(WAIT, self.responses.recv()).await;
        assert!(
            matches!(end, Ok(None)),
            "nothing after the failure: {end:?}"
        );
        status
    }

    /// Asserts nothing arrives for `ms` milliseconds.
    pub(crate) async fn quiet(&mut self, ms: u64) {
        if let Ok(got) =
            tokio::time::timeout(Duration::from_millis(ms), self.responses.recv()).await
        {
            panic!("expected nothing, got {got:?}");
        }
    }

    /// Half-closes the requests; the stream ends.
    pub(crate) async fn close(mut self) {
        drop(self.requests);
        let end = tokio::time::timeout(WAIT, self.responses.recv()).await;
        assert!(matches!(end, Ok(None)), "the stream ends: {end:?}");
    }
}
