//! Unit tests of query preparation: the effective order, plan choice (names, lookups, unions
//! of them for or queries, ordered scans and their bounds) and the errors invalid queries get.

use super::*;
use claimdb_model::CollectionPath;

fn page() -> PageRequest {
    PageRequest::first(100)
}

fn q() -> Query {
    Query::collection(CollectionPath::parse("c").unwrap())
}

fn f(field: &str, op: Op, value: Value) -> Filter {
    Filter {
        field: FieldPath::parse(field).unwrap(),
        op,
        value,
    }
}

fn o(field: &str, direction: Direction) -> Order {
    Order {
        field: FieldPath::parse(field).unwrap(),
        direction,
    }
}

fn names(p: &PreparedQuery) -> Vec<(String, Direction)> {
    p.order()
        .iter()
        .map(|o| (o.field.to_string(), o.direction))
        .collect()
}

#[test]
fn effective_order_appends_inequality_fields_then_name_in_the_last_direction() {
    let p = PreparedQuery::new(&q(), &page()).unwrap();
    assert_eq!(names(&p), vec![("__name__".into(), Direction::Asc)]);
    let mut query = q();
    query.filters = vec![f("x", Op::Gt, Value::Int(1)), f("a", Op::Ne, Value::Int(1))];
    query.order_by = vec![o("y", Direction::Desc)];
    let p = PreparedQuery::new(&query, &page()).unwrap();
    assert_eq!(
        names(&p),
        vec![
            ("y".into(), Direction::Desc),
            ("a".into(), Direction::Desc),
            ("x".into(), Direction::Desc),
            ("__name__".into(), Direction::Desc)
        ]
    );
    query.order_by = vec![o("__name__", Direction::Desc)];
    query.filters.clear();
    let p = PreparedQuery::new(&query, &page()).unwrap();
    assert_eq!(names(&p), vec![("__name__".into(), Direction::Desc)]);
}

#[test]
fn equality_filters_drive_exact_lookups() {
    let mut query = q();
    query.filters = vec![
        f(
            "a",
            Op::In,
            Value::Array(vec![Value::Int(2), Value::Double(2.0), Value::Int(3)]),
        ),
        f("t", Op::ArrayContains, Value::String("x".into())),
        f("r", Op::Gt, Value::Int(0)),
    ];
    let p = PreparedQuery::new(&query, &page()).unwrap();
    assert_eq!(
        p.plan(),
        &Plan::Lookup {
            field: FieldPath::single("t"),
            contains: true,
            keys: vec![key::index_key(&Value::String("x".into()))]
        }
    );
    query.filters.remove(1);
    let Plan::Lookup {
        field,
        contains,
        keys,
    } = PreparedQuery::new(&query, &page()).unwrap().plan().clone()
    else {
        panic!("expected a lookup");
    };
    assert_eq!(field, FieldPath::single("a"));
    assert!(!contains);
    assert_eq!(keys.len(), 2, "2 and 2.0 are one key");
    query.filters = vec![f("__name__", Op::Eq, Value::String("d".into()))];
    assert_eq!(
        PreparedQuery::new(&query, &page()).unwrap().plan(),
        &Plan::Names(vec![DocPath::parse("c/d").unwrap()])
    );
}

#[test]
fn one_key_in_name_order_streams_from_the_cursor() {
    let mut query = q();
    query.filters = vec![f("owner", Op::Eq, Value::String("a".into()))];
    query.start = Some(Cursor {
        values: vec![Value::String("m".into())],
        inclusive: false,
    });
    query.order_by = vec![o("__name__", Direction::Desc)];
    assert_eq!(
        PreparedQuery::new(&query, &page()).unwrap().plan(),
        &Plan::LookupByName {
            field: FieldPath::single("owner"),
            contains: false,
            key: key::index_key(&Value::String("a".into())),
            lo: None,
            hi: Some(DocPath::parse("c/m").unwrap().sort_key()),
            descending: true,
        }
    );
    // Another order field: the matches must be sorted, so plain lookups.
    query.order_by = vec![o("age", Direction::Asc)];
    query.start = None;
    assert!(matches!(
        PreparedQuery::new(&query, &page()).unwrap().plan(),
        Plan::Lookup { .. }
    ));
}

#[test]
fn ranges_scan_the_first_order_field_within_filter_and_cursor_bounds() {
    let mut query = q();
    query.filters = vec![f("v", Op::Gt, Value::Int(1)), f("v", Op::Le, Value::Int(9))];
    let p = PreparedQuery::new(&query, &page()).unwrap();
    assert_eq!(
        p.plan(),
        &Plan::Range {
            field: FieldPath::single("v"),
            lo: successor(&key::index_key(&Value::Int(1))),
            hi: successor(&key::index_key(&Value::Int(9))),
            descending: false,
            after: None,
        }
    );
    // Descending with a start cursor: the cursor bounds from above.
    let mut query = q();
    query.order_by = vec![o("v", Direction::Desc)];
    query.start = Some(Cursor {
        values: vec![Value::Int(5)],
        inclusive: true,
    });
    let (lo, _) = key::full_range();
    assert_eq!(
        PreparedQuery::new(&query, &page()).unwrap().plan(),
        &Plan::Range {
            field: FieldPath::single("v"),
            lo,
            hi: successor(&key::index_key(&Value::Int(5))),
            descending: true,
            after: None,
        }
    );
    // A range on strings stays within strings.
    let mut query = q();
    query.filters = vec![f("s", Op::Lt, Value::String("m".into()))];
    let Plan::Range { lo, hi, .. } = PreparedQuery::new(&query, &page()).unwrap().plan().clone()
    else {
        panic!("expected a range");
    };
    assert_eq!(lo, key::type_range(&Value::String(String::new())).0);
    assert_eq!(hi, key::index_key(&Value::String("m".into())));
}

