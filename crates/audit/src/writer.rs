//! The writer thread: takes the whole queue at once, encodes it as JSON lines, appends them to
//! the current file and fdatasyncs, then answers every waiter the group covered. It rotates files
//! by size and daily, applies retention (`retention`: by size and age, at each rotation and
//! every minute) and survives write errors.
//!
//! A dedicated OS thread rather than a tokio task: fdatasync blocks for a millisecond or more and
//! must not occupy a runtime worker.
//!
//! Failure handling: after a failed write or sync the file is truncated back to its last synced
//! length (so no torn line stays in the middle of a file) and the group is written once more;
//! if truncation fails the file is abandoned and the group goes to a new file. A group that still
//! fails is counted as lost, its waiters get the error, and the log reports itself unhealthy
//! until a later group succeeds. A retried group may leave a duplicate of some of its lines
//! (written, then a failed sync): the log is at-least-once, never silently short.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use super::event::{encode_line, micros_since_epoch};
use super::files;
use super::log::{Counters, Queue, Shared, State};
use super::query::AuditFilter;
use super::retention::{self, Entry, Policy};
use super::{AuditConfig, AuditError, AuditEvent, scan};

/// The longest a sync waits for more durable events after the first (see `run`).
const MAX_LINGER: Duration = Duration::from_millis(1);

/// Error logs while failing are at most this frequent.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How often retention runs besides at each rotation (so age applies to an idle log too).
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);

/// A file older than this is rotated, so retention by age can delete a day at a time.
const ROTATE_AFTER_MICROS: i64 = 86_400_000_000;

/// Prepares the directory, starts the first file and spawns the writer thread.
pub(crate) fn start(shared: Arc<Shared>, config: AuditConfig) -> Result<(), AuditError> {
    let output = Output::open(&shared.dir, &config, shared.counters.clone())?;
    let interval = config.flush_interval;
    let dir = shared.dir.clone();
    std::thread::Builder::new()
        .name("claimdb-audit".into())
        .spawn(move || run(&shared, output, interval))
        .map_err(|e| AuditError::io("cannot start the audit writer for", dir, &e))?;
    Ok(())
}

impl Output {
    /// Prepares the directory and starts the run's first file.
    fn open(
        dir: &std::path::Path,
        config: &AuditConfig,
        counters: Arc<Counters>,
    ) -> Result<Output, AuditError> {
        files::prepare_dir(dir)?;
        let existing = files::list(dir)?;
        // The previous run's events are no newer than its last write (the file's mtime), unless the
        // clock stepped back during that run; naming the new file after it keeps `since` skipping
        // right when the clock stepped back across the restart.
        let previous_newest = existing
            .last()
            .and_then(|f| std::fs::metadata(&f.path).ok())
            .and_then(|m| m.modified().ok())
            .map_or(i64::MIN, micros_since_epoch);
        let mut output = Output {
            dir: dir.to_path_buf(),
            max_file_bytes: config.file_limit(),
            policy: Policy {
                max_bytes: config.max_bytes,
                max_age: config.max_age,
                reserve: config.file_limit(),
            },
            last_retention: Instant::now(),
            counters,
            file: None,
            size: 0,
            last_name: existing.last().map(|f| f.micros),
            newest_written: previous_newest,
            last_error: None,
            last_error_log: None,
        };
        // Always a new file: the previous run's last file may end in a torn line.
        output.rotate()?;
        Ok(output)
    }
}

