//! `claimdb export` / `claimdb import` as a complete backup (issue 13, item 3): documents with
//! their metadata, every system record and the signing key ring travel SQLite → file →
//! PostgreSQL → file → SQLite unchanged; on each restored server a token minted before the
//! backup verifies, a revoked user stays revoked, the generated admin key still works and the
//! rules stored through the admin API are in force. And
//! the file's safety: owner-only, complete or refused, older document-only files still read.

use claimdb_store::{Documents, Records};
use std::path::Path;
use std::process::{Command, Output};

use claimdb_model::{DocPath, Map, Value};
use claimdb_store::sqlite::SqliteStore;
use claimdb_store::{Document, Record, RecordCondition, Store, Write, WriteOp};
use serde_json::json;

use crate::pg;
use crate::util::{BIN, OPEN_RULES, Server, json, request};

/// The `iss` of claimdb's tokens on every server here, so a token minted on one verifies on
/// another.
pub(crate) const PUBLIC_URL: &str = "https://db.claimdb.test";

/// Runs `claimdb ARGS` with `env` (and nothing inherited that selects a store or a key).
pub(crate) fn claimdb(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("CLAIMDB_CONFIG")
        .env_remove("CLAIMDB_ADMIN_KEY")
        .env_remove("CLAIMDB_STORAGE")
        .env_remove("CLAIMDB_POSTGRES_URL")
        .env_remove("CLAIMDB_POSTGRES_SCHEMA")
        .env("CLAIMDB_PUBLIC_URL", PUBLIC_URL);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

pub(crate) fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn pg_env(schema: &pg::Schema) -> Vec<(&'static str, &str)> {
    vec![
        ("CLAIMDB_STORAGE", "postgres"),
        ("CLAIMDB_POSTGRES_URL", &schema.url),
        ("CLAIMDB_POSTGRES_SCHEMA", &schema.name),
    ]
}

pub(crate) fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Everything an SQLite store holds: documents, records, and the key file beside it.
fn sqlite_contents(dir: &Path) -> (Vec<Document>, Vec<Record>, String) {
    let (docs, records) = pg::block_on(async {
        let store = SqliteStore::open_read_only(dir).unwrap();
        let docs = store.scan(None, 100_000).await.unwrap();
        let records = store.scan_records(None, 100_000).await.unwrap();
        store.close().await.unwrap();
        (docs, records)
    });
    let keys = std::fs::read_to_string(dir.join("issuer/keys.json")).unwrap();
    (docs, records, keys)
}

/// The lines of a backup after its header (which names the time and the source).
fn body(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines = text.lines().map(str::to_owned);
    let header = json(&lines.next().unwrap());
    assert_eq!(header["claimdb_backup"], 2, "{header}");
    lines.collect()
}

/// Rules stored through the admin API as version 2 (version 1 is the seed from the file).
fn stored_rules() -> String {
    format!("{OPEN_RULES}// stored through the admin API\n")
}

/// What a server restored from the backup must still do.
struct Expect<'a> {
    admin_key: &'a str,
    /// Minted before the backup for bob (by the CLI and by the admin API): must verify.
    valid: &'a [&'a str],
    /// Minted before the backup for alice, revoked before the backup: must stay refused.
    revoked: &'a str,
    /// `GET /v1/docs/movies/m1` before the backup.
    m1: &'a serde_json::Value,
}

