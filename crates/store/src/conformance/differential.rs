//! A differential check of the planner: pseudo-random documents and queries (filters, orders,
//! cursors, offset, limit, collection and group scopes), each answered by the backend through
//! its index plan and, as the oracle, by evaluating the same query over every document of the
//! store. Index bounds, scan directions and early stops must never change an answer, and
//! neither may paging: the same query followed page by page with small random page sizes and
//! work bounds must return the same documents.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use super::*;
use crate::query::PreparedQuery;

/// The oracle: every document of the store evaluated against the query, in one page.
pub(super) fn brute_force(q: &Query, all: &[Document]) -> Result<Vec<Document>, StoreError> {
    let p = PreparedQuery::new(q, &PageRequest::first(usize::MAX))?;
    Ok(p.finish(all.to_vec()).documents)
}

/// The query followed page by page. A page the work bound cannot finish (a run of equal first
/// values longer than the bound, when more order fields follow) is asked again with a larger
/// bound: what is checked here is that positions lose and repeat nothing.
pub(super) async fn paged<S: Store>(
    store: &S,
    q: &Query,
    size: usize,
    max_examined: usize,
) -> Result<Vec<Document>, StoreError> {
    paged_at(store, q, size, max_examined, None).await
}

/// [`paged`], of the query as the documents were at `time` when given.
pub(super) async fn paged_at<S: Store>(
    store: &S,
    q: &Query,
    size: usize,
    max_examined: usize,
    time: Option<Timestamp>,
) -> Result<Vec<Document>, StoreError> {
    let mut page = PageRequest {
        size,
        max_examined,
        resume: None,
    };
    let ask = async |page: &PageRequest| match time {
        Some(time) => store.query_at(q, page, time).await,
        None => store.query(q, page).await,
    };
    let mut out = Vec::new();
    for _ in 0..1_000 {
        let got = match ask(&page).await {
            Err(StoreError::ResourceExhausted(_)) => {
                let mut larger = page.clone();
                larger.max_examined = 10_000;
                ask(&larger).await?
            }
            other => other?,
        };
        assert!(got.documents.len() <= size);
        out.extend(got.documents);
        match got.next {
            Some(next) => page.resume = Some(next),
            None => return Ok(out),
        }
    }
    panic!("pages never ended for {q:?}");
}

/// A small deterministic generator (no dependency, same sequence on every backend).
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

pub(super) fn pool() -> Vec<Value> {
    [
        json!(null),
        json!(false),
        json!(true),
        json!(-2),
        json!(0),
        json!(1),
        json!(1.0),
        json!(1.5),
        json!(3),
        json!(""),
        json!("a"),
        json!("b"),
        json!({"$timestamp": "2026-01-01T00:00:00Z"}),
        json!([1]),
        json!([1, 2]),
        json!(["a"]),
        json!({"k": 1}),
    ]
    .into_iter()
    .map(val)
    .collect()
}

pub(super) fn random_doc(rng: &mut Rng, values: &[Value]) -> Map {
    let mut data = Map::new();
    if rng.below(6) > 0 {
        data.insert("a".into(), rng.pick(values).clone());
    }
    if rng.below(4) > 0 {
        data.insert("b".into(), Value::Int(rng.below(4) as i64));
    }
    if rng.below(3) > 0 {
        let n = rng.below(3);
        let items = (0..n).map(|_| Value::Int(rng.below(4) as i64)).collect();
        data.insert("t".into(), Value::Array(items));
    }
    data
}

fn random_filter(rng: &mut Rng, values: &[Value], names: &[DocPath]) -> Filter {
    if rng.below(8) == 0 {
        let op = *rng.pick(&[Op::Eq, Op::Lt, Op::Le, Op::Gt, Op::Ge, Op::Ne, Op::In]);
        let mut name = || Value::Reference(rng.pick(names).clone());
        let value = if op == Op::In {
            Value::Array(vec![name(), name()])
        } else {
            name()
        };
        return Filter {
            field: fp("__name__"),
            op,
            value,
        };
    }
    let field = *rng.pick(&["a", "a", "b", "t"]);
    let op = *rng.pick(&[
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::In,
        Op::NotIn,
        Op::ArrayContains,
        Op::ArrayContainsAny,
    ]);
    let scalar = |rng: &mut Rng| {
        if field == "a" {
            rng.pick(values).clone()
        } else {
            Value::Int(rng.below(4) as i64)
        }
    };
    let value = match op {
        Op::In | Op::NotIn | Op::ArrayContainsAny => {
            let n = 1 + rng.below(3);
            Value::Array((0..n).map(|_| scalar(rng)).collect())
        }
        _ => scalar(rng),
    };
    Filter {
        field: fp(field),
        op,
        value,
    }
}

