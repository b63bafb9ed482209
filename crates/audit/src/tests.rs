//! Tests of the audit log through its public API (plus the writer gate for backpressure):
//! round trips, the line format, rotation and retention, each filter, torn lines, durability,
//! concurrency, backpressure, write failures and file permissions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::event::system_time_from_micros;
use super::files;
use super::*;
use claimdb_store::Documents;

/// 2026-11-23T14:00:00Z.
const T0: i64 = 1_795_442_400_000_000;

fn at(seconds: i64) -> SystemTime {
    system_time_from_micros(T0 + seconds * 1_000_000)
}

/// The current time, at the log's precision (microseconds).
fn now_us() -> SystemTime {
    system_time_from_micros(super::event::micros_since_epoch(SystemTime::now()))
}

fn event(n: u64, time: SystemTime) -> AuditEvent {
    AuditEvent {
        time,
        request_id: format!("req-{n}"),
        uid: Some(format!("user{}", n % 3)),
        provider: Some("auth0".into()),
        method: "get".into(),
        path: format!("movies/m{n}"),
        decision: if n.is_multiple_of(2) {
            Decision::Allow
        } else {
            Decision::Deny
        },
        rule: Some("firestore.rules:7:5".into()),
        reason: (n % 2 == 1).then(|| "the token has no claim `moderator`".to_string()),
    }
}

fn fast() -> AuditConfig {
    AuditConfig {
        flush_interval: Duration::from_millis(5),
        ..AuditConfig::default()
    }
}

fn everything() -> AuditFilter {
    AuditFilter {
        limit: usize::MAX,
        ..AuditFilter::default()
    }
}

fn newest_first() -> AuditFilter {
    AuditFilter {
        newest_first: true,
        ..everything()
    }
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    files::list(dir)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect()
}

fn request_ids(events: &[AuditEvent]) -> Vec<String> {
    events.iter().map(|e| e.request_id.clone()).collect()
}

/// Polls `check` until it holds, failing after a generous deadline.
fn eventually(mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[tokio::test]
async fn events_round_trip_with_every_field_and_hostile_text() {
    let dir = tempfile::tempdir().unwrap();
    let audit_dir = dir.path().join("audit");
    let log = AuditLog::open(&audit_dir, fast()).unwrap();
    let mut written = vec![
        event(1, at(0)),
        AuditEvent {
            time: system_time_from_micros(T0 + 123_456),
            request_id: "r\"2\"".into(),
            uid: None,
            provider: None,
            method: "admin.claims.put".into(),
            path: "users/ü\u{1b}[31m\nline".into(),
            decision: Decision::Deny,
            rule: None,
            reason: Some("tab\tand \u{0} nul".into()),
        },
    ];
    for e in &written {
        log.record(e.clone()).await.unwrap();
    }
    log.close().await.unwrap();
    let read = query(&audit_dir, &everything()).unwrap();
    // Times are stored with microsecond precision.
    written[0].time = system_time_from_micros(T0);
    assert_eq!(read, written);
    let stats = log.stats();
    assert_eq!((stats.events_written, stats.events_failed), (2, 0));
    assert!(stats.healthy);
}

#[test]
fn a_line_is_one_json_object_with_every_key() {
    let mut e = event(1, system_time_from_micros(T0 + 123_456));
    // Nanoseconds below the microsecond are rounded down.
    e.time += Duration::from_nanos(999);
    let mut line = Vec::new();
    encode_line(&e, &mut line);
    assert_eq!(
        String::from_utf8(line.clone()).unwrap(),
        "{\"time\":\"2026-11-23T14:00:00.123456Z\",\"request_id\":\"req-1\",\"uid\":\"user1\",\
         \"provider\":\"auth0\",\"method\":\"get\",\"path\":\"movies/m1\",\"decision\":\"deny\",\
         \"rule\":\"firestore.rules:7:5\",\"reason\":\"the token has no claim `moderator`\"}\n"
    );
    e.uid = None;
    e.reason = None;
    line.clear();
    encode_line(&e, &mut line);
    let text = String::from_utf8(line).unwrap();
    assert!(text.contains("\"uid\":null") && text.contains("\"reason\":null"));
    let back = decode_line(text.trim_end().as_bytes()).unwrap();
    assert_eq!(back.time, system_time_from_micros(T0 + 123_456));
    assert!(decode_line(b"{\"time\":\"soon\"}").is_err());
    assert!(
        decode_line(
            b"{\"time\":\"2026-11-23T14:00:00Z\",\"request_id\":\"r\",\"method\":\"get\",\
              \"path\":\"p\",\"decision\":\"maybe\"}"
        )
        .is_err()
    );
}

#[cfg(unix)]
#[tokio::test]
async fn directory_and_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let audit_dir = dir.path().join("audit");
    // An existing, world-readable directory is tightened.
    std::fs::create_dir(&audit_dir).unwrap();
    std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = AuditLog::open(&audit_dir, fast()).unwrap();
    log.record_durable(event(1, at(0))).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&audit_dir), 0o700);
    let files = log_files(&audit_dir);
    assert_eq!(files.len(), 1);
    assert_eq!(mode(&files[0]), 0o600);
    log.close().await.unwrap();
}

