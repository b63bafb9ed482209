//! Conformance checks of or queries (a [`Condition`] with ors, in disjunctive normal form):
//! results once each in the query's order, with plain filters, ranges, `in`, array filters
//! and names in the branches, collection groups, cursors, offset and limit, pages that
//! continue where they stopped (through the union of index lookups and through the ordered
//! scan), and the limits Firestore puts on them. A differential check compares pseudo-random
//! or queries with the union of their branches run as separate queries.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use std::collections::BTreeSet;

use super::*;
use crate::query::{Condition, Plan, PreparedQuery};

fn leaf(field: &str, op: &str, value: serde_json::Value) -> Condition {
    Condition::Filter(filter(field, op, value))
}

fn any(conditions: Vec<Condition>) -> Option<Condition> {
    Some(Condition::Or(conditions))
}

async fn or_ids<S: Store>(store: &S, c: &str, condition: Option<Condition>) -> Vec<String> {
    let mut q = query(c);
    q.condition = condition;
    ids_of(store, &q).await
}

fn plan(q: &Query) -> Plan {
    PreparedQuery::new(q, &PageRequest::first(100))
        .unwrap()
        .plan()
        .clone()
}

/// The ids of the query's documents followed page by page (`differential::paged`).
async fn paged_ids<S: Store>(
    store: &S,
    q: &Query,
    size: usize,
    max_examined: usize,
) -> Vec<String> {
    let documents = super::differential::paged(store, q, size, max_examined)
        .await
        .unwrap();
    documents.iter().map(|d| d.path.id().to_string()).collect()
}

pub async fn or_queries_return_each_match_once_in_order<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("o/1", json!({"a": 1, "b": 1, "t": ["x"]})),
            ("o/2", json!({"a": 1, "b": 2, "t": ["y"]})),
            ("o/3", json!({"a": 2, "b": 2, "t": ["x", "y"]})),
            ("o/4", json!({"a": 3})),
            ("o/5", json!({"b": 3, "t": []})),
            ("o/6", json!({"a": 1.0, "b": "s"})),
        ],
    )
    .await;
    // A document matching both branches (o/2) is one result; name order.
    let cond = any(vec![leaf("a", "==", json!(1)), leaf("b", "==", json!(2))]);
    assert_eq!(
        or_ids(&*store, "o", cond.clone()).await,
        ["1", "2", "3", "6"]
    );
    let mut q = query("o");
    q.condition = cond.clone();
    assert!(matches!(plan(&q), Plan::Union(_)), "two lookups");
    // With plain filters: they hold in every branch.
    q.filters = vec![filter("b", "!=", json!(1))];
    assert_eq!(
        ids_of(&*store, &q).await,
        ["2", "3", "6"],
        "ordered by b, then name"
    );
    // Nested: a and (b or c) as an and of an or.
    q.filters.clear();
    q.condition = Some(Condition::And(vec![
        leaf("a", "==", json!(1)),
        Condition::Or(vec![leaf("b", "==", json!(1)), leaf("b", "==", json!("s"))]),
    ]));
    assert_eq!(ids_of(&*store, &q).await, ["1", "6"]);
    // Ranges in the branches: the implicit order is by the inequality field, then name.
    q.condition = any(vec![leaf("a", "<", json!(2)), leaf("a", ">", json!(2))]);
    assert_eq!(ids_of(&*store, &q).await, ["1", "2", "6", "4"]);
    assert!(
        matches!(plan(&q), Plan::Range { .. }),
        "no lookup for a range branch: an ordered scan"
    );
    q.order_by = vec![order("a", Direction::Desc)];
    assert_eq!(ids_of(&*store, &q).await, ["4", "6", "2", "1"]);
    // `in` and array filters, an array-contains in each branch.
    q.order_by.clear();
    q.condition = any(vec![
        leaf("t", "array-contains", json!("y")),
        leaf("t", "array-contains", json!("x")),
    ]);
    assert_eq!(ids_of(&*store, &q).await, ["1", "2", "3"]);
    q.condition = any(vec![
        leaf("a", "in", json!([2, 3])),
        leaf("t", "array-contains-any", json!(["x"])),
    ]);
    assert_eq!(ids_of(&*store, &q).await, ["1", "3", "4"]);
    // A branch by name.
    q.condition = any(vec![
        leaf("__name__", "==", json!({"$ref": "o/5"})),
        leaf("a", "==", json!(3)),
    ]);
    assert_eq!(ids_of(&*store, &q).await, ["4", "5"]);
    // A field missing from a document fails only the branches that name it.
    q.condition = any(vec![leaf("a", "==", json!(3)), leaf("b", "==", json!(3))]);
    assert_eq!(ids_of(&*store, &q).await, ["4", "5"]);
    // Cursors, offset and limit apply to the whole result.
    q.condition = any(vec![leaf("a", "==", json!(1)), leaf("b", "==", json!(2))]);
    q.order_by = vec![order("__name__", Direction::Desc)];
    q.start = Some(Cursor {
        values: vec![val(json!("6"))],
        inclusive: false,
    });
    q.offset = 1;
    q.limit = Some(2);
    assert_eq!(ids_of(&*store, &q).await, ["2", "1"]);
}