fn run(shared: &Shared, mut output: Output, interval: Duration) {
    let _stop = StopGuard(shared);
    let mut batch: Vec<AuditEvent> = Vec::new();
    let mut waiters = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut linger = Duration::ZERO;
    loop {
        let closing = {
            let mut q = shared.lock();
            // Idle: sleep until something is queued, waking only to apply retention.
            while q.events.is_empty() && q.waiters.is_empty() && q.state == State::Open {
                q.writer_idle = true;
                let (guard, waited) = shared
                    .wake
                    .wait_timeout(q, RETENTION_INTERVAL)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                q = guard;
                if waited.timed_out() && output.retention_due() {
                    drop(q);
                    output.apply_retention();
                    q = shared.lock();
                }
            }
            q.writer_idle = false;
            // Gather for up to one flush interval unless asked to write now.
            q = wait_until(shared, q, Instant::now() + interval, |q| {
                q.urgent || q.state != State::Open
            });
            // Several writers waited on the last sync: more are on their way. Wait about one
            // sync for them so that one fdatasync covers the burst (their commits take at least
            // a sync of their own, so they are not answered later for it). A lone waiter — low
            // load — is synced at once.
            q = wait_until(shared, q, Instant::now() + linger, |q| {
                q.state != State::Open || q.events.len() >= shared.capacity / 2
            });
            #[cfg(test)]
            {
                drop(q);
                drop(shared.gate.lock());
                q = shared.lock();
            }
            std::mem::swap(&mut q.events, &mut batch);
            std::mem::swap(&mut q.waiters, &mut waiters);
            q.urgent = false;
            q.state != State::Open
        };
        shared.space.notify_waiters();
        let started = Instant::now();
        let result = output.write_group(&batch, &mut buf, &shared.counters);
        linger = if waiters.len() >= 2 {
            started.elapsed().min(MAX_LINGER)
        } else {
            Duration::ZERO
        };
        for waiter in waiters.drain(..) {
            // A waiter whose caller gave up is fine to ignore.
            let _ = waiter.send(result.clone());
        }
        if output.retention_due() {
            output.apply_retention();
        }
        let written = batch.len();
        batch.clear();
        // Give back memory after a burst.
        if batch.capacity() > 4 * written.max(1024) {
            batch.shrink_to(written.max(1024));
        }
        if buf.capacity() > 4 << 20 {
            buf = Vec::new();
        }
        if closing {
            let mut q = shared.lock();
            if q.events.is_empty() && q.waiters.is_empty() {
                q.state = State::Exited;
                return;
            }
        }
    }
}

/// Waits for the writer's wake-up until `deadline`, returning early once `done` holds.
fn wait_until<'a>(
    shared: &'a Shared,
    mut q: MutexGuard<'a, Queue>,
    deadline: Instant,
    done: impl Fn(&Queue) -> bool,
) -> MutexGuard<'a, Queue> {
    while !done(&q) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        q = shared
            .wake
            .wait_timeout(q, deadline - now)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
    q
}

/// Marks the writer stopped however it ends. On a normal exit nothing is pending; should the
/// thread ever unwind, waiters get an error and callers waiting for room stop waiting, instead
/// of hanging forever.
pub(crate) struct StopGuard<'a>(pub &'a Shared);

impl Drop for StopGuard<'_> {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        if q.state == State::Exited {
            return;
        }
        q.state = State::Exited;
        let lost = q.events.len();
        q.events.clear();
        for waiter in q.waiters.drain(..) {
            let _ = waiter.send(Err(AuditError::Closed));
        }
        drop(q);
        let counters = &self.0.counters;
        counters
            .events_failed
            .fetch_add(lost as u64, Ordering::Relaxed);
        counters.failing.store(true, Ordering::Relaxed);
        tracing::error!(lost, "the audit writer stopped unexpectedly");
        self.0.space.notify_waiters();
    }
}

/// The file being written and the bookkeeping around it.
struct Output {
    dir: PathBuf,
    max_file_bytes: u64,
    policy: Policy,
    last_retention: Instant,
    counters: Arc<Counters>,
    /// `None` after a failure or when the next line must start a new file.
    file: Option<(File, PathBuf)>,
    /// Bytes synced to the current file.
    size: u64,
    /// The newest file's name time; a new file's name is always later.
    last_name: Option<i64>,
    /// Newest event time ever handed to a file: the next file's name must be later, so a reader
    /// can skip a file by the next one's name.
    newest_written: i64,
    last_error: Option<String>,
    last_error_log: Option<Instant>,
}

impl Output {
    /// Writes one group, splitting it across files at line boundaries when it would overflow
    /// the current one.
    fn write_group(
        &mut self,
        events: &[AuditEvent],
        buf: &mut Vec<u8>,
        counters: &Counters,
    ) -> Result<(), AuditError> {
        if events.is_empty() {
            return match &self.last_error {
                Some(message) => Err(AuditError::Write(format!(
                    "nothing left to write, but the last write failed: {message}"
                ))),
                None => Ok(()),
            };
        }
        let mut result = Ok(());
        buf.clear();
        if self.file.is_some()
            && self.last_name.is_some_and(|started| {
                micros_since_epoch(SystemTime::now()).saturating_sub(started) > ROTATE_AFTER_MICROS
            })
        {
            // A day-old file: the next line starts a new one.
            self.file = None;
        }
        let mut lines = 0u64;
        let (mut oldest, mut newest) = (i64::MAX, i64::MIN);
        for event in events {
            let start = buf.len();
            encode_line(event, buf);
            let current = if self.file.is_some() { self.size } else { 0 };
            if current + buf.len() as u64 > self.max_file_bytes && current + start as u64 > 0 {
                // This line does not fit: finish the current file with what precedes it.
                if start > 0 {
                    if let Err(e) = self.commit(&buf[..start], lines, (oldest, newest), counters) {
                        result = Err(e);
                    }
                    buf.drain(..start);
                }
                self.file = None;
                lines = 0;
                (oldest, newest) = (i64::MAX, i64::MIN);
            }
            lines += 1;
            let time = micros_since_epoch(event.time);
            oldest = oldest.min(time);
            newest = newest.max(time);
        }
        if !buf.is_empty()
            && let Err(e) = self.commit(buf, lines, (oldest, newest), counters)
        {
            result = Err(e);
        }
        result
    }

