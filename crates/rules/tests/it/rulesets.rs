//! Whole rule sets against requests: the sets issue 4 names (movies, owner-only, role maps,
//! field-level update validation, membership through `get()`), plus matching, method and
//! wildcard semantics from the reference (§1.1–1.3, 1.7–1.9).

use std::collections::HashMap;

use claimdb_model::Map;
use claimdb_rules::{Decision, Outcome, Request, Ruleset};
use serde_json::{Value as Json, json};

use crate::{doc, request, with_auth};

const MOVIES: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /movies/{movieId} {
      allow read: if request.auth != null;
      allow write: if request.auth.token.moderator == true;
    }
  }
}"#;

const OWNER_ONLY: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /users/{userId} {
      allow read, update, delete: if request.auth != null && request.auth.uid == userId;
      allow create: if request.auth != null && request.auth.uid == userId
                    && request.resource.data.owner == userId;
      match /private/{doc} {
        allow read: if request.auth.uid == userId;
      }
    }
  }
}"#;

const ROLES: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    function role() { return request.auth.token.get('roles', {}); }
    function hasRole(r) { return request.auth != null && role().get(r, false) == true; }
    match /articles/{id} {
      allow get, list: if hasRole('reader') || hasRole('editor');
      allow create, update: if hasRole('editor');
      allow delete: if hasRole('admin');
    }
  }
}"#;

const FIELDS: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /profiles/{uid} {
      allow update: if request.auth.uid == uid
        && request.resource.data.diff(resource.data).affectedKeys().hasOnly(['bio', 'avatar'])
        && request.resource.data.bio is string
        && request.resource.data.bio.size() <= 20;
      allow create: if request.resource.data.keys().hasAll(['name', 'bio'])
        && request.resource.data.name is string;
    }
  }
}"#;

const MEMBERS: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    function isMember(group) {
      return exists(/databases/$(database)/documents/groups/$(group)/members/$(request.auth.uid));
    }
    function memberRole(group) {
      return get(/databases/$(database)/documents/groups/$(group)/members/$(request.auth.uid)).data.role;
    }
    match /groups/{group}/posts/{post} {
      allow read: if isMember(group);
      allow write: if memberRole(group) in ['admin', 'writer'];
    }
  }
}"#;

const WILDCARDS_V2: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /cities/{city}/{rest=**} {
      allow read: if rest is path;
    }
    match /{path=**}/comments/{comment} {
      allow list: if true;
    }
    match /a/b {
      allow get;
    }
  }
}"#;

const WILDCARDS_V1: &str = r#"
service cloud.firestore {
  match /databases/{database}/documents {
    match /cities/{rest=**} {
      allow read: if true;
    }
  }
}"#;

const NO_CASCADE: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /users/{u} {
      allow read;
    }
    match /open/{doc} {
      allow read: if resource.data.missing == 1;
      allow read: if true;
    }
    match /err/{doc} {
      allow read: if resource.data.missing == 1;
    }
    match /limited/{doc} {
      allow list: if request.query.limit <= 50;
      allow get: if request.method == 'get' && request.path[3] == 'limited';
    }
  }
}"#;

struct Case {
    rules: &'static str,
    method: &'static str,
    path: &'static str,
    auth: Option<(&'static str, Json)>,
    existing: Option<Json>,
    incoming: Option<Json>,
    limit: Option<i64>,
    allow: bool,
}

fn case(rules: &'static str, method: &'static str, path: &'static str, allow: bool) -> Case {
    Case {
        rules,
        method,
        path,
        auth: None,
        existing: None,
        incoming: None,
        limit: None,
        allow,
    }
}

impl Case {
    fn auth(mut self, uid: &'static str, token: Json) -> Self {
        self.auth = Some((uid, token));
        self
    }
    fn existing(mut self, d: Json) -> Self {
        self.existing = Some(d);
        self
    }
    fn incoming(mut self, d: Json) -> Self {
        self.incoming = Some(d);
        self
    }
    fn limit(mut self, n: i64) -> Self {
        self.limit = Some(n);
        self
    }
}

fn members_db() -> HashMap<String, Map> {
    [
        ("groups/g1/members/alice", json!({"role": "admin"})),
        ("groups/g1/members/bob", json!({"role": "reader"})),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), doc(v)))
    .collect()
}

