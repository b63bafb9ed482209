//! Emulator mode against the real binary: `claimdb emulator` (and `emulator = true` in a
//! config) accepts the unsigned tokens of `@firebase/rules-unit-testing` and `Bearer owner`,
//! gives every project id its own database, serves the emulator's control endpoints (rules
//! put as `text/plain` without credentials, clearing a project's documents), answers CORS for
//! any origin — and refuses production-looking configurations. Outside emulator mode none of
//! that is accepted: `Bearer owner` and unsigned tokens are unauthenticated, and the control
//! endpoints do not exist.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::idp::{AUDIENCE, Deployment, ISSUER, Key, b64, claims, forged};
use crate::util::{BIN, Server, request, request_with_headers};

/// What `authenticatedContext(uid, claims)` sends: an `alg: none` JWT that expired in 1970.
pub(crate) fn unsigned_token(project: &str, uid: &str, extra: Value) -> String {
    let mut payload = json!({
        "iss": format!("https://securetoken.google.com/{project}"),
        "aud": project,
        "iat": 0,
        "exp": 3600,
        "auth_time": 0,
        "sub": uid,
        "user_id": uid,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
    });
    if let (Value::Object(p), Value::Object(e)) = (&mut payload, extra) {
        p.extend(e);
    }
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(payload.to_string().as_bytes())
    )
}

const NOTES_RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /notes/{id} {
      allow read, write: if request.auth != null
        && (request.auth.uid == id || request.auth.token.admin == true);
    }
  }
}
";

fn docs(server: &Server, project: &str, path: &str) -> String {
    server.url(&format!(
        "/v1/projects/{project}/databases/(default)/documents{path}"
    ))
}

fn put_rules(server: &Server, project: &str, source: &str) -> (u16, String) {
    let body = json!({"rules": {"files": [{"name": "firestore.rules", "content": source}]}});
    request(
        "PUT",
        &server.url(&format!("/emulator/v1/projects/{project}:securityRules")),
        Some(&body.to_string()),
        &[("content-type", "text/plain;charset=UTF-8")],
    )
    .unwrap()
}

