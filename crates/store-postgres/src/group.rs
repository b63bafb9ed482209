//! Group commit: the one task per node (per [`crate::PostgresStore`]) that applies commits. It
//! takes every commit queued at that moment and applies them as one PostgreSQL transaction —
//! one update of the counter row, one set of array statements for their net change, one COMMIT
//! and so one WAL flush — instead of one transaction each, since every commit of every node must
//! take the counter row's lock in turn (see `schema`) and the lock is held through the flush.
//!
//! A group is two round trips while the lock is held:
//! 1. `BEGIN`, the counter update (which waits for the lock and returns the first version and
//!    commit time) and the `SELECT` of every document the queued commits name, pipelined;
//! 2. the net change of the whole group, the final counter values, the group's change feed
//!    rows with their NOTIFY (see `feed`) and `COMMIT`, pipelined.
//!
//! In between, the commits are applied in memory, in queue order, each against the state the
//! ones before it left ([`write::apply_commit`]): each is all-or-nothing on its own, checks its
//! read checks and preconditions, and gets the next version and a later commit time, so every
//! semantic of a lone commit holds. A commit that fails there changes nothing and the others go
//! on. Commits that arrived meanwhile join the group for one more round trip each (a few rounds
//! at most), which is cheaper than waiting for the lock again.
//!
//! The one failure that in-memory application cannot foresee is PostgreSQL refusing a statement
//! (an index row over its size limit, a full disk). The pipelined statements cannot be undone
//! one commit at a time — a savepoint per commit would not help either, since after the first
//! error the server ignores everything up to the rollback, and waiting for each savepoint's
//! answer would cost a round trip per commit under the lock — so the transaction is rolled back
//! as a whole and its commits are run again in halves, recursively, until the commit it refuses is alone; that
//! one runs in its own transaction ([`write::commit`]) and gets its own error, the others go
//! through in groups (about two transactions per halving rather than one per commit).
//!
//! Replies wait for the group's outcome: nothing is acknowledged before COMMIT returned, and a
//! group that fails in a way that certainly changed nothing (a connection found dead) is run
//! again on a fresh connection like a lone commit would be. A group whose COMMIT may or may not
//! have reached the server fails every commit in it with `Unavailable`, saying so.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use claimdb_model::{DocPath, Timestamp};
use claimdb_store::{CommitResult, ReadCheck, StoreError, Write};
use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

use crate::error::{self, Failure};
use crate::feed::FeedRows;
use crate::schema::Sql;
use crate::write::{self, Stamp, Touched};
use crate::{ATTEMPTS, PgOptions, pooled};

/// Most commits in one group.
const MAX_GROUP: usize = 256;
/// A group stops taking commits once it holds this many writes (a commit holds at most
/// `MAX_BATCH_WRITES`, so any one fits).
const MAX_GROUP_WRITES: usize = 4096;
/// Most rounds of loading documents per group: the first, then one per batch of commits that
/// arrived while the group held the counter row.
const MAX_ROUNDS: usize = 3;
/// Commits waiting for the committer; callers wait for room beyond this.
const QUEUE: usize = 1024;

/// A message to the committer.
pub(crate) enum Msg {
    Commit(Job),
    /// Finish the commits queued before this one, then stop.
    Close(oneshot::Sender<()>),
}

/// One `commit` call.
pub(crate) struct Job {
    pub checks: Vec<ReadCheck>,
    pub writes: Vec<Write>,
    pub reply: oneshot::Sender<Result<CommitResult, StoreError>>,
}

impl Job {
    fn paths(&self) -> impl Iterator<Item = &DocPath> {
        self.checks
            .iter()
            .map(|c| &c.path)
            .chain(self.writes.iter().map(|w| &w.path))
    }
}

/// The committer task's state.
pub(crate) struct Committer {
    pool: Pool,
    sql: Arc<Sql>,
    options: PgOptions,
    rx: mpsc::Receiver<Msg>,
    closing: Option<oneshot::Sender<()>>,
}

