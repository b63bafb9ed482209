//! The backend-independent conformance suite: every behaviour a [`Store`] promises, written once
//! against the trait so each backend runs the same checks. A backend's test file invokes
//! [`conformance_tests!`](crate::conformance_tests) with an async constructor returning the store
//! and a guard (e.g. its temporary directory) kept alive for the test; the macro expands to one
//! `#[tokio::test]` per behaviour. Compiled for this crate's tests and, for other crates' tests,
//! under the `conformance` feature. It does not measure performance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use std::sync::Arc;

use claimdb_model::json::decode_document;
use claimdb_model::{CollectionPath, DocPath, FieldPath, Map, Timestamp, Transform, Value};
use serde_json::json;

use crate::{
    Cursor, Direction, Document, Filter, Op, Order, Precondition, Query, Scope, Store, StoreError,
    Write, WriteOp,
};

/// Expands to one `#[tokio::test]` per conformance behaviour. `$make` is a callable returning a
/// future of `(store, guard)`; the guard lives until the test ends. The calling crate needs
/// `tokio` (with `macros` and `rt-multi-thread`) as a dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            crud_round_trip,
            get_many_reads_in_order,
            create_on_existing_fails,
            update_on_missing_fails,
            delete_missing_succeeds,
            preconditions_are_enforced,
            every_transform_applies_at_commit_time,
            dotted_update_paths_merge,
            failing_write_leaves_batch_unapplied,
            batch_of_500_commits_and_501_is_refused,
            versions_and_commit_times_strictly_increase,
            writes_to_one_document_apply_in_order,
            equality_filters_compare_numbers_by_value,
            range_filters_are_type_bounded,
            not_equal_and_not_in_exclude_missing_fields,
            array_contains_filters,
            invalid_queries_are_refused,
            index_follows_updates_and_deletes,
            multi_field_order_with_descending,
            implicit_order_follows_inequality_then_name,
            cursors_in_all_four_forms,
            cursor_mismatch_is_refused,
            limit_and_offset,
            collection_group_queries,
            mixed_types_follow_the_total_order,
            name_filters_and_order,
            list_pages_through_a_collection,
            scan_and_restore_round_trip,
            concurrent_version_writers_have_one_winner,
            oversized_documents_are_refused,
            every_value_type_round_trips,
            nested_field_filters_and_order,
            equality_with_inequality_and_cursor,
            operand_list_limits_are_inclusive,
            group_name_order_descending_below_a_document,
            equality_pages_in_name_order,
            close_stops_writes,
        );
    };
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = ($make)().await;
                $crate::conformance::$name(::std::sync::Arc::new(store)).await;
            }
        )*
    };
}

fn path(p: &str) -> DocPath {
    DocPath::parse(p).unwrap()
}

fn coll(p: &str) -> CollectionPath {
    CollectionPath::parse(p).unwrap()
}

fn data(j: serde_json::Value) -> Map {
    decode_document(&j).unwrap()
}

fn val(j: serde_json::Value) -> Value {
    claimdb_model::json::decode_value(&j).unwrap()
}

fn fp(f: &str) -> FieldPath {
    FieldPath::parse(f).unwrap()
}

fn set(p: &str, j: serde_json::Value) -> Write {
    Write::new(
        path(p),
        WriteOp::Set {
            data: data(j),
            transforms: vec![],
        },
    )
}

fn create(p: &str, j: serde_json::Value) -> Write {
    Write::new(
        path(p),
        WriteOp::Create {
            data: data(j),
            transforms: vec![],
        },
    )
}

fn update(p: &str, fields: &[(&str, serde_json::Value)]) -> Write {
    Write::new(
        path(p),
        WriteOp::Update {
            fields: fields
                .iter()
                .map(|(f, v)| (fp(f), val(v.clone())))
                .collect(),
            transforms: vec![],
        },
    )
}

fn delete(p: &str) -> Write {
    Write::new(path(p), WriteOp::Delete)
}

async fn put<S: Store>(store: &S, docs: &[(&str, serde_json::Value)]) {
    let writes = docs.iter().map(|(p, j)| set(p, j.clone())).collect();
    store.commit(writes).await.unwrap();
}

fn query(c: &str) -> Query {
    Query::collection(coll(c))
}

fn filter(field: &str, op: &str, value: serde_json::Value) -> Filter {
    Filter {
        field: fp(field),
        op: Op::parse(op).unwrap(),
        value: val(value),
    }
}

fn order(field: &str, direction: Direction) -> Order {
    Order {
        field: fp(field),
        direction,
    }
}

fn ids(docs: &[Document]) -> Vec<&str> {
    docs.iter().map(|d| d.path.id()).collect()
}

async fn ids_of<S: Store>(store: &S, q: &Query) -> Vec<String> {
    let docs = store.query(q).await.unwrap();
    ids(&docs).into_iter().map(String::from).collect()
}

async fn with_filters<S: Store>(store: &S, c: &str, filters: Vec<Filter>) -> Vec<String> {
    let mut q = query(c);
    q.filters = filters;
    ids_of(store, &q).await
}

fn assert_invalid(result: Result<impl std::fmt::Debug, StoreError>, needle: &str) {
    match result {
        Err(StoreError::InvalidArgument(m)) => {
            assert!(
                m.contains(needle),
                "message {m:?} should mention {needle:?}"
            )
        }
        other => panic!("expected InvalidArgument mentioning {needle:?}, got {other:?}"),
    }
}

