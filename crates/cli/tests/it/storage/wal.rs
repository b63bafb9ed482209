//! The write-ahead log stays under `wal_max_bytes` under concurrent writes, batches and queries
//! over HTTP, and a clean shutdown truncates it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::util::{Server, request};

const BOUND: u64 = 4 * 1024 * 1024;

/// Eight writers (single PUTs and 10-write batches) and two query threads pushed the WAL to
/// 2.6 GB for a 358 MB database, and it stayed that size after a clean shutdown and restarts.
/// At small scale with `wal_max_bytes` = 4 MB: the file never passes 4 MB while the load runs,
/// and SIGTERM leaves it empty.
#[test]
fn the_wal_stays_under_wal_max_bytes_under_load_and_is_truncated_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let bound = BOUND.to_string();
    let server = Server::start_env(dir.path(), &[("CLAIMDB_WAL_MAX_BYTES", &bound)]);
    let wal = dir.path().join("claimdb.sqlite3-wal");
    let stop = Arc::new(AtomicBool::new(false));
    let largest = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, largest, wal) = (stop.clone(), largest.clone(), wal.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
                largest.fetch_max(len, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let base = server.base.clone();
    let queries: Vec<_> = (0..2)
        .map(|q| {
            let (stop, base) = (stop.clone(), base.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!(
                        "{{\"collection\": \"w\", \"where\": [[\"n\", \">=\", {}]], \"limit\": 100}}",
                        (i * 7919 + q) % 20_000
                    );
                    let (status, text) =
                        request("POST", &format!("{base}/v1/query"), Some(&body), &[]).unwrap();
                    assert_eq!(status, 200, "{text}");
                    i += 1;
                }
            })
        })
        .collect();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let base = base.clone();
            std::thread::spawn(move || {
                let text = "w".repeat(400);
                for i in 0..80 {
                    let n = w * 10_000 + i * 11;
                    let (status, body) = if i % 2 == 0 {
                        request(
                            "PUT",
                            &format!("{base}/v1/docs/w/d{n}"),
                            Some(&format!("{{\"n\": {n}, \"text\": \"{text}\"}}")),
                            &[],
                        )
                    } else {
                        let writes: Vec<String> = (0..10)
                            .map(|k| {
                                format!(
                                    "{{\"op\": \"set\", \"path\": \"w/d{}\", \"data\": {{\"n\": {}, \"text\": \"{text}\"}}}}",
                                    n + k,
                                    n + k
                                )
                            })
                            .collect();
                        request(
                            "POST",
                            &format!("{base}/v1/batch"),
                            Some(&format!("{{\"writes\": [{}]}}", writes.join(","))),
                            &[],
                        )
                    }
                    .unwrap();
                    assert!(status == 200 || status == 201, "{body}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for q in queries {
        q.join().unwrap();
    }
    sampler.join().unwrap();
    let largest = largest.load(Ordering::Relaxed);
    let db = std::fs::metadata(dir.path().join("claimdb.sqlite3"))
        .unwrap()
        .len();
    assert!(
        db > BOUND / 2,
        "the load was too small to test anything ({db} bytes)"
    );
    assert!(
        largest <= BOUND,
        "the WAL reached {largest} bytes, over {BOUND}"
    );
    assert!(server.stop_with("TERM").success());
    assert_eq!(
        std::fs::metadata(&wal).map_or(0, |m| m.len()),
        0,
        "the WAL after a clean shutdown"
    );
}
