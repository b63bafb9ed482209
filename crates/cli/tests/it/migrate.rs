//! `claimdb migrate` both ways between SQLite and PostgreSQL: documents (metadata included),
//! system records and the signing keys arrive intact and verified (tokens issued before verify
//! after); an interrupted run is refused without --resume, resumed with it, and --rollback
//! empties a target.

use claimdb_store::{Documents, Records};
use std::path::Path;
use std::process::{Command, Output};

use claimdb_model::{DocPath, Map, Value};
use claimdb_store::sqlite::SqliteStore;
use claimdb_store::{Document, Record, RecordCondition, Store, Write, WriteOp};

use crate::backup::{PUBLIC_URL, claimdb, mode, ok, pg_env};
use crate::pg;
use crate::util::{BIN, Server, request};

fn migrate(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("migrate")
        .args(args)
        .env_remove("CLAIMDB_CONFIG")
        .output()
        .unwrap()
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A source store with `n` documents in nested collections (a NUL, a big double, nested maps)
/// and a few records, written over several commits so versions differ.
fn seed(dir: &Path, n: usize) {
    pg::block_on(async {
        let store = SqliteStore::open(dir).unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(40) {
            let writes: Vec<Write> = chunk
                .iter()
                .map(|i| {
                    let mut data = Map::new();
                    data.insert("i".into(), Value::Int(*i as i64));
                    data.insert("s".into(), Value::String(format!("doc\u{0}{i}")));
                    data.insert("big".into(), Value::Double(1e20 + *i as f64));
                    let mut inner = Map::new();
                    inner.insert("tag".into(), Value::String(format!("t{}", i % 3)));
                    data.insert("m".into(), Value::Map(inner));
                    let path = if i % 5 == 0 {
                        format!("users/u{}/posts/p{i}", i % 7)
                    } else {
                        format!("items/i{i:04}")
                    };
                    Write::new(
                        DocPath::parse(&path).unwrap(),
                        WriteOp::Set {
                            data,
                            transforms: vec![],
                        },
                    )
                })
                .collect();
            store.commit(writes.into()).await.unwrap();
        }
        for (ns, key, value) in [
            ("users", "alice", r#"{"claims":{"role":"admin"}}"#),
            ("users", "bob", r#"{"claims":{}}"#),
            ("revoked", "jti-1", "1700000000"),
        ] {
            store
                .put_record(ns, key, Some(value.into()), RecordCondition::Any)
                .await
                .unwrap();
        }
        store.close().await.unwrap();
    });
}

/// Every document and record of a SQLite store.
fn contents(dir: &Path) -> (Vec<Document>, Vec<Record>) {
    pg::block_on(async {
        let store = SqliteStore::open(dir).unwrap();
        let docs = store.scan(None, 100_000).await.unwrap();
        let records = store.scan_records(None, 100_000).await.unwrap();
        store.close().await.unwrap();
        (docs, records)
    })
}

#[test]
fn sqlite_to_postgres_and_back_with_an_interrupted_run_resumed() {
    let Some(schema) = pg::schema("migrate") else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    seed(source.path(), 230);
    let from = format!("sqlite:{}", source.path().display());
    let to = schema.spec();

    // Interrupted: stops after 70 documents.
    let out = migrate(&["--from", &from, "--to", &to, "--max-documents", "70"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    // A non-empty target without --resume or --rollback is refused, changing nothing.
    let out = migrate(&["--from", &from, "--to", &to]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    // Resumed: completes and verifies.
    let out = migrate(&["--from", &from, "--to", &to, "--resume"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("resuming after"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("verified: the target holds the same 230 documents and 3 records"),
        "{}",
        stderr(&out)
    );

    // And back into a fresh SQLite store: identical to the original, metadata included.
    let back = tempfile::tempdir().unwrap();
    let out = migrate(&[
        "--from",
        &to,
        "--to",
        &format!("sqlite:{}", back.path().display()),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (docs, records) = contents(source.path());
    let (docs_back, records_back) = contents(back.path());
    assert_eq!(docs.len(), 230);
    assert_eq!(docs_back, docs);
    assert_eq!(records_back, records);
    // Versions continue above the migrated ones in the target.
    pg::block_on(async {
        let store = SqliteStore::open(back.path()).unwrap();
        let top = docs.iter().map(|d| d.version).max().unwrap();
        let r = store
            .commit(
                vec![Write::new(
                    DocPath::parse("items/new").unwrap(),
                    WriteOp::Delete,
                )]
                .into(),
            )
            .await
            .unwrap();
        assert!(r.version > top);
        store.close().await.unwrap();
    });
}

#[test]
fn rollback_empties_the_target_and_a_mismatch_fails_verification() {
    let Some(schema) = pg::schema("rollback") else {
        return;
    };
    let source = tempfile::tempdir().unwrap();
    seed(source.path(), 50);
    let from = format!("sqlite:{}", source.path().display());
    let to = schema.spec();
    let out = migrate(&["--from", &from, "--to", &to, "--max-documents", "20"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = migrate(&["--to", &to, "--rollback"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Empty again: a plain run is accepted and completes.
    let out = migrate(&["--from", &from, "--to", &to]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A target holding a document the source lacks, after every source path: resuming copies
    // nothing, and verification reports the difference with exit code 1.
    let other = tempfile::tempdir().unwrap();
    seed(other.path(), 10);
    pg::block_on(async {
        let store = SqliteStore::open(other.path()).unwrap();
        store
            .commit(
                vec![Write::new(
                    DocPath::parse("zzz/extra").unwrap(),
                    WriteOp::Set {
                        data: Map::new(),
                        transforms: vec![],
                    },
                )]
                .into(),
            )
            .await
            .unwrap();
        store.close().await.unwrap();
    });
    let out = migrate(&[
        "--from",
        &from,
        "--to",
        &format!("sqlite:{}", other.path().display()),
        "--resume",
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("verification failed"),
        "{}",
        stderr(&out)
    );

    // Usage errors are exit code 2.
    assert_eq!(code(&migrate(&["--from", "mysql://x", "--to", &to])), 2);
    assert_eq!(code(&migrate(&["--from", &from, "--to", &from])), 2);
}

/// `GET /v1/me` with `token`: the status.
fn me(server: &Server, token: &str) -> u16 {
    request(
        "GET",
        &server.url("/v1/me"),
        None,
        &[("authorization", &format!("Bearer {token}"))],
    )
    .unwrap()
    .0
}

/// Regression (issue 13, item 4): SQLite → PostgreSQL left the key file behind, so the
/// PostgreSQL node made a new key and every earlier token failed with `unknown-key`;
/// PostgreSQL → SQLite copied the key ring as a record the SQLite server ignores, into the
/// world-readable database file. Now every token issued before a migration verifies after it,
/// both ways — with a rotated (retired) key too — and the keys land owner-only.
#[test]
fn tokens_issued_before_a_migration_verify_after_it_in_both_directions() {
    let Some(schema) = pg::schema("migkeys") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let env = [("CLAIMDB_PUBLIC_URL", PUBLIC_URL)];
    let server = Server::start_env(&src, &env);
    assert!(server.stop_with("TERM").success());
    let mint = |dir: &Path, env: &[(&str, &str)]| {
        let out = ok(claimdb(
            &[
                "token",
                "mint",
                "--uid",
                "bob",
                "--data-dir",
                dir.to_str().unwrap(),
            ],
            env,
        ));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let from_sqlite = mint(&src, &[]);

    // SQLite → PostgreSQL.
    let out = migrate(&[
        "--from",
        &format!("sqlite:{}", src.display()),
        "--to",
        &schema.spec(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the signing key ring"),
        "{}",
        stderr(&out)
    );
    let pg = pg_env(&schema);
    let pg_dir = tmp.path().join("pg-node");
    let mut node_env = pg.clone();
    node_env.push(("CLAIMDB_PUBLIC_URL", PUBLIC_URL));
    let server = Server::start_env(&pg_dir, &node_env);
    assert_eq!(
        me(&server, &from_sqlite),
        200,
        "an SQLite-era token on PostgreSQL"
    );
    drop(server);
    // A rotation on PostgreSQL: the old key is retired, a new one signs.
    ok(claimdb(
        &[
            "token",
            "rotate-keys",
            "--data-dir",
            pg_dir.to_str().unwrap(),
        ],
        &pg,
    ));
    let from_postgres = mint(&pg_dir, &pg);

    // PostgreSQL → SQLite.
    let back = tmp.path().join("back");
    let back_spec = format!("sqlite:{}", back.display());
    let out = migrate(&["--from", &schema.spec(), "--to", &back_spec]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(mode(&back.join("issuer")), 0o700);
    assert_eq!(mode(&back.join("issuer/keys.json")), 0o600);
    let (_, records) = contents(&back);
    assert!(
        records.iter().all(|r| r.namespace != "issuer_keys"),
        "the key ring must not sit in the SQLite database: {records:?}"
    );
    let server = Server::start_env(&back, &env);
    assert_eq!(me(&server, &from_sqlite), 200, "a token of the retired key");
    assert_eq!(
        me(&server, &from_postgres),
        200,
        "a token of the active key"
    );
    drop(server);

    // A rollback empties the target, its key file included.
    let out = migrate(&["--to", &back_spec, "--rollback"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!back.join("issuer/keys.json").exists());
    let out = migrate(&["--from", &schema.spec(), "--to", &back_spec]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
