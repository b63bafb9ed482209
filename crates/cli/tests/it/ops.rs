//! End to end: what an operator relies on is never lost — the generated admin key (never
//! stored unless shown; `claimdb admin-key reset`), rules set through the API (stored as
//! versions, kept across restarts, followed by every node, rolled back), the dev-token hint on
//! PostgreSQL — and `claimdb doctor`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::idp::{Idp, Key};
use crate::pg;
use crate::util::{BIN, Server, json, request};

const ALLOW_ALL: &str = "rules_version = '2';\nservice cloud.firestore { match /databases/{db}/documents { match /{doc=**} { allow read, write: if true; } } }\n";
const DENY_ALL: &str = "rules_version = '2';\nservice cloud.firestore { match /databases/{db}/documents { match /{doc=**} { allow read, write: if false; } } }\n";

/// `claimdb <args>` with the test's environment cleared of claimdb settings: (exit code,
/// stdout, stderr).
fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    c.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CLAIMDB_")) {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The admin key a server printed at start, if it printed one.
fn printed_key(s: &Server) -> Option<String> {
    s.wait_printed("admin key")
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
}

/// Whether `key` is accepted by the admin API.
fn admin_ok(s: &Server, key: &str) -> bool {
    let (status, text) = request(
        "GET",
        &s.url("/v1/admin/users"),
        None,
        &[("x-claimdb-admin-key", key)],
    )
    .unwrap();
    assert!(status == 200 || status == 401, "{status} {text}");
    status == 200
}

fn admin(s: &Server, key: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, text) = request(
        method,
        &s.url(path),
        body,
        &[("x-claimdb-admin-key", key), ("content-type", "text/plain")],
    )
    .unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A plain server over `dir` with no rules configured (rules are managed in the database).
fn server(dir: &Path, env: &[(&str, &str)]) -> Server {
    Server::start_with(dir, None, env)
}

/// Regression: `serve` stored the new admin key's hash before binding the port; when the bind
/// failed, the key was never printed and every later start found the hash and printed nothing.
#[test]
fn a_server_that_cannot_bind_stores_no_admin_key_and_the_next_start_prints_one() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let (code, out, err) = cli(
        &[
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[("CLAIMDB_LOG", "warn")],
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("cannot listen"), "{err}");
    assert!(!out.contains("admin key"), "{out}");
    let s = server(dir.path(), &[]);
    let key = printed_key(&s).expect("the next start prints a key");
    assert!(admin_ok(&s, &key));
}

