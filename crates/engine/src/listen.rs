//! Realtime listeners: a document or a query watched through the store's change feed, decided
//! by the rules like a get or a list — when it starts, and again whenever the state it shows
//! changes and whenever the caller's claims or the rules change (a listener no longer allowed
//! ends with `permission-denied`, a revoked caller's with `unauthenticated`).
//!
//! A listener subscribes to the feed first, then reads (so no commit falls between the read and
//! the feed). It keeps the result it last showed; a commit that touches what it watches (the
//! document, or a document in the query's scope) makes it read again through the engine's own
//! `get` / `query` — so every re-read is a rules decision, audited like any read — and it
//! reports the difference: added, modified and removed documents with their old and new
//! positions. A listener that falls behind the feed (`Lagged`) reads again the same way: what
//! it reports is then the net change, so its memory stays bounded by its result, never by the
//! commits it missed. Every [`RECHECK`] it authenticates the caller again (revocation) and, when
//! the rules in force or the caller's `request.auth` changed, reads again.
//!
//! Not here: the wire protocols (server-sent events in `server`), resuming where a client left
//! off (a reconnecting client gets a fresh snapshot).

use std::sync::Arc;
use std::time::Duration;

use claimdb_model::{DocPath, Value};
use claimdb_store::feed::{FeedEvent, Subscription};
use claimdb_store::query::limits;
use claimdb_store::{Document, Query};

use crate::authz::ActiveRules;
use crate::context::RequestContext;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::query::QueryPaging;

/// How often a listener checks that its caller still holds (revocation, changed claims or
/// rules) when nothing it watches changes.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Most documents a query listener's result may hold.
pub const MAX_LISTEN_RESULTS: usize = 10_000;

/// What a listener watches.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenTarget {
    Document(DocPath),
    Query(Box<Query>),
}

/// How one document's presence in the result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Removed => "removed",
        }
    }
}

/// One document's change. Positions are those of the result as the changes before this one
/// left it (`old_index`) and as this one leaves it (`new_index`), so applying the changes in
/// order turns the previous result into the new one.
#[derive(Debug, Clone, PartialEq)]
pub struct DocChange {
    pub kind: ChangeKind,
    /// The document as it is now (for `Removed`, as it was last shown).
    pub document: Document,
    pub old_index: Option<usize>,
    pub new_index: Option<usize>,
}

/// What a listener reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenEvent {
    /// The whole result: the first event of every listener.
    Snapshot { documents: Vec<Document> },
    /// What changed since the last event, in order.
    Changes { changes: Vec<DocChange> },
}

/// A running listener: call [`Listener::next`] for each event after the snapshot.
pub struct Listener {
    engine: Arc<Engine>,
    ctx: RequestContext,
    target: ListenTarget,
    feed: Subscription,
    shown: Vec<Document>,
    /// What the last decision was made with: the rules in force and the caller's `request.auth`.
    decided_with: (Arc<ActiveRules>, Option<Arc<Value>>),
    recheck: tokio::time::Interval,
}

impl Engine {
    /// Starts a listener: decided and read now (an error if the rules do not allow the read);
    /// the first event is [`Listener::snapshot`].
    pub async fn listen(
        self: &Arc<Self>,
        ctx: RequestContext,
        target: ListenTarget,
    ) -> Result<Listener, EngineError> {
        if let ListenTarget::Query(query) = &target {
            crate::query::validate(query)?;
        }
        let feed = self.store.subscribe();
        let decided_with = self.decision_inputs(&ctx).await?;
        let shown = read(self, &ctx, &target).await?;
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.reset();
        Ok(Listener {
            engine: self.clone(),
            ctx,
            target,
            feed,
            shown,
            decided_with,
            recheck,
        })
    }

    /// The rules in force and the caller's `request.auth` (authenticating again: a revoked
    /// caller is refused here).
    async fn decision_inputs(
        &self,
        ctx: &RequestContext,
    ) -> Result<(Arc<ActiveRules>, Option<Arc<Value>>), EngineError> {
        let who = self.authenticate(ctx).await?;
        let rules = self.rules_for(who.as_ref());
        Ok((rules, who.map(|p| p.rules_value())))
    }
}

impl Listener {
    /// The result when the listener started.
    pub fn snapshot(&self) -> ListenEvent {
        ListenEvent::Snapshot {
            documents: self.shown.clone(),
        }
    }

    /// The next change of the result. An error ends the listener: `permission-denied` when
    /// the rules no longer allow it, `unauthenticated` when the caller's credential no longer
    /// holds, `unavailable` when the store's feed ended.
    pub async fn next(&mut self) -> Result<ListenEvent, EngineError> {
        loop {
            let reread = tokio::select! {
                event = self.feed.next() => match event {
                    Some(FeedEvent::Commit(commit)) => commit
                        .changes
                        .iter()
                        .any(|c| self.watches(&c.path)),
                    Some(FeedEvent::Lagged { .. }) => true,
                    None => {
                        return Err(EngineError::Unavailable {
                            message: "the store's change feed ended".into(),
                            write_index: None,
                        });
                    }
                },
                _ = self.recheck.tick() => {
                    let now = self.engine.decision_inputs(&self.ctx).await?;
                    let changed = !Arc::ptr_eq(&now.0, &self.decided_with.0)
                        || now.1 != self.decided_with.1;
                    self.decided_with = now;
                    changed
                }
            };
            if !reread {
                continue;
            }
            let now = read(&self.engine, &self.ctx, &self.target).await?;
            let changes = diff(&self.shown, &now);
            self.shown = now;
            if !changes.is_empty() {
                return Ok(ListenEvent::Changes { changes });
            }
        }
    }