pub async fn or_queries_in_collection_groups<S: Store>(store: Arc<S>) {
    put(
        &*store,
        &[
            ("og/1", json!({"k": "a"})),
            ("x/1/og/2", json!({"k": "b"})),
            ("x/2/og/3", json!({"k": "c"})),
            ("x/1/og/4", json!({"n": 5})),
            ("x/1/other/5", json!({"k": "a"})),
        ],
    )
    .await;
    let group = |under: Option<&str>| {
        let mut q = query("og");
        q.scope = Scope::Group {
            collection_id: "og".into(),
            under: under.map(path),
        };
        q.condition = any(vec![
            leaf("k", "in", json!(["a", "b"])),
            leaf("n", "==", json!(5)),
        ]);
        q
    };
    let names = |docs: Vec<Document>| docs.iter().map(|d| d.path.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(run(&*store, &group(None)).await.unwrap()),
        ["og/1", "x/1/og/2", "x/1/og/4"]
    );
    assert_eq!(
        names(run(&*store, &group(Some("x/1"))).await.unwrap()),
        ["x/1/og/2", "x/1/og/4"]
    );
    // With a range branch the inequality field is ordered: documents lacking it are left out.
    let mut q = group(None);
    q.condition = any(vec![leaf("k", "==", json!("a")), leaf("n", ">=", json!(5))]);
    assert_eq!(names(run(&*store, &q).await.unwrap()), ["x/1/og/4"]);
}

pub async fn or_queries_page_through_lookups_and_scans<S: Store>(store: Arc<S>) {
    let docs: Vec<Write> = (0..60)
        .map(|i| {
            set(
                &format!("op/d{i:02}"),
                json!({"m3": i % 3, "m5": i % 5, "v": i % 7}),
            )
        })
        .collect();
    store.commit(docs.into()).await.unwrap();
    let mut q = query("op");
    q.condition = any(vec![leaf("m3", "==", json!(0)), leaf("m5", "==", json!(0))]);
    let whole = ids_of(&*store, &q).await;
    let expected: Vec<String> = (0..60)
        .filter(|i| i % 3 == 0 || i % 5 == 0)
        .map(|i| format!("d{i:02}"))
        .collect();
    assert_eq!(
        whole, expected,
        "28 matches, 4 of them in both branches, each once"
    );
    for (size, bound) in [(1, 1_000), (4, 1_000), (7, 10), (3, 5)] {
        assert_eq!(
            paged_ids(&*store, &q, size, bound).await,
            whole,
            "pages of {size} examining at most {bound}"
        );
    }
    // Ordered by another field: the lookups' candidates are sorted; over the work bound the
    // ordered scan takes over and still pages exactly.
    q.order_by = vec![order("v", Direction::Desc)];
    let whole = ids_of(&*store, &q).await;
    assert_eq!(whole.len(), 28);
    for (size, bound) in [(5, 1_000), (5, 25), (2, 40)] {
        assert_eq!(paged_ids(&*store, &q, size, bound).await, whole);
    }
    // A range branch: the ordered scan of v, pages continuing after the last (v, name).
    q.condition = any(vec![leaf("v", ">=", json!(5)), leaf("m5", "==", json!(1))]);
    let whole = ids_of(&*store, &q).await;
    let mut expected: Vec<(i64, String)> = (0..60)
        .filter(|i| i % 7 >= 5 || i % 5 == 1)
        .map(|i| (i % 7, format!("d{i:02}")))
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        whole,
        expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    );
    for (size, bound) in [(3, 1_000), (4, 9)] {
        assert_eq!(paged_ids(&*store, &q, size, bound).await, whole);
    }
    // Limit and offset across pages.
    q.limit = Some(7);
    q.offset = 2;
    assert_eq!(paged_ids(&*store, &q, 3, 1_000).await, whole[2..9].to_vec());
}

