//! The SQLite backend's history of past versions ([`crate::history`]): what a commit keeps
//! (the replaced row, copied from `docs` by SQLite itself, no re-encoding), the `history_from`
//! mark (set at open when history is kept, removed when not, raised by a restore and by
//! pruning), the writer's pruning, and every read at a past time — each in the caller's one
//! read transaction, so the time check and the data come from one snapshot.
//!
//! Pruning runs after a group, at most once per [`PRUNE_INTERVAL`] (after every group while it
//! is behind), in a transaction of its own after the group's acknowledgement: one bounded batch
//! of the oldest rows past the retention, so the write path never carries an unbounded delete.

use std::time::{Duration, Instant};

use claimdb_model::{CollectionPath, DocPath, Timestamp};
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params};

use super::health::Health;
use super::readers::Readers;
use super::schema::{HISTORY_COLUMNS, get_document, internal, read_document};
use crate::children::{Child, ChildScan, Step};
use crate::history::{PRUNE_BATCH, PRUNE_INTERVAL, prune_cutoff};
use crate::query::Scope;
use crate::{Document, StoreError};

/// Notes when the history starts, as the store opens: kept on (from now, or from earlier if it
/// was kept without a break), or none.
pub(super) fn note_start(
    conn: &Connection,
    retention: Duration,
    commit_us: i64,
) -> Result<(), StoreError> {
    let noted = if retention.is_zero() {
        conn.execute("DELETE FROM meta WHERE name = 'history_from'", [])
    } else {
        conn.execute(
            "INSERT OR IGNORE INTO meta (name, value) VALUES ('history_from', ?1)",
            [Timestamp::now().micros().max(commit_us)],
        )
    };
    noted.map(drop).map_err(internal)
}

/// Raises `history_from` to `us` (a restore, which keeps no history of what it replaced).
pub(super) fn raise_start(conn: &Connection, us: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE meta SET value = max(value, ?1) WHERE name = 'history_from'")
        .and_then(|mut stmt| stmt.execute([us]))
        .map(drop)
        .map_err(internal)
}

/// Copies the stored row of `path` into `history`, replaced at `valid_to` (µs).
pub(super) fn keep_replaced(
    conn: &Connection,
    path: &DocPath,
    valid_to: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO history
           (key, valid_to, valid_from, parent, grp, path, data, create_us, version)
         SELECT key, ?2, update_us, parent, grp, path, data, create_us, version
         FROM docs WHERE key = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![path.sort_key(), valid_to]))
    .map(drop)
    .map_err(internal)
}

/// The writer's pruning state.
pub(super) struct Pruner {
    retention: Duration,
    /// History rows added since the last pass.
    added: usize,
    /// When the last pass ran, and whether it left rows it could have deleted.
    last: Instant,
    behind: bool,
    /// When a failure was last logged.
    last_error: Option<Instant>,
}

impl Pruner {
    pub(super) fn new(retention: Duration) -> Self {
        Pruner {
            retention,
            added: 0,
            last: Instant::now(),
            behind: false,
            last_error: None,
        }
    }

    /// Counts history rows a commit added.
    pub(super) fn added(&mut self, rows: usize) {
        self.added = self.added.saturating_add(rows);
    }

    /// After a committed group: one pass if it is due (the batch is [`PRUNE_BATCH`] plus twice
    /// what was added since the last pass, so pruning keeps up with any write rate).
    pub(super) fn after_group(&mut self, conn: &Connection, readers: &Readers, health: &Health) {
        if !self.behind && self.last.elapsed() < PRUNE_INTERVAL {
            return;
        }
        self.last = Instant::now();
        let limit = PRUNE_BATCH.saturating_add(std::mem::take(&mut self.added).saturating_mul(2));
        let cutoff = prune_cutoff(Timestamp::now(), self.retention);
        let r = prune_once(conn, cutoff, limit);
        health.note(&r);
        match r {
            Ok(deleted) => {
                self.behind = deleted >= limit;
                if deleted > 0 {
                    readers.committed();
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                let now = Instant::now();
                if self
                    .last_error
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10))
                {
                    self.last_error = Some(now);
                    tracing::warn!("pruning the history of past versions failed: {e}");
                }
            }
        }
    }
}

/// Deletes the oldest history rows replaced at or before `cutoff` (µs), about `limit` of them
/// (all of the last commit reached, which adds at most a batch's writes), and raises
/// `history_from` past them so a read that could need one is refused; returns how many.
fn prune_once(conn: &Connection, cutoff: i64, limit: usize) -> Result<usize, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let upto: Option<i64> = conn
        .prepare_cached(
            "SELECT max(valid_to) FROM
               (SELECT valid_to FROM history WHERE valid_to <= ?1 ORDER BY valid_to LIMIT ?2)",
        )
        .and_then(|mut stmt| stmt.query_row(params![cutoff, limit], |r| r.get(0)))
        .map_err(internal)?;
    let Some(upto) = upto else {
        return Ok(0);
    };
    let exec = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(internal)
    };
    exec("BEGIN IMMEDIATE")?;
    let deleted = conn
        .prepare_cached("DELETE FROM history WHERE valid_to <= ?1")
        .and_then(|mut stmt| stmt.execute([upto]))
        .map_err(internal)?;
    raise_start(conn, upto)?;
    exec("COMMIT")?;
    Ok(deleted)
}