    fn watches(&self, path: &DocPath) -> bool {
        match &self.target {
            ListenTarget::Document(watched) => watched == path,
            ListenTarget::Query(query) => query.scope.contains(path),
        }
    }
}

/// The result as the rules let the caller read it now.
async fn read(
    engine: &Engine,
    ctx: &RequestContext,
    target: &ListenTarget,
) -> Result<Vec<Document>, EngineError> {
    match target {
        ListenTarget::Document(path) => match engine.get(ctx, path).await {
            Ok(doc) => Ok(vec![doc]),
            Err(EngineError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        },
        ListenTarget::Query(query) => {
            let mut documents = Vec::new();
            let mut paging = QueryPaging {
                page_size: Some(limits::MAX_PAGE_SIZE),
                page_token: None,
            };
            loop {
                let page = engine.query(ctx, query, &paging).await?;
                documents.extend(page.documents);
                if documents.len() > MAX_LISTEN_RESULTS {
                    return Err(EngineError::ResourceExhausted {
                        message: format!(
                            "a listener's query may match at most {MAX_LISTEN_RESULTS} documents; \
                             set a limit"
                        ),
                        write_index: None,
                    });
                }
                match page.next_page_token {
                    Some(token) => paging.page_token = Some(token),
                    None => return Ok(documents),
                }
            }
        }
    }
}

/// The changes that turn `old` into `new` (both in result order): removals first, then the
/// documents of `new` in order — added, or modified (a newer version; it may also move).
fn diff(old: &[Document], new: &[Document]) -> Vec<DocChange> {
    let mut shown: Vec<&Document> = old.iter().collect();
    let mut changes = Vec::new();
    for doc in old {
        if !new.iter().any(|n| n.path == doc.path) {
            let at = shown.iter().position(|d| d.path == doc.path);
            if let Some(at) = at {
                shown.remove(at);
            }
            changes.push(DocChange {
                kind: ChangeKind::Removed,
                document: doc.clone(),
                old_index: at,
                new_index: None,
            });
        }
    }
    for (index, doc) in new.iter().enumerate() {
        let was = shown.iter().position(|d| d.path == doc.path);
        match was {
            Some(at) if shown[at].version == doc.version && at == index => {}
            Some(at) => {
                shown.remove(at);
                shown.insert(index.min(shown.len()), doc);
                changes.push(DocChange {
                    kind: ChangeKind::Modified,
                    document: doc.clone(),
                    old_index: Some(at),
                    new_index: Some(index),
                });
            }
            None => {
                shown.insert(index.min(shown.len()), doc);
                changes.push(DocChange {
                    kind: ChangeKind::Added,
                    document: doc.clone(),
                    old_index: None,
                    new_index: Some(index),
                });
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use claimdb_model::{Map, Timestamp};

    use super::*;

    fn doc(id: &str, version: u64) -> Document {
        Document {
            path: DocPath::parse(&format!("c/{id}")).unwrap(),
            data: Map::new(),
            create_time: Timestamp::from_micros(1).unwrap(),
            update_time: Timestamp::from_micros(1).unwrap(),
            version,
        }
    }

    /// Applies changes as a client would.
    fn apply(old: &[Document], changes: &[DocChange]) -> Vec<Document> {
        let mut list = old.to_vec();
        for c in changes {
            if let Some(at) = c.old_index {
                assert_eq!(list[at].path, c.document.path, "old index of {c:?}");
                list.remove(at);
            }
            if let Some(at) = c.new_index {
                list.insert(at, c.document.clone());
            }
        }
        list
    }

    #[test]
    fn changes_turn_the_old_result_into_the_new_one() {
        let cases: Vec<(Vec<Document>, Vec<Document>)> = vec![
            (vec![], vec![doc("a", 1), doc("b", 1)]),
            (vec![doc("a", 1), doc("b", 1)], vec![]),
            (
                vec![doc("a", 1), doc("b", 1)],
                vec![doc("a", 1), doc("b", 2)],
            ),
            (
                vec![doc("a", 1), doc("b", 1), doc("c", 1)],
                vec![doc("c", 2), doc("a", 1)],
            ),
            (
                vec![doc("a", 1), doc("b", 1), doc("c", 1), doc("d", 1)],
                vec![doc("e", 1), doc("d", 1), doc("b", 3), doc("f", 1)],
            ),
        ];
        for (old, new) in cases {
            let changes = diff(&old, &new);
            assert_eq!(apply(&old, &changes), new, "{changes:?}");
        }
        // Nothing changed: no change.
        assert!(diff(&[doc("a", 1)], &[doc("a", 1)]).is_empty());
        let kinds: Vec<ChangeKind> = diff(&[doc("a", 1), doc("b", 1)], &[doc("b", 2), doc("c", 1)])
            .iter()
            .map(|c| c.kind)
            .collect();
        assert_eq!(
            kinds,
            [ChangeKind::Removed, ChangeKind::Modified, ChangeKind::Added]
        );
    }
}