fn patch(server: &Server, project: &str, path: &str, token: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    request(
        "PATCH",
        &docs(server, project, path),
        Some(r#"{"fields":{"n":{"integerValue":"1"}}}"#),
        &[("authorization", &auth)],
    )
    .unwrap()
}

fn get(server: &Server, project: &str, path: &str, token: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    request(
        "GET",
        &docs(server, project, path),
        None,
        &[("authorization", &auth)],
    )
    .unwrap()
}

#[test]
fn the_emulator_takes_unsigned_tokens_and_owner_with_a_database_per_project() {
    let started = Instant::now();
    let server = Server::emulator(&[]);
    let ready_in = started.elapsed();
    // Starting (binary, store, listener) takes well under a second, even in a debug build.
    assert!(
        ready_in < Duration::from_secs(5),
        "ready after {ready_in:?}"
    );
    let banner = server
        .wait_printed("EMULATOR MODE")
        .expect("the banner says it is an emulator");
    assert!(banner.contains("Bearer owner"), "{banner}");

    // Rules are put per project, as rules-unit-testing does: text/plain, no credentials.
    let (status, body) = put_rules(&server, "demo-a", NOTES_RULES);
    assert_eq!(status, 200, "{body}");
    let alice = unsigned_token("demo-a", "alice", json!({}));
    let admin = unsigned_token("demo-a", "root", json!({"admin": true}));
    assert_eq!(patch(&server, "demo-a", "/notes/alice", &alice).0, 200);
    let (status, body) = patch(&server, "demo-a", "/notes/bob", &alice);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("PERMISSION_DENIED"), "{body}");
    // The token's claims are `request.auth.token`.
    assert_eq!(patch(&server, "demo-a", "/notes/bob", &admin).0, 200);
    // No credential: `request.auth == null`.
    let (status, _) = request("GET", &docs(&server, "demo-a", "/notes/alice"), None, &[]).unwrap();
    assert_eq!(status, 403);
    // `Bearer owner` bypasses the rules.
    assert_eq!(patch(&server, "demo-a", "/elsewhere/x", "owner").0, 200);
    assert_eq!(patch(&server, "demo-a", "/elsewhere/x", &alice).0, 403);

    // Another project is another database, with the emulator's starting rules (open).
    let (status, _) = get(&server, "demo-b", "/notes/alice", &alice);
    assert_eq!(status, 404);
    assert_eq!(patch(&server, "demo-b", "/notes/carol", &alice).0, 200);
    let (status, body) = get(&server, "demo-a", "/notes/carol", "owner");
    assert_eq!(status, 404, "{body}");

    // A token that names no user is refused; so is a token that is no JWT.
    let nobody = format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(br#"{"iss":"x","exp":3600}"#)
    );
    for bad in [nobody.as_str(), "not-a-jwt"] {
        let (status, body) = get(&server, "demo-a", "/notes/alice", bad);
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("UNAUTHENTICATED"), "{body}");
    }

    // Rules that do not compile are refused with the line and column; the old ones stay.
    let (status, body) = put_rules(&server, "demo-a", "service cloud.firestore {");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("INVALID_ARGUMENT") && body.contains("line 1:"),
        "{body}"
    );
    assert_eq!(patch(&server, "demo-a", "/notes/bob", &alice).0, 403);
    let (status, _) = request(
        "PUT",
        &server.url("/emulator/v1/projects/demo-a:securityRules"),
        Some(r#"{"rules":{"files":[]}}"#),
        &[],
    )
    .unwrap();
    assert_eq!(status, 400);

    // clearFirestore: the project's documents go, its rules and the other projects stay.
    let (status, body) = request(
        "DELETE",
        &server.url("/emulator/v1/projects/demo-a/databases/(default)/documents"),
        None,
        &[],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(get(&server, "demo-a", "/notes/alice", &alice).0, 404);
    assert_eq!(get(&server, "demo-a", "/elsewhere/x", "owner").0, 404);
    assert_eq!(get(&server, "demo-b", "/notes/carol", &alice).0, 200);
    assert_eq!(patch(&server, "demo-a", "/notes/bob", &alice).0, 403);

    // The configured project is the one claimdb's own API serves.
    assert_eq!(patch(&server, "demo-claimdb", "/notes/n1", "owner").0, 200);
    let (status, body) = request(
        "GET",
        &server.url("/v1/docs/notes/n1"),
        None,
        &[("authorization", "Bearer owner")],
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");

    // A browser app on any origin may call it.
    let (status, headers, _) = request_with_headers(
        "OPTIONS",
        &docs(&server, "demo-a", ":commit"),
        None,
        &[
            ("origin", "http://localhost:5173"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type,x-goog-api-client,x-firebase-gmpid",
            ),
        ],
    )
    .unwrap();
    assert_eq!(status, 200);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(
        header("access-control-allow-origin"),
        "http://localhost:5173"
    );
    assert_eq!(header("access-control-allow-credentials"), "");
    assert!(
        header("access-control-allow-headers").contains("authorization"),
        "{headers:?}"
    );
}

/// Exit status and output of a command that is expected to refuse to start.
fn refused(command: &mut Command) -> (Option<i32>, String) {
    let output = command
        .env_remove("CLAIMDB_CONFIG")
        .env_remove("CLAIMDB_RULES")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn emulator_mode_refuses_production_looking_configurations() {
    let dir = tempfile::tempdir().unwrap();
    // A network-facing address.
    let (code, text) = refused(Command::new(BIN).args(["emulator", "--listen", "0.0.0.0:0"]));
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("refusing emulator mode") && text.contains("loopback"),
        "{text}"
    );
    // A configuration with identity providers, or PostgreSQL storage.
    let config = dir.path().join("claimdb.toml");
    std::fs::write(
        &config,
        format!(
            "emulator = true\n\n[[providers]]\nname = \"idp\"\nissuer = \"{ISSUER}\"\njwks_uri = \"http://127.0.0.1:9/jwks\"\naudience = [\"{AUDIENCE}\"]\nalgorithms = [\"ES256\"]\n"
        ),
    )
    .unwrap();
    let (code, text) = refused(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path().join("data")),
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("identity provider"), "{text}");
    let (code, text) = refused(
        Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("CLAIMDB_EMULATOR", "true")
            .env("CLAIMDB_STORAGE", "postgres")
            .env(
                "CLAIMDB_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:9/none",
            ),
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("PostgreSQL"), "{text}");
}

#[test]
fn outside_emulator_mode_owner_and_unsigned_tokens_are_unauthenticated() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"));
    let unsigned = unsigned_token("demo-claimdb", "alice", json!({}));
    for token in ["owner", unsigned.as_str()] {
        let (status, body) = get(&server, "demo-claimdb", "/notes/n1", token);
        assert_eq!(status, 401, "{token}: {body}");
        assert!(body.contains("UNAUTHENTICATED"), "{body}");
        let auth = format!("Bearer {token}");
        let (status, body) = request(
            "PUT",
            &server.url("/v1/docs/notes/n1"),
            Some("{}"),
            &[("authorization", &auth)],
        )
        .unwrap();
        assert_eq!(status, 401, "{token}: {body}");
    }
    // Errors the routing answers under Firestore's paths are in Firestore's shape (the
    // SDKs parse `google.rpc.Status`): an unknown RPC, a wrong method (a body over the limit:
    // the server crate's errors tests).
    for (method, path, status, code) in [
        ("POST", ":nope", 404, "NOT_FOUND"),
        ("PUT", "/notes/n1", 405, "INVALID_ARGUMENT"),
    ] {
        let (got, text) = request(method, &docs(&server, "demo-claimdb", path), None, &[]).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (got, json["error"]["status"].as_str()),
            (status, Some(code)),
            "{text}"
        );
        assert_eq!(json["error"]["code"], json!(status), "{text}");
    }
    // Other projects are not served and the control endpoints do not exist.
    assert_eq!(get(&server, "demo-other", "/notes/n1", "x").0, 404);
    let body = json!({"rules": {"files": [{"content": "x"}]}}).to_string();
    let (status, _) = request(
        "PUT",
        &server.url("/emulator/v1/projects/demo-claimdb:securityRules"),
        Some(&body),
        &[],
    )
    .unwrap();
    assert_eq!(status, 404);
    let (status, _) = request(
        "DELETE",
        &server.url("/emulator/v1/projects/demo-claimdb/databases/(default)/documents"),
        None,
        &[],
    )
    .unwrap();
    assert!(status == 404 || status == 405, "{status}");
}

