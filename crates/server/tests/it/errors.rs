//! Every bad input gets 4xx in the JSON error shape with a message naming the problem — axum's
//! own rejections included — and nothing is written.

use axum::body::Body;
use axum::http::Request;
use claimdb_server::ServerConfig;
use serde_json::{Value as Json, json};

use crate::util::TestApp;

fn nested(depth: usize) -> Json {
    let mut v = json!(1);
    for _ in 0..depth {
        v = json!({ "a": v });
    }
    v
}

#[tokio::test]
async fn bad_paths_are_refused_naming_the_problem() {
    let app = TestApp::new();
    let long = format!("c/{}", "x".repeat(1_500));
    let cases: Vec<(&str, String, &str)> = vec![
        ("PUT", "movies".into(), "names a collection"),
        ("PATCH", "movies".into(), "names a collection"),
        ("DELETE", "movies".into(), "names a collection"),
        ("POST", "movies/m1".into(), "names a document"),
        ("PUT", "movies//m1/x".into(), "empty segment"),
        ("PUT", "movies/m1/".into(), "empty segment"),
        ("GET", "movies//m1".into(), "empty segment"),
        ("PUT", "movies/..".into(), "\"..\" is not allowed"),
        ("PUT", "movies/.".into(), "\".\" is not allowed"),
        ("PUT", "./x".into(), "\".\" is not allowed"),
        ("PUT", long.clone(), "limit is 1500"),
        ("GET", long.clone(), "limit is 1500"),
        ("PUT", "movies/__x__".into(), "reserved"),
    ];
    for (method, path, why) in cases {
        let body = (method != "GET" && method != "DELETE").then(|| json!({"a": 1}));
        let r = app
            .send(method, &format!("/v1/docs/{path}"), &[], body.as_ref())
            .await;
        let message = r.error(400, "invalid-argument");
        assert!(message.contains(why), "{method} {path}: {message}");
    }
    assert_eq!(app.count("movies").await, 0, "nothing may be written");
}

#[tokio::test]
async fn bad_documents_are_refused_and_nothing_is_written() {
    let app = TestApp::new();
    let long_field = "f".repeat(1_501);
    let cases = vec![
        (json!({ long_field.clone(): 1 }), "limit is 1500"),
        (json!({"s": "x".repeat(1_048_576)}), "limit is 1048576"),
        (nested(21), "deeper than 20"),
        (json!({"$x": 1, "y": 2}), "starts with '$'"),
        (json!({"a": {"$nope": 1}}), "unknown typed value"),
        (json!({"t": {"$timestamp": "soon"}}), "RFC 3339"),
        (json!({"a": {"$delete": true}}), "only allowed in an update"),
        (json!([1, 2]), "must be a JSON object"),
        (json!({"i": 18446744073709551615u64}), "64-bit"),
    ];
    for (body, why) in cases {
        for method in ["PUT", "POST"] {
            let uri = if method == "PUT" {
                "/v1/docs/docs/d1"
            } else {
                "/v1/docs/docs"
            };
            let r = app.send(method, uri, &[], Some(&body)).await;
            let message = r.error(400, "invalid-argument");
            assert!(message.contains(why), "{method}: {message}");
        }
    }
    app.assert_missing("docs/d1").await;
    assert_eq!(app.count("docs").await, 0);
    // Within the limits is fine.
    assert_eq!(app.put("/v1/docs/docs/d1", &nested(20)).await.status, 201);
}

#[tokio::test]
async fn bad_updates_are_refused_and_the_document_is_unchanged() {
    let app = TestApp::new();
    let before = app
        .put("/v1/docs/docs/d1", &json!({"a": {"b": 1}}))
        .await
        .json;
    let long_field = "f".repeat(1_501);
    for (body, why) in [
        (json!({"a.": 1}), "trailing '.'"),
        (json!({"a": 1, "a.b": 2}), "overlap"),
        (json!({"$a": 1}), "reserved"),
        (json!({ long_field: 1 }), "limit is 1500"),
        (json!({"big": "x".repeat(1_048_576)}), "limit is 1048576"),
        (json!({"deep": nested(20)}), "deeper than 20"),
    ] {
        let message = app
            .patch("/v1/docs/docs/d1", &body)
            .await
            .error(400, "invalid-argument");
        assert!(message.contains(why), "{body:.80}: {message}");
    }
    assert_eq!(app.get("/v1/docs/docs/d1").await.json, before);
}

