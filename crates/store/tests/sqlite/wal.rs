//! The write-ahead log stays under its bound under concurrent writes and queries, and is
//! truncated by a clean close.

use claimdb_store::Documents;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use claimdb_model::{CollectionPath, DocPath, FieldPath, Map, Value};
use claimdb_store::sqlite::{DB_FILE, SqliteOptions};
use claimdb_store::{Filter, Op, PageRequest, Query, SqliteStore, Store, Write, WriteOp};

fn set(path: String, n: i64) -> Write {
    let mut data = Map::new();
    data.insert("n".into(), Value::Int(n));
    data.insert("owner".into(), Value::String(format!("u{}", n % 50)));
    data.insert("text".into(), Value::String("w".repeat(400)));
    Write::new(
        DocPath::parse(&path).unwrap(),
        WriteOp::Set {
            data,
            transforms: vec![],
        },
    )
}

/// Writers and readers together pushed the WAL to 2.6 GB (database: 358 MB): checkpoints could
/// never restart the log while some read held a snapshot, and the file never shrank, not even
/// after a clean shutdown. With a 4 MB bound, concurrent single writes, 10-write batches and
/// queries that each hold a snapshot must leave the file under 4 MB at every moment, and a
/// clean close must leave it empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_under_its_bound_under_writes_and_queries() {
    const BOUND: u64 = 4 * 1024 * 1024;
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions::default().with_wal_max_bytes(BOUND);
    let store = SqliteStore::open_with(dir.path(), options).unwrap();
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let stop = Arc::new(AtomicBool::new(false));
    let largest = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, largest, wal) = (stop.clone(), largest.clone(), wal.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
                largest.fetch_max(len, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let queries = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for r in 0..2 {
        let (store, stop, queries) = (store.clone(), stop.clone(), queries.clone());
        readers.push(tokio::spawn(async move {
            let mut i = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let mut q = Query::collection(CollectionPath::parse("w").unwrap());
                q.filters.push(Filter {
                    field: FieldPath::parse("n").unwrap(),
                    op: Op::Ge,
                    value: Value::Int(i % 5000),
                });
                q.limit = Some(200);
                store.query(&q, &PageRequest::first(200)).await.unwrap();
                queries.fetch_add(1, Ordering::Relaxed);
                i += 997 + r;
            }
        }));
    }
    let mut writers = Vec::new();
    for w in 0..8i64 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..150i64 {
                let n = w * 100_000 + i * 11;
                if i % 2 == 0 {
                    store
                        .commit(vec![set(format!("w/d{n}"), n)].into())
                        .await
                        .unwrap();
                } else {
                    let batch: Vec<_> = (0..10)
                        .map(|k| set(format!("w/d{}", n + k), n + k))
                        .collect();
                    store.commit(batch.into()).await.unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    sampler.join().unwrap();
    let largest = largest.load(Ordering::Relaxed);
    let db = std::fs::metadata(dir.path().join(DB_FILE)).unwrap().len();
    eprintln!(
        "largest WAL {largest} bytes, database {db} bytes, {} queries",
        queries.load(Ordering::Relaxed)
    );
    assert!(queries.load(Ordering::Relaxed) > 0);
    // The load wrote several times the bound through the log.
    assert!(
        db > 2 * BOUND,
        "the load was too small to test anything ({db} bytes)"
    );
    assert!(
        largest <= BOUND,
        "the WAL reached {largest} bytes, over {BOUND}"
    );
    store.close().await.unwrap();
    assert_eq!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()),
        0,
        "WAL after close"
    );
}
