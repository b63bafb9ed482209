//! Denial explanations: each case is a rule set, a request and fragments the explanation must
//! contain — the smallest failing sub-expression, the value it saw and the rule's line.

use claimdb_rules::Ruleset;
use serde_json::{Value as Json, json};

use crate::{doc, request, with_auth};

const RULES: &str = r#"rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    function signedIn() { return request.auth != null; }
    function isOwner(uid) { return signedIn() && request.auth.uid == uid; }
    match /movies/{id} {
      allow write: if request.auth.token.moderator == true;
      allow read: if signedIn();
    }
    match /users/{uid} {
      allow get: if isOwner(uid);
      allow update: if isOwner(uid)
        && request.resource.data.diff(resource.data).affectedKeys().hasOnly(['bio']);
    }
    match /posts/{id} {
      allow list: if resource.data.owner == request.auth.uid && request.query.limit <= 20;
      allow get: if resource.data.public || resource.data.owner == request.auth.uid;
      allow create: if request.resource.data.title is string && request.resource.data.title.size() < 5;
    }
  }
}"#;

struct Case {
    method: &'static str,
    path: &'static str,
    auth: Option<(&'static str, Json)>,
    existing: Option<Json>,
    incoming: Option<Json>,
    want: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            method: "create",
            path: "movies/m1",
            auth: Some(("u1", json!({}))),
            existing: None,
            incoming: Some(json!({"title": "Up"})),
            want: &[
                "`request.auth.token.moderator` is not set in the token",
                "no claim 'moderator'",
                "line 7",
            ],
        },
        Case {
            method: "create",
            path: "movies/m1",
            auth: Some(("u1", json!({"moderator": false}))),
            existing: None,
            incoming: Some(json!({})),
            want: &[
                "`request.auth.token.moderator` is false",
                "needs `request.auth.token.moderator == true`",
            ],
        },
        Case {
            method: "get",
            path: "movies/m1",
            auth: None,
            existing: Some(json!({})),
            incoming: None,
            want: &[
                "`request.auth` is null",
                "needs `request.auth != null`",
                "line 8",
            ],
        },
        Case {
            method: "get",
            path: "users/alice",
            auth: Some(("bob", json!({}))),
            existing: Some(json!({})),
            incoming: None,
            want: &[
                "`request.auth.uid` is \"bob\" and `uid` is \"alice\"",
                "`request.auth.uid == uid`",
            ],
        },
        Case {
            method: "update",
            path: "users/alice",
            auth: Some(("alice", json!({}))),
            existing: Some(json!({"bio": "a", "role": "user"})),
            incoming: Some(json!({"bio": "b", "role": "admin"})),
            want: &["hasOnly(['bio'])", "is false"],
        },
        Case {
            method: "list",
            path: "posts",
            auth: Some(("alice", json!({}))),
            existing: None,
            incoming: None,
            want: &[
                "the query does not constrain `resource.data.owner`",
                "rules are not filters",
            ],
        },
        Case {
            method: "get",
            path: "posts/p",
            auth: None,
            existing: Some(json!({"public": false, "owner": "x"})),
            incoming: None,
            want: &["`resource.data.public` is false", "`request.auth` is null"],
        },
        Case {
            method: "create",
            path: "posts/p",
            auth: None,
            existing: None,
            incoming: Some(json!({"title": 7})),
            want: &[
                "`request.resource.data.title` is a int; the rule at line 18 needs it to be a string",
            ],
        },
        Case {
            method: "create",
            path: "posts/p",
            auth: None,
            existing: None,
            incoming: Some(json!({"title": "much too long"})),
            want: &[
                "`request.resource.data.title.size()` is 13",
                "`request.resource.data.title.size() < 5`",
            ],
        },
        Case {
            method: "delete",
            path: "users/alice",
            auth: None,
            existing: None,
            incoming: None,
            want: &["none has an allow for 'delete'"],
        },
        Case {
            method: "get",
            path: "nothing/here",
            auth: None,
            existing: None,
            incoming: None,
            want: &["no match block covers this path"],
        },
    ]
}

#[test]
fn explanation_table() {
    let rules = Ruleset::compile(RULES).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let mut failures = Vec::new();
    for c in cases() {
        let mut r = request(c.method, c.path);
        if let Some((uid, token)) = &c.auth {
            r = with_auth(r, uid, token.clone());
        }
        r.existing = c.existing.clone().map(doc);
        r.incoming = c.incoming.clone().map(doc);
        let d = rules.explain(&r, &claimdb_rules::NoDocuments);
        let text = d.explanation(r.method);
        assert!(!d.allowed, "{} {} was allowed", c.method, c.path);
        for w in c.want {
            if !text.contains(w) {
                failures.push(format!("{} {}: want {w:?} in\n{text}", c.method, c.path));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn explaining_does_not_change_decisions_or_allowed_requests() {
    let rules = Ruleset::compile(RULES).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let r = with_auth(request("get", "users/alice"), "alice", json!({}));
    let d = rules.explain(&r, &claimdb_rules::NoDocuments);
    assert!(d.allowed && d.reasons.is_empty() && d.explanation(r.method).is_empty());
    assert_eq!(
        d.allowed,
        rules.evaluate(&r, &claimdb_rules::NoDocuments).allowed
    );
}
