//! [`Engine`]: one method per operation. Each takes the request's context and domain inputs,
//! would authenticate and authorize here (every request is allowed until identity and rules
//! land), then executes against the store and shapes the result.
//!
//! Single-document writes go through the same atomic `commit` as batches, so preconditions are
//! checked inside the store's transaction: two racing `If-Match` writers cannot both win.

use std::sync::Arc;

use claimdb_model::json::{DecodedUpdate, DecodedWrite};
use claimdb_model::{CollectionPath, DocPath};
use claimdb_store::{
    CommitResult, Document, Precondition, Query, Store, Write, WriteOp, WriteResult,
};

use crate::batch;
use crate::context::RequestContext;
use crate::error::EngineError;
use crate::ids::generate_id;
use crate::list::{self, ListPage, ListRequest};
use crate::query;

/// The condition a single-document write puts on the document's current state.
///
/// Like [`Precondition`], plus a set of acceptable versions (an `If-Match` list of entity tags).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteCondition {
    #[default]
    None,
    /// The document must exist (`If-Match: *`).
    Exists,
    /// The document must not exist (`If-None-Match: *`).
    Missing,
    /// The document must exist at one of these versions (`If-Match: "3", "4"`).
    VersionIn(Vec<u64>),
}

impl From<Precondition> for WriteCondition {
    fn from(p: Precondition) -> Self {
        match p {
            Precondition::None => WriteCondition::None,
            Precondition::Exists => WriteCondition::Exists,
            Precondition::Missing => WriteCondition::Missing,
            Precondition::Version(v) => WriteCondition::VersionIn(vec![v]),
        }
    }
}

/// The outcome of a set (replace-or-create).
#[derive(Debug, Clone, PartialEq)]
pub struct SetOutcome {
    pub document: Document,
    /// True when the document did not exist before.
    pub created: bool,
}

/// Executes requests against a store.
pub struct Engine {
    store: Arc<dyn Store>,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Engine { store }
    }

    /// Reads one document; `NotFound` when it does not exist.
    pub async fn get(
        &self,
        _ctx: &RequestContext,
        path: &DocPath,
    ) -> Result<Document, EngineError> {
        self.store
            .get(path)
            .await?
            .ok_or_else(|| EngineError::not_found(format!("document {path} does not exist")))
    }

    /// Creates a document at `path`; `AlreadyExists` if there is one.
    pub async fn create(
        &self,
        _ctx: &RequestContext,
        path: DocPath,
        data: DecodedWrite,
    ) -> Result<Document, EngineError> {
        let op = WriteOp::Create {
            data: data.data,
            transforms: data.transforms,
        };
        let result = self.write_one(Write::new(path, op)).await?;
        written(result)
    }

    /// Creates a document with a fresh 20-character id in `collection`.
    pub async fn create_with_generated_id(
        &self,
        ctx: &RequestContext,
        collection: &CollectionPath,
        data: DecodedWrite,
    ) -> Result<Document, EngineError> {
        // A collision among 62^20 ids means a broken random source; retry once, then report it.
        let mut last = None;
        for _ in 0..2 {
            let path = collection.doc(&generate_id())?;
            match self.create(ctx, path, data.clone()).await {
                Err(e @ EngineError::AlreadyExists { .. }) => last = Some(e),
                other => return other,
            }
        }
        let detail = last.map(|e| e.to_string()).unwrap_or_default();
        Err(EngineError::internal(format!(
            "generated document ids collided twice: {detail}"
        )))
    }

    /// Replaces the document at `path`, or creates it.
    pub async fn set(
        &self,
        _ctx: &RequestContext,
        path: DocPath,
        data: DecodedWrite,
        condition: impl Into<WriteCondition>,
    ) -> Result<SetOutcome, EngineError> {
        let precondition = self.resolve(&path, condition.into()).await?;
        let op = WriteOp::Set {
            data: data.data,
            transforms: data.transforms,
        };
        let result = self
            .write_one(Write::new(path, op).with_precondition(precondition))
            .await?;
        let created = !result.existed;
        Ok(SetOutcome {
            document: written(result)?,
            created,
        })
    }

    /// Merges dotted field paths into an existing document; `NotFound` when it does not exist.
    pub async fn update(
        &self,
        _ctx: &RequestContext,
        path: DocPath,
        update: DecodedUpdate,
        condition: impl Into<WriteCondition>,
    ) -> Result<Document, EngineError> {
        let precondition = self.resolve(&path, condition.into()).await?;
        let op = WriteOp::Update {
            fields: update.fields,
            transforms: update.transforms,
        };
        let result = self
            .write_one(Write::new(path, op).with_precondition(precondition))
            .await?;
        written(result)
    }

    /// Deletes a document. Deleting a missing document succeeds unless a condition says not.
    pub async fn delete(
        &self,
        _ctx: &RequestContext,
        path: DocPath,
        condition: impl Into<WriteCondition>,
    ) -> Result<(), EngineError> {
        let precondition = self.resolve(&path, condition.into()).await?;
        self.write_one(Write::new(path, WriteOp::Delete).with_precondition(precondition))
            .await?;
        Ok(())
    }

    /// One page of a collection in document-id order.
    pub async fn list(
        &self,
        _ctx: &RequestContext,
        collection: &CollectionPath,
        request: &ListRequest,
    ) -> Result<ListPage, EngineError> {
        let page_size = list::page_size(request.page_size)?;
        let after = request
            .page_token
            .as_deref()
            .map(list::decode_token)
            .transpose()?;
        // One extra document tells whether another page follows.
        let mut documents = self
            .store
            .list(collection, page_size + 1, after.as_deref())
            .await?;
        let next_page_token = if documents.len() > page_size {
            documents.truncate(page_size);
            documents.last().map(|d| list::encode_token(d.path.id()))
        } else {
            None
        };
        Ok(ListPage {
            documents,
            next_page_token,
        })
    }

    /// Runs a query.
    pub async fn query(
        &self,
        _ctx: &RequestContext,
        query: &Query,
    ) -> Result<Vec<Document>, EngineError> {
        query::validate(query)?;
        Ok(self.store.query(query).await?)
    }

    /// Applies up to 500 writes atomically. On failure nothing is applied, and the error carries
    /// the index of the failing write when it can be determined.
    pub async fn batch(
        &self,
        _ctx: &RequestContext,
        writes: Vec<Write>,
    ) -> Result<CommitResult, EngineError> {
        batch::check_size(&writes)?;
        let preconditions: Vec<Precondition> = writes.iter().map(|w| w.precondition).collect();
        match self.store.commit(writes).await {
            Ok(result) => Ok(result),
            Err(e) => {
                // A store names the failing write of a multi-write commit; a single write is 0.
                let index = match e.write_index() {
                    Some(i) => Some(i),
                    None if preconditions.len() == 1 => Some(0),
                    None => None,
                };
                let e = EngineError::from(e);
                Err(
                    match index.and_then(|i| Some((i, *preconditions.get(i)?))) {
                        Some((i, precondition)) => conditional(e, precondition).at_write(i),
                        None => e,
                    },
                )
            }
        }
    }

    /// Whether the engine can serve requests (the store answers).
    pub async fn ready(&self, _ctx: &RequestContext) -> Result<(), EngineError> {
        Ok(self.store.ping().await?)
    }

    async fn write_one(&self, write: Write) -> Result<WriteResult, EngineError> {
        let precondition = write.precondition;
        let mut result = self
            .store
            .commit(vec![write])
            .await
            .map_err(|e| conditional(EngineError::from(e), precondition))?;
        result
            .results
            .pop()
            .ok_or_else(|| EngineError::internal("the store returned no result for a write"))
    }

    /// Turns a set of acceptable versions into one store precondition. With several versions the
    /// current one is read first; the store re-checks it inside the commit, so a concurrent
    /// writer still makes the write fail rather than be lost.
    async fn resolve(
        &self,
        path: &DocPath,
        condition: WriteCondition,
    ) -> Result<Precondition, EngineError> {
        Ok(match condition {
            WriteCondition::None => Precondition::None,
            WriteCondition::Exists => Precondition::Exists,
            WriteCondition::Missing => Precondition::Missing,
            WriteCondition::VersionIn(versions) => match versions.as_slice() {
                [] => {
                    return Err(EngineError::failed_precondition(format!(
                        "no entity tag of the condition names a version, so document {path} cannot match it"
                    )));
                }
                [v] => Precondition::Version(*v),
                _ => match self.store.get(path).await? {
                    Some(doc) if versions.contains(&doc.version) => {
                        Precondition::Version(doc.version)
                    }
                    Some(doc) => {
                        return Err(EngineError::failed_precondition(format!(
                            "document {path} is at version {}, not one of {versions:?}",
                            doc.version
                        )));
                    }
                    None => {
                        return Err(EngineError::failed_precondition(format!(
                            "document {path} does not exist, so it matches no version"
                        )));
                    }
                },
            },
        })
    }
}

