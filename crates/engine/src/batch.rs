//! Batches: up to 500 writes decided together — each against the state the writes before it
//! leave, `getAfter()` seeing the whole batch — and committed atomically, pinned to the states
//! they were decided on. A single write (`documents.rs`) is a batch of one: writes have one
//! decision path. (Which write failed a commit is reported by the store itself, through
//! `StoreError::write_index`.)

use std::collections::HashMap;

use claimdb_audit::AuditEvent;
use claimdb_model::{DocPath, Map, Timestamp};
use claimdb_rules::{Method, Request, Target};
use claimdb_store::{
    Commit, CommitResult, Document, Precondition, ReadCheck, StoreError, Write, WriteOp,
    apply_write,
};

use crate::auth::Principal;
use crate::authz::{self, ActiveRules, Loaded};
use crate::context::RequestContext;
use crate::documents::conditional;
use crate::engine::{Engine, MAX_DECIDE_ATTEMPTS};
use crate::error::EngineError;

impl Engine {
    /// Applies up to 500 writes atomically. On failure nothing is applied, and the error carries
    /// the index of the failing write when it can be determined.
    pub async fn batch(
        &self,
        ctx: &RequestContext,
        writes: Vec<Write>,
    ) -> Result<CommitResult, EngineError> {
        self.batch_pinned(ctx, writes, Vec::new()).await
    }

    /// [`Engine::batch`] that commits only if every document of `reads` is still as the caller
    /// read it (at that version, or still missing): a transaction's reads, checked in the same
    /// store transaction as the writes. When one changed, nothing is applied and the error is
    /// `Aborted` (retry the transaction).
    pub async fn batch_pinned(
        &self,
        ctx: &RequestContext,
        writes: Vec<Write>,
        reads: Vec<ReadCheck>,
    ) -> Result<CommitResult, EngineError> {
        check_size(&writes)?;
        let who = self.authenticate(ctx).await?;
        let auth = who.as_ref().map(Principal::rules_value);
        let rules = self.rules_for(who.as_ref());
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (mut checks, events) = self
                .decide_batch(ctx, who.as_ref(), &rules, &writes, auth.as_ref())
                .await?;
            checks.extend(reads.iter().cloned());
            let commit = |journal| self.commit_batch(checks, writes.clone(), journal);
            match self.audited(events, commit).await {
                Err(EngineError::Aborted { .. }) if attempts < MAX_DECIDE_ATTEMPTS => {
                    // Deciding again helps when a document the decision read changed; not when
                    // one the caller read did.
                    if let Some(changed) = self.changed(&reads).await? {
                        return Err(EngineError::Aborted {
                            message: format!(
                                "{changed} changed after it was read; retry the transaction"
                            ),
                            write_index: None,
                        });
                    }
                }
                other => return other,
            }
        }
    }

    /// The first document of `reads` that is no longer at the version read, if any.
    async fn changed(&self, reads: &[ReadCheck]) -> Result<Option<DocPath>, EngineError> {
        if reads.is_empty() {
            return Ok(None);
        }
        let paths: Vec<DocPath> = reads.iter().map(|r| r.path.clone()).collect();
        let now = self.store.get_many(&paths).await?;
        Ok(reads
            .iter()
            .zip(now)
            .find(|(read, doc)| doc.as_ref().map(|d| d.version) != read.version)
            .map(|(read, _)| read.path.clone()))
    }

    /// Decides every write of a batch against the state it applies to — each write sees the
    /// ones before it, and `getAfter()` sees the whole batch applied. Returns the read checks
    /// that pin the decision for the commit.
    async fn decide_batch(
        &self,
        ctx: &RequestContext,
        who: Option<&Principal>,
        rules: &ActiveRules,
        writes: &[Write],
        auth: Option<&std::sync::Arc<claimdb_model::Value>>,
    ) -> Result<(Vec<claimdb_store::ReadCheck>, Vec<AuditEvent>), EngineError> {
        let mut paths: Vec<DocPath> = Vec::new();
        for w in writes {
            if !paths.contains(&w.path) {
                paths.push(w.path.clone());
            }
        }
        let stored = match paths.as_slice() {
            [one] => vec![self.store.get(one).await?],
            _ => self.store.get_many(&paths).await?,
        };
        let mut loaded = Loaded::default();
        let mut state: HashMap<DocPath, Option<Document>> = HashMap::with_capacity(paths.len());
        for (path, doc) in paths.into_iter().zip(stored) {
            loaded.insert(path.clone(), doc.as_ref());
            state.insert(path, doc);
        }
        let now = self.clock.timestamp();
        let mut requests = Vec::with_capacity(writes.len());
        for w in writes {
            let current = state.get(&w.path).and_then(Option::as_ref);
            let (method, existing, next) = simulate(current, w, now);
            let mut request = Request::new(method, Target::Doc(w.path.clone()), now);
            request.auth = auth.cloned();
            request.existing = existing;
            request.incoming = match &next {
                Ok(Some(doc)) => Some(doc.data.clone()),
                _ => None,
            };
            requests.push(request);
            // The writes after this one see what it leaves (a write that cannot apply leaves
            // the document as it was; the store reports why at commit, if the rules allow it).
            if let Ok(next) = next {
                state.insert(w.path.clone(), next);
            }
        }
        for (path, doc) in &state {
            loaded
                .prefetch
                .insert_after(path.clone(), doc.as_ref().map(|d| d.data.clone()));
        }
        let decisions =
            authz::decide_batch(&rules.ruleset, &requests, &mut loaded, &*self.store).await?;
        let mut events = Vec::new();
        for (request, decision) in requests.iter().zip(&decisions) {
            if let Some(e) = self.decided(ctx, who, request, decision, &rules.origin) {
                events.push(e);
            }
        }
        if let Some(i) = decisions.iter().position(|d| !d.allowed) {
            // Nothing is written: every decision of the batch is logged, none needs to wait.
            for e in events {
                self.record(e).await;
            }
            return Err(authz::denied(
                rules,
                &requests[i],
                &decisions[i],
                &loaded,
                self.explain_denials,
            )
            .at_write(i));
        }
        Ok((loaded.checks, events))
    }

    async fn commit_batch(
        &self,
        checks: Vec<claimdb_store::ReadCheck>,
        writes: Vec<Write>,
        journal: Vec<String>,
    ) -> Result<CommitResult, EngineError> {
        let preconditions: Vec<Precondition> = writes.iter().map(|w| w.precondition).collect();
        let commit = Commit::from_parts(checks, writes, journal);
        match self.store.commit(commit).await {
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
}

pub(crate) fn check_size(writes: &[Write]) -> Result<(), EngineError> {
    if writes.is_empty() {
        return Err(EngineError::invalid_argument(
            "a batch needs at least one write",
        ));
    }
    // The store's own check, run before any rule is evaluated for the batch.
    claimdb_store::check_write_count(writes.len())?;
    Ok(())
}

/// The same write without its precondition (for computing what it would produce: the store
/// checks the precondition itself at commit).
fn unconditional(write: &Write) -> std::borrow::Cow<'_, Write> {
    if write.precondition == Precondition::None {
        return std::borrow::Cow::Borrowed(write);
    }
    let mut w = write.clone();
    w.precondition = Precondition::None;
    std::borrow::Cow::Owned(w)
}