pub async fn crud_round_trip<S: Store>(store: Arc<S>) {
    let r = store
        .commit(vec![create("users/a", json!({"n": 1}))])
        .await
        .unwrap();
    assert_eq!(r.results.len(), 1);
    assert!(!r.results[0].existed);
    let doc = store.get(&path("users/a")).await.unwrap().unwrap();
    assert_eq!(doc.data, data(json!({"n": 1})));
    assert_eq!(doc.version, r.version);
    assert_eq!(doc.create_time, r.commit_time);
    assert_eq!(doc.update_time, r.commit_time);
    assert_eq!(r.results[0].document.as_ref(), Some(&doc));

    let r2 = store
        .commit(vec![set("users/a", json!({"m": "x"}))])
        .await
        .unwrap();
    assert!(r2.results[0].existed);
    let doc2 = store.get(&path("users/a")).await.unwrap().unwrap();
    assert_eq!(
        doc2.data,
        data(json!({"m": "x"})),
        "set replaces the whole document"
    );
    assert_eq!(
        doc2.create_time, doc.create_time,
        "set keeps the create time"
    );
    assert!(doc2.update_time > doc.update_time);
    assert!(doc2.version > doc.version);

    let r3 = store.commit(vec![delete("users/a")]).await.unwrap();
    assert!(r3.results[0].existed);
    assert!(r3.results[0].document.is_none());
    assert!(store.get(&path("users/a")).await.unwrap().is_none());
    assert!(store.get(&path("users/zz")).await.unwrap().is_none());
    store.ping().await.unwrap();
}

pub async fn get_many_reads_in_order<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[("c/a", json!({"v": 1})), ("c/b", json!({"v": 2}))],
    )
    .await;
    let got = store
        .get_many(&[path("c/b"), path("c/missing"), path("c/a")])
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].as_ref().unwrap().path, path("c/b"));
    assert!(got[1].is_none());
    assert_eq!(got[2].as_ref().unwrap().data, data(json!({"v": 1})));
}

