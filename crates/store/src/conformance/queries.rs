//! Conformance checks of queries: every filter operator, orders, cursors, limit/offset,
//! collection groups, the total order of mixed types, name filters and list paging.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test suite compiled into the library so other backends can run it"
)]

use super::*;

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
    let with = |filters: Vec<Filter>| {
        let store = store.clone();
        async move {
            let mut q = query("c");
            q.filters = filters;
            run(&*store, &q).await
        }
    };
    let many: Vec<i64> = (0..31).collect();
    assert_invalid(with(vec![filter("v", "in", json!(many))]).await, "1 to 30");
    assert_invalid(with(vec![filter("v", "in", json!([]))]).await, "1 to 30");
    assert_invalid(
        with(vec![filter("v", "in", json!(1))]).await,
        "must be an array",
    );
    assert_invalid(
        with(vec![filter("v", "array-contains-any", json!(many))]).await,
        "1 to 30",
    );
    let eleven: Vec<i64> = (0..11).collect();
    assert_invalid(
        with(vec![filter("v", "not-in", json!(eleven))]).await,
        "1 to 10",
    );
    assert_invalid(
        with(vec![
            filter("a", "array-contains", json!(1)),
            filter("b", "array-contains-any", json!([1])),
        ])
        .await,
        "at most one array-contains",
    );
    assert_invalid(
        with(vec![filter("__name__", "==", json!(5))]).await,
        "__name__",
    );
    let mut q = query("c");
    q.limit = Some(0);
    assert_invalid(run(&*store, &q).await, "limit");
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
        .commit(vec![update("c/a", &[("v", json!(2)), ("t", json!(["y"]))])].into())
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
    store.commit(vec![delete("c/b")].into()).await.unwrap();
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
    assert_invalid(run(&*store, &q).await, "cursor does not match the order");
    q.start = Some(Cursor {
        values: vec![Value::Int(1), val(json!({"$ref": "other/a"}))],
        inclusive: true,
    });
    assert_invalid(run(&*store, &q).await, "cursor does not match the order");
    q.start = Some(Cursor {
        values: vec![Value::Int(1), Value::Int(7)],
        inclusive: true,
    });
    assert_invalid(run(&*store, &q).await, "cursor does not match the order");
    let mut q = query("k");
    q.end = Some(Cursor {
        values: vec![val(json!("a/b"))],
        inclusive: true,
    });
    assert_invalid(run(&*store, &q).await, "cursor does not match the order");
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
