//! Conformance checks of writes: CRUD, preconditions, transforms, batches, versions,
//! durability-related ordering, limits, scan/restore and close.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use super::*;

pub async fn crud_round_trip<S: Store>(store: Arc<S>) {
    let r = store
        .commit(vec![create("users/a", json!({"n": 1}))].into())
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
        .commit(vec![set("users/a", json!({"m": "x"}))].into())
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

    let r3 = store.commit(vec![delete("users/a")].into()).await.unwrap();
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
        .commit(vec![create("c/a", json!({"v": 2}))].into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let doc = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(doc.data, data(json!({"v": 1})));
}

pub async fn update_on_missing_fails<S: Store>(store: Arc<S>) {
    let err = store
        .commit(vec![update("c/a", &[("v", json!(1))])].into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(store.get(&path("c/a")).await.unwrap().is_none());
}

pub async fn delete_missing_succeeds<S: Store>(store: Arc<S>) {
    let r = store.commit(vec![delete("c/none")].into()).await.unwrap();
    assert!(!r.results[0].existed);
    let err = store
        .commit(vec![delete("c/none").with_precondition(Precondition::Exists)].into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
}

pub async fn preconditions_are_enforced<S: Store>(store: Arc<S>) {
    let missing = |w: Write| w.with_precondition(Precondition::Missing);
    let r = store
        .commit(vec![missing(set("c/a", json!({"v": 1})))].into())
        .await
        .unwrap();
    let v1 = r.version;
    let err = store
        .commit(vec![missing(set("c/a", json!({"v": 2})))].into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
    let err = store
        .commit(vec![set("c/b", json!({})).with_precondition(Precondition::Exists)].into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
    assert!(store.get(&path("c/b")).await.unwrap().is_none());
    store
        .commit(vec![set("c/a", json!({"v": 3})).with_precondition(Precondition::Exists)].into())
        .await
        .unwrap();
    // The version moved on: the old one no longer holds.
    let err = store
        .commit(
            vec![set("c/a", json!({"v": 4})).with_precondition(Precondition::Version(v1))].into(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::FailedPrecondition(_)), "{err:?}");
    let current = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(current.data, data(json!({"v": 3})));
    store
        .commit(
            vec![
                update("c/a", &[("v", json!(5))])
                    .with_precondition(Precondition::Version(current.version)),
            ]
            .into(),
        )
        .await
        .unwrap();
    let err = store
        .commit(vec![delete("c/x").with_precondition(Precondition::Version(1))].into())
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
        .commit(
            vec![Write::new(
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
            )]
            .into(),
        )
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
        .commit(
            vec![
                Write::new(
                    path("c/a"),
                    WriteOp::Update {
                        fields: vec![],
                        transforms: vec![(
                            fp("tags"),
                            Transform::ArrayRemove(vec![val(json!("x"))]),
                        )],
                    },
                ),
                Write::new(
                    path("c/b"),
                    WriteOp::Set {
                        data: data(json!({"a": 1})),
                        transforms: vec![(fp("at"), Transform::ServerTimestamp)],
                    },
                ),
            ]
            .into(),
        )
        .await
        .unwrap();
    let a = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(a.data.get("tags"), Some(&val(json!(["y", "z"]))));
    let b = store.get(&path("c/b")).await.unwrap().unwrap();
    assert_eq!(b.data.get("at"), Some(&Value::Timestamp(r.commit_time)));
    // An increment by a non-number is refused and changes nothing.
    let err = store
        .commit(
            vec![Write::new(
                path("c/a"),
                WriteOp::Update {
                    fields: vec![],
                    transforms: vec![(fp("n"), Transform::Increment(val(json!("x"))))],
                },
            )]
            .into(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");
    assert_eq!(store.get(&path("c/a")).await.unwrap().unwrap(), a);
}

pub async fn dotted_update_paths_merge<S: Store>(store: Arc<S>) {
    put(&*store, &[("c/a", json!({"a": {"b": 1, "c": 2}, "x": 1}))]).await;
    store
        .commit(
            vec![update(
                "c/a",
                &[
                    ("a.b", json!(10)),
                    ("n.e.w", json!(true)),
                    ("`x.y`", json!(3)),
                ],
            )]
            .into(),
        )
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
        let err = store.commit(writes.into()).await.unwrap_err();
        assert!(matches!(err.root(), StoreError::NotFound(_)), "{err:?}");
        assert_eq!(err.write_index(), Some(k));
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
    let max = claimdb_model::limits::MAX_BATCH_WRITES;
    let writes: Vec<Write> = (0..=max)
        .map(|i| set(&format!("big/d{i:03}"), json!({"i": i})))
        .collect();
    let err = store.commit(writes.clone().into()).await.unwrap_err();
    // The one definition of the limit (which the engine runs too), not a copy of it.
    assert_eq!(Err(err), crate::check_write_count(max + 1));
    assert!(store.list(&coll("big"), 10, None).await.unwrap().is_empty());
    let r = store.commit(writes[..max].to_vec().into()).await.unwrap();
    assert_eq!(r.results.len(), max);
    let all = store.list(&coll("big"), 1000, None).await.unwrap();
    assert_eq!(all.len(), max);
    assert!(
        all.iter().all(|d| d.version == r.version),
        "one commit, one version"
    );
}

pub async fn versions_and_commit_times_strictly_increase<S: Store>(store: Arc<S>) {
    let mut last: Option<(u64, Timestamp)> = None;
    for i in 0..20 {
        let r = store
            .commit(vec![set(&format!("c/d{}", i % 3), json!({"i": i}))].into())
            .await
            .unwrap();
        if let Some((v, t)) = last {
            assert!(r.version > v, "version {} after {v}", r.version);
            assert!(r.commit_time > t);
        }
        last = Some((r.version, r.commit_time));
    }
    let r = store
        .commit(vec![set("c/x", json!({})), set("c/y", json!({}))].into())
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
        .commit(
            vec![
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
            ]
            .into(),
        )
        .await
        .unwrap();
    assert!(r.results[1].existed, "the update sees the create before it");
    let doc = store.get(&path("c/a")).await.unwrap().unwrap();
    assert_eq!(doc.data, data(json!({"n": 6, "m": 2})));
    assert!(store.get(&path("c/b")).await.unwrap().is_some());
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
                .collect::<Vec<_>>()
                .into(),
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
    let r = store
        .commit(vec![set("z/1", json!({}))].into())
        .await
        .unwrap();
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
                .commit(
                    vec![
                        update("cc/counter", &[("n", json!(i))])
                            .with_precondition(Precondition::Version(v0)),
                    ]
                    .into(),
                )
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
                    match store.commit(vec![w].into()).await {
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
        .commit(
            vec![
                set("s/ok", json!({"v": 1})),
                set("s/big", json!({"v": big})),
            ]
            .into(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err.root(), StoreError::InvalidArgument(_)),
        "{err:?}"
    );
    assert_eq!(err.write_index(), Some(1));
    assert!(store.get(&path("s/ok")).await.unwrap().is_none());
    assert!(store.get(&path("s/big")).await.unwrap().is_none());
    // Growing a document past the limit through an update is refused too.
    put(&*store, &[("s/grow", json!({"a": "x".repeat(600_000)}))]).await;
    let err = store
        .commit(vec![update("s/grow", &[("b", json!("y".repeat(600_000)))])].into())
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
        .commit(vec![set("c/a", json!({"v": 1}))].into())
        .await
        .unwrap();
    store.close().await.unwrap();
    store.close().await.unwrap();
    let err = store
        .commit(vec![set("c/b", json!({}))].into())
        .await
        .unwrap_err();
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

/// A multi-write commit names the write that failed (`StoreError::write_index`), with the root
/// cause's kind, so clients can be told which write to fix.
pub async fn failing_write_is_named_by_index<S: Store>(store: Arc<S>) {
    put(&*store, &[("a/1", json!({"n": 1}))]).await;
    let v1 = store.get(&path("a/1")).await.unwrap().unwrap().version;
    let expect = |writes: Vec<Write>, index: usize, kind: fn(&StoreError) -> bool| {
        let store = store.clone();
        async move {
            let err = store.commit(writes.into()).await.unwrap_err();
            assert_eq!(err.write_index(), Some(index), "{err}");
            assert!(kind(err.root()), "wrong kind: {err:?}");
            assert!(
                err.to_string().starts_with(&format!("write {index} (")),
                "{err}"
            );
        }
    };
    // Creating an existing document.
    expect(
        vec![set("a/9", json!({})), create("a/1", json!({}))],
        1,
        |e| matches!(e, StoreError::AlreadyExists(_)),
    )
    .await;
    // Updating a document deleted earlier in the same batch.
    expect(
        vec![delete("a/1"), update("a/1", &[("n", json!(2))])],
        1,
        |e| matches!(e, StoreError::NotFound(_)),
    )
    .await;
    // A version that only held before an earlier write of the batch.
    expect(
        vec![
            set("a/1", json!({})),
            set("a/1", json!({})).with_precondition(Precondition::Version(v1)),
        ],
        1,
        |e| matches!(e, StoreError::FailedPrecondition(_)),
    )
    .await;
    // Data refused: a document over 1 MiB, as the third write.
    expect(
        vec![
            set("a/7", json!({})),
            set("a/8", json!({})),
            set("a/9", json!({"s": "x".repeat(1_100_000)})),
        ],
        2,
        |e| matches!(e, StoreError::InvalidArgument(_)),
    )
    .await;
    // Nothing of any failed batch was applied.
    for p in ["a/7", "a/8", "a/9"] {
        assert!(
            store.get(&path(p)).await.unwrap().is_none(),
            "{p} was written"
        );
    }
    assert_eq!(store.get(&path("a/1")).await.unwrap().unwrap().version, v1);
}
