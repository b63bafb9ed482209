//! `/v1/docs`: set, get, update, delete, create with a generated id, list with paging.

use serde_json::json;

use crate::util::TestApp;

#[tokio::test]
async fn put_creates_then_replaces_and_get_reads_back() {
    let app = TestApp::new();
    let r = app
        .put(
            "/v1/docs/movies/m1",
            &json!({"title": "Up", "year": 2009, "rating": 8.0}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json.clone();
    assert_eq!(created["path"], "movies/m1");
    assert_eq!(
        created["data"],
        json!({"title": "Up", "year": 2009, "rating": 8.0})
    );
    let version = created["version"].as_u64().unwrap();
    assert_eq!(r.etag(), format!("\"{version}\""));
    // Integers and doubles keep their JSON form.
    assert!(r.text.contains("\"rating\":8.0"), "{}", r.text);
    assert!(created["create_time"].as_str().unwrap().ends_with('Z'));

    let r = app.get("/v1/docs/movies/m1").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json, created);
    assert_eq!(r.etag(), format!("\"{version}\""));

    let r = app
        .put("/v1/docs/movies/m1", &json!({"title": "Up!"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["data"],
        json!({"title": "Up!"}),
        "set replaces the whole document"
    );
    assert!(r.json["version"].as_u64().unwrap() > version);
    assert_eq!(r.json["create_time"], created["create_time"]);
    assert!(r.json["update_time"].as_str().unwrap() >= created["update_time"].as_str().unwrap());
}

#[tokio::test]
async fn typed_values_and_transforms_round_trip() {
    let app = TestApp::new();
    let body = json!({
        "t": {"$timestamp": "2026-01-01T00:00:00.000000Z"},
        "b": {"$bytes": "AAEC"},
        "r": {"$ref": "users/alice"},
        "g": {"$geo": [48.5, 2.25]},
        "at": {"$serverTimestamp": true},
        "n": {"$increment": 2}
    });
    let r = app.put("/v1/docs/things/t1", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let data = &r.json["data"];
    assert_eq!(
        data["t"],
        json!({"$timestamp": "2026-01-01T00:00:00.000000Z"})
    );
    assert_eq!(data["b"], json!({"$bytes": "AAEC"}));
    assert_eq!(data["r"], json!({"$ref": "users/alice"}));
    assert_eq!(data["g"], json!({"$geo": [48.5, 2.25]}));
    assert_eq!(data["n"], json!(2));
    assert_eq!(data["at"]["$timestamp"], r.json["update_time"]);
}

#[tokio::test]
async fn patch_merges_field_paths_and_404s_when_missing() {
    let app = TestApp::new();
    app.put(
        "/v1/docs/users/u1",
        &json!({"name": "Ann", "stats": {"posts": 1, "likes": 5}, "tmp": 1}),
    )
    .await;
    let r = app
        .patch(
            "/v1/docs/users/u1",
            &json!({"stats.posts": {"$increment": 2}, "stats.rank": "gold", "tmp": {"$delete": true}, "`a.b`": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["data"],
        json!({"name": "Ann", "stats": {"posts": 3, "likes": 5, "rank": "gold"}, "a.b": 1})
    );
    assert!(r.header("etag").is_some());

    let r = app.patch("/v1/docs/users/nobody", &json!({"x": 1})).await;
    let message = r.error(404, "not-found");
    assert!(message.contains("users/nobody"), "{message}");
    app.assert_missing("users/nobody").await;
}

#[tokio::test]
async fn delete_is_204_and_idempotent() {
    let app = TestApp::new();
    app.put("/v1/docs/a/1", &json!({})).await;
    let r = app.send("DELETE", "/v1/docs/a/1", &[], None).await;
    assert_eq!(r.status, 204);
    assert!(r.text.is_empty());
    app.assert_missing("a/1").await;
    let r = app.send("DELETE", "/v1/docs/a/1", &[], None).await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn get_missing_document_is_404_json() {
    let app = TestApp::new();
    let message = app
        .get("/v1/docs/movies/none")
        .await
        .error(404, "not-found");
    assert!(message.contains("movies/none"), "{message}");
}

#[tokio::test]
async fn post_creates_with_generated_id_and_location() {
    let app = TestApp::new();
    let r = app
        .post("/v1/docs/users/u1/posts", &json!({"text": "hi"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let path = r.json["path"].as_str().unwrap().to_string();
    let id = path.strip_prefix("users/u1/posts/").unwrap();
    assert_eq!(id.len(), 20);
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, format!("/v1/docs/{path}"));
    let again = app.get(&location).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json["data"], json!({"text": "hi"}));
    let other = app
        .post("/v1/docs/users/u1/posts", &json!({"text": "again"}))
        .await;
    assert_ne!(other.json["path"], r.json["path"]);
}

#[tokio::test]
async fn list_pages_through_a_collection() {
    let app = TestApp::new();
    for i in 0..5 {
        app.put(&format!("/v1/docs/items/i{i}"), &json!({"n": i}))
            .await;
    }
    // A subcollection document is not part of the parent collection's listing.
    app.put("/v1/docs/items/i0/sub/x", &json!({})).await;
    let mut seen = Vec::new();
    let mut uri = "/v1/docs/items?page_size=2".to_string();
    loop {
        let r = app.get(&uri).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for d in r.json["documents"].as_array().unwrap() {
            seen.push(d["path"].as_str().unwrap().to_string());
        }
        match r.json["next_page_token"].as_str() {
            Some(token) => uri = format!("/v1/docs/items?page_size=2&page_token={token}"),
            None => {
                assert!(r.json["next_page_token"].is_null());
                break;
            }
        }
    }
    assert_eq!(
        seen,
        ["items/i0", "items/i1", "items/i2", "items/i3", "items/i4"]
    );
    let r = app.get("/v1/docs/items").await;
    assert_eq!(r.json["documents"].as_array().unwrap().len(), 5);
    assert!(r.json["next_page_token"].is_null());
    let r = app.get("/v1/docs/items/i0/sub").await;
    assert_eq!(r.json["documents"][0]["path"], "items/i0/sub/x");
    let r = app.get("/v1/docs/empty").await;
    assert_eq!(r.json, json!({"documents": [], "next_page_token": null}));
}

#[tokio::test]
async fn list_refuses_bad_paging() {
    let app = TestApp::new();
    for (query, why) in [
        ("page_size=0", "page_size 0 is out of range"),
        ("page_size=1001", "page_size 1001 is out of range"),
        ("page_size=abc", "page_size"),
        ("page_token=%21%21", "page_token is not valid"),
        ("pagesize=3", "unknown field `pagesize`"),
    ] {
        let message = app
            .get(&format!("/v1/docs/items?{query}"))
            .await
            .error(400, "invalid-argument");
        assert!(message.contains(why), "{query}: {message}");
    }
    let message = app
        .get("/v1/docs/items/i1?page_size=3")
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("only apply to a collection"), "{message}");
}

#[tokio::test]
async fn request_ids_are_generated_or_echoed() {
    let app = TestApp::new();
    let r = app.get("/healthz").await;
    let generated = r.header("x-request-id").unwrap();
    assert!(generated.len() >= 16, "{generated}");
    let r = app
        .send(
            "GET",
            "/v1/docs/a/missing",
            &[("x-request-id", "abc-123")],
            None,
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    assert_eq!(r.status, 404);
}