pub async fn create_on_existing_fails<S: Store>(store: Arc<S>) {
    put(&*store, &[("c/a", json!({"v": 1}))]).await;
    let err = store
        .commit(vec![create("c/a", json!({"v": 2}))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let doc = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(doc.data, data(json!({"v": 1})));
}

pub async fn update_on_missing_fails<S: Store>(store: Arc<S>) {
    let err = store
        .commit(vec![update("c/a", &[("v", json!(1))])])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(store.get(&path("c/a")).await.unwrap().is_none());
}

pub async fn delete_missing_succeeds<S: Store>(store: Arc<S>) {
    let r = store.commit(vec![delete("c/none")]).await.unwrap();
    assert!(!r.results[0].existed);
    let err = store
        .commit(vec![
            delete("c/none").with_precondition(Precondition::Exists),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
}

pub async fn preconditions_are_enforced<S: Store>(store: Arc<S>) {
    let missing = |w: Write| w.with_precondition(Precondition::Missing);
    let r = store
        .commit(vec![missing(set("c/a", json!({"v": 1})))])
        .await
        .unwrap();
    let v1 = r.version;
    let err = store
        .commit(vec![missing(set("c/a", json!({"v": 2})))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
    let err = store
        .commit(vec![
            set("c/b", json!({})).with_precondition(Precondition::Exists),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
    assert!(store.get(&path("c/b")).await.unwrap().is_none());
    store
        .commit(vec![
            set("c/a", json!({"v": 3})).with_precondition(Precondition::Exists),
        ])
        .await
        .unwrap();
    // The version moved on: the old one no longer holds.
    let err = store
        .commit(vec![
            set("c/a", json!({"v": 4})).with_precondition(Precondition::Version(v1)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
    let current = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(current.data, data(json!({"v": 3})));
    store
        .commit(vec![
            update("c/a", &[("v", json!(5))])
                .with_precondition(Precondition::Version(current.version)),
        ])
        .await
        .unwrap();
    let err = store
        .commit(vec![
            delete("c/x").with_precondition(Precondition::Version(1)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
    assert_eq!(
        store.get(&path("c/a")).await.unwrap().unwrap().data,
        data(json!({"v": 5}))
    );
}

pub async fn every_transform_applies_at_commit_time<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[(
            "c/a",
            json!({"n": 1, "f": 1.5, "tags": ["x", "y"], "gone": true, "m": {"k": 1}}),
        )],
    )
    .await;
    let r = store
        .commit(vec![Write::new(
            path("c/a"),
            WriteOp::Update {
                fields: vec![],
                transforms: vec![
                    (fp("ts"), Transform::ServerTimestamp),
                    (fp("n"), Transform::Increment(Value::Int(2))),
                    (fp("f"), Transform::Increment(Value::Int(1))),
                    (fp("fresh"), Transform::Increment(Value::Double(0.5))),
                    (
                        fp("tags"),
                        Transform::ArrayUnion(vec![val(json!("y")), val(json!("z"))]),
                    ),
                    (fp("other"), Transform::ArrayRemove(vec![val(json!(1))])),
                    (fp("gone"), Transform::Delete),
                    (fp("m.k"), Transform::Increment(Value::Int(10))),
                ],
            },
        )])
        .await
        .unwrap();
    let doc = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(doc.data.get("ts"), Some(&Value::Timestamp(r.commit_time)));
    assert_eq!(doc.data, {
        let mut m = data(
            json!({"n": 3, "f": 2.5, "fresh": 0.5, "tags": ["x", "y", "z"], "other": [], "m": {"k": 11}}),
        );
        m.insert("ts".into(), Value::Timestamp(r.commit_time));
        m
    });
    // Remove, and transforms in a set (server timestamp on a new document).
    let r = store
        .commit(vec![
            Write::new(
                path("c/a"),
                WriteOp::Update {
                    fields: vec![],
                    transforms: vec![(fp("tags"), Transform::ArrayRemove(vec![val(json!("x"))]))],
                },
            ),
            Write::new(
                path("c/b"),
                WriteOp::Set {
                    data: data(json!({"a": 1})),
                    transforms: vec![(fp("at"), Transform::ServerTimestamp)],
                },
            ),
        ])
        .await
        .unwrap();
    let a = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(a.data.get("tags"), Some(&val(json!(["y", "z"]))));
    let b = store.get(&path("c/b")).await.unwrap().unwrap();
    assert_eq!(b.data.get("at"), Some(&Value::Timestamp(r.commit_time)));
    // An increment by a non-number is refused and changes nothing.
    let err = store
        .commit(vec![Write::new(
            path("c/a"),
            WriteOp::Update {
                fields: vec![],
                transforms: vec![(fp("n"), Transform::Increment(val(json!("x"))))],
            },
        )])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
    assert_eq!(store.get(&path("c/a")).await.unwrap().unwrap(), a);
}

pub async fn dotted_update_paths_merge<S: Store>(store: Arc<S>) {
    put(&*store, &[("c/a", json!({"a": {"b": 1, "c": 2}, "x": 1}))]).await;
    store
        .commit(vec![update(
            "c/a",
            &[
                ("a.b", json!(10)),
                ("n.e.w", json!(true)),
                ("`x.y`", json!(3)),
            ],
        )])
        .await
        .unwrap();
    let doc = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(
        doc.data,
        data(json!({"a": {"b": 10, "c": 2}, "x": 1, "n": {"e": {"w": true}}, "x.y": 3}))
    );
    // The index sees nested fields written through dotted paths.
    assert_eq!(
        with_filters(&*store, "c", vec![filter("a.b", "==", json!(10))]).await,
        vec!["a"]
    );
    assert_eq!(
        with_filters(&*store, "c", vec![filter("`x.y`", "==", json!(3))]).await,
        vec!["a"]
    );
}

pub async fn failing_write_leaves_batch_unapplied<S: Store>(store: Arc<S>) {
    put(&*store, &[("c/keep", json!({"v": 1}))]).await;
    for k in 0..3 {
        let mut writes = vec![
            set("c/one", json!({"v": 1})),
            update("c/keep", &[("v", json!(2))]),
            delete("c/keep2"),
        ];
        writes.insert(k, update("c/missing", &[("v", json!(1))]));
        let err = store.commit(writes).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(store.get(&path("c/one")).await.unwrap().is_none());
        assert_eq!(
            store.get(&path("c/keep")).await.unwrap().unwrap().data,
            data(json!({"v": 1}))
        );
        assert!(
            with_filters(&*store, "c", vec![filter("v", "==", json!(2))])
                .await
                .is_empty()
        );
    }
}

pub async fn batch_of_500_commits_and_501_is_refused<S: Store>(store: Arc<S>) {
    let writes: Vec<Write> = (0..501)
        .map(|i| set(&format!("big/d{i:03}"), json!({"i": i})))
        .collect();
    let err = store.commit(writes.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
    assert!(store.list(&coll("big"), 10, None).await.unwrap().is_empty());
    let r = store.commit(writes[..500].to_vec()).await.unwrap();
    assert_eq!(r.results.len(), 500);
    let all = store.list(&coll("big"), 1000, None).await.unwrap();
    assert_eq!(all.len(), 500);
    assert!(
        all.iter().all(|d| d.version == r.version),
        "one commit, one version"
    );
}

pub async fn versions_and_commit_times_strictly_increase<S: Store>(store: Arc<S>) {
    let mut last: Option<(u64, Timestamp)> = None;
    for i in 0..20 {
        let r = store
            .commit(vec![set(&format!("c/d{}", i % 3), json!({"i": i}))])
            .await
            .unwrap();
        if let Some((v, t)) = last {
            assert!(r.version > v, "version {} after {v}", r.version);
            assert!(r.commit_time > t);
        }
        last = Some((r.version, r.commit_time));
    }
    let r = store
        .commit(vec![set("c/x", json!({})), set("c/y", json!({}))])
        .await
        .unwrap();
    assert!(
        r.results
            .iter()
            .all(|w| w.document.as_ref().unwrap().version == r.version)
    );
}

pub async fn writes_to_one_document_apply_in_order<S: Store>(store: Arc<S>) {
    let r = store
        .commit(vec![
            create("c/a", json!({"n": 1})),
            update("c/a", &[("m", json!(2))]),
            Write::new(
                path("c/a"),
                WriteOp::Update {
                    fields: vec![],
                    transforms: vec![(fp("n"), Transform::Increment(Value::Int(5)))],
                },
            ),
            delete("c/b"),
            create("c/b", json!({"again": true})),
        ])
        .await
        .unwrap();
    assert!(r.results[1].existed, "the update sees the create before it");
    let doc = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(doc.data, data(json!({"n": 6, "m": 2})));
    assert!(store.get(&path("c/b")).await.unwrap().is_some());
}

pub async fn equality_filters_compare_numbers_by_value<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("n/i1", json!({"v": 1})),
            ("n/d1", json!({"v": 1.0})),
            ("n/s1", json!({"v": "1"})),
            ("n/i2", json!({"v": 2})),
            ("n/none", json!({"w": 1})),
            ("n/nul", json!({"v": null})),
            ("n/arr", json!({"v": [1]})),
        ],
    )
    .await;
    assert_eq!(
        with_filters(&*store, "n", vec![filter("v", "==", json!(1))]).await,
        vec!["d1", "i1"]
    );
    assert_eq!(
        with_filters(&*store, "n", vec![filter("v", "==", json!(1.0))]).await,
        vec!["d1", "i1"]
    );
    assert_eq!(
        with_filters(&*store, "n", vec![filter("v", "==", json!("1"))]).await,
        vec!["s1"]
    );
    assert_eq!(
        with_filters(&*store, "n", vec![filter("v", "==", json!(null))]).await,
        vec!["nul"]
    );
    assert_eq!(
        with_filters(&*store, "n", vec![filter("v", "==", json!([1]))]).await,
        vec!["arr"]
    );
    assert_eq!(
        with_filters(&*store, "n", vec![filter("v", "in", json!([2, "1", 7]))]).await,
        vec!["i2", "s1"]
    );
    assert_eq!(
        with_filters(
            &*store,
            "n",
            vec![filter("v", "==", json!(1)), filter("w", "==", json!(1))]
        )
        .await,
        Vec::<String>::new()
    );
}

pub async fn range_filters_are_type_bounded<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("r/a", json!({"v": 1})),
            ("r/b", json!({"v": 2.5})),
            ("r/c", json!({"v": 3})),
            ("r/s", json!({"v": "zzz"})),
            ("r/t", json!({"v": true})),
            ("r/n", json!({"v": null})),
            ("r/m", json!({"x": 1})),
        ],
    )
    .await;
    assert_eq!(
        with_filters(&*store, "r", vec![filter("v", ">", json!(1))]).await,
        vec!["b", "c"]
    );
    assert_eq!(
        with_filters(&*store, "r", vec![filter("v", ">=", json!(1.0))]).await,
        vec!["a", "b", "c"]
    );
    assert_eq!(
        with_filters(&*store, "r", vec![filter("v", "<", json!(3))]).await,
        vec!["a", "b"]
    );
    assert_eq!(
        with_filters(&*store, "r", vec![filter("v", "<=", json!(3))]).await,
        vec!["a", "b", "c"]
    );
    assert_eq!(
        with_filters(&*store, "r", vec![filter("v", ">", json!("a"))]).await,
        vec!["s"]
    );
    assert_eq!(
        with_filters(&*store, "r", vec![filter("v", "<", json!("a"))]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        with_filters(
            &*store,
            "r",
            vec![filter("v", ">", json!(1)), filter("v", "<", json!(3))]
        )
        .await,
        vec!["b"]
    );
    assert_eq!(
        with_filters(&*store, "r", vec![filter("v", ">=", json!(false))]).await,
        vec!["t"]
    );
}

pub async fn not_equal_and_not_in_exclude_missing_fields<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("x/a", json!({"v": 1})),
            ("x/b", json!({"v": 2})),
            ("x/c", json!({"v": null})),
            ("x/d", json!({"w": 1})),
            ("x/e", json!({"v": "s"})),
        ],
    )
    .await;
    // Ordered by v (implicitly), then name: null < numbers < strings.
    assert_eq!(
        with_filters(&*store, "x", vec![filter("v", "!=", json!(1))]).await,
        vec!["c", "b", "e"]
    );
    assert_eq!(
        with_filters(&*store, "x", vec![filter("v", "!=", json!(null))]).await,
        vec!["a", "b", "e"]
    );
    assert_eq!(
        with_filters(&*store, "x", vec![filter("v", "not-in", json!([1, "s"]))]).await,
        vec!["b"]
    );
}

pub async fn array_contains_filters<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("a/1", json!({"tags": ["red", "blue"], "n": 1})),
            ("a/2", json!({"tags": ["blue", 3], "n": 2})),
            ("a/3", json!({"tags": "blue", "n": 3})),
            ("a/4", json!({"tags": [3.0, "green"], "n": 4})),
        ],
    )
    .await;
    assert_eq!(
        with_filters(
            &*store,
            "a",
            vec![filter("tags", "array-contains", json!("blue"))]
        )
        .await,
        vec!["1", "2"]
    );
    assert_eq!(
        with_filters(
            &*store,
            "a",
            vec![filter("tags", "array-contains", json!(3))]
        )
        .await,
        vec!["2", "4"]
    );
    assert_eq!(
        with_filters(
            &*store,
            "a",
            vec![filter(
                "tags",
                "array-contains-any",
                json!(["red", "green"])
            )]
        )
        .await,
        vec!["1", "4"]
    );
    assert_eq!(
        with_filters(
            &*store,
            "a",
            vec![
                filter("tags", "array-contains", json!("blue")),
                filter("n", ">", json!(1))
            ]
        )
        .await,
        vec!["2"]
    );
}

pub async fn invalid_queries_are_refused<S: Store>(store: Arc<S>) {
    let run = |filters: Vec<Filter>| {
        let store = store.clone();
        async move {
            let mut q = query("c");
            q.filters = filters;
            store.query(&q).await
        }
    };
    let many: Vec<i64> = (0..31).collect();
    assert_invalid(run(vec![filter("v", "in", json!(many))]).await, "1 to 30");
    assert_invalid(run(vec![filter("v", "in", json!([]))]).await, "1 to 30");
    assert_invalid(
        run(vec![filter("v", "in", json!(1))]).await,
        "must be an array",
    );
    assert_invalid(
        run(vec![filter("v", "array-contains-any", json!(many))]).await,
        "1 to 30",
    );
    let eleven: Vec<i64> = (0..11).collect();
    assert_invalid(
        run(vec![filter("v", "not-in", json!(eleven))]).await,
        "1 to 10",
    );
    assert_invalid(
        run(vec![
            filter("a", "array-contains", json!(1)),
            filter("b", "array-contains-any", json!([1])),
        ])
        .await,
        "at most one array-contains",
    );
    assert_invalid(
        run(vec![filter("__name__", "==", json!(5))]).await,
        "__name__",
    );
    let mut q = query("c");
    q.limit = Some(0);
    assert_invalid(store.query(&q).await, "limit");
}

pub async fn index_follows_updates_and_deletes<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("c/a", json!({"v": 1, "t": ["x"]})),
            ("c/b", json!({"v": 1})),
        ],
    )
    .await;
    store
        .commit(vec![update("c/a", &[("v", json!(2)), ("t", json!(["y"]))])])
        .await
        .unwrap();
    assert_eq!(
        with_filters(&*store, "c", vec![filter("v", "==", json!(1))]).await,
        vec!["b"]
    );
    assert_eq!(
        with_filters(&*store, "c", vec![filter("v", "==", json!(2))]).await,
        vec!["a"]
    );
    assert!(
        with_filters(
            &*store,
            "c",
            vec![filter("t", "array-contains", json!("x"))]
        )
        .await
        .is_empty()
    );
    assert_eq!(
        with_filters(&*store, "c", vec![filter("v", ">", json!(0))]).await,
        vec!["b", "a"]
    );
    store.commit(vec![delete("c/b")]).await.unwrap();
    assert!(
        with_filters(&*store, "c", vec![filter("v", "==", json!(1))])
            .await
            .is_empty()
    );
    assert_eq!(
        with_filters(&*store, "c", vec![filter("v", ">", json!(0))]).await,
        vec!["a"]
    );
}

