//! Runs the backend-independent conformance suite against [`SqliteStore`] (durable, and not
//! durable as emulator mode opens it), one temporary data directory per test, plus SQLite-specific checks (reopening keeps data and counters, the history of past versions on disk, and
//! acknowledged writes survive SIGKILL).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code, including helpers outside #[test] functions: a failure fails the test"
)]

use claimdb_store::{Documents, Records};
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

/// The same suite on a store that is not durable (emulator mode's throwaway data): it differs
/// only in not fsyncing, so every behaviour must be the same.
mod not_durable {
    use claimdb_store::SqliteStore;
    use claimdb_store::sqlite::SqliteOptions;

    #[allow(
        clippy::unwrap_used,
        reason = "test setup; a failure should fail the test"
    )]
    async fn make() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::default().with_durable(false);
        let store = SqliteStore::open_with(dir.path(), options).unwrap();
        (store, dir)
    }

    claimdb_store::conformance_tests!(make);
}

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
        let r = store.commit(vec![write()].into()).await.unwrap();
        store.close().await.unwrap();
        r
    };
    let store = SqliteStore::open(&dir.path().join(".")).unwrap();
    assert_eq!(
        store.get(&path).await.unwrap().unwrap().version,
        first.version
    );
    let second = store.commit(vec![write()].into()).await.unwrap();
    assert!(second.version > first.version);
    assert!(second.commit_time > first.commit_time);
    assert!(dir.path().join(claimdb_store::sqlite::DB_FILE).exists());
}

/// Run as the child of `acknowledged_writes_survive_kill_9`: 16 tasks write documents forever,
/// printing `ack <path> <version>` after each acknowledged commit.
fn kill_9_child(dir: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = std::sync::Arc::new(SqliteStore::open(std::path::Path::new(dir)).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..16 {
            let store = store.clone();
            tasks.spawn(async move {
                for n in 0.. {
                    let path = claimdb_model::DocPath::parse(&format!("k/w{t}-{n}")).unwrap();
                    let mut data = claimdb_model::Map::new();
                    data.insert("n".into(), claimdb_model::Value::Int(n));
                    let r = store
                        .commit(
                            vec![Write::new(
                                path.clone(),
                                WriteOp::Set {
                                    data,
                                    transforms: vec![],
                                },
                            )]
                            .into(),
                        )
                        .await
                        .unwrap();
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {path} {}", r.version).unwrap();
                    out.flush().unwrap();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    });
}

/// Every write the store acknowledged is there after the process is killed with SIGKILL in the
/// middle of a stream of concurrent writes (the acknowledgement comes after the WAL sync).
#[test]
fn acknowledged_writes_survive_kill_9() {
    if let Ok(dir) = std::env::var("CLAIMDB_STORE_KILL9_CHILD") {
        kill_9_child(&dir);
        return;
    }
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "acknowledged_writes_survive_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CLAIMDB_STORE_KILL9_CHILD", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, acks) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut acked = Vec::new();
    while acked.len() < 300 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = acks
            .recv_timeout(left)
            .expect("the child stopped acknowledging writes");
        if let Some(rest) = line.strip_prefix("ack ") {
            let (path, version) = rest.split_once(' ').unwrap();
            acked.push((path.to_string(), version.parse::<u64>().unwrap()));
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(dir.path()).unwrap();
        for (path, version) in &acked {
            let doc = store
                .get(&claimdb_model::DocPath::parse(path).unwrap())
                .await
                .unwrap();
            let doc = doc.unwrap_or_else(|| panic!("acknowledged {path} was lost"));
            assert!(doc.version >= *version);
        }
    });
}

#[tokio::test]
async fn one_process_at_a_time_writes_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let path = claimdb_model::DocPath::parse("c/a").unwrap();
    let set = Write::new(
        path.clone(),
        WriteOp::Set {
            data: claimdb_model::Map::new(),
            transforms: vec![],
        },
    );
    store.commit(vec![set].into()).await.unwrap();
    // A second writer (another process, or this one) is refused, naming the holder.
    let err = SqliteStore::open(dir.path()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, claimdb_store::StoreError::Unavailable(_))
            && message.contains("in use by another claimdb process")
            && message.contains(&std::process::id().to_string()),
        "{message}"
    );
    // A reader opens alongside it and sees its writes; it cannot write.
    let reader = SqliteStore::open_read_only(dir.path()).unwrap();
    assert!(reader.get(&path).await.unwrap().is_some());
    let put = reader
        .put_record(
            "ns",
            "k",
            Some("v".into()),
            claimdb_store::RecordCondition::Any,
        )
        .await
        .unwrap_err();
    assert!(put.to_string().contains("read-only"), "{put}");
    // The writer's later record writes are seen by the reader (it keeps no records cache).
    store
        .put_record(
            "ns",
            "k",
            Some("v1".into()),
            claimdb_store::RecordCondition::Any,
        )
        .await
        .unwrap();
    assert_eq!(
        reader.get_record("ns", "k").await.unwrap().as_deref(),
        Some("v1")
    );
    store
        .put_record(
            "ns",
            "k",
            Some("v2".into()),
            claimdb_store::RecordCondition::Any,
        )
        .await
        .unwrap();
    assert_eq!(
        reader.get_record("ns", "k").await.unwrap().as_deref(),
        Some("v2")
    );
    reader.close().await.unwrap();
    // Closing releases the lock even while clones of the handle live on.
    let clone = store.clone();
    store.close().await.unwrap();
    let again = SqliteStore::open(dir.path()).unwrap();
    assert!(again.get(&path).await.unwrap().is_some());
    drop(clone);
    // Read-only needs an existing database.
    let empty = tempfile::tempdir().unwrap();
    let err = SqliteStore::open_read_only(empty.path()).unwrap_err();
    assert!(err.to_string().contains("no claimdb database"), "{err}");
}

