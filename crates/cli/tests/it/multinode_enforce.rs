//! Enforcement across nodes: two `claimdb serve` processes on one PostgreSQL schema with the same
//! provider and rules. What one node learns or is told — a user's custom claims, a revocation,
//! the provider's keys, the generated admin key — lives in the database, so the other node acts
//! on it at its very next request, with nothing cached in between.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::enforce::{ADMIN_KEY, RULES, config};
use crate::idp::{Idp, Key, claims};
use crate::pg;
use crate::util::{Server, request};

/// The environment that puts a node on `schema`.
fn storage(schema: &pg::Schema) -> [(&'static str, String); 4] {
    [
        ("CLAIMDB_STORAGE", "postgres".into()),
        ("CLAIMDB_POSTGRES_URL", schema.url.clone()),
        ("CLAIMDB_POSTGRES_SCHEMA", schema.name.clone()),
        ("CLAIMDB_POSTGRES_POOL_SIZE", "4".into()),
    ]
}

fn env(schema: &pg::Schema) -> Vec<(&'static str, String)> {
    storage(schema).to_vec()
}

fn start(data: &Path, config: &Path, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(data, Some(config), &env)
}

/// The config file of `enforce.rs` (provider, rules, admin key), written into `dir`.
fn write_config(dir: &Path, idp: &Idp) -> PathBuf {
    let rules = dir.join("firestore.rules");
    std::fs::write(&rules, RULES).unwrap();
    config(dir, idp, &rules)
}

/// (status, JSON body) of one request to `server`.
fn call(
    server: &Server,
    method: &str,
    path: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, body) = request(method, &server.url(path), text.as_deref(), headers).unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn as_user(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    call(server, method, path, body, &[("authorization", &auth)])
}

fn admin(
    server: &Server,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    call(server, method, path, body, &[("x-claimdb-admin-key", key)])
}

/// A custom-claims change made through node A is enforced by node B on its very next request
/// with the same token, in both directions (granted, then removed); a revocation through A makes
/// the token fail on B at once, while other users' tokens still work there.
#[test]
fn claims_and_revocations_made_through_one_node_apply_on_the_other_at_once() {
    let Some(schema) = pg::schema("enforce") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    let config = write_config(dir.path(), &idp);
    let a = start(&dir.path().join("a"), &config, &env(&schema));
    let b = start(&dir.path().join("b"), &config, &env(&schema));
    let alice = key.sign(&claims("alice", json!({})));
    let moderator = key.sign(&claims("mod", json!({"moderator": true})));
    let (status, body) = as_user(
        &b,
        &moderator,
        "PUT",
        "/v1/docs/movies/m1",
        Some(json!({"title": "Up"})),
    );
    assert_eq!(status, 201, "{body}");
    // Before: B refuses alice's write.
    let (status, body) = as_user(
        &b,
        &alice,
        "PUT",
        "/v1/docs/movies/m2",
        Some(json!({"title": "Heat"})),
    );
    assert_eq!(status, 403, "{body}");
    // Granted through A; B's very next request with the same token is allowed.
    let (status, body) = admin(
        &a,
        ADMIN_KEY,
        "PUT",
        "/v1/admin/users/alice/claims",
        Some(json!({"moderator": true})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = as_user(
        &b,
        &alice,
        "PUT",
        "/v1/docs/movies/m2",
        Some(json!({"title": "Heat"})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = as_user(&b, &alice, "GET", "/v1/me", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["custom_claims"], json!({"moderator": true}), "{body}");
    // Removed through A: B refuses again at once.
    let (status, body) = admin(
        &a,
        ADMIN_KEY,
        "DELETE",
        "/v1/admin/users/alice/claims",
        None,
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = as_user(
        &b,
        &alice,
        "PUT",
        "/v1/docs/movies/m3",
        Some(json!({"title": "Ran"})),
    );
    assert_eq!(status, 403, "{body}");
    // Revoked through A: the token is refused by B, with the reason.
    let (status, body) = as_user(&b, &alice, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin(&a, ADMIN_KEY, "POST", "/v1/admin/users/alice/revoke", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = as_user(&b, &alice, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthenticated", "{body}");
    assert_eq!(body["error"]["details"]["reason"], "revoked", "{body}");
    // And by A too; other users are unaffected on both.
    let (status, _) = as_user(&a, &alice, "GET", "/v1/docs/movies/m1", None);
    assert_eq!(status, 401);
    for node in [&a, &b] {
        let (status, body) = as_user(node, &moderator, "GET", "/v1/docs/movies/m1", None);
        assert_eq!(status, 200, "{body}");
    }
}

/// The provider's keys, fetched by node A, are available to node B after B restarts during an
/// IdP outage, although B never fetched them itself: B first ran while the IdP was down (it had
/// no keys and refused the token), and only A ran while the IdP was up.
#[test]
fn keys_fetched_by_one_node_serve_the_other_after_its_restart_during_an_outage() {
    let Some(schema) = pg::schema("jwks") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    let config = write_config(dir.path(), &idp);
    // Short fetch timeouts, so B's first run without keys answers quickly.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[[providers]]",
        "[key_cache]\nretry_min_secs = 1\nfirst_fetch_wait_ms = 300\nfetch_timeout_ms = 500\n\n[[providers]]",
    );
    std::fs::write(&config, text).unwrap();
    let alice = key.sign(&claims("alice", json!({})));
    let env = env(&schema);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // B, during an outage, before anyone fetched: no keys, so the token is refused.
    idp.set_down(true);
    let b = Server::spawn(&dir.path().join("b"), Some(&config), &env_ref);
    let (status, body) = as_user(&b, &alice, "GET", "/v1/docs/teams/t", None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["error"]["details"]["reason"], "keys-unavailable",
        "{body}"
    );
    assert_eq!(b.stop_with("TERM").code(), Some(0));

    // A, while the IdP is up, fetches the keys (and so stores them).
    idp.set_down(false);
    let a = start(&dir.path().join("a"), &config, &env);
    let (status, body) = as_user(&a, &alice, "GET", "/v1/docs/teams/t", None);
    assert_eq!(status, 404, "{body}");

    // The IdP goes down again; B restarts, becomes ready on A's keys and verifies the token.
    idp.set_down(true);
    let b = start(&dir.path().join("b"), &config, &env);
    let (status, body) = as_user(&b, &alice, "GET", "/v1/docs/teams/t", None);
    assert_eq!(status, 404, "{body}");
    // A forged token (a key the IdP never published) is still refused.
    let forged = Key::new("k1").sign(&claims("alice", json!({})));
    let (status, body) = as_user(&b, &forged, "GET", "/v1/docs/teams/t", None);
    assert_eq!(status, 401, "{body}");
    drop(a);
}

/// With no `admin_key` configured, the first node creates one — printed once, stored only as
/// its SHA-256 — and the second node accepts that key (and prints none of its own); a wrong key
/// is refused by both.
#[test]
fn a_generated_admin_key_is_created_once_stored_hashed_and_accepted_by_the_other_node() {
    let Some(schema) = pg::schema("adminkey") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    let config = write_config(dir.path(), &idp);
    let text = std::fs::read_to_string(&config).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("admin_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&config, text).unwrap();

    let a = start(&dir.path().join("a"), &config, &env(&schema));
    let line = a
        .wait_printed("admin key")
        .unwrap_or_else(|| panic!("node A printed no admin key: {:?}", a.printed()));
    let generated = line
        .split_once("): ")
        .map(|(_, k)| k.trim().to_string())
        .unwrap_or_else(|| panic!("unexpected admin key line: {line}"));
    assert!(generated.len() >= 32, "{generated}");
    let b = start(&dir.path().join("b"), &config, &env(&schema));
    for node in [&a, &b] {
        let (status, body) = admin(
            node,
            &generated,
            "PUT",
            "/v1/admin/users/u1/claims",
            Some(json!({"moderator": true})),
        );
        assert_eq!(status, 200, "{body}");
        let (status, body) = admin(
            node,
            &format!("{generated}x"),
            "GET",
            "/v1/admin/users/u1",
            None,
        );
        assert!(status == 401 || status == 403, "{status}: {body}");
    }
    assert!(
        b.wait_printed("admin key").is_none(),
        "node B made a key of its own: {:?}",
        b.printed()
    );

    // The database holds the hash, never the key.
    let (stored, leaked) = pg::block_on(async {
        let (client, conn) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let records = format!("\"{}\".records", schema.name);
        let stored: String = client
            .query_one(
                &format!(
                    "SELECT value FROM {records} WHERE ns = 'system' AND key = 'admin_key_sha256'"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let leaked: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {records} WHERE strpos(value, $1) > 0 OR strpos(key, $1) > 0"),
                &[&generated],
            )
            .await
            .unwrap()
            .get(0);
        drop(client);
        let _ = driver.await;
        (stored, leaked)
    });
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, generated.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(stored, hex);
    assert_eq!(leaked, 0, "the admin key itself is stored");
}