/// Killed at any moment around creating the key, a restart never locks the operator out:
/// either the last key printed works, or a new one is printed.
#[test]
fn a_kill_around_the_admin_key_never_locks_the_operator_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut last: Option<String> = None;
    for round in 0..6 {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("CLAIMDB_ADMIN_KEY")
            .env_remove("CLAIMDB_CONFIG")
            .env_remove("CLAIMDB_RULES")
            .env("CLAIMDB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Kill as soon as the key is printed (or at once, in odd rounds).
        let deadline = Instant::now() + Duration::from_secs(20);
        if round % 2 == 0 {
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(k) = line.strip_prefix("admin key") {
                    last = Some(k.rsplit(' ').next().unwrap().to_owned());
                    break;
                }
                if line.starts_with("dev token") {
                    break; // no key printed: one was stored before
                }
                assert!(Instant::now() < deadline);
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let s = server(dir.path(), &[]);
    match printed_key(&s) {
        Some(new) => assert!(admin_ok(&s, &new)),
        None => {
            let key = last.expect("some start printed a key and stored it");
            assert!(admin_ok(&s, &key), "the last key printed must work");
        }
    }
}

#[test]
fn admin_key_reset_replaces_the_key_and_refuses_while_the_server_holds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let s = server(dir.path(), &[]);
    let old = printed_key(&s).unwrap();
    // SQLite: the running server holds the data directory.
    let (code, _, err) = cli(&["admin-key", "reset", "--data-dir", d], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("in use by another claimdb process"), "{err}");
    assert!(admin_ok(&s, &old));
    s.stop_with("TERM");
    let (code, out, err) = cli(&["admin-key", "reset", "--data-dir", d], &[]);
    assert_eq!(code, 0, "{err}");
    let new = out.trim().to_owned();
    assert!(new.len() >= 40, "{out}");
    let s = server(dir.path(), &[]);
    assert_eq!(
        printed_key(&s),
        None,
        "a stored key means no new one at start"
    );
    assert!(admin_ok(&s, &new));
    assert!(!admin_ok(&s, &old));
    // A configured admin_key wins: resetting the generated one is refused.
    let (code, _, err) = cli(
        &["admin-key", "reset", "--data-dir", d],
        &[("CLAIMDB_ADMIN_KEY", "configured-key-0123456789")],
    );
    assert_eq!(code, 2);
    assert!(err.contains("admin_key is set"), "{err}");
}

#[test]
fn admin_key_reset_on_postgresql_applies_to_running_nodes_at_once() {
    let Some(schema) = pg::schema("adminkey") else {
        return;
    };
    let env = [
        ("CLAIMDB_STORAGE", "postgres"),
        ("CLAIMDB_POSTGRES_URL", schema.url.as_str()),
        ("CLAIMDB_POSTGRES_SCHEMA", schema.name.as_str()),
    ];
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = server(da.path(), &env);
    let old = printed_key(&a).unwrap();
    let b = server(db.path(), &env);
    assert_eq!(printed_key(&b), None);
    assert!(admin_ok(&b, &old));
    let (code, out, err) = cli(&["admin-key", "reset"], &env);
    assert_eq!(code, 0, "{err}");
    let new = out.trim();
    for node in [&a, &b] {
        assert!(admin_ok(node, new));
        assert!(!admin_ok(node, &old));
    }
    // Unreachable store: refused with a clear error.
    let (code, _, err) = cli(
        &["admin-key", "reset"],
        &[
            ("CLAIMDB_STORAGE", "postgres"),
            (
                "CLAIMDB_POSTGRES_URL",
                "postgres://postgres@127.0.0.1:1/none",
            ),
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach the store"), "{err}");
}

/// Regression: rules set with `PUT /v1/admin/rules` lived in memory on one node and silently
/// reverted on restart. They are stored as versions, survive restarts, roll back.
#[test]
fn rules_set_through_the_api_are_versions_that_survive_restarts_and_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let s = server(dir.path(), &[]);
    let key = printed_key(&s).unwrap();
    let put = |s: &Server, src: &str| admin(s, &key, "PUT", "/v1/admin/rules", Some(src));
    let read = |s: &Server| s.get("/v1/docs/c/d").unwrap().0;
    assert_eq!(read(&s), 403, "no rules: locked down");
    let (status, v) = put(&s, ALLOW_ALL);
    assert_eq!((status, v["version"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(read(&s), 404);
    let (status, v) = put(&s, DENY_ALL);
    assert_eq!((status, v["version"].as_u64()), (200, Some(2)), "{v}");
    let (status, v) = put(
        &s,
        "rules_version = '2'; service cloud.firestore { match /x { allow read: if nope( } }",
    );
    assert_eq!(status, 400, "{v}");
    assert_eq!(read(&s), 403);
    s.stop_with("TERM");

    let s = server(dir.path(), &[]);
    assert!(
        s.wait_printed("rules: database version 2").is_some(),
        "{:?}",
        s.printed()
    );
    assert_eq!(
        read(&s),
        403,
        "version 2 is still in force after the restart"
    );
    let (_, info) = admin(&s, &key, "GET", "/v1/admin/rules", None);
    assert_eq!(
        (info["managed_in"].as_str(), info["version"].as_u64()),
        (Some("database"), Some(2)),
        "{info}"
    );
    let (_, list) = admin(&s, &key, "GET", "/v1/admin/rules/versions", None);
    let versions: Vec<u64> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 1], "{list}");
    let (_, one) = admin(&s, &key, "GET", "/v1/admin/rules/versions/1", None);
    assert_eq!(one["source"], ALLOW_ALL);
    let (status, _) = admin(&s, &key, "GET", "/v1/admin/rules/versions/9", None);
    assert_eq!(status, 404);
    let (status, v) = request(
        "POST",
        &s.url("/v1/admin/rules/rollback"),
        Some(r#"{"version": 1}"#),
        &[("x-claimdb-admin-key", &key)],
    )
    .unwrap();
    assert_eq!(
        (status, json(&v)["version"].as_u64()),
        (200, Some(3)),
        "{v}"
    );
    assert_eq!(read(&s), 404, "rolled back to version 1's rules");
    // The CLI reads versions while the server runs; it cannot write the held directory.
    let (code, out, err) = cli(&["rules", "versions", "--data-dir", d], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rollback to v1"), "{out}");
    let (code, out, _) = cli(&["rules", "get", "1", "--data-dir", d], &[]);
    assert_eq!((code, out.as_str()), (0, ALLOW_ALL));
    let (code, _, err) = cli(&["rules", "rollback", "2", "--data-dir", d], &[]);
    assert_eq!(code, 2, "{err}");
    s.stop_with("TERM");
    let (code, out, err) = cli(&["rules", "rollback", "2", "--data-dir", d], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("version 4"), "{out}");
    let s = server(dir.path(), &[]);
    assert_eq!(read(&s), 403, "version 4 (= 2) in force");
}

/// With a rules file, the file is in force and the API says so and refuses to set rules;
/// `rules_from = "database"` turns the file into the seed of version 1.
#[test]
fn a_rules_file_takes_precedence_unless_rules_from_says_database() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("open.rules");
    std::fs::write(&rules, ALLOW_ALL).unwrap();
    let rules_env = rules.to_str().unwrap();
    let data = dir.path().join("data");
    let s = server(&data, &[("CLAIMDB_RULES", rules_env)]);
    let key = printed_key(&s).unwrap();
    assert!(
        s.printed().iter().any(|l| l.starts_with("rules: file")),
        "{:?}",
        s.printed()
    );
    let (status, v) = admin(&s, &key, "PUT", "/v1/admin/rules", Some(DENY_ALL));
    assert_eq!(status, 412, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rules_from"),
        "{v}"
    );
    let (_, info) = admin(&s, &key, "GET", "/v1/admin/rules", None);
    assert_eq!(info["managed_in"], "file", "{info}");
    assert_eq!(s.get("/v1/docs/c/d").unwrap().0, 404);
    s.stop_with("TERM");
    let env = [
        ("CLAIMDB_RULES", rules_env),
        ("CLAIMDB_RULES_FROM", "database"),
    ];
    let s = server(&data, &env);
    assert!(
        s.wait_printed("rules: database version 1").is_some(),
        "{:?}",
        s.printed()
    );
    let (status, v) = admin(&s, &key, "PUT", "/v1/admin/rules", Some(DENY_ALL));
    assert_eq!((status, v["version"].as_u64()), (200, Some(2)), "{v}");
    s.stop_with("TERM");
    // The file no longer matters once the database holds versions.
    let s = server(&data, &env);
    assert_eq!(s.get("/v1/docs/c/d").unwrap().0, 403);
    // `serve --rules FILE` is the file-mode shortcut users try first.
    s.stop_with("TERM");
    let mut c = Command::new(BIN);
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--rules")
        .arg(&rules)
        .env_remove("CLAIMDB_RULES")
        .env("CLAIMDB_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.starts_with("claimdb listening"), "{first}");
    assert!(second.starts_with("rules: file"), "{second}");
}

#[test]
fn nodes_on_one_postgresql_follow_the_newest_rules_within_seconds() {
    let Some(schema) = pg::schema("rulesv") else {
        return;
    };
    let env = [
        ("CLAIMDB_STORAGE", "postgres"),
        ("CLAIMDB_POSTGRES_URL", schema.url.as_str()),
        ("CLAIMDB_POSTGRES_SCHEMA", schema.name.as_str()),
    ];
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = server(da.path(), &env);
    let key = printed_key(&a).unwrap();
    let b = server(db.path(), &env);
    let wait_for = |s: &Server, want: u16| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = s.get("/v1/docs/c/d").unwrap().0;
            if got == want {
                return;
            }
            assert!(Instant::now() < deadline, "still {got}, want {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(b.get("/v1/docs/c/d").unwrap().0, 403);
    let (status, _) = admin(&a, &key, "PUT", "/v1/admin/rules", Some(ALLOW_ALL));
    assert_eq!(status, 200);
    wait_for(&a, 404);
    wait_for(&b, 404);
    // The CLI stores a version while the nodes run; both follow.
    let file = da.path().join("deny.rules");
    std::fs::write(&file, DENY_ALL).unwrap();
    let (code, _, err) = cli(&["rules", "set", file.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{err}");
    wait_for(&a, 403);
    wait_for(&b, 403);
}

/// Regression: with PostgreSQL the dev-token hint named `--data-dir ./claimdb-data`, which made
/// a stray key ring and a token the server refused (`unknown-key`). The printed command works
/// from another shell as it is.
#[test]
fn the_dev_token_hint_works_on_postgresql() {
    let Some(schema) = pg::schema("hint") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = server(
        dir.path(),
        &[
            ("CLAIMDB_STORAGE", "postgres"),
            ("CLAIMDB_POSTGRES_URL", &schema.url),
            ("CLAIMDB_POSTGRES_SCHEMA", &schema.name),
        ],
    );
    let hint = s.wait_printed("dev token: ").unwrap();
    let command = hint
        .strip_prefix("dev token: ")
        .unwrap()
        .split("; curl")
        .next()
        .unwrap()
        .to_owned();
    assert!(!command.contains("--data-dir"), "{command}");
    // Another shell: none of the server's CLAIMDB_* variables, another working directory.
    let other = tempfile::tempdir().unwrap();
    let mut sh = Command::new("sh");
    sh.args(["-c", &format!("{command}; printf %s \"$TOKEN\"")])
        .current_dir(other.path());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CLAIMDB_")) {
        sh.env_remove(k);
    }
    let out = sh.output().unwrap();
    let token = String::from_utf8(out.stdout).unwrap();
    assert!(
        token.starts_with("eyJ"),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, text) = request(
        "GET",
        &s.url("/v1/me"),
        None,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        !other.path().join("claimdb-data").exists(),
        "no stray data directory"
    );
}

#[test]
fn doctor_checks_a_configuration_and_exits_by_the_worst_finding() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let idp = Idp::start(&[&key]);
    let rules = dir.path().join("f.rules");
    std::fs::write(&rules, ALLOW_ALL).unwrap();
    let config = dir.path().join("claimdb.toml");
    let write = |extra: &str, alg: &str| {
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{data}\"\nrules = \"{rules}\"\nadmin_key = \"doctor-admin-key-0123456789\"\n\
                 public_url = \"https://db.example.com\"\n{extra}\n\
                 [[providers]]\nname = \"idp\"\nissuer = \"https://idp.example/\"\njwks_uri = \"{jwks}\"\n\
                 audience = \"api\"\nalgorithms = [\"{alg}\"]\n",
                data = dir.path().join("data").display(),
                rules = rules.display(),
                jwks = idp.jwks_uri(),
            ),
        )
        .unwrap();
    };
    let doctor = || cli(&["doctor", "--config", config.to_str().unwrap()], &[]);
    write("", "ES256");
    let (code, out, err) = doctor();
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "ok    config: parses",
        "ok    provider idp: 1 key(s)",
        "ok    clock vs idp: this host is",
        "ok    rules: ",
        "ok    cookies: Secure",
        "ok    admin: admin_key is configured",
    ] {
        assert!(out.contains(want), "{want:?} in\n{out}");
    }
    // A provider without a key for its pinned algorithm fails the run.
    write("", "RS256");
    let (code, out, _) = doctor();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAIL  provider idp:") && out.contains("RS256"),
        "{out}"
    );
    // The provider down: fails with a fix.
    write("", "ES256");
    idp.set_down(true);
    let (code, out, _) = doctor();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("answered HTTP 503") && out.contains("fix:"),
        "{out}"
    );
    idp.set_down(false);
    // App origins are listed; every origin is a warning (which fails nothing).
    write("cors_origins = [\"https://spa.example.com\"]", "ES256");
    let (code, out, _) = doctor();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok    cors_origins: https://spa.example.com (CORS without credentials"),
        "{out}"
    );
    write("cors_origins = \"*\"", "ES256");
    let (code, out, _) = doctor();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warn  cors_origins: \"*\""), "{out}");
    // Rules that do not compile fail it.
    std::fs::write(
        &rules,
        "rules_version = '2'; service cloud.firestore { match /x { allow read: if ( } }",
    )
    .unwrap();
    let (code, out, _) = doctor();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAIL  rules:"), "{out}");
    // A misspelt key fails at the first check, with a suggestion.
    write("adminroles = [\"x\"]", "ES256");
    let (code, out, _) = doctor();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("did you mean `admin_roles`?"), "{out}");
}