#[tokio::test]
async fn files_rotate_by_size_and_the_oldest_go_past_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        max_file_bytes: 4096,
        max_bytes: MIN_MAX_BYTES,
        ..fast()
    };
    let log = AuditLog::open(dir.path(), config).unwrap();
    // Odd events carry a reason: the longest lines.
    let mut line = Vec::new();
    encode_line(&event(101, at(0)), &mut line);
    let longest = line.len();
    // A file is rotated only when the next line does not fit, so a full one holds at least this.
    let per_file = (4096 - longest) / longest;
    let total = 12 * (MIN_MAX_BYTES as usize / 4096) * per_file;
    for n in 0..total as u64 {
        // Durable every 7th: groups of varied size, some split across files.
        if n % 7 == 0 {
            log.record_durable(event(n, at(n as i64))).await.unwrap();
        } else {
            log.record(event(n, at(n as i64))).await.unwrap();
        }
    }
    log.close().await.unwrap();
    let files = files::list(dir.path()).unwrap();
    let mut bytes = 0;
    for f in &files {
        let len = std::fs::metadata(&f.path).unwrap().len();
        assert!(len <= 4096, "{} has {len} bytes", f.path.display());
        bytes += len;
    }
    assert!(bytes <= MIN_MAX_BYTES, "{bytes} bytes kept");
    assert!(files.len() >= 6, "only {} files kept", files.len());
    // The newest files survive, whole: the retained events are exactly the last ones written.
    let read = query(dir.path(), &everything()).unwrap();
    assert!(read.len() >= 6 * per_file, "{} events kept", read.len());
    let first = total as u64 - read.len() as u64;
    let expected: Vec<String> = (first..total as u64).map(|n| format!("req-{n}")).collect();
    assert_eq!(request_ids(&read), expected);
    // Every event in a file is older than the next file's name (what `since` skipping needs).
    for pair in files.windows(2) {
        let next = system_time_from_micros(pair[1].micros);
        let held = query_file(&pair[0].path);
        assert!(held.iter().all(|e| e.time < next));
    }
    let stats = log.stats();
    assert_eq!(stats.retained_bytes, bytes);
    assert_eq!(stats.retained_files, files.len() as u64);
    assert!(stats.files_deleted > 0);
    assert_eq!(stats.oldest_event, Some(read[0].time));
}

