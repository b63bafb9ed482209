//! Keeping the write-ahead log under its bound (`wal_max_bytes`). SQLite appends every commit to
//! the WAL and reuses the file from its start only after a checkpoint has copied every frame
//! into the database file *and* no reader still reads from the WAL. With readers always busy
//! (queries, and read transactions kept open between reads) that moment never comes by itself,
//! and the file grows without bound; it also never shrinks, and a large one is read whole at
//! the next start.
//!
//! So the writer thread checkpoints itself, after each committed group (SQLite's automatic
//! checkpoint is replaced by a hook that only counts the WAL's frames):
//!
//! - every sixteenth of the bound: a PASSIVE checkpoint (copies what no snapshot needs; waits
//!   for nobody), so that restarting later has little left to copy. It runs on a thread and
//!   connection of its own ([`Background`]): copying pages and its two fsyncs do not hold up
//!   commits;
//! - past a quarter of the bound: a RESTART checkpoint, at most every [`SOFT_INTERVAL`]. Idle
//!   read connections end their snapshots and reads end theirs while it runs
//!   (`Readers::pause`); it waits at most [`SOFT_WAIT`] for reads in progress, and the next write
//!   starts the WAL over (`journal_size_limit` cuts the file back to a quarter of the bound);
//! - past half the bound: writes wait until the restart succeeds. A read that has
//!   held its snapshot for more than [`MAX_SNAPSHOT_AGE`] then is interrupted (it fails with a
//!   retryable `unavailable`): under heavy writes, a long read gives, not the bound. Readers in
//!   other processes (`claimdb export`, `claimdb check`) cannot be interrupted: once no read of
//!   this process is left in progress (or after [`GIVE_UP`]) writes go on, the WAL exceeds its
//!   bound until that reader finishes (logged), and for a while ([`BACKOFF`], doubling while it
//!   lasts) no restart waits for readers.
//!
//! The file so stays under the bound as long as one group of writes adds less than half of it
//! (a group is at most 256 commits; at the default 64 MiB, tens of thousands of small writes).
//!
//! At start and at a clean close the WAL is checkpointed and truncated to zero bytes.

use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::health::Health;
use super::readers::Readers;
use super::schema::{internal, no_checkpoint_on_close};
use crate::StoreError;

/// Default bound of the WAL file.
pub const DEFAULT_WAL_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest bound accepted: a few groups of writes must fit.
pub const MIN_WAL_MAX_BYTES: u64 = 1024 * 1024;

/// How long a restart past a quarter of the bound waits for reads in progress.
const SOFT_WAIT: Duration = Duration::from_millis(25);
/// Least time between two restart attempts past a quarter of the bound.
const SOFT_INTERVAL: Duration = Duration::from_millis(50);
/// How long one attempt past half the bound waits for reads.
const HARD_WAIT: Duration = Duration::from_millis(50);
/// The longest a read may keep its snapshot while writes wait for the WAL to restart.
pub(super) const MAX_SNAPSHOT_AGE: Duration = Duration::from_secs(1);
/// How long writes wait past half the bound before going on regardless.
const GIVE_UP: Duration = Duration::from_secs(3);
/// After giving up, how long before restarts wait for readers again; doubled after each
/// consecutive give-up, up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The writer's usual busy timeout, restored after each checkpoint.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct WalControl {
    max_bytes: u64,
    /// Bytes one frame takes in the WAL: a page and its 24-byte header.
    frame_bytes: u64,
    /// Frames in the WAL since it last started over, as of the last commit (set by the hook).
    frames: Arc<AtomicI64>,
    /// `frames` at the last checkpoint (or request for one).
    checkpointed: i64,
    /// Runs the PASSIVE checkpoints; `None` if its thread could not start (they run inline).
    background: Option<Background>,
    /// Held by whichever checkpoint runs: SQLite refuses a second one at once rather than
    /// waiting, so the writer's restarts wait here for the background's copy to finish.
    running: Arc<Mutex<()>>,
    last_attempt: Option<Instant>,
    /// Set after giving up: no waiting for readers before then.
    backoff_until: Option<Instant>,
    /// Give-ups since the last successful restart.
    give_ups: u32,
}

