//! [`AuditLog`]: the request path's handle on the log. Recording an event is a push onto a
//! bounded in-memory queue under a briefly held lock; a dedicated writer thread
//! (`writer.rs`) takes the whole queue at once, encodes it, appends it and fdatasyncs it.
//!
//! Cost on the caller's side: one uncontended lock and a move of the event. The writer is not
//! woken per event: it sleeps until the first event after an idle period, then gathers events for
//! up to `flush_interval` (or until a durable record, a flush, or a half-full queue asks for a
//! write now). When the queue is full, `record` waits asynchronously for the writer to take it:
//! nothing is dropped and no tokio worker thread is blocked.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, oneshot};

use super::event::system_time_from_micros;
use super::{AuditError, AuditEvent, writer};

/// Settings of an [`AuditLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// A file is rotated before it would grow past this size or an eighth of `max_bytes`,
    /// whichever is smaller (a single event larger than this gets a file of its own), and once a
    /// day. Default 64 MiB.
    pub max_file_bytes: u64,
    /// The log keeps at most about this many bytes: beyond, its oldest files are deleted (never
    /// the one being written). However many files or restarts: retention is by size and age,
    /// never by count. Default 1 GiB.
    pub max_bytes: u64,
    /// Files whose every event is older than this are deleted; `None` keeps events whatever
    /// their age (up to `max_bytes`). Default 90 days.
    pub max_age: Option<Duration>,
    /// Longest time an event recorded with [`AuditLog::record`] waits in memory before it is
    /// written and synced. Default 50 ms.
    pub flush_interval: Duration,
    /// Events the queue holds before `record` waits for the writer. Default 16,384.
    pub queue_capacity: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            max_file_bytes: 64 * 1024 * 1024,
            max_bytes: DEFAULT_MAX_BYTES,
            max_age: Some(DEFAULT_MAX_AGE),
            flush_interval: Duration::from_millis(50),
            queue_capacity: 16_384,
        }
    }
}

impl AuditConfig {
    fn validate(&self) -> Result<(), AuditError> {
        if self.max_file_bytes < 4096 {
            return Err(AuditError::Config(format!(
                "max_file_bytes = {} is too small; use at least 4096",
                self.max_file_bytes
            )));
        }
        if self.max_bytes < MIN_MAX_BYTES {
            return Err(AuditError::Config(format!(
                "max_bytes = {} is too small; use at least {MIN_MAX_BYTES}",
                self.max_bytes
            )));
        }
        if self
            .max_age
            .is_some_and(|age| age < Duration::from_secs(3600))
        {
            return Err(AuditError::Config(
                "max_age must be at least an hour".into(),
            ));
        }
        if self.flush_interval > Duration::from_secs(60) {
            return Err(AuditError::Config(format!(
                "flush_interval = {:?} is too long; use at most 60 s",
                self.flush_interval
            )));
        }
        if self.queue_capacity < 2 {
            return Err(AuditError::Config(
                "queue_capacity must be at least 2".into(),
            ));
        }
        Ok(())
    }
}

/// Default [`AuditConfig::max_bytes`].
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// Default [`AuditConfig::max_age`].
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(90 * 86_400);
/// Smallest [`AuditConfig::max_bytes`]: room for eight files of 4 KiB.
pub const MIN_MAX_BYTES: u64 = 32 * 1024;

impl AuditConfig {
    /// The size at which files rotate: `max_file_bytes`, or an eighth of `max_bytes` if that is
    /// smaller, so that retention by size deletes a small part of the log at a time.
    pub(crate) fn file_limit(&self) -> u64 {
        self.max_file_bytes.min((self.max_bytes / 8).max(4096))
    }
}

/// Counters for `/metrics` and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditStats {
    /// Events written and synced.
    pub events_written: u64,
    /// Events whose group failed to write or sync (possibly lost).
    pub events_failed: u64,
    /// Failed write, sync or file-rotation attempts.
    pub write_errors: u64,
    /// Groups written with one fdatasync each.
    pub groups_synced: u64,
    /// Events waiting in memory for the writer.
    pub queue_depth: usize,
    /// False from a failed write until the next group is written successfully.
    pub healthy: bool,
    /// Bytes in the log's files now (what retention keeps).
    pub retained_bytes: u64,
    /// The log's files now.
    pub retained_files: u64,
    /// Time of the oldest event kept (the first line of the oldest file), if any.
    pub oldest_event: Option<SystemTime>,
    /// Files deleted by retention since the log was opened.
    pub files_deleted: u64,
    /// The retention settings: [`AuditConfig::max_bytes`] and [`AuditConfig::max_age`].
    pub max_bytes: u64,
    pub max_age: Option<Duration>,
}

