//! The embedded default backend: one SQLite database file in WAL mode, where a commit is
//! acknowledged only once its WAL frames are fsynced, so it survives a crash or power loss. Writes go through one writer thread
//! with group commit (`writer`), which also keeps the WAL under its bound (`wal`); reads use a
//! small pool of read connections (`read`), point reads inline and queries/scans on the blocking
//! pool. The query semantics come from the shared planner in [`crate::query`]; this module only
//! executes its plans.
//!
//! Files: the data directory is created owner-only (0700), and the database file owner-only
//! (0600) before SQLite opens it, so the `-wal` and `-shm` files SQLite creates beside it copy
//! that mode; the lock file is 0600 too.
//!
//! Damage: the lock file says whether the previous run stopped cleanly; after an unclean stop
//! `open` runs `PRAGMA quick_check` before anything is written and refuses a damaged database.
//! At run time a corrupt page marks the store damaged (`health`). [`SqliteStore::check`] is
//! the full check behind `claimdb check`.

mod cache;
mod health;
mod history;
mod lock;
mod read;
mod readers;
mod schema;
mod wal;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use claimdb_model::{CollectionPath, DocPath, Timestamp};
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use cache::{Lookup, RecordCache};
use health::Health;
use lock::DirLock;
pub use lock::LOCK_FILE;
use readers::Readers;
pub use schema::{DB_FILE, Thoroughness};
pub use wal::{DEFAULT_WAL_MAX_BYTES, MIN_WAL_MAX_BYTES};
use writer::{Job, Writer};

use crate::feed::Feed;
use crate::query::PreparedQuery;
use crate::{
    Capabilities, Commit, CommitResult, Document, Documents, PageRequest, Query, QueryPage, Record,
    RecordCondition, Records, Store, StoreError, Subscription,
};

/// Jobs that may wait for the writer before callers wait for room.
const QUEUE_DEPTH: usize = 8192;

/// Settings of [`SqliteStore::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// The write-ahead log is checkpointed so that it stays under about this many bytes (see
    /// `wal`); at least [`MIN_WAL_MAX_BYTES`]. Default [`DEFAULT_WAL_MAX_BYTES`].
    pub wal_max_bytes: u64,
    /// Whether a commit is acknowledged only once it is on disk (default). `false` is for
    /// throwaway data (emulator mode): no fsync, a commit is acknowledged once SQLite has it,
    /// and a crash of the machine (not of the process) may lose acknowledged writes.
    pub durable: bool,
    /// How long the versions commits replace are kept for reads at a past time
    /// ([`crate::history`]); zero keeps none. Default
    /// [`crate::history::DEFAULT_HISTORY_RETENTION`].
    pub history_retention: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            wal_max_bytes: DEFAULT_WAL_MAX_BYTES,
            durable: true,
            history_retention: crate::history::DEFAULT_HISTORY_RETENTION,
        }
    }
}

impl SqliteOptions {
    /// The same options with [`SqliteOptions::durable`] set.
    pub fn with_durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The same options with [`SqliteOptions::wal_max_bytes`] set.
    pub fn with_wal_max_bytes(mut self, bytes: u64) -> Self {
        self.wal_max_bytes = bytes;
        self
    }