/// What a write is to the rules: its method, `resource` (the stored data, absent for a create)
/// and what the document is after it — `request.resource` is its data — or why the write cannot
/// apply (then the store reports that at commit, if the rules allow the write at all).
fn simulate(
    current: Option<&Document>,
    write: &Write,
    now: Timestamp,
) -> (Method, Option<Map>, Result<Option<Document>, StoreError>) {
    let next = apply_write(current, &unconditional(write), now, 0);
    match (&write.op, current) {
        (WriteOp::Create { .. }, _) | (WriteOp::Set { .. }, None) => (Method::Create, None, next),
        (WriteOp::Set { .. } | WriteOp::Update { .. }, _) => {
            (Method::Update, authz::data(current), next)
        }
        (WriteOp::Delete, _) => (Method::Delete, authz::data(current), next),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use claimdb_model::limits::MAX_BATCH_WRITES;
    use claimdb_model::{DocPath, Map};
    use claimdb_store::WriteOp;

    fn set(p: &str) -> Write {
        Write::new(
            DocPath::parse(p).unwrap(),
            WriteOp::Set {
                data: Map::new(),
                transforms: vec![],
            },
        )
    }

    #[test]
    fn batch_size_is_bounded() {
        assert!(
            check_size(&[])
                .unwrap_err()
                .message()
                .contains("at least one")
        );
        let many: Vec<Write> = (0..=MAX_BATCH_WRITES)
            .map(|i| set(&format!("a/{i}")))
            .collect();
        assert!(
            check_size(&many)
                .unwrap_err()
                .message()
                .contains("limit is 500")
        );
        assert!(check_size(&many[..MAX_BATCH_WRITES]).is_ok());
    }

    /// The limit used to be checked in four places with two messages; the engine now runs the
    /// store's own check. This fails if the two ever refuse different batches again.
    #[tokio::test]
    async fn the_engine_and_the_store_refuse_the_same_batches() {
        use claimdb_store::Documents;
        let dir = tempfile::tempdir().unwrap();
        let store = claimdb_store::SqliteStore::open(dir.path()).unwrap();
        for n in [MAX_BATCH_WRITES, MAX_BATCH_WRITES + 1] {
            let writes: Vec<Write> = (0..n).map(|i| set(&format!("a/{i}"))).collect();
            let engine = check_size(&writes).map_err(|e| e.message().to_string());
            let stored = store
                .commit(writes.into())
                .await
                .map(|_| ())
                .map_err(|e| EngineError::from(e).message().to_string());
            assert_eq!(engine, stored, "{n} writes");
        }
    }
}
