//! A damaged database file: found at start after an unclean stop, at run time by any statement,
//! and on demand by `SqliteStore::check`; once found, nothing more is written into the file.

use claimdb_store::{Documents, Records};
use std::path::Path;

use claimdb_model::{CollectionPath, DocPath, Map, Value};
use claimdb_store::sqlite::{DB_FILE, LOCK_FILE, Thoroughness};
use claimdb_store::{PageRequest, Query, SqliteStore, Store, StoreError, Write, WriteOp};

fn set(path: &str, n: i64) -> Write {
    let mut data = Map::new();
    data.insert("n".into(), Value::Int(n));
    data.insert(
        "text".into(),
        Value::String("x".repeat(300 + (n % 7) as usize * 50)),
    );
    Write::new(
        DocPath::parse(path).unwrap(),
        WriteOp::Set {
            data,
            transforms: vec![],
        },
    )
}

/// A store of a few megabytes, closed cleanly (everything in the database file, no WAL).
async fn filled(dir: &Path) {
    let store = SqliteStore::open(dir).unwrap();
    for chunk in 0..40 {
        let writes: Vec<_> = (0..100)
            .map(|i| set(&format!("docs/d{:05}", chunk * 100 + i), chunk * 100 + i))
            .collect();
        store.commit(writes.into()).await.unwrap();
    }
    store.close().await.unwrap();
}

/// Overwrites the middle third of the database file with garbage, page-aligned, as a failing
/// disk or a stray write would.
pub(crate) fn corrupt_middle(file: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(file).unwrap().len();
    let page = 4096;
    let (start, end) = (len / 3 / page * page, len * 2 / 3 / page * page);
    assert!(end > start + page, "the database is too small to corrupt");
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (start..end)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
}

fn checksum(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn is_data_loss(e: &StoreError) -> bool {
    matches!(e.root(), StoreError::DataLoss(m) if m.contains("claimdb check"))
}

/// A corrupt page went unnoticed: the store stayed ready, lists failed with a bare internal
/// error and writes were still accepted into the damaged file. Now the first statement that
/// meets the damage marks the store damaged: `ping` (hence `/readyz`) fails, writes are refused
/// before they reach SQLite, no checkpoint copies anything into the file, and the next start
/// refuses it.
#[tokio::test]
async fn damage_found_at_run_time_stops_every_write_into_the_file() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path()).await;
    let db = dir.path().join(DB_FILE);
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    // Cleanly closed: the next open runs no check, so the damage is met at run time.
    let store = SqliteStore::open(dir.path()).unwrap();
    store.ping().await.unwrap();
    corrupt_middle(&db);
    let (db_before, wal_before) = (checksum(&db), checksum(&wal));
    let everything = Query::collection(CollectionPath::parse("docs").unwrap());
    // One page over every document, so the scan meets the damaged page wherever it is.
    let all = PageRequest {
        size: usize::MAX,
        max_examined: usize::MAX,
        resume: None,
    };
    let err = store.query(&everything, &all).await.unwrap_err();
    assert!(is_data_loss(&err), "{err:?}");
    let err = store.ping().await.unwrap_err();
    assert!(is_data_loss(&err), "ping: {err:?}");
    let err = store
        .commit(vec![set("docs/new", 1)].into())
        .await
        .unwrap_err();
    assert!(is_data_loss(&err), "commit: {err:?}");
    let err = store
        .put_record(
            "ns",
            "k",
            Some("v".into()),
            claimdb_store::RecordCondition::Any,
        )
        .await
        .unwrap_err();
    assert!(is_data_loss(&err), "record: {err:?}");
    store.close().await.unwrap();
    assert_eq!(checksum(&db), db_before, "the database file was written to");
    assert_eq!(
        checksum(&wal),
        wal_before,
        "the write-ahead log was written to"
    );
    assert_ne!(
        std::fs::read_to_string(dir.path().join(LOCK_FILE))
            .unwrap()
            .trim(),
        "clean",
        "a damaged store must not be marked cleanly closed"
    );
    // So the next start checks, and refuses it.
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(
        is_data_loss(&err) && err.to_string().contains("quick_check"),
        "{err}"
    );
}

/// After an unclean stop the database is checked before anything is written; a clean close
/// skips the check (it costs a read of the whole file).
#[tokio::test]
async fn an_unclean_stop_is_followed_by_a_check_that_refuses_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path()).await;
    let db = dir.path().join(DB_FILE);
    // An unclean stop: dropped without `close`.
    drop(SqliteStore::open(dir.path()).unwrap());
    corrupt_middle(&db);
    let before = checksum(&db);
    let err = SqliteStore::open(dir.path()).unwrap_err();
    assert!(is_data_loss(&err), "{err:?}");
    assert!(err.to_string().contains("quick_check"), "{err}");
    assert_eq!(checksum(&db), before, "opening wrote into the damaged file");
}

/// `SqliteStore::check` (behind `claimdb check`): no problems for a sound file, problems for a
/// damaged one, `Unavailable` for a directory without a database.
#[tokio::test]
async fn check_reports_what_sqlite_finds() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path()).await;
    for thoroughness in [Thoroughness::Quick, Thoroughness::Full] {
        assert_eq!(
            SqliteStore::check(dir.path(), thoroughness).unwrap(),
            Vec::<String>::new()
        );
    }
    // While the store is open (a running server), too.
    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(
        SqliteStore::check(dir.path(), Thoroughness::Full)
            .unwrap()
            .is_empty()
    );
    store.close().await.unwrap();
    corrupt_middle(&dir.path().join(DB_FILE));
    match SqliteStore::check(dir.path(), Thoroughness::Full) {
        Ok(problems) => assert!(!problems.is_empty()),
        Err(e) => assert!(is_data_loss(&e), "{e:?}"),
    }
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        SqliteStore::check(empty.path(), Thoroughness::Full),
        Err(StoreError::Unavailable(_))
    ));
}
