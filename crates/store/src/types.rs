//! Domain types of documents and writes. Deliberately not `Serialize`: the HTTP layer has its
//! own wire types and converts explicitly.

use claimdb_model::limits::MAX_BATCH_WRITES;
use claimdb_model::{DocPath, FieldPath, Map, Timestamp, Transform, Value};

use crate::StoreError;

/// A stored document with its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub path: DocPath,
    pub data: Map,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    /// Strictly increasing across all commits of a store; the document's ETag.
    pub version: u64,
}

/// A condition on the document's current state, checked inside the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// The document must exist.
    Exists,
    /// The document must not exist (`If-None-Match: *`).
    Missing,
    /// The document must exist at exactly this version (`If-Match`).
    Version(u64),
}

/// What one write does to its document.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    /// Creates the document; fails with `AlreadyExists` if it exists.
    Create {
        data: Map,
        transforms: Vec<(FieldPath, Transform)>,
    },
    /// Replaces the document (or creates it).
    Set {
        data: Map,
        transforms: Vec<(FieldPath, Transform)>,
    },
    /// Sets the given field paths on the existing document; fails with `NotFound` if missing.
    Update {
        fields: Vec<(FieldPath, Value)>,
        transforms: Vec<(FieldPath, Transform)>,
    },
    /// Removes the document; deleting a missing document succeeds unless a precondition says not.
    Delete,
}

/// One write of a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub path: DocPath,
    pub op: WriteOp,
    pub precondition: Precondition,
}

impl Write {
    pub fn new(path: DocPath, op: WriteOp) -> Self {
        Write {
            path,
            op,
            precondition: Precondition::None,
        }
    }

    pub fn with_precondition(mut self, precondition: Precondition) -> Self {
        self.precondition = precondition;
        self
    }
}

/// The outcome of one write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteResult {
    pub path: DocPath,
    /// The document after the write; `None` after a delete.
    pub document: Option<Document>,
    /// Whether the document existed before this write.
    pub existed: bool,
}

/// The outcome of a commit: one result per write, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitResult {
    pub commit_time: Timestamp,
    pub version: u64,
    pub results: Vec<WriteResult>,
}

/// Everything one [`crate::Documents::commit`] does, in one transaction: the read checks that
/// pin the state a decision was made on, the writes, and the journal lines committed with them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Commit {
    /// Documents that must still be as they were when the decision was made.
    pub checks: Vec<ReadCheck>,
    /// The writes, applied in order; at most [`MAX_BATCH_WRITES`].
    pub writes: Vec<Write>,
    /// Lines appended to the store's journal in the same transaction, so exactly as durable as
    /// the writes (the audit log's events of allowed writes). Only for a store whose
    /// [`Capabilities::journal`] is true; any other refuses a commit that carries lines.
    pub journal: Vec<String>,
}

impl Commit {
    /// A commit of `writes`, without read checks or journal lines.
    pub fn new(writes: Vec<Write>) -> Self {
        Commit {
            writes,
            ..Commit::default()
        }
    }

    /// A commit of all three parts.
    pub fn from_parts(checks: Vec<ReadCheck>, writes: Vec<Write>, journal: Vec<String>) -> Self {
        Commit {
            checks,
            writes,
            journal,
        }
    }

    /// The same commit, applied only if every check holds.
    pub fn with_checks(mut self, checks: Vec<ReadCheck>) -> Self {
        self.checks = checks;
        self
    }

    /// The same commit, appending `lines` to the journal.
    pub fn with_journal(mut self, lines: Vec<String>) -> Self {
        self.journal = lines;
        self
    }
}

impl From<Vec<Write>> for Commit {
    fn from(writes: Vec<Write>) -> Self {
        Commit::new(writes)
    }
}

/// The one check of the batch limit: a commit (and so an API batch) holds at most
/// [`MAX_BATCH_WRITES`] writes. Every backend's commit runs it, and the engine runs it before it
/// evaluates rules for a batch, so both refuse exactly the same batches with the same message.
pub fn check_write_count(writes: usize) -> Result<(), StoreError> {
    if writes > MAX_BATCH_WRITES {
        return Err(StoreError::InvalidArgument(format!(
            "a batch has {writes} writes; the limit is {MAX_BATCH_WRITES}"
        )));
    }
    Ok(())
}

/// What a backend can do, read once by callers ([`crate::Store::capabilities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// The store keeps a journal: [`Commit::journal`] lines are stored in the commit's own
    /// transaction until trimmed ([`crate::Store::journal`]). The audit log uses it for
    /// allowed writes instead of a sync of its own per write.
    pub journal: bool,
    /// The change feed carries the commits of every process sharing the database (PostgreSQL
    /// nodes), not only this one's.
    pub feed_across_processes: bool,
}

/// A condition on a document that a decision was made on, checked inside the commit: the
/// document must still be at `version` (`None`: still absent). The engine uses these so a
/// write is applied only against the state its rules were evaluated on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCheck {
    pub path: DocPath,
    pub version: Option<u64>,
}

/// A condition on a record's current value for [`crate::Records::put_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordCondition {
    /// Whatever is there.
    Any,
    /// Only if there is no record.
    Absent,
    /// Only if the record holds exactly this value.
    Equals(String),
}

/// One system record (see [`crate::Records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub namespace: String,
    pub key: String,
    pub value: String,
}
