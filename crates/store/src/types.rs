//! Domain types of documents and writes. Deliberately not `Serialize`: the HTTP layer has its
//! own wire types and converts explicitly.

use claimdb_model::{DocPath, FieldPath, Map, Timestamp, Transform, Value};

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

/// A condition on a document that a decision was made on, checked inside the commit: the
/// document must still be at `version` (`None`: still absent). The engine uses these so a
/// write is applied only against the state its rules were evaluated on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCheck {
    pub path: DocPath,
    pub version: Option<u64>,
}

/// A condition on a record's current value for [`crate::Store::put_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordCondition {
    /// Whatever is there.
    Any,
    /// Only if there is no record.
    Absent,
    /// Only if the record holds exactly this value.
    Equals(String),
}

/// One system record (see [`crate::Store::get_record`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub namespace: String,
    pub key: String,
    pub value: String,
}