#[tokio::test]
async fn axum_rejections_come_back_as_json_errors() {
    let app = TestApp::new();
    // Malformed JSON.
    let request = Request::put("/v1/docs/a/1")
        .header("content-type", "application/json")
        .body(Body::from("{\"a\": "))
        .unwrap();
    let message = app.raw(request).await.error(400, "invalid-argument");
    assert!(message.contains("not valid JSON"), "{message}");
    // Wrong content type.
    let request = Request::put("/v1/docs/a/1")
        .header("content-type", "text/plain")
        .body(Body::from("{\"a\": 1}"))
        .unwrap();
    let message = app.raw(request).await.error(415, "invalid-argument");
    assert!(message.contains("application/json"), "{message}");
    // No content type at all.
    let request = Request::put("/v1/docs/a/1")
        .body(Body::from("{\"a\": 1}"))
        .unwrap();
    app.raw(request).await.error(415, "invalid-argument");
    // Missing body.
    let message = app
        .send("PUT", "/v1/docs/a/1", &[], None)
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("empty"), "{message}");
    app.assert_missing("a/1").await;
    // Unknown route, and the docs root with no path.
    for uri in ["/nope", "/v1/docs", "/v1/docs/", "/v2/docs/a/1"] {
        let message = app.get(uri).await.error(404, "not-found");
        assert!(message.contains("no route"), "{uri}: {message}");
    }
    // Wrong method.
    let r = app.send("DELETE", "/v1/query", &[], None).await;
    let message = r.error(405, "unimplemented");
    assert!(message.contains("DELETE"), "{message}");
    assert_eq!(r.header("allow"), Some("POST"));
    app.send("PUT", "/healthz", &[], None)
        .await
        .error(405, "unimplemented");
    // Wrong JSON shape on a typed body.
    let message = app
        .post("/v1/query", &json!({"collection": 5}))
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("invalid type"), "{message}");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_json() {
    let app = TestApp::with_config(ServerConfig {
        max_body_bytes: 1_024,
        ..ServerConfig::default()
    });
    let big = json!({"s": "x".repeat(2_000)});
    let bytes = serde_json::to_vec(&big).unwrap();
    // With Content-Length (refused before the body is read) …
    let request = Request::put("/v1/docs/a/1")
        .header("content-type", "application/json")
        .header("content-length", bytes.len().to_string())
        .body(Body::from(bytes.clone()))
        .unwrap();
    let r = app.raw(request).await;
    let message = r.error(413, "invalid-argument");
    assert!(message.contains("limit of 1024 bytes"), "{message}");
    assert_eq!(r.json["error"]["details"]["limit_bytes"], 1024);
    // … and without (refused while reading it).
    let request = Request::put("/v1/docs/a/1")
        .header("content-type", "application/json")
        .body(Body::from(bytes))
        .unwrap();
    app.raw(request).await.error(413, "invalid-argument");
    // Same for the other body-taking routes.
    let writes: Vec<Json> = (0..40)
        .map(|i| json!({"op": "delete", "path": format!("a/{i}")}))
        .collect();
    app.post("/v1/batch", &json!({ "writes": writes }))
        .await
        .error(413, "invalid-argument");
    app.assert_missing("a/1").await;
    // A small body is fine.
    assert_eq!(
        app.put("/v1/docs/a/1", &json!({"s": "x"})).await.status,
        201
    );
    // Under Firestore's paths the refusal is a `google.rpc.Status`, with or without a length.
    let body = serde_json::to_vec(&big).unwrap();
    let commit = "/v1/projects/demo-claimdb/databases/(default)/documents:commit";
    for declared in [true, false] {
        let mut request = Request::post(commit).header("content-type", "text/plain");
        if declared {
            request = request.header("content-length", body.len().to_string());
        }
        let r = app
            .raw(request.body(Body::from(body.clone())).unwrap())
            .await;
        assert_eq!(r.status, 413, "{}", r.json);
        assert_eq!(r.json["error"]["code"], 413, "{}", r.json);
        assert_eq!(r.json["error"]["status"], "INVALID_ARGUMENT", "{}", r.json);
    }
}

#[tokio::test]
async fn a_closed_store_reports_unavailable() {
    use claimdb_store::Store;
    let app = TestApp::new();
    app.store.close().await.unwrap();
    let r = app.put("/v1/docs/a/1", &json!({})).await;
    r.error(503, "unavailable");
    app.get("/readyz").await.error(503, "unavailable");
    assert_eq!(app.get("/healthz").await.status, 200);
}
