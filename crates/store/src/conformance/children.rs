//! Conformance checks of the structural listings: the collection ids below a document or the
//! root ([`crate::Documents::collection_ids`]) and a collection's documents with its missing
//! ones ([`crate::Documents::list_with_missing`]), with paging by the last id.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use super::*;
use crate::Child;

pub async fn collection_ids_below_a_parent<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("a/1", json!({})),
            ("a/1/s/x", json!({})),
            ("a/1/s/y", json!({})),
            ("a/1/s-t/x", json!({})),
            ("a/1/r/x/deep/z", json!({})),
            ("a/2/q/x", json!({})),
            ("a-b/1", json!({})),
            ("b/9/c/1/d/2", json!({})),
        ],
    )
    .await;
    let ids = |parent: Option<&str>, after: Option<&str>, limit: usize| {
        let store = store.clone();
        let parent = parent.map(path);
        let after = after.map(str::to_owned);
        async move {
            store
                .collection_ids(parent.as_ref(), after.as_deref(), limit)
                .await
                .unwrap()
        }
    };
    // The root's collections, b only through a document deep below it.
    assert_eq!(ids(None, None, 10).await, ["a", "a-b", "b"]);
    // Below a/1: s, its sibling s-t (segment order, though '-' sorts before '/'), and r,
    // which holds a document only below a missing one.
    assert_eq!(ids(Some("a/1"), None, 10).await, ["r", "s", "s-t"]);
    // Below a document that does not exist, and one with nothing below it.
    assert_eq!(ids(Some("a/2"), None, 10).await, ["q"]);
    assert_eq!(ids(Some("a-b/1"), None, 10).await, Vec::<String>::new());
    assert_eq!(ids(Some("b/9/c/1"), None, 10).await, ["d"]);
    // Pages: at most the limit, continuing after an id.
    assert_eq!(ids(Some("a/1"), None, 2).await, ["r", "s"]);
    assert_eq!(ids(Some("a/1"), Some("s"), 2).await, ["s-t"]);
    assert_eq!(ids(None, Some("a"), 1).await, ["a-b"]);
    assert_eq!(ids(None, Some("zz"), 5).await, Vec::<String>::new());
    // A deleted document's collection goes when its last document does.
    store.commit(vec![delete("a/2/q/x")].into()).await.unwrap();
    assert_eq!(ids(Some("a/2"), None, 10).await, Vec::<String>::new());
}

pub async fn lists_show_missing_documents<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("m/1", json!({"v": 1})),
            ("m/1/s/x", json!({})),
            ("m/2/s/x", json!({})),
            ("m/2/t/y/u/z", json!({})),
            ("m/3", json!({"v": 3})),
            ("m/4/s/x", json!({})),
            ("m-n/5", json!({})),
            ("other/m/s/x", json!({})),
        ],
    )
    .await;
    let list = |after: Option<&str>, limit: usize| {
        let store = store.clone();
        let after = after.map(str::to_owned);
        async move {
            store
                .list_with_missing(&coll("m"), after.as_deref(), limit)
                .await
                .unwrap()
                .into_iter()
                .map(|child| match child {
                    Child::Document(doc) => {
                        assert!(doc.data.contains_key("v"), "{doc:?}");
                        format!("{}+", doc.path)
                    }
                    Child::Missing(path) => path.to_string(),
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(None, 10).await, ["m/1+", "m/2", "m/3+", "m/4"]);
    assert_eq!(list(None, 2).await, ["m/1+", "m/2"]);
    assert_eq!(list(Some("2"), 1).await, ["m/3+"]);
    assert_eq!(list(Some("3"), 5).await, ["m/4"]);
    assert_eq!(list(Some("4"), 5).await, Vec::<String>::new());
    // A subcollection below a subcollection's document: the same listing one level down.
    let sub = store
        .list_with_missing(&coll("m/2/t"), None, 10)
        .await
        .unwrap();
    assert_eq!(sub, vec![Child::Missing(path("m/2/t/y"))]);
}