/// Each start opens a new file and only the newest 20 files were kept, whatever their size:
/// after 101 restarts the audit lines of 218,391 committed writes were gone from a 16 MB
/// directory — while the README promised "a crash can duplicate a line, never lose one".
/// Retention is by size and age now: 35 restarts under the size bound keep every line.
#[tokio::test]
async fn restarts_never_delete_audit_lines_under_the_size_bound() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0u64;
    for _ in 0..35 {
        let log = AuditLog::open(dir.path(), fast()).unwrap();
        for _ in 0..20 {
            log.record_durable(event(n, now_us())).await.unwrap();
            n += 1;
        }
        log.close().await.unwrap();
    }
    // One run that recorded nothing leaves no file behind at the next start.
    drop(AuditLog::open(dir.path(), fast()).unwrap().close().await);
    let log = AuditLog::open(dir.path(), fast()).unwrap();
    let read = query(dir.path(), &everything()).unwrap();
    assert_eq!(read.len() as u64, n, "audit lines were deleted");
    let expected: Vec<String> = (0..n).map(|i| format!("req-{i}")).collect();
    assert_eq!(request_ids(&read), expected);
    let stats = log.stats();
    assert_eq!(
        stats.retained_files, 36,
        "35 runs' files and the current one"
    );
    assert_eq!(stats.files_deleted, 1, "only the empty file");
    assert_eq!(stats.oldest_event, Some(read[0].time));
    log.close().await.unwrap();
}

/// Files whose every event is older than `max_age` go (a file's events are older than the next
/// file's name); younger ones stay, whatever their number.
#[tokio::test]
async fn files_older_than_max_age_are_deleted() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let day = Duration::from_secs(86_400);
    let now = now_us();
    for (n, days) in [(1u64, 100u32), (2, 95), (3, 10)] {
        let time = now - day * days;
        let name = files::file_name(super::event::micros_since_epoch(time)).unwrap();
        let mut line = Vec::new();
        encode_line(&event(n, time + Duration::from_secs(1)), &mut line);
        std::fs::File::create(dir.path().join(name))
            .unwrap()
            .write_all(&line)
            .unwrap();
    }
    let config = AuditConfig {
        max_age: Some(day * 30),
        ..fast()
    };
    let log = AuditLog::open(dir.path(), config).unwrap();
    // Day 100's events are older than day 95's name, past the cutoff: gone. Day 95's file may
    // hold events up to day 10: kept.
    assert_eq!(ids_where(dir.path(), everything()), ["req-2", "req-3"]);
    let stats = log.stats();
    assert_eq!((stats.retained_files, stats.files_deleted), (3, 1));
    assert_eq!(
        stats.oldest_event,
        Some(now - day * 95 + Duration::from_secs(1))
    );
    assert_eq!(stats.max_age, Some(day * 30));
    log.close().await.unwrap();
}

/// Every event of one file, read through a directory holding only that file.
fn query_file(path: &Path) -> Vec<AuditEvent> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(path, dir.path().join(path.file_name().unwrap())).unwrap();
    query(dir.path(), &everything()).unwrap()
}

#[tokio::test]
async fn a_new_file_is_named_after_future_dated_events() {
    // A caller's clock ahead of the writer's must not break `since` skipping: the next file is
    // named after the newest event written so far.
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        max_file_bytes: 4096,
        ..fast()
    };
    let log = AuditLog::open(dir.path(), config).unwrap();
    let future = now_us() + Duration::from_secs(3600);
    log.record_durable(event(1, future)).await.unwrap();
    let mut n = 2;
    while log_files(dir.path()).len() < 2 {
        log.record_durable(event(n, SystemTime::now()))
            .await
            .unwrap();
        n += 1;
    }
    log.close().await.unwrap();
    let files = files::list(dir.path()).unwrap();
    assert!(system_time_from_micros(files[1].micros) > future);
    let since_future = AuditFilter {
        since: Some(future),
        ..everything()
    };
    assert_eq!(
        request_ids(&query(dir.path(), &since_future).unwrap()),
        ["req-1"]
    );
}

/// Twelve events, one second apart from T0: even `n` allowed, odd denied, uid `user{n % 3}`,
/// path `movies/m{n}`, plus one on `movies2/x` and one on `movies` itself.
async fn filter_fixture(dir: &Path) {
    let log = AuditLog::open(dir, fast()).unwrap();
    for n in 0..12 {
        log.record(event(n, at(n as i64))).await.unwrap();
    }
    let mut other = event(12, at(12));
    other.path = "movies2/x".into();
    log.record(other).await.unwrap();
    let mut collection = event(13, at(13));
    collection.path = "movies".into();
    // A denial whose text imitates an allow must still count as a denial.
    collection.reason = Some("x\",\"decision\":\"allow\"".into());
    collection.uid = Some("user1\",\"decision\":\"allow\"".into());
    log.record(collection).await.unwrap();
    log.close().await.unwrap();
}