    /// Appends and syncs `bytes` (`lines` events, from `oldest` to `newest`), retrying once.
    fn commit(
        &mut self,
        bytes: &[u8],
        lines: u64,
        (oldest, newest): (i64, i64),
        counters: &Counters,
    ) -> Result<(), AuditError> {
        // Before writing: even a failed write may have left these events in the file.
        self.newest_written = self.newest_written.max(newest);
        let mut attempt = self.append(bytes);
        if let Err(e) = &attempt {
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            self.log_error(e, true);
            attempt = self.append(bytes);
        }
        match attempt {
            Ok(()) => {
                counters.events_written.fetch_add(lines, Ordering::Relaxed);
                counters.groups_synced.fetch_add(1, Ordering::Relaxed);
                counters.current_bytes.store(self.size, Ordering::Relaxed);
                // The first events of an empty log are its oldest (retention finds them in the
                // oldest file otherwise).
                let _ = counters.oldest_event.compare_exchange(
                    i64::MIN,
                    oldest,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                if counters.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(dir = %self.dir.display(), "audit log writes succeed again");
                }
                self.last_error = None;
                Ok(())
            }
            Err(e) => {
                counters.write_errors.fetch_add(1, Ordering::Relaxed);
                counters.events_failed.fetch_add(lines, Ordering::Relaxed);
                counters.failing.store(true, Ordering::Relaxed);
                self.log_error(&e, false);
                self.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn log_error(&mut self, err: &AuditError, will_retry: bool) {
        let now = Instant::now();
        if self
            .last_error_log
            .is_some_and(|at| now.duration_since(at) < ERROR_LOG_INTERVAL)
        {
            return;
        }
        self.last_error_log = Some(now);
        if will_retry {
            tracing::error!(error = %err, "audit log write failed; retrying the group");
        } else {
            tracing::error!(error = %err, "audit log write failed; events of this group may be lost");
        }
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        if self.file.is_none() {
            self.rotate()?;
        }
        let Some((file, path)) = self.file.as_mut() else {
            return Err(AuditError::Write("no open audit file".into()));
        };
        let written = file.write_all(bytes).and_then(|()| file.sync_data());
        match written {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let err = AuditError::Write(format!("{}: {e}", path.display()));
                // Cut off whatever part of the group reached the file; if that is impossible,
                // never append to this file again.
                let truncated = file.set_len(self.size).and_then(|()| file.sync_data());
                if truncated.is_err() {
                    self.file = None;
                }
                Err(err)
            }
        }
    }

    /// Starts a new file named after now — or just after the newest event or file name so far,
    /// if the clock is behind them — then applies retention.
    fn rotate(&mut self) -> Result<(), AuditError> {
        self.file = None;
        let mut micros = micros_since_epoch(SystemTime::now())
            .max(self.newest_written.saturating_add(1))
            .max(self.last_name.map_or(i64::MIN, |m| m.saturating_add(1)));
        for _ in 0..1000 {
            let Some(name) = files::file_name(micros) else {
                return Err(AuditError::Write(format!(
                    "cannot name an audit file for time {micros}µs"
                )));
            };
            let path = self.dir.join(name);
            match files::create_new(&path) {
                Ok(file) => {
                    files::sync_dir(&self.dir).map_err(|e| {
                        AuditError::Write(format!("cannot sync {}: {e}", self.dir.display()))
                    })?;
                    self.file = Some((file, path));
                    self.size = 0;
                    self.counters.current_bytes.store(0, Ordering::Relaxed);
                    self.last_name = Some(micros);
                    self.apply_retention();
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => micros += 1,
                Err(e) => {
                    return Err(AuditError::Write(format!(
                        "cannot create {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        Err(AuditError::Write(format!(
            "cannot find a free audit file name in {}",
            self.dir.display()
        )))
    }

    fn retention_due(&self) -> bool {
        self.last_retention.elapsed() >= RETENTION_INTERVAL
    }

    /// Deletes what the retention policy no longer keeps (see `retention`), then records what
    /// is kept for [`AuditStats`](super::AuditStats).
    fn apply_retention(&mut self) {
        self.last_retention = Instant::now();
        let listed = match files::list(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, "audit retention: cannot list the directory");
                return;
            }
        };
        let sized: Vec<Entry> = listed
            .into_iter()
            .filter_map(|file| {
                let meta = std::fs::metadata(&file.path).ok()?;
                Some(Entry {
                    file,
                    len: meta.len(),
                    modified: meta.modified().ok().map(micros_since_epoch),
                })
            })
            .collect();
        let current = self.file.as_ref().map(|(_, path)| path.clone());
        let now = micros_since_epoch(SystemTime::now());
        let doomed = retention::to_delete(&sized, current.as_deref(), now, self.policy);
        let mut deleted = 0;
        let mut kept = Vec::with_capacity(sized.len());
        for (i, entry) in sized.into_iter().enumerate() {
            if doomed.binary_search(&i).is_ok() {
                match std::fs::remove_file(&entry.file.path) {
                    Ok(()) => {
                        deleted += 1;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(file = %entry.file.path.display(), error = %e, "audit retention: cannot delete");
                    }
                }
            }
            kept.push(entry);
        }
        if deleted > 0 {
            tracing::info!(
                deleted,
                kept = kept.len(),
                "audit retention deleted the oldest log files (audit_max_bytes / audit_retention_days)"
            );
        }
        let closed: u64 = kept
            .iter()
            .filter(|e| Some(&e.file.path) != current.as_ref())
            .map(|e| e.len)
            .sum();
        let c = &self.counters;
        c.files_deleted.fetch_add(deleted, Ordering::Relaxed);
        c.closed_bytes.store(closed, Ordering::Relaxed);
        c.retained_files.store(kept.len() as u64, Ordering::Relaxed);
        c.oldest_event.store(oldest_event(&kept), Ordering::Relaxed);
    }
}

/// The time of the first event in the oldest file that has one (µs), or `i64::MIN`.
fn oldest_event(files: &[Entry]) -> i64 {
    let first = AuditFilter {
        limit: 1,
        ..AuditFilter::default()
    };
    for entry in files {
        if entry.len == 0 {
            continue;
        }
        let mut found = None;
        if scan::forward(&entry.file, &first, |event| {
            found = Some(micros_since_epoch(event.time));
            false
        })
        .is_ok()
            && let Some(micros) = found
        {
            return micros;
        }
    }
    i64::MIN
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::Decision;

    fn event(n: u64) -> AuditEvent {
        AuditEvent {
            time: SystemTime::now(),
            request_id: format!("req-{n}"),
            uid: None,
            provider: None,
            method: "get".into(),
            path: "movies/m1".into(),
            decision: Decision::Allow,
            rule: None,
            reason: None,
        }
    }

    #[test]
    fn a_failed_write_is_retried_in_a_new_file_and_leaves_no_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut output = Output::open(dir.path(), &AuditConfig::default(), Arc::default()).unwrap();
        let counters = Counters::default();
        let mut buf = Vec::new();
        output
            .write_group(&[event(1)], &mut buf, &counters)
            .unwrap();
        // The handle goes bad (a read-only descriptor: writes and truncation both fail).
        let (_, path) = output.file.take().unwrap();
        let read_only = File::open(&path).unwrap();
        output.file = Some((read_only, path.clone()));
        output
            .write_group(&[event(2), event(3)], &mut buf, &counters)
            .unwrap();
        assert_eq!(counters.write_errors.load(Ordering::Relaxed), 1);
        assert_eq!(counters.events_written.load(Ordering::Relaxed), 3);
        assert_eq!(counters.events_failed.load(Ordering::Relaxed), 0);
        // The first file kept exactly its first group; the retry went to a second file.
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(first.lines().count(), 1);
        assert!(first.contains("req-1"));
        let files = files::list(dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        let second = std::fs::read_to_string(&files[1].path).unwrap();
        assert_eq!(second.lines().count(), 2);
        assert!(second.contains("req-2") && second.contains("req-3"));
        assert!(output.last_error.is_none());
    }
}
