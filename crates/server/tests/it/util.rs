//! A test app over a fresh store, and a request helper that returns status, headers and JSON.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use claimdb_engine::Engine;
use claimdb_server::{AppState, ServerConfig, app};
use claimdb_store::{SqliteStore, Store};
use http_body_util::BodyExt;
use serde_json::Value as Json;
use tower::ServiceExt;

pub(crate) struct TestApp {
    pub router: Router,
    pub store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

pub(crate) struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Json,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the standard error shape, status and code; returns the message.
    #[track_caller]
    pub(crate) fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.text
        );
        let error = &self.json["error"];
        assert_eq!(error["code"], code, "{}", self.text);
        assert!(error["details"].is_object(), "{}", self.text);
        error["message"].as_str().expect("message").to_string()
    }

    pub(crate) fn etag(&self) -> String {
        self.header("etag").expect("etag").to_string()
    }
}

impl TestApp {
    pub(crate) fn new() -> Self {
        Self::with_config(ServerConfig::default())
    }

    pub(crate) fn with_config(config: ServerConfig) -> Self {
        Self::with_options(open_rules(), config)
    }

    /// An app whose engine is built with `options` (an admin key, other rules, …).
    pub(crate) fn with_options(
        options: claimdb_engine::EngineOptions,
        config: ServerConfig,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let engine = Arc::new(Engine::new(store.clone() as Arc<dyn Store>, options));
        TestApp {
            router: app(AppState::new(engine, config)),
            store,
            _dir: dir,
        }
    }

    pub(crate) async fn raw(&self, request: Request<Body>) -> Resp {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
        Resp {
            status,
            headers,
            text,
            json,
        }
    }

    pub(crate) async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Resp {
        let mut builder = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let body = match body {
            Some(json) => {
                builder = builder.header("content-type", "application/json");
                Body::from(serde_json::to_vec(json).unwrap())
            }
            None => Body::empty(),
        };
        self.raw(builder.body(body).unwrap()).await
    }

    pub(crate) async fn get(&self, uri: &str) -> Resp {
        self.send("GET", uri, &[], None).await
    }

    pub(crate) async fn put(&self, uri: &str, body: &Json) -> Resp {
        self.send("PUT", uri, &[], Some(body)).await
    }

    pub(crate) async fn post(&self, uri: &str, body: &Json) -> Resp {
        self.send("POST", uri, &[], Some(body)).await
    }

    pub(crate) async fn patch(&self, uri: &str, body: &Json) -> Resp {
        self.send("PATCH", uri, &[], Some(body)).await
    }

    /// Asserts that the document at `path` does not exist.
    pub(crate) async fn assert_missing(&self, path: &str) {
        let r = self.get(&format!("/v1/docs/{path}")).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{path} should not exist: {}",
            r.text
        );
    }

    /// The number of documents in a collection (first page).
    pub(crate) async fn count(&self, collection: &str) -> usize {
        let r = self
            .get(&format!("/v1/docs/{collection}?page_size=1000"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json["documents"].as_array().unwrap().len()
    }
}

/// Rules that allow every request: the document API tests are about storage semantics.
pub(crate) fn open_rules() -> claimdb_engine::EngineOptions {
    let rules = claimdb_rules::Ruleset::compile(
        "rules_version = '2';\nservice cloud.firestore { match /databases/{db}/documents { match /{doc=**} { allow read, write: if true; } } }",
    )
    .unwrap();
    claimdb_engine::EngineOptions::new(rules, "test (open)")
}