/// Checks that this snapshot can answer a read at `time` (see
/// [`crate::history::check_read_time`]); the database's time is the later of the clock and the
/// last commit's.
pub(super) fn check_time(
    conn: &Connection,
    time: Timestamp,
    retention: Duration,
) -> Result<(), StoreError> {
    let (from, last): (Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT (SELECT value FROM meta WHERE name = 'history_from'),
                    (SELECT value FROM meta WHERE name = 'commit_us')",
        )
        .and_then(|mut stmt| stmt.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(internal)?;
    let stamp = |us: i64| {
        Timestamp::from_micros(us)
            .map_err(|e| StoreError::Internal(format!("a stored time does not decode: {e}")))
    };
    let now = Timestamp::now().max(stamp(last.unwrap_or(0))?);
    let from = from.map(stamp).transpose()?;
    crate::history::check_read_time(time, now, retention, from)
}

/// The document at `path` as it was at `time` (already checked): the live one if it has not
/// changed since, else the history version valid then.
pub(super) fn get_at(
    conn: &Connection,
    path: &DocPath,
    time: Timestamp,
) -> Result<Option<Document>, StoreError> {
    if let Some(doc) = get_document(conn, path)?
        && doc.update_time <= time
    {
        return Ok(Some(doc));
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {HISTORY_COLUMNS} FROM history WHERE key = ?1 AND valid_to > ?2
             ORDER BY valid_to LIMIT 1"
        ))
        .map_err(internal)?;
    let mut rows = stmt
        .query(rusqlite::params![path.sort_key(), time.micros()])
        .map_err(internal)?;
    match rows.next().map_err(internal)? {
        // The first version replaced after `time`: valid then unless it was made after it.
        Some(row) => {
            let doc = read_document(row)?;
            Ok((doc.update_time <= time).then_some(doc))
        }
        None => Ok(None),
    }
}

/// The versions valid at `time` of the documents of `scope`'s collection (or collection
/// group) replaced since, reading at most `bound` history rows (`ResourceExhausted` beyond).
/// A group's `under` is left to the evaluator.
pub(super) fn in_scope(
    conn: &Connection,
    scope: &Scope,
    time: Timestamp,
    bound: usize,
) -> Result<Vec<Document>, StoreError> {
    let (column, value) = match scope {
        Scope::Collection(c) => ("parent", Sql::Blob(c.sort_key())),
        Scope::Group { collection_id, .. } => ("grp", Sql::Text(collection_id.clone())),
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {HISTORY_COLUMNS} FROM history WHERE {column} = ?1 AND valid_to > ?2 LIMIT ?3"
        ))
        .map_err(internal)?;
    let limit = i64::try_from(bound.saturating_add(1)).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query(rusqlite::params![value, time.micros(), limit])
        .map_err(internal)?;
    let mut read = 0usize;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(internal)? {
        read += 1;
        if read > bound {
            return Err(too_much_history(time, bound));
        }
        // Column 3 is `valid_from`: only versions made by then are decoded.
        let valid_from: i64 = row.get(3).map_err(internal)?;
        if valid_from <= time.micros() {
            out.push(read_document(row)?);
        }
    }
    Ok(out)
}

/// The refusal of a query at a past time whose scope changed more than its work bound allows.
fn too_much_history(time: Timestamp, bound: usize) -> StoreError {
    StoreError::ResourceExhausted(format!(
        "a query at {time} reads every version replaced since then in its collection, and there          are more than its work bound of {bound} (query_max_examined); query at a later time or          a collection that changed less"
    ))
}

/// [`children`] as the documents were at `time` (already checked): each seek finds the first
/// key past the bound that held a document then, live or in the history.
pub(super) fn children_at(
    conn: &Connection,
    scan: &ChildScan,
    after: Option<&str>,
    limit: usize,
    time: Timestamp,
) -> Result<Vec<(Step, Vec<u8>)>, StoreError> {
    let mut live = conn
        .prepare_cached(
            "SELECT key FROM docs WHERE key > ?1 AND key < ?2 AND update_us <= ?3
             ORDER BY key LIMIT 1",
        )
        .map_err(internal)?;
    let mut past = conn
        .prepare_cached(
            "SELECT key FROM history
             WHERE key > ?1 AND key < ?2 AND valid_to > ?3 AND valid_from <= ?3
             ORDER BY key LIMIT 1",
        )
        .map_err(internal)?;
    let first = |stmt: &mut rusqlite::CachedStatement<'_>, bound: &[u8]| {
        let mut rows = stmt
            .query(rusqlite::params![bound, scan.end(), time.micros()])
            .map_err(internal)?;
        match rows.next().map_err(internal)? {
            Some(row) => row.get::<_, Vec<u8>>(0).map(Some).map_err(internal),
            None => Ok(None),
        }
    };
    let mut bound = scan.start(after);
    let mut out = Vec::new();
    while out.len() < limit {
        let found = match (first(&mut live, &bound)?, first(&mut past, &bound)?) {
            (Some(a), Some(b)) => a.min(b),
            (Some(k), None) | (None, Some(k)) => k,
            (None, None) => break,
        };
        let step = scan.step(&found)?;
        bound = step.next.clone();
        out.push((step, found));
    }
    Ok(out)
}

/// [`list_with_missing`] as the collection was at `time` (already checked).
pub(super) fn list_with_missing_at(
    conn: &Connection,
    collection: &CollectionPath,
    after: Option<&str>,
    limit: usize,
    time: Timestamp,
) -> Result<Vec<Child>, StoreError> {
    let steps = children_at(conn, &ChildScan::documents(collection), after, limit, time)?;
    let mut out = Vec::with_capacity(steps.len());
    for (step, _) in steps {
        let path = collection.doc(&step.id)?;
        match step.exact.then(|| get_at(conn, &path, time)).transpose()? {
            Some(Some(doc)) => out.push(Child::Document(doc)),
            _ => out.push(Child::Missing(path)),
        }
    }
    Ok(out)
}
