//! The read connections of the SQLite backend, and the read transactions they keep open.
//!
//! Every read runs inside a read transaction (one snapshot). Beginning and ending one costs
//! more than a point read itself (WAL read-mark locks: `fcntl` calls, the wal-index header),
//! so a connection keeps its transaction open between reads for as long as nothing was
//! committed since it began — a generation counter tells: the writer bumps it after each COMMIT,
//! before acknowledging anything in the group. A read notes the generation *before* its snapshot
//! is taken and reuses an open transaction only if it began at the current generation, so every
//! read that starts after a commit was acknowledged sees it.
//!
//! Open read transactions hold back WAL checkpoints, so after each commit the writer also ends
//! the outdated transactions of idle connections ([`Readers::committed`]). To restart the WAL
//! the writer needs every snapshot gone: [`Readers::pause`] ends the idle ones and makes reads
//! end theirs until the pause is over, and [`Readers::interrupt_older_than`] stops reads that
//! have held one for too long (they fail with a retryable error; see `wal`).
//!
//! Every read also reports what it met to the store's `Health`: a corrupt page marks the store
//! damaged.
//!
//! Reuse is only sound when this process's writer makes every commit; a store opened read-only
//! (another process writes) begins and ends a transaction per read.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle};

use super::health::Health;
use super::schema::{self, internal};
use crate::StoreError;

/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;

/// What a read stopped by [`Readers::interrupt_older_than`] fails with.
pub(super) const INTERRUPTED: &str = "the read was stopped: it kept its snapshot of the database open \
     while the write-ahead log had reached its size bound (wal_max_bytes) under heavy writes; \
     retry it";

pub(super) struct Readers {
    dir: PathBuf,
    pool: Mutex<Pool>,
    /// Bumped after every COMMIT of this process's writer.
    generation: AtomicU64,
    /// Keep read transactions open between reads (see the module docs).
    reuse: bool,
    health: Arc<Health>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Reader>,
    /// Connections inside `with` right now.
    active: Vec<Active>,
    /// Set while the writer restarts the WAL: reads end their transactions.
    paused: bool,
    next_id: u64,
}

struct Reader {
    conn: Connection,
    interrupt: Arc<InterruptHandle>,
    /// The generation at which its open read transaction began; `None`: no transaction open.
    snapshot: Option<u64>,
    /// When that transaction began.
    since: Instant,
}

impl Pool {
    /// Notes `reader` as in use for a read at `generation`; returns its id in `active`.
    fn register(&mut self, reader: &Reader, generation: u64) -> u64 {
        self.next_id += 1;
        // A transaction begun for this read begins now; a reused one began earlier.
        let since = if reader.snapshot == Some(generation) {
            reader.since
        } else {
            Instant::now()
        };
        self.active.push(Active {
            id: self.next_id,
            since,
            interrupt: reader.interrupt.clone(),
        });
        self.next_id
    }
}

/// A connection in use, as the writer sees it.
struct Active {
    id: u64,
    /// When its read transaction began (it may have been reused from an earlier read).
    since: Instant,
    interrupt: Arc<InterruptHandle>,
}

fn begin(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("BEGIN")
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(internal)
}

fn end(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .map(drop)
        .map_err(internal)
}

impl Readers {
    pub(super) fn new(dir: PathBuf, reuse: bool, health: Arc<Health>) -> Readers {
        Readers {
            dir,
            pool: Mutex::new(Pool::default()),
            generation: AtomicU64::new(0),
            reuse,
            health,
        }
    }

