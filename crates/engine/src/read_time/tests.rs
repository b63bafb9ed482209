//! Reads at a past time through the engine: the rules decide on the version read then (a
//! document visible then and hidden now is readable at that time only, and the reverse),
//! `get()` in the rules reads the present, lists and queries are decided on their constraints
//! and return the versions then, and times the store cannot answer are refused with the codes
//! Firestore uses.

use std::sync::Arc;
use std::time::Duration;

use claimdb_model::json::DecodedWrite;
use claimdb_model::{CollectionPath, DocPath, Timestamp, Value};
use claimdb_rules::Ruleset;
use claimdb_store::{Precondition, Query, Store};

use crate::{Engine, EngineOptions, ListRequest, QueryPaging, ReadTime, RequestContext};

fn engine(rules: &str) -> (Engine, tempfile::TempDir) {
    let rules = Ruleset::compile(&format!(
        "rules_version = '2';
         service cloud.firestore {{
           match /databases/{{database}}/documents {{ {rules} }}
         }}"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(claimdb_store::SqliteStore::open(dir.path()).unwrap());
    (Engine::new(store, EngineOptions::new(rules, "test")), dir)
}

fn doc(pairs: &[(&str, Value)]) -> DecodedWrite {
    let mut d = DecodedWrite::default();
    for (k, v) in pairs {
        d.data.insert((*k).to_string(), v.clone());
    }
    d
}

/// Sets `path` and returns the commit's time, a little after the previous one.
async fn set(engine: &Engine, path: &str, data: DecodedWrite) -> Timestamp {
    tokio::time::sleep(Duration::from_millis(2)).await;
    let ctx = RequestContext::new("w");
    let path = DocPath::parse(path).unwrap();
    let outcome = engine
        .set(&ctx, path, data, Precondition::None)
        .await
        .unwrap();
    outcome.document.update_time
}

fn path(p: &str) -> DocPath {
    DocPath::parse(p).unwrap()
}

#[tokio::test]
async fn a_read_at_a_past_time_is_decided_on_the_version_then() {
    let (engine, _dir) = engine(
        "match /notes/{id} { allow read: if resource.data.visible == true; allow write: if true; }",
    );
    let ctx = RequestContext::new("r");
    let shown = |b: bool| doc(&[("visible", Value::Bool(b))]);
    let a1 = set(&engine, "notes/a", shown(true)).await;
    let b1 = set(&engine, "notes/b", shown(false)).await;
    let a2 = set(&engine, "notes/a", shown(false)).await;
    let b2 = set(&engine, "notes/b", shown(true)).await;
    // Visible then, hidden now: readable at the time only.
    let then = engine
        .get_at(&ctx, &path("notes/a"), ReadTime::At(a1))
        .await
        .unwrap();
    assert_eq!(then.data.get("visible"), Some(&Value::Bool(true)));
    assert_eq!(then.update_time, a1);
    let now = engine.get(&ctx, &path("notes/a")).await.unwrap_err();
    assert_eq!(now.code(), "permission-denied");
    let later = engine
        .get_at(&ctx, &path("notes/a"), ReadTime::At(a2))
        .await
        .unwrap_err();
    assert_eq!(later.code(), "permission-denied");
    // Hidden then, visible now: the reverse.
    let then = engine
        .get_at(&ctx, &path("notes/b"), ReadTime::At(b1))
        .await
        .unwrap_err();
    assert_eq!(then.code(), "permission-denied");
    assert!(engine.get(&ctx, &path("notes/b")).await.is_ok());
    assert!(
        engine
            .get_at(&ctx, &path("notes/b"), ReadTime::At(b2))
            .await
            .is_ok()
    );
    // Absent then: the rules see no resource and deny, as for a live read of a missing
    // document.
    let before = Timestamp::from_micros(a1.micros() - 1).unwrap();
    let missing = engine
        .get_at(&ctx, &path("notes/a"), ReadTime::At(before))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), "permission-denied");
}