/// A pseudo-random query of the shapes the planner serves (filters, orders, cursors at stored
/// documents' positions, offset, limit) over collection `r`, its group, or the group below
/// `x/1`; `false` with it when the planner refuses it. `names` and `all` are the documents the
/// filters and cursors draw from.
pub(super) fn random_query(
    rng: &mut Rng,
    values: &[Value],
    names: &[DocPath],
    all: &[Document],
) -> (Query, bool) {
    let scope = match rng.below(3) {
        0 => Scope::Collection(coll("r")),
        1 => Scope::Group {
            collection_id: "r".into(),
            under: None,
        },
        _ => Scope::Group {
            collection_id: "r".into(),
            under: Some(path("x/1")),
        },
    };
    let mut q = Query {
        scope,
        ..query("r")
    };
    for _ in 0..rng.below(3) {
        q.filters.push(random_filter(rng, values, names));
    }
    for _ in 0..rng.below(3) {
        let field = *rng.pick(&["a", "b", "__name__"]);
        let direction = *rng.pick(&[Direction::Asc, Direction::Desc]);
        q.order_by.push(order(field, direction));
    }
    let Ok(prepared) = PreparedQuery::new(&q, &PageRequest::first(10)) else {
        return (q, false);
    };
    // Cursors at the position of a random stored document (or a random value).
    let effective = prepared.order().to_vec();
    let cursor = |rng: &mut Rng| {
        let doc = rng.pick(all);
        let n = 1 + rng.below(effective.len());
        let values = effective[..n]
            .iter()
            .map(|o| {
                if o.field.is_document_id() {
                    Value::Reference(doc.path.clone())
                } else {
                    o.field
                        .get(&doc.data)
                        .cloned()
                        .unwrap_or_else(|| rng.pick(values).clone())
                }
            })
            .collect();
        Cursor {
            values,
            inclusive: rng.below(2) == 0,
        }
    };
    if rng.below(3) == 0 {
        q.start = Some(cursor(rng));
    }
    if rng.below(4) == 0 {
        q.end = Some(cursor(rng));
    }
    if rng.below(2) == 0 {
        q.limit = Some(1 + rng.below(5));
    }
    if rng.below(4) == 0 {
        q.offset = rng.below(3);
    }
    (q, true)
}

/// `count` pseudo-random writes (sets) to documents of collection `r` in the parents the
/// differential queries range over, and to one outside them.
pub(super) fn random_writes(rng: &mut Rng, values: &[Value], count: usize) -> Vec<Write> {
    let parents = ["r", "x/1/r", "x/2/r", "x/1/y/9/r", "other"];
    (0..count)
        .map(|i| {
            let parent = parents[i % parents.len()];
            Write::new(
                path(&format!("{parent}/d{:02}", rng.below(40))),
                WriteOp::Set {
                    data: random_doc(rng, values),
                    transforms: vec![],
                },
            )
        })
        .collect()
}

pub async fn planned_queries_agree_with_brute_force<S: Store>(store: Arc<S>) {
    let mut rng = Rng(0x5eed);
    let values = pool();
    let writes = random_writes(&mut rng, &values, 90);
    store.commit(writes.into()).await.unwrap();
    let all = store.scan(None, 10_000).await.unwrap();
    let names: Vec<DocPath> = all.iter().map(|d| d.path.clone()).collect();
    let mut checked = 0;
    for round in 0..600 {
        let (q, valid) = random_query(&mut rng, &values, &names, &all);
        if !valid {
            assert!(run(&*store, &q).await.is_err(), "round {round}: {q:?}");
            continue;
        }
        let expected = match brute_force(&q, &all) {
            Ok(docs) => docs,
            Err(_) => {
                // A cursor naming a document outside the scope: refused by both.
                assert!(run(&*store, &q).await.is_err(), "round {round}: {q:?}");
                continue;
            }
        };
        let got = run(&*store, &q).await.unwrap();
        let names = |docs: &[Document]| docs.iter().map(|d| d.path.to_string()).collect::<Vec<_>>();
        let plan = PreparedQuery::new(&q, &PageRequest::first(10))
            .unwrap()
            .plan()
            .clone();
        assert_eq!(
            names(&got),
            names(&expected),
            "round {round}: plan {plan:?} for {q:?}"
        );
        let size = 1 + rng.below(4);
        let max_examined = *rng.pick(&[3, 5, 12, 1_000]);
        let got = paged(&*store, &q, size, max_examined).await.unwrap();
        assert_eq!(
            names(&got),
            names(&expected),
            "round {round}: pages of {size} examining {max_examined}, plan {plan:?} for {q:?}"
        );
        checked += 1;
    }
    assert!(checked > 300, "only {checked} valid queries");
}