    /// The pool; it only guards plain pushes and pops, so a poisoned lock is still usable.
    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a read connection inside a read transaction that sees every commit made
    /// before this call.
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = self.read(f);
        self.health.note(&result);
        result
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // Noted before the snapshot is taken (at the first statement): a commit in between
        // makes the next read begin again, never this one miss a commit.
        let generation = self.generation.load(Ordering::Acquire);
        let mut pool = self.pool();
        let (mut reader, id) = match pool.idle.pop() {
            Some(reader) => {
                let id = pool.register(&reader, generation);
                drop(pool);
                (reader, id)
            }
            None => {
                drop(pool);
                let conn = schema::open_reader(&self.dir)?;
                let reader = Reader {
                    interrupt: Arc::new(conn.get_interrupt_handle()),
                    conn,
                    snapshot: None,
                    since: Instant::now(),
                };
                let id = self.pool().register(&reader, generation);
                (reader, id)
            }
        };
        let result = (|| {
            if reader.snapshot != Some(generation) {
                if reader.snapshot.take().is_some() {
                    end(&reader.conn)?;
                }
                begin(&reader.conn)?;
                reader.snapshot = Some(generation);
                reader.since = Instant::now();
            }
            f(&reader.conn)
        })();
        let mut pool = self.pool();
        if let Some(i) = pool.active.iter().position(|a| a.id == id) {
            pool.active.swap_remove(i);
        }
        if !self.reuse || pool.paused || result.is_err() {
            reader.snapshot = None;
            // Should this fail, the connection stays in a transaction and is dropped below.
            let _ = end(&reader.conn);
        }
        // A connection an error left in an unexpected state is not reused.
        if reader.conn.is_autocommit() == reader.snapshot.is_none()
            && pool.idle.len() < MAX_IDLE_READERS
        {
            pool.idle.push(reader);
        }
        result
    }

    /// Called by the writer after each COMMIT, before acknowledging: later reads take a new
    /// snapshot, and idle connections' outdated transactions end so that checkpoints can
    /// proceed. Never waits: if a reader holds the pool this moment, the next commit sweeps.
    pub(super) fn committed(&self) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let Ok(mut pool) = self.pool.try_lock() else {
            return;
        };
        pool.idle.retain_mut(|reader| {
            if reader.snapshot.is_none_or(|g| g == generation) {
                return true;
            }
            reader.snapshot = None;
            end(&reader.conn).is_ok()
        });
    }

    /// Ends every idle connection's transaction and makes reads end theirs until the returned
    /// guard is dropped: while the writer waits for the WAL to be free of snapshots, no idle
    /// connection may keep one.
    pub(super) fn pause(&self) -> Pause<'_> {
        let mut pool = self.pool();
        pool.paused = true;
        pool.idle.retain_mut(|reader| {
            if reader.snapshot.take().is_none() {
                return true;
            }
            end(&reader.conn).is_ok()
        });
        Pause(self)
    }

    /// How many reads are in progress.
    pub(super) fn in_progress(&self) -> usize {
        self.pool().active.len()
    }

    /// Interrupts the reads whose read transaction began more than `age` ago; returns how
    /// many. A read between two statements misses the interrupt, so the writer repeats it.
    pub(super) fn interrupt_older_than(&self, age: Duration) -> usize {
        let pool = self.pool();
        let Some(cutoff) = Instant::now().checked_sub(age) else {
            return 0;
        };
        let mut n = 0;
        for active in pool.active.iter().filter(|a| a.since <= cutoff) {
            active.interrupt.interrupt();
            n += 1;
        }
        n
    }
}

/// Reads end their transactions while this lives (see [`Readers::pause`]).
pub(super) struct Pause<'a>(&'a Readers);

impl Drop for Pause<'_> {
    fn drop(&mut self) {
        self.0.pool().paused = false;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn open(dir: &std::path::Path) -> Connection {
        let conn = schema::open_writer(dir).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (0);")
            .unwrap();
        conn
    }

    fn value(conn: &Connection) -> Result<i64, StoreError> {
        conn.query_row("SELECT v FROM t", [], |r| r.get(0))
            .map_err(internal)
    }

    #[test]
    fn a_reused_snapshot_never_hides_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let writer = open(dir.path());
        let readers = Readers::new(dir.path().to_path_buf(), true, Arc::default());
        assert_eq!(readers.with(value).unwrap(), 0);
        for v in 1..=5 {
            writer.execute("UPDATE t SET v = ?1", [v]).unwrap();
            // Before `committed` a read may see the old or the new value; after it, the new.
            readers.committed();
            assert_eq!(readers.with(value).unwrap(), v);
            assert_eq!(readers.with(value).unwrap(), v);
        }
    }

    #[test]
    fn snapshots_are_reused_until_a_commit_and_idle_ones_end_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let writer = open(dir.path());
        let readers = Readers::new(dir.path().to_path_buf(), true, Arc::default());
        readers.with(value).unwrap();
        let open_snapshot = |readers: &Readers| {
            let pool = readers.pool.lock().unwrap();
            (pool.idle[0].snapshot, pool.idle[0].conn.is_autocommit())
        };
        assert_eq!(open_snapshot(&readers), (Some(0), false));
        readers.with(value).unwrap();
        assert_eq!(open_snapshot(&readers), (Some(0), false));
        writer.execute("UPDATE t SET v = 1", []).unwrap();
        readers.committed();
        // The idle connection's old transaction was ended by the sweep.
        assert_eq!(open_snapshot(&readers), (None, true));
        // With an old snapshot held, a checkpoint cannot finish; after the sweep it can.
        readers.with(value).unwrap();
        writer.execute("UPDATE t SET v = 2", []).unwrap();
        readers.committed();
        let (busy, _, _): (i64, i64, i64) = writer
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(busy, 0, "a stale read transaction blocked the checkpoint");
    }

    #[test]
    fn without_reuse_every_read_ends_its_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let writer = open(dir.path());
        let readers = Readers::new(dir.path().to_path_buf(), false, Arc::default());
        assert_eq!(readers.with(value).unwrap(), 0);
        // Another process's commit: no `committed` call, still seen.
        writer.execute("UPDATE t SET v = 7", []).unwrap();
        assert_eq!(readers.with(value).unwrap(), 7);
        let pool = readers.pool.lock().unwrap();
        assert!(
            pool.idle
                .iter()
                .all(|r| r.snapshot.is_none() && r.conn.is_autocommit())
        );
    }
}
