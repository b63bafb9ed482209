//! claimdb's storage layer: the [`Store`] trait every backend implements, the domain types of
//! documents, writes and queries, the backend-independent query planner, and the embedded
//! default backend on SQLite.
//!
//! A store knows nothing of HTTP, tokens or rules: it stores documents, applies atomic batches
//! with preconditions and transforms, and answers queries from indexes.

mod apply;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
pub mod index;
pub mod query;
pub mod sqlite;
mod types;

pub use apply::apply_write;
pub use sqlite::SqliteStore;

pub use error::StoreError;
pub use query::{Cursor, Direction, Filter, Op, Order, Query, Scope};
pub use types::{CommitResult, Document, Precondition, Write, WriteOp, WriteResult};

use async_trait::async_trait;
use claimdb_model::{CollectionPath, DocPath};

/// A document store. Every method is atomic on its own; `commit` applies all of its writes or
/// none, and every write it acknowledges is durable (survives a crash of the process or machine).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one document.
    async fn get(&self, path: &DocPath) -> Result<Option<Document>, StoreError>;

    /// Reads several documents from one consistent snapshot, in the order asked.
    async fn get_many(&self, paths: &[DocPath]) -> Result<Vec<Option<Document>>, StoreError>;

    /// Applies up to [`claimdb_model::limits::MAX_BATCH_WRITES`] writes atomically, in order
    /// (a later write sees the earlier ones). Any failing write or precondition fails the whole
    /// commit and changes nothing.
    async fn commit(&self, writes: Vec<Write>) -> Result<CommitResult, StoreError>;

    /// Runs a query from one consistent snapshot. Queries are answered from indexes, never by
    /// scanning a whole collection for a filter.
    async fn query(&self, query: &Query) -> Result<Vec<Document>, StoreError>;

    /// Checks that the store can serve requests (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Every document of the store in path order (segment-wise, as [`DocPath::sort_key`]
    /// orders), `limit` at a time, strictly after `after`: the basis of export and migration.
    async fn scan(
        &self,
        after: Option<&DocPath>,
        limit: usize,
    ) -> Result<Vec<Document>, StoreError>;

    /// Writes documents exactly as given, metadata included (create/update time, version),
    /// replacing any at the same paths, atomically; later commits get versions above every
    /// restored one. Used by import and migration; bypasses preconditions and transforms.
    async fn restore(&self, documents: Vec<Document>) -> Result<(), StoreError>;

    /// Stops accepting writes once every queued write is durable. Idempotent.
    async fn close(&self) -> Result<(), StoreError>;

    /// Lists a collection in document-id order, `page_size` at a time, after the document id
    /// `after` (exclusive) when given.
    async fn list(
        &self,
        collection: &CollectionPath,
        page_size: usize,
        after: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        let mut query = Query::collection(collection.clone());
        query.limit = Some(page_size);
        if let Some(id) = after {
            query.start = Some(Cursor {
                values: vec![claimdb_model::Value::Reference(collection.doc(id)?)],
                inclusive: false,
            });
        }
        self.query(&query).await
    }
}