fn ids_where(dir: &Path, filter: AuditFilter) -> Vec<String> {
    request_ids(&query(dir, &filter).unwrap())
}

#[tokio::test]
async fn each_filter_selects_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    filter_fixture(dir.path()).await;
    let d = dir.path();
    let all = everything();
    assert_eq!(ids_where(d, all.clone()).len(), 14);
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                deny_only: true,
                ..all.clone()
            }
        ),
        [
            "req-1", "req-3", "req-5", "req-7", "req-9", "req-11", "req-13"
        ]
    );
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                since: Some(at(10)),
                ..all.clone()
            }
        ),
        ["req-10", "req-11", "req-12", "req-13"]
    );
    // `until` is exclusive, so since/until windows tile.
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                until: Some(at(2)),
                ..all.clone()
            }
        ),
        ["req-0", "req-1"]
    );
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                since: Some(at(2)),
                until: Some(at(4)),
                ..all.clone()
            }
        ),
        ["req-2", "req-3"]
    );
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                uid: Some("user1".into()),
                ..all.clone()
            }
        ),
        ["req-1", "req-4", "req-7", "req-10"]
    );
    // Segment-wise: `movies` is the collection and everything below, not `movies2`.
    // `until` at a sub-microsecond instant: an event at the microsecond before it is included.
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                since: Some(at(1)),
                until: Some(at(1) + Duration::from_nanos(500)),
                ..all.clone()
            }
        ),
        ["req-1"]
    );
    let movies = ids_where(
        d,
        AuditFilter {
            path: Some("movies".into()),
            ..all.clone()
        },
    );
    assert_eq!(movies.len(), 13);
    assert!(!movies.contains(&"req-12".to_string()));
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                path: Some("movies/m1".into()),
                ..all.clone()
            }
        ),
        ["req-1"]
    );
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                limit: 3,
                ..all.clone()
            }
        ),
        ["req-0", "req-1", "req-2"]
    );
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                limit: 3,
                newest_first: true,
                ..all.clone()
            }
        ),
        ["req-13", "req-12", "req-11"]
    );
    assert!(
        ids_where(
            d,
            AuditFilter {
                limit: 0,
                ..all.clone()
            }
        )
        .is_empty()
    );
    // Combined: denials by user0 since T0+2s, newest first.
    assert_eq!(
        ids_where(
            d,
            AuditFilter {
                deny_only: true,
                uid: Some("user0".into()),
                since: Some(at(2)),
                newest_first: true,
                ..all
            }
        ),
        ["req-9", "req-3"]
    );
}

#[tokio::test]
async fn newest_first_with_a_limit_spans_files() {
    let dir = tempfile::tempdir().unwrap();
    for batch in 0..3u64 {
        // A new file per open.
        let log = AuditLog::open(dir.path(), fast()).unwrap();
        for n in batch * 4..batch * 4 + 4 {
            log.record(event(n, at(n as i64))).await.unwrap();
        }
        log.close().await.unwrap();
    }
    assert_eq!(log_files(dir.path()).len(), 3);
    let newest = AuditFilter {
        limit: 6,
        newest_first: true,
        ..AuditFilter::default()
    };
    assert_eq!(
        ids_where(dir.path(), newest),
        ["req-11", "req-10", "req-9", "req-8", "req-7", "req-6"]
    );
    let oldest = AuditFilter {
        limit: 6,
        ..AuditFilter::default()
    };
    assert_eq!(
        ids_where(dir.path(), oldest),
        ["req-0", "req-1", "req-2", "req-3", "req-4", "req-5"]
    );
}

