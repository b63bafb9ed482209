//! The `Write` stream against a real engine: the handshake, atomic commits with their results,
//! pipelined requests, the SDK's empty farewell request, and failures that end the stream with
//! nothing of the failed request applied.

use claimdb_engine::RequestContext;
use claimdb_firestore::Code;
use claimdb_model::DocPath;
use serde_json::{Value as Json, json};

use crate::{Client, Fixture};

const DATABASE: &str = "projects/p/databases/(default)";

fn ctx() -> RequestContext {
    RequestContext::new("write-test")
}

fn set(f: &Fixture, path: &str, n: i64) -> Json {
    json!({ "update": {
        "name": f.name(path),
        "fields": { "n": { "integerValue": n.to_string() } },
    }})
}

/// Opens a stream and completes the handshake; returns the stream id and token.
async fn handshake(c: &mut Client) -> (String, String) {
    c.send(json!({ "database": DATABASE })).await;
    let answer = c.ok().await;
    let id = answer["streamId"].as_str().unwrap().to_string();
    let token = answer["streamToken"].as_str().unwrap().to_string();
    assert!(!id.is_empty() && !token.is_empty(), "{answer}");
    assert!(answer.get("writeResults").is_none(), "{answer}");
    (id, token)
}

async fn exists(f: &Fixture, path: &str) -> bool {
    f.engine
        .store()
        .get(&DocPath::parse(path).unwrap())
        .await
        .unwrap()
        .is_some()
}

/// The handshake answers a stream id and token; each request's writes are committed atomically
/// and answered with their results and the commit time; a request may acknowledge an older
/// token (the SDK pipelines batches); one without writes is answered without results.
#[tokio::test]
async fn writes_are_committed_and_acknowledged_in_order() {
    let f = Fixture::new();
    let mut c = Client::write(&f, ctx());
    let (id, first) = handshake(&mut c).await;

    c.send(json!({ "streamToken": first, "writes": [
        set(&f, "open/a", 1),
        { "update": { "name": f.name("open/b"), "fields": {} },
          "updateTransforms": [{ "fieldPath": "n", "increment": { "integerValue": "5" } }],
          "currentDocument": { "exists": false } },
    ]}))
    .await;
    // Pipelined: the second batch carries the handshake's token too.
    c.send(json!({ "streamToken": first, "writes": [{ "delete": f.name("open/a") }] }))
        .await;

    let one = c.ok().await;
    assert_eq!(one["streamId"], id.as_str());
    let token = one["streamToken"].as_str().unwrap().to_string();
    assert_ne!(token, first);
    let results = one["writeResults"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{one}");
    assert_eq!(results[1]["transformResults"][0]["integerValue"], "5");
    let commit_time = one["commitTime"].as_str().unwrap();
    assert_eq!(results[0]["updateTime"], commit_time);

    let two = c.ok().await;
    assert_eq!(two["writeResults"].as_array().unwrap().len(), 1, "{two}");
    assert!(two["commitTime"].as_str().unwrap() > commit_time, "{two}");
    assert!(!exists(&f, "open/a").await);
    assert!(exists(&f, "open/b").await);

    // The SDK's farewell: no writes; answered with a commit time and no results.
    c.send(json!({ "streamToken": two["streamToken"], "writes": [] }))
        .await;
    let bye = c.ok().await;
    assert_eq!(bye["writeResults"], json!([]));
    assert!(bye["commitTime"].is_string(), "{bye}");
    c.close().await;
}

/// A request the rules deny fails as a whole — none of its writes applied — and ends the
/// stream with `permission-denied`; so does a failed precondition, with its own code.
#[tokio::test]
async fn a_failed_commit_ends_the_stream_with_nothing_applied() {
    let f = Fixture::new();
    let mut c = Client::write(&f, ctx());
    let (_, token) = handshake(&mut c).await;
    // `closed/*` may be written but `secret/*` matches no rule.
    c.send(json!({ "streamToken": token, "writes": [
        set(&f, "open/x", 1),
        set(&f, "secret/y", 1),
    ]}))
    .await;
    let status = c.failure().await;
    assert_eq!(status.code, Code::PermissionDenied, "{status:?}");
    assert!(!exists(&f, "open/x").await, "half-applied");

    f.set("open/a", 1).await;
    let mut c = Client::write(&f, ctx());
    let (_, token) = handshake(&mut c).await;
    let mut create = set(&f, "open/a", 2);
    create["currentDocument"] = json!({ "exists": false });
    c.send(json!({ "streamToken": token, "writes": [set(&f, "open/z", 1), create] }))
        .await;
    let status = c.failure().await;
    assert_eq!(status.code, Code::AlreadyExists, "{status:?}");
    assert!(!exists(&f, "open/z").await, "half-applied");
}

/// Malformed streams end with `invalid-argument` (or `not-found` for another database): writes
/// in the handshake, a resumed stream, an unknown or missing token, an unknown field, a
/// malformed write.
#[tokio::test]
async fn malformed_requests_end_the_stream() {
    let f = Fixture::new();
    let handshakes = [
        (
            json!({ "database": DATABASE, "writes": [set(&f, "open/a", 1)] }),
            Code::InvalidArgument,
        ),
        (
            json!({ "database": DATABASE, "streamId": "old" }),
            Code::InvalidArgument,
        ),
        (
            json!({ "database": DATABASE, "streamToken": "AAAAAAAAAAE=" }),
            Code::InvalidArgument,
        ),
        (
            json!({ "database": "projects/other/databases/(default)" }),
            Code::NotFound,
        ),
        (
            json!({ "database": DATABASE, "x": 1 }),
            Code::InvalidArgument,
        ),
        (json!([]), Code::InvalidArgument),
    ];
    for (request, code) in handshakes {
        let mut c = Client::write(&f, ctx());
        c.send(request.clone()).await;
        let status = c.failure().await;
        assert_eq!(status.code, code, "{request}: {status:?}");
    }
    // Token 5 (never sent), no token, a token of another shape, a malformed write.
    let later = [
        json!({ "streamToken": "AAAAAAAAAAU=", "writes": [] }),
        json!({ "writes": [set(&f, "open/a", 1)] }),
        json!({ "streamToken": "AQ==", "writes": [] }),
        json!({ "streamToken": null, "writes": [{ "delete": "open/a" }] }),
    ];
    for request in later {
        let mut c = Client::write(&f, ctx());
        let (_, token) = handshake(&mut c).await;
        let mut request = request.clone();
        if request["streamToken"].is_null() && request.get("streamToken").is_some() {
            request["streamToken"] = json!(token);
        }
        c.send(request.clone()).await;
        let status = c.failure().await;
        assert_eq!(status.code, Code::InvalidArgument, "{request}: {status:?}");
    }
    assert!(!exists(&f, "open/a").await);
}