    /// The same options with [`SqliteOptions::history_retention`] set.
    pub fn with_history_retention(mut self, retention: Duration) -> Self {
        self.history_retention = retention;
        self
    }
}

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
    /// Whether the database is known to be damaged (see `health`).
    health: Arc<Health>,
    /// System records as last read; kept current by the writer (see `cache`). `None` when
    /// opened read-only: another process writes then.
    records: Option<Arc<RecordCache>>,
    /// Opened with [`SqliteStore::open_read_only`]: writes are refused.
    read_only: bool,
    /// How far back reads at a past time may reach ([`SqliteOptions::history_retention`]).
    retention: Duration,
    /// The data directory's lock, held while the store is open for writing.
    lock: Mutex<Option<DirLock>>,
    /// The change feed: the writer announces each commit once it is durable.
    feed: Feed,
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
    /// Opens (creating if needed) the store in `dir`, whose database file is [`DB_FILE`], with
    /// the default [`SqliteOptions`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        SqliteStore::open_with(dir, SqliteOptions::default())
    }

    /// Opens (creating if needed, owner-only) the store in `dir`. After an unclean stop of the
    /// previous run the database is checked first (`PRAGMA quick_check`); a damaged one is
    /// refused with [`StoreError::DataLoss`].
    pub fn open_with(dir: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if options.wal_max_bytes < MIN_WAL_MAX_BYTES {
            return Err(StoreError::InvalidArgument(format!(
                "wal_max_bytes = {} is too small; use at least {MIN_WAL_MAX_BYTES}",
                options.wal_max_bytes
            )));
        }
        create_private_dir(dir)?;
        let lock = DirLock::acquire(dir)?;
        let db = dir.join(DB_FILE);
        let existed = std::fs::metadata(&db).is_ok_and(|m| m.len() > 0);
        create_private_file(&db)?;
        let conn = schema::connect_writer(dir)?;
        if existed && !lock.was_clean {
            let started = std::time::Instant::now();
            // On a read connection: it maps the file, which reads it three times faster.
            let checker = schema::open_reader(dir)?;
            let problems = schema::integrity_problems(&checker, Thoroughness::Quick, 20)?;
            drop(checker);
            if !problems.is_empty() {
                return Err(health::damaged(format_args!(
                    "after an unclean stop, PRAGMA quick_check found: {}",
                    problems.join("; ")
                )));
            }
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "the previous run did not stop cleanly; the database passed PRAGMA quick_check"
            );
        }
        schema::create_schema(&conn)?;
        let records = Arc::new(RecordCache::default());
        let health = Arc::new(Health::default());
        let readers = Arc::new(Readers::new(dir.to_path_buf(), true, health.clone()));
        let feed = Feed::new();
        let writer = Writer::new(
            conn,
            dir.join(format!("{DB_FILE}-wal")),
            &options,
            records.clone(),
            readers.clone(),
            health.clone(),
            feed.clone(),
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
                health,
                records: Some(records),
                read_only: false,
                retention: options.history_retention,
                lock: Mutex::new(Some(lock)),
                feed,
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
        let health = Arc::new(Health::default());
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                jobs,
                closed: AtomicBool::new(false),
                readers: Arc::new(Readers::new(dir.to_path_buf(), false, health.clone())),
                health,
                records: None,
                read_only: true,
                // Whatever the writing process keeps: its `history_from` bounds the reads.
                retention: crate::history::MAX_HISTORY_RETENTION,
                lock: Mutex::new(None),
                // Nothing is committed through this store: its feed stays silent.
                feed: Feed::new(),
                writer_thread: Mutex::new(None),
            }),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Runs SQLite's integrity check over the database in `dir` and returns the problems found
    /// (none: the database is sound). Reads one snapshot without taking the directory's lock,
    /// so it works while a server runs (whose write-ahead log may then outgrow its bound until
    /// the check ends: the server cannot stop another process's read). A file too damaged to be
    /// read at all fails with [`StoreError::DataLoss`]; a missing one with `Unavailable`.
    pub fn check(dir: &Path, thoroughness: Thoroughness) -> Result<Vec<String>, StoreError> {
        let file = dir.join(DB_FILE);
        if !file.is_file() {
            return Err(StoreError::Unavailable(format!(
                "there is no claimdb database in {} (no {DB_FILE})",
                dir.display()
            )));
        }
        let conn = schema::open_reader(dir)?;
        schema::integrity_problems(&conn, thoroughness, 100)
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
        self.inner.health.check()?;
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

/// Creates `dir` (and missing parents) owner-only; an existing directory keeps its mode (`serve`
/// warns when it is wider).
fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot create data directory {}: {e}",
            dir.display()
        ))
    })
}

/// Creates `path` empty and owner-only if it does not exist (an existing file is untouched).
/// Called before SQLite opens the database: closing a descriptor of the database file while
/// SQLite holds its record locks would release them.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .map(drop)
        .map_err(|e| StoreError::Unavailable(format!("cannot create {}: {e}", path.display())))
}

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

#[async_trait]
impl Documents for SqliteStore {
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