pub async fn multi_field_order_with_descending<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("o/a", json!({"x": 1, "y": "b"})),
            ("o/b", json!({"x": 2, "y": "a"})),
            ("o/c", json!({"x": 1, "y": "c"})),
            ("o/d", json!({"x": 2, "y": "a"})),
            ("o/e", json!({"y": "z"})),
        ],
    )
    .await;
    let mut q = query("o");
    q.order_by = vec![order("x", Direction::Desc), order("y", Direction::Asc)];
    // Ties on (x, y) break by name in the last direction (ascending); e lacks x.
    assert_eq!(ids_of(&*store, &q).await, vec!["b", "d", "a", "c"]);
    q.order_by = vec![order("x", Direction::Asc), order("y", Direction::Desc)];
    assert_eq!(ids_of(&*store, &q).await, vec!["c", "a", "d", "b"]);
    q.order_by = vec![order("y", Direction::Desc)];
    assert_eq!(ids_of(&*store, &q).await, vec!["e", "c", "a", "d", "b"]);
}

pub async fn implicit_order_follows_inequality_then_name<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("i/a", json!({"v": 3})),
            ("i/b", json!({"v": 1})),
            ("i/c", json!({"v": 2})),
            ("i/d", json!({"v": 1})),
        ],
    )
    .await;
    assert_eq!(
        with_filters(&*store, "i", vec![filter("v", ">=", json!(1))]).await,
        vec!["b", "d", "c", "a"]
    );
    assert_eq!(ids_of(&*store, &query("i")).await, vec!["a", "b", "c", "d"]);
    let mut q = query("i");
    q.filters = vec![filter("v", "<", json!(3))];
    q.order_by = vec![order("v", Direction::Desc)];
    assert_eq!(ids_of(&*store, &q).await, vec!["c", "d", "b"]);
}

