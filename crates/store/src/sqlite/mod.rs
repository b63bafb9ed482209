//! The embedded default backend: one SQLite database file in WAL mode, where a commit is
//! acknowledged only once its WAL frames are fsynced, so it survives a crash or power loss. Writes go through one writer thread
//! with group commit (`writer`); reads use a small pool of read connections (`read`), point reads
//! inline and queries/scans on the blocking pool. The query semantics come from the shared
//! planner in [`crate::query`]; this module only executes its plans.

mod cache;
mod read;
mod readers;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use claimdb_model::DocPath;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use cache::{Lookup, RecordCache};
use readers::Readers;
pub use schema::DB_FILE;
use writer::{Job, Writer};

use crate::query::PreparedQuery;
use crate::{
    CommitResult, Document, PageRequest, Query, QueryPage, ReadCheck, Record, RecordCondition,
    Store, StoreError, Write,
};

/// Jobs that may wait for the writer before callers wait for room.
const QUEUE_DEPTH: usize = 8192;

/// The SQLite-backed [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    jobs: mpsc::Sender<Job>,
    closed: AtomicBool,
    readers: Arc<Readers>,
    /// System records as last read; kept current by the writer (see `cache`). `None` when
    /// opened read-only: another process writes then.
    records: Option<Arc<RecordCache>>,
    /// Opened with [`SqliteStore::open_read_only`]: writes are refused.
    read_only: bool,
    /// The data directory's lock, held while the store is open for writing.
    lock: Mutex<Option<std::fs::File>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `dir`, whose database file is [`DB_FILE`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        let lock = lock_dir(dir)?;
        let conn = schema::open_writer(dir)?;
        let records = Arc::new(RecordCache::default());
        let readers = Arc::new(Readers::new(dir.to_path_buf(), true));
        let writer = Writer::new(
            conn,
            dir.join(format!("{DB_FILE}-wal")),
            records.clone(),
            readers.clone(),
        )?;
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("claimdb-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                jobs,
                closed: AtomicBool::new(false),
                readers,
                records: Some(records),
                read_only: false,
                lock: Mutex::new(Some(lock)),
                writer_thread: Mutex::new(Some(thread)),
            }),
        })
    }

    /// Opens an existing store for reading only, without taking the data directory's lock, so
    /// that it works while another process (a running server) writes it: for `export` and as
    /// a migration's source. Writes fail with `Unavailable`; each read sees the latest commit.
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        let file = dir.join(DB_FILE);
        if !file.is_file() {
            return Err(StoreError::Unavailable(format!(
                "there is no claimdb database in {} (no {DB_FILE})",
                dir.display()
            )));
        }
        // Fail now, not at the first read, if the file is not a database we can read.
        drop(schema::open_reader(dir)?);
        let (jobs, _) = mpsc::channel(1);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                jobs,
                closed: AtomicBool::new(false),
                readers: Arc::new(Readers::new(dir.to_path_buf(), false)),
                records: None,
                read_only: true,
                lock: Mutex::new(None),
                writer_thread: Mutex::new(None),
            }),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        if self.inner.read_only {
            return Err(StoreError::Unavailable(format!(
                "the store in {} was opened read-only",
                self.inner.dir.display()
            )));
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .jobs
            .send(make(reply))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `f` on the blocking pool with a read connection.
    async fn read_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.with_reader(f))
            .await
            .map_err(|e| StoreError::Internal(format!("read task failed: {e}")))?
    }
}

impl Inner {
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.readers.with(f)
    }
}

/// Namespaces and keys are non-empty and at most 1 KiB (what every backend can index).
pub(crate) fn check_record_name(namespace: &str, key: &str) -> Result<(), StoreError> {
    for (what, s) in [("namespace", namespace), ("key", key)] {
        if s.is_empty() || s.len() > 1024 {
            return Err(StoreError::InvalidArgument(format!(
                "a record {what} must be 1 to 1024 bytes, not {}",
                s.len()
            )));
        }
    }
    Ok(())
}

/// The name of the lock file in the data directory.
pub const LOCK_FILE: &str = "claimdb.lock";

