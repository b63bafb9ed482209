//! Conformance checks of query pages and limits: page sizes with continuation positions, the
//! work bound (a page ends early and the next continues; a run that cannot be sorted within it
//! is refused), positions that do not fit their query, and Firestore's query limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use super::*;
use crate::{Position, QueryPage};

/// Puts `n` documents `<c>/d0000…` built by `data(i)`, in batches.
async fn fill<S: Store>(store: &S, c: &str, n: usize, data: impl Fn(usize) -> serde_json::Value) {
    let docs: Vec<Write> = (0..n)
        .map(|i| set(&format!("{c}/d{i:04}"), data(i)))
        .collect();
    for chunk in docs.chunks(claimdb_model::limits::MAX_BATCH_WRITES) {
        store.commit(chunk.to_vec().into()).await.unwrap();
    }
}

/// Follows a query's pages of `size` documents examining at most `max_examined` each; returns
/// every page.
async fn pages<S: Store>(
    store: &S,
    q: &Query,
    size: usize,
    max_examined: usize,
) -> Result<Vec<QueryPage>, StoreError> {
    let mut page = PageRequest {
        size,
        max_examined,
        resume: None,
    };
    let mut out: Vec<QueryPage> = Vec::new();
    loop {
        let got = store.query(q, &page).await?;
        assert!(got.documents.len() <= size, "a page over its size");
        let next = got.next.clone();
        out.push(got);
        match next {
            Some(next) => page.resume = Some(next),
            None => return Ok(out),
        }
        assert!(out.len() < 10_000, "pages never end");
    }
}

fn all_ids(pages: &[QueryPage]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|p| p.documents.iter().map(|d| d.path.id().to_string()))
        .collect()
}

pub async fn query_pages_continue_where_they_stopped<S: Store>(store: Arc<S>) {
    fill(&*store, "pg", 25, |i| json!({"v": i % 4, "i": i})).await;
    let mut q = query("pg");
    q.order_by = vec![order("v", Direction::Desc)];
    let whole = ids_of(&*store, &q).await;
    assert_eq!(whole.len(), 25);
    let got = pages(&*store, &q, 4, 1_000).await.unwrap();
    assert_eq!(all_ids(&got), whole);
    assert_eq!(
        got.len(),
        7,
        "6 full pages and one of 1, no empty last page"
    );
    // The limit counts across pages; the offset applies once.
    q.limit = Some(10);
    q.offset = 3;
    let got = pages(&*store, &q, 4, 1_000).await.unwrap();
    assert_eq!(all_ids(&got), whole[3..13].to_vec());
    assert_eq!(
        got.iter().map(|p| p.documents.len()).collect::<Vec<_>>(),
        vec![4, 4, 2]
    );
    // An unordered candidate set (an `in` lookup) pages the same way.
    let mut q = query("pg");
    q.filters = vec![filter("v", "in", json!([1, 3]))];
    let whole = ids_of(&*store, &q).await;
    assert_eq!(whole.len(), 12);
    assert_eq!(all_ids(&pages(&*store, &q, 5, 1_000).await.unwrap()), whole);
}

pub async fn work_bound_ends_pages_early_and_they_continue<S: Store>(store: Arc<S>) {
    fill(&*store, "wb", 300, |i| json!({"v": i, "w": 1})).await;
    // No index can serve `!=`: it is an ordered scan of `v` testing every document, and none
    // matches. Each page stops at the bound, empty, and says where to go on.
    let mut q = query("wb");
    q.filters = vec![filter("w", "!=", json!(1))];
    let got = pages(&*store, &q, 10, 40).await.unwrap();
    assert!(all_ids(&got).is_empty());
    assert!(got.len() >= 300 / 40, "{} pages", got.len());
    let first = store
        .query(
            &q,
            &PageRequest {
                size: 10,
                max_examined: 40,
                resume: None,
            },
        )
        .await
        .unwrap();
    assert!(first.documents.is_empty());
    assert!(
        first.next.is_some(),
        "a page cut short says where to continue"
    );
    // Sparse matches: pages hold fewer than asked, the whole result is exact.
    let mut q = query("wb");
    q.filters = vec![filter("v", "not-in", json!([0]))];
    q.order_by = vec![order("v", Direction::Desc)];
    let sparse: Vec<String> = (1..300).rev().map(|i| format!("d{i:04}")).collect();
    assert_eq!(all_ids(&pages(&*store, &q, 50, 30).await.unwrap()), sparse);
    // Documents by name with a filter no index serves in that order.
    let mut q = query("wb");
    q.filters = vec![filter("v", ">=", json!(290))];
    q.order_by = vec![order("__name__", Direction::Asc)];
    let tail: Vec<String> = (290..300).map(|i| format!("d{i:04}")).collect();
    assert_eq!(all_ids(&pages(&*store, &q, 3, 7).await.unwrap()), tail);
}

