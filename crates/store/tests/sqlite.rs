//! Runs the backend-independent conformance suite against [`SqliteStore`], one temporary data
//! directory per test, plus SQLite-specific checks (reopening keeps data and counters).

use claimdb_store::{SqliteStore, Store, Write, WriteOp};

#[allow(
    clippy::unwrap_used,
    reason = "test setup; a failure should fail the test"
)]
async fn make() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (store, dir)
}

claimdb_store::conformance_tests!(make);

#[tokio::test]
async fn reopening_keeps_documents_and_versions_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let path = claimdb_model::DocPath::parse("c/a").unwrap();
    let write = || {
        Write::new(
            path.clone(),
            WriteOp::Set {
                data: claimdb_model::Map::new(),
                transforms: vec![],
            },
        )
    };
    let first = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let r = store.commit(vec![write()]).await.unwrap();
        store.close().await.unwrap();
        r
    };
    let store = SqliteStore::open(&dir.path().join(".")).unwrap();
    assert_eq!(
        store.get(&path).await.unwrap().unwrap().version,
        first.version
    );
    let second = store.commit(vec![write()]).await.unwrap();
    assert!(second.version > first.version);
    assert!(second.commit_time > first.commit_time);
    assert!(dir.path().join(claimdb_store::sqlite::DB_FILE).exists());
}