#[tokio::test]
async fn documents_the_rules_get_are_read_as_they_are_now() {
    let (engine, _dir) = engine(
        "match /notes/{id} {
           allow read: if get(/databases/$(database)/documents/config/gate).data.open == true;
         }
         match /{document=**} { allow write: if true; }",
    );
    let ctx = RequestContext::new("r");
    let open = |b: bool| doc(&[("open", Value::Bool(b))]);
    set(&engine, "notes/a", doc(&[("n", Value::Int(1))])).await;
    let t1 = set(&engine, "config/gate", open(true)).await;
    assert!(
        engine
            .get_at(&ctx, &path("notes/a"), ReadTime::At(t1))
            .await
            .is_ok()
    );
    set(&engine, "config/gate", open(false)).await;
    // The gate was open at t1 but is closed now: the decision is made now.
    let denied = engine
        .get_at(&ctx, &path("notes/a"), ReadTime::At(t1))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), "permission-denied");
}

#[tokio::test]
async fn lists_and_queries_at_a_past_time_return_the_versions_then() {
    let (engine, _dir) = engine(
        "match /notes/{id} { allow list: if request.query.limit <= 10; allow write: if true; }",
    );
    let ctx = RequestContext::new("r");
    set(&engine, "notes/a", doc(&[("n", Value::Int(1))])).await;
    let t1 = set(&engine, "notes/b", doc(&[("n", Value::Int(2))])).await;
    set(&engine, "notes/a", doc(&[("n", Value::Int(3))])).await;
    set(&engine, "notes/c", doc(&[("n", Value::Int(4))])).await;
    let mut q = Query::collection(CollectionPath::parse("notes").unwrap());
    q.limit = Some(10);
    let n = |docs: &[claimdb_store::Document]| {
        docs.iter()
            .map(|d| (d.path.id().to_string(), d.data.get("n").cloned()))
            .collect::<Vec<_>>()
    };
    let paging = QueryPaging::default();
    let then = engine
        .query_at(&ctx, &q, &paging, ReadTime::At(t1))
        .await
        .unwrap();
    assert_eq!(
        n(&then.documents),
        [
            ("a".into(), Some(Value::Int(1))),
            ("b".into(), Some(Value::Int(2)))
        ]
    );
    let now = engine.query(&ctx, &q, &paging).await.unwrap();
    assert_eq!(now.documents.len(), 3);
    // Decided on its constraints, whatever the time.
    q.limit = Some(11);
    let denied = engine
        .query_at(&ctx, &q, &paging, ReadTime::At(t1))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), "permission-denied");
    let request = ListRequest {
        page_size: Some(10),
        page_token: None,
    };
    let notes = CollectionPath::parse("notes").unwrap();
    let listed = engine
        .list_at(&ctx, &notes, &request, ReadTime::At(t1))
        .await
        .unwrap();
    assert_eq!(n(&listed.documents), n(&then.documents));
    assert_eq!(listed.next_page_token, None);
}

#[tokio::test]
async fn times_the_store_cannot_answer_are_refused() {
    let (engine, _dir) = engine("match /{document=**} { allow read, write: if true; }");
    let ctx = RequestContext::new("r");
    let t = set(&engine, "notes/a", doc(&[])).await;
    let at = |micros: i64| ReadTime::At(Timestamp::from_micros(micros).unwrap());
    let future = engine
        .get_at(&ctx, &path("notes/a"), at(t.micros() + 3_600_000_000))
        .await
        .unwrap_err();
    assert_eq!(future.code(), "invalid-argument", "{future}");
    let old = engine
        .get_at(&ctx, &path("notes/a"), at(t.micros() - 7_200_000_000))
        .await
        .unwrap_err();
    assert_eq!(old.code(), "failed-precondition", "{old}");
    assert!(old.message().contains("history_retention_secs"), "{old}");
}