/// How one attempt at a group ended.
enum Outcome {
    /// The transaction ended (committed, or rolled back because no commit in it succeeded):
    /// each commit's result, in order. `clean` says whether the connection may be reused.
    Done {
        results: Vec<Result<CommitResult, StoreError>>,
        clean: bool,
    },
    /// The group failed as a whole: run it again if `retry` allows, else every commit fails.
    Failed(Failure),
    /// PostgreSQL refused the group's net change, so nothing was applied: halve the group.
    Isolate(StoreError),
}

impl Committer {
    /// Starts the committer of a store; it stops when the returned sender is dropped or after a
    /// [`Msg::Close`].
    pub(crate) fn spawn(pool: Pool, sql: Arc<Sql>, options: PgOptions) -> mpsc::Sender<Msg> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let committer = Committer {
            pool,
            sql,
            options,
            rx,
            closing: None,
        };
        tokio::spawn(committer.run());
        tx
    }

    async fn run(mut self) {
        loop {
            let mut jobs = Vec::new();
            match self.rx.recv().await {
                None => return,
                Some(Msg::Close(reply)) => self.closing = Some(reply),
                Some(Msg::Commit(job)) => jobs.push(job),
            }
            self.take(&mut jobs);
            if !jobs.is_empty() {
                self.commit_jobs(jobs).await;
            }
            if let Some(reply) = self.closing.take() {
                // Commits queued after the close are dropped with the receiver: their callers
                // see `Unavailable`.
                self.rx.close();
                let _ = reply.send(());
                return;
            }
        }
    }

    /// Moves commits already queued into `jobs`, up to the group limits, stopping at a close;
    /// returns how many it moved.
    fn take(&mut self, jobs: &mut Vec<Job>) -> usize {
        let mut writes: usize = jobs.iter().map(|j| j.writes.len()).sum();
        let mut taken = 0;
        while self.closing.is_none() && jobs.len() < MAX_GROUP && writes < MAX_GROUP_WRITES {
            match self.rx.try_recv() {
                Ok(Msg::Commit(job)) => {
                    writes += job.writes.len();
                    jobs.push(job);
                    taken += 1;
                }
                Ok(Msg::Close(reply)) => self.closing = Some(reply),
                Err(_) => break,
            }
        }
        taken
    }

    /// Whether this node keeps the versions its commits replace.
    fn keeps_history(&self) -> bool {
        !self.options.history_retention.is_zero()
    }

    /// A pooled connection (the name [`with_retry`] expects).
    async fn client(&self) -> Result<Object, Failure> {
        pooled(&self.pool, &self.options).await
    }

    /// Commits `jobs` (and the commits that join them) and replies to each. When PostgreSQL
    /// refuses a group's changes, the group is halved until the commit it refuses is alone, so
    /// that commit fails with its own error at the cost of about two transactions per halving,
    /// and every other commit goes through in a group.
    async fn commit_jobs(&mut self, jobs: Vec<Job>) {
        let Some(refused) = self.run_group(jobs, true).await else {
            return;
        };
        // Parts in queue order, each with whether PostgreSQL already refused it as a whole.
        let mut parts = VecDeque::from([(refused, true)]);
        while let Some((part, refused)) = parts.pop_front() {
            if !refused {
                if let Some(part) = self.run_group(part, false).await {
                    parts.push_front((part, true));
                }
                continue;
            }
            if part.len() <= 1 {
                for job in part {
                    let keep = self.keeps_history();
                    let result = with_retry!(self, c => write::commit(&mut c, &self.sql, &job.checks, &job.writes, keep).await);
                    let _ = job.reply.send(result);
                }
                continue;
            }
            let mut first = part;
            let second = first.split_off(first.len() / 2);
            parts.push_front((second, false));
            parts.push_front((first, false));
        }
    }

    /// Commits `jobs` as one group (again on a fresh connection after a failure that changed
    /// nothing; taking in commits that arrive meanwhile if `join`) and replies to each — unless
    /// PostgreSQL refused the group's changes, which changed nothing: then they are returned,
    /// unanswered.
    async fn run_group(&mut self, mut jobs: Vec<Job>, join: bool) -> Option<Vec<Job>> {
        let mut attempt = 1;
        loop {
            let mut client = match self.client().await {
                Ok(c) => c,
                Err(f) => {
                    // Commits queued meanwhile would wait as long again for nothing.
                    while join && self.closing.is_none() && self.take(&mut jobs) > 0 {}
                    reply_all(jobs, &f.error);
                    return None;
                }
            };
            match self.attempt(&mut client, &mut jobs, join).await {
                Outcome::Done { results, clean } => {
                    if !clean {
                        let _ = Object::take(client);
                    }
                    for (job, result) in jobs.into_iter().zip(results) {
                        let _ = job.reply.send(result);
                    }
                    return None;
                }
                Outcome::Failed(f) => {
                    // Its transaction state is unknown: never hand it back to the pool (closing
                    // it makes the server roll back whatever it had not committed).
                    let _ = Object::take(client);
                    if f.retry && attempt < ATTEMPTS {
                        tracing::debug!(attempt, error = %f.error, "retrying a commit group");
                        attempt += 1;
                        continue;
                    }
                    reply_all(jobs, &f.error);
                    return None;
                }
                Outcome::Isolate(e) => {
                    let _ = Object::take(client);
                    tracing::debug!(
                        commits = jobs.len(),
                        error = %e,
                        "PostgreSQL refused a commit group's changes; halving it"
                    );
                    return Some(jobs);
                }
            }
        }
    }

    /// One attempt at committing `jobs` (and, if `join`, the commits that arrive while it holds
    /// the lock).
    async fn attempt(&mut self, c: &mut Object, jobs: &mut Vec<Job>, join: bool) -> Outcome {
        let sql = self.sql.clone();
        let prepared = async {
            Ok::<_, tokio_postgres::Error>((
                c.prepare_cached(&sql.bump).await?,
                c.prepare_cached(&sql.get_many).await?,
                c.prepare_cached(&sql.set_counters).await?,
                c.prepare_cached(&sql.feed_insert).await?,
            ))
        }
        .await;
        let (bump, get_many, set_counters, feed_insert) = match prepared {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(e.into()),
        };

        // Round trip 1: begin, take the counter row, load the documents.
        let keep = self.keeps_history();
        let mut touched = Touched::new(keep);
        let keys = touched.missing(jobs.iter().flat_map(Job::paths));
        let load: [&(dyn ToSql + Sync); 1] = [&keys];
        let keeping: [&(dyn ToSql + Sync); 1] = [&keep];
        let (begun, bumped, rows) = tokio::join!(
            biased;
            c.batch_execute("BEGIN"),
            c.query_one(&bump, &keeping),
            c.query(&get_many, &load),
        );
        let locked_at = Instant::now();
        let first = (|| -> Result<Stamp, Failure> {
            begun?;
            let row = bumped?;
            touched.loaded(keys, &rows?)?;
            Stamp::from_row(&row)
        })();
        let first = match first {
            Ok(s) => s,
            Err(f) => return Outcome::Failed(f),
        };

        // In memory, in queue order; then the commits that arrived meanwhile.
        let mut clock = Clock {
            first,
            locked_at,
            last: None,
        };
        let mut results = Vec::with_capacity(jobs.len());
        let mut rounds = 1;
        loop {
            for job in &jobs[results.len()..] {
                let result = clock.next().and_then(|stamp| {
                    write::apply_commit(&mut touched, &job.checks, &job.writes, stamp)
                        .inspect(|_| clock.last = Some(stamp))
                });
                results.push(result);
            }
            if !join || rounds >= MAX_ROUNDS || self.take(jobs) == 0 {
                break;
            }
            rounds += 1;
            let keys = touched.missing(jobs[results.len()..].iter().flat_map(Job::paths));
            if !keys.is_empty() {
                let loaded = match c.query(&get_many, &[&keys]).await {
                    Ok(rows) => touched.loaded(keys, &rows),
                    Err(e) => Err(e.into()),
                };
                if let Err(f) = loaded {
                    return Outcome::Failed(f);
                }
            }
        }

        let Some(last) = clock.last else {
            // Nothing to commit: let go of the counter row without a WAL flush.
            let clean = c.batch_execute("ROLLBACK").await.is_ok();
            return Outcome::Done { results, clean };
        };
        let change = match touched.net_change() {
            Ok(change) => change,
            Err(e) => return Outcome::Isolate(e),
        };
        let stmts = match change.prepare(&*c, &sql).await {
            Ok(s) => s,
            Err(e) => return Outcome::Failed(e.into()),
        };
        let counters = if last.version == first.version {
            // One commit: the counter update of round trip 1 already stored its stamp.
            None
        } else {
            match i64::try_from(last.version) {
                Ok(v) => Some((v, last.time.micros())),
                Err(_) => {
                    return Outcome::Failed(
                        StoreError::Internal("version counter overflow".into()).into(),
                    );
                }
            }
        };

        let mut feed = FeedRows::default();
        for result in results.iter().flatten() {
            if let Err(e) = feed.push(result) {
                return Outcome::Failed(e.into());
            }
        }
        let feed = feed.params();

        // Round trip 2: the net change, the counters, the feed rows, COMMIT.
        let (stored, counted, announced, committed) = tokio::join!(
            biased;
            change.send(&*c, &stmts),
            async {
                match &counters {
                    Some((v, us)) => c.execute(&set_counters, &[v, us]).await.map(|_| ()),
                    None => Ok(()),
                }
            },
            c.execute(&feed_insert, &feed),
            c.batch_execute("COMMIT"),
        );
        match (stored.and(counted).and(announced.map(|_| ())), committed) {
            (Ok(()), Ok(())) => Outcome::Done {
                results,
                clean: true,
            },
            // The server refused a statement: the transaction was aborted, and the COMMIT
            // after it rolled it back.
            (Err(e), _) if !error::is_connection_error(&e) => Outcome::Isolate(error::map(&e)),
            // The connection failed somewhere in the pipeline: COMMIT may have run.
            (Err(e), _) | (Ok(()), Err(e)) => Outcome::Failed(Failure::maybe_applied(e)),
        }
    }
}