/// A failed write whose caller set a condition reports `failed-precondition` (HTTP 412), as
/// conditional requests do, whatever the store called it: `If-Match` on a missing document,
/// `If-None-Match: *` on an existing one.
fn conditional(error: EngineError, precondition: Precondition) -> EngineError {
    match (error, precondition) {
        (
            EngineError::NotFound {
                message,
                write_index,
            },
            Precondition::Exists | Precondition::Version(_),
        )
        | (
            EngineError::AlreadyExists {
                message,
                write_index,
            },
            Precondition::Missing,
        ) => EngineError::FailedPrecondition {
            message,
            write_index,
        },
        (error, _) => error,
    }
}

fn written(result: WriteResult) -> Result<Document, EngineError> {
    result
        .document
        .ok_or_else(|| EngineError::internal("the store returned no document after a write"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditional_writes_fail_with_failed_precondition() {
        let nf = EngineError::not_found("gone");
        assert_eq!(
            conditional(nf.clone(), Precondition::Version(3)).code(),
            "failed-precondition"
        );
        assert_eq!(
            conditional(nf.clone(), Precondition::Exists).code(),
            "failed-precondition"
        );
        assert_eq!(conditional(nf, Precondition::None).code(), "not-found");
        let ae = EngineError::AlreadyExists {
            message: "there".into(),
            write_index: Some(2),
        };
        let e = conditional(ae.clone(), Precondition::Missing);
        assert_eq!(
            (e.code(), e.write_index()),
            ("failed-precondition", Some(2))
        );
        assert_eq!(conditional(ae, Precondition::None).code(), "already-exists");
    }

    #[test]
    fn write_conditions_come_from_preconditions() {
        assert_eq!(
            WriteCondition::from(Precondition::Version(4)),
            WriteCondition::VersionIn(vec![4])
        );
        assert_eq!(
            WriteCondition::from(Precondition::Missing),
            WriteCondition::Missing
        );
    }
}
