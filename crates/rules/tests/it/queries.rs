//! List queries (rules are not filters: a list is proven from its constraints) and batches
//! (the shared document-read allowance), from the reference §1.8–1.9.

use claimdb_rules::{Request, Ruleset};
use serde_json::json;

use crate::{request, with_auth};

const QUERIES: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /posts/{post} {
      allow list: if resource.data.owner == request.auth.uid && request.query.limit <= 20;
      allow list: if resource.data.visibility in ['public', 'team'];
    }
    match /notes/{note} {
      allow list: if resource.data.meta.owner == request.auth.uid;
      allow list: if resource.id == 'x';
    }
    match /{path=**}/comments/{c} {
      allow list: if resource.data.author == request.auth.uid;
    }
    match /open/{doc} {
      allow list: if resource != null;
    }
    match /whole/{doc} {
      allow list: if resource.data.owner == request.auth.uid && resource.data.size() == 1;
      allow list: if resource.data.owner == request.auth.uid && !('secret' in resource.data);
      allow list: if resource.data.owner == request.auth.uid && resource.data.keys().hasOnly(['owner']);
      allow list: if resource.data == {'owner': request.auth.uid};
    }
    match /nested/{doc} {
      allow list: if resource.data.meta.owner == request.auth.uid && resource.data.meta.size() == 1;
    }
    match /getter/{doc} {
      allow list: if resource.data.get('owner', '') == request.auth.uid && 'owner' in resource.data;
    }
  }
}"#;

