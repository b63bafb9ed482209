//! Realtime listeners: a document or a query watched through the store's change feed, decided
//! by the rules like a get or a list — when it starts, and again whenever the state it shows
//! changes and whenever the caller's claims or the rules change (a listener no longer allowed
//! ends with `permission-denied`, a revoked caller's with `unauthenticated`).
//!
//! A listener subscribes to the feed first, then reads (so no commit falls between the read and
//! the feed). It keeps the result it last showed; a commit that can change it (the document; for
//! a query, a document in the result, or one that now passes the query's filters — tested in
//! memory with the store's own evaluator) makes it read again through the engine's own
//! `get` / `query` — so every re-read is a rules decision, audited like any read — and it
//! reports the difference: added, modified and removed documents with their old and new
//! positions. A listener that falls behind the feed (`Lagged`) reads again the same way: what
//! it reports is then the net change, so its memory stays bounded by its result, never by the
//! commits it missed. Every [`RECHECK`] it authenticates the caller again (revocation) and, when
//! the rules in force or the caller's `request.auth` changed, reads again.
//!
//! Not here: the wire protocols (server-sent events in `server`), resuming where a client left
//! off (a reconnecting client gets a fresh snapshot).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use claimdb_model::{DocPath, Value};
use claimdb_store::feed::{FeedEvent, Subscription};
use claimdb_store::query::{PageRequest, PreparedQuery, limits};
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
    /// A query's filters, compiled (`None` for a document, or where they cannot be: then
    /// every change in the scope makes it read again).
    filter: Option<PreparedQuery>,
    /// Something happened that may change the result or its decision, and it was not read
    /// again yet.
    stale: bool,
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
        let filter = match &target {
            ListenTarget::Query(query) => PreparedQuery::new(query, &PageRequest::first(1)).ok(),
            ListenTarget::Document(_) => None,
        };
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
            filter,
            stale: false,
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
    /// holds, `unavailable` when the store's feed ended. Cancel-safe: a reason to read again
    /// found before a cancelled call is kept (`stale`), so the next call reads first and no
    /// change — nor a changed decision — is lost.
    pub async fn next(&mut self) -> Result<ListenEvent, EngineError> {
        loop {
            if !self.stale {
                tokio::select! {
                    event = self.feed.next() => match event {
                        Some(FeedEvent::Commit(commit)) => {
                            if commit.changes.iter().any(|c| self.concerns(c)) {
                                self.stale = true;
                            }
                        }
                        Some(FeedEvent::Lagged { .. }) => self.stale = true,
                        None => {
                            return Err(EngineError::Unavailable {
                                message: "the store's change feed ended".into(),
                                write_index: None,
                            });
                        }
                    },
                    _ = self.recheck.tick() => {
                        let now = self.engine.decision_inputs(&self.ctx).await?;
                        if !Arc::ptr_eq(&now.0, &self.decided_with.0)
                            || now.1 != self.decided_with.1
                        {
                            self.stale = true;
                        }
                        self.decided_with = now;
                    }
                }
                if !self.stale {
                    continue;
                }
            }
            let now = read(&self.engine, &self.ctx, &self.target).await?;
            let changes = diff(&self.shown, &now);
            self.shown = now;
            self.stale = false;
            if !changes.is_empty() {
                return Ok(ListenEvent::Changes { changes });
            }
        }
    }

    /// Whether a commit's change to a document can change the result: the watched document;
    /// for a query, a document the result holds (it may leave or change) or one that now
    /// passes the query's filters (it may enter). Any other change in the scope cannot, and
    /// costs no re-read.
    fn concerns(&self, change: &claimdb_store::Change) -> bool {
        match &self.target {
            ListenTarget::Document(watched) => *watched == change.path,
            ListenTarget::Query(query) => {
                if !query.scope.contains(&change.path) {
                    return false;
                }
                if self.shown.iter().any(|d| d.path == change.path) {
                    return true;
                }
                match (&self.filter, &change.document) {
                    (Some(filter), Some(doc)) => filter.matches(doc),
                    (Some(_), None) => false,
                    (None, _) => true,
                }
            }
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
    let in_new: HashSet<&DocPath> = new.iter().map(|d| &d.path).collect();
    let mut changes = Vec::new();
    // The removals, in old order: each one's position is its old one less those removed before.
    let mut shown: Vec<&Document> = Vec::with_capacity(old.len());
    for (i, doc) in old.iter().enumerate() {
        if in_new.contains(&doc.path) {
            shown.push(doc);
        } else {
            changes.push(DocChange {
                kind: ChangeKind::Removed,
                document: doc.clone(),
                old_index: Some(i - changes.len()),
                new_index: None,
            });
        }
    }
    // Then `new` in order: `shown[..index]` is always `new[..index]`, so a document still in
    // place is found at `index` without a search; only added, changed or moved ones cost one.
    for (index, doc) in new.iter().enumerate() {
        let was = if shown.get(index).is_some_and(|d| d.path == doc.path) {
            Some(index)
        } else {
            shown.iter().position(|d| d.path == doc.path)
        };
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
    use claimdb_store::{Filter, Op, Store, Write, WriteOp};

    use super::*;
    use crate::engine::EngineOptions;

    /// An engine whose rules allow everything, over a fresh store (kept while the returned
    /// directory lives).
    fn open_engine() -> (Arc<Engine>, Arc<dyn Store>, tempfile::TempDir) {
        let rules = claimdb_rules::Ruleset::compile(
            "rules_version = '2'; service cloud.firestore { match /databases/{d}/documents { \
             match /{doc=**} { allow read, write: if true; } } }",
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(claimdb_store::SqliteStore::open(dir.path()).unwrap());
        let engine = Arc::new(Engine::new(
            store.clone(),
            EngineOptions::new(rules, "test"),
        ));
        (engine, store, dir)
    }

    /// Sets the document at `path` through the store (as another node's write would arrive).
    async fn set(store: &dyn Store, path: &str, data: Map) {
        let write = Write::new(
            DocPath::parse(path).unwrap(),
            WriteOp::Set {
                data,
                transforms: vec![],
            },
        );
        store.commit(vec![write].into()).await.unwrap();
    }

    fn change(id: &str, owner: &str) -> claimdb_store::Change {
        let mut data = Map::new();
        data.insert("owner".into(), Value::String(owner.into()));
        let path = DocPath::parse(&format!("notes/{id}")).unwrap();
        claimdb_store::Change {
            path: path.clone(),
            existed: false,
            document: Some(Document {
                path,
                data,
                ..doc(id, 1)
            }),
        }
    }

    /// A query listener reads again only for changes that can change its result: documents
    /// it shows, and documents that now pass its filters — not every change in its scope.
    #[tokio::test]
    async fn a_query_listener_is_concerned_only_by_changes_that_can_reach_its_result() {
        let (engine, store, _dir) = open_engine();
        let mut data = Map::new();
        data.insert("owner".into(), Value::String("alice".into()));
        set(&*store, "notes/a1", data).await;
        let mut query = Query::collection(claimdb_model::CollectionPath::parse("notes").unwrap());
        query.filters.push(Filter {
            field: claimdb_model::FieldPath::parse("owner").unwrap(),
            op: Op::Eq,
            value: Value::String("alice".into()),
        });
        let listener = engine
            .listen(
                RequestContext::new("r"),
                ListenTarget::Query(Box::new(query)),
            )
            .await
            .unwrap();
        assert!(listener.concerns(&change("a2", "alice")), "may enter");
        assert!(listener.concerns(&change("a1", "bob")), "shown: may leave");
        assert!(!listener.concerns(&change("b1", "bob")), "cannot enter");
        let mut elsewhere = change("x", "alice");
        elsewhere.path = DocPath::parse("other/x").unwrap();
        if let Some(d) = &mut elsewhere.document {
            d.path = elsewhere.path.clone();
        }
        assert!(!listener.concerns(&elsewhere), "out of scope");
        let deleted = claimdb_store::Change {
            document: None,
            ..change("b2", "bob")
        };
        assert!(!listener.concerns(&deleted), "a deleted document not shown");
    }

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

    /// A call of `next` cancelled after it took a commit from the feed (the server's loop
    /// drops nothing, but a caller may) leaves the listener stale: the next call reads again
    /// at once, so the change is not lost.
    #[tokio::test]
    async fn a_cancelled_next_loses_no_change() {
        let (engine, store, _dir) = open_engine();
        let path = DocPath::parse("notes/a").unwrap();
        let mut listener = engine
            .listen(RequestContext::new("r"), ListenTarget::Document(path))
            .await
            .unwrap();
        assert_eq!(
            listener.snapshot(),
            ListenEvent::Snapshot { documents: vec![] }
        );
        set(&*store, "notes/a", Map::new()).await;
        // Let `next` take the commit, then cancel it before it can read.
        let taken = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if listener.feed.try_next().is_some() {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(taken.is_ok(), "the commit reached the feed");
        listener.stale = true;
        let event = tokio::time::timeout(Duration::from_secs(5), listener.next())
            .await
            .expect("the change is reported at once")
            .unwrap();
        assert!(
            matches!(&event, ListenEvent::Changes { changes } if changes[0].kind == ChangeKind::Added),
            "{event:?}"
        );
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
        // Many results: removals, additions, changes and moves mixed (a fixed pseudo-random
        // sequence), each applied in order gives exactly the new result.
        let mut seed = 0x9e37_79b9_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut old = Vec::new();
            for i in 0..next(40) {
                if next(4) != 0 {
                    old.push(doc(&format!("d{i:02}"), 1));
                }
            }
            let mut new = Vec::new();
            for d in &old {
                if next(5) != 0 {
                    let version = if next(3) == 0 { 2 } else { 1 };
                    new.push(Document {
                        version,
                        ..d.clone()
                    });
                }
            }
            for i in 0..next(5) {
                let at = usize::try_from(next(new.len() as u64 + 1)).unwrap();
                new.insert(at, doc(&format!("n{i}"), 1));
            }
            if next(4) == 0 && new.len() > 1 {
                let moved = new.remove(0);
                new.push(Document {
                    version: 3,
                    ..moved
                });
            }
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
