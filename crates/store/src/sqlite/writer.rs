//! The single writer of the SQLite backend: one thread owns the write connection and applies
//! jobs (one `commit` or `restore` call each) in groups. It takes whatever is queued, and keeps
//! taking jobs that arrive meanwhile (at most [`MAX_GROUP`]), runs each inside a SAVEPOINT (a
//! one-write commit needs none) so a failing job rolls back alone, then COMMITs the group.
//!
//! Durability is pipelined: the connection runs with `synchronous=NORMAL` (COMMIT writes the WAL
//! frames without fsync) and a second thread, the syncer, fdatasyncs the WAL file and only then
//! replies to every job whose COMMIT finished before that sync began. So no caller is
//! acknowledged before its write is on disk, while the writer applies the next group during the
//! fsync. (A reader may see a committed write shortly before it is durable; a crash in that window
//! loses it, but never an acknowledged one, and the WAL keeps commits in order.) If the syncer
//! cannot start, the connection falls back to `synchronous=FULL` and replies directly. A store
//! opened with `SqliteOptions::durable` false (throwaway data) runs `synchronous=OFF` with no
//! syncer and replies after COMMIT.
//!
//! The syncer also announces each durable commit on the change feed (`crate::feed`), in commit
//! order, just before it acknowledges it; a commit that failed, or whose group did not become
//! durable, is never announced.
//!
//! A commit that replaces or deletes a document that existed before it copies the replaced row
//! into `history` first, in the same transaction; after a group the writer prunes history past
//! the retention in one bounded batch of its own (see `history`).
//!
//! After each group the writer checkpoints the WAL so that it stays under its bound (`wal`).
//! Once a statement meets a corrupt page the store is damaged (`health`): the group is rolled
//! back, every later job refused, and nothing more is checkpointed into the database file.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::thread::JoinHandle;

use claimdb_model::json;
use claimdb_model::{DocPath, Timestamp};
use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use super::cache::RecordCache;
use super::health::Health;
use super::history::{self, Pruner};
use super::readers::Readers;
use super::schema::{document_version, get_document, get_record, internal};
use super::wal::{self, WalControl};
use crate::apply::apply_write;
use crate::feed::{Changes, Feed};
use crate::index::{self, IndexEntry};
use crate::{
    Commit, CommitResult, Document, ReadCheck, RecordCondition, StoreError, Write, WriteResult,
};

/// Most jobs made durable by one COMMIT.
pub(super) const MAX_GROUP: usize = 256;