/// A shared handle on an audit log directory. Cheap to clone; the writer thread stops (after
/// writing everything queued) on [`close`](AuditLog::close) or when the last handle is dropped.
#[derive(Clone)]
pub struct AuditLog {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.handle.shared.dir)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating, owner-only) the log directory `dir`, starts a new file and the writer
    /// thread. Blocking IO: call it at startup.
    pub fn open(dir: &Path, config: AuditConfig) -> Result<AuditLog, AuditError> {
        config.validate()?;
        let mut shared = Shared::new(dir, config.queue_capacity);
        shared.retention = (config.max_bytes, config.max_age);
        let shared = Arc::new(shared);
        writer::start(Arc::clone(&shared), config)?;
        Ok(AuditLog {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// The directory this log writes to.
    pub fn dir(&self) -> &Path {
        &self.handle.shared.dir
    }

    /// Queues `event` to be written within `flush_interval`. Returns at once unless the queue is
    /// full, in which case it waits (asynchronously) for room. Errors only once the log is
    /// closed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditError> {
        // The common case stays out of the waiting state machine: one move into the queue.
        match self.handle.shared.try_push(event, None) {
            Ok(()) => Ok(()),
            Err(PushError::Closed(_)) => Err(AuditError::Closed),
            Err(PushError::Full(event, waiter)) => self.wait_for_room(event, waiter).await,
        }
    }

    /// Queues `event` without waiting: gives it back when the queue is full (or the log closed),
    /// for callers that cannot await.
    #[allow(
        clippy::result_large_err,
        reason = "handing the event back by value, not boxed, keeps the request path free of allocation"
    )]
    pub fn try_record(&self, event: AuditEvent) -> Result<(), AuditEvent> {
        match self.handle.shared.try_push(event, None) {
            Ok(()) => Ok(()),
            Err(PushError::Full(event, _)) => Err(event),
            Err(PushError::Closed(event)) => Err(event),
        }
    }

    /// Queues `event` and resolves once the group holding it is written and fdatasynced — or
    /// with the write error, in which case the event may be lost.
    pub async fn record_durable(&self, event: AuditEvent) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        match self.handle.shared.try_push(event, Some(tx)) {
            Ok(()) => {}
            Err(PushError::Closed(_)) => return Err(AuditError::Closed),
            Err(PushError::Full(event, waiter)) => self.wait_for_room(event, waiter).await?,
        }
        rx.await.unwrap_or(Err(AuditError::Closed))
    }

    /// Resolves once every event recorded before the call is on disk. Errors when the group it
    /// joined failed, or when nothing was left to write but the last write had failed.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let rx = {
            let mut q = self.handle.shared.lock();
            if q.state == State::Exited {
                return Ok(());
            }
            let (tx, rx) = oneshot::channel();
            q.waiters.push(tx);
            q.urgent = true;
            rx
        };
        self.handle.shared.wake.notify_one();
        rx.await.unwrap_or(Err(AuditError::Closed))
    }

    /// Stops accepting events, writes and syncs everything queued, and stops the writer. Later
    /// `record`s fail with [`AuditError::Closed`]; calling `close` again is harmless.
    pub async fn close(&self) -> Result<(), AuditError> {
        let rx = {
            let mut q = self.handle.shared.lock();
            if q.state == State::Exited {
                return Ok(());
            }
            q.state = State::Closing;
            let (tx, rx) = oneshot::channel();
            q.waiters.push(tx);
            q.urgent = true;
            rx
        };
        self.handle.shared.wake.notify_one();
        // Callers waiting for room must see the log closing instead of waiting forever.
        self.handle.shared.space.notify_waiters();
        rx.await.unwrap_or(Err(AuditError::Closed))
    }

    /// False while writes fail (from a failed write until the next successful one).
    pub fn healthy(&self) -> bool {
        self.handle.shared.counters.healthy()
    }

    /// The log's counters.
    pub fn stats(&self) -> AuditStats {
        let shared = &self.handle.shared;
        let c = &shared.counters;
        AuditStats {
            events_written: c.events_written.load(Ordering::Relaxed),
            events_failed: c.events_failed.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
            groups_synced: c.groups_synced.load(Ordering::Relaxed),
            queue_depth: shared.lock().events.len(),
            healthy: c.healthy(),
            retained_bytes: c.closed_bytes.load(Ordering::Relaxed)
                + c.current_bytes.load(Ordering::Relaxed),
            retained_files: c.retained_files.load(Ordering::Relaxed),
            oldest_event: match c.oldest_event.load(Ordering::Relaxed) {
                i64::MIN => None,
                micros => Some(system_time_from_micros(micros)),
            },
            files_deleted: c.files_deleted.load(Ordering::Relaxed),
            max_bytes: shared.retention.0,
            max_age: shared.retention.1,
        }
    }

    #[cfg(test)]
    pub(crate) fn handle_for_tests(&self) -> &Shared {
        &self.handle.shared
    }

    /// The slow path of a push that found the queue full: wait for the writer to take it.
    async fn wait_for_room(
        &self,
        mut event: AuditEvent,
        mut waiter: Option<Waiter>,
    ) -> Result<(), AuditError> {
        let shared = &self.handle.shared;
        loop {
            // Register for the writer's "room available" before looking again, so a wakeup
            // between the check and the wait is not lost.
            let notified = shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match shared.try_push(event, waiter) {
                Ok(()) => return Ok(()),
                Err(PushError::Closed(_)) => return Err(AuditError::Closed),
                Err(PushError::Full(e, w)) => (event, waiter) = (e, w),
            }
            notified.await;
        }
    }
}