/// Fails every commit with `error`.
fn reply_all(jobs: Vec<Job>, error: &StoreError) {
    for job in jobs {
        let _ = job.reply.send(Err(error.clone()));
    }
}

/// Hands out the stamps of a group's commits: the first is the counter update's; each later one
/// has the next version and a commit time that follows both the one before and the time that
/// passed since the lock was granted (by this node's monotonic clock, on top of the database
/// server's), so commit times stay strictly increasing across groups and nodes.
struct Clock {
    first: Stamp,
    locked_at: Instant,
    /// The stamp of the last commit that succeeded.
    last: Option<Stamp>,
}

impl Clock {
    fn next(&self) -> Result<Stamp, StoreError> {
        let Some(last) = self.last else {
            return Ok(self.first);
        };
        let elapsed = i64::try_from(self.locked_at.elapsed().as_micros()).unwrap_or(i64::MAX);
        let us = (last.time.micros().saturating_add(1))
            .max(self.first.time.micros().saturating_add(elapsed));
        Ok(Stamp {
            version: last
                .version
                .checked_add(1)
                .ok_or_else(|| StoreError::Internal("version counter overflow".into()))?,
            time: Timestamp::from_micros(us)
                .map_err(|e| StoreError::Internal(format!("commit clock: {e}")))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(version: u64, us: i64) -> Stamp {
        Stamp {
            version,
            time: Timestamp::from_micros(us).unwrap(),
        }
    }

    #[test]
    fn stamps_strictly_increase_and_follow_elapsed_time() {
        let mut clock = Clock {
            first: stamp(10, 1_000_000),
            locked_at: Instant::now(),
            last: None,
        };
        let a = clock.next().unwrap();
        assert_eq!((a.version, a.time.micros()), (10, 1_000_000));
        // A failed commit assigns nothing: the next one gets the same stamp.
        assert_eq!(clock.next().unwrap().version, 10);
        clock.last = Some(a);
        let b = clock.next().unwrap();
        assert_eq!(b.version, 11);
        assert!(b.time > a.time);
        clock.last = Some(b);
        // Time since the lock was granted counts.
        clock.locked_at = Instant::now() - std::time::Duration::from_millis(5);
        let c = clock.next().unwrap();
        assert_eq!(c.version, 12);
        assert!(c.time.micros() >= 1_005_000, "{}", c.time.micros());
    }
}
