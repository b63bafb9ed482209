//! Runs the backend-independent conformance suite against [`SqliteStore`], one temporary data
//! directory per test, plus SQLite-specific checks (reopening keeps data and counters, and
//! acknowledged writes survive SIGKILL).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code, including helpers outside #[test] functions: a failure fails the test"
)]

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
                        .commit(vec![Write::new(
                            path.clone(),
                            WriteOp::Set {
                                data,
                                transforms: vec![],
                            },
                        )])
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
