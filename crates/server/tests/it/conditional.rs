//! ETags and conditional writes: `If-Match` (tags, weak tags, lists, `*`), `If-None-Match: *`,
//! and racing writers with the same `If-Match` (exactly one wins; no lost update).

use std::sync::Arc;

use serde_json::json;

use crate::util::TestApp;

#[tokio::test]
async fn if_match_on_put() {
    let app = TestApp::new();
    let v1 = app.put("/v1/docs/a/1", &json!({"n": 1})).await.etag();
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/1",
            &[("if-match", &v1)],
            Some(&json!({"n": 2})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v2 = r.etag();
    // The old tag is stale now.
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/1",
            &[("if-match", &v1)],
            Some(&json!({"n": 3})),
        )
        .await;
    let message = r.error(412, "failed-precondition");
    assert!(message.contains("version"), "{message}");
    assert_eq!(app.get("/v1/docs/a/1").await.json["data"], json!({"n": 2}));
    // Weak tags, lists and * also work.
    let weak = format!("W/{v2}");
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/1",
            &[("if-match", &weak)],
            Some(&json!({"n": 4})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v4 = r.etag();
    let list = format!("\"999999\", {v4}");
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/1",
            &[("if-match", &list)],
            Some(&json!({"n": 5})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/1",
            &[("if-match", "\"1\", \"2\"")],
            Some(&json!({"n": 6})),
        )
        .await;
    r.error(412, "failed-precondition");
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/1",
            &[("if-match", "*")],
            Some(&json!({"n": 7})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // * on a missing document fails: If-Match never creates.
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/2",
            &[("if-match", "*")],
            Some(&json!({})),
        )
        .await;
    r.error(412, "failed-precondition");
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/2",
            &[("if-match", &v4)],
            Some(&json!({})),
        )
        .await;
    r.error(412, "failed-precondition");
    app.assert_missing("a/2").await;
    // Malformed tags are a client error.
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/1",
            &[("if-match", "abc")],
            Some(&json!({})),
        )
        .await;
    let message = r.error(400, "invalid-argument");
    assert!(message.contains("not an entity tag"), "{message}");
    assert_eq!(app.get("/v1/docs/a/1").await.json["data"], json!({"n": 7}));
}

#[tokio::test]
async fn if_none_match_star_is_create_only() {
    let app = TestApp::new();
    let star = [("if-none-match", "*")];
    let r = app
        .send("PUT", "/v1/docs/a/1", &star, Some(&json!({"n": 1})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .send("PUT", "/v1/docs/a/1", &star, Some(&json!({"n": 2})))
        .await;
    let message = r.error(412, "failed-precondition");
    assert!(message.contains("already exists"), "{message}");
    assert_eq!(app.get("/v1/docs/a/1").await.json["data"], json!({"n": 1}));
    let r = app
        .send(
            "PUT",
            "/v1/docs/a/1",
            &[("if-none-match", "\"3\"")],
            Some(&json!({})),
        )
        .await;
    r.error(400, "invalid-argument");
    let both = [("if-none-match", "*"), ("if-match", "*")];
    let message = app
        .send("PUT", "/v1/docs/a/1", &both, Some(&json!({})))
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("not both"), "{message}");
}

#[tokio::test]
async fn if_none_match_on_get_is_304_when_unchanged() {
    let app = TestApp::new();
    let v1 = app.put("/v1/docs/a/1", &json!({"n": 1})).await.etag();
    let r = app
        .send("GET", "/v1/docs/a/1", &[("if-none-match", &v1)], None)
        .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.etag(), v1);
    assert!(r.text.is_empty());
    app.put("/v1/docs/a/1", &json!({"n": 2})).await;
    let r = app
        .send("GET", "/v1/docs/a/1", &[("if-none-match", &v1)], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["data"], json!({"n": 2}));
}

#[tokio::test]
async fn if_match_on_patch_and_delete() {
    let app = TestApp::new();
    let v1 = app.put("/v1/docs/a/1", &json!({"n": 1})).await.etag();
    let r = app
        .send(
            "PATCH",
            "/v1/docs/a/1",
            &[("if-match", &v1)],
            Some(&json!({"m": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v2 = r.etag();
    let r = app
        .send(
            "PATCH",
            "/v1/docs/a/1",
            &[("if-match", &v1)],
            Some(&json!({"m": 2})),
        )
        .await;
    r.error(412, "failed-precondition");
    let r = app
        .send(
            "PATCH",
            "/v1/docs/a/9",
            &[("if-match", &v1)],
            Some(&json!({"m": 2})),
        )
        .await;
    r.error(412, "failed-precondition");
    app.assert_missing("a/9").await;
    let r = app
        .send("DELETE", "/v1/docs/a/1", &[("if-match", &v1)], None)
        .await;
    r.error(412, "failed-precondition");
    assert_eq!(
        app.get("/v1/docs/a/1").await.json["data"],
        json!({"n": 1, "m": 1})
    );
    let r = app
        .send("DELETE", "/v1/docs/a/1", &[("if-match", &v2)], None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    app.assert_missing("a/1").await;
    let r = app
        .send("DELETE", "/v1/docs/a/1", &[("if-match", "*")], None)
        .await;
    r.error(412, "failed-precondition");
}

/// Regression guard for lost updates: writers that all read version v and race `PUT` with
/// `If-Match: "v"` must produce exactly one success, and the stored document must be the
/// winner's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_if_match_writers_have_exactly_one_winner() {
    const WRITERS: usize = 24;
    let app = Arc::new(TestApp::new());
    let etag = app
        .put("/v1/docs/race/doc", &json!({"writer": null}))
        .await
        .etag();
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let (app, etag, barrier) = (app.clone(), etag.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let r = app
                .send(
                    "PUT",
                    "/v1/docs/race/doc",
                    &[("if-match", &etag)],
                    Some(&json!({"writer": i})),
                )
                .await;
            (i, r.status.as_u16(), r.json)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (i, status, body) = task.await.unwrap();
        match status {
            200 => winners.push((i, body)),
            412 => assert_eq!(body["error"]["code"], "failed-precondition"),
            other => panic!("writer {i}: unexpected {other}: {body}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer may win: {winners:?}");
    let (winner, body) = &winners[0];
    let stored = app.get("/v1/docs/race/doc").await;
    assert_eq!(stored.json["data"], json!({"writer": winner}));
    assert_eq!(stored.json["version"], body["version"]);
}
