//! Deciding with documents fetched asynchronously: [`Prefetch`] is a [`DocumentReader`] over the
//! documents loaded so far that records which ones the rules asked for but were not loaded.
//!
//! The evaluator is synchronous and pure, and the store is async. Rather than block inside
//! `get()`, the engine runs [`decide_with_prefetch`]'s loop: evaluate, fetch what was missing,
//! evaluate again. Evaluation is cheap and at most 10 distinct documents (20 per batch) can be
//! read, so the loop ends after a few rounds. This file does no IO itself.

use std::cell::RefCell;
use std::collections::HashMap;

use claimdb_model::{DocPath, Map};

use crate::compile::Ruleset;
use crate::request::{Decision, DocumentReader, ReadError, Request};

/// Documents loaded so far (`None`: known not to exist), before and after the pending write.
#[derive(Debug, Default)]
pub struct Prefetch {
    before: HashMap<DocPath, Option<Map>>,
    after: HashMap<DocPath, Option<Map>>,
    wanted: RefCell<Vec<(DocPath, bool)>>,
}

impl Prefetch {
    pub fn new() -> Prefetch {
        Prefetch::default()
    }

    /// Records the stored state of a document (`None` if it does not exist).
    pub fn insert(&mut self, path: DocPath, doc: Option<Map>) {
        self.before.insert(path, doc);
    }

    /// Records the state of a document as if the current write or batch had committed.
    pub fn insert_after(&mut self, path: DocPath, doc: Option<Map>) {
        self.after.insert(path, doc);
    }

    /// Documents the last evaluation asked for but were not loaded: `(path, after)`, where
    /// `after` means `getAfter()`/`existsAfter()`. Clears the list.
    pub fn take_wanted(&self) -> Vec<(DocPath, bool)> {
        std::mem::take(&mut *self.wanted.borrow_mut())
    }

    fn lookup(
        &self,
        map: &HashMap<DocPath, Option<Map>>,
        path: &DocPath,
        after: bool,
    ) -> Result<Option<Map>, ReadError> {
        match map.get(path) {
            Some(doc) => Ok(doc.clone()),
            None => {
                let mut wanted = self.wanted.borrow_mut();
                if !wanted.iter().any(|(p, a)| p == path && *a == after) {
                    wanted.push((path.clone(), after));
                }
                Err(ReadError(format!("{path} is not loaded yet")))
            }
        }
    }
}

impl DocumentReader for Prefetch {
    fn get(&self, path: &DocPath) -> Result<Option<Map>, ReadError> {
        self.lookup(&self.before, path, false)
    }

    fn get_after(&self, path: &DocPath) -> Result<Option<Map>, ReadError> {
        match self.after.get(path) {
            Some(doc) => Ok(doc.clone()),
            // Unchanged by the write: the stored state, if it is loaded.
            None if self.before.contains_key(path) => self.lookup(&self.before, path, false),
            None => self.lookup(&self.after, path, true),
        }
    }
}

/// One round of the prefetch loop: decide, and say which documents to load before deciding
/// again. An allowed decision is final even if some documents were never loaded (any allow
/// grants); a denial with nothing left to load is final too.
pub fn decide_with_prefetch(
    rules: &Ruleset,
    request: &Request,
    docs: &Prefetch,
    explain: bool,
) -> (Decision, Vec<(DocPath, bool)>) {
    let _ = docs.take_wanted();
    let decision = if explain {
        rules.explain(request, docs)
    } else {
        rules.evaluate(request, docs)
    };
    let wanted = docs.take_wanted();
    if decision.allowed || decision.limit.is_some() {
        (decision, Vec::new())
    } else {
        (decision, wanted)
    }
}