pub async fn cursors_in_all_four_forms<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("k/a", json!({"v": 1})),
            ("k/b", json!({"v": 2})),
            ("k/c", json!({"v": 2})),
            ("k/d", json!({"v": 3})),
        ],
    )
    .await;
    let base = {
        let mut q = query("k");
        q.order_by = vec![order("v", Direction::Asc)];
        q
    };
    let at = |values: Vec<serde_json::Value>, inclusive: bool| Cursor {
        values: values.into_iter().map(val).collect(),
        inclusive,
    };
    let run = |start: Option<Cursor>, end: Option<Cursor>| {
        let mut q = base.clone();
        q.start = start;
        q.end = end;
        let store = store.clone();
        async move { ids_of(&*store, &q).await }
    };
    assert_eq!(
        run(Some(at(vec![json!(2)], true)), None).await,
        vec!["b", "c", "d"]
    );
    assert_eq!(run(Some(at(vec![json!(2)], false)), None).await, vec!["d"]);
    assert_eq!(
        run(None, Some(at(vec![json!(2)], true))).await,
        vec!["a", "b", "c"]
    );
    assert_eq!(run(None, Some(at(vec![json!(2)], false))).await, vec!["a"]);
    // With the name as the second value: after (2, b) comes c.
    assert_eq!(
        run(Some(at(vec![json!(2), json!("b")], false)), None).await,
        vec!["c", "d"]
    );
    assert_eq!(
        run(
            Some(at(vec![json!(2), json!({"$ref": "k/c"})], true)),
            Some(at(vec![json!(3)], false))
        )
        .await,
        vec!["c"]
    );
    // Descending: start after 2 means values below 2.
    let mut q = base.clone();
    q.order_by = vec![order("v", Direction::Desc)];
    q.start = Some(at(vec![json!(2)], false));
    assert_eq!(ids_of(&*store, &q).await, vec!["a"]);
    q.start = Some(at(vec![json!(3)], true));
    q.end = Some(at(vec![json!(2)], true));
    assert_eq!(ids_of(&*store, &q).await, vec!["d", "c", "b"]);
    // Cursors on the implicit name order of a plain collection query.
    let mut q = query("k");
    q.start = Some(at(vec![json!("b")], false));
    q.end = Some(at(vec![json!("d")], false));
    assert_eq!(ids_of(&*store, &q).await, vec!["c"]);
}

pub async fn cursor_mismatch_is_refused<S: Store>(store: Arc<S>) {
    let mut q = query("k");
    q.order_by = vec![order("v", Direction::Asc)];
    q.start = Some(Cursor {
        values: vec![Value::Int(1), val(json!("a")), Value::Int(3)],
        inclusive: true,
    });
    assert_invalid(store.query(&q).await, "cursor does not match the order");
    q.start = Some(Cursor {
        values: vec![Value::Int(1), val(json!({"$ref": "other/a"}))],
        inclusive: true,
    });
    assert_invalid(store.query(&q).await, "cursor does not match the order");
    q.start = Some(Cursor {
        values: vec![Value::Int(1), Value::Int(7)],
        inclusive: true,
    });
    assert_invalid(store.query(&q).await, "cursor does not match the order");
    let mut q = query("k");
    q.end = Some(Cursor {
        values: vec![val(json!("a/b"))],
        inclusive: true,
    });
    assert_invalid(store.query(&q).await, "cursor does not match the order");
}

