//! The SQLite store's history of past versions beyond the conformance suite: what is on disk
//! (rows kept only when history is on, pruned past the retention in the background), the
//! `history_from` mark across reopenings with history switched off and on, a database made
//! before history existed, and restore.

use std::path::Path;
use std::time::Duration;

use claimdb_model::{DocPath, Map, Timestamp, Value};
use claimdb_store::sqlite::{DB_FILE, SqliteOptions};
use claimdb_store::{CommitResult, Documents, SqliteStore, Store, StoreError, Write, WriteOp};

fn set(path: &str, v: i64) -> Write {
    Write::new(
        DocPath::parse(path).unwrap(),
        WriteOp::Set {
            data: Map::from([("v".to_string(), Value::Int(v))]),
            transforms: vec![],
        },
    )
}

async fn commit(store: &SqliteStore, writes: Vec<Write>) -> CommitResult {
    tokio::time::sleep(Duration::from_millis(2)).await;
    store.commit(writes.into()).await.unwrap()
}

fn open(dir: &Path, retention: Duration) -> SqliteStore {
    SqliteStore::open_with(
        dir,
        SqliteOptions::default().with_history_retention(retention),
    )
    .unwrap()
}

/// Counts rows of `history` and reads `history_from` straight from the file (a second reader).
fn on_disk(dir: &Path) -> (i64, Option<i64>) {
    let conn = rusqlite::Connection::open_with_flags(
        dir.join(DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let rows = conn
        .query_row("SELECT count(*) FROM history", [], |r| r.get(0))
        .unwrap();
    let from = conn
        .query_row(
            "SELECT (SELECT value FROM meta WHERE name = 'history_from')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    (rows, from)
}

fn before(t: Timestamp) -> Timestamp {
    Timestamp::from_micros(t.micros() - 1).unwrap()
}

fn v(doc: &Option<claimdb_store::Document>) -> Option<&Value> {
    doc.as_ref().and_then(|d| d.data.get("v"))
}

#[tokio::test]
async fn without_history_nothing_is_kept_and_past_reads_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Duration::ZERO);
    commit(&store, vec![set("c/a", 1)]).await;
    let c2 = commit(&store, vec![set("c/a", 2)]).await;
    let refused = store
        .get_at(&[DocPath::parse("c/a").unwrap()], c2.commit_time)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::FailedPrecondition(m) if m.contains("history_retention_secs = 0")),
        "{refused:?}"
    );
    assert_eq!(on_disk(dir.path()), (0, None));
    store.close().await.unwrap();
}

/// Rows older than the retention go in the background, on the writer's next group at least a
/// second later, and `history_from` moves past them; newer rows stay readable.
#[tokio::test]
async fn history_past_the_retention_is_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Duration::from_secs(1));
    let a = DocPath::parse("c/a").unwrap();
    let c1 = commit(&store, vec![set("c/a", 1)]).await;
    let c2 = commit(&store, vec![set("c/a", 2)]).await;
    assert_eq!(on_disk(dir.path()).0, 1, "version 1 kept");
    let got = store
        .get_at(std::slice::from_ref(&a), before(c2.commit_time))
        .await
        .unwrap();
    assert_eq!(v(&got[0]), Some(&Value::Int(1)));
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    // The read is now older than the retention.
    let old = store
        .get_at(std::slice::from_ref(&a), c1.commit_time)
        .await
        .unwrap_err();
    assert!(
        matches!(&old, StoreError::FailedPrecondition(m) if m.contains("1 second")),
        "{old:?}"
    );
    let c3 = commit(&store, vec![set("c/a", 3)]).await;
    let c4 = commit(&store, vec![set("c/a", 4)]).await;
    let (rows, from) = on_disk(dir.path());
    assert_eq!(rows, 2, "version 1 pruned, versions 2 and 3 kept");
    assert_eq!(
        from,
        Some(c2.commit_time.micros()),
        "history_from past the pruned row"
    );
    let got = store.get_at(&[a], before(c4.commit_time)).await.unwrap();
    assert_eq!(v(&got[0]), Some(&Value::Int(3)));
    assert!(c3.commit_time < c4.commit_time);
    store.close().await.unwrap();
}