/// Resolved by the writer with the result of the group that covered it.
pub(crate) type Waiter = oneshot::Sender<Result<(), AuditError>>;

/// State shared by the handles and the writer thread.
pub(crate) struct Shared {
    pub dir: PathBuf,
    pub capacity: usize,
    /// `max_bytes` and `max_age` of the configuration, for [`AuditStats`].
    pub retention: (u64, Option<Duration>),
    pub queue: Mutex<Queue>,
    /// Wakes the writer: a durable record, a flush, a close, a half-full queue, or the first
    /// event after the writer went idle.
    pub wake: Condvar,
    /// Signalled by the writer each time it empties the queue.
    pub space: Notify,
    pub counters: Arc<Counters>,
    /// Tests hold this to stop the writer just before it takes the queue.
    #[cfg(test)]
    pub gate: Mutex<()>,
}

pub(crate) struct Queue {
    pub events: Vec<AuditEvent>,
    /// Resolved once everything queued before them is written.
    pub waiters: Vec<Waiter>,
    /// Write now rather than at the end of the flush interval.
    pub urgent: bool,
    /// The writer sleeps until woken (no timer) because nothing was queued.
    pub writer_idle: bool,
    pub state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Open,
    /// No new events; the writer drains the queue and stops.
    Closing,
    /// The writer has stopped; nothing is pending.
    Exited,
}

pub(crate) struct Counters {
    pub events_written: AtomicU64,
    pub events_failed: AtomicU64,
    pub write_errors: AtomicU64,
    pub groups_synced: AtomicU64,
    /// Set while the last write failed.
    pub failing: AtomicBool,
    /// Bytes of the files other than the one being written, as of the last retention pass.
    pub closed_bytes: AtomicU64,
    /// Bytes synced to the file being written.
    pub current_bytes: AtomicU64,
    pub retained_files: AtomicU64,
    /// µs since the epoch of the oldest event kept; `i64::MIN`: none known.
    pub oldest_event: AtomicI64,
    pub files_deleted: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            events_written: AtomicU64::new(0),
            events_failed: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            groups_synced: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            closed_bytes: AtomicU64::new(0),
            current_bytes: AtomicU64::new(0),
            retained_files: AtomicU64::new(0),
            oldest_event: AtomicI64::new(i64::MIN),
            files_deleted: AtomicU64::new(0),
        }
    }
}

impl Counters {
    pub(crate) fn healthy(&self) -> bool {
        !self.failing.load(Ordering::Relaxed)
    }
}

pub(crate) enum PushError {
    Full(AuditEvent, Option<Waiter>),
    Closed(AuditEvent),
}

impl Shared {
    pub(crate) fn new(dir: &Path, capacity: usize) -> Shared {
        Shared {
            dir: dir.to_path_buf(),
            capacity,
            retention: (DEFAULT_MAX_BYTES, Some(DEFAULT_MAX_AGE)),
            queue: Mutex::new(Queue {
                events: Vec::new(),
                waiters: Vec::new(),
                urgent: false,
                writer_idle: false,
                state: State::Open,
            }),
            wake: Condvar::new(),
            space: Notify::new(),
            counters: Arc::default(),
            #[cfg(test)]
            gate: Mutex::new(()),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Queue> {
        // The lock only guards plain pushes and swaps; a panic elsewhere cannot leave the queue
        // inconsistent, so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[allow(
        clippy::result_large_err,
        reason = "the event goes back to the caller by value; boxing would allocate per event"
    )]
    pub(crate) fn try_push(
        &self,
        event: AuditEvent,
        waiter: Option<Waiter>,
    ) -> Result<(), PushError> {
        let mut q = self.lock();
        if q.state != State::Open {
            return Err(PushError::Closed(event));
        }
        if q.events.len() >= self.capacity {
            let wake = !q.urgent;
            q.urgent = true;
            drop(q);
            if wake {
                self.wake.notify_one();
            }
            return Err(PushError::Full(event, waiter));
        }
        q.events.push(event);
        let mut wake = false;
        if let Some(waiter) = waiter {
            q.waiters.push(waiter);
            wake = !q.urgent;
            q.urgent = true;
        } else if q.events.len() >= self.capacity / 2 && !q.urgent {
            // Start writing before callers have to wait for room.
            q.urgent = true;
            wake = true;
        }
        if q.writer_idle {
            q.writer_idle = false;
            wake = true;
        }
        drop(q);
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Called when the last handle goes away: write what is queued, then stop the writer.
    fn begin_close(&self) {
        let mut q = self.lock();
        if q.state == State::Open {
            q.state = State::Closing;
            q.urgent = true;
        }
        drop(q);
        self.wake.notify_one();
        self.space.notify_waiters();
    }
}

/// The last clone's drop stops the writer (after it has written the queue).
struct Handle {
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.begin_close();
    }
}