fn run(c: &Case) -> (Decision, Request) {
    let rules =
        Ruleset::compile(c.rules).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let mut r = request(c.method, c.path);
    if let Some((uid, token)) = &c.auth {
        r = with_auth(r, uid, token.clone());
    }
    r.existing = c.existing.clone().map(doc);
    r.incoming = c.incoming.clone().map(doc);
    if let (Some(q), Some(n)) = (&mut r.query, c.limit) {
        q.limit = Some(n);
    }
    (rules.evaluate(&r, &members_db()), r)
}

fn cases() -> Vec<Case> {
    let none = json!({});
    vec![
        // Movies: signed-in users read, only a moderator claim writes.
        case(MOVIES, "get", "movies/m1", false),
        case(MOVIES, "get", "movies/m1", true).auth("u1", none.clone()),
        case(MOVIES, "list", "movies", true).auth("u1", none.clone()),
        case(MOVIES, "create", "movies/m2", false).auth("u1", none.clone()),
        case(MOVIES, "create", "movies/m2", true).auth("u2", json!({"moderator": true})),
        case(MOVIES, "update", "movies/m2", false).auth("u2", json!({"moderator": "yes"})),
        case(MOVIES, "delete", "movies/m2", true).auth("u2", json!({"moderator": true})),
        case(MOVIES, "delete", "movies/m2", false),
        case(MOVIES, "get", "shows/s1", false).auth("u1", none.clone()),
        case(MOVIES, "get", "movies/m1/reviews/r1", false).auth("u1", none.clone()),
        // Owner-only documents.
        case(OWNER_ONLY, "get", "users/alice", true).auth("alice", none.clone()),
        case(OWNER_ONLY, "get", "users/alice", false).auth("bob", none.clone()),
        case(OWNER_ONLY, "get", "users/alice", false),
        case(OWNER_ONLY, "update", "users/alice", true)
            .auth("alice", none.clone())
            .existing(json!({"owner": "alice"})),
        case(OWNER_ONLY, "create", "users/alice", true)
            .auth("alice", none.clone())
            .incoming(json!({"owner": "alice"})),
        case(OWNER_ONLY, "create", "users/alice", false)
            .auth("alice", none.clone())
            .incoming(json!({"owner": "bob"})),
        case(OWNER_ONLY, "create", "users/alice", false)
            .auth("alice", none.clone())
            .incoming(json!({})),
        case(OWNER_ONLY, "get", "users/alice/private/p", true).auth("alice", none.clone()),
        case(OWNER_ONLY, "get", "users/alice/private/p", false).auth("bob", none.clone()),
        case(OWNER_ONLY, "update", "users/alice/private/p", false).auth("alice", none.clone()),
        case(OWNER_ONLY, "list", "users", false).auth("alice", none.clone()),
        // Role maps from a claim.
        case(ROLES, "get", "articles/a", true).auth("u", json!({"roles": {"reader": true}})),
        case(ROLES, "get", "articles/a", true).auth("u", json!({"roles": {"editor": true}})),
        case(ROLES, "get", "articles/a", false).auth("u", json!({"roles": {"reader": false}})),
        case(ROLES, "get", "articles/a", false).auth("u", none.clone()),
        case(ROLES, "get", "articles/a", false),
        case(ROLES, "list", "articles", true).auth("u", json!({"roles": {"reader": true}})),
        case(ROLES, "create", "articles/a", false).auth("u", json!({"roles": {"reader": true}})),
        case(ROLES, "update", "articles/a", true).auth("u", json!({"roles": {"editor": true}})),
        case(ROLES, "delete", "articles/a", false).auth("u", json!({"roles": {"editor": true}})),
        case(ROLES, "delete", "articles/a", true).auth("u", json!({"roles": {"admin": true}})),
        // Field-level update validation.
        case(FIELDS, "update", "profiles/p", true)
            .auth("p", none.clone())
            .existing(json!({"name": "P", "bio": "old", "role": "user"}))
            .incoming(json!({"name": "P", "bio": "new", "role": "user"})),
        case(FIELDS, "update", "profiles/p", false)
            .auth("p", none.clone())
            .existing(json!({"name": "P", "bio": "old", "role": "user"}))
            .incoming(json!({"name": "P", "bio": "new", "role": "admin"})),
        case(FIELDS, "update", "profiles/p", true)
            .auth("p", none.clone())
            .existing(json!({"name": "P", "bio": "old"}))
            .incoming(json!({"name": "P", "bio": "old", "avatar": "a.png"})),
        case(FIELDS, "update", "profiles/p", false)
            .auth("p", none.clone())
            .existing(json!({"name": "P", "bio": "old"}))
            .incoming(json!({"bio": "old"})),
        case(FIELDS, "update", "profiles/p", false)
            .auth("p", none.clone())
            .existing(json!({"name": "P", "bio": "old"}))
            .incoming(json!({"name": "P", "bio": "this bio is far too long to accept"})),
        case(FIELDS, "update", "profiles/p", false)
            .auth("q", none.clone())
            .existing(json!({"name": "P", "bio": "old"}))
            .incoming(json!({"name": "P", "bio": "new"})),
        case(FIELDS, "update", "profiles/p", false)
            .auth("p", none.clone())
            .existing(json!({"name": "P", "bio": "old"}))
            .incoming(json!({"name": "P", "bio": 7})),
        case(FIELDS, "create", "profiles/p", true).incoming(json!({"name": "P", "bio": ""})),
        case(FIELDS, "create", "profiles/p", false).incoming(json!({"name": "P"})),
        case(FIELDS, "create", "profiles/p", false).incoming(json!({"name": 1, "bio": ""})),
        // Membership through get()/exists().
        case(MEMBERS, "get", "groups/g1/posts/p", true).auth("alice", none.clone()),
        case(MEMBERS, "get", "groups/g1/posts/p", true).auth("bob", none.clone()),
        case(MEMBERS, "get", "groups/g1/posts/p", false).auth("carol", none.clone()),
        case(MEMBERS, "get", "groups/g2/posts/p", false).auth("alice", none.clone()),
        case(MEMBERS, "create", "groups/g1/posts/p", true).auth("alice", none.clone()),
        case(MEMBERS, "create", "groups/g1/posts/p", false).auth("bob", none.clone()),
        case(MEMBERS, "update", "groups/g1/posts/p", false).auth("carol", none.clone()),
        case(MEMBERS, "get", "groups/g1/posts/p", false),
        // Recursive wildcards: v2 matches zero or more segments anywhere.
        case(WILDCARDS_V2, "get", "cities/SF", true),
        case(WILDCARDS_V2, "get", "cities/SF/landmarks/gg", true),
        // In a list the document id is unknown, so a condition on the rest wildcard fails.
        // A list binds `{rest=**}` to a path holding the unknown document id (issue 15).
        case(WILDCARDS_V2, "list", "cities/SF/landmarks", true),
        case(WILDCARDS_V2, "list", "posts/p1/comments", true),
        case(WILDCARDS_V2, "list", "comments", true),
        case(WILDCARDS_V2, "get", "posts/p1/comments/c1", false),
        case(WILDCARDS_V2, "get", "a/b", true),
        case(WILDCARDS_V2, "list", "a", false),
        case(WILDCARDS_V2, "get", "a/c", false),
        // v1: one or more segments, so /cities/{rest=**} does not cover cities itself but
        // covers everything below.
        case(WILDCARDS_V1, "get", "cities/SF", true),
        case(WILDCARDS_V1, "get", "cities/SF/landmarks/gg", true),
        case(WILDCARDS_V1, "get", "towns/x", false),
        // Rules do not cascade; any allow grants; an erroring allow does not grant.
        case(NO_CASCADE, "get", "users/u", true),
        case(NO_CASCADE, "get", "users/u/sub/x", false),
        case(NO_CASCADE, "update", "users/u", false),
        case(NO_CASCADE, "get", "open/x", true).existing(json!({})),
        case(NO_CASCADE, "get", "err/x", false).existing(json!({})),
        case(NO_CASCADE, "get", "err/x", true).existing(json!({"missing": 1})),
        case(NO_CASCADE, "list", "limited", true).limit(50),
        case(NO_CASCADE, "list", "limited", false).limit(51),
        case(NO_CASCADE, "list", "limited", false),
        case(NO_CASCADE, "get", "limited/x", true),
    ]
}