fn check_restored(server: &Server, expect: &Expect) {
    for token in expect.valid {
        let (status, text) = request(
            "GET",
            &server.url("/v1/me"),
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap();
        assert_eq!(status, 200, "a token from before the backup: {text}");
        let me = json(&text);
        assert_eq!(me["uid"], "bob");
        assert_eq!(me["custom_claims"]["editor"], true, "{me}");
    }
    let (status, text) = request(
        "GET",
        &server.url("/v1/me"),
        None,
        &[("authorization", &format!("Bearer {}", expect.revoked))],
    )
    .unwrap();
    assert_eq!(status, 401, "the revoked user is revoked again: {text}");
    assert!(text.contains("revoked"), "{text}");
    let (status, text) = request(
        "GET",
        &server.url("/v1/admin/users/bob"),
        None,
        &[("x-claimdb-admin-key", expect.admin_key)],
    )
    .unwrap();
    assert_eq!(status, 200, "the admin key still works: {text}");
    let (status, text) = server.get("/v1/docs/movies/m1").unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(&json(&text), expect.m1, "data, times and version kept");
    let (status, text) = request(
        "GET",
        &server.url("/v1/admin/rules"),
        None,
        &[("x-claimdb-admin-key", expect.admin_key)],
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let rules = json(&text);
    assert_eq!(
        rules["version"], 2,
        "the stored rules version is in force: {rules}"
    );
    assert_eq!(rules["source"], stored_rules());
}

/// Regression (issue 13): export/import carried documents only — a restore lost users, custom
/// claims, revocations (un-revoking revoked users), the signing keys (every token failed with
/// `unknown-key`) and the admin key. The whole round trip through both backends now keeps all
/// of it, byte for byte.
#[test]
fn a_backup_round_trips_sqlite_postgres_sqlite_with_keys_records_and_revocations() {
    let Some(schema) = pg::schema("backup") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    // Rules live in the database (the open rules file seeds version 1).
    let env = [
        ("CLAIMDB_PUBLIC_URL", PUBLIC_URL),
        ("CLAIMDB_RULES_FROM", "database"),
    ];

    // A source with documents, custom claims, a revocation, tokens minted three ways and rules
    // stored through the admin API.
    let server = Server::start_env(&src, &env);
    let admin_line = server
        .wait_printed("admin key")
        .expect("the generated admin key is printed");
    let admin_key = admin_line.rsplit(' ').next().unwrap().to_owned();
    let admin = [("x-claimdb-admin-key", admin_key.as_str())];
    for (method, path, body) in [
        (
            "PUT",
            "movies/m1",
            r#"{"title":"Up","at":{"$timestamp":"2026-01-01T00:00:00.000000Z"},"n":2}"#,
        ),
        ("PATCH", "movies/m1", r#"{"n":3}"#),
        ("PUT", "users/u1/posts/p1", r#"{"text":"hi","tags":["a"]}"#),
    ] {
        let (status, text) = request(
            method,
            &server.url(&format!("/v1/docs/{path}")),
            Some(body),
            &[],
        )
        .unwrap();
        assert!(status == 200 || status == 201, "{status} {text}");
    }
    let m1 = json(&server.get("/v1/docs/movies/m1").unwrap().1);
    let (status, text) = request(
        "PUT",
        &server.url("/v1/admin/rules"),
        Some(&serde_json::to_string(&json!({ "source": stored_rules() })).unwrap()),
        &admin,
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let (status, text) = request(
        "PUT",
        &server.url("/v1/admin/users/bob/claims"),
        Some(r#"{"editor":true}"#),
        &admin,
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let mint = |uid: &str| {
        let out = ok(claimdb(
            &[
                "token",
                "mint",
                "--uid",
                uid,
                "--data-dir",
                src.to_str().unwrap(),
            ],
            &[],
        ));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let (alice, bob) = (mint("alice"), mint("bob"));
    let (status, text) = request(
        "POST",
        &server.url("/v1/admin/users/bob/tokens"),
        Some("{}"),
        &admin,
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let bob_api = json(&text)["id_token"].as_str().unwrap().to_owned();
    let (status, text) = request(
        "POST",
        &server.url("/v1/admin/users/alice/revoke"),
        None,
        &admin,
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let expect = Expect {
        admin_key: &admin_key,
        valid: &[&bob, &bob_api],
        revoked: &alice,
        m1: &m1,
    };
    check_restored(&server, &expect);
    assert!(server.stop_with("TERM").success());
    // A record in a namespace this claimdb does not know: backups carry records generically.
    pg::block_on(async {
        let store = SqliteStore::open(&src).unwrap();
        store
            .put_record("zz.later", "k", Some("v".into()), RecordCondition::Any)
            .await
            .unwrap();
        store.close().await.unwrap();
    });

    // SQLite → file: owner-only, says it holds private keys, complete.
    let first = tmp.path().join("first.jsonl");
    let out = ok(claimdb(
        &[
            "export",
            "--data-dir",
            src.to_str().unwrap(),
            "-o",
            first.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(mode(&first), 0o600);
    assert!(
        stderr(&out).contains("private signing keys"),
        "{}",
        stderr(&out)
    );
    let lines = body(&first);
    assert!(lines[0].starts_with(r#"{"key_ring":"#), "{}", lines[0]);
    assert!(lines.iter().any(|l| l.contains("zz.later")));
    assert!(lines.iter().any(|l| l.contains("admin_key_sha256")));
    let end = json(lines.last().unwrap());
    assert_eq!(
        end,
        json!({"end": {"documents": 2, "records": end["end"]["records"], "key_ring": true}})
    );

    // file → PostgreSQL → file: the same lines.
    let pg_dir = tmp.path().join("pg-node");
    let pg = pg_env(&schema);
    let import = |file: &Path, dir: &Path, env: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["import", "--data-dir", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        claimdb(&args, env)
    };
    ok(import(&first, &pg_dir, &pg, &[]));
    let second = tmp.path().join("second.jsonl");
    ok(claimdb(
        &[
            "export",
            "--data-dir",
            pg_dir.to_str().unwrap(),
            "-o",
            second.to_str().unwrap(),
        ],
        &pg,
    ));
    assert_eq!(
        body(&second),
        lines,
        "PostgreSQL holds exactly what SQLite did"
    );

    // file → SQLite: identical to the source, the key file owner-only.
    let dst = tmp.path().join("dst");
    ok(import(&second, &dst, &[], &[]));
    assert_eq!(mode(&dst.join("issuer")), 0o700);
    assert_eq!(mode(&dst.join("issuer/keys.json")), 0o600);
    assert_eq!(sqlite_contents(&dst), sqlite_contents(&src));

    // Both restored servers accept the old tokens, refuse the revoked one, know the admin key.
    let mut pg_server_env = pg.clone();
    pg_server_env.extend(env);
    let server = Server::start_env(&pg_dir, &pg_server_env);
    check_restored(&server, &expect);
    drop(server);
    let server = Server::start_env(&dst, &env);
    check_restored(&server, &expect);
    drop(server);

    // A non-empty target is refused unless --merge asks to mix the backup in.
    let out = import(&first, &pg_dir, &pg, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    let out = ok(import(&first, &pg_dir, &pg, &["--merge"]));
    assert!(
        stderr(&out).contains("signing key ring of its own"),
        "{}",
        stderr(&out)
    );
}

/// A store written in-process (no server ran, so no key ring): one document and one record.
fn small_store(dir: &Path) {
    pg::block_on(async {
        let store = SqliteStore::open(dir).unwrap();
        let mut data = Map::new();
        data.insert("n".into(), Value::Int(1));
        store
            .commit(
                vec![Write::new(
                    DocPath::parse("a/1").unwrap(),
                    WriteOp::Set {
                        data,
                        transforms: vec![],
                    },
                )]
                .into(),
            )
            .await
            .unwrap();
        store
            .put_record("users", "u", Some("{}".into()), RecordCondition::Any)
            .await
            .unwrap();
        store.close().await.unwrap();
    });
}

fn is_empty(dir: &Path) -> bool {
    pg::block_on(async {
        let store = SqliteStore::open_read_only(dir).unwrap();
        let empty = store.scan(None, 1).await.unwrap().is_empty()
            && store.scan_records(None, 1).await.unwrap().is_empty();
        store.close().await.unwrap();
        empty
    })
}

/// A backup cut short (its end line missing) or damaged (counts that do not match) restores
/// nothing; an old document-only file is still read, with a warning that it holds documents
/// only; `-o` over an existing world-readable file leaves an owner-only one.
#[test]
fn truncated_backups_restore_nothing_and_old_files_still_import() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    small_store(&src);
    let file = tmp.path().join("backup.jsonl");
    std::fs::write(&file, "an older backup\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    ok(claimdb(
        &[
            "export",
            "--data-dir",
            src.to_str().unwrap(),
            "-o",
            file.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(mode(&file), 0o600, "replaced by an owner-only file");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "header, record, document, end: {text}");

    let import = |content: &str, name: &str| {
        let input = tmp.path().join(format!("{name}.jsonl"));
        std::fs::write(&input, content).unwrap();
        let target = tmp.path().join(name);
        let out = claimdb(
            &[
                "import",
                "--data-dir",
                target.to_str().unwrap(),
                input.to_str().unwrap(),
            ],
            &[],
        );
        (out, target)
    };
    let (out, target) = import(&lines[..3].join("\n"), "cut");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cut short"), "{}", stderr(&out));
    assert!(!target.join(claimdb_store::sqlite::DB_FILE).exists() || is_empty(&target));
    let damaged = text.replace(r#""documents":1"#, r#""documents":2"#);
    let (out, target) = import(&damaged, "damaged");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    assert!(!target.join(claimdb_store::sqlite::DB_FILE).exists() || is_empty(&target));

    // Version 1: the document lines alone.
    let (out, target) = import(&format!("{}\n", lines[2]), "v1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("version 1"), "{}", stderr(&out));
    assert!(stderr(&out).contains("only documents"), "{}", stderr(&out));
    pg::block_on(async {
        let store = SqliteStore::open_read_only(&target).unwrap();
        assert_eq!(store.scan(None, 10).await.unwrap().len(), 1);
        store.close().await.unwrap();
    });
}
