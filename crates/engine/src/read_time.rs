//! Which state of the database a read sees: the latest, or the documents as they were at a past
//! time (Firestore's `readTime`, within the store's history retention, see
//! [`claimdb_store::history`]). Every read operation of the engine (`get`, `list`, `query` and
//! the structural listings) takes one through its `_at` form, which its plain form calls with
//! [`ReadTime::Latest`]: one implementation per operation, deciding the rules the same way at
//! any time. This module only routes each read to the store call for its time.
//!
//! The rules decide a read at a past time as they decide a live one — now: `request.time` and
//! `request.auth` are the present's, and documents the rules `get()` or `exists()` are read as
//! they are now (so access someone has lost is not regained by reading the past) —, while
//! `resource` is the document read, the version at that time. Rules are not filters: a list or
//! query is decided on its constraints, whatever time it reads.

use claimdb_model::{CollectionPath, DocPath, Timestamp};
use claimdb_store::{Child, Document, PageRequest, Query, QueryPage, Store, StoreError};

/// Which state of the database a read sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadTime {
    /// Every commit acknowledged before the read began.
    #[default]
    Latest,
    /// The documents as they were at this time: in the past, and no older than the store's
    /// history retention (else `invalid-argument` / `failed-precondition`).
    At(Timestamp),
}

impl ReadTime {
    /// `At` the given time, or the latest.
    pub fn from_option(time: Option<Timestamp>) -> Self {
        time.map_or(ReadTime::Latest, ReadTime::At)
    }

    /// The past time read at, if any.
    pub fn time(self) -> Option<Timestamp> {
        match self {
            ReadTime::Latest => None,
            ReadTime::At(t) => Some(t),
        }
    }

    pub(crate) async fn get(
        self,
        store: &dyn Store,
        path: &DocPath,
    ) -> Result<Option<Document>, StoreError> {
        match self {
            ReadTime::Latest => store.get(path).await,
            ReadTime::At(time) => Ok(store
                .get_at(std::slice::from_ref(path), time)
                .await?
                .pop()
                .flatten()),
        }
    }

    pub(crate) async fn query(
        self,
        store: &dyn Store,
        query: &Query,
        page: &PageRequest,
    ) -> Result<QueryPage, StoreError> {
        match self {
            ReadTime::Latest => store.query(query, page).await,
            ReadTime::At(time) => store.query_at(query, page, time).await,
        }
    }

    pub(crate) async fn list(
        self,
        store: &dyn Store,
        collection: &CollectionPath,
        page_size: usize,
        after: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        match self {
            ReadTime::Latest => store.list(collection, page_size, after).await,
            ReadTime::At(time) => store.list_at(collection, page_size, after, time).await,
        }
    }

    pub(crate) async fn collection_ids(
        self,
        store: &dyn Store,
        parent: Option<&DocPath>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        match self {
            ReadTime::Latest => store.collection_ids(parent, after, limit).await,
            ReadTime::At(time) => store.collection_ids_at(parent, after, limit, time).await,
        }
    }

    pub(crate) async fn list_with_missing(
        self,
        store: &dyn Store,
        collection: &CollectionPath,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Child>, StoreError> {
        match self {
            ReadTime::Latest => store.list_with_missing(collection, after, limit).await,
            ReadTime::At(time) => {
                store
                    .list_with_missing_at(collection, after, limit, time)
                    .await
            }
        }
    }
}

impl crate::Engine {
    /// Checks that the store can read at `time` (in the past, within its history retention)
    /// without reading anything: for a transaction that will read at that time, so a time it
    /// cannot use is refused when it begins.
    pub async fn check_read_time(&self, time: Timestamp) -> Result<(), crate::EngineError> {
        self.store.get_at(&[], time).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
