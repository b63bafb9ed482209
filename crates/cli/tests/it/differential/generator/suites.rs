//! The generator's suites of writes, paths, lists, the expression count and compiling (the
//! expression suites and the shared pieces are in `generator.rs`).

use super::*;

/// Write suites: create, update and delete with `request.resource`, `resource`, `diff()`,
/// `getAfter()` and `existsAfter()`.
pub(super) fn write_suite(rng: &mut Rng, i: usize) -> Suite {
    let conds = [
        "request.resource.data.diff(resource.data).affectedKeys().hasOnly(['n', 's'])",
        "request.resource.data.diff(resource.data).changedKeys().size() <= 1",
        "request.resource.data.diff(resource.data).unchangedKeys().hasAll(['tags'])",
        "request.resource.data.diff(resource.data).addedKeys().size() == 0",
        "request.resource.data.diff(resource.data).removedKeys() == ['gone'].toSet()",
        "request.resource.data.keys().hasOnly(['n', 's', 'tags', 'f', 'gone', 'extra'])",
        "request.resource.data.n is int && request.resource.data.n > resource.data.n",
        "request.resource.data.s.size() < 20",
        "request.resource == null",
        "resource == null",
        "resource.data.n == 5",
        "request.resource.id == resource.id",
        "request.resource.__name__ == resource.__name__",
        "getAfter(/databases/$(database)/documents/w/doc).data.n == 6",
        "existsAfter(/databases/$(database)/documents/w/doc)",
        "get(/databases/$(database)/documents/w/doc).data.n == 5",
        "request.resource.data.f == 2.5",
        "request.resource.data.values().size() == 3",
        "request.method == 'update'",
        "request.method in ['create', 'delete']",
        "request.resource.data.get('extra', 0) == 0",
        "request.resource.data.tags.hasAny(['a'])",
        "request.resource.data.diff({}).addedKeys().size() > 2",
        "request.resource.data.n == resource.data.n + 1",
        "request.resource.data.diff(resource.data).affectedKeys().hasOnly(['n'])",
        "request.time > resource.data.created",
    ];
    let mut rules = String::from(HEADER);
    let k = 3 + rng.below(3);
    let mut chosen = Vec::new();
    for _ in 0..k {
        chosen.push(*rng.pick(&conds));
    }
    let methods = ["create", "update", "delete", "write"];
    for (j, c) in chosen.iter().enumerate() {
        let m = rng.pick(&methods);
        let op = if j == 0 {
            ""
        } else {
            *rng.pick(&["&& ", "|| "])
        };
        let _ = op;
        rules.push_str(&format!("    match /w/{{d}} {{ allow {m}: if {c}; }}\n"));
    }
    rules.push_str(FOOTER);
    let base = json!({"created": {"$timestamp": "2020-01-02T03:04:05Z"}, "f": 2.5, "gone": 1, "n": 5, "s": "x", "tags": ["a"]});
    let updates = [
        json!({"created": {"$timestamp": "2020-01-02T03:04:05Z"}, "f": 2.5, "gone": 1, "n": 6, "s": "x", "tags": ["a"]}),
        json!({"created": {"$timestamp": "2020-01-02T03:04:05Z"}, "f": 2.5, "n": 6, "s": "y", "tags": ["a"]}),
        json!({"f": 2.5, "n": 5.0, "s": "x", "tags": ["a"]}),
        json!({"created": {"$timestamp": "2020-01-02T03:04:05Z"}, "extra": true, "f": 2.5, "gone": 1, "n": 5, "s": "x", "tags": ["a"]}),
        json!({"n": 6}),
    ];
    let mut cases = Vec::new();
    for a in auths() {
        for (j, u) in updates.iter().enumerate() {
            cases.push(Case {
                name: format!("update {j}"),
                auth: a.clone(),
                method: "update",
                path: "w/doc".into(),
                data: Some(u.clone()),
                query: None,
            });
        }
        cases.push(Case {
            name: "create".into(),
            auth: a.clone(),
            method: "create",
            path: "w/fresh".into(),
            data: Some(updates[rng.below(updates.len())].clone()),
            query: None,
        });
        cases.push(Case {
            name: "delete".into(),
            auth: a.clone(),
            method: "delete",
            path: "w/doc".into(),
            data: None,
            query: None,
        });
    }
    Suite {
        name: format!("writes {i}"),
        rules,
        docs: vec![("w/doc".into(), base)],
        cases,
    }
}