pub async fn or_query_limits_are_enforced<S: Store>(store: Arc<S>) {
    let with = |condition: Condition, filters: Vec<Filter>| {
        let store = store.clone();
        async move {
            let mut q = query("ol");
            q.filters = filters;
            q.condition = Some(condition);
            run(&*store, &q).await
        }
    };
    let pair = |x: &str| Condition::Or(vec![leaf(x, "==", json!(1)), leaf("z", "==", json!(1))]);
    let five = Condition::And(["a", "b", "c", "d", "e"].iter().map(|x| pair(x)).collect());
    assert_invalid(with(five, vec![]).await, "more than 30 disjunctions");
    let many: Vec<i64> = (0..30).collect();
    let over = Condition::Or(vec![
        leaf("a", "in", json!(many)),
        leaf("b", "==", json!(1)),
    ]);
    assert_invalid(with(over, vec![]).await, "make 31 disjunctions");
    let with_not_in = Condition::Or(vec![leaf("a", "==", json!(1)), leaf("b", "==", json!(1))]);
    assert_invalid(
        with(with_not_in, vec![filter("c", "not-in", json!([1]))]).await,
        "cannot be combined with an or",
    );
    let two_arrays = Condition::And(vec![
        leaf("t", "array-contains", json!(1)),
        Condition::Or(vec![
            leaf("u", "array-contains", json!(1)),
            leaf("b", "==", json!(1)),
        ]),
    ]);
    assert_invalid(with(two_arrays, vec![]).await, "at most one array-contains");
    assert_invalid(
        with(Condition::Or(vec![]), vec![]).await,
        "at least one filter",
    );
}

pub async fn or_queries_equal_the_union_of_their_branches<S: Store>(store: Arc<S>) {
    let mut seed: u64 = 0x0123_4567;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut writes = Vec::new();
    for i in 0..80 {
        let mut doc = serde_json::Map::new();
        for field in ["a", "b", "c"] {
            if next(5) > 0 {
                doc.insert(field.into(), json!(next(4)));
            }
        }
        if next(2) == 0 {
            doc.insert("t".into(), json!([next(3), next(3)]));
        }
        writes.push(set(&format!("ou/d{i:02}"), serde_json::Value::Object(doc)));
    }
    store.commit(writes.into()).await.unwrap();
    let ops = ["==", "!=", "<", ">=", "in", "array-contains"];
    let mut checked = 0;
    for round in 0..120 {
        let branches: Vec<Vec<Filter>> = (0..2 + next(2))
            .map(|_| {
                (0..1 + next(2))
                    .map(|_| {
                        let op = ops[next(ops.len() as u64) as usize];
                        let field = if op == "array-contains" {
                            "t"
                        } else {
                            ["a", "b", "c"][next(3) as usize]
                        };
                        let value = if op == "in" {
                            json!([next(4), next(4)])
                        } else {
                            json!(next(4))
                        };
                        filter(field, op, value)
                    })
                    .collect()
            })
            .collect();
        let mut q = query("ou");
        q.condition = any(branches
            .iter()
            .map(|b| Condition::And(b.iter().cloned().map(Condition::Filter).collect()))
            .collect());
        let Ok(got) = run(&*store, &q).await else {
            // Two array filters in a branch, or several inequality kinds: refused.
            continue;
        };
        // The union of the branches, each run as its own query, less the documents lacking
        // a field of the or query's effective order (which its results must have).
        let order = q.effective_order();
        let mut union = BTreeSet::new();
        for branch in &branches {
            let mut b = query("ou");
            b.filters = branch.clone();
            for doc in run(&*store, &b).await.unwrap() {
                let ordered = order
                    .iter()
                    .all(|o| o.field.is_document_id() || o.field.get(&doc.data).is_some());
                if ordered {
                    union.insert(doc.path.to_string());
                }
            }
        }
        let got_names: Vec<String> = got.iter().map(|d| d.path.to_string()).collect();
        let as_set: BTreeSet<String> = got_names.iter().cloned().collect();
        assert_eq!(
            as_set.len(),
            got_names.len(),
            "round {round}: a document twice"
        );
        assert_eq!(as_set, union, "round {round}: {q:?}");
        // Pages with small sizes and work bounds return the same.
        let size = 1 + next(4) as usize;
        let bound = [4, 9, 1_000][next(3) as usize];
        let pages = paged_ids(&*store, &q, size, bound).await;
        let ids: Vec<String> = got.iter().map(|d| d.path.id().to_string()).collect();
        assert_eq!(
            pages, ids,
            "round {round}: pages of {size} examining {bound}"
        );
        checked += 1;
    }
    assert!(checked > 60, "only {checked} valid queries");
}