#[tokio::test]
async fn since_skips_whole_older_files_unread() {
    let dir = tempfile::tempdir().unwrap();
    let first = AuditLog::open(dir.path(), fast()).unwrap();
    first.record(event(1, at(-3600))).await.unwrap();
    first.close().await.unwrap();
    let old = log_files(dir.path()).remove(0);
    let second = AuditLog::open(dir.path(), fast()).unwrap();
    let now = now_us();
    second.record(event(2, now)).await.unwrap();
    second.close().await.unwrap();
    // Corrupt the old file in the middle: a query that reads it fails, so one that succeeds
    // did not read it.
    let mut text = std::fs::read_to_string(&old).unwrap();
    text.insert_str(0, "not json\n");
    std::fs::write(&old, text).unwrap();
    // The second file was started before `now`, so the first holds only older events.
    let since = AuditFilter {
        since: Some(now),
        ..everything()
    };
    assert_eq!(ids_where(dir.path(), since), ["req-2"]);
    let err = query(dir.path(), &everything()).unwrap_err();
    assert!(
        matches!(&err, AuditError::Corrupt { file, line: 1, .. } if *file == old),
        "{err}"
    );
}

#[tokio::test]
async fn a_torn_last_line_is_skipped_and_never_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), fast()).unwrap();
    log.record(event(1, at(1))).await.unwrap();
    log.record(event(2, at(2))).await.unwrap();
    log.close().await.unwrap();
    let file = log_files(dir.path()).remove(0);
    // A crash mid-append: half a line, no newline.
    let mut bytes = std::fs::read(&file).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(b"{\"time\":\"2026-11-23T14:00:03.000000Z\",\"request_id\":\"re");
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(ids_where(dir.path(), everything()), ["req-1", "req-2"]);
    assert_eq!(ids_where(dir.path(), newest_first()), ["req-2", "req-1"]);
    // A final line that is complete but garbled (zeros from a crash) is skipped too.
    bytes.truncate(whole);
    bytes.extend_from_slice(b"\0\0\0\0\n");
    std::fs::write(&file, &bytes).unwrap();
    assert_eq!(ids_where(dir.path(), everything()), ["req-1", "req-2"]);
    assert_eq!(ids_where(dir.path(), newest_first()), ["req-2", "req-1"]);
    // A file holding nothing but a torn line.
    let only_torn = dir.path().join("audit-20000101T000000.000000Z.jsonl");
    std::fs::write(&only_torn, b"{\"time\":\"2000-01-01T00:00:00.0").unwrap();
    assert_eq!(ids_where(dir.path(), everything()), ["req-1", "req-2"]);
    assert_eq!(ids_where(dir.path(), newest_first()), ["req-2", "req-1"]);
    std::fs::remove_file(&only_torn).unwrap();
    // Reopening starts a new file; the torn one is left as it is.
    let log = AuditLog::open(dir.path(), fast()).unwrap();
    log.record_durable(event(3, at(3))).await.unwrap();
    log.close().await.unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    assert_eq!(log_files(dir.path()).len(), 2);
    assert_eq!(
        ids_where(dir.path(), everything()),
        ["req-1", "req-2", "req-3"]
    );
}

#[tokio::test]
async fn record_durable_is_on_disk_before_it_resolves() {
    let dir = tempfile::tempdir().unwrap();
    // A flush interval far longer than the test: only the durable path can have written it.
    let config = AuditConfig {
        flush_interval: Duration::from_secs(60),
        ..AuditConfig::default()
    };
    let log = AuditLog::open(dir.path(), config).unwrap();
    log.record(event(1, at(1))).await.unwrap();
    log.record_durable(event(2, at(2))).await.unwrap();
    // A fresh reader, with the log still open: both events (the earlier one rode along).
    assert_eq!(ids_where(dir.path(), everything()), ["req-1", "req-2"]);
    log.record(event(3, at(3))).await.unwrap();
    log.flush().await.unwrap();
    assert_eq!(
        ids_where(dir.path(), everything()),
        ["req-1", "req-2", "req-3"]
    );
    assert_eq!(log.stats().events_written, 3);
    log.close().await.unwrap();
}