// ----- paths

const SEGMENTS: &[&str] = &["a", "b", "a1", "b1", "x"];

pub(super) fn path_suite(rng: &mut Rng, i: usize) -> Suite {
    let v1 = i % 5 == 4;
    let mut rules = String::new();
    if !v1 {
        rules.push_str("rules_version = '2';\n");
    }
    rules.push_str("service cloud.firestore {\n  match /databases/{database}/documents {\n");
    let patterns_v2: &[&str] = &[
        "/a/{x}",
        "/a/{x}/b/{y}",
        "/{c}/{d}",
        "/{rest=**}",
        "/a/{rest=**}",
        "/{p=**}/b/{y}",
        "/a/{x}/{rest=**}",
        "/{c}/{d}/{e}/{f}",
        "/b/{x}",
        "/a/{x=*}",
        "/x/{rest=**}",
    ];
    let patterns_v1: &[&str] = &[
        "/a/{x}",
        "/{c}/{d}",
        "/{rest=**}",
        "/a/{rest=**}",
        "/a/{x}/b/{y}",
    ];
    let conditions: &[&str] = &[
        "true",
        "false",
        "x == 'a1'",
        "x == 'b1'",
        "y == 'b1'",
        "c == 'a'",
        "d == 'x'",
        "rest == /b/c",
        "rest[0] == 'b'",
        "string(rest) == '/a/b'",
        "rest is path",
        "rest[1:2] == /x",
        "p == /a/a1",
        "p.size() == 2",
        "request.path[3] == 'a'",
        "request.path == /databases/$(database)/documents/a/a1",
        "string(request.path).size() > 30",
        "request.method == 'get'",
        "request.method == 'list'",
        "x.size() == 2",
        "resource == null",
        "resource.data.v == 1",
        "request.auth != null",
        "database == '(default)'",
        "e == 'a'",
        "x in ['a1', 'x']",
        "id == 'inner'",
    ];
    let methods = [
        "read",
        "write",
        "get",
        "list",
        "create",
        "update",
        "delete",
        "read, write",
        "get, list",
    ];
    let n = 3 + rng.below(4);
    for _ in 0..n {
        let pat = if v1 {
            *rng.pick(patterns_v1)
        } else {
            *rng.pick(patterns_v2)
        };
        let m = *rng.pick(&methods);
        let c = *rng.pick(conditions);
        let nested = !v1 && rng.chance(35) && !pat.contains("**");
        if nested {
            let inner = *rng.pick(&["/b/{y}", "/{rest=**}", "/{id}", "/c/{id}"]);
            let c2 = *rng.pick(conditions);
            let m2 = *rng.pick(&methods);
            rules.push_str(&format!(
                "    match {pat} {{\n      allow {m}: if {c};\n      match {inner} {{ allow {m2}: if {c2}; }}\n    }}\n"
            ));
        } else {
            rules.push_str(&format!("    match {pat} {{ allow {m}: if {c}; }}\n"));
        }
    }
    rules.push_str(FOOTER);
    let random_path = |rng: &mut Rng, segments: usize| {
        (0..segments)
            .map(|_| *rng.pick(SEGMENTS))
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut docs = Vec::new();
    for _ in 0..15 {
        let depth = 1 + rng.below(3);
        docs.push((random_path(rng, depth * 2), json!({"v": 1})));
    }
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    docs.dedup_by(|a, b| a.0 == b.0);
    let mut cases = Vec::new();
    for j in 0..40 {
        let depth = 1 + rng.below(3);
        let method = *rng.pick(&["get", "get", "create", "update", "delete", "list", "list"]);
        let path = if method != "list" && rng.chance(40) {
            docs[rng.below(docs.len())].0.clone()
        } else if method == "list" {
            random_path(rng, depth * 2 - 1)
        } else {
            random_path(rng, depth * 2)
        };
        let exists = docs.iter().any(|(p, _)| *p == path);
        let method = match method {
            "create" if exists => "update",
            "update" | "delete" if !exists => "create",
            m => m,
        };
        let query = (method == "list").then(|| Query {
            group: rng.chance(20) && !path.contains('/'),
            ..Query::default()
        });
        cases.push(Case {
            name: format!("path {j}"),
            auth: rng.pick(&auths()).clone(),
            method,
            path,
            data: matches!(method, "create" | "update").then(|| json!({"v": 2})),
            query,
        });
    }
    Suite {
        name: format!("paths {i}{}", if v1 { " (v1)" } else { "" }),
        rules,
        docs,
        cases,
    }
}

// ----- lists

pub(super) fn list_suite(rng: &mut Rng, i: usize) -> Suite {
    let conds: &[&str] = &[
        "resource.data.a > 0",
        "resource.data.a >= 5",
        "resource.data.a == 5",
        "resource.data.a != 3",
        "resource.data.a < 10",
        "resource.data.a <= 2.5",
        "resource.data.a > 4.5",
        "resource.data.a in [1, 2, 3]",
        "resource.data.a is int",
        "resource.data.a != null",
        "resource.data.a == null",
        "resource.data.b == 'x'",
        "resource.data.b > 'a'",
        "resource.data.owner == request.auth.uid",
        "'s' in resource.data",
        "!('s' in resource.data)",
        "resource.data.get('s', 'none') == 'none'",
        "resource.data.get('a', 0) > 0",
        "resource.data.keys().hasOnly(['a', 'b', 'owner'])",
        "resource.data.size() < 3",
        "resource.data.tags.hasAny(['t'])",
        "'t' in resource.data.tags",
        "resource.data.m.x > 1",
        "resource.data.c >= 1.5",
        "resource.data.c > 1",
        "request.query.limit <= 10",
        "request.query.limit == null",
        "request.query.offset == 0",
        "request.query.orderBy.a == 'ASC'",
        "request.query.orderBy.keys().size() == 0",
        "request.query.orderBy.values().hasOnly(['DESC'])",
        "request.query.kind == 'items'",
        "request.query.parent == null",
        "request.query.allDescendants == false",
        "id == 'd1'",
        "resource.id == 'd1'",
        "resource.__name__ != null",
        "resource == null",
        "resource != null",
        "resource.data.a is constraint",
        "resource.data.a == resource.data.a",
        "get(/databases/$(database)/documents/items/d1).data.a == 1",
        "exists(/databases/$(database)/documents/items/d2)",
        "request.path == /databases/$(database)/documents/items",
        "resource.data.b.size() > 0",
        "resource.data.a + 1 > 1",
        "resource.data.b in ['x', 'y']",
        "resource.data.tags.size() > 0",
        "true",
    ];
    let mut rules = String::from(HEADER);
    let n = 1 + rng.below(3);
    for _ in 0..n {
        let mut c = rng.pick(conds).to_string();
        if rng.chance(30) {
            let op = *rng.pick(&["&&", "||"]);
            c = format!("{c} {op} {}", rng.pick(conds));
        }
        let m = *rng.pick(&["list", "read", "list"]);
        rules.push_str(&format!(
            "    match /items/{{id}} {{ allow {m}: if {c}; }}\n"
        ));
    }
    if rng.chance(30) {
        let c = *rng.pick(&[
            "rest.size() > 0",
            "rest == rest",
            "rest[0] == 'items'",
            "true",
            "string(rest) != ''",
        ]);
        rules.push_str(&format!(
            "    match /{{rest=**}} {{ allow list: if {c}; }}\n"
        ));
    }
    if rng.chance(25) {
        let c = *rng.pick(conds);
        rules.push_str(&format!(
            "    match /{{path=**}}/items/{{id}} {{ allow list: if {c}; }}\n"
        ));
    }
    rules.push_str(FOOTER);
    let docs = vec![
        (
            "items/d1".to_string(),
            json!({"a": 1, "b": "x", "c": 1.5, "m": {"x": 1}, "owner": "alice", "tags": ["t"]}),
        ),
        (
            "items/d2".to_string(),
            json!({"a": 5, "b": "y", "c": 2.5, "m": {"x": 2}, "owner": "u1", "tags": ["u"]}),
        ),
        (
            "items/d3".to_string(),
            json!({"a": 7, "b": "z", "c": 3.0, "m": {"x": 3}, "owner": "alice", "s": "set", "tags": []}),
        ),
    ];
    let filters: Vec<(&str, &'static str, Value)> = vec![
        ("a", "==", json!(5)),
        ("a", ">", json!(5)),
        ("a", ">=", json!(1)),
        ("a", "<", json!(10)),
        ("a", "<=", json!(2)),
        ("a", "!=", json!(3)),
        ("a", "in", json!([1, 2])),
        ("a", "in", json!([1, 2, 3])),
        ("a", "not-in", json!([1, 2])),
        ("a", "==", json!(5.0)),
        ("a", ">", json!(4.5)),
        ("a", "==", Value::Null),
        ("a", "!=", Value::Null),
        ("b", "==", json!("x")),
        ("b", "in", json!(["x", "y"])),
        ("b", ">", json!("a")),
        ("owner", "==", json!("alice")),
        ("owner", "==", json!("u1")),
        ("tags", "array-contains", json!("t")),
        ("tags", "array-contains-any", json!(["t", "u"])),
        ("m.x", "==", json!(1)),
        ("m.x", ">", json!(1)),
        ("c", ">", json!(1.5)),
        ("c", ">=", json!(1)),
        ("s", "==", json!("set")),
        ("__name__", "==", json!({"$ref": "items/d1"})),
    ];
    let mut cases = Vec::new();
    for j in 0..28 {
        let mut q = Query::default();
        let nf = rng.below(3);
        for _ in 0..nf {
            let (f, op, v) = rng.pick(&filters).clone();
            // At most one disjunctive filter, no repeated field, and `__name__ ==` only beside
            // equalities (keeps every query valid).
            let disjunctive = |o: &str| matches!(o, "in" | "not-in" | "array-contains-any" | "!=");
            let inequality = |o: &str| matches!(o, "<" | "<=" | ">" | ">=" | "!=" | "not-in");
            let named = |g: &str| g == "__name__";
            if q.filters.iter().any(|(g, o, _)| {
                g == f
                    || (disjunctive(o) && disjunctive(op))
                    || (named(g) && inequality(op))
                    || (named(f) && inequality(o))
            }) {
                continue;
            }
            q.filters.push((f.to_string(), op, v));
        }
        if rng.chance(30) {
            let f = *rng.pick(&["a", "b"]);
            q.order_by.push((f.to_string(), rng.chance(50)));
        }
        if rng.chance(50) {
            q.limit = Some(*rng.pick(&[1, 5, 10, 20, 100]));
        }
        if rng.chance(20) {
            q.offset = Some(*rng.pick(&[0, 1, 2]));
        }
        q.group = rng.chance(15);
        if q.group {
            q.filters.retain(|(f, _, _)| f != "__name__");
        }
        cases.push(Case {
            name: format!("list {j}"),
            auth: rng.pick(&auths()).clone(),
            method: "list",
            path: "items".into(),
            data: None,
            query: Some(q),
        });
    }
    // Or queries, from a stream of their own (the cases above stay what they were): branches
    // of equality-like filters, sometimes beside a plain filter; each disjunction must be
    // allowed for the query to be.
    let mut orng = Rng::new(0x4f52_0000 ^ i as u64);
    let equalities: Vec<(&str, &'static str, Value)> = vec![
        ("a", "==", json!(5)),
        ("a", "in", json!([1, 2])),
        ("b", "==", json!("x")),
        ("b", "in", json!(["x", "y"])),
        ("owner", "==", json!("alice")),
        ("owner", "==", json!("u1")),
        ("tags", "array-contains", json!("t")),
        ("m.x", "==", json!(1)),
        ("__name__", "==", json!({"$ref": "items/d2"})),
    ];
    for j in 0..8 {
        let mut q = Query::default();
        for _ in 0..2 + orng.below(2) {
            let mut branch: Vec<(String, &'static str, Value)> = Vec::new();
            for _ in 0..1 + orng.below(2) {
                let (f, op, v) = orng.pick(&equalities).clone();
                if !branch.iter().any(|(g, _, _)| g == f) {
                    branch.push((f.to_string(), op, v));
                }
            }
            q.or.push(branch);
        }
        if orng.chance(40) {
            let (f, op, v) = orng
                .pick(&[
                    ("a", ">=", json!(1)),
                    ("owner", "==", json!("alice")),
                    ("b", "==", json!("x")),
                ])
                .clone();
            // `__name__ ==` only beside equalities, as above (the emulator refuses it beside
            // an inequality).
            let named = q.or.iter().flatten().any(|(g, _, _)| g == "__name__");
            if !(named && op == ">=") {
                q.filters.push((f.to_string(), op, v));
            }
        }
        if orng.chance(50) {
            q.limit = Some(*orng.pick(&[5, 10, 20]));
        }
        cases.push(Case {
            name: format!("or list {j}"),
            auth: orng.pick(&auths()).clone(),
            method: "list",
            path: "items".into(),
            data: None,
            query: Some(q),
        });
    }
    Suite {
        name: format!("lists {i}"),
        rules,
        docs,
        cases,
    }
}

// ----- the expression count

/// Conditions that evaluate close to 1,000 expressions (Firebase's limit per decision), counted
/// as Firebase counts them.
pub(super) fn budget_suite(rng: &mut Rng, i: usize) -> Suite {
    let mut rules = String::from(HEADER);
    rules.push_str(
        "    function f0(x) { return x + 1 > 0; }
    function f1(x) { return f0(x) && f0(x + 1); }
    function f2(x) { return f1(x) && f1(x); }
    function f3(x) { return f2(x) && f2(x); }
    function f4(x) { return f3(x) && f3(x); }
    function f5(x) { return f4(x) && f4(x); }
    function f6(x) { return f5(x) && f5(x); }
    function g(x) { let a = x + 1; let b = a * 2; let c = [a, b, x].size(); return c == 3 ? true : false; }
    function t(x) { return x is int && (x > 0 ? x < 100 : x > -100); }
",
    );
    let mut cases = Vec::new();
    for k in 0..30 {
        let base = *rng.pick(&[
            "f6(1)",
            "f5(1)",
            "f5(1) && f4(1)",
            "f6(1) || true",
            "f5(1) && f3(1) && f2(1)",
        ]);
        let pad = rng.below(60);
        let mut extra = String::new();
        for _ in 0..pad {
            let clause: &&str = rng.pick(&[
                " && g(1)",
                " && t(2)",
                " && 1 == 1",
                " && [1, 2, 3].size() == 3",
                " && /a/b/$(1) != null",
                " && 'a' is string",
            ]);
            extra.push_str(clause);
        }
        let tail = *rng.pick(&["", "\n      allow get;", "\n      allow get: if true;"]);
        rules.push_str(&format!(
            "    match /b{k}/{{d}} {{\n      allow get: if {base}{extra};{tail}\n    }}\n"
        ));
        cases.push(Case {
            name: format!("budget {k}"),
            auth: None,
            method: "get",
            path: format!("b{k}/doc"),
            data: None,
            query: None,
        });
    }
    rules.push_str(FOOTER);
    Suite {
        name: format!("budget {i}"),
        rules,
        docs: Vec::new(),
        cases,
    }
}

// ----- compiling

/// Hand-written suites for each class of the issue, with requests.
pub(super) fn fixed_suites() -> Vec<Suite> {
    let get = |path: &str, auth: Option<(String, Value)>| Case {
        name: format!("get {path}"),
        auth,
        method: "get",
        path: path.into(),
        data: None,
        query: None,
    };
    let alice = Some(("alice".to_string(), json!({})));
    vec![
        Suite {
            name: "optional semicolons, global functions, unknown names".into(),
            rules: "rules_version = '2';\nfunction signedIn() { return request.auth != null }\nservice cloud.firestore {\n  match /databases/{database}/documents {\n    function isOwner() { return userId == request.auth.uid; }\n    match /users/{userId} {\n      allow read: if isOwner()\n      allow get: if signedIn() && b.startsWith('x')\n      allow get: if timestamp.now() != null;\n    }\n    match /pub/{d} { allow get: if signedIn() }\n    match /products/{id} { match /prices/{id} { allow read: if id == 'p1'; } }\n  }\n}\n".into(),
            docs: vec![],
            cases: vec![
                get("users/alice", alice.clone()),
                get("users/bob", alice.clone()),
                get("pub/x", alice.clone()),
                get("pub/x", None),
                get("products/a/prices/p1", None),
                get("products/p1/prices/b", None),
                Case {
                    name: "list prices".into(),
                    auth: None,
                    method: "list",
                    path: "products/p1/prices".into(),
                    data: None,
                    query: Some(Query::default()),
                },
            ],
        },
    ]
}

/// Rules files of the grammar's corners, each compiled by both (no requests).
pub(super) fn compile_suites(rng: &mut Rng) -> Vec<Suite> {
    let wrap = |body: &str| format!("{HEADER}{body}\n{FOOTER}");
    let cond = |e: &str| wrap(&format!("    match /a/{{b}} {{ allow read: if {e}; }}"));
    let mut files: Vec<String> = vec![
        wrap("    match /a/{b} {\n      allow read: if true\n      allow write: if false;\n    }"),
        "rules_version = '2';\nfunction signedIn() { return request.auth != null; }\nservice cloud.firestore { match /databases/{database}/documents { match /a/{b} { allow read: if signedIn(); } } }".into(),
        wrap("    match /a/{b} {\n      // TODO\n    }"),
        wrap("    match /a/{b} {\n      match /c/{d} {\n      }\n      allow read: if true;\n    }"),
        wrap("    match /products/{id} { match /prices/{id} { allow read: if true; } }"),
        wrap("    match /a/{b}/{b} { allow read: if true; }"),
        "rules_version = '2';\nservice cloud.firestore {\n}\n".into(),
        "".into(),
        "service cloud.firestore { match /databases/{d}/documents { match /a/{b} { allow read: if true; } } }".into(),
        "rules_version = '3';\nservice cloud.firestore { match /databases/{d}/documents { match /a/{b} { allow read; } } }".into(),
        "rules_version = \"1\";\nservice cloud.firestore { match /databases/{d}/documents { match /a/{b=**} { allow read; } } }".into(),
        "rules_version = '1';\nservice cloud.firestore { match /databases/{d}/documents { match /{b=**}/a { allow read; } } }".into(),
        "service cloud.firestore { match /databases/{d}/documents { function f() { let a = 1; return a == 1; } match /a/{b} { allow read: if f(); } } }".into(),
        wrap("    match /{a=**}/b/{c=**} { allow read; }"),
        wrap("    match /{a=**} { match /b/{c=**} { allow read; } }"),
        wrap("    match /a/{b} { allow read, write, delete, frobnicate: if true; }"),
        wrap("    allow read: if true;"),
        wrap("    /a/{b} { allow read; }"),
        wrap("    match /a/{b} { allow read: true; }"),
        wrap("    match /a/{b} { allow read if true; }"),
        wrap("    match /a/{b} { allow: if true; }"),
        wrap("    match /a/{b} { allow read: if; }"),
        wrap("    match /a/{b} { allow read: if true;; }"),
        wrap("    match /a/{b} { allow read }"),
        wrap("    match /a/{b} { allow get allow list }"),
        wrap("    match /a/ { allow read; }"),
        wrap("    match a/{b} { allow read; }"),
        wrap("    match /a/{b=*} { allow read; }"),
        wrap("    match /a/{b=***} { allow read; }"),
        wrap("    match /(default)/{b} { allow read; }"),
        wrap("    match /a%20b/{b} { allow read; }"),
        wrap("    match /a/{in} { allow read; }"),
        wrap("    match /a/{$x} { allow read: if $x != null; }"),
        "service cloud.firestore { match /databases/{d}/documents { match /a/{b} { allow read; } } }\nservice cloud.firestore { match /x/{y} { allow read; } }".into(),
        "service firebase.storage { match /b/{bucket}/o { match /{all=**} { allow read; } } }\nservice cloud.firestore { match /databases/{d}/documents { match /a/{b} { allow read; } } }".into(),
        "service my.service { match /a/{b} { allow read; } }".into(),
        "rules_version = '2'\nservice cloud.firestore { match /databases/{d}/documents { match /a/{b} { allow read; } } }".into(),
        "import 'x';\nservice cloud.firestore { match /databases/{d}/documents { match /a/{b} { allow read; } } }".into(),
        "\u{feff}service cloud.firestore { match /databases/{d}/documents { match /a/{b} { allow read; } } }".into(),
        wrap("    function f() { return true; }\n    function f() { return false; }\n    match /a/{b} { allow read: if f(); }"),
        wrap("    function f(a, a) { return true; }\n    match /a/{b} { allow read: if f(1, 2); }"),
        wrap("    function f(a) { let a = 1; return a; }\n    match /a/{b} { allow read: if f(1) == 1; }"),
        wrap("    function f(a) { let x = 1; let x = 2; return x; }\n    match /a/{b} { allow read: if f(1) == 1; }"),
        wrap("    function f(a, b, c, d, e, f, g) { return true; }\n    match /a/{b} { allow read: if f(1,2,3,4,5,6,7); }"),
        wrap("    function f(a, b, c, d, e, f, g, h) { return true; }\n    match /a/{b} { allow read: if true; }"),
        wrap("    function f() { return f(); }\n    match /a/{b} { allow read: if true; }"),
        wrap("    function f() { return g(); }\n    function g() { return f(); }\n    match /a/{b} { allow read: if true; }"),
        wrap("    function f() {}\n    match /a/{b} { allow read: if true; }"),
        wrap("    function f() { let a = 1; }\n    match /a/{b} { allow read: if true; }"),
        wrap("    function f() { let a = 1 return a; }\n    match /a/{b} { allow read: if true; }"),
        wrap("    function f() { return 1 }\n    match /a/{b} { allow read: if f() == 1; }"),
        wrap("    function f() { return 1; let a = 2; }\n    match /a/{b} { allow read: if true; }"),
        wrap("    function if() { return 1; }\n    match /a/{b} { allow read: if true; }"),
        wrap("    function (a) { return 1; }\n    match /a/{b} { allow read: if true; }"),
        wrap("    function f(a,) { return 1; }\n    match /a/{b} { allow read: if true; }"),
        wrap("    match /a/{b} { function f() { return true; } allow read: if f(); }"),
        wrap("    match /a/{b} { allow read: if math.abs; }"),
        wrap("    match /a/{b} { allow read: if math == 1; }"),
        wrap("    match /a/{math} { allow read: if math == 1; }"),
        wrap("    match /a/{math} { allow read: if math.size() == 1; }"),
        wrap("    function f(hashing) { return hashing; }\n    match /a/{b} { allow read: if true; }"),
    ];
    for e in [
        "4/2 == 2",
        "4 / 2 == 2",
        "4 /2 == 2",
        "a/b",
        "1e3 == 1000.0",
        "0x10 == 16",
        "'abc'[1:] == 'bc'",
        "'abc'[:1] == 'a'",
        "'abc'[1:2] == 'b'",
        ".5 == 0.5",
        "5. == 5.0",
        "1..2",
        "-9223372036854775808 < 0",
        "- 9223372036854775808 < 0",
        "9223372036854775808 > 0",
        "-(9223372036854775808) < 0",
        "[9223372036854775808] != null",
        "-9223372036854775808.5 < 0",
        "99999999999999999999.0 > 0",
        "--1 == 1",
        "- -1 == 1",
        "-!true",
        "!-1",
        "!!true",
        "++x",
        "1 is foo",
        "1 is int",
        "1 is set",
        "1 is vector",
        "1 is constraint",
        "1 is map_diff",
        "1 is Int",
        "a == b == c",
        "1 < 2 < 3",
        "true ? 1 : 2 ? 3 : 4",
        "true ? false ? 1 : 2 : 3",
        "[1, 2,] == [1, 2]",
        "{'a': 1,} == {'a': 1}",
        "f(,)",
        "[,]",
        "noFunction()",
        "unknownVariable",
        "'x'.unknownMethod()",
        "request.auth.uid.startsWith('a')",
        "'a'.matches('(')",
        "'a'.matches('a**')",
        "'a'.matches('[')",
        "'a'.split('(')",
        "'a'.replace('(', 'b')",
        "'a'.matches(('('))",
        "'a'.matches('x{2}')",
        "'a'.matches('a*?')",
        "'a'.matches('a*+')",
        "'a\\qb' == ''",
        "'a\\a' == ''",
        "'a\\v' == ''",
        "'\\x41' == 'A'",
        "'\\u00e9' == 'é'",
        "'\\101' == 'A'",
        "'\\400' == ''",
        "'\\`' == ''",
        "\"a'b\" == 'a\\'b'",
        "r'raw' == 'raw'",
        "b'\\xff' == b'\\xff'",
        "'abc",
        "x # comment",
        "é == 1",
        "true && false || true",
        "true and false",
        "true & false",
        "a = 1",
        "request.auth.token.if == 1",
        "request.auth.token.in == 1",
        "request.auth.token.rules_version == 1",
        "request.auth.token.if() == 1",
        "request.auth.token.match == 1",
        "let == 1",
        "for == 1",
        "$x == 1",
        "$ == 1",
        "/a/$(b)/c == /a/b/c",
        "/a/$b/c == null",
        "/a/ == null",
        "/a//b == null",
        "/a/*b == null",
        "/a/(b) == null",
        "/a/b /c == null",
        "/a/b / 2 == null",
        "get(/databases/$(database)/documents/a/b).data == null",
        "a.1 == 1",
        "[1][0].x == 1",
        "(1).x == 1",
        "1.5.x == 1",
        "(((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))) == 1",
        "math.abs(1) == 1 && math.isInfinite(1.0)",
        "bool('true')",
        "timestamp.now() == null",
        "@x",
        "x.@y",
        "{'a': 1}['a'] == 1",
        "{1: 2} == null",
        "request.resource.data.diff(resource.data).affectedKeys().hasOnly(['a'])",
        "/* unclosed",
        "1 /* ok */ == 1",
        "'/*' == '/*'",
    ] {
        files.push(cond(e));
    }
    // Nesting limits: expressions, matches, lets and call chains around Firebase's bounds.
    for n in [97, 98, 99, 100] {
        files.push(cond(&format!("{}true{}", "(".repeat(n), ")".repeat(n))));
        files.push(cond(&format!("{}true", "!".repeat(n))));
        files.push(cond(&vec!["true"; n + 1].join(" && ")));
        files.push(cond(&format!(
            "-({})1{} == 1",
            "-(".repeat(n / 2),
            ")".repeat(n / 2)
        )));
        files.push(cond(&format!("{}1{} == 1", "[".repeat(n), "]".repeat(n))));
    }
    for n in [2000, 2001, 2002] {
        files.push(cond(&format!("request{} == 1", ".a".repeat(n))));
    }
    for depth in [10, 11, 12] {
        let mut body = String::new();
        for k in 1..depth {
            body.push_str(&format!("match /m{k}/{{v{k}}} {{ "));
        }
        body.push_str("allow read: if true; ");
        body.push_str(&"} ".repeat(depth - 1));
        files.push(wrap(&format!("    {body}")));
    }
    for lets in [10, 11, 12] {
        let ls: String = (0..lets).map(|k| format!("let v{k} = {k}; ")).collect();
        files.push(wrap(&format!(
            "    function f() {{ {ls}return true; }}\n    match /a/{{b}} {{ allow read: if f(); }}"
        )));
    }
    for chain in [20, 21, 22] {
        let fs: String = (0..chain)
            .map(|k| {
                if k + 1 < chain {
                    format!("    function c{k}() {{ return c{}(); }}\n", k + 1)
                } else {
                    format!("    function c{k}() {{ return true; }}\n")
                }
            })
            .collect();
        files.push(wrap(&format!(
            "{fs}    match /a/{{b}} {{ allow read: if c0(); }}"
        )));
    }
    for vars in [20, 21] {
        let segs: String = (0..vars).map(|k| format!("/{{w{k}}}")).collect();
        files.push(wrap(&format!("    match {segs} {{ allow read; }}")));
    }
    for segs in [97, 98] {
        let s: String = (0..segs).map(|k| format!("/s{k}")).collect();
        files.push(wrap(&format!("    match {s} {{ allow read; }}")));
    }
    // Random perturbations of a valid file: a dropped or repeated token.
    let base = "rules_version = '2';\nservice cloud.firestore {\n  match /databases/{database}/documents {\n    function f(a) { let b = a + 1; return b > 1; }\n    match /a/{x}/b/{y=**} {\n      allow read, write: if f(1) && request.auth.uid == x;\n      allow get: if [1, 2][0] == 1 ? true : 'a'.matches('a.*');\n    }\n  }\n}\n";
    let pieces: Vec<&str> = base
        .split_inclusive([' ', '\n', ';', '(', ')', '{', '}', '[', ']', ',', '.'])
        .collect();
    for _ in 0..80 {
        let mut out: Vec<&str> = pieces.clone();
        let k = rng.below(out.len());
        match rng.below(3) {
            0 => {
                out.remove(k);
            }
            1 => {
                let p = out[k];
                out.insert(k, p);
            }
            _ => {
                let j = rng.below(out.len());
                out.swap(k, j);
            }
        }
        files.push(out.concat());
    }
    files
        .into_iter()
        .enumerate()
        .map(|(i, rules)| Suite {
            name: format!("compile {i}"),
            rules,
            docs: Vec::new(),
            cases: Vec::new(),
        })
        .collect()
}
