//! The records the sign-in flows keep, for tests: a SQLite store in a temporary directory (the
//! directory goes when the returned guard is dropped, so keep it as long as the store).

use std::sync::Arc;

use claimdb_store::{SqliteStore, Store};

pub(crate) fn temp_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (Arc::new(store), dir)
}
