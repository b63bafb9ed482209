//! Conformance checks of the change feed: commits are announced once, in commit order, a batch
//! as one commit with its net changes, a failed commit never, and a subscriber that falls behind
//! is told so instead of holding memory without bound.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::feed::FEED_CAPACITY;
use crate::{Changes, Commit, FeedEvent, ReadCheck, Subscription};

/// How long an announcement may take to arrive (the PostgreSQL backend reads it back from the
/// database).
const WAIT: Duration = Duration::from_secs(10);

/// The next commit announced after version `floor`, failing on a lag, a closed feed or a
/// timeout. (A backend that reads its feed back from the database may announce a commit made
/// just before the subscription after it: those are skipped.)
async fn next_commit(sub: &mut Subscription, floor: u64) -> Arc<Changes> {
    loop {
        match tokio::time::timeout(WAIT, sub.next()).await {
            Ok(Some(FeedEvent::Commit(changes))) if changes.version <= floor => {}
            Ok(Some(FeedEvent::Commit(changes))) => return changes,
            other => panic!("expected a commit on the feed, got {other:?}"),
        }
    }
}

/// Commits `writes`, returning the commit's version.
async fn version_of<S: Store>(store: &S, writes: Vec<Write>) -> u64 {
    store.commit(writes.into()).await.unwrap().version
}

pub async fn feed_announces_commits_in_order<S: Store>(store: Arc<S>) {
    let floor = version_of(&*store, vec![set("f/old", json!({"v": 0}))]).await;
    let mut sub = store.subscribe();
    let a = store
        .commit(vec![set("f/a", json!({"v": 1}))].into())
        .await
        .unwrap();
    let b = store
        .commit(vec![update("f/old", &[("v", json!(2))])].into())
        .await
        .unwrap();
    // A batch is one commit: one announcement, one entry per document with its net change.
    let batch = store
        .commit(
            vec![
                set("f/b", json!({"v": 3})),
                delete("f/a"),
                set("f/b", json!({"v": 4})),
                delete("f/never"),
            ]
            .into(),
        )
        .await
        .unwrap();
    let seen = [
        next_commit(&mut sub, floor).await,
        next_commit(&mut sub, floor).await,
        next_commit(&mut sub, floor).await,
    ];
    let versions: Vec<u64> = seen.iter().map(|c| c.version).collect();
    assert_eq!(versions, [a.version, b.version, batch.version]);
    assert_eq!(seen[0].commit_time, a.commit_time);
    assert_eq!(seen[0].changes.len(), 1);
    assert!(!seen[0].changes[0].existed);
    assert_eq!(seen[0].changes[0].document, a.results[0].document);
    assert!(seen[1].changes[0].existed);
    assert_eq!(seen[1].changes[0].document, b.results[0].document);
    let changes: Vec<(&str, bool, Option<&Map>)> = seen[2]
        .changes
        .iter()
        .map(|c| {
            (
                c.path.as_str(),
                c.existed,
                c.document.as_ref().map(|d| &d.data),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            ("f/b", false, Some(&data(json!({"v": 4})))),
            ("f/a", true, None),
        ]
    );
    assert_eq!(seen[2].changes[0].document, batch.results[2].document);
    assert!(sub.try_next().is_none(), "one announcement per commit");
}

pub async fn failed_commits_are_not_announced<S: Store>(store: Arc<S>) {
    let floor = version_of(&*store, vec![set("nf/a", json!({}))]).await;
    let a = store.get(&path("nf/a")).await.unwrap().unwrap();
    let mut sub = store.subscribe();
    store
        .commit(vec![create("nf/a", json!({}))].into())
        .await
        .unwrap_err();
    store
        .commit(
            vec![
                set("nf/b", json!({})),
                update("nf/missing", &[("v", json!(1))]),
            ]
            .into(),
        )
        .await
        .unwrap_err();
    put(&*store, &[("nf/a", json!({"v": 2}))]).await;
    store
        .commit(
            Commit::new(vec![set("nf/c", json!({}))]).with_checks(vec![ReadCheck {
                path: path("nf/a"),
                version: Some(a.version),
            }]),
        )
        .await
        .unwrap_err();
    let last = store
        .commit(vec![set("nf/d", json!({}))].into())
        .await
        .unwrap();
    let first = next_commit(&mut sub, floor).await;
    assert_eq!(first.changes[0].path, path("nf/a"));
    let second = next_commit(&mut sub, floor).await;
    assert_eq!(second.version, last.version);
    assert!(sub.try_next().is_none());
}

pub async fn a_lagging_subscriber_is_told_and_goes_on<S: Store>(store: Arc<S>) {
    let total = FEED_CAPACITY + 50;
    let mut slow = store.subscribe();
    // A subscriber that keeps up, to know when every commit has been announced.
    let mut fast = store.subscribe();
    let watcher = tokio::spawn(async move {
        let mut seen = 0;
        while seen < total {
            match tokio::time::timeout(WAIT, fast.next()).await {
                Ok(Some(FeedEvent::Commit(_))) => seen += 1,
                Ok(Some(FeedEvent::Lagged { missed })) => seen += missed as usize,
                other => panic!("the fast subscriber got {other:?} after {seen}"),
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..10 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut last = 0;
            for i in (t..total).step_by(10) {
                let r = store
                    .commit(vec![set(&format!("lag/d{i}"), json!({"i": i}))].into())
                    .await
                    .unwrap();
                last = last.max(r.version);
            }
            last
        });
    }
    let mut last = 0;
    while let Some(v) = tasks.join_next().await {
        last = last.max(v.unwrap());
    }
    watcher.await.unwrap();
    match slow.next().await {
        Some(FeedEvent::Lagged { missed }) => assert!(missed >= 50, "missed {missed}"),
        other => panic!("expected a lag, got {other:?}"),
    }
    // Then the commits still kept, in order, up to the last.
    let mut previous = 0;
    let mut kept = 0;
    while previous < last {
        let c = next_commit(&mut slow, 0).await;
        assert!(c.version > previous);
        previous = c.version;
        kept += 1;
    }
    assert!(kept <= FEED_CAPACITY);
}
