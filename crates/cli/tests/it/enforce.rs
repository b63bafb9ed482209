//! End to end: the real binary enforcing rules over tokens from an IdP on loopback — the movies
//! app (custom claims through the admin API apply on the next request with the same token;
//! revoking makes that token fail), an Auth0-style namespaced roles claim, an Entra-style `roles`
//! claim mapped to a role, public reads, forged/expired/malformed tokens, a batch with one denied
//! write (nothing applied), the admin API's own checks, and rules hot reload.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::idp::{AUDIENCE, ISSUER, Idp, Key, claims};
use crate::util::{Server, request};

pub(crate) const ADMIN_KEY: &str = "e2e-admin-key-0123456789abcdef";

pub(crate) const RULES: &str = r#"rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /movies/{id} {
      allow read: if request.auth != null;
      allow write: if request.auth.token.moderator == true;
    }
    match /public/{id} {
      allow read: if true;
    }
    match /news/{id} {
      allow read: if true;
      allow write: if 'moderator' in request.auth.roles;
    }
    match /wiki/{id} {
      allow write: if request.auth != null && 'editor' in request.auth.roles;
    }
    match /teams/{team} {
      allow read, write: if request.auth != null;
    }
    match /members/{id} {
      allow create: if request.auth != null
        && getAfter(/databases/$(database)/documents/teams/$(request.resource.data.team)).data.open == true;
    }
  }
}
"#;

struct Setup {
    server: Server,
    idp: Idp,
    key: Key,
    rules_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

pub(crate) fn config(dir: &Path, idp: &Idp, rules: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"rules = "{rules}"
admin_key = "{ADMIN_KEY}"
explain_denials = true
admin_roles = ["claimdb-admin"]

[[providers]]
name = "idp"
issuer = "{ISSUER}"
jwks_uri = "{jwks}"
audience = ["{AUDIENCE}"]
algorithms = ["ES256"]

[[providers.roles]]
role = "moderator"
claim = "https://app.example/roles"
contains = "moderator"

[[providers.roles]]
role = "editor"
claim = "roles"
contains = "Documents.Edit"

[[providers.roles]]
role = "claimdb-admin"
claim = "roles"
contains = "Claimdb.Admin"
"#,
        rules = rules.display(),
        jwks = idp.jwks_uri(),
    );
    let path = dir.join("claimdb.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    let rules_path = dir.path().join("firestore.rules");
    std::fs::write(&rules_path, RULES).unwrap();
    let config = config(dir.path(), &idp, &rules_path);
    let server = Server::start_with(&dir.path().join("data"), Some(&config), &[]);
    Setup {
        server,
        idp,
        key,
        rules_path,
        _dir: dir,
    }
}

struct Resp {
    status: u16,
    json: Value,
}

impl Setup {
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let text = body.map(|b| b.to_string());
        let (status, body) =
            request(method, &self.server.url(path), text.as_deref(), headers).unwrap();
        let json = serde_json::from_str(&body).unwrap_or(Value::Null);
        Resp { status, json }
    }

    fn as_user(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Resp {
        let auth = format!("Bearer {token}");
        self.call(method, path, body, &[("authorization", &auth)])
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call(method, path, body, &[("x-claimdb-admin-key", ADMIN_KEY)])
    }

    fn token(&self, sub: &str, extra: Value) -> String {
        self.key.sign(&claims(sub, extra))
    }
}

#[track_caller]
fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.json["error"]["code"], code, "{}", r.json);
}

