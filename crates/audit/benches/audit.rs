//! Audit log benchmarks (criterion):
//!
//! - `audit_writer/encode_line`: the writer thread's encoding cost per event.
//! - `audit_caller/record`: what one `record(event).await` costs the request path (the event
//!   prebuilt; the writer thread drains concurrently, each timed burst of 4,096 events fits the
//!   queue so no backpressure is measured here).
//! - `audit_caller/build_and_record`: the same plus building a typical event (clock read and five
//!   short strings), which is what the engine pays per decision.
//! - `audit_throughput/record/<tasks>`: sustained events/s from many tasks through `record`,
//!   until all are on disk (`flush`): bounded by the writer thread, with backpressure.
//! - `audit_throughput/record_durable/<tasks>`: events/s when every task waits for its event to
//!   be fdatasynced (group commit).
//! - `audit_query/*`: reading a 200,000-event log (what `claimdb audit` and the admin API do).
//!
//! Files go under the target's tmp directory (the real disk, so fsync is real).
//! Run: `cargo bench -p claimdb-audit --bench audit`.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark; any failure should abort it"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use claimdb_audit::{AuditConfig, AuditEvent, AuditFilter, AuditLog, Decision, encode_line, query};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn open(name: &str) -> AuditLog {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("claimdb-audit-bench-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    let config = AuditConfig {
        max_bytes: 4 * 64 * 1024 * 1024,
        ..AuditConfig::default()
    };
    AuditLog::open(&dir, config).unwrap()
}

/// A typical denial: uid, provider, path, rule location and a one-line reason.
fn event(n: u64) -> AuditEvent {
    AuditEvent {
        time: SystemTime::now(),
        request_id: format!("01JDQ8{n:020}"),
        uid: Some(format!("auth0|{:024}", n % 5000)),
        provider: Some("auth0".to_string()),
        method: "update".into(),
        path: format!("movies/m{}", n % 100_000),
        decision: Decision::Deny,
        rule: Some("firestore.rules:7:5".to_string()),
        reason: Some("rule at 7:5 needs request.auth.token.moderator == true".to_string()),
    }
}

const BURST: u64 = 4096;

fn caller(c: &mut Criterion) {
    let rt = runtime();
    let log = open("caller");
    let mut group = c.benchmark_group("audit_caller");
    group.throughput(Throughput::Elements(1));
    group.bench_function("record", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let log = log.clone();
            async move {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(BURST);
                    let events: Vec<AuditEvent> = (0..n).map(event).collect();
                    let start = Instant::now();
                    for e in events {
                        log.record(e).await.unwrap();
                    }
                    spent += start.elapsed();
                    log.flush().await.unwrap();
                    done += n;
                }
                spent
            }
        });
    });
    group.bench_function("build_and_record", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let log = log.clone();
            async move {
                let mut spent = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = (iters - done).min(BURST);
                    let start = Instant::now();
                    for i in 0..n {
                        log.record(event(done + i)).await.unwrap();
                    }
                    spent += start.elapsed();
                    log.flush().await.unwrap();
                    done += n;
                }
                spent
            }
        });
    });
    group.finish();
    rt.block_on(log.close()).unwrap();
}

/// On-CPU time of the (only running) audit writer thread, from `/proc/self/task/*/schedstat`
/// (Linux; `None` elsewhere).
fn writer_cpu() -> Option<Duration> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
        if comm.trim() == "claimdb-audit" {
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
            return Some(Duration::from_nanos(nanos));
        }
    }
    None
}

