//! The `Listen` stream against a real engine: the sequence of responses the SDKs need for
//! document and query targets (ADD, the documents, CURRENT, the global NO_CHANGE), the changes
//! after commits, removal, rejection by the rules at start and later, resumption, malformed
//! requests, several targets on one stream and a slow client.

use claimdb_engine::RequestContext;
use claimdb_firestore::Code;
use serde_json::{Value as Json, json};

use crate::{Client, Fixture, PROJECT};

const DATABASE: &str = "projects/p/databases/(default)";

fn ctx() -> RequestContext {
    RequestContext::new("listen-test")
}

/// A response in one line: `ADD [2]`, `NO_CHANGE []`, `documentChange open/a n=1 +[2] -[]`,
/// `documentDelete open/a -[2]`.
fn summary(r: &Json) -> String {
    if let Some(tc) = r.get("targetChange") {
        let kind = tc["targetChangeType"].as_str().unwrap_or("NO_CHANGE");
        return format!("{kind} {}", tc["targetIds"]);
    }
    let prefix = format!("projects/{PROJECT}/databases/(default)/documents/");
    if let Some(dc) = r.get("documentChange") {
        let doc = &dc["document"];
        let name = doc["name"].as_str().unwrap_or_default();
        let n = doc["fields"]["n"]["integerValue"].as_str().unwrap_or("-");
        let ids = |key: &str| dc.get(key).cloned().unwrap_or(json!([]));
        return format!(
            "documentChange {} n={n} +{} -{}",
            name.trim_start_matches(&prefix),
            ids("targetIds"),
            ids("removedTargetIds")
        );
    }
    for kind in ["documentDelete", "documentRemove"] {
        if let Some(d) = r.get(kind) {
            let name = d["document"].as_str().unwrap_or_default();
            return format!(
                "{kind} {} -{}",
                name.trim_start_matches(&prefix),
                d["removedTargetIds"]
            );
        }
    }
    format!("unexpected {r}")
}

impl Client {
    /// The next `n` responses, summarized.
    async fn summaries(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(summary(&self.ok().await));
        }
        out
    }

    async fn add(&self, target: Json) {
        self.send(json!({ "database": DATABASE, "addTarget": target }))
            .await;
    }
}

fn documents(f: &Fixture, id: i32, paths: &[&str]) -> Json {
    let names: Vec<String> = paths.iter().map(|p| f.name(p)).collect();
    json!({ "targetId": id, "documents": { "documents": names } })
}

/// `open` documents with `n >= 5`, by `n`.
fn query(id: i32) -> Json {
    json!({ "targetId": id, "query": {
        "parent": "projects/p/databases/(default)/documents",
        "structuredQuery": {
            "from": [{ "collectionId": "open" }],
            "where": { "fieldFilter": { "field": { "fieldPath": "n" }, "op": "GREATER_THAN_OR_EQUAL", "value": { "integerValue": "5" } } },
            "orderBy": [{ "field": { "fieldPath": "n" }, "direction": "ASCENDING" }],
        },
    }})
}

fn read_time(r: &Json) -> String {
    r["targetChange"]["readTime"]
        .as_str()
        .unwrap_or_else(|| panic!("a read time in {r}"))
        .to_string()
}