pub async fn limit_and_offset<S: Store>(store: Arc<S>) {
    let docs: Vec<(String, serde_json::Value)> = (0..10)
        .map(|i| (format!("l/d{i}"), json!({"i": i, "even": i % 2 == 0})))
        .collect();
    let refs: Vec<(&str, serde_json::Value)> =
        docs.iter().map(|(p, j)| (p.as_str(), j.clone())).collect();
    put(&*store, &refs).await;
    let mut q = query("l");
    q.order_by = vec![order("i", Direction::Desc)];
    q.limit = Some(3);
    assert_eq!(ids_of(&*store, &q).await, vec!["d9", "d8", "d7"]);
    q.offset = 2;
    assert_eq!(ids_of(&*store, &q).await, vec!["d7", "d6", "d5"]);
    q.offset = 9;
    assert_eq!(ids_of(&*store, &q).await, vec!["d0"]);
    q.offset = 20;
    assert!(ids_of(&*store, &q).await.is_empty());
    let mut q = query("l");
    q.filters = vec![filter("even", "==", json!(true))];
    q.order_by = vec![order("i", Direction::Asc)];
    q.offset = 1;
    q.limit = Some(2);
    assert_eq!(ids_of(&*store, &q).await, vec!["d2", "d4"]);
    let mut q = query("l");
    q.limit = Some(4);
    q.offset = 8;
    assert_eq!(ids_of(&*store, &q).await, vec!["d8", "d9"]);
}

pub async fn collection_group_queries<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("posts/p0", json!({"n": 0})),
            ("users/a/posts/p1", json!({"n": 1})),
            ("users/a/posts/p2", json!({"n": 2})),
            ("users/b/posts/p3", json!({"n": 1})),
            ("users/a/drafts/p4", json!({"n": 1})),
            ("users/ab/posts/p5", json!({"n": 1})),
        ],
    )
    .await;
    let group = |under: Option<&str>| Query {
        scope: Scope::Group {
            collection_id: "posts".into(),
            under: under.map(path),
        },
        ..query("posts")
    };
    assert_eq!(
        ids_of(&*store, &group(None)).await,
        vec!["p0", "p1", "p2", "p5", "p3"]
    );
    let mut q = group(None);
    q.filters = vec![filter("n", "==", json!(1))];
    assert_eq!(ids_of(&*store, &q).await, vec!["p1", "p5", "p3"]);
    q.filters = vec![filter("n", ">=", json!(1))];
    assert_eq!(ids_of(&*store, &q).await, vec!["p1", "p5", "p3", "p2"]);
    let mut q = group(Some("users/a"));
    assert_eq!(ids_of(&*store, &q).await, vec!["p1", "p2"]);
    q.filters = vec![filter("n", "==", json!(1))];
    assert_eq!(ids_of(&*store, &q).await, vec!["p1"]);
    q.filters = vec![filter("n", ">", json!(0))];
    q.order_by = vec![order("n", Direction::Desc)];
    assert_eq!(ids_of(&*store, &q).await, vec!["p2", "p1"]);
    // Paging a group by name with a reference cursor.
    let mut q = group(None);
    q.start = Some(Cursor {
        values: vec![val(json!({"$ref": "users/a/posts/p2"}))],
        inclusive: false,
    });
    q.limit = Some(2);
    assert_eq!(ids_of(&*store, &q).await, vec!["p5", "p3"]);
}

pub async fn mixed_types_follow_the_total_order<S: Store>(store: Arc<S>) {
    let values = [
        json!(null),
        json!(false),
        json!(true),
        json!({"$double": "NaN"}),
        json!(-5),
        json!(1.5),
        json!(2),
        json!({"$timestamp": "2026-01-01T00:00:00Z"}),
        json!(""),
        json!("abc"),
        json!({"$bytes": "AAE="}),
        json!({"$ref": "a/b"}),
        json!({"$geo": [1.0, 2.0]}),
        json!([1, 2]),
        json!([2]),
        json!({"a": 1}),
    ];
    // Ids in reverse, so that name order alone would be wrong.
    let docs: Vec<(String, serde_json::Value)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("t/{:02}", 99 - i), json!({"v": v})))
        .collect();
    let refs: Vec<(&str, serde_json::Value)> =
        docs.iter().map(|(p, j)| (p.as_str(), j.clone())).collect();
    put(&*store, &refs).await;
    let mut q = query("t");
    q.order_by = vec![order("v", Direction::Asc)];
    let expected: Vec<String> = (0..values.len())
        .map(|i| format!("{:02}", 99 - i))
        .collect();
    assert_eq!(ids_of(&*store, &q).await, expected);
    q.order_by = vec![order("v", Direction::Desc)];
    let reversed: Vec<String> = expected.iter().rev().cloned().collect();
    assert_eq!(ids_of(&*store, &q).await, reversed);
}

pub async fn name_filters_and_order<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("n/a", json!({})),
            ("n/b", json!({})),
            ("n/c", json!({})),
            ("m/a", json!({})),
        ],
    )
    .await;
    assert_eq!(
        with_filters(
            &*store,
            "n",
            vec![filter("__name__", "==", json!({"$ref": "n/b"}))]
        )
        .await,
        vec!["b"]
    );
    assert_eq!(
        with_filters(
            &*store,
            "n",
            vec![filter(
                "__name__",
                "in",
                json!([{"$ref": "n/c"}, {"$ref": "m/a"}, "a"])
            )]
        )
        .await,
        vec!["a", "c"]
    );
    assert_eq!(
        with_filters(
            &*store,
            "n",
            vec![filter("__name__", ">", json!({"$ref": "n/a"}))]
        )
        .await,
        vec!["b", "c"]
    );
    let mut q = query("n");
    q.order_by = vec![order("__name__", Direction::Desc)];
    assert_eq!(ids_of(&*store, &q).await, vec!["c", "b", "a"]);
}