/// Regression: `migrate::rollback_empties_the_target…` (claimdb's CLI tests) failed once with
/// "data directory in use by another claimdb process" right after the test itself had closed
/// the store. The lock was a `flock`, which a child process forked by any other thread holds
/// until it execs, so an immediate reopen failed while another thread started a program (a third
/// of the time with one thread spawning `/bin/true` in a loop). The lock now belongs to the
/// process and is not inherited: every reopen succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_store_reopens_at_once_while_other_threads_start_programs() {
    let dir = tempfile::tempdir().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::process::Command::new("true").status();
            }
        })
    };
    let mut failures = Vec::new();
    for _ in 0..100 {
        match SqliteStore::open(dir.path()) {
            Ok(store) => store.close().await.unwrap(),
            Err(e) => failures.push(e.to_string()),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    spawner.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of 100 reopens failed: {:?}",
        failures.len(),
        failures.first()
    );
}

/// Within one process the lock still excludes a second writer, and a refused open does not
/// release the holder's lock (closing any descriptor of a record-locked file would): another
/// process is still refused afterwards.
#[test]
fn a_refused_second_open_in_the_same_process_keeps_the_first_ones_lock() {
    if let Ok(dir) = std::env::var("CLAIMDB_STORE_LOCK_CHILD") {
        // The child: report whether the directory could be opened.
        match SqliteStore::open(std::path::Path::new(&dir)) {
            Ok(_) => println!("child opened"),
            Err(e) => println!("child refused: {e}"),
        }
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    for _ in 0..3 {
        assert!(SqliteStore::open(dir.path()).is_err());
        // Through another name of the same directory, too.
        assert!(SqliteStore::open(&dir.path().join(".")).is_err());
    }
    let child = || {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_refused_second_open_in_the_same_process_keeps_the_first_ones_lock",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CLAIMDB_STORE_LOCK_CHILD", dir.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = child();
    assert!(
        said.contains("child refused") && said.contains("in use by another claimdb process"),
        "{said}"
    );
    rt.block_on(store.close()).unwrap();
    assert!(child().contains("child opened"));
}

/// Records are cached by the store; every write is seen by the next read, absent or present,
/// including after conditional writes that did not apply and deletes.
#[tokio::test]
async fn cached_records_follow_every_write() {
    use claimdb_store::RecordCondition;
    let (store, _dir) = make().await;
    for round in 0..50 {
        let key = format!("u{}", round % 5);
        let before = store.get_record("users", &key).await.unwrap();
        // Read twice (the second read is a cache hit) around each change.
        assert_eq!(store.get_record("users", &key).await.unwrap(), before);
        let value = format!("v{round}");
        let applied = store
            .put_record(
                "users",
                &key,
                Some(value.clone()),
                match &before {
                    Some(v) => RecordCondition::Equals(v.clone()),
                    None => RecordCondition::Absent,
                },
            )
            .await
            .unwrap();
        assert!(applied);
        assert_eq!(
            store.get_record("users", &key).await.unwrap(),
            Some(value.clone())
        );
        // A condition that does not hold changes nothing.
        let applied = store
            .put_record("users", &key, Some("nope".into()), RecordCondition::Absent)
            .await
            .unwrap();
        assert!(!applied);
        assert_eq!(store.get_record("users", &key).await.unwrap(), Some(value));
        if round % 3 == 0 {
            store
                .put_record("users", &key, None, RecordCondition::Any)
                .await
                .unwrap();
            assert_eq!(store.get_record("users", &key).await.unwrap(), None);
        }
    }
}

/// Concurrent readers never see a record older than the last acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_records_are_never_older_than_an_acknowledged_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let (store, _dir) = make().await;
    let acked = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let (store, acked) = (store.clone(), acked.clone());
        readers.push(tokio::spawn(async move {
            for _ in 0..3000 {
                let floor = acked.load(Ordering::Acquire);
                let seen: u64 = store
                    .get_record("users", "alice")
                    .await
                    .unwrap()
                    .map_or(0, |v| v.parse().unwrap());
                assert!(seen >= floor, "read {seen} after {floor} was acknowledged");
                tokio::task::yield_now().await;
            }
        }));
    }
    for i in 1..=300u64 {
        store
            .put_record(
                "users",
                "alice",
                Some(i.to_string()),
                claimdb_store::RecordCondition::Any,
            )
            .await
            .unwrap();
        acked.store(i, Ordering::Release);
    }
    for r in readers {
        r.await.unwrap();
    }
}