/// The initial sequence of a document target, then each commit's change followed by the
/// target's NO_CHANGE (its resume token) and the global NO_CHANGE (the read time the SDK raises
/// its snapshot at); a deletion is a `documentDelete`; after `removeTarget`, nothing more.
#[tokio::test]
async fn a_document_target_sends_its_document_then_current_then_each_change() {
    let f = Fixture::new();
    f.set("open/a", 1).await;
    let mut c = Client::listen(&f, ctx());
    c.add(documents(&f, 2, &["open/a"])).await;
    assert_eq!(
        c.summaries(2).await,
        ["ADD [2]", "documentChange open/a n=1 +[2] -[]"]
    );
    let current = c.ok().await;
    assert_eq!(summary(&current), "CURRENT [2]");
    assert!(
        current["targetChange"]["resumeToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{current}"
    );
    let global = c.ok().await;
    assert_eq!(summary(&global), "NO_CHANGE []");
    assert_eq!(read_time(&global), read_time(&current));

    f.set("open/a", 2).await;
    let change = c.ok().await;
    assert_eq!(summary(&change), "documentChange open/a n=2 +[2] -[]");
    let token = c.ok().await;
    assert_eq!(summary(&token), "NO_CHANGE [2]");
    assert!(token["targetChange"]["resumeToken"].is_string(), "{token}");
    let global2 = c.ok().await;
    assert_eq!(summary(&global2), "NO_CHANGE []");
    let update_time = change["documentChange"]["document"]["updateTime"]
        .as_str()
        .unwrap()
        .to_string();
    // RFC 3339 with a fixed number of digits: text order is time order.
    assert!(
        read_time(&global2) >= update_time,
        "{global2} {update_time}"
    );
    assert!(read_time(&global2) >= read_time(&global));

    f.delete("open/a").await;
    let delete = c.ok().await;
    assert_eq!(summary(&delete), "documentDelete open/a -[2]");
    assert!(delete["documentDelete"]["readTime"].is_string(), "{delete}");
    assert_eq!(c.summaries(2).await, ["NO_CHANGE [2]", "NO_CHANGE []"]);

    c.send(json!({ "database": DATABASE, "removeTarget": 2 }))
        .await;
    assert_eq!(c.summaries(1).await, ["REMOVE [2]"]);
    f.set("open/a", 3).await;
    c.quiet(300).await;
    c.close().await;
}

/// A named document that does not exist sends no document: the SDK concludes its absence from
/// CURRENT. Its creation later is a `documentChange`.
#[tokio::test]
async fn a_missing_document_is_only_current_until_it_is_created() {
    let f = Fixture::new();
    let mut c = Client::listen(&f, ctx());
    c.add(documents(&f, 4, &["open/none"])).await;
    assert_eq!(
        c.summaries(3).await,
        ["ADD [4]", "CURRENT [4]", "NO_CHANGE []"]
    );
    f.set("open/none", 7).await;
    assert_eq!(
        c.summaries(3).await,
        [
            "documentChange open/none n=7 +[4] -[]",
            "NO_CHANGE [4]",
            "NO_CHANGE []"
        ]
    );
}

/// A query target's documents come in the query's order; a document that stops matching is
/// sent as it is now, removed from the target; a deleted one is a `documentDelete`; one that
/// starts matching is added.
#[tokio::test]
async fn a_query_target_follows_its_result() {
    let f = Fixture::new();
    for (path, n) in [("open/a", 1), ("open/c", 10), ("open/b", 5)] {
        f.set(path, n).await;
    }
    let mut c = Client::listen(&f, ctx());
    c.add(query(2)).await;
    assert_eq!(
        c.summaries(5).await,
        [
            "ADD [2]",
            "documentChange open/b n=5 +[2] -[]",
            "documentChange open/c n=10 +[2] -[]",
            "CURRENT [2]",
            "NO_CHANGE []"
        ]
    );
    f.set("open/c", 1).await;
    assert_eq!(
        c.summaries(3).await,
        [
            "documentChange open/c n=1 +[] -[2]",
            "NO_CHANGE [2]",
            "NO_CHANGE []"
        ]
    );
    f.delete("open/b").await;
    assert_eq!(
        c.summaries(3).await,
        [
            "documentDelete open/b -[2]",
            "NO_CHANGE [2]",
            "NO_CHANGE []"
        ]
    );
    f.set("open/d", 7).await;
    assert_eq!(
        c.summaries(3).await,
        [
            "documentChange open/d n=7 +[2] -[]",
            "NO_CHANGE [2]",
            "NO_CHANGE []"
        ]
    );
    // A change the query cannot see sends nothing.
    f.set("open/a", 2).await;
    c.quiet(300).await;
}

/// A target the rules refuse is answered `REMOVE` with the denial as its cause — what the SDK
/// turns into the listener's `permission-denied` — and the stream serves other targets.
#[tokio::test]
async fn a_target_the_rules_refuse_is_removed_with_its_cause_and_the_stream_goes_on() {
    let f = Fixture::new();
    f.set("closed/x", 1).await;
    f.set("open/a", 1).await;
    let mut c = Client::listen(&f, ctx());
    c.add(documents(&f, 3, &["closed/x"])).await;
    let removed = c.ok().await;
    assert_eq!(summary(&removed), "REMOVE [3]");
    assert_eq!(
        removed["targetChange"]["cause"]["code"],
        Code::PermissionDenied as i32
    );
    assert!(
        removed["targetChange"]["cause"]["message"].is_string(),
        "{removed}"
    );
    c.add(documents(&f, 4, &["open/a"])).await;
    assert_eq!(
        c.summaries(4).await,
        [
            "ADD [4]",
            "documentChange open/a n=1 +[4] -[]",
            "CURRENT [4]",
            "NO_CHANGE []"
        ]
    );
    // A refused query likewise.
    let mut closed = query(5);
    closed["query"]["structuredQuery"]["from"] = json!([{ "collectionId": "closed" }]);
    c.add(closed).await;
    let removed = c.ok().await;
    assert_eq!(summary(&removed), "REMOVE [5]");
    assert_eq!(
        removed["targetChange"]["cause"]["code"],
        Code::PermissionDenied as i32
    );
}

/// When the rules change so that a running target is no longer allowed, it ends with
/// `REMOVE` and the cause `permission-denied` (the engine decides listeners again within a
/// second of a rules change).
#[tokio::test]
async fn a_target_no_longer_allowed_ends_with_permission_denied() {
    let f = Fixture::new();
    f.set("open/a", 1).await;
    let mut c = Client::listen(&f, ctx());
    c.add(documents(&f, 2, &["open/a"])).await;
    c.summaries(4).await;
    f.engine
        .set_stored_rules(
            "rules_version = '2'; service cloud.firestore { match /databases/{d}/documents { \
             match /{doc=**} { allow read: if false; allow write: if true; } } }",
            "test",
        )
        .await
        .unwrap();
    let removed = c.ok().await;
    assert_eq!(summary(&removed), "REMOVE [2]", "{removed}");
    assert_eq!(
        removed["targetChange"]["cause"]["code"],
        Code::PermissionDenied as i32
    );
    // Nothing more comes for the removed target.
    f.set("open/a", 2).await;
    c.quiet(300).await;
}

/// A target that resumes with the resume token it was last given gets only the changes since
/// (no `RESET`): the document it showed, changed; a query's deleted and new documents.
#[tokio::test]
async fn a_resumed_target_gets_only_the_changes_since_its_token() {
    let f = Fixture::new();
    f.set("open/a", 1).await;
    f.set("open/b", 5).await;
    let mut c = Client::listen(&f, ctx());
    c.add(documents(&f, 2, &["open/a"])).await;
    c.add(query(3)).await;
    let mut tokens = std::collections::HashMap::new();
    for _ in 0..8 {
        let r = c.ok().await;
        if summary(&r).starts_with("CURRENT") {
            tokens.insert(
                r["targetChange"]["targetIds"][0].as_i64().unwrap(),
                r["targetChange"]["resumeToken"].clone(),
            );
        }
    }
    assert_eq!(tokens.len(), 2);
    c.close().await;

    // While no client listens: a, b and d change.
    f.set("open/a", 2).await;
    f.delete("open/b").await;
    f.set("open/d", 6).await;

    let mut c = Client::listen(&f, ctx());
    let mut again = documents(&f, 2, &["open/a"]);
    again["resumeToken"] = tokens[&2].clone();
    c.add(again).await;
    assert_eq!(
        c.summaries(4).await,
        [
            "ADD [2]",
            "documentChange open/a n=2 +[2] -[]",
            "CURRENT [2]",
            "NO_CHANGE []"
        ]
    );
    let mut again = query(3);
    again["resumeToken"] = tokens[&3].clone();
    c.add(again).await;
    assert_eq!(
        c.summaries(5).await,
        [
            "ADD [3]",
            "documentDelete open/b -[3]",
            "documentChange open/d n=6 +[3] -[]",
            "CURRENT [3]",
            "NO_CHANGE []"
        ]
    );
    // The token after the resumption resumes too: nothing changed since.
    f.set("open/a", 3).await;
    c.summaries(3).await;
    c.send(json!({ "database": DATABASE, "removeTarget": 2 }))
        .await;
    c.summaries(1).await;
}

/// A target that asks to resume with a token this node cannot use (another server's, unknown)
/// or from a read time gets `RESET` after `ADD` — the SDK drops what it held — and then the
/// whole result.
#[tokio::test]
async fn a_target_that_cannot_resume_is_reset_and_sent_whole() {
    let f = Fixture::new();
    f.set("open/a", 1).await;
    let mut c = Client::listen(&f, ctx());
    // "0000000000000001.1", a well-formed token nobody was given; then bytes that are no token.
    for (id, token) in [(2, "MDAwMDAwMDAwMDAwMDAwMS4x"), (3, "/wE=")] {
        let mut unknown = documents(&f, id, &["open/a"]);
        unknown["resumeToken"] = json!(token);
        c.add(unknown).await;
        assert_eq!(
            c.summaries(5).await,
            [
                format!("ADD [{id}]"),
                format!("RESET [{id}]"),
                format!("documentChange open/a n=1 +[{id}] -[]"),
                format!("CURRENT [{id}]"),
                "NO_CHANGE []".to_string(),
            ]
        );
    }
    let mut at = documents(&f, 4, &["open/a"]);
    at["readTime"] = json!("2026-01-01T00:00:00Z");
    c.add(at).await;
    assert_eq!(
        c.summaries(3).await,
        ["ADD [4]", "RESET [4]", "documentChange open/a n=1 +[4] -[]"]
    );
}

/// `once`: removed as soon as it is current. A target id of 0 (or none) is chosen by the
/// server and said in `ADD`. Removing an unknown target is acknowledged.
#[tokio::test]
async fn once_targets_assigned_ids_and_unknown_removals() {
    let f = Fixture::new();
    f.set("open/a", 1).await;
    let mut c = Client::listen(&f, ctx());
    let mut once = documents(&f, 2, &["open/a"]);
    once["once"] = json!(true);
    c.add(once).await;
    assert_eq!(
        c.summaries(5).await,
        [
            "ADD [2]",
            "documentChange open/a n=1 +[2] -[]",
            "CURRENT [2]",
            "NO_CHANGE []",
            "REMOVE [2]"
        ]
    );
    f.set("open/a", 2).await;
    c.quiet(300).await;
    let mut unnamed = documents(&f, 0, &["open/none"]);
    unnamed.as_object_mut().unwrap().remove("targetId");
    c.add(unnamed).await;
    assert_eq!(c.summaries(1).await, ["ADD [1]"]);
    c.summaries(2).await;
    c.send(json!({ "database": DATABASE, "removeTarget": 99 }))
        .await;
    assert_eq!(c.summaries(1).await, ["REMOVE [99]"]);
}

/// A malformed target is rejected alone (`REMOVE` with `invalid-argument`); a malformed
/// request — not a ListenRequest, another database, a target id already in use — ends the
/// stream with its status.
#[tokio::test]
async fn malformed_targets_are_rejected_and_malformed_requests_end_the_stream() {
    let f = Fixture::new();
    let mut c = Client::listen(&f, ctx());
    let mut bad_op = query(2);
    bad_op["query"]["structuredQuery"]["where"]["fieldFilter"]["op"] = json!("ROUGHLY");
    let bad_targets = [
        bad_op,
        json!({ "targetId": 3 }),
        json!({ "targetId": 4, "documents": { "documents": [] } }),
        json!({ "targetId": 5, "documents": { "documents": ["open/a"] } }),
        json!({ "targetId": 6, "query": { "parent": "projects/p/databases/(default)/documents/open", "structuredQuery": { "from": [{ "collectionId": "x" }] } } }),
        json!({ "targetId": 7, "documents": { "documents": [f.name("open/a")] }, "resumeToken": "not base64!" }),
        json!({ "targetId": 8, "documents": { "documents": [f.name("open/a")] }, "once": "yes" }),
    ];
    for (i, target) in bad_targets.into_iter().enumerate() {
        let id = target["targetId"].clone();
        c.add(target).await;
        let removed = c.ok().await;
        assert_eq!(summary(&removed), format!("REMOVE [{id}]"), "case {i}");
        assert_eq!(
            removed["targetChange"]["cause"]["code"],
            Code::InvalidArgument as i32,
            "case {i}: {removed}"
        );
    }

    let failures = [
        (json!("addTarget"), Code::InvalidArgument),
        (json!({ "database": DATABASE }), Code::InvalidArgument),
        (
            json!({ "database": DATABASE, "addTarget": { "targetId": 1 }, "removeTarget": 1 }),
            Code::InvalidArgument,
        ),
        (
            json!({ "database": DATABASE, "removeTarget": -1 }),
            Code::InvalidArgument,
        ),
        (
            json!({ "database": DATABASE, "unknown": 1 }),
            Code::InvalidArgument,
        ),
        (
            json!({ "database": "projects/other/databases/(default)", "removeTarget": 1 }),
            Code::NotFound,
        ),
    ];
    for (request, code) in failures {
        let mut c = Client::listen(&f, ctx());
        c.send(request.clone()).await;
        let status = c.failure().await;
        assert_eq!(status.code, code, "{request}: {status:?}");
    }

    let mut c = Client::listen(&f, ctx());
    c.add(documents(&f, 2, &["open/a"])).await;
    c.summaries(3).await;
    c.add(documents(&f, 2, &["open/b"])).await;
    let status = c.failure().await;
    assert_eq!(status.code, Code::InvalidArgument);
    assert!(status.message.contains("already"), "{status:?}");
}

/// Several targets on one stream each get their own changes; read times never go back across
/// them (the SDK ignores a snapshot older than the last it applied).
#[tokio::test]
async fn several_targets_share_a_stream_and_read_times_never_go_back() {
    let f = Fixture::new();
    let mut c = Client::listen(&f, ctx());
    c.add(documents(&f, 2, &["open/a"])).await;
    c.add(query(4)).await;
    assert_eq!(
        c.summaries(6).await,
        [
            "ADD [2]",
            "CURRENT [2]",
            "NO_CHANGE []",
            "ADD [4]",
            "CURRENT [4]",
            "NO_CHANGE []"
        ]
    );
    let mut times = Vec::new();
    let mut seen = Vec::new();
    for n in 5..10 {
        f.set("open/a", n).await;
        // open/a concerns both targets (n >= 5 matches the query): two events, in either order.
        for _ in 0..2 {
            let change = summary(&c.ok().await);
            let token = summary(&c.ok().await);
            let global = c.ok().await;
            assert_eq!(summary(&global), "NO_CHANGE []");
            times.push(read_time(&global));
            seen.push((change, token));
        }
    }
    for n in 5..10 {
        for id in [2, 4] {
            let expected = (
                format!("documentChange open/a n={n} +[{id}] -[]"),
                format!("NO_CHANGE [{id}]"),
            );
            assert!(seen.contains(&expected), "{expected:?} in {seen:?}");
        }
    }
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted);
}