#[tokio::test]
async fn record_is_written_within_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), fast()).unwrap();
    log.record(event(1, at(1))).await.unwrap();
    // Nobody flushes: the writer's timer does.
    eventually(|| ids_where(dir.path(), everything()).len() == 1);
    assert_eq!(log.stats().queue_depth, 0);
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_writers_leave_whole_lines_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        max_file_bytes: 64 * 1024,
        max_bytes: 1 << 40,
        queue_capacity: 256,
        ..fast()
    };
    let log = AuditLog::open(dir.path(), config).unwrap();
    const TASKS: u64 = 64;
    const EACH: u64 = 300;
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            for seq in 0..EACH {
                let mut e = event(seq, SystemTime::now());
                e.request_id = format!("{task}:{seq}");
                // Long, varied text so lines differ in length and cross buffer boundaries.
                e.reason = Some("x".repeat((task * 7 + seq) as usize % 300));
                if seq % 10 == 0 {
                    log.record_durable(e).await.unwrap();
                } else {
                    log.record(e).await.unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    log.close().await.unwrap();
    let read = query(dir.path(), &everything()).unwrap();
    assert_eq!(read.len() as u64, TASKS * EACH);
    let mut next: HashMap<u64, u64> = HashMap::new();
    for e in &read {
        let (task, seq) = e.request_id.split_once(':').unwrap();
        let (task, seq): (u64, u64) = (task.parse().unwrap(), seq.parse().unwrap());
        let expected = next.entry(task).or_default();
        assert_eq!(seq, *expected, "task {task} out of order or duplicated");
        assert_eq!(
            e.reason.as_ref().unwrap().len(),
            ((task * 7 + seq) % 300) as usize
        );
        *expected += 1;
    }
    assert!(next.values().all(|n| *n == EACH));
    let stats = log.stats();
    assert_eq!(stats.events_written, TASKS * EACH);
    assert_eq!(stats.events_failed, 0);
    assert!(log_files(dir.path()).len() > 1, "the test should rotate");
}

#[tokio::test]
#[allow(
    clippy::await_holding_lock,
    reason = "the gate is held on purpose to stall the writer thread; no task contends for it"
)]
async fn a_full_queue_makes_record_wait_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        queue_capacity: 4,
        ..fast()
    };
    let log = AuditLog::open(dir.path(), config).unwrap();
    let gate = log.handle_for_tests().gate.lock().unwrap();
    for n in 0..4 {
        log.try_record(event(n, at(n as i64))).unwrap();
    }
    // Full: try_record hands the event back, record waits.
    let refused = log.try_record(event(4, at(4))).unwrap_err();
    assert_eq!(refused.request_id, "req-4");
    assert_eq!(log.stats().queue_depth, 4);
    let waiting = log.record(event(4, at(4)));
    tokio::pin!(waiting);
    tokio::select! {
        biased;
        _ = &mut waiting => panic!("record returned while the queue was full"),
        () = tokio::task::yield_now() => {}
    }
    drop(gate);
    waiting.await.unwrap();
    for n in 5..200 {
        log.record(event(n, at(n as i64))).await.unwrap();
    }
    log.close().await.unwrap();
    let read = query(dir.path(), &everything()).unwrap();
    let expected: Vec<String> = (0..200).map(|n| format!("req-{n}")).collect();
    assert_eq!(request_ids(&read), expected);
}

#[tokio::test]
async fn close_drains_then_refuses_and_dropping_the_last_handle_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let config = AuditConfig {
        flush_interval: Duration::from_secs(60),
        ..AuditConfig::default()
    };
    let log = AuditLog::open(dir.path(), config.clone()).unwrap();
    let other = log.clone();
    for n in 0..10 {
        log.record(event(n, at(n as i64))).await.unwrap();
    }
    other.close().await.unwrap();
    assert_eq!(ids_where(dir.path(), everything()).len(), 10);
    assert_eq!(log.record(event(10, at(10))).await, Err(AuditError::Closed));
    assert_eq!(
        log.record_durable(event(10, at(10))).await,
        Err(AuditError::Closed)
    );
    assert!(log.try_record(event(10, at(10))).is_err());
    log.close().await.unwrap();
    log.flush().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), config).unwrap();
    log.record(event(1, at(1))).await.unwrap();
    drop(log);
    eventually(|| ids_where(dir.path(), everything()).len() == 1);
}