/// What a checkpoint achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Every frame copied; after RESTART or TRUNCATE the WAL also starts over.
    Done,
    /// A snapshot still needs the WAL (or a lock was not free in time).
    Busy,
}

impl WalControl {
    /// Takes over checkpointing on the write connection of the database file `db`: installs the
    /// frame-counting hook (which replaces SQLite's automatic checkpoint) and the file size
    /// limit, and starts the background checkpointer.
    pub(super) fn install(
        conn: &mut Connection,
        db: &Path,
        max_bytes: u64,
        health: Arc<Health>,
    ) -> Result<WalControl, StoreError> {
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(internal)?;
        let limit = i64::try_from(max_bytes / 4).unwrap_or(i64::MAX);
        conn.query_row(&format!("PRAGMA journal_size_limit = {limit}"), [], |_| {
            Ok(())
        })
        .map_err(internal)?;
        let frames = Arc::new(AtomicI64::new(0));
        let counter = frames.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, n: c_int| {
            counter.store(i64::from(n), Ordering::Relaxed);
            Ok(())
        }))
        .map_err(internal)?;
        let running = Arc::new(Mutex::new(()));
        let background = match Background::start(db, running.clone(), health) {
            Ok(background) => Some(background),
            Err(e) => {
                tracing::warn!("no background checkpointer ({e}); the writer checkpoints itself");
                None
            }
        };
        Ok(WalControl {
            max_bytes,
            frame_bytes: u64::try_from(page).unwrap_or(4096) + 24,
            frames,
            checkpointed: 0,
            background,
            running,
            last_attempt: None,
            backoff_until: None,
            give_ups: 0,
        })
    }

    /// The WAL's size in bytes as of the last commit (frames since it last started over).
    pub(super) fn bytes(&self) -> u64 {
        u64::try_from(self.frames.load(Ordering::Relaxed)).unwrap_or(0) * self.frame_bytes
    }

    /// Called after each committed group (and acknowledged to the syncer): checkpoints as the
    /// module docs say.
    pub(super) fn after_commit(
        &mut self,
        conn: &Connection,
        readers: &Readers,
    ) -> Result<(), StoreError> {
        let bytes = self.bytes();
        let now = Instant::now();
        let backing_off = self.backoff_until.is_some_and(|t| now < t);
        if bytes >= self.max_bytes / 2 && !backing_off {
            return self.restart_waiting(conn, readers);
        }
        if bytes >= self.max_bytes / 4
            && self
                .last_attempt
                .is_none_or(|t| now.duration_since(t) >= SOFT_INTERVAL)
        {
            self.last_attempt = Some(now);
            let _pause = readers.pause();
            let wait = if backing_off {
                Duration::ZERO
            } else {
                SOFT_WAIT
            };
            self.checkpoint(conn, "RESTART", wait)?;
            return Ok(());
        }
        let step = (self.max_bytes / 16 / self.frame_bytes).max(1);
        let frames = self.frames.load(Ordering::Relaxed);
        if u64::try_from(frames - self.checkpointed).unwrap_or(0) >= step {
            match &self.background {
                Some(background) => {
                    background.request();
                    self.checkpointed = frames;
                }
                None => {
                    self.checkpoint(conn, "PASSIVE", Duration::ZERO)?;
                }
            }
        }
        Ok(())
    }

    /// Past half the bound: writes (this thread) wait until the WAL restarts,
    /// interrupting reads that hold their snapshot too long, for at most [`GIVE_UP`].
    fn restart_waiting(&mut self, conn: &Connection, readers: &Readers) -> Result<(), StoreError> {
        let started = Instant::now();
        let _pause = readers.pause();
        // Failed attempts in a row with no read of this process in progress: the snapshot in
        // the way is another process's, which waiting does not end.
        let mut not_ours = 0;
        loop {
            if self.checkpoint(conn, "RESTART", HARD_WAIT)? == Outcome::Done {
                return Ok(());
            }
            let stopped = readers.interrupt_older_than(MAX_SNAPSHOT_AGE);
            not_ours = if readers.in_progress() == 0 {
                not_ours + 1
            } else {
                0
            };
            if not_ours >= 2 || started.elapsed() >= GIVE_UP {
                tracing::warn!(
                    wal_bytes = self.bytes(),
                    wal_max_bytes = self.max_bytes,
                    "the write-ahead log cannot start over: a snapshot outside this process's \
                     control (another process reading the database, such as `claimdb export` or \
                     `claimdb check`) still needs it{}; writes go on and the log grows past its \
                     bound until that reader finishes",
                    if stopped > 0 {
                        format!(" ({stopped} long reads of this process were interrupted)")
                    } else {
                        String::new()
                    }
                );
                let backoff = BACKOFF
                    .saturating_mul(1 << self.give_ups.min(8))
                    .min(MAX_BACKOFF);
                self.give_ups += 1;
                self.backoff_until = Some(Instant::now() + backoff);
                return Ok(());
            }
        }
    }

    /// Checkpoints and truncates the WAL to zero bytes, waiting up to `wait` for readers (at
    /// start, and at a clean close).
    pub(super) fn truncate(
        &mut self,
        conn: &Connection,
        readers: &Readers,
        wait: Duration,
    ) -> Result<Outcome, StoreError> {
        let _pause = readers.pause();
        self.checkpoint(conn, "TRUNCATE", wait)
    }

    /// Stops the background checkpointer (before the close's last checkpoint).
    pub(super) fn stop(&mut self) {
        if let Some(mut background) = self.background.take() {
            background.stop();
        }
    }

    /// Runs one checkpoint in `mode`, letting SQLite wait up to `wait` for the locks it needs.
    fn checkpoint(
        &mut self,
        conn: &Connection,
        mode: &str,
        wait: Duration,
    ) -> Result<Outcome, StoreError> {
        let _running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        conn.busy_timeout(wait).map_err(internal)?;
        let result = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        conn.busy_timeout(BUSY_TIMEOUT).map_err(internal)?;
        let (busy, log, copied) = result.map_err(internal)?;
        self.checkpointed = copied.max(0);
        if busy != 0 || copied < log {
            return Ok(Outcome::Busy);
        }
        if mode != "PASSIVE" {
            // The next write starts the log over.
            self.frames.store(0, Ordering::Relaxed);
            self.checkpointed = 0;
            self.give_ups = 0;
            self.backoff_until = None;
        }
        Ok(Outcome::Done)
    }
}

