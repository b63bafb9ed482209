//! claimdb's storage layer: the [`Store`] trait every backend implements, the domain types of
//! documents, writes and queries, the backend-independent query planner, and the embedded
//! default backend on SQLite.
//!
//! A store knows nothing of HTTP, tokens or rules: it stores documents, applies atomic batches
//! with preconditions and transforms, answers queries from indexes, and announces every commit
//! on its change feed ([`feed`]).
//!
//! The trait is cut in three: [`Documents`] (reads — of the present, or of a past time within
//! the history's retention, see [`history`] —, the one [`Documents::commit`], the change
//! feed), [`Records`] (claimdb's own small state, compare-and-set) and [`Store`], their
//! combination plus what concerns the store as a whole (capabilities, the journal, health,
//! close). Callers hold an `Arc<dyn Store>`; code that needs only one side takes that trait.

mod apply;
pub mod children;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod error;
pub mod feed;
pub mod history;
pub mod index;
pub mod query;
pub mod sqlite;
mod types;

pub use apply::apply_write;
pub use children::Child;
pub use sqlite::SqliteStore;

pub use error::StoreError;
pub use feed::{Change, Changes, FeedEvent, Subscription};
pub use query::{
    Condition, Cursor, Direction, Filter, Op, Order, PageRequest, Position, Query, QueryPage, Scope,
};
pub use types::{
    Capabilities, Commit, CommitResult, Document, Precondition, ReadCheck, Record, RecordCondition,
    Write, WriteOp, WriteResult, check_write_count,
};

use async_trait::async_trait;
use claimdb_model::{CollectionPath, DocPath, Timestamp};

