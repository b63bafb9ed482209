//! Store API benchmarks of the SQLite backend (criterion): an equality query on one field at
//! 10^3, 10^5 and 10^6 documents (each query matches 10 documents, so a flat time means the cost
//! does not grow with the collection), the first page of 20 of a match holding 1/7 of the
//! collection, point reads at 10^3 and 10^6 documents, and durable
//! single-document writes with 1, 32, 64 and 256 concurrent writers (group commit).
//!
//! Datasets are built once with `restore` under the target's tmp directory and reused by later
//! runs. Before measuring, the database file is read once so the OS page cache holds it: the
//! numbers measure the store, not this VM's disk (which proactively drops cold pages; cold, a
//! query at 10^6 pays ~10-20 random disk reads, about 2.6 ms here). Run: `cargo bench -p claimdb-store`.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark; any failure should abort it"
)]

use claimdb_store::Documents;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use claimdb_model::{CollectionPath, DocPath, FieldPath, Map, Timestamp, Value};
use claimdb_store::query::limits::MAX_PAGE_SIZE;
use claimdb_store::{Document, Filter, Op, PageRequest, Query, SqliteStore, Store, Write, WriteOp};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];
/// Each value of `k` is held by this many documents, at every size.
const MATCHES: u64 = 10;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn doc(i: u64, n: u64) -> Document {
    let mut data = Map::new();
    data.insert("k".into(), Value::Int((i % (n / MATCHES)) as i64));
    data.insert("rank".into(), Value::Int(i as i64));
    data.insert("name".into(), Value::String(format!("item number {i}")));
    data.insert(
        "tags".into(),
        Value::Array(vec![Value::String(format!("t{}", i % 7))]),
    );
    let t = Timestamp::from_micros(1_700_000_000_000_000).unwrap();
    Document {
        path: DocPath::parse(&format!("items/d{i:07}")).unwrap(),
        data,
        create_time: t,
        update_time: t,
        version: 1,
    }
}

/// Opens the dataset of `n` documents, building it on first use.
fn dataset(rt: &Runtime, n: u64) -> SqliteStore {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("claimdb-bench-{n}"));
    let done = dir.join("complete");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir).unwrap();
        let started = Instant::now();
        rt.block_on(async {
            let mut i = 0;
            while i < n {
                let end = (i + 10_000).min(n);
                store
                    .restore((i..end).map(|j| doc(j, n)).collect())
                    .await
                    .unwrap();
                i = end;
            }
            store.close().await.unwrap();
        });
        eprintln!("built {n} documents in {:?}", started.elapsed());
        std::fs::write(&done, b"").unwrap();
    }
    let mut file = std::fs::File::open(dir.join(claimdb_store::sqlite::DB_FILE)).unwrap();
    std::io::copy(&mut file, &mut std::io::sink()).unwrap();
    SqliteStore::open(&dir).unwrap()
}

fn equality_query(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("query_eq");
    for n in SIZES {
        let store = dataset(&rt, n);
        let next = AtomicU64::new(0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.to_async(&rt).iter(|| {
                let k = next.fetch_add(7919, Ordering::Relaxed) % (n / MATCHES);
                let mut q = Query::collection(CollectionPath::parse("items").unwrap());
                q.filters = vec![Filter {
                    field: FieldPath::single("k"),
                    op: Op::Eq,
                    value: Value::Int(k as i64),
                }];
                let store = &store;
                async move {
                    let page = PageRequest::first(MAX_PAGE_SIZE);
                    let docs = store.query(&q, &page).await.unwrap().documents;
                    assert_eq!(docs.len() as u64, MATCHES);
                }
            })
        });
        rt.block_on(store.close()).unwrap();
    }
    group.finish();
}

/// A first page (20) of a match holding 1/7 of the collection (`tags` array-contains), in name
/// order: the cost of the page, not of the match.
fn page_of_large_match(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("query_page20_of_n_div_7");
    for n in SIZES {
        let store = dataset(&rt, n);
        let next = AtomicU64::new(0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.to_async(&rt).iter(|| {
                let t = next.fetch_add(1, Ordering::Relaxed) % 7;
                let mut q = Query::collection(CollectionPath::parse("items").unwrap());
                q.filters = vec![Filter {
                    field: FieldPath::single("tags"),
                    op: Op::ArrayContains,
                    value: Value::String(format!("t{t}")),
                }];
                q.limit = Some(20);
                let store = &store;
                async move {
                    let page = PageRequest::first(20);
                    assert_eq!(store.query(&q, &page).await.unwrap().documents.len(), 20);
                }
            })
        });
        rt.block_on(store.close()).unwrap();
    }
    group.finish();
}

fn point_reads(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("point_read");
    group.throughput(Throughput::Elements(1));
    for n in [SIZES[0], SIZES[2]] {
        let store = dataset(&rt, n);
        let next = AtomicU64::new(0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.to_async(&rt).iter(|| {
                let i = next.fetch_add(104_729, Ordering::Relaxed) % n;
                let path = DocPath::parse(&format!("items/d{i:07}")).unwrap();
                let store = &store;
                async move {
                    assert!(store.get(&path).await.unwrap().is_some());
                }
            })
        });
        rt.block_on(store.close()).unwrap();
    }
    group.finish();
}

fn durable_writes(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let mut group = c.benchmark_group("durable_write");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(10));
    let counter = Arc::new(AtomicU64::new(0));
    for writers in [1u64, 32, 64, 256] {
        group.bench_with_input(
            BenchmarkId::new("writers", writers),
            &writers,
            |b, &writers| {
                b.to_async(&rt).iter_custom(|iters| {
                    let store = store.clone();
                    let counter = counter.clone();
                    async move {
                        let started = Instant::now();
                        let mut tasks = tokio::task::JoinSet::new();
                        for w in 0..writers {
                            let share = iters / writers + u64::from(w < iters % writers);
                            let store = store.clone();
                            let counter = counter.clone();
                            tasks.spawn(async move {
                                for _ in 0..share {
                                    let i = counter.fetch_add(1, Ordering::Relaxed);
                                    let mut data = Map::new();
                                    data.insert("n".into(), Value::Int(i as i64));
                                    data.insert(
                                        "owner".into(),
                                        Value::String(format!("u{}", i % 100)),
                                    );
                                    let path = DocPath::parse(&format!("writes/w{}", i % 100_000))
                                        .unwrap();
                                    store
                                        .commit(
                                            vec![Write::new(
                                                path,
                                                WriteOp::Set {
                                                    data,
                                                    transforms: vec![],
                                                },
                                            )]
                                            .into(),
                                        )
                                        .await
                                        .unwrap();
                                }
                            });
                        }
                        while let Some(r) = tasks.join_next().await {
                            r.unwrap();
                        }
                        started.elapsed()
                    }
                })
            },
        );
    }
    group.finish();
    rt.block_on(store.close()).unwrap();
}

criterion_group!(
    benches,
    equality_query,
    page_of_large_match,
    point_reads,
    durable_writes
);
criterion_main!(benches);
