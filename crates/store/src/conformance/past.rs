//! Conformance checks of reads at a past time ([`crate::history`]): a document read at every
//! instant between its writes, overwrite, delete and re-creation; several versions of one
//! document committed concurrently (PostgreSQL applies them in one group); queries at past
//! times against the documents as they were then, by the differential suite's generator and
//! oracle, whole and page by page; the structural listings and lists at past times; and the
//! refusal of future times and of times before the history kept.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use super::differential::{Rng, brute_force, paged_at, pool, random_query, random_writes};
use super::*;
use crate::{Child, CommitResult};

/// A time strictly between two commit times (both in µs since the epoch).
fn between(a: Timestamp, b: Timestamp) -> Timestamp {
    assert!(
        b.micros() - a.micros() >= 2,
        "commits {a} and {b} too close"
    );
    Timestamp::from_micros(a.micros() + (b.micros() - a.micros()) / 2).unwrap()
}

fn before(t: Timestamp) -> Timestamp {
    Timestamp::from_micros(t.micros() - 1).unwrap()
}

/// Commits `writes`, waiting a little first so that commit times are at least a few µs apart.
async fn commit_at<S: Store>(store: &S, writes: Vec<Write>) -> CommitResult {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    store.commit(writes.into()).await.unwrap()
}

async fn one_at<S: Store>(store: &S, p: &str, time: Timestamp) -> Option<Document> {
    let mut got = store.get_at(&[path(p)], time).await.unwrap();
    assert_eq!(got.len(), 1);
    got.pop().unwrap()
}

pub async fn reads_at_past_times_see_each_version<S: Store>(store: Arc<S>) {
    let c1 = commit_at(
        &*store,
        vec![set("h/a", json!({"v": 1})), set("h/still", json!({"s": 0}))],
    )
    .await;
    let first = c1.results[0].document.clone().unwrap();
    let c2 = commit_at(&*store, vec![update("h/a", &[("v", json!(2))])]).await;
    let second = c2.results[0].document.clone().unwrap();
    let c3 = commit_at(&*store, vec![delete("h/a")]).await;
    let c4 = commit_at(&*store, vec![create("h/a", json!({"v": 4}))]).await;
    let fourth = c4.results[0].document.clone().unwrap();
    let (t1, t2, t3, t4) = (
        c1.commit_time,
        c2.commit_time,
        c3.commit_time,
        c4.commit_time,
    );
    // Before it was first written, at each write and between them.
    assert_eq!(one_at(&*store, "h/a", before(t1)).await, None);
    assert_eq!(one_at(&*store, "h/a", t1).await.as_ref(), Some(&first));
    assert_eq!(
        one_at(&*store, "h/a", between(t1, t2)).await.as_ref(),
        Some(&first)
    );
    assert_eq!(
        one_at(&*store, "h/a", before(t2)).await.as_ref(),
        Some(&first)
    );
    assert_eq!(one_at(&*store, "h/a", t2).await.as_ref(), Some(&second));
    assert_eq!(
        one_at(&*store, "h/a", between(t2, t3)).await.as_ref(),
        Some(&second)
    );
    assert_eq!(one_at(&*store, "h/a", t3).await, None, "deleted at t3");
    assert_eq!(one_at(&*store, "h/a", between(t3, t4)).await, None);
    let again = one_at(&*store, "h/a", t4).await.unwrap();
    assert_eq!(again, fourth);
    assert_eq!(again.create_time, t4, "a re-created document starts anew");
    // Each version keeps its own metadata: the update keeps the first create time.
    assert_eq!(second.create_time, t1);
    assert_eq!(second.update_time, t2);
    assert!(first.version < second.version);
    // A document untouched since, one never written, and several at once in the order asked.
    let many = store
        .get_at(
            &[path("h/still"), path("h/never"), path("h/a")],
            between(t2, t3),
        )
        .await
        .unwrap();
    assert_eq!(many[0].as_ref().unwrap().data, data(json!({"s": 0})));
    assert_eq!(many[1], None);
    assert_eq!(many[2].as_ref(), Some(&second));
    // Reading at a past time changes nothing of the present.
    assert_eq!(
        store.get(&path("h/a")).await.unwrap().as_ref(),
        Some(&fourth)
    );
}

