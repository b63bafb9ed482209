//! `POST /v1/batch`: atomic writes, per-write results, and failures that apply nothing and name
//! the failing write in `details.write_index`.

use serde_json::{Value as Json, json};

use crate::util::TestApp;

#[tokio::test]
async fn applies_every_write_and_reports_results() {
    let app = TestApp::new();
    let v = app.put("/v1/docs/a/upd", &json!({"n": 1})).await.json["version"]
        .as_u64()
        .unwrap();
    app.put("/v1/docs/a/del", &json!({})).await;
    let r = app
        .post(
            "/v1/batch",
            &json!({"writes": [
                {"op": "create", "path": "a/new", "data": {"x": 1}},
                {"op": "set", "path": "a/set", "data": {"y": {"$increment": 2}}, "if_none_match": "*"},
                {"op": "update", "path": "a/upd", "data": {"m.k": true}, "if_match": format!("\"{v}\"")},
                {"op": "delete", "path": "a/del", "if_match": "*"}
            ]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.json["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["path"], "a/new");
    let commit_version = results[0]["version"].as_u64().unwrap();
    assert!(commit_version > v);
    assert_eq!(results[0]["update_time"], r.json["commit_time"]);
    assert_eq!(
        results[3],
        json!({"path": "a/del", "version": null, "update_time": null})
    );
    assert_eq!(
        app.get("/v1/docs/a/new").await.json["data"],
        json!({"x": 1})
    );
    assert_eq!(
        app.get("/v1/docs/a/set").await.json["data"],
        json!({"y": 2})
    );
    assert_eq!(
        app.get("/v1/docs/a/upd").await.json["data"],
        json!({"n": 1, "m": {"k": true}})
    );
    app.assert_missing("a/del").await;
}

async fn assert_nothing_applied(app: &TestApp, before: &Json) {
    assert_eq!(&app.get("/v1/docs/a/1").await.json, before);
    app.assert_missing("a/2").await;
    app.assert_missing("a/3").await;
}

#[tokio::test]
async fn a_failing_write_applies_nothing_and_is_named() {
    let app = TestApp::new();
    let before = app.put("/v1/docs/a/1", &json!({"n": 1})).await.json;
    let set2 = json!({"op": "set", "path": "a/2", "data": {"n": 2}});
    let upd1 = json!({"op": "update", "path": "a/1", "data": {"n": 9}});
    let cases: Vec<(Json, u16, &str, usize, &str)> = vec![
        (
            json!({"op": "create", "path": "a/1", "data": {}}),
            409,
            "already-exists",
            2,
            "already exists",
        ),
        (
            json!({"op": "update", "path": "a/3", "data": {"x": 1}}),
            404,
            "not-found",
            2,
            "a/3",
        ),
        (
            json!({"op": "set", "path": "a/1", "data": {}, "if_match": "\"1\""}),
            412,
            "failed-precondition",
            2,
            "version",
        ),
        (
            json!({"op": "set", "path": "a/1", "data": {}, "if_none_match": "*"}),
            412,
            "failed-precondition",
            2,
            "already exists",
        ),
        (
            json!({"op": "set", "path": "a/3", "data": {}, "if_match": "*"}),
            412,
            "failed-precondition",
            2,
            "does not exist",
        ),
        (
            json!({"op": "set", "path": "a", "data": {}}),
            400,
            "invalid-argument",
            2,
            "names a collection",
        ),
        (
            json!({"op": "set", "path": "a/3", "data": {"$x": 1}}),
            400,
            "invalid-argument",
            2,
            "starts with '$'",
        ),
        (
            json!({"op": "set", "path": "a/3", "data": {"s": "x".repeat(1_048_576)}}),
            400,
            "invalid-argument",
            2,
            "limit is 1048576",
        ),
        (
            json!({"op": "merge", "path": "a/3"}),
            400,
            "invalid-argument",
            2,
            "unknown variant `merge`",
        ),
        (
            json!({"op": "set", "path": "a/3"}),
            400,
            "invalid-argument",
            2,
            "needs data",
        ),
    ];
    for (bad, status, code, index, why) in cases {
        let r = app
            .post("/v1/batch", &json!({"writes": [set2, upd1, bad]}))
            .await;
        let message = r.error(status, code);
        assert!(message.contains(why), "{message}");
        assert_eq!(
            r.json["error"]["details"]["write_index"], index,
            "{}",
            r.text
        );
        assert_nothing_applied(&app, &before).await;
    }
    // A later write that conflicts with an earlier write of the same batch.
    let r = app
        .post(
            "/v1/batch",
            &json!({"writes": [{"op": "delete", "path": "a/1"}, {"op": "update", "path": "a/1", "data": {"x": 1}}]}),
        )
        .await;
    r.error(404, "not-found");
    assert_eq!(r.json["error"]["details"]["write_index"], 1);
    assert_nothing_applied(&app, &before).await;
}

#[tokio::test]
async fn batch_shape_and_size_limits() {
    let app = TestApp::new();
    let many: Vec<Json> = (0..501)
        .map(|i| json!({"op": "set", "path": format!("a/{i}"), "data": {}}))
        .collect();
    let message = app
        .post("/v1/batch", &json!({ "writes": many }))
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("limit is 500"), "{message}");
    app.assert_missing("a/0").await;
    let message = app
        .post("/v1/batch", &json!({"writes": []}))
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("at least one write"), "{message}");
    let message = app
        .post("/v1/batch", &json!({"writes": [], "atomic": true}))
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("unknown field `atomic`"), "{message}");
    let message = app
        .post("/v1/batch", &json!({}))
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("missing field `writes`"), "{message}");
    let exactly: Vec<Json> = (0..500)
        .map(|i| json!({"op": "set", "path": format!("a/{i}"), "data": {}}))
        .collect();
    let r = app.post("/v1/batch", &json!({ "writes": exactly })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(app.count("a").await, 500);
}
