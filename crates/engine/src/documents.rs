//! The document operations: get, create, set, update and delete of one document. A read is
//! decided on the stored document (at a past time: the version then, see [`ReadTime`]); a write is a batch of one (`batch.rs`): decided against the
//! document's current state, then committed pinned to it (decided again if it changed
//! meanwhile), with the caller's condition (`If-Match`, `If-None-Match`) checked inside the
//! store's transaction.

use claimdb_model::json::{DecodedUpdate, DecodedWrite};
use claimdb_model::{CollectionPath, DocPath};
use claimdb_rules::{Method, Target};
use claimdb_store::{Document, Precondition, Write, WriteOp, WriteResult};

use crate::authz::Loaded;
use crate::context::RequestContext;
use crate::engine::{Engine, rules_request};
use crate::error::EngineError;
use crate::ids::generate_id;
use crate::read_time::ReadTime;

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

impl Engine {
    /// Reads one document; `NotFound` when it does not exist (and the rules allow the read).
    pub async fn get(&self, ctx: &RequestContext, path: &DocPath) -> Result<Document, EngineError> {
        self.get_at(ctx, path, ReadTime::Latest).await
    }

    /// Reads one document as it was at `at` (see [`ReadTime`]): decided by the rules as a live
    /// read is, with `resource` the version read; `NotFound` when it did not exist then.
    pub async fn get_at(
        &self,
        ctx: &RequestContext,
        path: &DocPath,
        at: ReadTime,
    ) -> Result<Document, EngineError> {
        let auth = self.authenticate(ctx).await?;
        let rules = self.rules_for(auth.as_ref());
        let mut doc = at.get(&*self.store, path).await?;
        let mut request = rules_request(
            Method::Get,
            Target::Doc(path.clone()),
            auth.as_ref(),
            self.clock.timestamp(),
        );
        // The rules borrow the data (`resource.data`) and give it back: no copy per read.
        request.existing = doc.as_mut().map(|d| std::mem::take(&mut d.data));
        let mut loaded = Loaded::default();
        self.check(ctx, auth.as_ref(), &rules, &request, &mut loaded, false)
            .await?;
        let mut doc =
            doc.ok_or_else(|| EngineError::not_found(format!("document {path} does not exist")))?;
        doc.data = request.existing.take().unwrap_or_default();
        Ok(doc)
    }

    /// Creates a document at `path`; `AlreadyExists` if there is one.
    pub async fn create(
        &self,
        ctx: &RequestContext,
        path: DocPath,
        data: DecodedWrite,
    ) -> Result<Document, EngineError> {
        let op = WriteOp::Create {
            data: data.data,
            transforms: data.transforms,
        };
        let result = self.write_one(ctx, Write::new(path, op)).await?;
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
        ctx: &RequestContext,
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
            .write_one(ctx, Write::new(path, op).with_precondition(precondition))
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
        ctx: &RequestContext,
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
            .write_one(ctx, Write::new(path, op).with_precondition(precondition))
            .await?;
        written(result)
    }

    /// Deletes a document. Deleting a missing document succeeds unless a condition says not.
    pub async fn delete(
        &self,
        ctx: &RequestContext,
        path: DocPath,
        condition: impl Into<WriteCondition>,
    ) -> Result<(), EngineError> {
        let precondition = self.resolve(&path, condition.into()).await?;
        self.write_one(
            ctx,
            Write::new(path, WriteOp::Delete).with_precondition(precondition),
        )
        .await?;
        Ok(())
    }

    /// A single write is a batch of one: decided and committed by [`Engine::batch`]'s path,
    /// with its errors naming no write index.
    async fn write_one(
        &self,
        ctx: &RequestContext,
        write: Write,
    ) -> Result<WriteResult, EngineError> {
        let mut result = self
            .batch(ctx, vec![write])
            .await
            .map_err(EngineError::not_at_write)?;
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
pub(crate) fn conditional(error: EngineError, precondition: Precondition) -> EngineError {
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

pub(crate) fn written(result: WriteResult) -> Result<Document, EngineError> {
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
