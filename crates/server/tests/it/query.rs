//! `POST /v1/query`: filters, order, cursors, offset/limit, collection groups; bad queries get
//! 400 naming the problem.

use serde_json::{Value as Json, json};

use crate::util::TestApp;

async fn seeded() -> TestApp {
    let app = TestApp::new();
    for (id, title, year, genre) in [
        ("m1", "Heat", 1995, "crime"),
        ("m2", "Up", 2009, "animation"),
        ("m3", "Her", 2013, "drama"),
        ("m4", "Drive", 2011, "drama"),
        ("m5", "Amour", 2012, "drama"),
    ] {
        let r = app
            .put(
                &format!("/v1/docs/movies/{id}"),
                &json!({"title": title, "year": year, "genre": genre}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    app.put("/v1/docs/movies/m3/reviews/r1", &json!({"stars": 5}))
        .await;
    app.put("/v1/docs/movies/m4/reviews/r1", &json!({"stars": 3}))
        .await;
    app.put("/v1/docs/books/b1/reviews/r1", &json!({"stars": 4}))
        .await;
    app
}

fn titles(r: &Json) -> Vec<String> {
    r["documents"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|d| d["data"]["title"].as_str().unwrap_or("").to_string())
        .collect()
}

fn paths(r: &Json) -> Vec<String> {
    r["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn filters_order_and_limits() {
    let app = seeded().await;
    let r = app
        .post(
            "/v1/query",
            &json!({"collection": "movies", "where": [["year", ">=", 2000], ["genre", "==", "drama"]],
                    "order_by": [["year", "desc"]]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(titles(&r.json), ["Her", "Amour", "Drive"]);
    let doc = &r.json["documents"][0];
    assert_eq!(doc["path"], "movies/m3");
    assert!(doc["version"].is_u64() && doc["create_time"].is_string());

    let r = app
        .post(
            "/v1/query",
            &json!({"collection": "movies", "order_by": ["title"], "offset": 1, "limit": 2}),
        )
        .await;
    assert_eq!(titles(&r.json), ["Drive", "Heat"]);

    let r = app
        .post(
            "/v1/query",
            &json!({"collection": "movies", "where": [["genre", "in", ["crime", "animation"]]]}),
        )
        .await;
    assert_eq!(paths(&r.json), ["movies/m1", "movies/m2"]);
}

#[tokio::test]
async fn cursors() {
    let app = seeded().await;
    let q = |extra: Json| {
        let mut body = json!({"collection": "movies", "order_by": ["year"]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let r = app
        .post("/v1/query", &q(json!({"start_after": [2009]})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(titles(&r.json), ["Drive", "Amour", "Her"]);
    let r = app
        .post(
            "/v1/query",
            &q(json!({"start_at": [2009], "end_before": [2012]})),
        )
        .await;
    assert_eq!(titles(&r.json), ["Up", "Drive"]);
    let r = app.post("/v1/query", &q(json!({"end_at": [2011]}))).await;
    assert_eq!(titles(&r.json), ["Heat", "Up", "Drive"]);
}

#[tokio::test]
async fn collection_groups() {
    let app = seeded().await;
    let r = app
        .post("/v1/query", &json!({"collection_group": "reviews"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["documents"].as_array().unwrap().len(), 3);
    let r = app
        .post(
            "/v1/query",
            &json!({"collection_group": "reviews", "parent": "movies/m3"}),
        )
        .await;
    assert_eq!(paths(&r.json), ["movies/m3/reviews/r1"]);
    let r = app
        .post("/v1/query", &json!({"collection_group": "reviews", "where": [["stars", ">", 3]], "order_by": [["stars", "desc"]]}))
        .await;
    assert_eq!(
        paths(&r.json),
        ["movies/m3/reviews/r1", "books/b1/reviews/r1"]
    );
}

#[tokio::test]
async fn bad_queries_are_400_naming_the_problem() {
    let app = seeded().await;
    for (body, why) in [
        (
            json!({"collection": "movies", "where": [["year", "~=", 1]]}),
            "unknown operator \"~=\"",
        ),
        (
            json!({"collection": "movies", "where": [["year", ">"]]}),
            "where[0] must be [field, operator, value]",
        ),
        (
            json!({"collection": "movies", "where": ["year"]}),
            "where[0] must be",
        ),
        (
            json!({"collection": "movies", "where": {"year": 1}}),
            "invalid type",
        ),
        (
            json!({"collection": "movies", "order_by": [["year", "sideways"]]}),
            "direction \"sideways\"",
        ),
        (
            json!({"collection": "movies", "order_by": [3]}),
            "order_by[0] must be",
        ),
        (
            json!({"collection": "movies", "limit": -1}),
            "invalid value",
        ),
        (
            json!({"collection": "movies", "colection": 1}),
            "unknown field `colection`",
        ),
        (json!({"collection": "movies/m1"}), "names a document"),
        (
            json!({"collection": "movies", "collection_group": "x"}),
            "not both",
        ),
        (json!({"where": []}), "needs collection or collection_group"),
        (
            json!({"collection_group": "reviews", "parent": "movies"}),
            "parent",
        ),
        (
            json!({"collection": "movies", "order_by": ["year"], "start_at": [2000, "m1", 3]}),
            "cursor has 3 values",
        ),
        (
            json!({"collection": "movies", "start_at": [5]}),
            "__name__ must be a document reference",
        ),
        (
            json!({"collection": "movies", "where": [["year", "in", 2000]]}),
            "must be an array",
        ),
        (
            json!({"collection": "movies", "where": [["a..b", "==", 1]]}),
            "where[0]",
        ),
        (
            json!({"collection": "movies", "where": [["a", "==", {"$serverTimestamp": true}]]}),
            "not allowed here",
        ),
    ] {
        let message = app
            .post("/v1/query", &body)
            .await
            .error(400, "invalid-argument");
        assert!(message.contains(why), "{body}: {message}");
    }
}

/// A query answers a page at a time: `page_size` documents (the limit when small, else 100),
/// and `next_page_token` while more may follow; the token continues only its own query.
#[tokio::test]
async fn pages_follow_next_page_token() {
    let app = seeded().await;
    let query = json!({"collection": "movies", "order_by": ["year"], "page_size": 2});
    let mut body = query.clone();
    let mut pages = Vec::new();
    loop {
        let r = app.post("/v1/query", &body).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages.push(titles(&r.json));
        match r.json["next_page_token"].as_str() {
            Some(token) => body["page_token"] = json!(token),
            None => break,
        }
    }
    assert_eq!(
        pages,
        [vec!["Heat", "Up"], vec!["Drive", "Amour"], vec!["Her"]]
    );
    // The limit bounds the whole result, across pages.
    let limited = json!({"collection": "movies", "order_by": ["year"], "limit": 3, "page_size": 2});
    let r = app.post("/v1/query", &limited).await;
    assert_eq!(titles(&r.json), ["Heat", "Up"]);
    let mut next = limited.clone();
    next["page_token"] = r.json["next_page_token"].clone();
    let r = app.post("/v1/query", &next).await;
    assert_eq!(titles(&r.json), ["Drive"]);
    assert!(r.json["next_page_token"].is_null(), "{}", r.text);
    // Without page_size, a limit up to 1,000 is the page size.
    let r = app
        .post("/v1/query", &json!({"collection": "movies", "limit": 4}))
        .await;
    assert_eq!(titles(&r.json).len(), 4);
    assert!(r.json["next_page_token"].is_null());
    // A token does not continue another query.
    let mut other = json!({"collection": "movies", "order_by": ["title"], "page_size": 2});
    other["page_token"] = body["page_token"].clone();
    let message = app
        .post("/v1/query", &other)
        .await
        .error(400, "invalid-argument");
    assert!(message.contains("different query"), "{message}");
}