/// Takes the data directory's lock (an exclusive `flock` on [`LOCK_FILE`], released when the
/// store closes or the process ends): one process at a time writes a database, which the
/// records cache and the writer's counters rely on. The lock file names the holder's pid.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    use std::io::{Read, Seek, Write};
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            StoreError::Unavailable(format!("cannot open the lock file {}: {e}", path.display()))
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let by = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(StoreError::Unavailable(format!(
                "the data directory {} is in use by another claimdb process{by}; stop it first \
                 (`claimdb export` works while it runs)",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StoreError::Unavailable(format!(
                "cannot lock {}: {e}",
                path.display()
            )));
        }
    }
    // Best effort: the pid is only for the message above.
    let _ = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(file)
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, path: &DocPath) -> Result<Option<Document>, StoreError> {
        self.inner
            .with_reader(|conn| schema::get_document(conn, path))
    }

    async fn get_many(&self, paths: &[DocPath]) -> Result<Vec<Option<Document>>, StoreError> {
        if paths.len() <= 4 {
            return self.inner.with_reader(|conn| read::get_many(conn, paths));
        }
        let paths = paths.to_vec();
        self.read_blocking(move |conn| read::get_many(conn, &paths))
            .await
    }

    async fn commit_checked(
        &self,
        checks: Vec<ReadCheck>,
        writes: Vec<Write>,
    ) -> Result<CommitResult, StoreError> {
        self.commit_journaled(checks, writes, Vec::new()).await
    }

    fn keeps_journal(&self) -> bool {
        true
    }

    async fn commit_journaled(
        &self,
        checks: Vec<ReadCheck>,
        writes: Vec<Write>,
        journal: Vec<String>,
    ) -> Result<CommitResult, StoreError> {
        let max = claimdb_model::limits::MAX_BATCH_WRITES;
        if writes.len() > max {
            return Err(StoreError::InvalidArgument(format!(
                "a commit holds at most {max} writes, not {}",
                writes.len()
            )));
        }
        self.submit(|reply| Job::Commit {
            checks,
            writes,
            journal,
            reply,
        })
        .await
    }

    async fn journal(&self, after: u64, limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        self.inner
            .with_reader(|conn| read::journal(conn, after, limit))
    }

    async fn journal_last(&self) -> Result<u64, StoreError> {
        self.inner.with_reader(|conn| {
            let last: i64 = conn
                .query_row("SELECT coalesce(max(seq), 0) FROM journal", [], |r| {
                    r.get(0)
                })
                .map_err(schema::internal)?;
            Ok(u64::try_from(last).unwrap_or(0))
        })
    }

    async fn trim_journal(&self, through: u64) -> Result<(), StoreError> {
        self.submit(|reply| Job::TrimJournal { through, reply })
            .await
    }

    async fn query(&self, query: &Query, page: &PageRequest) -> Result<QueryPage, StoreError> {
        let prepared = PreparedQuery::new(query, page)?;
        self.read_blocking(move |conn| read::query(conn, &prepared))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.inner.with_reader(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(schema::internal)
        })
    }

    async fn scan(
        &self,
        after: Option<&DocPath>,
        limit: usize,
    ) -> Result<Vec<Document>, StoreError> {
        let after = after.cloned();
        self.read_blocking(move |conn| read::scan(conn, after.as_ref(), limit))
            .await
    }

    async fn restore(&self, documents: Vec<Document>) -> Result<(), StoreError> {
        self.submit(|reply| Job::Restore { documents, reply }).await
    }

    async fn get_record(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        let read = || {
            self.inner
                .with_reader(|conn| schema::get_record(conn, namespace, key))
        };
        let Some(cache) = &self.inner.records else {
            return read();
        };
        let seen = match cache.lookup(namespace, key) {
            Lookup::Hit(value) => return Ok(value),
            Lookup::Miss(seen) => seen,
        };
        let value = read()?;
        cache.fill(seen, namespace, key, value.as_deref());
        Ok(value)
    }

    async fn list_records(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (ns, after) = (namespace.to_owned(), after.map(str::to_owned));
        self.read_blocking(move |conn| read::list_records(conn, &ns, after.as_deref(), limit))
            .await
    }

    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: Option<String>,
        condition: RecordCondition,
    ) -> Result<bool, StoreError> {
        check_record_name(namespace, key)?;
        self.submit(|reply| Job::Record {
            ns: namespace.to_owned(),
            key: key.to_owned(),
            value,
            condition,
            reply,
        })
        .await
    }

    async fn scan_records(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let after = after.map(|(n, k)| (n.to_owned(), k.to_owned()));
        self.read_blocking(move |conn| {
            read::scan_records(
                conn,
                after.as_ref().map(|(n, k)| (n.as_str(), k.as_str())),
                limit,
            )
        })
        .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        if !self.inner.read_only && self.inner.jobs.send(Job::Close { reply }).await.is_ok() {
            let _ = done.await;
        }
        let thread = self
            .inner
            .writer_thread
            .lock()
            .ok()
            .and_then(|mut t| t.take());
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| StoreError::Internal(format!("joining the writer: {e}")))?
                .map_err(|_| StoreError::Internal("the writer thread panicked".into()))?;
        }
        // Another process may open the directory now.
        if let Ok(mut lock) = self.inner.lock.lock() {
            lock.take();
        }
        Ok(())
    }
}