#[tokio::test]
async fn a_failing_disk_is_reported_and_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let audit_dir = dir.path().join("audit");
    let config = AuditConfig {
        max_file_bytes: 4096,
        ..fast()
    };
    let log = AuditLog::open(&audit_dir, config).unwrap();
    // The directory disappears: the open file still takes writes, the next rotation cannot
    // create a file.
    std::fs::remove_dir_all(&audit_dir).unwrap();
    let mut n = 0;
    let err = loop {
        n += 1;
        assert!(n < 1000, "rotation never failed");
        if let Err(err) = log.record_durable(event(n, at(n as i64))).await {
            break err;
        }
    };
    assert!(
        matches!(&err, AuditError::Write(m) if m.contains("cannot create")),
        "{err}"
    );
    assert!(!log.healthy());
    let stats = log.stats();
    assert!(
        stats.events_failed >= 1 && stats.write_errors >= 2,
        "{stats:?}"
    );
    // Nothing queued, but the log is failing: a flush says so.
    assert!(log.flush().await.is_err());
    // The disk comes back: the next group is written to a new file and health returns.
    files::prepare_dir(&audit_dir).unwrap();
    log.record_durable(event(9999, at(9999))).await.unwrap();
    assert!(log.healthy());
    log.close().await.unwrap();
    assert_eq!(ids_where(&audit_dir, everything()), ["req-9999"]);
}

#[test]
fn bad_configurations_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for config in [
        AuditConfig {
            max_file_bytes: 100,
            ..AuditConfig::default()
        },
        AuditConfig {
            max_bytes: 1000,
            ..AuditConfig::default()
        },
        AuditConfig {
            max_age: Some(Duration::from_secs(60)),
            ..AuditConfig::default()
        },
        AuditConfig {
            queue_capacity: 1,
            ..AuditConfig::default()
        },
        AuditConfig {
            flush_interval: Duration::from_secs(3600),
            ..AuditConfig::default()
        },
    ] {
        let err = AuditLog::open(dir.path(), config).unwrap_err();
        assert!(matches!(err, AuditError::Config(_)), "{err}");
    }
    assert!(log_files(dir.path()).is_empty());
}

#[test]
fn reading_a_missing_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("audit");
    let err = query(&missing, &AuditFilter::default()).unwrap_err();
    assert_eq!(err, AuditError::NotFound(missing));
    assert!(err.to_string().contains("does not exist"));
}

#[tokio::test]
async fn a_writer_that_stops_unexpectedly_fails_its_waiters_instead_of_hanging() {
    // The writer thread cannot panic by construction (no unwrap/index on input), but should it
    // ever unwind, its guard must release everyone waiting on it.
    let dir = tempfile::tempdir().unwrap();
    let shared = super::log::Shared::new(dir.path(), 8);
    let (tx, rx) = tokio::sync::oneshot::channel();
    assert!(shared.try_push(event(1, at(1)), Some(tx)).is_ok());
    drop(super::writer::StopGuard(&shared));
    assert_eq!(rx.await.unwrap(), Err(AuditError::Closed));
    assert!(matches!(
        shared.try_push(event(2, at(2)), None),
        Err(super::log::PushError::Closed(_))
    ));
    assert_eq!(
        shared
            .counters
            .events_failed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert!(!shared.counters.healthy());
}

#[tokio::test]
async fn reading_backward_across_chunks_matches_reading_forward() {
    // Lines from a few bytes to far more than the 64 KiB read chunk, so lines straddle chunk
    // boundaries and one spans several chunks.
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), fast()).unwrap();
    for n in 0..1500u64 {
        let mut e = event(n, at(n as i64));
        e.reason = Some(match n {
            700 => "y".repeat(200_000),
            _ => "z".repeat((n * 37 % 1000) as usize),
        });
        log.record(e).await.unwrap();
    }
    log.close().await.unwrap();
    let forward = query(dir.path(), &everything()).unwrap();
    let mut backward = query(dir.path(), &newest_first()).unwrap();
    assert_eq!(forward.len(), 1500);
    backward.reverse();
    assert_eq!(backward, forward);
    // Limits stop early from either end, and filters apply the same way.
    let last = AuditFilter {
        limit: 5,
        deny_only: true,
        ..newest_first()
    };
    assert_eq!(
        ids_where(dir.path(), last),
        ["req-1499", "req-1497", "req-1495", "req-1493", "req-1491"]
    );
    // Corruption in the middle is found from either end, with the same line number.
    let file = log_files(dir.path()).remove(0);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1000] = "{\"time\":\"2026-11-23T14:16:40.000000Z\", broken";
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    for filter in [everything(), newest_first()] {
        let err = query(dir.path(), &filter).unwrap_err();
        assert!(
            matches!(&err, AuditError::Corrupt { line: 1001, .. }),
            "{err}"
        );
    }
}