pub(super) enum Job {
    Commit {
        commit: Commit,
        reply: oneshot::Sender<Result<CommitResult, StoreError>>,
    },
    /// Delete journal lines up to this sequence number.
    TrimJournal {
        through: u64,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Restore {
        documents: Vec<Document>,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Record {
        ns: String,
        key: String,
        value: Option<String>,
        condition: RecordCondition,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// Finish the jobs queued before this one, then stop; replies whether the store closes
    /// cleanly (not damaged, no failed sync).
    Close { reply: oneshot::Sender<bool> },
}

pub(super) struct Writer {
    conn: Connection,
    /// The last version handed out (durable in `meta` once its group commits).
    version: u64,
    /// The last commit time handed out, in µs.
    commit_us: i64,
    /// Where committed groups go to be made durable and acknowledged.
    acks: Acks,
    /// Set once a WAL sync failed: every later job is refused.
    broken: Arc<AtomicBool>,
    /// Readers' cache of system records: changed records are invalidated after each COMMIT.
    records: Arc<RecordCache>,
    /// The read connections: told of each COMMIT (their open snapshots are outdated).
    readers: Arc<Readers>,
    /// Keeps the WAL under its bound.
    wal: WalControl,
    /// Set once a statement met a corrupt page: every later job is refused.
    health: Arc<Health>,
    /// When a checkpoint failure was last logged.
    last_checkpoint_error: Option<std::time::Instant>,
    /// Where durable commits are announced (by the syncer, or here when there is none).
    feed: Feed,
    /// Whether replaced versions are kept (a non-zero retention).
    keep_history: bool,
    /// Deletes history past the retention after groups.
    pruner: Pruner,
}

/// How long a clean close waits for readers before truncating the WAL.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

enum Acks {
    /// The syncer thread fsyncs the WAL, then replies.
    Syncer {
        groups: std_mpsc::Sender<Vec<Outcome>>,
        thread: JoinHandle<()>,
    },
    /// COMMIT itself fsyncs (`synchronous=FULL`), or nothing is fsynced (a store that is not
    /// durable, `synchronous=OFF`); reply right away.
    Inline,
    Stopped,
}

enum Outcome {
    Commit(
        oneshot::Sender<Result<CommitResult, StoreError>>,
        Result<CommitResult, StoreError>,
    ),
    Restore(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
    Record(
        oneshot::Sender<Result<bool, StoreError>>,
        Result<bool, StoreError>,
    ),
    Trim(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
}

impl Outcome {
    /// Replies with the job's result, or with `failure` if the group failed after all; a
    /// commit that stands is announced on `feed` first.
    fn reply(self, failure: Option<&StoreError>, feed: &Feed) {
        match self {
            Outcome::Commit(reply, r) => {
                if let (None, Ok(result)) = (failure, &r)
                    && feed.is_watched()
                {
                    feed.announce(Changes::of(result));
                }
                answer(reply, r, failure)
            }
            Outcome::Restore(reply, r) => answer(reply, r, failure),
            Outcome::Record(reply, r) => answer(reply, r, failure),
            Outcome::Trim(reply, r) => answer(reply, r, failure),
        }
    }
}

/// Sends a job's result, replaced by `failure` (if any) when the job itself succeeded.
fn answer<T>(
    reply: oneshot::Sender<Result<T, StoreError>>,
    r: Result<T, StoreError>,
    failure: Option<&StoreError>,
) {
    let _ = reply.send(match failure {
        Some(e) => r.and(Err(e.clone())),
        None => r,
    });
}

fn wal_failed() -> StoreError {
    StoreError::Unavailable(
        "an earlier write-ahead log sync failed; writes are refused until the store is reopened"
            .into(),
    )
}

/// Makes the WAL file durable; opens it on first use.
fn sync_wal(file: &mut Option<File>, path: &Path) -> Result<(), StoreError> {
    let failed = |e: std::io::Error| {
        StoreError::Internal(format!(
            "cannot make the write-ahead log {} durable: {e}",
            path.display()
        ))
    };
    let f = match file {
        Some(f) => f,
        None => file.insert(File::open(path).map_err(failed)?),
    };
    f.sync_data().map_err(failed)
}

/// The syncer: for every batch of committed groups, one fdatasync of the WAL, then the replies.
/// After a failed sync nothing is acknowledged again (`broken` is set): the kernel may have
/// dropped the dirty pages, so a later sync that succeeds proves nothing.
fn sync_loop(
    groups: std_mpsc::Receiver<Vec<Outcome>>,
    wal: PathBuf,
    broken: Arc<AtomicBool>,
    feed: Feed,
) {
    let mut file = None;
    while let Ok(first) = groups.recv() {
        let mut batch = vec![first];
        batch.extend(groups.try_iter());
        let synced = if broken.load(Ordering::Acquire) {
            Err(wal_failed())
        } else {
            sync_wal(&mut file, &wal)
        };
        if let Err(e) = &synced {
            tracing::error!("{e}; refusing writes from now on");
            broken.store(true, Ordering::Release);
        }
        for outcome in batch.into_iter().flatten() {
            outcome.reply(synced.as_ref().err(), &feed);
        }
    }
}

impl Writer {
    /// Takes over the write connection of the database whose WAL file is `wal`, and truncates
    /// that file (whatever a previous run left in it is copied into the database first).
    pub(super) fn new(
        mut conn: Connection,
        wal: PathBuf,
        options: &super::SqliteOptions,
        records: Arc<RecordCache>,
        readers: Arc<Readers>,
        health: Arc<Health>,
        feed: Feed,
    ) -> Result<Self, StoreError> {
        let db = wal.with_file_name(super::DB_FILE);
        let mut control =
            WalControl::install(&mut conn, &db, options.wal_max_bytes, health.clone())?;
        // A reader in another process (`claimdb export`) may hold the log for now; it is
        // truncated at the next restart then.
        if control.truncate(&conn, &readers, std::time::Duration::from_millis(100))?
            == wal::Outcome::Busy
        {
            tracing::info!(
                "the write-ahead log could not be truncated at start: another process is reading the database"
            );
        }
        let read = |name: &str| -> Result<i64, StoreError> {
            conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .map_err(internal)
        };
        let version = u64::try_from(read("version")?)
            .map_err(|_| StoreError::Internal("negative version in meta".into()))?;
        let commit_us = read("commit_us")?;
        history::note_start(&conn, options.history_retention, commit_us)?;
        let (groups, pending) = std_mpsc::channel();
        let broken = Arc::new(AtomicBool::new(false));
        let syncer_broken = broken.clone();
        let syncer_feed = feed.clone();
        let syncer = if options.durable {
            std::thread::Builder::new()
                .name("claimdb-sqlite-sync".into())
                .spawn(move || sync_loop(pending, wal, syncer_broken, syncer_feed))
                .map(Some)
        } else {
            // Throwaway data: nothing is fsynced and COMMIT is the acknowledgement.
            conn.execute_batch("PRAGMA synchronous = OFF")
                .map_err(internal)?;
            Ok(None)
        };
        let acks = match syncer {
            Ok(None) => Acks::Inline,
            Ok(Some(thread)) => {
                conn.execute_batch("PRAGMA synchronous = NORMAL")
                    .map_err(internal)?;
                Acks::Syncer { groups, thread }
            }
            Err(e) => {
                tracing::warn!("no syncer thread ({e}); each commit fsyncs itself");
                Acks::Inline
            }
        };
        Ok(Writer {
            conn,
            version,
            commit_us,
            acks,
            broken,
            records,
            readers,
            wal: control,
            health,
            last_checkpoint_error: None,
            feed,
            keep_history: !options.history_retention.is_zero(),
            pruner: Pruner::new(options.history_retention),
        })
    }

    /// Acknowledges a committed group once it is durable.
    fn acknowledge(&mut self, outcomes: Vec<Outcome>) {
        let outcomes = match &self.acks {
            Acks::Syncer { groups, .. } => match groups.send(outcomes) {
                Ok(()) => return,
                // The syncer is gone: nothing can vouch for durability.
                Err(std_mpsc::SendError(outcomes)) => {
                    let e = StoreError::Internal("the WAL syncer thread stopped".into());
                    for outcome in outcomes {
                        outcome.reply(Some(&e), &self.feed);
                    }
                    return;
                }
            },
            Acks::Inline => outcomes,
            Acks::Stopped => {
                let e = StoreError::Unavailable("the store is closed".into());
                for outcome in outcomes {
                    outcome.reply(Some(&e), &self.feed);
                }
                return;
            }
        };
        for outcome in outcomes {
            outcome.reply(None, &self.feed);
        }
    }

    /// Waits until every committed group is durable and acknowledged.
    fn stop_syncer(&mut self) {
        if let Acks::Syncer { groups, thread } = std::mem::replace(&mut self.acks, Acks::Stopped) {
            drop(groups);
            let _ = thread.join();
        }
    }

    /// Serves jobs until the channel closes or a `Close` job arrives.
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.blocking_recv() {
            if let Some(reply) = self.run_group(first, &mut rx) {
                // Jobs still queued are dropped with the receiver: their callers see Unavailable.
                drop(rx);
                self.stop_syncer();
                self.truncate_wal();
                let clean = !self.health.is_damaged() && !self.broken.load(Ordering::Acquire);
                let _ = reply.send(clean);
                return;
            }
        }
        self.stop_syncer();
        self.truncate_wal();
    }

    /// At a clean close: copies the WAL into the database and truncates it, so the next start
    /// reads nothing of it — unless the database is damaged or a sync failed, when nothing more
    /// is written into the file.
    fn truncate_wal(&mut self) {
        self.wal.stop();
        if self.health.is_damaged() || self.broken.load(Ordering::Acquire) {
            return;
        }
        let r = self.wal.truncate(&self.conn, &self.readers, CLOSE_WAIT);
        self.health.note(&r);
        match r {
            Ok(wal::Outcome::Done) => {}
            Ok(wal::Outcome::Busy) => tracing::info!(
                "the write-ahead log was not truncated at close: a reader still uses it; the next start truncates it"
            ),
            Err(e) => tracing::warn!("checkpointing the write-ahead log at close failed: {e}"),
        }
    }

    /// After a committed group: keeps the WAL under its bound (see `wal`).
    fn checkpoint(&mut self) {
        if self.health.is_damaged() || self.broken.load(Ordering::Acquire) {
            return;
        }
        let r = self.wal.after_commit(&self.conn, &self.readers);
        self.health.note(&r);
        if let Err(e) = r {
            let now = std::time::Instant::now();
            if self
                .last_checkpoint_error
                .is_none_or(|t| now.duration_since(t) >= std::time::Duration::from_secs(10))
            {
                self.last_checkpoint_error = Some(now);
                tracing::warn!("checkpointing the write-ahead log failed: {e}");
            }
        }
    }

    /// Applies `first` and every job that arrives while the group is being applied (up to
    /// [`MAX_GROUP`]), each in its own savepoint, then commits once and replies. Returns the
    /// reply of a `Close` job if one ended the group.
    fn run_group(
        &mut self,
        first: Job,
        rx: &mut mpsc::Receiver<Job>,
    ) -> Option<oneshot::Sender<bool>> {
        if let Job::Close { reply } = first {
            return Some(reply);
        }
        if self.broken.load(Ordering::Acquire) {
            fail(first, wal_failed());
            return None;
        }
        if let Err(e) = self.health.check() {
            fail(first, e);
            return None;
        }
        let saved = (self.version, self.commit_us);
        if let Err(e) = self.exec("BEGIN IMMEDIATE") {
            let e = internal(e);
            self.health.note::<()>(&Err(e.clone()));
            fail(first, e);
            return None;
        }
        let mut outcomes = Vec::with_capacity(16);
        // Records this group changed, to invalidate in the readers' cache once committed.
        let mut changed_records = Vec::new();
        let mut closing = None;
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(job) = next.take() {
            let job = match job {
                Job::Close { reply } => {
                    closing = Some(reply);
                    break;
                }
                job => job,
            };
            taken += 1;
            let before = (self.version, self.commit_us);
            // A one-write commit fails in its checks before it changes anything, so it needs no
            // savepoint; if storing it fails (an SQL error), the whole group is given up below.
            let savepoint = !matches!(&job, Job::Commit { commit, .. } if commit.writes.len() <= 1)
                && !matches!(&job, Job::Record { .. } | Job::TrimJournal { .. });
            if savepoint && let Err(e) = self.exec("SAVEPOINT job") {
                fail(job, internal(e));
                break;
            }
            let (ok, dirty) = match job {
                Job::Commit { commit, reply } => {
                    let r = self
                        .commit(&commit.checks, &commit.writes)
                        .and_then(|result| {
                            self.append_journal(&commit.journal)?;
                            Ok(result)
                        });
                    self.health.note(&r);
                    let ok = r.is_ok();
                    let dirty = r.as_ref().is_err_and(|e| !is_check_failure(e));
                    outcomes.push(Outcome::Commit(reply, r));
                    (ok, dirty)
                }
                Job::Restore { documents, reply } => {
                    let r = self.restore(&documents);
                    self.health.note(&r);
                    let ok = r.is_ok();
                    outcomes.push(Outcome::Restore(reply, r));
                    (ok, true)
                }
                Job::Record {
                    ns,
                    key,
                    value,
                    condition,
                    reply,
                } => {
                    let r = self.put_record(&ns, &key, value.as_deref(), &condition);
                    self.health.note(&r);
                    let ok = r.is_ok();
                    if r == Ok(true) {
                        changed_records.push((ns, key));
                    }
                    outcomes.push(Outcome::Record(reply, r));
                    (ok, !ok)
                }
                Job::TrimJournal { through, reply } => {
                    let r = self.trim_journal(through);
                    self.health.note(&r);
                    let ok = r.is_ok();
                    outcomes.push(Outcome::Trim(reply, r));
                    (ok, !ok)
                }
                Job::Close { reply } => {
                    let _ = reply.send(false);
                    (true, false)
                }
            };
            if !ok {
                (self.version, self.commit_us) = before;
            }
            let end = match (savepoint, ok) {
                (true, true) => self.exec("RELEASE job").map_err(internal),
                (true, false) => self
                    .exec("ROLLBACK TO job")
                    .and_then(|()| self.exec("RELEASE job"))
                    .map_err(internal),
                (false, true) => Ok(()),
                (false, false) if !dirty => Ok(()),
                (false, false) => Err(StoreError::Internal(
                    "a write failed while being stored".into(),
                )),
            };
            if let Err(e) = end {
                // The transaction is in an unknown state: give up on the whole group.
                self.abort_group(saved, outcomes, e);
                return closing;
            }
            if let Err(e) = self.health.check() {
                // A damaged database: nothing of this group is committed.
                self.abort_group(saved, outcomes, e);
                return closing;
            }
            if taken < MAX_GROUP {
                next = rx.try_recv().ok();
            }
        }
        let committed = self
            .save_counters()
            .and_then(|()| self.exec("COMMIT").map_err(internal));
        if let Err(e) = committed {
            self.abort_group(saved, outcomes, e);
            return closing;
        }
        // After the COMMIT (a reader can no longer read the old value and cache it after this)
        // and before any acknowledgement (a caller's next read never sees the old value).
        // Readers' snapshots first: a reader that misses the records cache after the
        // invalidation below must not read the old value from a reused snapshot.
        self.readers.committed();
        for (ns, key) in &changed_records {
            self.records.invalidate(ns, key);
        }
        self.acknowledge(outcomes);
        self.checkpoint();
        if !self.health.is_damaged() && !self.broken.load(Ordering::Acquire) {
            self.pruner
                .after_group(&self.conn, &self.readers, &self.health);
        }
        closing
    }

    /// Runs a parameterless statement, prepared once.
    fn exec(&self, sql: &str) -> Result<(), rusqlite::Error> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    fn abort_group(&mut self, saved: (u64, i64), outcomes: Vec<Outcome>, e: StoreError) {
        self.health.note::<()>(&Err(e.clone()));
        // Every job of a group given up on a damaged database is told so.
        let e = self.health.check().err().unwrap_or(e);
        let _ = self.conn.execute_batch("ROLLBACK");
        (self.version, self.commit_us) = saved;
        for outcome in outcomes {
            outcome.reply(Some(&e), &self.feed);
        }
    }

    fn save_counters(&self) -> Result<(), StoreError> {
        let version = i64::try_from(self.version)
            .map_err(|_| StoreError::Internal("version counter overflow".into()))?;
        self.conn
            .prepare_cached(
                "UPDATE meta SET value = CASE name WHEN 'version' THEN ?1 ELSE ?2 END
                 WHERE name IN ('version', 'commit_us')",
            )
            .and_then(|mut stmt| stmt.execute(params![version, self.commit_us]))
            .map_err(internal)?;
        Ok(())
    }

    /// Appends journal lines (after the writes of the same job; a failure is an SQL error, so
    /// the group is given up).
    fn append_journal(&self, lines: &[String]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare_cached("INSERT INTO journal (line) VALUES (?1)")
            .map_err(internal)?;
        for line in lines {
            stmt.execute([line])
                .map_err(|e| StoreError::Internal(format!("storing a journal line failed: {e}")))?;
        }
        Ok(())
    }

    fn trim_journal(&self, through: u64) -> Result<(), StoreError> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached("DELETE FROM journal WHERE seq <= ?1")
            .and_then(|mut stmt| stmt.execute([through]))
            .map_err(internal)?;
        Ok(())
    }

    /// Sets or deletes a record if `condition` holds (one statement: it needs no savepoint).
    fn put_record(
        &self,
        ns: &str,
        key: &str,
        value: Option<&str>,
        condition: &RecordCondition,
    ) -> Result<bool, StoreError> {
        let current = get_record(&self.conn, ns, key)?;
        let holds = match condition {
            RecordCondition::Any => true,
            RecordCondition::Absent => current.is_none(),
            RecordCondition::Equals(v) => current.as_deref() == Some(v.as_str()),
        };
        if !holds {
            return Ok(false);
        }
        let changed = match value {
            Some(v) => self
                .conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO records (ns, key, value) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut stmt| stmt.execute(params![ns, key, v])),
            None => self
                .conn
                .prepare_cached("DELETE FROM records WHERE ns = ?1 AND key = ?2")
                .and_then(|mut stmt| stmt.execute(params![ns, key])),
        };
        changed.map_err(internal)?;
        Ok(true)
    }

    fn commit(
        &mut self,
        checks: &[ReadCheck],
        writes: &[Write],
    ) -> Result<CommitResult, StoreError> {
        let version = self
            .version
            .checked_add(1)
            .filter(|v| i64::try_from(*v).is_ok())
            .ok_or_else(|| StoreError::Internal("version counter overflow".into()))?;
        let now_us = Timestamp::now()
            .micros()
            .max(self.commit_us.saturating_add(1));
        let now = Timestamp::from_micros(now_us)
            .map_err(|e| StoreError::Internal(format!("commit clock: {e}")))?;
        // Each document the commit writes is read once, before the checks: a check on a written
        // path (a decided write's own target) compares that read's version instead of reading
        // again, and a later write to the same path starts from what the earlier one left.
        let mut state: HashMap<&DocPath, (Option<Document>, usize)> =
            HashMap::with_capacity(writes.len());
        for (i, write) in writes.iter().enumerate() {
            match state.get_mut(&write.path) {
                Some((_, left)) => *left += 1,
                None => {
                    let current = get_document(&self.conn, &write.path)
                        .map_err(|e| e.at_write(writes.len(), i, &write.path))?;
                    state.insert(&write.path, (current, 1));
                }
            }
        }
        for check in checks {
            let now = match state.get(&check.path) {
                Some((doc, _)) => doc.as_ref().map(|d| d.version),
                None => document_version(&self.conn, &check.path)?,
            };
            if now != check.version {
                return Err(StoreError::Aborted(format!(
                    "{} changed while the request was being decided",
                    check.path
                )));
            }
        }
        self.version = version;
        self.commit_us = now_us;
        let mut results = Vec::with_capacity(writes.len());
        for (i, write) in writes.iter().enumerate() {
            let at = |e: StoreError| e.at_write(writes.len(), i, &write.path);
            let (current, left) = state
                .get_mut(&write.path)
                .map(|(doc, left)| {
                    *left -= 1;
                    (doc.take(), *left)
                })
                .ok_or_else(|| StoreError::Internal("a written path was not read".into()))?;
            let new = apply_write(current.as_ref(), write, now, version).map_err(at)?;
            // The version this commit replaces (not one an earlier write of it made) is kept.
            let replaced =
                self.keep_history && current.as_ref().is_some_and(|d| d.version != version);
            self.put(
                &write.path,
                current.as_ref(),
                new.as_ref(),
                replaced.then_some(now_us),
            )
            .map_err(at)?;
            if left > 0
                && let Some((doc, _)) = state.get_mut(&write.path)
            {
                doc.clone_from(&new);
            }
            results.push(WriteResult {
                path: write.path.clone(),
                document: new,
                existed: current.is_some(),
            });
        }
        Ok(CommitResult {
            commit_time: now,
            version,
            results,
        })
    }

    fn restore(&mut self, documents: &[Document]) -> Result<(), StoreError> {
        let mut version = self.version;
        let mut commit_us = self.commit_us;
        for doc in documents {
            if i64::try_from(doc.version).is_err() {
                return Err(StoreError::InvalidArgument(format!(
                    "document {} has version {}, above the largest storable",
                    doc.path, doc.version
                )));
            }
            let current = get_document(&self.conn, &doc.path)?;
            self.put(&doc.path, current.as_ref(), Some(doc), None)?;
            version = version.max(doc.version);
            commit_us = commit_us.max(doc.update_time.micros());
        }
        // Restored documents carry their own times, and what they replaced is not kept: reads
        // at a time before the restore would be wrong, so they are refused.
        self.conn
            .prepare_cached("UPDATE meta SET value = max(value, ?1) WHERE name = 'history_from'")
            .and_then(|mut stmt| stmt.execute([Timestamp::now().micros().max(commit_us)]))
            .map_err(internal)?;
        self.version = version;
        self.commit_us = commit_us;
        Ok(())
    }

    /// Replaces the stored document (and its index entries) at `path` with `new`; with
    /// `replaced_at` (the commit's time, µs), the stored row goes to `history` first.
    fn put(
        &mut self,
        path: &DocPath,
        current: Option<&Document>,
        new: Option<&Document>,
        replaced_at: Option<i64>,
    ) -> Result<(), StoreError> {
        if let Some(valid_to) = replaced_at {
            history::keep_replaced(&self.conn, path, valid_to)?;
            self.pruner.added(1);
        }
        let old_entries = current.map(|d| index::entries(&d.data)).unwrap_or_default();
        let new_entries = new.map(|d| index::entries(&d.data)).unwrap_or_default();
        let key = path.sort_key();
        let parent = path.parent().sort_key();
        let grp = path.collection_id();
        if old_entries != new_entries {
            let mut delete = self
                .conn
                .prepare_cached(
                    "DELETE FROM idx WHERE parent = ?1 AND field = ?2 AND kind = ?3 AND key = ?4 AND doc = ?5",
                )
                .map_err(internal)?;
            for (field, kind, value) in old_entries.difference(&new_entries) {
                delete
                    .execute(params![parent, field, kind, value, key])
                    .map_err(internal)?;
            }
            let mut insert = self
                .conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO idx (parent, field, kind, key, doc, grp) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(internal)?;
            let added: Vec<&IndexEntry> = new_entries.difference(&old_entries).collect();
            for (field, kind, value) in added {
                insert
                    .execute(params![parent, field, kind, value, key, grp])
                    .map_err(internal)?;
            }
        }
        match new {
            Some(doc) => {
                let data = json::document_text(&doc.data);
                let version = i64::try_from(doc.version)
                    .map_err(|_| StoreError::Internal("version overflow".into()))?;
                self.conn
                    .prepare_cached(
                        "INSERT INTO docs (key, parent, grp, path, data, create_us, update_us, version)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (key) DO UPDATE SET data = excluded.data,
                            create_us = excluded.create_us, update_us = excluded.update_us,
                            version = excluded.version",
                    )
                    .map_err(internal)?
                    .execute(params![
                        key,
                        parent,
                        grp,
                        path.as_str(),
                        data,
                        doc.create_time.micros(),
                        doc.update_time.micros(),
                        version
                    ])
                    .map_err(internal)?;
            }
            None => {
                if current.is_some() {
                    self.conn
                        .prepare_cached("DELETE FROM docs WHERE key = ?1")
                        .map_err(internal)?
                        .execute([key])
                        .map_err(internal)?;
                }
            }
        }
        Ok(())
    }
}

/// Errors a write's checks raise before it changes anything (as opposed to storage errors).
fn is_check_failure(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::InvalidArgument(_)
            | StoreError::NotFound(_)
            | StoreError::AlreadyExists(_)
            | StoreError::FailedPrecondition(_)
            | StoreError::Aborted(_)
    )
}

fn fail(job: Job, e: StoreError) {
    match job {
        Job::Commit { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::Restore { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::Record { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::TrimJournal { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Job::Close { reply } => {
            let _ = reply.send(false);
        }
    }
}

/// The same error with `context` in front of its message.
#[cfg(test)]
mod tests {
    use super::*;

    /// A failed WAL sync must fail the jobs it covered and every later one: after fsync fails
    /// the kernel may have dropped the pages, so a later successful sync would prove nothing.
    #[test]
    fn a_failed_sync_refuses_every_later_acknowledgement() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-wal");
        let (groups, pending) = std_mpsc::channel();
        let broken = Arc::new(AtomicBool::new(false));
        let thread = {
            let broken = broken.clone();
            let wal = missing.clone();
            std::thread::spawn(move || sync_loop(pending, wal, broken, Feed::new()))
        };
        let (reply, answer) = oneshot::channel();
        groups.send(vec![Outcome::Restore(reply, Ok(()))]).unwrap();
        assert!(matches!(
            answer.blocking_recv().unwrap(),
            Err(StoreError::Internal(_))
        ));
        assert!(broken.load(Ordering::Acquire));
        // The file exists now, but the store stays refused.
        std::fs::write(&missing, b"").unwrap();
        let (reply, answer) = oneshot::channel();
        groups.send(vec![Outcome::Restore(reply, Ok(()))]).unwrap();
        assert!(matches!(
            answer.blocking_recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        drop(groups);
        thread.join().unwrap();
    }
}