/// Rules are not filters: a list is allowed only when every document the query could return is.
#[test]
fn queries_are_proven_from_their_constraints() {
    use claimdb_model::Value;
    use claimdb_rules::{Filter, FilterOp};
    let s = |x: &str| Value::String(x.into());
    let arr = |xs: &[&str]| Value::Array(xs.iter().map(|x| s(x)).collect());
    let f = |field: &str, op: FilterOp, value: Value| Filter {
        field: field.into(),
        op,
        value,
    };
    let many: Vec<String> = (0..11).map(|i| format!("v{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let table: Vec<(&str, Vec<Filter>, Option<i64>, bool)> = vec![
        (
            "posts",
            vec![f("owner", FilterOp::Eq, s("alice"))],
            Some(10),
            true,
        ),
        (
            "posts",
            vec![f("owner", FilterOp::Eq, s("bob"))],
            Some(10),
            false,
        ),
        ("posts", vec![], Some(10), false),
        (
            "posts",
            vec![f("owner", FilterOp::Eq, s("alice"))],
            Some(30),
            false,
        ),
        (
            "posts",
            vec![f("owner", FilterOp::Eq, s("alice"))],
            None,
            false,
        ),
        (
            "posts",
            vec![f("owner", FilterOp::In, arr(&["alice"]))],
            Some(5),
            true,
        ),
        (
            "posts",
            vec![f("owner", FilterOp::In, arr(&["alice", "bob"]))],
            Some(5),
            false,
        ),
        (
            "posts",
            vec![f("visibility", FilterOp::In, arr(&["public", "team"]))],
            None,
            true,
        ),
        (
            "posts",
            vec![f("visibility", FilterOp::In, arr(&["public", "private"]))],
            None,
            false,
        ),
        (
            "posts",
            vec![f("visibility", FilterOp::Eq, s("public"))],
            None,
            true,
        ),
        (
            "posts",
            vec![f("owner", FilterOp::Ne, s("bob"))],
            Some(5),
            false,
        ),
        (
            "posts",
            vec![f("owner", FilterOp::Gt, s("a"))],
            Some(5),
            false,
        ),
        (
            "notes",
            vec![f("meta.owner", FilterOp::Eq, s("alice"))],
            None,
            true,
        ),
        (
            "notes",
            vec![f("meta", FilterOp::Eq, s("alice"))],
            None,
            false,
        ),
        ("notes", vec![], None, false),
        (
            "users/u/comments",
            vec![f("author", FilterOp::Eq, s("alice"))],
            None,
            true,
        ),
        (
            "comments",
            vec![f("author", FilterOp::Eq, s("bob"))],
            None,
            false,
        ),
        ("open", vec![], None, true),
        // As in the emulator, `resource.data` of a list holds only the fields the filters name:
        // whole-document operations see just those (issue 15, class 5).
        (
            "whole",
            vec![f("owner", FilterOp::Eq, s("alice"))],
            None,
            true,
        ),
        (
            "getter",
            vec![f("owner", FilterOp::Eq, s("alice"))],
            None,
            true,
        ),
        ("getter", vec![], None, false),
        (
            "nested",
            vec![f("meta.owner", FilterOp::Eq, s("alice"))],
            None,
            true,
        ),
        (
            "posts",
            vec![
                f("visibility", FilterOp::In, arr(&many)),
                f("owner", FilterOp::In, arr(&many)),
            ],
            None,
            false,
        ),
    ];
    let rules =
        Ruleset::compile(QUERIES).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let mut failures = Vec::new();
    for (coll, filters, limit, want) in &table {
        let mut r = with_auth(request("list", coll), "alice", json!({}));
        if let Some(q) = &mut r.query {
            q.filters = filters.clone();
            q.limit = *limit;
        }
        let d = rules.explain(&r, &claimdb_rules::NoDocuments);
        if d.allowed != *want {
            failures.push(format!(
                "{coll} {filters:?} limit={limit:?}: want {want}, got\n{}",
                d.explanation(r.method)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// An or query is decided as the Firestore emulator decides it: each conjunction of its
/// disjunctive normal form is one way a document may match, and every way must be allowed
/// (rules are not filters: one unproven branch denies the whole query).
#[test]
fn or_queries_need_every_disjunction_allowed() {
    use claimdb_model::Value;
    use claimdb_rules::{Filter, FilterOp};
    let s = |x: &str| Value::String(x.into());
    let f = |field: &str, op: FilterOp, value: Value| Filter {
        field: field.into(),
        op,
        value,
    };
    let mine = || f("owner", FilterOp::Eq, s("alice"));
    let public = || f("visibility", FilterOp::Eq, s("public"));
    // (case, plain filters, disjunctions, allowed)
    type Case<'a> = (&'a str, Vec<Filter>, Vec<Vec<Filter>>, bool);
    let table: Vec<Case> = vec![
        // owner == me OR visibility == public: each branch allowed by one of the two allows.
        (
            "both branches proven",
            vec![],
            vec![vec![mine()], vec![public()]],
            true,
        ),
        // A branch nothing proves denies the whole query.
        (
            "one branch unproven",
            vec![],
            vec![vec![mine()], vec![f("owner", FilterOp::Eq, s("bob"))]],
            false,
        ),
        (
            "an unconstrained branch",
            vec![],
            vec![vec![public()], vec![f("title", FilterOp::Eq, s("x"))]],
            false,
        ),
        // The plain filters hold in every branch.
        (
            "a common filter proves both",
            vec![mine()],
            vec![
                vec![f("title", FilterOp::Eq, s("x"))],
                vec![f("title", FilterOp::Eq, s("y"))],
            ],
            true,
        ),
        // An in in a branch splits it further; each value must be allowed too.
        (
            "an in inside a branch",
            vec![],
            vec![
                vec![mine()],
                vec![f(
                    "visibility",
                    FilterOp::In,
                    Value::Array(vec![s("public"), s("team")]),
                )],
            ],
            true,
        ),
        (
            "an in value unproven",
            vec![],
            vec![
                vec![mine()],
                vec![f(
                    "visibility",
                    FilterOp::In,
                    Value::Array(vec![s("public"), s("private")]),
                )],
            ],
            false,
        ),
    ];
    let rules =
        Ruleset::compile(QUERIES).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let mut failures = Vec::new();
    for (name, filters, disjunctions, want) in &table {
        let mut r = with_auth(request("list", "posts"), "alice", json!({}));
        if let Some(q) = &mut r.query {
            q.filters = filters.clone();
            q.disjunctions = disjunctions.clone();
            q.limit = Some(10);
        }
        let d = rules.explain(&r, &claimdb_rules::NoDocuments);
        if d.allowed != *want {
            failures.push(format!(
                "{name}: want {want}, got\n{}",
                d.explanation(r.method)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Firestore: at most 10 document reads per operation and 20 per batch or transaction.
#[test]
fn batches_share_twenty_document_reads() {
    let reads: String = (0..8)
        .map(|i| format!(" && !exists(/databases/$(database)/documents/c/$(x)/d/d{i})"))
        .collect();
    let src = format!(
        "rules_version = '2'; service cloud.firestore {{ match /databases/{{database}}/documents {{ match /w/{{x}} {{ allow create: if true{reads}; }} }} }}"
    );
    let rules = Ruleset::compile(&src).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let ops: Vec<Request> = ["a", "b", "c"]
        .iter()
        .map(|x| request("create", &format!("w/{x}")))
        .collect();
    let decisions = rules.evaluate_batch(&ops, &claimdb_rules::NoDocuments, false);
    assert_eq!(
        decisions.iter().map(|d| d.reads).collect::<Vec<_>>(),
        vec![8, 8, 4]
    );
    assert!(decisions[0].allowed && decisions[1].allowed && !decisions[2].allowed);
    assert!(
        matches!(&decisions[2].tried[0].outcome, claimdb_rules::Outcome::Error(e) if e.contains("20 document reads")),
        "{:?}",
        decisions[2]
    );
    let alone = rules.evaluate(&ops[2], &claimdb_rules::NoDocuments);
    assert!(alone.allowed && alone.reads == 8);
}

/// The engine's async store: evaluate, load what the rules asked for, evaluate again.
#[test]
fn prefetch_loop_loads_what_get_needs() {
    use claimdb_model::DocPath;
    use claimdb_rules::{Prefetch, decide_with_prefetch};
    let src = "rules_version = '2'; service cloud.firestore { match /databases/{database}/documents {
        match /groups/{g}/posts/{p} {
          allow get: if get(/databases/$(database)/documents/groups/$(g)/members/$(request.auth.uid)).data.role == 'admin';
          allow create: if existsAfter(/databases/$(database)/documents/groups/$(g)/posts/$(p));
        } } }";
    let rules = Ruleset::compile(src).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let r = with_auth(request("get", "groups/g1/posts/p1"), "alice", json!({}));
    let mut docs = Prefetch::new();
    let (d, wanted) = decide_with_prefetch(&rules, &r, &docs, false);
    assert!(!d.allowed);
    let member = DocPath::parse("groups/g1/members/alice").unwrap();
    assert_eq!(wanted, vec![(member.clone(), false)]);
    docs.insert(member, Some(crate::doc(json!({"role": "admin"}))));
    let (d, wanted) = decide_with_prefetch(&rules, &r, &docs, true);
    assert!(d.allowed && wanted.is_empty(), "{d:?}");

    let w = request("create", "groups/g1/posts/p2");
    let mut docs = Prefetch::new();
    let (d, wanted) = decide_with_prefetch(&rules, &w, &docs, false);
    let post = DocPath::parse("groups/g1/posts/p2").unwrap();
    assert!(!d.allowed && wanted == vec![(post.clone(), true)]);
    docs.insert_after(post, Some(crate::doc(json!({}))));
    let (d, wanted) = decide_with_prefetch(&rules, &w, &docs, false);
    assert!(d.allowed && wanted.is_empty());
}

fn group(under: Option<&str>, collection_id: &str) -> Request {
    let mut r = Request::new(
        claimdb_rules::Method::List,
        claimdb_rules::Target::Group {
            under: under.map(|u| claimdb_model::DocPath::parse(u).unwrap()),
            collection_id: collection_id.into(),
        },
        crate::t0(),
    );
    r.query = Some(claimdb_rules::Query::default());
    r
}

const GROUPS: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /posts/{post} { allow read: if true; }
    match /users/{u}/posts/{post} { allow read: if true; }
    match /{path=**}/comments/{c} { allow list: if true; }
    match /users/{u}/{rest=**}/likes/{l} { allow list: if u == 'alice'; }
    match /{p=**}/tags/{t} { allow list: if p.size() > 0; }
  }
}"#;

/// A collection group query is allowed only by a rule that covers every path of the group: a
/// `{name=**}` wildcard must stand for the unknown part; rules on specific parents do not count.
#[test]
fn collection_group_lists_need_a_recursive_wildcard() {
    let rules = Ruleset::compile(GROUPS).unwrap();
    let allowed = |r: &Request| rules.evaluate(r, &claimdb_rules::NoDocuments).allowed;
    // Rules for root `posts` and `users/{u}/posts` do not cover every `posts` collection.
    assert!(!allowed(&group(None, "posts")));
    assert!(!allowed(&group(Some("users/alice"), "posts")));
    // A recursive wildcard covers them.
    assert!(allowed(&group(None, "comments")));
    assert!(allowed(&group(Some("users/bob"), "comments")));
    // Below a known prefix, the fixed part binds and the wildcard covers the rest.
    assert!(allowed(&group(Some("users/alice"), "likes")));
    assert!(!allowed(&group(Some("users/bob"), "likes")));
    assert!(!allowed(&group(None, "likes")));
    // The unknown part binds nothing usable: a condition on it errors and denies.
    assert!(!allowed(&group(None, "tags")));
    // A plain collection list still works as before.
    assert!(allowed(&request("list", "users/alice/posts")));
}
