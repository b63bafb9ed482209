//! Listing a collection page by page: page-size bounds (the same as a query's, defined once
//! in [`claimdb_store::query::limits`]) and the opaque page token (the last returned document
//! id, base64url-encoded so clients treat it as opaque). Also the two structural listings,
//! which reveal what exists below documents: the collection ids below a document or the root,
//! and a collection with its missing documents. Both need the admin condition (the admin key,
//! an admin role, or emulator mode's owner), as the Firestore emulator requires admin
//! authentication for them
//! ("Metadata operations require admin authentication") and production Firestore serves them
//! to IAM principals only; a list with missing documents is also decided by the rules as a
//! list of the collection, since it returns the collection's documents.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use claimdb_model::{CollectionPath, DocPath};
use claimdb_rules::{Method, Target};
pub use claimdb_store::query::limits::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
use claimdb_store::{Child, Document};

use crate::authz::Loaded;
use crate::context::RequestContext;
use crate::engine::{Engine, rules_request};
use crate::error::EngineError;
use crate::read_time::ReadTime;

/// One list request's paging.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListRequest {
    /// 1..=[`MAX_PAGE_SIZE`]; [`DEFAULT_PAGE_SIZE`] when `None`.
    pub page_size: Option<usize>,
    /// The `next_page_token` of the previous page.
    pub page_token: Option<String>,
}

impl ListRequest {
    /// The id the page starts after: the page token decoded (`None` for the first page).
    fn after(&self) -> Result<Option<String>, EngineError> {
        self.page_token.as_deref().map(decode_token).transpose()
    }
}

/// One page of a collection, in document-id order.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub documents: Vec<Document>,
    /// Present when more documents may follow.
    pub next_page_token: Option<String>,
}

/// One page of the collection ids below a parent, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionIdsPage {
    pub collection_ids: Vec<String>,
    /// Present when more ids may follow.
    pub next_page_token: Option<String>,
}

/// One page of a collection with its missing documents, in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingListPage {
    pub entries: Vec<Child>,
    /// Present when more entries may follow.
    pub next_page_token: Option<String>,
}

/// Cuts one extra item (fetched to tell whether another page follows) and names where the
/// next page starts.
fn paged<T>(
    mut items: Vec<T>,
    page_size: usize,
    id: impl Fn(&T) -> &str,
) -> (Vec<T>, Option<String>) {
    if items.len() > page_size {
        items.truncate(page_size);
        let token = items.last().map(|item| encode_token(id(item)));
        (items, token)
    } else {
        (items, None)
    }
}

pub(crate) fn page_size(requested: Option<usize>) -> Result<usize, EngineError> {
    Ok(claimdb_store::query::limits::page_size(requested)?)
}

pub(crate) fn encode_token(last_id: &str) -> String {
    BASE64URL.encode(last_id.as_bytes())
}

pub(crate) fn decode_token(token: &str) -> Result<String, EngineError> {
    let bad = || {
        EngineError::invalid_argument(
            "page_token is not valid; pass the next_page_token of a previous page unchanged",
        )
    };
    let bytes = BASE64URL.decode(token.as_bytes()).map_err(|_| bad())?;
    let id = String::from_utf8(bytes).map_err(|_| bad())?;
    if id.is_empty() || id.contains('/') {
        return Err(bad());
    }
    Ok(id)
}

impl Engine {
    /// One page of a collection in document-id order.
    pub async fn list(
        &self,
        ctx: &RequestContext,
        collection: &CollectionPath,
        request: &ListRequest,
    ) -> Result<ListPage, EngineError> {
        self.list_at(ctx, collection, request, ReadTime::Latest)
            .await
    }

    /// One page of a collection in document-id order as it was at `at` (see [`ReadTime`]).
    pub async fn list_at(
        &self,
        ctx: &RequestContext,
        collection: &CollectionPath,
        request: &ListRequest,
        at: ReadTime,
    ) -> Result<ListPage, EngineError> {
        let page_size = page_size(request.page_size)?;
        self.decide_list(ctx, collection, page_size).await?;
        let after = request.after()?;
        // One extra document tells whether another page follows.
        let documents = at
            .list(&*self.store, collection, page_size + 1, after.as_deref())
            .await?;
        let (documents, next_page_token) = paged(documents, page_size, |d| d.path.id());
        Ok(ListPage {
            documents,
            next_page_token,
        })
    }