#[test]
fn rule_set_table() {
    let all = cases();
    let mut failures = Vec::new();
    for c in &all {
        let (d, _) = run(c);
        if d.allowed != c.allow {
            failures.push(format!(
                "{} {} auth={:?}: want allow={} got {:?}",
                c.method, c.path, c.auth, c.allow, d
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

#[test]
fn decision_records_what_was_tried() {
    let c = case(NO_CASCADE, "get", "err/x", false).existing(json!({}));
    let (d, r) = run(&c);
    assert!(!d.allowed);
    assert_eq!(d.matched.len(), 1);
    assert_eq!(
        &*d.matched[0].pattern,
        "/databases/{database}/documents/err/{doc}"
    );
    assert_eq!(d.tried.len(), 1);
    assert!(matches!(&d.tried[0].outcome, Outcome::Error(e) if e.contains("missing")));
    let summary = d.summary(r.method);
    assert!(summary.contains("for 'get' @ L"), "{summary}");
    let c = case(MOVIES, "create", "movies/m2", true).auth("u2", json!({"moderator": true}));
    let (d, _) = run(&c);
    assert_eq!(d.granted_by, Some(7));
}

#[test]
fn access_calls_are_limited_and_cached() {
    let mut body = String::new();
    for i in 0..11 {
        body.push_str(&format!(
            " && !exists(/databases/$(database)/documents/c/d{i})"
        ));
    }
    let cached = "exists(/databases/$(database)/documents/c/d0)";
    let src = format!(
        "rules_version = '2'; service cloud.firestore {{ match /databases/{{database}}/documents {{
           match /ten/{{x}} {{ allow get: if true{} && {cached} == false; }}
           match /eleven/{{x}} {{ allow get: if true{}; }}
         }} }}",
        body.replace(" && !exists(/databases/$(database)/documents/c/d10)", ""),
        body
    );
    let rules = Ruleset::compile(&src).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let ten = rules.evaluate(&request("get", "ten/x"), &claimdb_rules::NoDocuments);
    assert!(ten.allowed, "{ten:?}");
    // The eleventh read fails its allow (as in Firebase, an error, not the end of the
    // decision: another allow may still grant).
    let eleven = rules.evaluate(&request("get", "eleven/x"), &claimdb_rules::NoDocuments);
    assert!(!eleven.allowed);
    assert!(
        matches!(&eleven.tried[0].outcome, claimdb_rules::Outcome::Error(e) if e.contains("more than 10 document reads")),
        "{eleven:?}"
    );
}

#[test]
fn coverage_reports_every_allow_and_its_outcomes() {
    use claimdb_rules::Coverage;
    let rules =
        Ruleset::compile(MOVIES).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let statements = rules.allow_statements();
    assert_eq!(statements.len(), 2);
    assert_eq!(statements[0].line, 6);
    assert_eq!(statements[0].methods.as_ref(), "read");
    assert_eq!(
        statements[0].condition.as_deref(),
        Some("request.auth != null")
    );
    assert_eq!(
        &*statements[1].pattern,
        "/databases/{database}/documents/movies/{movieId}"
    );
    let mut cov = Coverage::new(&rules);
    for c in [
        case(MOVIES, "get", "movies/m1", false),
        case(MOVIES, "get", "movies/m1", true).auth("u1", json!({})),
        case(MOVIES, "create", "movies/m1", false).auth("u1", json!({})),
    ] {
        cov.record(&run(&c).0);
    }
    let report = cov.report();
    assert!(report[0].ever_true && report[0].ever_false && report[0].is_complete());
    assert!(!report[1].ever_true && report[1].ever_false && report[1].ever_error);
    assert!(!report[1].is_complete());
}

#[test]
fn locked_rules_allow_nothing_and_match_their_source() {
    let locked = Ruleset::locked();
    let compiled = Ruleset::compile(claimdb_rules::LOCKED_SOURCE)
        .unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    for m in ["get", "list", "create", "update", "delete"] {
        let path = if m == "list" { "users" } else { "users/alice" };
        let r = with_auth(request(m, path), "alice", json!({"admin": true}));
        assert!(!locked.evaluate(&r, &claimdb_rules::NoDocuments).allowed);
        assert!(!compiled.evaluate(&r, &claimdb_rules::NoDocuments).allowed);
    }
    assert_eq!(locked.source(), claimdb_rules::LOCKED_SOURCE);
}

/// The engine shares one compiled ruleset between request threads and swaps it on reload.
#[test]
fn rulesets_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Ruleset>();
    assert_send_sync::<claimdb_rules::Decision>();
    assert_send_sync::<claimdb_rules::Diagnostic>();
}

#[test]
fn coverage_tells_apart_allows_on_one_line() {
    use claimdb_rules::Coverage;
    let src = "rules_version = '2'; service cloud.firestore { match /databases/{database}/documents { match /c/{d} { allow get: if request.auth != null; allow get: if false; } } }";
    let rules = Ruleset::compile(src).unwrap_or_else(|d| panic!("{}", claimdb_rules::render(&d)));
    let mut cov = Coverage::new(&rules);
    cov.record(&rules.evaluate(&request("get", "c/x"), &claimdb_rules::NoDocuments));
    let report = cov.report();
    assert_eq!(report.len(), 2);
    assert!(report[0].ever_false && !report[0].ever_true);
    assert!(report[1].ever_false && report[1].allow.condition.as_deref() == Some("false"));
}