pub async fn list_pages_through_a_collection<S: Store>(store: Arc<S>) {
    let docs: Vec<(String, serde_json::Value)> = (0..7)
        .map(|i| (format!("p/d{i}"), json!({"i": i})))
        .collect();
    let mut refs: Vec<(&str, serde_json::Value)> =
        docs.iter().map(|(p, j)| (p.as_str(), j.clone())).collect();
    refs.push(("p/d3/sub/x", json!({})));
    refs.push(("pp/d0", json!({})));
    put(&*store, &refs).await;
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(&coll("p"), 3, after.as_deref()).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|d| d.path.id().to_string()));
        after = page.last().map(|d| d.path.id().to_string());
    }
    assert_eq!(seen, (0..7).map(|i| format!("d{i}")).collect::<Vec<_>>());
}

pub async fn scan_and_restore_round_trip<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("a/1", json!({"v": 1, "t": ["x"]})),
            ("a/1/s/1", json!({"deep": true})),
            ("a-b/1", json!({"v": 2})),
            ("b/1", json!({"v": {"$timestamp": "2026-01-01T00:00:00Z"}})),
        ],
    )
    .await;
    let mut all = Vec::new();
    let mut after: Option<DocPath> = None;
    loop {
        let page = store.scan(after.as_ref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().map(|d| d.path.clone());
        all.extend(page);
    }
    let order: Vec<&str> = all.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        order,
        vec!["a/1", "a/1/s/1", "a-b/1", "b/1"],
        "segment-wise path order"
    );
    // Wipe, then restore with metadata intact and a high version.
    store
        .commit(
            all.iter()
                .map(|d| Write::new(d.path.clone(), WriteOp::Delete))
                .collect(),
        )
        .await
        .unwrap();
    assert!(store.scan(None, 10).await.unwrap().is_empty());
    let mut restored = all.clone();
    restored[0].version = 1_000_000;
    store.restore(restored.clone()).await.unwrap();
    assert_eq!(store.scan(None, 10).await.unwrap(), restored);
    // Restored documents are indexed, and later commits get higher versions.
    assert_eq!(
        with_filters(
            &*store,
            "a",
            vec![filter("t", "array-contains", json!("x"))]
        )
        .await,
        vec!["1"]
    );
    let r = store.commit(vec![set("z/1", json!({}))]).await.unwrap();
    assert!(r.version > 1_000_000);
    assert!(r.commit_time >= restored.iter().map(|d| d.update_time).max().unwrap());
}

pub async fn concurrent_version_writers_have_one_winner<S: Store>(store: Arc<S>) {
    put(&*store, &[("cc/counter", json!({"n": 0}))]).await;
    let v0 = store
        .get(&path("cc/counter"))
        .await
        .unwrap()
        .unwrap()
        .version;
    // Everyone races with the same expected version: exactly one wins.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .commit(vec![
                    update("cc/counter", &[("n", json!(i))])
                        .with_precondition(Precondition::Version(v0)),
                ])
                .await
        });
    }
    let mut wins = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::FailedPrecondition(_)) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    // Read-modify-write with retries: no increment is lost.
    put(&*store, &[("cc/counter", json!({"n": 0}))]).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            for _ in 0..5 {
                loop {
                    let doc = store.get(&path("cc/counter")).await.unwrap().unwrap();
                    let Some(Value::Int(n)) = doc.data.get("n") else {
                        panic!("n is not an int")
                    };
                    let w = update("cc/counter", &[("n", json!(n + 1))])
                        .with_precondition(Precondition::Version(doc.version));
                    match store.commit(vec![w]).await {
                        Ok(_) => break,
                        Err(StoreError::FailedPrecondition(_)) => continue,
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let doc = store.get(&path("cc/counter")).await.unwrap().unwrap();
    assert_eq!(doc.data.get("n"), Some(&Value::Int(40)));
}

pub async fn oversized_documents_are_refused<S: Store>(store: Arc<S>) {
    let big = "x".repeat(claimdb_model::limits::MAX_DOCUMENT_BYTES);
    let err = store
        .commit(vec![
            set("s/ok", json!({"v": 1})),
            set("s/big", json!({"v": big})),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
    assert!(store.get(&path("s/ok")).await.unwrap().is_none());
    assert!(store.get(&path("s/big")).await.unwrap().is_none());
    // Growing a document past the limit through an update is refused too.
    put(&*store, &[("s/grow", json!({"a": "x".repeat(600_000)}))]).await;
    let err = store
        .commit(vec![update("s/grow", &[("b", json!("y".repeat(600_000)))])])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
    assert!(
        !store
            .get(&path("s/grow"))
            .await
            .unwrap()
            .unwrap()
            .data
            .contains_key("b")
    );
}

pub async fn close_stops_writes<S: Store>(store: Arc<S>) {
    let r = store
        .commit(vec![set("c/a", json!({"v": 1}))])
        .await
        .unwrap();
    store.close().await.unwrap();
    store.close().await.unwrap();
    let err = store.commit(vec![set("c/b", json!({}))]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // What was acknowledged before the close is there.
    if let Ok(Some(doc)) = store.get(&path("c/a")).await {
        assert_eq!(doc.version, r.version);
    }
}

pub async fn every_value_type_round_trips<S: Store>(store: Arc<S>) {
    let body = json!({
        "null": null,
        "t": true,
        "i": -9007199254740993i64,
        "d": 2.5,
        "whole": 2.0,
        "inf": {"$double": "-Infinity"},
        "ts": {"$timestamp": "1969-12-31T23:59:59.999999Z"},
        "s": "héllo \u{0} \"q\"",
        "b": {"$bytes": "AP8="},
        "r": {"$ref": "users/alice/posts/p1"},
        "g": {"$geo": [-33.5, 151.25]},
        "a": [1, "x", [2], {"k": null}],
        "m": {"deep": {"deeper": {"x": 1}}, "sp ace.dot": "odd name"},
    });
    put(&*store, &[("v/all", body.clone())]).await;
    let doc = store.get(&path("v/all")).await.unwrap().unwrap();
    assert_eq!(doc.data, data(body));
    assert_eq!(
        doc.data.get("whole"),
        Some(&Value::Double(2.0)),
        "2.0 stays a double"
    );
}

pub async fn nested_field_filters_and_order<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("nf/a", json!({"m": {"v": 3, "w": "x"}})),
            ("nf/b", json!({"m": {"v": 1}})),
            ("nf/c", json!({"m": {"v": 2, "w": "x"}})),
            ("nf/d", json!({"m": 5})),
        ],
    )
    .await;
    let mut q = query("nf");
    q.filters = vec![filter("m.v", ">", json!(1))];
    q.order_by = vec![order("m.v", Direction::Desc)];
    assert_eq!(ids_of(&*store, &q).await, vec!["a", "c"]);
    assert_eq!(
        with_filters(&*store, "nf", vec![filter("m.w", "==", json!("x"))]).await,
        vec!["a", "c"]
    );
    assert_eq!(
        with_filters(&*store, "nf", vec![filter("m", "==", json!({"v": 1}))]).await,
        vec!["b"]
    );
}

pub async fn equality_with_inequality_and_cursor<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("e/a", json!({"s": "on", "v": 1})),
            ("e/b", json!({"s": "on", "v": 2})),
            ("e/c", json!({"s": "off", "v": 3})),
            ("e/d", json!({"s": "on", "v": 3})),
            ("e/e", json!({"s": "on", "v": 4})),
        ],
    )
    .await;
    let mut q = query("e");
    q.filters = vec![filter("s", "==", json!("on")), filter("v", ">", json!(1))];
    assert_eq!(ids_of(&*store, &q).await, vec!["b", "d", "e"]);
    q.start = Some(Cursor {
        values: vec![Value::Int(2)],
        inclusive: false,
    });
    q.limit = Some(1);
    assert_eq!(ids_of(&*store, &q).await, vec!["d"]);
    let mut q = query("e");
    q.filters = vec![filter("v", "not-in", json!([1, 4]))];
    q.order_by = vec![order("v", Direction::Desc)];
    q.limit = Some(2);
    assert_eq!(ids_of(&*store, &q).await, vec!["d", "c"]);
}