#[test]
fn the_handle_and_its_futures_can_cross_threads() {
    // The server holds the log in shared state and awaits these inside spawned tasks.
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), fast()).unwrap();
    send_sync(&log);
    send(&log.record(event(1, at(1))));
    send(&log.record_durable(event(2, at(2))));
    send(&log.flush());
    send(&log.close());
}

fn journal_line(e: &AuditEvent) -> String {
    let mut line = Vec::new();
    encode_line(e, &mut line);
    String::from_utf8(line).unwrap().trim_end().to_string()
}

fn one_write() -> Vec<claimdb_store::Write> {
    vec![claimdb_store::Write::new(
        claimdb_model::DocPath::parse("c/d").unwrap(),
        claimdb_store::WriteOp::Set {
            data: claimdb_model::Map::new(),
            transforms: vec![],
        },
    )]
}

#[tokio::test]
async fn recover_moves_journal_lines_into_the_log_then_deletes_them() {
    use claimdb_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let store = claimdb_store::SqliteStore::open(&dir.path().join("db")).unwrap();
    // What a crashed run left: two events committed with writes, and one damaged line.
    let lines = vec![
        journal_line(&event(1, at(1))),
        "not an event".to_string(),
        journal_line(&event(2, at(2))),
    ];
    store
        .commit(claimdb_store::Commit {
            checks: vec![],
            writes: one_write(),
            journal: lines,
        })
        .await
        .unwrap();
    let log = AuditLog::open(&dir.path().join("audit"), AuditConfig::default()).unwrap();
    assert_eq!(journal::recover(&store, &log).await.unwrap(), 3);
    // Durable by the time recover returns; the damaged line is logged as an error, not kept.
    assert_eq!(
        ids_where(&dir.path().join("audit"), everything()),
        ["req-1", "req-2"]
    );
    assert!(store.journal(0, 10).await.unwrap().is_empty());
    assert_eq!(journal::recover(&store, &log).await.unwrap(), 0);
    log.close().await.unwrap();
}

#[tokio::test]
async fn the_trimmer_deletes_only_lines_whose_events_the_log_synced() {
    use claimdb_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let store = claimdb_store::SqliteStore::open(&dir.path().join("db")).unwrap();
    // A flush interval far longer than the test: only the trimmer's flush can write the event.
    let config = AuditConfig {
        flush_interval: Duration::from_secs(60),
        ..AuditConfig::default()
    };
    let audit_dir = dir.path().join("audit");
    let log = AuditLog::open(&audit_dir, config).unwrap();
    let e = event(7, at(7));
    // As the engine does: queue the event, then commit its line with the write.
    log.record(e.clone()).await.unwrap();
    store
        .commit(claimdb_store::Commit {
            checks: vec![],
            writes: one_write(),
            journal: vec![journal_line(&e)],
        })
        .await
        .unwrap();
    assert!(ids_where(&audit_dir, everything()).is_empty());
    journal::trim_once(&store, &log).await.unwrap();
    assert_eq!(ids_where(&audit_dir, everything()), ["req-7"]);
    assert!(store.journal(0, 10).await.unwrap().is_empty());
    // Nothing to trim: no flush needed, nothing fails.
    journal::trim_once(&store, &log).await.unwrap();
    log.close().await.unwrap();
}