pub async fn past_reads_refuse_future_times_and_times_before_the_history<S: Store>(store: Arc<S>) {
    let c = commit_at(&*store, vec![set("h/a", json!({"v": 1}))]).await;
    let now = Timestamp::now().max(c.commit_time);
    let future = Timestamp::from_micros(now.micros() + 600_000_000).unwrap();
    let too_old = Timestamp::from_micros(now.micros() - 2 * 3_600_000_000).unwrap();
    // Before the store existed: its history starts when it opened.
    let before_history = Timestamp::from_micros(now.micros() - 600_000_000).unwrap();
    let q = query("h");
    let page = PageRequest::first(10);
    for (time, invalid) in [(future, true), (too_old, false), (before_history, false)] {
        let results = [
            store.get_at(&[path("h/a")], time).await.map(drop),
            store.query_at(&q, &page, time).await.map(drop),
            store.list_at(&coll("h"), 10, None, time).await.map(drop),
            store
                .collection_ids_at(None, None, 10, time)
                .await
                .map(drop),
            store
                .list_with_missing_at(&coll("h"), None, 10, time)
                .await
                .map(drop),
        ];
        for r in results {
            match (invalid, r) {
                (true, Err(StoreError::InvalidArgument(m))) => {
                    assert!(m.contains("future"), "{m}")
                }
                (false, Err(StoreError::FailedPrecondition(m))) => {
                    assert!(m.contains("readTime"), "{m}")
                }
                (_, other) => panic!("a read at {time} (now {now}): {other:?}"),
            }
        }
    }
    // The present itself is a past time by the time it is read.
    assert!(store.get_at(&[path("h/a")], c.commit_time).await.unwrap()[0].is_some());
}

/// Several commits of one document at once (a PostgreSQL node applies them in one group, the
/// in-between versions never reaching its table): each commit's version is read at its time,
/// and the one before it just before.
pub async fn concurrent_versions_are_each_kept<S: Store>(store: Arc<S>) {
    let first = store
        .commit(vec![set("h/hot", json!({"n": 0}))].into())
        .await
        .unwrap();
    let tasks: Vec<_> = (1..=8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let writes = vec![
                    set("h/hot", json!({"n": n})),
                    set(&format!("h/o{n}"), json!({})),
                ];
                store.commit(writes.into()).await.unwrap()
            })
        })
        .collect();
    let mut results = vec![first];
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results.sort_by_key(|r| r.commit_time);
    for pair in results.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        let version = |r: &CommitResult| r.results[0].document.clone().unwrap();
        assert_eq!(
            one_at(&*store, "h/hot", later.commit_time).await,
            Some(version(later))
        );
        assert_eq!(
            one_at(&*store, "h/hot", before(later.commit_time)).await,
            Some(version(earlier)),
            "just before {}",
            later.commit_time
        );
    }
}

/// A commit writing one document twice keeps only the version before the commit: the one in
/// between never existed.
pub async fn a_commit_writing_a_document_twice_keeps_one_version<S: Store>(store: Arc<S>) {
    let c1 = commit_at(&*store, vec![set("h/t", json!({"v": 1}))]).await;
    let c2 = commit_at(
        &*store,
        vec![
            set("h/t", json!({"v": 2})),
            update("h/t", &[("w", json!(3))]),
        ],
    )
    .await;
    assert_eq!(
        one_at(&*store, "h/t", before(c2.commit_time)).await,
        c1.results[0].document
    );
    let at = one_at(&*store, "h/t", c2.commit_time).await.unwrap();
    assert_eq!(at.data, data(json!({"v": 2, "w": 3})));
    let c3 = commit_at(&*store, vec![delete("h/t")]).await;
    assert_eq!(
        one_at(&*store, "h/t", before(c3.commit_time))
            .await
            .map(|d| d.data),
        Some(data(json!({"v": 2, "w": 3})))
    );
}