/// Events each task records per measured iteration of the throughput benchmarks.
const PER_TASK: u64 = 2_000;

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let log = open("throughput");
    let mut group = c.benchmark_group("audit_throughput");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for tasks in [8u64, 64] {
        group.throughput(Throughput::Elements(tasks * PER_TASK));
        group.bench_with_input(BenchmarkId::new("record", tasks), &tasks, |b, &tasks| {
            b.to_async(&rt).iter(|| {
                let log = log.clone();
                async move {
                    let handles: Vec<_> = (0..tasks)
                        .map(|t| {
                            let log = log.clone();
                            tokio::spawn(async move {
                                for i in 0..PER_TASK {
                                    log.record(event(t * PER_TASK + i)).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await.unwrap();
                    }
                    log.flush().await.unwrap();
                }
            });
        });
    }
    // The writer's own CPU per event, robust to the wall-clock noise of a shared machine.
    let stats = log.stats();
    if let Some(cpu) = writer_cpu() {
        eprintln!(
            "audit writer thread: {:.0} ns CPU per event over {} events ({} groups)",
            cpu.as_nanos() as f64 / stats.events_written as f64,
            stats.events_written,
            stats.groups_synced
        );
    }
    rt.block_on(log.close()).unwrap();
    let log = open("durable");
    for tasks in [1u64, 32, 256] {
        // Fewer events per task when each waits for a sync.
        let each = (4_000 / tasks).clamp(20, 500);
        group.throughput(Throughput::Elements(tasks * each));
        group.bench_with_input(
            BenchmarkId::new("record_durable", tasks),
            &tasks,
            |b, &tasks| {
                b.to_async(&rt).iter(|| {
                    let log = log.clone();
                    async move {
                        let handles: Vec<_> = (0..tasks)
                            .map(|t| {
                                let log = log.clone();
                                tokio::spawn(async move {
                                    for i in 0..each {
                                        log.record_durable(event(t * each + i)).await.unwrap();
                                    }
                                })
                            })
                            .collect();
                        for h in handles {
                            h.await.unwrap();
                        }
                    }
                });
            },
        );
    }
    group.finish();
    let stats = log.stats();
    eprintln!(
        "audit durable: {} events written in {} groups ({:.1} per fdatasync)",
        stats.events_written,
        stats.groups_synced,
        stats.events_written as f64 / stats.groups_synced.max(1) as f64
    );
    rt.block_on(log.close()).unwrap();
}

/// The writer's per-event encoding cost (one JSON line), which bounds its throughput.
fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit_writer");
    group.throughput(Throughput::Elements(1));
    let e = event(123_456);
    let mut line = Vec::with_capacity(1024);
    group.bench_function("encode_line", |b| {
        b.iter(|| {
            line.clear();
            encode_line(std::hint::black_box(&e), &mut line);
        });
    });
    group.finish();
}

/// Events in the log the query benchmarks read.
const QUERY_EVENTS: u64 = 200_000;

/// Reading: the 1,000 newest denials of a 200,000-event log (4 files of 16 MiB), and one user's
/// decisions in the last minute (which skips the older files by name).
fn reading(c: &mut Criterion) {
    let rt = runtime();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("claimdb-audit-bench-query");
    let _ = std::fs::remove_dir_all(&dir);
    let config = AuditConfig {
        max_file_bytes: 16 * 1024 * 1024,
        ..AuditConfig::default()
    };
    let log = AuditLog::open(&dir, config).unwrap();
    let start = SystemTime::now() - Duration::from_secs(QUERY_EVENTS);
    rt.block_on(async {
        for n in 0..QUERY_EVENTS {
            let mut e = event(n);
            // One event per second over the last 200,000 seconds; a third are denials.
            e.time = start + Duration::from_secs(n);
            e.decision = if n % 3 == 0 {
                Decision::Deny
            } else {
                Decision::Allow
            };
            log.record(e).await.unwrap();
        }
        log.close().await.unwrap();
    });
    let mut group = c.benchmark_group("audit_query");
    group.sample_size(10);
    group.bench_function("newest_1000_denials_of_200k", |b| {
        let filter = AuditFilter {
            deny_only: true,
            newest_first: true,
            ..AuditFilter::default()
        };
        b.iter(|| assert_eq!(query(&dir, &filter).unwrap().len(), 1000));
    });
    group.bench_function("all_200k_oldest_first", |b| {
        let filter = AuditFilter {
            limit: usize::MAX,
            ..AuditFilter::default()
        };
        b.iter(|| assert_eq!(query(&dir, &filter).unwrap().len(), QUERY_EVENTS as usize));
    });
    group.bench_function("uid_since_1m_of_200k", |b| {
        let filter = AuditFilter {
            since: Some(SystemTime::now() - Duration::from_secs(60)),
            uid: Some(format!("auth0|{:024}", (QUERY_EVENTS - 1) % 5000)),
            ..AuditFilter::default()
        };
        b.iter(|| assert!(!query(&dir, &filter).unwrap().is_empty()));
    });
    group.finish();
}

criterion_group!(benches, encoding, caller, throughput, reading);
criterion_main!(benches);