    async fn commit(&self, commit: Commit) -> Result<CommitResult, StoreError> {
        crate::check_write_count(commit.writes.len())?;
        self.submit(|reply| Job::Commit { commit, reply }).await
    }

    async fn query(&self, query: &Query, page: &PageRequest) -> Result<QueryPage, StoreError> {
        let prepared = PreparedQuery::new(query, page)?;
        self.read_blocking(move |conn| read::query(conn, &prepared))
            .await
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

    async fn collection_ids(
        &self,
        parent: Option<&DocPath>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let scan = crate::children::ChildScan::collections(parent);
        let after = after.map(str::to_owned);
        self.read_blocking(move |conn| {
            let steps = read::children(conn, &scan, after.as_deref(), limit)?;
            Ok(steps.into_iter().map(|(step, _)| step.id).collect())
        })
        .await
    }

    async fn list_with_missing(
        &self,
        collection: &CollectionPath,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<crate::Child>, StoreError> {
        let (collection, after) = (collection.clone(), after.map(str::to_owned));
        self.read_blocking(move |conn| {
            read::list_with_missing(conn, &collection, after.as_deref(), limit)
        })
        .await
    }

    async fn get_at(
        &self,
        paths: &[DocPath],
        time: Timestamp,
    ) -> Result<Vec<Option<Document>>, StoreError> {
        let retention = self.inner.retention;
        let read = move |conn: &Connection, paths: &[DocPath]| {
            history::check_time(conn, time, retention)?;
            paths
                .iter()
                .map(|p| history::get_at(conn, p, time))
                .collect()
        };
        if paths.len() <= 4 {
            return self.inner.with_reader(|conn| read(conn, paths));
        }
        let paths = paths.to_vec();
        self.read_blocking(move |conn| read(conn, &paths)).await
    }

    async fn query_at(
        &self,
        query: &Query,
        page: &PageRequest,
        time: Timestamp,
    ) -> Result<QueryPage, StoreError> {
        let mut prepared = PreparedQuery::new(query, page)?;
        let retention = self.inner.retention;
        self.read_blocking(move |conn| {
            history::check_time(conn, time, retention)?;
            let history = history::in_scope(conn, prepared.scope(), time, prepared.max_examined())?;
            prepared.at(time, history);
            read::query(conn, &prepared)
        })
        .await
    }

    async fn collection_ids_at(
        &self,
        parent: Option<&DocPath>,
        after: Option<&str>,
        limit: usize,
        time: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let scan = crate::children::ChildScan::collections(parent);
        let after = after.map(str::to_owned);
        let retention = self.inner.retention;
        self.read_blocking(move |conn| {
            history::check_time(conn, time, retention)?;
            let steps = history::children_at(conn, &scan, after.as_deref(), limit, time)?;
            Ok(steps.into_iter().map(|(step, _)| step.id).collect())
        })
        .await
    }

    async fn list_with_missing_at(
        &self,
        collection: &CollectionPath,
        after: Option<&str>,
        limit: usize,
        time: Timestamp,
    ) -> Result<Vec<crate::Child>, StoreError> {
        let (collection, after) = (collection.clone(), after.map(str::to_owned));
        let retention = self.inner.retention;
        self.read_blocking(move |conn| {
            history::check_time(conn, time, retention)?;
            history::list_with_missing_at(conn, &collection, after.as_deref(), limit, time)
        })
        .await
    }

    fn subscribe(&self) -> Subscription {
        self.inner.feed.subscribe()
    }
}

#[async_trait]
impl Records for SqliteStore {
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
}

#[async_trait]
impl Store for SqliteStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            journal: true,
            feed_across_processes: false,
        }
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

    async fn ping(&self) -> Result<(), StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        self.inner.health.check()?;
        self.inner.with_reader(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(schema::internal)
        })
    }

    async fn close(&self) -> Result<(), StoreError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (reply, done) = oneshot::channel();
        let mut clean = false;
        if !self.inner.read_only && self.inner.jobs.send(Job::Close { reply }).await.is_ok() {
            clean = done.await.unwrap_or(false);
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
        if let Ok(mut lock) = self.inner.lock.lock()
            && let Some(lock) = lock.take()
            && clean
        {
            lock.release_clean();
        }
        Ok(())
    }
}
