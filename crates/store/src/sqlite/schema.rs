//! The SQLite schema, connection settings and row codecs of the embedded backend.
//!
//! - `docs`: one row per document, keyed by [`DocPath::sort_key`] (so key order is path order),
//!   with its parent collection's key, its collection id, the path text, the data as the JSON
//!   form of `claimdb_model::json`, create/update times in µs and the version. Secondary
//!   indexes by (parent, key) and (group, key) serve listing and `__name__` scans.
//! - `idx`: the single-field index ([`crate::index`]): (parent, field, kind, key, doc) as the
//!   primary key for collection queries, and a second B-tree on (grp, field, kind, key, doc) for
//!   collection-group queries.
//! - `records`: claimdb's system records (`Store::get_record`), keyed by (namespace, key).
//! - `journal`: lines committed with a commit's writes until trimmed (`Commit::journal`;
//!   the audit log's events of allowed writes), numbered in commit order.
//! - `history`: the versions commits replaced or deleted, for reads at a past time
//!   ([`crate::history`]): keyed by (key, `valid_to` — the replacing commit's time), with
//!   `valid_from` (the version's update time), the `docs` columns a read returns, and
//!   B-trees on (parent, valid_to) and (grp, valid_to) for a query's scope — the versions
//!   replaced since a time, per collection or collection group — and on `valid_to` alone for
//!   pruning.
//! - `meta`: the last version and commit time, so both stay strictly increasing across restarts,
//!   and `history_from` (µs), the earliest time the history is complete from (absent: none is
//!   kept).
//!
//! Every table is created if missing when the store opens, so a database made by an earlier
//! claimdb gains `history` (empty, with `history_from` set to the opening time) on its first
//! open by this one.

use std::path::Path;

use claimdb_model::{DocPath, Timestamp, json};
use rusqlite::{Connection, OpenFlags};

use super::health::damaged;
use crate::{Document, StoreError};

/// The database file inside the data directory.
pub const DB_FILE: &str = "claimdb.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS docs (
    key BLOB NOT NULL PRIMARY KEY,
    parent BLOB NOT NULL,
    grp TEXT NOT NULL,
    path TEXT NOT NULL,
    data TEXT NOT NULL,
    create_us INTEGER NOT NULL,
    update_us INTEGER NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS docs_parent ON docs (parent, key);
CREATE INDEX IF NOT EXISTS docs_group ON docs (grp, key);
CREATE TABLE IF NOT EXISTS idx (
    parent BLOB NOT NULL,
    field BLOB NOT NULL,
    kind INTEGER NOT NULL,
    key BLOB NOT NULL,
    doc BLOB NOT NULL,
    grp TEXT NOT NULL,
    PRIMARY KEY (parent, field, kind, key, doc)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idx_group ON idx (grp, field, kind, key, doc);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT NOT NULL PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER NOT NULL PRIMARY KEY,
    line TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    key BLOB NOT NULL,
    valid_to INTEGER NOT NULL,
    valid_from INTEGER NOT NULL,
    parent BLOB NOT NULL,
    grp TEXT NOT NULL,
    path TEXT NOT NULL,
    data TEXT NOT NULL,
    create_us INTEGER NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (key, valid_to)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_parent ON history (parent, valid_to);
CREATE INDEX IF NOT EXISTS history_group ON history (grp, valid_to);
CREATE INDEX IF NOT EXISTS history_age ON history (valid_to);
INSERT OR IGNORE INTO meta (name, value) VALUES ('version', 0), ('commit_us', 0);
";

/// The columns every document read selects, in [`read_document`]'s order (a macro so that
/// constant statements can be built from it with `concat!`).
macro_rules! doc_columns {
    () => {
        "path, data, create_us, update_us, version"
    };
}

/// The columns every document read selects, in [`read_document`]'s order.
pub(super) const DOC_COLUMNS: &str = doc_columns!();
/// The same columns of a `history` row: the version's update time is its `valid_from`.
pub(super) const HISTORY_COLUMNS: &str = "path, data, create_us, valid_from, version";
/// One document by key (a constant, so looking up the cached statement formats nothing).
pub(super) const GET_DOCUMENT: &str =
    concat!("SELECT ", doc_columns!(), " FROM docs WHERE key = ?1");

/// An SQLite error as the store reports it: a corrupt file is [`StoreError::DataLoss`] (which
/// marks the store damaged where it is noted, see `health`), a read stopped to checkpoint the
/// write-ahead log is retryable.
pub(super) fn internal(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!("the database is busy: {e}"))
        }
        Some(rusqlite::ErrorCode::DiskFull) => {
            StoreError::ResourceExhausted(format!("the disk is full: {e}"))
        }
        Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase) => {
            damaged(e)
        }
        Some(rusqlite::ErrorCode::OperationInterrupted) => {
            StoreError::Unavailable(super::readers::INTERRUPTED.into())
        }
        _ => StoreError::Internal(format!("sqlite: {e}")),
    }
}

// Page caches stay small (16 MiB for the writer, 8 MiB per reader, allocated as used): the OS page
// cache holds the hot database anyway, and idle memory is budgeted at 30 MiB.

/// Opens the write connection and creates the schema (see [`connect_writer`]).
#[cfg(test)]
pub(super) fn open_writer(dir: &Path) -> Result<Connection, StoreError> {
    let conn = connect_writer(dir)?;
    create_schema(&conn)?;
    Ok(conn)
}