pub async fn lookups_over_the_work_bound_scan_in_order<S: Store>(store: Arc<S>) {
    fill(
        &*store,
        "lk",
        200,
        |i| json!({"k": if i % 10 == 0 { "rare" } else { "common" }, "o": 200 - i}),
    )
    .await;
    // 180 candidates for `k == common`, more than the bound: the page is served by an ordered
    // scan of `o` instead of loading and sorting every candidate.
    let mut q = query("lk");
    q.filters = vec![filter("k", "==", json!("common"))];
    q.order_by = vec![order("o", Direction::Asc)];
    let whole = ids_of(&*store, &q).await;
    assert_eq!(whole.len(), 180);
    let first = store
        .query(
            &q,
            &PageRequest {
                size: 5,
                max_examined: 50,
                resume: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(all_ids(std::slice::from_ref(&first)), whole[..5].to_vec());
    assert!(first.next.is_some());
    assert_eq!(all_ids(&pages(&*store, &q, 7, 50).await.unwrap()), whole);
    // Few candidates: the lookup answers within the bound.
    q.filters = vec![filter("k", "==", json!("rare"))];
    let rare = ids_of(&*store, &q).await;
    assert_eq!(rare.len(), 20);
    assert_eq!(all_ids(&pages(&*store, &q, 7, 50).await.unwrap()), rare);
}

pub async fn long_runs_of_equal_values_page_without_rereading<S: Store>(store: Arc<S>) {
    // 150 documents share one value of the order field. Each page must continue inside the run
    // where the last one stopped; re-reading the run from its start would exhaust the bound.
    fill(&*store, "lr", 150, |i| json!({"v": 1, "i": i})).await;
    for direction in [Direction::Asc, Direction::Desc] {
        let mut q = query("lr");
        q.filters = vec![filter("v", ">=", json!(1))];
        q.order_by = vec![order("v", direction)];
        let mut expected: Vec<String> = (0..150).map(|i| format!("d{i:04}")).collect();
        if direction == Direction::Desc {
            expected.reverse();
        }
        let got = pages(&*store, &q, 10, 15).await.unwrap();
        assert_eq!(all_ids(&got), expected, "{direction:?}");
        assert_eq!(got.len(), 15, "{direction:?}: every page full");
    }
}

pub async fn unsortable_runs_over_the_work_bound_are_refused<S: Store>(store: Arc<S>) {
    fill(&*store, "ur", 60, |i| json!({"x": 1, "y": 60 - i})).await;
    let mut q = query("ur");
    q.order_by = vec![order("x", Direction::Asc), order("y", Direction::Asc)];
    // All 60 share `x`, so sorting by `y` needs the whole run: more than a bound of 20.
    match pages(&*store, &q, 10, 20).await {
        Err(StoreError::ResourceExhausted(m)) => assert!(m.contains("work bound"), "{m}"),
        other => panic!("expected ResourceExhausted, got {other:?}"),
    }
    // Within the bound it pages normally.
    let got = pages(&*store, &q, 10, 100).await.unwrap();
    let expected: Vec<String> = (0..60).rev().map(|i| format!("d{i:04}")).collect();
    assert_eq!(all_ids(&got), expected);
}

pub async fn positions_that_do_not_fit_are_refused<S: Store>(store: Arc<S>) {
    fill(&*store, "pf", 3, |i| json!({"v": i})).await;
    let mut q = query("pf");
    q.limit = Some(2);
    q.offset = 1;
    let at = |keys: Vec<Vec<u8>>, skipped, returned| PageRequest {
        size: 10,
        max_examined: 100,
        resume: Some(Position {
            keys,
            skipped,
            returned,
        }),
    };
    let name = claimdb_model::key::index_key(&val(json!({"$ref": "pf/d0001"})));
    for (page, why) in [
        (at(vec![], 1, 0), "order"),
        (at(vec![name.clone(), name.clone()], 1, 0), "order"),
        (at(vec![vec![0; 5000]], 1, 0), "longer than any index key"),
        (at(vec![name.clone()], 2, 0), "offset"),
        (at(vec![name.clone()], 0, 1), "offset"),
        (at(vec![name.clone()], 1, 2), "limit"),
    ] {
        assert_invalid(store.query(&q, &page).await, why);
    }
    // A valid one continues after the position.
    let got = store.query(&q, &at(vec![name], 1, 1)).await.unwrap();
    assert_eq!(ids(&got.documents), vec!["d0002"]);
    assert!(got.next.is_none());
}

pub async fn query_limits_are_enforced<S: Store>(store: Arc<S>) {
    let mut q = query("ql");
    q.filters = vec![filter("a", "==", json!(1)); 101];
    assert_invalid(run(&*store, &q).await, "over the limit of 100");
    q.filters.truncate(100);
    assert!(run(&*store, &q).await.is_ok());
    q.filters = vec![
        filter("a", "in", json!([1, 2, 3, 4, 5, 6])),
        filter("b", "in", json!([1, 2, 3, 4, 5, 6])),
    ];
    assert_invalid(run(&*store, &q).await, "36 disjunctions");
    q.filters = (0..11)
        .map(|i| filter(&format!("f{i}"), ">", json!(0)))
        .collect();
    assert_invalid(run(&*store, &q).await, "11 fields");
}