    /// One page of the ids of the collections directly below `parent` (the root collections
    /// when `None`) that hold documents at any depth. Needs the admin condition.
    pub async fn list_collection_ids(
        &self,
        ctx: &RequestContext,
        parent: Option<&DocPath>,
        request: &ListRequest,
    ) -> Result<CollectionIdsPage, EngineError> {
        self.list_collection_ids_at(ctx, parent, request, ReadTime::Latest)
            .await
    }

    /// [`Engine::list_collection_ids`] as the database was at `at` (see [`ReadTime`]).
    pub async fn list_collection_ids_at(
        &self,
        ctx: &RequestContext,
        parent: Option<&DocPath>,
        request: &ListRequest,
        at: ReadTime,
    ) -> Result<CollectionIdsPage, EngineError> {
        let page_size = page_size(request.page_size)?;
        self.authorize_admin(ctx).await?;
        let after = request.after()?;
        let ids = at
            .collection_ids(&*self.store, parent, after.as_deref(), page_size + 1)
            .await?;
        let (collection_ids, next_page_token) = paged(ids, page_size, String::as_str);
        Ok(CollectionIdsPage {
            collection_ids,
            next_page_token,
        })
    }

    /// One page of a collection in id order with its missing documents (absent, with
    /// documents in their subcollections). Needs the admin condition, and the rules must allow
    /// the caller to list the collection.
    pub async fn list_with_missing(
        &self,
        ctx: &RequestContext,
        collection: &CollectionPath,
        request: &ListRequest,
    ) -> Result<MissingListPage, EngineError> {
        self.list_with_missing_at(ctx, collection, request, ReadTime::Latest)
            .await
    }

    /// [`Engine::list_with_missing`] as the collection was at `at` (see [`ReadTime`]).
    pub async fn list_with_missing_at(
        &self,
        ctx: &RequestContext,
        collection: &CollectionPath,
        request: &ListRequest,
        at: ReadTime,
    ) -> Result<MissingListPage, EngineError> {
        let page_size = page_size(request.page_size)?;
        self.authorize_admin(ctx).await?;
        self.decide_list(ctx, collection, page_size).await?;
        let after = request.after()?;
        let entries = at
            .list_with_missing(&*self.store, collection, after.as_deref(), page_size + 1)
            .await?;
        let (entries, next_page_token) = paged(entries, page_size, |entry| match entry {
            Child::Document(d) => d.path.id(),
            Child::Missing(p) => p.id(),
        });
        Ok(MissingListPage {
            entries,
            next_page_token,
        })
    }

    /// The rules' decision on listing a collection a page at a time (`request.query.limit` is
    /// the page size).
    async fn decide_list(
        &self,
        ctx: &RequestContext,
        collection: &CollectionPath,
        page_size: usize,
    ) -> Result<(), EngineError> {
        let auth = self.authenticate(ctx).await?;
        let rules = self.rules_for(auth.as_ref());
        let mut rules_request = rules_request(
            Method::List,
            Target::Collection(collection.clone()),
            auth.as_ref(),
            self.clock.timestamp(),
        );
        rules_request.query = Some(claimdb_rules::Query {
            limit: i64::try_from(page_size).ok(),
            ..claimdb_rules::Query::default()
        });
        self.check(
            ctx,
            auth.as_ref(),
            &rules,
            &rules_request,
            &mut Loaded::default(),
            false,
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_and_bounds() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(1)).unwrap(), 1);
        assert_eq!(page_size(Some(MAX_PAGE_SIZE)).unwrap(), MAX_PAGE_SIZE);
        for bad in [0, MAX_PAGE_SIZE + 1] {
            let e = page_size(Some(bad)).unwrap_err();
            assert_eq!(e.code(), "invalid-argument");
            assert!(e.message().contains("page_size"), "{e}");
        }
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        for id in ["a", "m1", "ünïcode id", "with+and/"] {
            let token = encode_token(id);
            assert!(!token.contains(['+', '/', '=']), "{token}");
            if id.contains('/') {
                assert!(decode_token(&token).is_err());
            } else {
                assert_eq!(decode_token(&token).unwrap(), id);
            }
        }
        for bad in ["", "!!!", "%%", "_-_-_"] {
            assert!(decode_token(bad).is_err(), "{bad}");
        }
    }
}