pub async fn operand_list_limits_are_inclusive<S: Store>(store: Arc<S>) {
    put(&*store, &[("ol/a", json!({"v": 29, "t": [29]}))]).await;
    let thirty: Vec<i64> = (0..30).collect();
    let ten: Vec<i64> = (0..10).collect();
    assert_eq!(
        with_filters(&*store, "ol", vec![filter("v", "in", json!(thirty))]).await,
        vec!["a"]
    );
    assert_eq!(
        with_filters(
            &*store,
            "ol",
            vec![filter("t", "array-contains-any", json!(thirty))]
        )
        .await,
        vec!["a"]
    );
    assert_eq!(
        with_filters(&*store, "ol", vec![filter("v", "not-in", json!(ten))]).await,
        vec!["a"]
    );
}

pub async fn group_name_order_descending_below_a_document<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("g/x", json!({})),
            ("g/x/c/1", json!({})),
            ("g/x/c/2", json!({})),
            ("g/x/sub/y/c/3", json!({})),
            ("g/y/c/4", json!({})),
            ("c/5", json!({})),
        ],
    )
    .await;
    let mut q = Query {
        scope: Scope::Group {
            collection_id: "c".into(),
            under: Some(path("g/x")),
        },
        ..query("c")
    };
    q.order_by = vec![order("__name__", Direction::Desc)];
    assert_eq!(ids_of(&*store, &q).await, vec!["3", "2", "1"]);
    q.limit = Some(2);
    q.start = Some(Cursor {
        values: vec![val(json!({"$ref": "g/x/c/2"}))],
        inclusive: true,
    });
    assert_eq!(ids_of(&*store, &q).await, vec!["2", "1"]);
}

pub async fn equality_pages_in_name_order<S: Store>(store: Arc<S>) {
    let docs: Vec<(String, serde_json::Value)> = (0..20)
        .map(|i| {
            let owner = if i % 2 == 0 { "a" } else { "b" };
            (
                format!("eq/d{i:02}"),
                json!({"owner": owner, "tags": [owner, "all"]}),
            )
        })
        .collect();
    let refs: Vec<(&str, serde_json::Value)> =
        docs.iter().map(|(p, j)| (p.as_str(), j.clone())).collect();
    put(&*store, &refs).await;
    for f in [
        filter("owner", "==", json!("a")),
        filter("tags", "array-contains", json!("a")),
    ] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = query("eq");
            q.filters = vec![f.clone()];
            q.limit = Some(3);
            q.start = after.as_ref().map(|id| Cursor {
                values: vec![Value::String(id.clone())],
                inclusive: false,
            });
            let page = ids_of(&*store, &q).await;
            if page.is_empty() {
                break;
            }
            after = page.last().cloned();
            seen.extend(page);
        }
        let evens: Vec<String> = (0..20).step_by(2).map(|i| format!("d{i:02}")).collect();
        assert_eq!(seen, evens, "{f:?}");
        let mut q = query("eq");
        q.filters = vec![f.clone()];
        q.order_by = vec![order("__name__", Direction::Desc)];
        q.start = Some(Cursor {
            values: vec![Value::String("d10".into())],
            inclusive: false,
        });
        q.end = Some(Cursor {
            values: vec![Value::String("d04".into())],
            inclusive: true,
        });
        assert_eq!(
            ids_of(&*store, &q).await,
            vec!["d08", "d06", "d04"],
            "{f:?}"
        );
    }
}