#[test]
fn movies_claims_apply_on_the_next_request_and_revocation_stops_the_token() {
    let s = setup();
    let moderator = s.token("mod", json!({"moderator": true}));
    let alice = s.token("alice", json!({"email": "alice@example.com"}));
    // A moderator writes; anyone signed in reads; nobody unauthenticated does.
    let r = s.as_user(
        &moderator,
        "PUT",
        "/v1/docs/movies/m1",
        Some(json!({"title": "Up"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    let r = s.as_user(&alice, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["data"]["title"], "Up");
    let r = s.call("GET", "/v1/docs/movies/m1", None, &[]);
    assert_error(&r, 403, "permission-denied");
    // Alice may not write; the denial explains itself.
    let r = s.as_user(
        &alice,
        "PUT",
        "/v1/docs/movies/m2",
        Some(json!({"title": "Heat"})),
    );
    assert_error(&r, 403, "permission-denied");
    let details = &r.json["error"]["details"];
    assert!(
        details["explanation"]
            .as_str()
            .unwrap()
            .contains("moderator"),
        "{details}"
    );
    assert_eq!(details["method"], "create");
    // Grant moderator through the admin API: the very next request with the SAME token writes.
    let r = s.admin(
        "PUT",
        "/v1/admin/users/alice/claims",
        Some(json!({"moderator": true})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let r = s.as_user(
        &alice,
        "PUT",
        "/v1/docs/movies/m2",
        Some(json!({"title": "Heat"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    // /v1/me shows the overlay.
    let r = s.as_user(&alice, "GET", "/v1/me", None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["uid"], "alice");
    assert_eq!(r.json["provider"], "idp");
    assert_eq!(r.json["claims"]["moderator"], true);
    assert_eq!(r.json["claims"]["email"], "alice@example.com");
    assert_eq!(r.json["custom_claims"], json!({"moderator": true}));
    // The admin API knows the user.
    let r = s.admin("GET", "/v1/admin/users/alice", None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["custom_claims"]["moderator"], true);
    let r = s.admin("GET", "/v1/admin/users", None);
    assert!(
        r.json["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["uid"] == "alice"),
        "{}",
        r.json
    );
    // Removing the claim applies at once too.
    let r = s.admin("DELETE", "/v1/admin/users/alice/claims", None);
    assert_eq!(r.status, 204);
    let r = s.as_user(
        &alice,
        "PUT",
        "/v1/docs/movies/m3",
        Some(json!({"title": "Ran"})),
    );
    assert_error(&r, 403, "permission-denied");
    // Revoke: the same token is refused from now on, with the reason.
    let r = s.admin("POST", "/v1/admin/users/alice/revoke", None);
    assert_eq!(r.status, 200, "{}", r.json);
    let r = s.as_user(&alice, "GET", "/v1/docs/movies/m1", None);
    assert_error(&r, 401, "unauthenticated");
    assert_eq!(r.json["error"]["details"]["reason"], "revoked");
    // A token that cannot say when it was issued is refused too; one issued after the
    // revocation works.
    let now = crate::idp::unix_now();
    let no_iat = s
        .key
        .sign(&json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 600}));
    let r = s.as_user(&no_iat, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(
        r.json["error"]["details"]["reason"], "revoked",
        "{}",
        r.json
    );
    let fresh = s.key.sign(
        &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now + 1, "exp": now + 600}),
    );
    let r = s.as_user(&fresh, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(r.status, 200, "{}", r.json);
    // Other users are unaffected.
    let r = s.as_user(&moderator, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(r.status, 200, "{}", r.json);
}

#[test]
fn namespaced_and_roles_claims_map_to_roles() {
    let s = setup();
    // Auth0 style: a namespaced claim holding the roles.
    let auth0_mod = s.token(
        "a0|1",
        json!({"https://app.example/roles": ["moderator", "viewer"]}),
    );
    let auth0_viewer = s.token("a0|2", json!({"https://app.example/roles": ["viewer"]}));
    let r = s.as_user(
        &auth0_mod,
        "PUT",
        "/v1/docs/news/n1",
        Some(json!({"h": "x"})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    let r = s.as_user(
        &auth0_viewer,
        "PUT",
        "/v1/docs/news/n2",
        Some(json!({"h": "y"})),
    );
    assert_error(&r, 403, "permission-denied");
    // Entra style: app roles in `roles`.
    let editor = s.token("entra-1", json!({"roles": ["Documents.Edit"], "tid": "t1"}));
    let reader = s.token("entra-2", json!({"roles": ["Documents.Read"], "tid": "t1"}));
    let r = s.as_user(&editor, "PUT", "/v1/docs/wiki/w1", Some(json!({"t": 1})));
    assert_eq!(r.status, 201, "{}", r.json);
    let r = s.as_user(&reader, "PUT", "/v1/docs/wiki/w2", Some(json!({"t": 1})));
    assert_error(&r, 403, "permission-denied");
    let r = s.as_user(&editor, "GET", "/v1/me", None);
    assert_eq!(r.json["roles"], json!(["editor"]), "{}", r.json);
    // Public reads need no token at all.
    let r = s.call("GET", "/v1/docs/news/n1", None, &[]);
    assert_eq!(r.status, 200, "{}", r.json);
    let r = s.call("GET", "/v1/docs/public/missing", None, &[]);
    assert_error(&r, 404, "not-found");
    // A role can also come from a custom claim set by the admin.
    let r = s.admin(
        "PUT",
        "/v1/admin/users/entra-2/claims",
        Some(json!({"roles": ["Documents.Edit"]})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    let r = s.as_user(&reader, "PUT", "/v1/docs/wiki/w2", Some(json!({"t": 1})));
    assert_eq!(r.status, 201, "{}", r.json);
}

#[test]
fn bad_tokens_are_refused_with_their_reason() {
    let s = setup();
    // Forged: signed by a key the IdP does not publish, under a published kid.
    let forger = Key::new("k1");
    let forged = forger.sign(&claims("mallory", json!({"moderator": true})));
    let r = s.as_user(&forged, "GET", "/v1/docs/movies/m1", None);
    assert_error(&r, 401, "unauthenticated");
    assert_eq!(r.json["error"]["details"]["reason"], "bad-signature");
    // Expired.
    let now = crate::idp::unix_now();
    let expired = s.key.sign(&json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now - 7200, "exp": now - 3600
    }));
    let r = s.as_user(&expired, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(
        r.json["error"]["details"]["reason"], "expired",
        "{}",
        r.json
    );
    // Wrong audience, unknown issuer, garbage, wrong scheme.
    let other_aud = s.key.sign(&json!({
        "iss": ISSUER, "aud": "someone-else", "sub": "alice", "iat": now, "exp": now + 60
    }));
    let r = s.as_user(&other_aud, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(
        r.json["error"]["details"]["reason"], "wrong-audience",
        "{}",
        r.json
    );
    let other_iss = s.key.sign(&json!({
        "iss": "https://evil.example/", "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 60
    }));
    let r = s.as_user(&other_iss, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(
        r.json["error"]["details"]["reason"], "unknown-issuer",
        "{}",
        r.json
    );
    let r = s.as_user("not-a-jwt", "GET", "/v1/docs/movies/m1", None);
    assert_error(&r, 401, "unauthenticated");
    assert_eq!(r.json["error"]["details"]["reason"], "malformed");
    let r = s.call(
        "GET",
        "/v1/docs/public/p",
        None,
        &[("authorization", "Basic abc")],
    );
    assert_error(&r, 401, "unauthenticated");
    // A bad token is refused even where the rules would let anyone in.
    let r = s.as_user(&forged, "GET", "/v1/docs/public/p", None);
    assert_error(&r, 401, "unauthenticated");
}

#[test]
fn a_batch_with_one_denied_write_applies_nothing() {
    let s = setup();
    let alice = s.token("alice", json!({}));
    let r = s.as_user(
        &alice,
        "PUT",
        "/v1/docs/teams/open",
        Some(json!({"open": true})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    // The second write is denied (alice is no moderator): nothing of the batch is applied.
    let batch = json!({"writes": [
        {"op": "set", "path": "teams/red", "data": {"open": false}},
        {"op": "set", "path": "movies/m9", "data": {"title": "nope"}},
    ]});
    let r = s.as_user(&alice, "POST", "/v1/batch", Some(batch));
    assert_error(&r, 403, "permission-denied");
    assert_eq!(r.json["error"]["details"]["write_index"], 1, "{}", r.json);
    let r = s.as_user(&alice, "GET", "/v1/docs/teams/red", None);
    assert_error(&r, 404, "not-found");
    // getAfter sees the batch: joining a team the same batch opens is allowed...
    let batch = json!({"writes": [
        {"op": "set", "path": "teams/blue", "data": {"open": true}},
        {"op": "create", "path": "members/m1", "data": {"team": "blue"}},
    ]});
    let r = s.as_user(&alice, "POST", "/v1/batch", Some(batch));
    assert_eq!(r.status, 200, "{}", r.json);
    // ...and joining one the same batch closes is not.
    let batch = json!({"writes": [
        {"op": "update", "path": "teams/open", "data": {"open": false}},
        {"op": "create", "path": "members/m2", "data": {"team": "open"}},
    ]});
    let r = s.as_user(&alice, "POST", "/v1/batch", Some(batch));
    assert_error(&r, 403, "permission-denied");
    let r = s.as_user(&alice, "GET", "/v1/docs/teams/open", None);
    assert_eq!(r.json["data"]["open"], true, "{}", r.json);
}

#[test]
fn admin_api_checks_and_rules_reload() {
    let s = setup();
    // No credential, a wrong key, a token without the admin role: refused.
    let r = s.call("GET", "/v1/admin/rules", None, &[]);
    assert_error(&r, 401, "unauthenticated");
    let r = s.call(
        "GET",
        "/v1/admin/rules",
        None,
        &[("x-claimdb-admin-key", "wrong-key-0123456789")],
    );
    assert_error(&r, 401, "unauthenticated");
    let user = s.token("u1", json!({}));
    let r = s.as_user(&user, "GET", "/v1/admin/rules", None);
    assert_error(&r, 403, "permission-denied");
    // A token with the admin role (mapped from `roles`) is let in.
    let admin = s.token("boss", json!({"roles": ["Claimdb.Admin"]}));
    let r = s.as_user(&admin, "GET", "/v1/admin/rules", None);
    assert_eq!(r.status, 200, "{}", r.json);
    assert!(
        r.json["source"]
            .as_str()
            .unwrap()
            .contains("match /movies/{id}")
    );
    // Claims: reserved names and oversized objects are refused.
    let r = s.admin(
        "PUT",
        "/v1/admin/users/u1/claims",
        Some(json!({"sub": "x"})),
    );
    assert_error(&r, 400, "invalid-argument");
    let r = s.admin(
        "PUT",
        "/v1/admin/users/u1/claims",
        Some(json!({"k": "x".repeat(1000)})),
    );
    assert_error(&r, 400, "invalid-argument");
    // With a rules file in force, rules cannot be set through the API (the precedence is
    // explicit: rules_from = "file"); the running rules stay.
    let r = s.call(
        "PUT",
        "/v1/admin/rules",
        Some(json!({"source": "rules_version = '2'; service cloud.firestore { match /x { allow read: if ; } }"})),
        &[("x-claimdb-admin-key", ADMIN_KEY)],
    );
    assert_error(&r, 412, "failed-precondition");
    let r = s.call("GET", "/v1/docs/public/p1", None, &[]);
    assert_error(&r, 404, "not-found");
    // Explain a hypothetical request.
    let r = s.admin(
        "POST",
        "/v1/rules/explain",
        Some(json!({"auth": {"uid": "x", "token": {}}, "method": "create", "path": "movies/z", "data": {"t": 1}})),
    );
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["allowed"], false);
    assert!(
        r.json["explanation"]
            .as_str()
            .unwrap()
            .contains("moderator"),
        "{}",
        r.json
    );
    // Editing the file reloads it.
    std::fs::write(
        &s.rules_path,
        RULES.replace(
            "allow read: if true;\n    }\n    match /news",
            "allow read: if true;\n      allow write: if true;\n    }\n    match /news",
        ),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s.call("PUT", "/v1/docs/public/p1", Some(json!({"a": 1})), &[]);
        if r.status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rules were not reloaded: {}",
            r.json
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A broken file is refused; the running rules stay.
    std::fs::write(&s.rules_path, "this is not rules").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let r = s.call("GET", "/v1/docs/public/p1", None, &[]);
    assert_eq!(r.status, 200, "{}", r.json);
    let _ = &s.idp;
}

/// Keys fetched once are persisted through the store: a restart while the IdP is down still
/// becomes ready and verifies; a new key published while the server runs is picked up on the
/// unknown `kid` (rotation), without a restart.
#[test]
fn keys_survive_a_restart_during_an_idp_outage_and_rotation_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    let rules_path = dir.path().join("firestore.rules");
    std::fs::write(&rules_path, RULES).unwrap();
    let config = config(dir.path(), &idp, &rules_path);
    let data = dir.path().join("data");
    let alice = key.sign(&claims("alice", json!({})));
    let auth = format!("Bearer {alice}");
    let server = Server::start_with(&data, Some(&config), &[]);
    let (status, body) = request(
        "GET",
        &server.url("/v1/docs/teams/t"),
        None,
        &[("authorization", &auth)],
    )
    .unwrap();
    assert_eq!(status, 404, "{body}");
    // Rotation: a new key appears at the IdP; a token under its kid verifies at once.
    let k2 = Key::new("k2");
    idp.publish(&[&key, &k2]);
    let bob = format!("Bearer {}", k2.sign(&claims("bob", json!({}))));
    // On a loaded machine the refetch may take longer than the request's wait bound (1 s):
    // that answer is a retryable 503 `idp-unreachable`, and a retry succeeds, as for a client.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = request(
            "GET",
            &server.url("/v1/docs/teams/t"),
            None,
            &[("authorization", &bob)],
        )
        .unwrap();
        if status != 503 || Instant::now() > deadline {
            break (status, body);
        }
        assert!(body.contains("idp-unreachable"), "{body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 404, "{body}");
    // The key state is exported.
    let (status, metrics) = server.get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("claimdb_jwks_keys{provider=\"idp\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("claimdb_jwks_fetches_total{provider=\"idp\"}"),
        "{metrics}"
    );
    assert_eq!(server.stop_with("TERM").code(), Some(0));
    // The IdP goes down; claimdb restarts on the persisted keys.
    idp.set_down(true);
    let server = Server::start_with(&data, Some(&config), &[]);
    let (status, body) = request(
        "GET",
        &server.url("/v1/docs/teams/t"),
        None,
        &[("authorization", &auth)],
    )
    .unwrap();
    assert_eq!(status, 404, "{body}");
    let (status, body) = request(
        "GET",
        &server.url("/v1/docs/teams/t"),
        None,
        &[("authorization", &bob)],
    )
    .unwrap();
    assert_eq!(status, 404, "{body}");
}

/// `/readyz` reports not ready, naming the provider, until its keys are loaded; a request that
/// needs them meanwhile is refused as a retryable 503 `keys-unavailable` rather than hanging; once the IdP
/// answers, the server becomes ready by itself.
#[test]
fn readiness_waits_for_the_first_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    idp.set_down(true);
    let rules_path = dir.path().join("firestore.rules");
    std::fs::write(&rules_path, RULES).unwrap();
    let config = config(dir.path(), &idp, &rules_path);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text = text.replace(
        "[[providers]]",
        "[key_cache]\nretry_min_secs = 1\nfirst_fetch_wait_ms = 300\nfetch_timeout_ms = 500\n\n[[providers]]",
    );
    std::fs::write(&config, text).unwrap();
    let server = Server::spawn(&dir.path().join("data"), Some(&config), &[]);
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = server.get("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("idp"), "{body}");
    let alice = format!("Bearer {}", key.sign(&claims("alice", json!({}))));
    let (status, body) = request(
        "GET",
        &server.url("/v1/docs/teams/t"),
        None,
        &[("authorization", &alice)],
    )
    .unwrap();
    // Our side could not check the token: retryable, not "your token is bad".
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("keys-unavailable"), "{body}");
    idp.set_down(false);
    server.wait_ready(Duration::from_secs(15));
    let (status, body) = request(
        "GET",
        &server.url("/v1/docs/teams/t"),
        None,
        &[("authorization", &alice)],
    )
    .unwrap();
    assert_eq!(status, 404, "{body}");
}

/// Every decision lands in the audit log: readable through `GET /v1/admin/audit` (admin only,
/// with filters) and `claimdb audit` over the data directory.
#[test]
fn decisions_are_audited_and_readable() {
    let s = setup();
    let alice = s.token("alice", json!({}));
    let moderator = s.token("mod", json!({"moderator": true}));
    let r = s.as_user(
        &moderator,
        "PUT",
        "/v1/docs/movies/a1",
        Some(json!({"t": 1})),
    );
    assert_eq!(r.status, 201, "{}", r.json);
    let r = s.as_user(&alice, "PUT", "/v1/docs/movies/a2", Some(json!({"t": 1})));
    assert_eq!(r.status, 403, "{}", r.json);
    let r = s.as_user(&alice, "GET", "/v1/docs/movies/a1", None);
    assert_eq!(r.status, 200, "{}", r.json);
    // Not for everyone.
    let r = s.as_user(&alice, "GET", "/v1/admin/audit", None);
    assert_error(&r, 403, "permission-denied");
    let r = s.admin("GET", "/v1/admin/audit?deny=true&since=1h", None);
    assert_eq!(r.status, 200, "{}", r.json);
    let events = r.json["events"].as_array().unwrap();
    let denial = events
        .iter()
        .find(|e| e["path"] == "movies/a2")
        .unwrap_or_else(|| panic!("{}", r.json));
    assert_eq!(denial["decision"], "deny");
    assert_eq!(denial["uid"], "alice");
    assert_eq!(denial["provider"], "idp");
    assert_eq!(denial["method"], "create");
    assert!(
        denial["rule"]
            .as_str()
            .unwrap()
            .contains("firestore.rules:"),
        "{denial}"
    );
    assert!(events.iter().all(|e| e["decision"] == "deny"), "{}", r.json);
    let r = s.admin("GET", "/v1/admin/audit?uid=mod&path=movies", None);
    let events = r.json["events"].as_array().unwrap();
    assert!(
        events.iter().any(|e| e["path"] == "movies/a1"
            && e["decision"] == "allow"
            && e["method"] == "create"),
        "{}",
        r.json
    );
    assert!(events.iter().all(|e| e["uid"] == "mod"), "{}", r.json);
    let r = s.admin("GET", "/v1/admin/audit?since=yesterday-ish", None);
    assert_error(&r, 400, "invalid-argument");
    let (_, metrics) = s.server.get("/metrics").unwrap();
    assert!(metrics.contains("claimdb_audit_healthy 1"), "{metrics}");
    // The CLI reads the same log.
    let out = std::process::Command::new(crate::util::BIN)
        .args(["audit", "--deny", "--uid", "alice", "--json", "--data-dir"])
        .arg(&s.server.data_dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"movies/a2\""), "{text}");
    assert!(!text.contains("\"movies/a1\""), "{text}");
}
