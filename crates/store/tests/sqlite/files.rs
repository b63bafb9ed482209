//! What the SQLite store leaves on disk: owner-only permissions, and the clean-stop mark.

use claimdb_store::Documents;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use claimdb_model::{DocPath, Map};
use claimdb_store::sqlite::{DB_FILE, LOCK_FILE};
use claimdb_store::{SqliteStore, Store, Write, WriteOp};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Documents, sessions and refresh records were readable by every local user: the data
/// directory was created 0755 and the database, its `-wal` and `-shm` files and the lock file
/// 0644 (the process umask's defaults). Each must be private to the owner whatever the umask.
#[tokio::test]
async fn every_file_and_directory_the_store_creates_is_owner_only() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let store = SqliteStore::open(&dir).unwrap();
    let write = Write::new(
        DocPath::parse("c/a").unwrap(),
        WriteOp::Set {
            data: Map::new(),
            transforms: vec![],
        },
    );
    store.commit(vec![write].into()).await.unwrap();
    store.get(&DocPath::parse("c/a").unwrap()).await.unwrap();
    assert_eq!(mode(&dir), 0o700, "data directory");
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
        LOCK_FILE.to_string(),
    ] {
        assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
    }
    store.close().await.unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

/// The lock file tells the next start whether this run stopped cleanly: only `close` says so.
#[tokio::test]
async fn only_a_clean_close_marks_the_directory_clean() {
    let dir = tempfile::tempdir().unwrap();
    let lock = || std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(lock().trim(), std::process::id().to_string());
    store.close().await.unwrap();
    assert_eq!(lock().trim(), "clean");
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(lock().trim(), std::process::id().to_string());
    // Dropped without close (as in a crash): not clean.
    drop(store);
    assert_ne!(lock().trim(), "clean");
}