/// Journal lines commit with their writes (all or nothing), keep commit order, and trimming
/// removes exactly the lines up to the given number.
#[tokio::test]
async fn journal_lines_commit_with_their_writes() {
    use claimdb_store::{Precondition, ReadCheck};
    let (store, _dir) = make().await;
    assert!(store.capabilities().journal);
    let path = claimdb_model::DocPath::parse("c/a").unwrap();
    let set = |precondition| {
        let mut w = Write::new(
            path.clone(),
            WriteOp::Set {
                data: claimdb_model::Map::new(),
                transforms: vec![],
            },
        );
        w.precondition = precondition;
        w
    };
    store
        .commit(claimdb_store::Commit {
            checks: vec![],
            writes: vec![set(Precondition::None)],
            journal: vec!["one".into(), "two".into()],
        })
        .await
        .unwrap();
    // A failed commit (precondition, then read check) stores none of its lines.
    store
        .commit(claimdb_store::Commit {
            checks: vec![],
            writes: vec![set(Precondition::Missing)],
            journal: vec!["lost".into()],
        })
        .await
        .unwrap_err();
    let stale = ReadCheck {
        path: path.clone(),
        version: None,
    };
    let err = store
        .commit(claimdb_store::Commit {
            checks: vec![stale],
            writes: vec![set(Precondition::None)],
            journal: vec!["lost".into()],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, claimdb_store::StoreError::Aborted(_)),
        "{err:?}"
    );
    store
        .commit(claimdb_store::Commit {
            checks: vec![],
            writes: vec![set(Precondition::None)],
            journal: vec!["three".into()],
        })
        .await
        .unwrap();
    let lines = store.journal(0, 100).await.unwrap();
    let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    assert!(lines.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(store.journal_last().await.unwrap(), lines[2].0);
    assert_eq!(
        store.journal(lines[0].0, 1).await.unwrap(),
        vec![lines[1].clone()]
    );
    store.trim_journal(lines[1].0).await.unwrap();
    assert_eq!(store.journal(0, 100).await.unwrap(), vec![lines[2].clone()]);
    // Lines survive a restart until trimmed.
    let dir = _dir.path().to_path_buf();
    store.close().await.unwrap();
    let store = SqliteStore::open(&dir).unwrap();
    assert_eq!(store.journal(0, 100).await.unwrap(), vec![lines[2].clone()]);
    store
        .trim_journal(store.journal_last().await.unwrap())
        .await
        .unwrap();
    assert!(store.journal(0, 100).await.unwrap().is_empty());
    assert_eq!(store.journal_last().await.unwrap(), 0);
}

/// Concurrent readers (whose read transactions are reused between reads) never see a document
/// older than the last acknowledged write, alone or through a multi-get or a query.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_are_never_older_than_an_acknowledged_write() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let (store, _dir) = make().await;
    let path = claimdb_model::DocPath::parse("c/a").unwrap();
    let write = |n: i64| {
        let mut data = claimdb_model::Map::new();
        data.insert("n".into(), claimdb_model::Value::Int(n));
        Write::new(
            path.clone(),
            WriteOp::Set {
                data,
                transforms: vec![],
            },
        )
    };
    store.commit(vec![write(0)].into()).await.unwrap();
    let acked = Arc::new(AtomicI64::new(0));
    let n_of = |doc: &claimdb_store::Document| match doc.data.get("n") {
        Some(claimdb_model::Value::Int(n)) => *n,
        other => panic!("unexpected {other:?}"),
    };
    let mut readers = Vec::new();
    for r in 0..4 {
        let (store, acked, path) = (store.clone(), acked.clone(), path.clone());
        readers.push(tokio::spawn(async move {
            let query = claimdb_store::Query::collection(path.parent());
            for i in 0..2000 {
                let floor = acked.load(Ordering::Acquire);
                let seen = match (r + i) % 3 {
                    0 => n_of(&store.get(&path).await.unwrap().unwrap()),
                    1 => n_of(
                        store.get_many(std::slice::from_ref(&path)).await.unwrap()[0]
                            .as_ref()
                            .unwrap(),
                    ),
                    _ => n_of(
                        &store
                            .query(&query, &claimdb_store::PageRequest::first(10))
                            .await
                            .unwrap()
                            .documents[0],
                    ),
                };
                assert!(seen >= floor, "read {seen} after {floor} was acknowledged");
                tokio::task::yield_now().await;
            }
        }));
    }
    for n in 1..=300 {
        store.commit(vec![write(n)].into()).await.unwrap();
        acked.store(n, Ordering::Release);
    }
    for r in readers {
        r.await.unwrap();
    }
}

// SQLite-specific behaviour beyond the conformance suite, one file per concern.
#[path = "sqlite/damage.rs"]
mod damage;
#[path = "sqlite/files.rs"]
mod files;
#[path = "sqlite/history.rs"]
mod history;
#[path = "sqlite/wal.rs"]
mod wal;