#[test]
fn name_order_scans_documents_from_the_cursor() {
    let p = PreparedQuery::new(&q(), &page()).unwrap();
    assert_eq!(
        p.plan(),
        &Plan::ScanNames {
            lo: None,
            hi: None,
            descending: false
        }
    );
    let mut query = q();
    query.start = Some(Cursor {
        values: vec![Value::String("m".into())],
        inclusive: false,
    });
    query.filters = vec![f(
        "__name__",
        Op::Lt,
        Value::Reference(DocPath::parse("c/x").unwrap()),
    )];
    assert_eq!(
        PreparedQuery::new(&query, &page()).unwrap().plan(),
        &Plan::ScanNames {
            lo: Some(DocPath::parse("c/m").unwrap().sort_key()),
            hi: Some(DocPath::parse("c/x").unwrap().sort_key()),
            descending: false
        }
    );
}

/// An or query is a union of one lookup per disjunction when each has an equality-like
/// filter (names included), else an ordered scan spanning every disjunction's range.
#[test]
fn or_queries_plan_a_union_of_lookups_or_one_spanning_scan() {
    use super::super::Condition;
    let leaf = |field: &str, op: Op, value: Value| Condition::Filter(f(field, op, value));
    let mut query = q();
    query.condition = Some(Condition::Or(vec![
        leaf("a", Op::Eq, Value::Int(1)),
        Condition::And(vec![
            leaf(
                "b",
                Op::In,
                Value::Array(vec![Value::Int(2), Value::Int(3)]),
            ),
            leaf("c", Op::Gt, Value::Int(0)),
        ]),
        leaf("__name__", Op::Eq, Value::String("d".into())),
    ]));
    let Plan::Union(members) = PreparedQuery::new(&query, &page()).unwrap().plan().clone() else {
        panic!("expected a union");
    };
    assert_eq!(members.len(), 3);
    assert!(
        matches!(&members[0], Plan::Lookup { field, keys, .. } if field.to_string() == "a" && keys.len() == 1)
    );
    assert!(
        matches!(&members[1], Plan::Lookup { field, keys, .. } if field.to_string() == "b" && keys.len() == 2)
    );
    assert_eq!(
        members[2],
        Plan::Names(vec![DocPath::parse("c/d").unwrap()])
    );
    // Ranges on the first order field in every branch: one scan over their span.
    query.condition = Some(Condition::Or(vec![
        leaf("v", Op::Lt, Value::Int(2)),
        leaf("v", Op::Gt, Value::Int(8)),
    ]));
    let Plan::Range { field, lo, hi, .. } =
        PreparedQuery::new(&query, &page()).unwrap().plan().clone()
    else {
        panic!("expected a range");
    };
    assert_eq!(field, FieldPath::single("v"));
    assert_eq!(lo, key::type_range(&Value::Int(0)).0);
    assert_eq!(hi, key::type_range(&Value::Int(0)).1);
    // A branch without a range on it: the scan spans the whole field.
    query.condition = Some(Condition::Or(vec![
        leaf("v", Op::Lt, Value::Int(2)),
        leaf("w", Op::Ne, Value::Int(8)),
    ]));
    let Plan::Range { lo, hi, .. } = PreparedQuery::new(&query, &page()).unwrap().plan().clone()
    else {
        panic!("expected a range");
    };
    assert_eq!((lo, hi), key::full_range());
}

#[test]
fn invalid_queries_name_the_problem() {
    let err = |query: &Query| match PreparedQuery::new(query, &page()) {
        Err(StoreError::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let mut query = q();
    query.filters = vec![f("a", Op::NotIn, Value::Array(vec![]))];
    assert!(err(&query).contains("1 to 10"));
    query.filters = vec![f("a", Op::Lt, Value::Null)];
    assert!(err(&query).contains("null only supports"));
    query.filters = vec![
        f("a", Op::NotIn, Value::Array(vec![Value::Int(1)])),
        f("b", Op::Ne, Value::Int(1)),
    ];
    assert!(err(&query).contains("cannot be combined"));
    let mut query = q();
    query.start = Some(Cursor {
        values: vec![Value::Int(1), Value::Int(2)],
        inclusive: true,
    });
    assert!(err(&query).contains("cursor does not match the order"));
    query.start = Some(Cursor {
        values: vec![Value::String("a/b".into())],
        inclusive: true,
    });
    assert!(err(&query).contains("cursor does not match the order"));
    let mut query = q();
    query.limit = Some(usize::MAX);
    query.offset = 1;
    assert!(err(&query).contains("too large"));
    let query = Query {
        scope: Scope::Group {
            collection_id: "a/b".into(),
            under: None,
        },
        ..q()
    };
    assert!(err(&query).contains("one non-empty segment"));
}