/// The PASSIVE checkpoints, on a thread and a connection of their own.
pub(super) struct Background {
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    fn start(
        db: &Path,
        running: Arc<Mutex<()>>,
        health: Arc<Health>,
    ) -> Result<Background, StoreError> {
        let conn = Connection::open(db).map_err(internal)?;
        no_checkpoint_on_close(&conn)?;
        // A checkpoint syncs the WAL before copying and the database after (NORMAL does both).
        conn.execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(internal)?;
        // One request pending is enough: the checkpoint it runs copies everything there is.
        let (wake, requests) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("claimdb-sqlite-checkpoint".into())
            .spawn(move || {
                let mut last_error: Option<Instant> = None;
                while requests.recv().is_ok() {
                    // Nothing more is copied into a damaged file.
                    if health.is_damaged() {
                        continue;
                    }
                    let _running = running.lock().unwrap_or_else(PoisonError::into_inner);
                    let r = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                        .map_err(internal);
                    health.note(&r);
                    if let Err(e) = r
                        && last_error.is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
                    {
                        last_error = Some(Instant::now());
                        tracing::warn!("checkpointing the write-ahead log failed: {e}");
                    }
                }
            })
            .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer: {e}")))?;
        Ok(Background {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint; never waits (one already pending covers this one).
    fn request(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }

    /// Lets a pending checkpoint finish and stops the thread.
    fn stop(&mut self) {
        self.wake = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use std::time::Instant;

    use claimdb_model::{DocPath, Map, Value};

    use super::*;
    use crate::sqlite::{DB_FILE, SqliteOptions, SqliteStore};
    use crate::{Documents, Store, Write, WriteOp};

    /// "A long query holding a snapshot must not block the bound forever": with the WAL at its
    /// bound and a read holding its snapshot, writes wait at most about [`MAX_SNAPSHOT_AGE`];
    /// then the read is interrupted (a retryable error) and the WAL starts over.
    #[test]
    fn a_read_holding_its_snapshot_too_long_gives_way_to_the_bound() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::default().with_wal_max_bytes(MIN_WAL_MAX_BYTES);
        let store = SqliteStore::open_with(dir.path(), options).unwrap();
        let write = |n: i64| {
            let mut data = Map::new();
            data.insert("text".into(), Value::String(format!("{n}").repeat(100)));
            Write::new(
                DocPath::parse(&format!("c/d{n}")).unwrap(),
                WriteOp::Set {
                    data,
                    transforms: vec![],
                },
            )
        };
        rt.block_on(store.commit(vec![write(0)].into())).unwrap();
        let readers = store.inner.readers.clone();
        let (began, holding) = std::sync::mpsc::channel();
        let long_read = std::thread::spawn(move || {
            readers.with(|conn| {
                let started = Instant::now();
                loop {
                    conn.query_row("SELECT count(*) FROM docs", [], |r| r.get::<_, i64>(0))
                        .map_err(internal)?;
                    let _ = began.send(());
                    if started.elapsed() > Duration::from_secs(20) {
                        return Ok(());
                    }
                }
            })
        });
        holding.recv().unwrap();
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        let mut largest = 0;
        let started = Instant::now();
        let mut n = 1;
        while !long_read.is_finished() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "writes are stuck"
            );
            rt.block_on(store.commit(vec![write(n)].into())).unwrap();
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            n += 1;
        }
        let result = long_read.join().unwrap();
        assert!(
            matches!(&result, Err(StoreError::Unavailable(m)) if m == super::super::readers::INTERRUPTED),
            "{result:?}"
        );
        // Writes go on and the log starts over.
        for _ in 0..200 {
            rt.block_on(store.commit(vec![write(n)].into())).unwrap();
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            n += 1;
        }
        assert!(
            largest <= MIN_WAL_MAX_BYTES,
            "the WAL reached {largest} bytes"
        );
        rt.block_on(store.close()).unwrap();
    }
    /// A snapshot held by another process (`claimdb check` reading the database) cannot be
    /// interrupted: writes must not wait for it beyond a couple of attempts.
    #[test]
    fn another_process_s_snapshot_does_not_stall_writes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::default().with_wal_max_bytes(MIN_WAL_MAX_BYTES);
        let store = SqliteStore::open_with(dir.path(), options).unwrap();
        let write = |n: i64| {
            let mut data = Map::new();
            data.insert("text".into(), Value::String(format!("{n}").repeat(100)));
            Write::new(
                DocPath::parse(&format!("c/d{n}")).unwrap(),
                WriteOp::Set {
                    data,
                    transforms: vec![],
                },
            )
        };
        rt.block_on(store.commit(vec![write(0)].into())).unwrap();
        let other = super::super::schema::open_reader(dir.path()).unwrap();
        other.execute_batch("BEGIN").unwrap();
        let _: i64 = other
            .query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
            .unwrap();
        let mut slowest = Duration::ZERO;
        for n in 1..600 {
            let started = Instant::now();
            rt.block_on(store.commit(vec![write(n)].into())).unwrap();
            slowest = slowest.max(started.elapsed());
        }
        assert!(
            slowest < Duration::from_secs(1),
            "a write waited {slowest:?}"
        );
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        assert!(
            std::fs::metadata(&wal).unwrap().len() > MIN_WAL_MAX_BYTES / 2,
            "the other snapshot held the log: it cannot have started over"
        );
        drop(other);
        rt.block_on(store.close()).unwrap();
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    }
}