/// A client that does not read holds up only its own stream: the engine's listener coalesces
/// the commits meanwhile, so when the client reads again it gets the net change, not one
/// change per commit (and the stream's memory never grew with them).
#[tokio::test]
async fn a_slow_client_gets_the_net_change_not_every_commit() {
    let f = Fixture::new();
    f.set("open/a", 0).await;
    let mut c = Client::listen_buffered(&f, ctx(), 1);
    c.add(documents(&f, 2, &["open/a"])).await;
    c.summaries(4).await;
    for n in 1..=100 {
        f.set("open/a", n).await;
    }
    let mut changes = 0;
    loop {
        let s = summary(&c.ok().await);
        if s.starts_with("documentChange") {
            changes += 1;
            if s == "documentChange open/a n=100 +[2] -[]" {
                break;
            }
        }
    }
    assert!(changes <= 5, "{changes} changes for 100 commits");
    assert_eq!(c.summaries(2).await, ["NO_CHANGE [2]", "NO_CHANGE []"]);
    c.quiet(300).await;
}

/// A stream holds at most `MAX_LISTENERS` listeners (a documents target one per document): the
/// target past it is refused with `resource-exhausted`, and one fits again once a target is
/// removed.
#[tokio::test]
async fn a_stream_holds_a_bounded_number_of_listeners() {
    use claimdb_firestore::watch::{MAX_LISTENERS, MAX_TARGET_DOCUMENTS};
    let f = Fixture::new();
    let mut c = Client::listen(&f, ctx());
    let per_target = MAX_TARGET_DOCUMENTS;
    let targets = MAX_LISTENERS / per_target;
    for t in 0..targets {
        let paths: Vec<String> = (0..per_target).map(|d| format!("open/t{t}d{d}")).collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        c.add(documents(&f, i32::try_from(t).unwrap() + 1, &paths))
            .await;
        c.summaries(3).await;
    }
    let mut too_many = documents(&f, 0, &["open/one-more"]);
    too_many["targetId"] = json!(5000);
    c.add(too_many.clone()).await;
    let refused = c.ok().await;
    assert_eq!(summary(&refused), "REMOVE [5000]");
    assert_eq!(
        refused["targetChange"]["cause"]["code"],
        Code::ResourceExhausted as i32
    );
    // More documents than a target may name.
    let paths: Vec<String> = (0..=per_target).map(|d| format!("open/x{d}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    c.add(documents(&f, 5001, &paths)).await;
    let refused = c.ok().await;
    assert_eq!(
        refused["targetChange"]["cause"]["code"],
        Code::InvalidArgument as i32
    );
    c.send(json!({ "database": DATABASE, "removeTarget": 1 }))
        .await;
    assert_eq!(c.summaries(1).await, ["REMOVE [1]"]);
    c.add(too_many).await;
    assert_eq!(
        c.summaries(3).await,
        ["ADD [5000]", "CURRENT [5000]", "NO_CHANGE []"]
    );
}