/// Opens the write connection in WAL mode, with `synchronous=FULL` until the writer starts its
/// syncer thread (see `writer`). Checkpoints are the writer's (`wal`): it replaces SQLite's
/// automatic checkpoint with its own hook.
pub(super) fn connect_writer(dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(dir.join(DB_FILE)).map_err(internal)?;
    no_checkpoint_on_close(&conn)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -16384;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(internal)?;
    Ok(conn)
}

/// SQLite's last connection to close would copy the WAL into the database file: into a damaged
/// one too (the writer truncates the WAL itself at a clean close).
pub(super) fn no_checkpoint_on_close(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .map(drop)
    .map_err(internal)
}

/// Creates the tables that do not exist yet.
pub(super) fn create_schema(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA).map_err(internal)
}

/// How thoroughly [`integrity_problems`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thoroughness {
    /// `PRAGMA quick_check`: every page and B-tree structure, not index contents (O(N)).
    Quick,
    /// `PRAGMA integrity_check`: also that every index matches its table (O(N log N)).
    Full,
}

/// Runs SQLite's integrity check on `conn` and returns the problems it reports (at most `max`),
/// none when the database is sound. A file too damaged to be checked at all fails with
/// [`StoreError::DataLoss`].
pub(super) fn integrity_problems(
    conn: &Connection,
    thoroughness: Thoroughness,
    max: usize,
) -> Result<Vec<String>, StoreError> {
    let pragma = match thoroughness {
        Thoroughness::Quick => "quick_check",
        Thoroughness::Full => "integrity_check",
    };
    let mut stmt = conn
        .prepare(&format!("PRAGMA {pragma}({})", max.max(1)))
        .map_err(internal)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(internal)?;
    let lines = rows.collect::<Result<Vec<_>, _>>().map_err(internal)?;
    Ok(if lines.len() == 1 && lines[0] == "ok" {
        Vec::new()
    } else {
        lines
    })
}

/// Opens a read-only connection (a WAL reader).
pub(super) fn open_reader(dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        dir.join(DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(internal)?;
    no_checkpoint_on_close(&conn)?;
    // Readers map the file (up to 1 GiB): pages come straight from the OS page cache without a
    // read syscall each, which measured ~25% off queries and point reads at 10^5..10^6 documents.
    conn.execute_batch(
        "PRAGMA busy_timeout = 5000; PRAGMA cache_size = -8192; PRAGMA mmap_size = 1073741824;",
    )
    .map_err(internal)?;
    // One statement per query shape (scope kind × plan × direction) stays prepared.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Decodes a row selected with [`DOC_COLUMNS`].
pub(super) fn read_document(row: &rusqlite::Row<'_>) -> Result<Document, StoreError> {
    // Borrowed from SQLite's row: the text is decoded in place, not copied first.
    let text = |column: usize| -> Result<&str, StoreError> {
        row.get_ref(column)
            .map_err(internal)?
            .as_str()
            .map_err(|e| {
                damaged(format_args!(
                    "a stored document's column {column} is not text: {e}"
                ))
            })
    };
    let path = text(0)?;
    let data = text(1)?;
    let create_us: i64 = row.get(2).map_err(internal)?;
    let update_us: i64 = row.get(3).map_err(internal)?;
    let version: i64 = row.get(4).map_err(internal)?;
    // SQLite has no checksums: a damaged page may surface as a row that no longer decodes. The
    // path goes to the log only: the error reaches clients.
    let corrupt = |what: &str| {
        tracing::error!(path = %path, "a stored document does not decode: {what}");
        damaged(format_args!("a stored document does not decode: {what}"))
    };
    Ok(Document {
        path: DocPath::parse(path).map_err(|e| corrupt(&e.to_string()))?,
        data: json::decode_document_text(data).map_err(|e| match e {
            claimdb_model::ModelError::InvalidJson(e) => corrupt(&format!("bad JSON: {e}")),
            e => corrupt(&e.to_string()),
        })?,
        create_time: Timestamp::from_micros(create_us).map_err(|e| corrupt(&e.to_string()))?,
        update_time: Timestamp::from_micros(update_us).map_err(|e| corrupt(&e.to_string()))?,
        version: u64::try_from(version).map_err(|e| corrupt(&e.to_string()))?,
    })
}

/// Reads one document by key on any connection (inside whatever transaction it is in).
pub(super) fn get_document(
    conn: &Connection,
    path: &DocPath,
) -> Result<Option<Document>, StoreError> {
    let mut stmt = conn.prepare_cached(GET_DOCUMENT).map_err(internal)?;
    let mut rows = stmt.query([path.sort_key()]).map_err(internal)?;
    match rows.next().map_err(internal)? {
        Some(row) => read_document(row).map(Some),
        None => Ok(None),
    }
}

/// Reads one system record on any connection.
pub(super) fn get_record(
    conn: &Connection,
    ns: &str,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT value FROM records WHERE ns = ?1 AND key = ?2")
        .map_err(internal)?;
    let mut rows = stmt.query([ns, key]).map_err(internal)?;
    match rows.next().map_err(internal)? {
        Some(row) => Ok(Some(row.get(0).map_err(internal)?)),
        None => Ok(None),
    }
}

/// The version of the document at `path`, if it exists.
pub(super) fn document_version(
    conn: &Connection,
    path: &DocPath,
) -> Result<Option<u64>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT version FROM docs WHERE key = ?1")
        .map_err(internal)?;
    let mut rows = stmt.query([path.sort_key()]).map_err(internal)?;
    match rows.next().map_err(internal)? {
        Some(row) => {
            let v: i64 = row.get(0).map_err(internal)?;
            Ok(Some(u64::try_from(v).map_err(|_| {
                StoreError::Internal(format!("stored document {path}: negative version"))
            })?))
        }
        None => Ok(None),
    }
}