/// `history_from` is when history began to be kept without a break: kept across a restart
/// with history on, gone with history off, and the reopening time when it is on again.
#[tokio::test]
async fn history_from_follows_the_setting_across_reopenings() {
    let dir = tempfile::tempdir().unwrap();
    let a = DocPath::parse("c/a").unwrap();
    let store = open(dir.path(), Duration::from_secs(3600));
    let first = on_disk(dir.path()).1.unwrap();
    let c1 = commit(&store, vec![set("c/a", 1)]).await;
    commit(&store, vec![set("c/a", 2)]).await;
    store.close().await.unwrap();
    drop(store);

    let store = open(dir.path(), Duration::from_secs(3600));
    assert_eq!(on_disk(dir.path()).1, Some(first), "kept without a break");
    let got = store
        .get_at(std::slice::from_ref(&a), c1.commit_time)
        .await
        .unwrap();
    assert_eq!(v(&got[0]), Some(&Value::Int(1)));
    store.close().await.unwrap();
    drop(store);

    let store = open(dir.path(), Duration::ZERO);
    assert_eq!(on_disk(dir.path()).1, None);
    let c3 = commit(&store, vec![set("c/a", 3)]).await;
    store.close().await.unwrap();
    drop(store);

    let store = open(dir.path(), Duration::from_secs(3600));
    let again = on_disk(dir.path()).1.unwrap();
    assert!(
        again > c3.commit_time.micros(),
        "history begins again at the reopening"
    );
    // Version 2 was replaced while no history was kept: a read then is refused, not wrong.
    let refused = store.get_at(&[a], c3.commit_time).await.unwrap_err();
    assert!(
        matches!(refused, StoreError::FailedPrecondition(_)),
        "{refused:?}"
    );
    store.close().await.unwrap();
}

/// A database made before history existed gains the table on its first open, with its history
/// starting then.
#[tokio::test]
async fn a_database_from_before_history_gains_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    commit(&store, vec![set("c/a", 1)]).await;
    store.close().await.unwrap();
    drop(store);
    {
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch("DROP TABLE history; DELETE FROM meta WHERE name = 'history_from';")
            .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let (rows, from) = on_disk(dir.path());
    assert_eq!(rows, 0);
    let from = Timestamp::from_micros(from.unwrap()).unwrap();
    let a = DocPath::parse("c/a").unwrap();
    assert!(
        store
            .get_at(std::slice::from_ref(&a), before(from))
            .await
            .is_err()
    );
    let c2 = commit(&store, vec![set("c/a", 2)]).await;
    let got = store.get_at(&[a], before(c2.commit_time)).await.unwrap();
    assert_eq!(v(&got[0]), Some(&Value::Int(1)));
    store.close().await.unwrap();
}

/// Restored documents carry their own times and replace without history: reads before the
/// restore are refused from then on.
#[tokio::test]
async fn a_restore_moves_the_history_start_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let c1 = commit(&store, vec![set("c/a", 1)]).await;
    let mut doc = c1.results[0].document.clone().unwrap();
    doc.data.insert("v".into(), Value::Int(9));
    store.restore(vec![doc]).await.unwrap();
    let a = DocPath::parse("c/a").unwrap();
    let refused = store
        .get_at(std::slice::from_ref(&a), c1.commit_time)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::FailedPrecondition(_)),
        "{refused:?}"
    );
    tokio::time::sleep(Duration::from_millis(2)).await;
    let got = store.get_at(&[a], Timestamp::now()).await.unwrap();
    assert_eq!(v(&got[0]), Some(&Value::Int(9)));
    store.close().await.unwrap();
}