/// Queries at two past times, by the differential suite's generator, against its oracle run
/// over the documents as they were then (scanned at the time): whole, and page by page with
/// small pages and work bounds. Between and after, commits overwrite, update, delete and
/// create documents in every scope the queries range over, so each query meets live documents
/// newer than its time and versions from the history.
pub async fn queries_at_past_times_match_the_documents_then<S: Store>(store: Arc<S>) {
    let mut rng = Rng(0x0bad_cafe);
    let values = pool();
    store
        .commit(random_writes(&mut rng, &values, 90).into())
        .await
        .unwrap();
    let mut snapshots: Vec<(Timestamp, Vec<Document>)> = Vec::new();
    for round in 0..2 {
        let all = store.scan(None, 10_000).await.unwrap();
        let time = all.iter().map(|d| d.update_time).max().unwrap();
        snapshots.push((time, all));
        // Changes after the snapshot: overwrites and new documents, deletes, field updates.
        for _ in 0..3 {
            commit_at(&*store, random_writes(&mut rng, &values, 20)).await;
        }
        let victims: Vec<Write> = snapshots[round]
            .1
            .iter()
            .filter(|_| rng.below(4) == 0)
            .map(|d| Write::new(d.path.clone(), WriteOp::Delete))
            .collect();
        commit_at(&*store, victims).await;
        let mut touched = Vec::new();
        for d in &snapshots[round].1 {
            if rng.below(5) == 0 {
                let b = Value::Int(rng.below(4) as i64);
                // Documents deleted just now are created by a set, the others updated.
                touched.push(Write::new(
                    d.path.clone(),
                    WriteOp::Set {
                        data: Map::from([("b".to_string(), b)]),
                        transforms: vec![],
                    },
                ));
            }
        }
        commit_at(&*store, touched).await;
    }
    let now = store.scan(None, 10_000).await.unwrap();
    let mut checked = 0;
    for (time, all) in &snapshots {
        assert_ne!(all, &now, "the documents changed after {time}");
        // Every document as it was, read at the time.
        let names: Vec<DocPath> = all.iter().chain(&now).map(|d| d.path.clone()).collect();
        let got = store.get_at(&names, *time).await.unwrap();
        for (name, got) in names.iter().zip(got) {
            assert_eq!(
                got.as_ref(),
                all.iter().find(|d| &d.path == name),
                "{name} at {time}"
            );
        }
        for round in 0..250 {
            let (q, valid) = random_query(&mut rng, &values, &names, all);
            if !valid {
                continue;
            }
            let Ok(expected) = brute_force(&q, all) else {
                continue;
            };
            let ids =
                |docs: &[Document]| docs.iter().map(|d| d.path.to_string()).collect::<Vec<_>>();
            let got = paged_at(&*store, &q, 1_000, 10_000, Some(*time))
                .await
                .unwrap();
            assert_eq!(got, expected, "round {round} at {time}: {q:?}");
            let size = 1 + rng.below(4);
            let max_examined = *rng.pick(&[3, 5, 12, 1_000]);
            let got = paged_at(&*store, &q, size, max_examined, Some(*time))
                .await
                .unwrap();
            assert_eq!(
                ids(&got),
                ids(&expected),
                "round {round} at {time}, pages of {size} examining {max_examined}: {q:?}"
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "only {checked} valid queries");
}

/// The structural listings and plain lists at past times: collections that held documents
/// then, and a collection's documents and missing ones as they were.
pub async fn listings_at_past_times<S: Store>(store: Arc<S>) {
    let c1 = commit_at(
        &*store,
        vec![
            set("l/1", json!({"v": 1})),
            set("l/2/s/x", json!({})),
            set("l/3", json!({"v": 3})),
            set("gone/1", json!({})),
        ],
    )
    .await;
    let c2 = commit_at(
        &*store,
        vec![
            delete("l/2/s/x"),
            delete("gone/1"),
            set("l/3", json!({"v": 33})),
            set("l/4", json!({"v": 4})),
            set("l/1/t/y", json!({})),
            set("new/1", json!({})),
        ],
    )
    .await;
    let t1 = c1.commit_time;
    let ids = async |time: Option<Timestamp>, parent: Option<&str>| {
        let parent = parent.map(path);
        match time {
            Some(t) => store.collection_ids_at(parent.as_ref(), None, 10, t).await,
            None => store.collection_ids(parent.as_ref(), None, 10).await,
        }
        .unwrap()
    };
    assert_eq!(ids(Some(t1), None).await, ["gone", "l"]);
    assert_eq!(ids(None, None).await, ["l", "new"]);
    assert_eq!(ids(Some(t1), Some("l/1")).await, Vec::<String>::new());
    assert_eq!(ids(Some(c2.commit_time), Some("l/1")).await, ["t"]);
    assert_eq!(ids(Some(t1), Some("l/2")).await, ["s"]);
    let after = store
        .collection_ids_at(None, Some("gone"), 10, t1)
        .await
        .unwrap();
    assert_eq!(after, ["l"]);
    let shown = |children: Vec<Child>| {
        children
            .into_iter()
            .map(|child| match child {
                Child::Document(d) => format!("{}={}", d.path, json_of(&d.data)),
                Child::Missing(p) => p.to_string(),
            })
            .collect::<Vec<_>>()
    };
    let then = store
        .list_with_missing_at(&coll("l"), None, 10, t1)
        .await
        .unwrap();
    assert_eq!(shown(then), ["l/1={\"v\":1}", "l/2", "l/3={\"v\":3}"]);
    let paged = store
        .list_with_missing_at(&coll("l"), Some("1"), 1, t1)
        .await
        .unwrap();
    assert_eq!(shown(paged), ["l/2"]);
    let now = store.list_with_missing(&coll("l"), None, 10).await.unwrap();
    assert_eq!(
        shown(now),
        ["l/1={\"v\":1}", "l/3={\"v\":33}", "l/4={\"v\":4}"]
    );
    let listed = store.list_at(&coll("l"), 10, None, t1).await.unwrap();
    assert_eq!(ids_and_data(&listed), ["1={\"v\":1}", "3={\"v\":3}"]);
    let listed = store.list_at(&coll("l"), 1, Some("1"), t1).await.unwrap();
    assert_eq!(ids_and_data(&listed), ["3={\"v\":3}"]);
}

fn json_of(map: &Map) -> String {
    claimdb_model::json::document_text(map)
}

fn ids_and_data(docs: &[Document]) -> Vec<String> {
    docs.iter()
        .map(|d| format!("{}={}", d.path.id(), json_of(&d.data)))
        .collect()
}
