//! A damaged database: refused at start after an unclean stop, contained at run time (not
//! ready, writes refused, nothing more written into the file), reported by `claimdb check`.

use std::time::Duration;

use super::{Captured, claimdb, contents, corrupt_middle, fill};
use crate::util::{Server, json, request};

/// A data directory with a few megabytes of documents, stopped cleanly, with everything in the
/// database file (the write-ahead log copied in and empty) — so that damaging the file damages
/// documents, whatever the server's checkpoint policy.
fn filled_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    fill(&server, "docs", 6000);
    assert!(server.stop_with("TERM").success());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use claimdb_store::Store as _;
        let store = claimdb_store::SqliteStore::open(dir.path()).unwrap();
        store.close().await.unwrap();
    });
    let wal = std::fs::metadata(dir.path().join("claimdb.sqlite3-wal")).map_or(0, |m| m.len());
    assert_eq!(wal, 0);
    dir
}

/// After a corrupted page the server started, `/readyz` said ready, lists failed with a bare
/// 500 and writes were still accepted. Now: a database damaged while the server was down after
/// an unclean stop (kill -9) is checked at start (`PRAGMA quick_check`), and the server refuses
/// to start, saying what to do — without writing into the file; `claimdb check` exits 1.
#[test]
fn a_database_damaged_after_an_unclean_stop_is_refused_at_start() {
    let dir = filled_dir();
    let db = dir.path().join("claimdb.sqlite3");
    let server = Server::start(dir.path());
    let (status, _) = request("PUT", &server.url("/v1/docs/c/one"), Some("{}"), &[]).unwrap();
    assert_eq!(status, 201);
    server.kill9();
    corrupt_middle(&db);
    let before = contents(&db);
    let mut serve = Captured::spawn(dir.path(), &[]);
    assert_eq!(serve.wait_exit(Duration::from_secs(60)), Some(2));
    let stderr = serve.stderr.lock().unwrap().join("\n");
    assert!(
        stderr.contains("quick_check") && stderr.contains("claimdb check"),
        "{stderr}"
    );
    assert_eq!(
        contents(&db),
        before,
        "starting wrote into the damaged file"
    );
    let (code, stdout, stderr) = claimdb(&["check"], dir.path());
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("DAMAGED"), "{stdout}");
}

/// Lists `docs` page by page until a page fails (the damage is in the middle of the file);
/// returns the failing response's body.
fn list_until_an_error(server: &Server) -> String {
    let mut token = String::new();
    loop {
        let (status, body) = server
            .get(&format!("/v1/docs/docs?page_size=1000{token}"))
            .unwrap();
        if status != 200 {
            assert_eq!(status, 500, "{body}");
            return body;
        }
        match json(&body)["next_page_token"].as_str() {
            Some(next) => token = format!("&page_token={next}"),
            None => panic!("every page of a damaged collection was read"),
        }
    }
}

/// Damage met at run time (the file is corrupted under a running server): the read that meets
/// it fails with `data-loss`, `/readyz` turns 503 with the reason, writes are refused with
/// `data-loss` before they reach the file, and neither the database file nor the write-ahead
/// log changes afterwards; the stop is not marked clean, so `claimdb check` and the next start
/// look at the file.
#[test]
fn damage_met_at_run_time_makes_the_server_unready_and_refuse_writes() {
    let dir = filled_dir();
    let db = dir.path().join("claimdb.sqlite3");
    let wal = dir.path().join("claimdb.sqlite3-wal");
    // Cleanly stopped: this start runs no check, so the damage is met at run time.
    let server = Server::start(dir.path());
    corrupt_middle(&db);
    let body = list_until_an_error(&server);
    let error = &json(&body)["error"];
    assert_eq!(error["code"], "data-loss", "{body}");
    assert!(
        error["message"].as_str().unwrap().contains("claimdb check"),
        "{body}"
    );
    let (status, body) = server.get("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("damaged"), "{body}");
    let (db_before, wal_before) = (contents(&db), contents(&wal));
    for (method, path, body) in [
        ("PUT", "/v1/docs/c/new", "{\"a\": 1}"),
        (
            "POST",
            "/v1/batch",
            "{\"writes\": [{\"op\": \"set\", \"path\": \"c/b\", \"data\": {}}]}",
        ),
    ] {
        let (status, text) = request(method, &server.url(path), Some(body), &[]).unwrap();
        assert_eq!(status, 500, "{method} {path}: {text}");
        assert_eq!(json(&text)["error"]["code"], "data-loss", "{text}");
    }
    // Background work (journal trimming, sweeps) writes nothing either.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(contents(&db), db_before, "the database file was written to");
    assert_eq!(
        contents(&wal),
        wal_before,
        "the write-ahead log was written to"
    );
    assert!(server.stop_with("TERM").success());
    assert_eq!(contents(&db), db_before, "the shutdown wrote into the file");
    let (code, stdout, _) = claimdb(&["check", "--quick"], dir.path());
    assert_eq!(code, Some(1), "{stdout}");
}

/// `claimdb check`: 0 for a sound database (also while the server runs), 2 when there is no
/// database to check.
#[test]
fn check_exits_0_for_a_sound_database_and_2_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    super::fill(&server, "docs", 500);
    let (code, stdout, stderr) = claimdb(&["check"], dir.path());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(": ok (integrity_check"), "{stdout}");
    drop(server);
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = claimdb(&["check"], empty.path());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no claimdb database"), "{stderr}");
}
