//! The command line itself: help, exit codes, config errors, and export → import round trips.

use std::process::Command;

use crate::util::{BIN, Server, json, request};

#[test]
fn help_names_every_command() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "serve",
        "export",
        "import",
        "audit",
        "127.0.0.1:8787",
        "Exit codes",
    ] {
        assert!(text.contains(word), "--help lacks {word:?}:\n{text}");
    }
}

#[test]
fn usage_and_config_errors_exit_2() {
    let out = Command::new(BIN).arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("claimdb.toml");
    std::fs::write(&config, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown config key `lisen`"), "{stderr}");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CLAIMDB_DATA_DIR", dir.path().join("d"))
        .env("CLAIMDB_MAX_BODY_BYTES", "ten")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn export_then_import_round_trips_documents_and_metadata() {
    let source = tempfile::tempdir().unwrap();
    let server = Server::start(source.path());
    for (path, body) in [
        (
            "movies/m1",
            r#"{"title":"Up","year":2009,"at":{"$timestamp":"2026-01-01T00:00:00.000000Z"}}"#,
        ),
        ("movies/m2", r#"{"title":"Heat","score":8.5}"#),
        ("users/u1/posts/p1", r#"{"text":"hi","tags":["a","b"]}"#),
    ] {
        let (status, text) = request(
            "PUT",
            &server.url(&format!("/v1/docs/{path}")),
            Some(body),
            &[],
        )
        .unwrap();
        assert!(status == 200 || status == 201, "{status} {text}");
    }
    let before = json(&server.get("/v1/docs/movies/m2").unwrap().1);
    drop(server);

    let export = source.path().join("export.jsonl");
    let out = Command::new(BIN)
        .args(["export", "--data-dir"])
        .arg(source.path())
        .arg("-o")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&export).unwrap();
    let documents = text.lines().filter(|l| l.contains(r#""path":"#));
    assert_eq!(documents.count(), 3, "{text}");

    let target = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["import", "--data-dir"])
        .arg(target.path())
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start(target.path());
    let after = json(&server.get("/v1/docs/movies/m2").unwrap().1);
    assert_eq!(after, before, "import must keep data, times and version");
    let p1 = json(&server.get("/v1/docs/users/u1/posts/p1").unwrap().1);
    assert_eq!(p1["data"]["tags"], serde_json::json!(["a", "b"]));
}

#[test]
fn import_of_a_bad_file_writes_nothing_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"path\":\"a/1\",\"data\":{}}\n{\"path\":\"a\",\"data\":{}}\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .args(["import", "--data-dir"])
        .arg(&data)
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("line 2") && stderr.contains("names a collection"),
        "{stderr}"
    );
    let server = Server::start(&data);
    assert_eq!(
        server.get("/v1/docs/a/1").unwrap().0,
        404,
        "nothing may be written"
    );
}

#[test]
fn rules_check_reports_errors_with_position_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/movies.rules");
    let out = Command::new(BIN)
        .args(["rules", "check", good])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = dir.path().join("bad.rules");
    std::fs::write(
        &bad,
        "rules_version = '2';\nservice cloud.firestore {\n  match /databases/{db}/documents {\n    allow read: if request.auth.uid = 'x';\n  }\n}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["rules", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("4:"), "no line:column in {stderr}");
    assert!(stderr.contains('^'), "no caret in {stderr}");
    let missing = dir.path().join("missing.rules");
    let out = Command::new(BIN)
        .args(["rules", "check"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rules_test_reads_yaml_cases_and_exits_1_on_a_failing_case() {
    let dir = tempfile::tempdir().unwrap();
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/movies.rules");
    let cases = dir.path().join("cases.yaml");
    std::fs::write(
        &cases,
        "cases:\n  - name: signed-in user reads\n    auth: {uid: u1, token: {}}\n    method: get\n    path: movies/m1\n    existing: {movies/m1: {title: Up}}\n    expect: allow\n  - name: moderator may create\n    auth: {uid: u2, token: {moderator: true}}\n    method: create\n    path: movies/m2\n    data: {title: Heat}\n    expect: allow\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["rules", "test", rules])
        .arg(&cases)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("coverage"), "{stdout}");
    // The same request without the claim is denied: a case expecting allow must fail, explained.
    std::fs::write(
        &cases,
        "cases:\n  - name: plain user may create\n    auth: {uid: u3, token: {}}\n    method: create\n    path: movies/m3\n    data: {title: Alien}\n    expect: allow\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["rules", "test", rules])
        .arg(&cases)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("moderator"),
        "{stdout}"
    );
    std::fs::write(&cases, "cases: [{name: x}]\n").unwrap();
    let out = Command::new(BIN)
        .args(["rules", "test", rules])
        .arg(&cases)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Regression: `claimdb rules test` refused a JSON case file whose strings hold escaped
/// surrogate pairs (`"\ud83d\ude00"`, what `JSON.stringify` and many tools write for emoji) as
/// "not valid YAML or JSON": it read every file with the YAML parser, whose escapes are code
/// points, not UTF-16 units.
#[test]
fn rules_test_reads_json_cases_with_escaped_surrogate_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("firestore.rules");
    std::fs::write(
        &rules,
        "rules_version = '2';\nservice cloud.firestore { match /databases/{db}/documents { match /notes/{id} { allow create: if request.resource.data.mood == '😀' && request.resource.data.mood.size() == 2; } } }\n",
    )
    .unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        r#"{"cases": [{"name": "emoji \ud83d\ude00", "auth": null, "method": "create", "path": "notes/n1", "data": {"mood": "\ud83d\ude00"}, "expect": "allow"}]}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["rules", "test"])
        .arg(&rules)
        .arg(&cases)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("ok    emoji 😀 (allow)"), "{stdout}");
}

/// A JWT with the given header and payload and a signature that cannot verify.
fn unsigned_token(header: &str, payload: &str) -> String {
    fn b64(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(payload.as_bytes()),
        b64(b"not a signature")
    )
}

#[test]
fn token_inspect_shows_claims_and_says_why_it_does_not_verify() {
    let token = unsigned_token(
        r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
        r#"{"iss":"https://idp.example/","sub":"alice","aud":"api","exp":4102444800,"moderator":true}"#,
    );
    // No configuration: decoded and shown, but nothing to check it against, so not verified.
    let out = Command::new(BIN)
        .args(["token", "inspect", &token])
        .env_remove("CLAIMDB_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("alice") && stdout.contains("moderator"),
        "{stdout}"
    );
    assert!(stdout.contains("NOT CHECKED"), "{stdout}");

    // A provider for another issuer: the token's issuer is unknown.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("claimdb.toml");
    std::fs::write(
        &config,
        "[[providers]]\nname = \"other\"\nissuer = \"https://other.example/\"\njwks_uri = \"http://127.0.0.1:9/jwks.json\"\naudience = [\"api\"]\n\n[key_cache]\nfetch_timeout_ms = 200\nfirst_fetch_wait_ms = 200\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["token", "inspect", "--config"])
        .arg(&config)
        .arg(&token)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("unknown-issuer"), "{stdout}");

    // Garbage is malformed, not a crash.
    let out = Command::new(BIN)
        .args(["token", "inspect", "not.a.jwt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

fn claimdb(args: &[&str], data_dir: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("CLAIMDB_CONFIG")
        .env_remove("CLAIMDB_PUBLIC_URL")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn token_mint_signs_with_the_data_dir_key_and_inspect_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mint = [
        "token",
        "mint",
        "--uid",
        "alice",
        "--claims",
        r#"{"moderator":true}"#,
        "--ttl",
        "30m",
    ];
    let (code, token, err) = claimdb(&mint, &data);
    assert_eq!(code, Some(0), "{err}");
    let token = token.trim().to_owned();
    assert_eq!(token.split('.').count(), 3);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data.join("issuer")), 0o700);
        assert_eq!(mode(&data.join("issuer/keys.json")), 0o600);
    }
    // `token inspect` over the same data directory knows claimdb's issuer and verifies it.
    let (code, out, err) = claimdb(&["token", "inspect", &token], &data);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("claimdb") && out.contains("moderator"),
        "{out}"
    );

    // After a rotation, the old token still verifies and a new one uses the new key.
    let (code, out, err) = claimdb(&["token", "rotate-keys"], &data);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("active") && out.contains("retired"), "{out}");
    let (code, _, err) = claimdb(&["token", "inspect", &token], &data);
    assert_eq!(code, Some(0), "{err}");
    let (code, second, _) = claimdb(&["token", "mint", "--uid", "bob"], &data);
    assert_eq!(code, Some(0));
    let (code, _, _) = claimdb(&["token", "inspect", second.trim()], &data);
    assert_eq!(code, Some(0));

    // Usage errors exit 2 and say why.
    let bad: [&[&str]; 5] = [
        &["token", "mint", "--uid", "alice", "--ttl", "2h"],
        &["token", "mint", "--uid", "alice", "--ttl", "soon"],
        &[
            "token",
            "mint",
            "--uid",
            "alice",
            "--claims",
            r#"{"sub":"root"}"#,
        ],
        &["token", "mint", "--uid", "alice", "--claims", "[1]"],
        &["token", "mint", "--uid", ""],
    ];
    for args in bad {
        let (code, out, err) = claimdb(args, &data);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(out.is_empty() && err.contains("error"), "{args:?}: {err}");
    }
}

#[test]
fn export_works_while_the_server_runs_and_a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let (status, text) = request(
        "PUT",
        &server.url("/v1/docs/movies/m1"),
        Some(r#"{"title":"Up"}"#),
        &[],
    )
    .unwrap();
    assert!(status == 200 || status == 201, "{status} {text}");
    let export = dir.path().join("live.jsonl");
    let out = Command::new(BIN)
        .args(["export", "--data-dir"])
        .arg(dir.path())
        .arg("-o")
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read_to_string(&export)
            .unwrap()
            .contains("movies/m1")
    );
    // An import into the running server's directory would write behind its back: refused,
    // naming the reason, and nothing is written.
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"path\":\"movies/m2\",\"data\":{}}\n").unwrap();
    let out = Command::new(BIN)
        .args(["import", "--data-dir"])
        .arg(dir.path())
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("in use by another claimdb process"),
        "{stderr}"
    );
    assert_eq!(server.get("/v1/docs/movies/m2").unwrap().0, 404);
}