#[test]
fn in_emulator_mode_a_configured_providers_tokens_are_still_verified() {
    let Deployment {
        server,
        key,
        idp: _idp,
        dir: _dir,
    } = Deployment::start(NOTES_RULES, "emulator = true\nemulator_force = true");
    assert!(server.wait_printed("EMULATOR MODE").is_some());
    let signed = key.sign(&claims("alice", json!({})));
    assert_eq!(
        patch(&server, "demo-claimdb", "/notes/alice", &signed).0,
        200
    );
    // A forged token of the configured issuer is refused, even here.
    let forged = forged(&signed);
    let (status, body) = get(&server, "demo-claimdb", "/notes/alice", &forged);
    assert_eq!(status, 401, "{body}");
    // An unsigned token, and one of an issuer no provider has, are read unverified.
    let unsigned = unsigned_token("demo-claimdb", "alice", json!({}));
    assert_eq!(
        get(&server, "demo-claimdb", "/notes/alice", &unsigned).0,
        200
    );
    let stranger = Key::new("k2").sign(&json!({
        "iss": "https://elsewhere.test/", "sub": "alice", "aud": "x", "exp": 1,
    }));
    assert_eq!(
        get(&server, "demo-claimdb", "/notes/alice", &stranger).0,
        200
    );
    assert_eq!(get(&server, "demo-claimdb", "/notes/bob", &stranger).0, 403);
}
