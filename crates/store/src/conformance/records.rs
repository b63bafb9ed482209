//! Conformance checks of system records (`get_record` and friends) and of read checks
//! (a `Commit` with read checks), the two things the engine's enforcement stands on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use super::*;
use crate::{ReadCheck, Record, RecordCondition};

pub async fn records_round_trip_and_conditions<S: Store>(store: Arc<S>) {
    assert_eq!(store.get_record("users", "alice").await.unwrap(), None);
    assert!(
        store
            .put_record("users", "alice", Some("v1".into()), RecordCondition::Absent)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_record("users", "alice").await.unwrap().as_deref(),
        Some("v1")
    );
    // Absent no longer holds; a stale Equals does not either; nothing changes.
    assert!(
        !store
            .put_record("users", "alice", Some("v2".into()), RecordCondition::Absent)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_record(
                "users",
                "alice",
                Some("v2".into()),
                RecordCondition::Equals("v0".into())
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_record("users", "alice").await.unwrap().as_deref(),
        Some("v1")
    );
    assert!(
        store
            .put_record(
                "users",
                "alice",
                Some("v2".into()),
                RecordCondition::Equals("v1".into())
            )
            .await
            .unwrap()
    );
    // Namespaces are separate.
    assert_eq!(store.get_record("keys", "alice").await.unwrap(), None);
    assert!(
        store
            .put_record("keys", "alice", Some("k".into()), RecordCondition::Any)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_record("users", "alice").await.unwrap().as_deref(),
        Some("v2")
    );
    // Delete.
    assert!(
        store
            .put_record("users", "alice", None, RecordCondition::Any)
            .await
            .unwrap()
    );
    assert_eq!(store.get_record("users", "alice").await.unwrap(), None);
    // Records are not documents: no scan or query sees them.
    assert!(store.scan(None, 100).await.unwrap().is_empty());
    // Bad names are refused.
    assert!(matches!(
        store
            .put_record("", "k", Some("v".into()), RecordCondition::Any)
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store
            .put_record(
                "n",
                &"k".repeat(1025),
                Some("v".into()),
                RecordCondition::Any
            )
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
}

pub async fn records_list_and_scan_in_key_order<S: Store>(store: Arc<S>) {
    for key in ["b", "a", "c", "ä", "a/b"] {
        store
            .put_record("u", key, Some(format!("v-{key}")), RecordCondition::Any)
            .await
            .unwrap();
    }
    store
        .put_record("t", "z", Some("tz".into()), RecordCondition::Any)
        .await
        .unwrap();
    let all = store.list_records("u", None, 100).await.unwrap();
    let keys: Vec<&str> = all.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a", "a/b", "b", "c", "ä"]);
    assert_eq!(all[0].1, "v-a");
    let page = store.list_records("u", Some("a/b"), 2).await.unwrap();
    let keys: Vec<&str> = page.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["b", "c"]);
    let scanned = store.scan_records(None, 100).await.unwrap();
    assert_eq!(scanned.len(), 6);
    assert_eq!(
        scanned[0],
        Record {
            namespace: "t".into(),
            key: "z".into(),
            value: "tz".into()
        }
    );
    let rest = store.scan_records(Some(("u", "b")), 100).await.unwrap();
    let keys: Vec<&str> = rest.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["c", "ä"]);
}

pub async fn take_record_is_single_use<S: Store>(store: Arc<S>) {
    store
        .put_record("login", "state1", Some("x".into()), RecordCondition::Any)
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let store = store.clone();
        tasks.spawn(async move { store.take_record("login", "state1").await.unwrap() });
    }
    let mut got = 0;
    while let Some(r) = tasks.join_next().await {
        if let Some(v) = r.unwrap() {
            assert_eq!(v, "x");
            got += 1;
        }
    }
    assert_eq!(got, 1, "exactly one take gets the record");
    assert_eq!(store.get_record("login", "state1").await.unwrap(), None);
}

pub async fn read_checks_guard_commits<S: Store>(store: Arc<S>) {
    put(&*store, &[("rc/a", json!({"owner": "alice"}))]).await;
    let a = store.get(&path("rc/a")).await.unwrap().unwrap();
    // Both checks hold: the write applies.
    store
        .commit(
            crate::Commit::new(vec![set("rc/b", json!({"n": 1}))]).with_checks(vec![
                ReadCheck {
                    path: path("rc/a"),
                    version: Some(a.version),
                },
                ReadCheck {
                    path: path("rc/missing"),
                    version: None,
                },
            ]),
        )
        .await
        .unwrap();
    // The checked document changed: nothing applies.
    put(&*store, &[("rc/a", json!({"owner": "bob"}))]).await;
    let e = store
        .commit(
            crate::Commit::new(vec![set("rc/b", json!({"n": 2})), set("rc/c", json!({}))])
                .with_checks(vec![ReadCheck {
                    path: path("rc/a"),
                    version: Some(a.version),
                }]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e.root(), StoreError::Aborted(_)), "{e:?}");
    // A document that was absent now exists: nothing applies.
    let e = store
        .commit(
            crate::Commit::new(vec![set("rc/d", json!({}))]).with_checks(vec![ReadCheck {
                path: path("rc/b"),
                version: None,
            }]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e.root(), StoreError::Aborted(_)), "{e:?}");
    let b = store.get(&path("rc/b")).await.unwrap().unwrap();
    assert_eq!(b.data.get("n"), Some(&Value::Int(1)));
    assert!(store.get(&path("rc/c")).await.unwrap().is_none());
    assert!(store.get(&path("rc/d")).await.unwrap().is_none());

    // A check on the document the commit writes (a decided write's own target), as the second
    // write of a batch: it changed since it was read, so nothing applies.
    let pinned = |p: &str, version| ReadCheck {
        path: path(p),
        version,
    };
    put(&*store, &[("rc/b", json!({"n": 2}))]).await;
    let e = store
        .commit(
            crate::Commit::new(vec![
                set("rc/e", json!({})),
                update("rc/b", &[("n", json!(3))]),
            ])
            .with_checks(vec![pinned("rc/e", None), pinned("rc/b", Some(b.version))]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e.root(), StoreError::Aborted(_)), "{e:?}");
    assert!(store.get(&path("rc/e")).await.unwrap().is_none());
    let b = store.get(&path("rc/b")).await.unwrap().unwrap();
    assert_eq!(b.data.get("n"), Some(&Value::Int(2)));
    // At the version read, the same commit applies; a later write to the same path starts
    // from what the earlier one left.
    store
        .commit(
            crate::Commit::new(vec![
                update("rc/b", &[("n", json!(3))]),
                set("rc/e", json!({})),
                update("rc/b", &[("m", json!(4))]),
            ])
            .with_checks(vec![pinned("rc/b", Some(b.version)), pinned("rc/e", None)]),
        )
        .await
        .unwrap();
    let b2 = store.get(&path("rc/b")).await.unwrap().unwrap();
    assert_eq!(b2.data.get("n"), Some(&Value::Int(3)));
    assert_eq!(b2.data.get("m"), Some(&Value::Int(4)));
    assert!(store.get(&path("rc/e")).await.unwrap().is_some());
}
