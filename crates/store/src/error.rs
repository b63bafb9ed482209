//! The store's error type: each variant maps to one Firestore/gRPC code in the HTTP layer.

use claimdb_model::{DocPath, ModelError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Bad input: a bad path, document, query or batch.
    #[error("{0}")]
    InvalidArgument(String),
    /// The document an update or precondition needs does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A create found the document already there.
    #[error("{0}")]
    AlreadyExists(String),
    /// A version precondition (`If-Match`) did not hold.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A document a decision was based on changed before the commit ([`crate::ReadCheck`]);
    /// deciding again on the new state may succeed.
    #[error("{0}")]
    Aborted(String),
    /// Too many writes at once, a full queue or pool.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The backend cannot be reached right now; retrying later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A bug; details are logged, not shown to clients.
    #[error("{0}")]
    Internal(String),
    /// The stored data is damaged (the database file is corrupt). The message says what to do;
    /// a backend that reports it refuses writes from then on.
    #[error("{0}")]
    DataLoss(String),
    /// Write `index` of a multi-write commit failed with `source`; nothing was applied.
    #[error("write {index} ({path}): {source}")]
    AtWrite {
        index: usize,
        path: String,
        source: Box<StoreError>,
    },
}

impl StoreError {
    /// Which write of a multi-write commit failed, if this error came from one.
    pub fn write_index(&self) -> Option<usize> {
        match self {
            StoreError::AtWrite { index, .. } => Some(*index),
            _ => None,
        }
    }

    /// This error of write `index` (at `path`) of a commit of `count` writes: a multi-write
    /// commit names the failing write; a single write's error stays as it is. Every backend
    /// attributes its errors through this one rule.
    pub fn at_write(self, count: usize, index: usize, path: &DocPath) -> StoreError {
        if count > 1 {
            StoreError::AtWrite {
                index,
                path: path.to_string(),
                source: Box::new(self),
            }
        } else {
            self
        }
    }

    /// The error itself, without the write it happened at.
    pub fn root(&self) -> &StoreError {
        match self {
            StoreError::AtWrite { source, .. } => source.root(),
            other => other,
        }
    }
}

impl From<ModelError> for StoreError {
    fn from(e: ModelError) -> Self {
        StoreError::InvalidArgument(e.to_string())
    }
}
