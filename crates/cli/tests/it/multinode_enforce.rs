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

    // B, during an outage, before anyone fetched: no keys, so the token cannot be checked
    // (a retryable 503, not a refusal of the token).
    idp.set_down(true);
    let b = Server::spawn(&dir.path().join("b"), Some(&config), &env_ref);
    let (status, body) = as_user(&b, &alice, "GET", "/v1/docs/teams/t", None);
    assert_eq!(status, 503, "{body}");
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

/// claimdb's own signing keys live in the database with PostgreSQL: a token minted through node
/// A (admin API) or by `claimdb token mint` on another machine verifies on node B, and after a
/// rotation (`claimdb token rotate-keys`) tokens signed with the new key verify on both without a
/// restart. The nodes share one `public_url`, as behind a load balancer.
#[test]
fn claimdb_tokens_minted_anywhere_verify_on_every_node() {
    let Some(schema) = pg::schema("issuer") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    let config = write_config(dir.path(), &idp);
    let mut env = env(&schema);
    env.push(("CLAIMDB_PUBLIC_URL", "https://db.claimdb.test".into()));
    let a = start(&dir.path().join("a"), &config, &env);
    let b = start(&dir.path().join("b"), &config, &env);
    let (status, body) = admin(
        &a,
        ADMIN_KEY,
        "POST",
        "/v1/admin/users/alice/tokens",
        Some(json!({"ttl": "10m"})),
    );
    assert_eq!(status, 200, "{body}");
    let minted_on_a = body["id_token"].as_str().unwrap().to_owned();
    let (status, body) = as_user(&b, &minted_on_a, "GET", "/v1/me", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], "alice");
    // The CLI, from a third data directory, signs with the same key ring.
    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(crate::util::BIN);
        command
            .args(args)
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("c"));
        for (k, v) in &env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let minted_by_cli = cli(&["token", "mint", "--uid", "bob"]).trim().to_owned();
    let (status, body) = as_user(&b, &minted_by_cli, "GET", "/v1/me", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], "bob");
    // Rotate from the CLI: tokens keep verifying on both nodes, old ones too.
    cli(&["token", "rotate-keys"]);
    let (status, body) = admin(
        &a,
        ADMIN_KEY,
        "POST",
        "/v1/admin/users/carol/tokens",
        Some(json!({"ttl": "10m"})),
    );
    assert_eq!(status, 200, "{body}");
    let after_rotation = body["id_token"].as_str().unwrap().to_owned();
    let kid = |t: &str| -> String {
        let header = t.split('.').next().unwrap();
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap();
        serde_json::from_slice::<Value>(&bytes).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (status, body) = as_user(&b, &after_rotation, "GET", "/v1/me", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["uid"], "carol");
    let (status, body) = as_user(&b, &minted_on_a, "GET", "/v1/me", None);
    assert_eq!(status, 200, "{body}");
    // Every node publishes the new key next to the old one (the JWKS re-reads the ring at most
    // once a second); a node keeps signing with its current key until its own maintenance
    // round picks the rotation up, which the overlap makes harmless.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, jwks) = call(&b, "GET", "/.well-known/jwks.json", None, &[]);
        assert_eq!(status, 200, "{jwks}");
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|k| k["kid"].as_str())
            .collect();
        if kids.len() >= 2 {
            assert!(kids.contains(&kid(&minted_on_a).as_str()), "{jwks}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B never published the rotated key: {jwks}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