/// The documents of a store. Every method is atomic on its own; [`Documents::commit`] applies
/// all of its writes or none, and every write it acknowledges is durable (survives a crash of
/// the process or machine) and announced on the change feed ([`Documents::subscribe`]).
#[async_trait]
pub trait Documents: Send + Sync + 'static {
    /// Reads one document.
    async fn get(&self, path: &DocPath) -> Result<Option<Document>, StoreError>;

    /// Reads several documents from one consistent snapshot, in the order asked.
    async fn get_many(&self, paths: &[DocPath]) -> Result<Vec<Option<Document>>, StoreError>;

    /// Applies a [`Commit`] atomically, in one transaction: its read checks (every document a
    /// decision looked at must still be at the version, or still absent, that the check names;
    /// otherwise [`StoreError::Aborted`]), then its writes in order (a later write sees the
    /// earlier ones; at most [`claimdb_model::limits::MAX_BATCH_WRITES`], see
    /// [`check_write_count`]), then its journal lines (all or nothing with the writes; a store
    /// whose [`Capabilities::journal`] is false refuses lines). Any failing check, write or
    /// precondition fails the whole commit, which then changes and announces nothing.
    async fn commit(&self, commit: Commit) -> Result<CommitResult, StoreError>;

    /// Runs one page of a query from one consistent snapshot. Queries are answered from
    /// indexes, never by scanning a whole collection for a filter; a page returns at most
    /// `page.size` documents and examines at most `page.max_examined`, ending early with a
    /// position to continue from (or `ResourceExhausted` when it cannot get anywhere within
    /// that bound). The query's limits ([`query::limits`]) are checked first.
    async fn query(&self, query: &Query, page: &PageRequest) -> Result<QueryPage, StoreError>;

    /// Every document of the store in path order (segment-wise, as [`DocPath::sort_key`]
    /// orders), `limit` at a time, strictly after `after`: the basis of export and migration.
    async fn scan(
        &self,
        after: Option<&DocPath>,
        limit: usize,
    ) -> Result<Vec<Document>, StoreError>;

    /// Writes documents exactly as given, metadata included (create/update time, version),
    /// replacing any at the same paths, atomically; later commits get versions above every
    /// restored one. Used by import and migration; bypasses preconditions and transforms, and
    /// is not announced on the change feed (it is not a commit).
    async fn restore(&self, documents: Vec<Document>) -> Result<(), StoreError>;

    /// Subscribes to the change feed: every commit acknowledged from now on (on PostgreSQL, by
    /// any node of the database) is announced once, in commit order, with what it changed
    /// ([`Changes`]). The buffer is bounded ([`feed::FEED_CAPACITY`] commits): a subscriber that
    /// falls further behind gets [`FeedEvent::Lagged`] and continues with newer commits. A
    /// backend that reads its feed back from the database (PostgreSQL) announces a commit
    /// shortly after acknowledging it, so a commit acknowledged just before `subscribe` may
    /// still arrive: compare versions.
    fn subscribe(&self) -> Subscription;

    /// The ids of the collections directly below `parent` (the root collections when `None`)
    /// that hold a document at any depth, in id order, after the id `after` (exclusive) when
    /// given, at most `limit`; from one consistent snapshot. Costs one index seek per id
    /// ([`children`]).
    async fn collection_ids(
        &self,
        parent: Option<&DocPath>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// A collection's documents and its missing documents (absent, with documents in their
    /// subcollections), in id order, after the id `after` (exclusive) when given, at most
    /// `limit`; from one consistent snapshot. Costs one index seek per entry ([`children`]).
    async fn list_with_missing(
        &self,
        collection: &CollectionPath,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Child>, StoreError>;

    /// Lists a collection in document-id order, `page_size` at a time, after the document id
    /// `after` (exclusive) when given.
    async fn list(
        &self,
        collection: &CollectionPath,
        page_size: usize,
        after: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        let (query, page) = list_query(collection, page_size, after)?;
        Ok(self.query(&query, &page).await?.documents)
    }

    /// Reads documents as they were at `time` ([`history`]), from one consistent snapshot, in
    /// the order asked: for each path the version whose update time is the latest at or before
    /// `time`, or `None` where the document did not exist then. `time` must be in the past and
    /// within the history's retention ([`history::check_read_time`]: `InvalidArgument` for a
    /// future time, `FailedPrecondition` for one older than the history kept).
    async fn get_at(
        &self,
        paths: &[DocPath],
        time: Timestamp,
    ) -> Result<Vec<Option<Document>>, StoreError>;

    /// Runs one page of a query over the documents as they were at `time`, with exactly the
    /// semantics, limits, paging and work bound of [`Documents::query`] (the shared evaluator
    /// decides both, see [`query::PreparedQuery::at`]). The versions replaced since `time` that
    /// lie in the query's scope are read whole and count against the page's work bound: when
    /// they are more than `page.max_examined`, the page fails with `ResourceExhausted`. Times
    /// as for [`Documents::get_at`].
    async fn query_at(
        &self,
        query: &Query,
        page: &PageRequest,
        time: Timestamp,
    ) -> Result<QueryPage, StoreError>;

    /// [`Documents::collection_ids`] as the database was at `time` (times as for
    /// [`Documents::get_at`]).
    async fn collection_ids_at(
        &self,
        parent: Option<&DocPath>,
        after: Option<&str>,
        limit: usize,
        time: Timestamp,
    ) -> Result<Vec<String>, StoreError>;

    /// [`Documents::list_with_missing`] as the database was at `time` (times as for
    /// [`Documents::get_at`]).
    async fn list_with_missing_at(
        &self,
        collection: &CollectionPath,
        after: Option<&str>,
        limit: usize,
        time: Timestamp,
    ) -> Result<Vec<Child>, StoreError>;

    /// [`Documents::list`] as the collection was at `time` (times as for
    /// [`Documents::get_at`]).
    async fn list_at(
        &self,
        collection: &CollectionPath,
        page_size: usize,
        after: Option<&str>,
        time: Timestamp,
    ) -> Result<Vec<Document>, StoreError> {
        let (query, mut page) = list_query(collection, page_size, after)?;
        // Live documents updated since `time` are passed over and the versions they replaced
        // read besides: the default work bound leaves room for them.
        page.max_examined = page.max_examined.max(query::limits::DEFAULT_MAX_EXAMINED);
        let result = self.query_at(&query, &page, time).await?;
        if result.next.is_some() && result.documents.len() < page_size {
            return Err(StoreError::ResourceExhausted(format!(
                "listing {collection} at {time} examined {} documents without filling a page of \
                 {page_size}: too many of them changed since then; list at a later time",
                page.max_examined
            )));
        }
        Ok(result.documents)
    }
}

/// A page of a collection in id order as a query: its documents after `after`, `page_size` of
/// them, examining one per document returned.
fn list_query(
    collection: &CollectionPath,
    page_size: usize,
    after: Option<&str>,
) -> Result<(Query, PageRequest), StoreError> {
    let mut query = Query::collection(collection.clone());
    query.limit = Some(page_size);
    if let Some(id) = after {
        query.start = Some(Cursor {
            values: vec![claimdb_model::Value::Reference(collection.doc(id)?)],
            inclusive: false,
        });
    }
    // Every document of the scan is a result: the page examines one per document returned.
    let page = PageRequest {
        size: page_size,
        max_examined: page_size.saturating_add(1),
        resume: None,
    };
    Ok((query, page))
}

/// System records: claimdb's own small state (users and their custom claims, revocations,
/// persisted provider keys, refresh tokens, login attempts), kept apart from documents — never
/// visible through the document API, queries, export, rules or the change feed.
#[async_trait]
pub trait Records: Send + Sync + 'static {
    /// Reads one system record.
    async fn get_record(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError>;

    /// The records of one namespace in key order, `limit` at a time, after `after`.
    async fn list_records(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Sets (`Some`) or deletes (`None`) a record if `condition` holds, atomically and durably;
    /// returns whether it did.
    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: Option<String>,
        condition: RecordCondition,
    ) -> Result<bool, StoreError>;

    /// Every record of every namespace in (namespace, key) order, after `after`: for migration.
    async fn scan_records(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError>;

    /// Removes a record and returns what it held, atomically: a single-use read (login states,
    /// one-time codes). Of two concurrent takes of one record, one gets it.
    async fn take_record(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        loop {
            let Some(value) = self.get_record(namespace, key).await? else {
                return Ok(None);
            };
            if self
                .put_record(namespace, key, None, RecordCondition::Equals(value.clone()))
                .await?
            {
                return Ok(Some(value));
            }
        }
    }
}

/// A whole store: its [`Documents`] and [`Records`], what it can do ([`Capabilities`]), its
/// journal, health and shutdown.
#[async_trait]
pub trait Store: Documents + Records {
    /// What this backend can do; fixed for the store's life, so callers read it once.
    fn capabilities(&self) -> Capabilities;

    /// Journal lines (see [`Commit::journal`]) with sequence numbers above `after`, in order,
    /// at most `limit`. Empty on a store without a journal.
    async fn journal(&self, _after: u64, _limit: usize) -> Result<Vec<(u64, String)>, StoreError> {
        Ok(Vec::new())
    }

    /// The highest sequence number in the journal (0 when empty).
    async fn journal_last(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Deletes the journal lines numbered up to `through`.
    async fn trim_journal(&self, _through: u64) -> Result<(), StoreError> {
        Ok(())
    }

    /// Checks that the store can serve requests (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stops accepting writes once every queued write is durable. Idempotent.
    async fn close(&self) -> Result<(), StoreError>;
}
