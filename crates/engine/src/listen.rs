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
//! **Resuming.** Every event a listener returns has a resume token ([`Listener::resume_token`]);
//! a client that reconnects with one ([`Engine::resume`]) gets only the changes from the result
//! it last received to the result now — or, when the token is unknown, too old or not its own,
//! a whole snapshot (a reset). The results behind the tokens are kept on this node in a bounded
//! [`ResumeBook`]: the last [`RESUME_EVENTS`] results of each listener, for [`RESUME_WINDOW`]
//! after it ends, within a budget of [`RESUME_BUDGET`] document references in all (results
//! share their documents, so a listener's kept results cost pointers, not copies). A token
//! resumes only for the caller it was issued to and the same target: the diff would otherwise
//! show another caller's results. A reconnection that reaches another node gets a reset.
//!
//! Not here: the wire protocols (server-sent events in `server`, Firestore's Listen in
//! `claimdb_firestore`).

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

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

/// How many of a listener's latest results a client may resume from (more than a stream's
/// events in flight).
pub const RESUME_EVENTS: usize = 32;

/// How long after a listener ends a client may resume from its results.
pub const RESUME_WINDOW: Duration = Duration::from_secs(300);

/// Document references all kept results may hold together; over it, the oldest go first.
pub const RESUME_BUDGET: usize = 4_000_000;

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

/// A listener's result: shared with the resume book, so keeping it costs pointers.
type Shown = Arc<[Arc<Document>]>;

/// A running listener: call [`Listener::next`] for each event after the snapshot.
pub struct Listener {
    engine: Arc<Engine>,
    ctx: RequestContext,
    target: ListenTarget,
    feed: Subscription,
    shown: Shown,
    /// Where this listener's results are kept for resuming, and the number of its last event.
    resume: (u64, u64),
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
        Ok(self.start(ctx, target).await?.0)
    }

    /// Starts a listener where a client left off: the first event is the changes from the
    /// result behind `token` (a [`Listener::resume_token`] this caller was given for this
    /// target) to the result now — possibly none — or, when the token cannot be used (unknown
    /// on this node, too old, another caller's or target's), a whole [`ListenEvent::Snapshot`].
    /// Decided like [`Engine::listen`].
    pub async fn resume(
        self: &Arc<Self>,
        ctx: RequestContext,
        target: ListenTarget,
        token: &str,
    ) -> Result<(Listener, ListenEvent), EngineError> {
        let (listener, caller) = self.start(ctx, target).await?;
        let before = ResumeToken::parse(token)
            .and_then(|t| self.resume_book.result(t, &caller, &listener.target));
        let event = match before {
            Some(before) => ListenEvent::Changes {
                changes: diff(&before, &listener.shown),
            },
            None => listener.snapshot(),
        };
        Ok((listener, event))
    }

    async fn start(
        self: &Arc<Self>,
        ctx: RequestContext,
        target: ListenTarget,
    ) -> Result<(Listener, Caller), EngineError> {
        if let ListenTarget::Query(query) = &target {
            crate::query::validate(query)?;
        }
        let feed = self.store.subscribe();
        let (decided_with, caller) = self.decision_inputs(&ctx).await?;
        let shown = read(self, &ctx, &target).await?;
        let filter = match &target {
            ListenTarget::Query(query) => PreparedQuery::new(query, &PageRequest::first(1)).ok(),
            ListenTarget::Document(_) => None,
        };
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.reset();
        let stream = self.resume_book.open(
            self.clock.now(),
            caller.clone(),
            target.clone(),
            shown.clone(),
        );
        Ok((
            Listener {
                engine: self.clone(),
                ctx,
                target,
                feed,
                shown,
                resume: (stream, 1),
                decided_with,
                filter,
                stale: false,
                recheck,
            },
            caller,
        ))
    }

    /// The rules in force and the caller's `request.auth` (authenticating again: a revoked
    /// caller is refused here), and who the caller is.
    async fn decision_inputs(
        &self,
        ctx: &RequestContext,
    ) -> Result<((Arc<ActiveRules>, Option<Arc<Value>>), Caller), EngineError> {
        let who = self.authenticate(ctx).await?;
        let rules = self.rules_for(who.as_ref());
        let caller = match &who {
            None => Caller::Anonymous,
            Some(p) if p.owner => Caller::Owner,
            Some(p) => Caller::User {
                provider: p.provider.clone(),
                uid: p.uid.clone(),
            },
        };
        Ok(((rules, who.map(|p| p.rules_value())), caller))
    }
}

impl Listener {
    /// The result when the listener started.
    pub fn snapshot(&self) -> ListenEvent {
        ListenEvent::Snapshot {
            documents: self.shown.iter().map(|d| Document::clone(d)).collect(),
        }
    }

    /// The token a client resumes from after the last event this listener returned
    /// ([`Engine::resume`]); opaque, printable ASCII.
    pub fn resume_token(&self) -> String {
        ResumeToken {
            stream: self.resume.0,
            event: self.resume.1,
        }
        .to_string()
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
                        let (now, _) = self.engine.decision_inputs(&self.ctx).await?;
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
            self.stale = false;
            if !changes.is_empty() {
                self.shown = now;
                self.resume.1 += 1;
                self.engine
                    .resume_book
                    .keep(self.resume.0, self.resume.1, self.shown.clone());
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

impl Drop for Listener {
    fn drop(&mut self) {
        self.engine
            .resume_book
            .close(self.engine.clock.now(), self.resume.0);
    }
}

/// The result as the rules let the caller read it now.
async fn read(
    engine: &Engine,
    ctx: &RequestContext,
    target: &ListenTarget,
) -> Result<Shown, EngineError> {
    match target {
        ListenTarget::Document(path) => match engine.get(ctx, path).await {
            Ok(doc) => Ok(Arc::new([Arc::new(doc)])),
            Err(EngineError::NotFound { .. }) => Ok(Arc::new([])),
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
                documents.extend(page.documents.into_iter().map(Arc::new));
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
                    None => return Ok(documents.into()),
                }
            }
        }
    }
}

/// The changes that turn `old` into `new` (both in result order): removals first, then the
/// documents of `new` in order — added, or modified (a newer version; it may also move).
fn diff<D: Borrow<Document>>(old: &[D], new: &[D]) -> Vec<DocChange> {
    let in_new: HashSet<&DocPath> = new.iter().map(|d| &d.borrow().path).collect();
    let mut changes = Vec::new();
    // The removals, in old order: each one's position is its old one less those removed before.
    let mut shown: Vec<&Document> = Vec::with_capacity(old.len());
    for (i, doc) in old.iter().map(Borrow::borrow).enumerate() {
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
    for (index, doc) in new.iter().map(Borrow::borrow).enumerate() {
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

/// Who a listener serves, as far as resuming goes: a token resumes only for the same caller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Owner,
    User { provider: String, uid: String },
}

/// A listener's result after one of its events: `{stream}.{event}`, both in hexadecimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ResumeToken {
    stream: u64,
    event: u64,
}

impl ResumeToken {
    fn parse(text: &str) -> Option<ResumeToken> {
        let (stream, event) = text.split_once('.')?;
        Some(ResumeToken {
            stream: u64::from_str_radix(stream, 16).ok()?,
            event: u64::from_str_radix(event, 16).ok()?,
        })
    }
}

impl std::fmt::Display for ResumeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}.{:x}", self.stream, self.event)
    }
}

/// The results clients may resume from, on this node (see the module's documentation).
#[derive(Default)]
pub(crate) struct ResumeBook {
    inner: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    streams: HashMap<u64, Kept>,
    /// Ended streams, oldest first, with when they ended.
    ended: VecDeque<(u64, SystemTime)>,
    /// Live and ended streams in the order they opened, to free the budget oldest first.
    opened: VecDeque<u64>,
    /// Document references held by all kept results.
    held: usize,
}

struct Kept {
    caller: Caller,
    target: ListenTarget,
    /// `(event, result)`, oldest first; at most [`RESUME_EVENTS`].
    results: VecDeque<(u64, Shown)>,
}

impl ResumeBook {
    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new listener's stream, holding its first result (event 1).
    fn open(&self, now: SystemTime, caller: Caller, target: ListenTarget, first: Shown) -> u64 {
        let mut book = self.lock();
        book.expire(now);
        let stream = loop {
            let id: u64 = rand::random();
            if !book.streams.contains_key(&id) {
                break id;
            }
        };
        book.held += first.len();
        book.streams.insert(
            stream,
            Kept {
                caller,
                target,
                results: VecDeque::from([(1, first)]),
            },
        );
        book.opened.push_back(stream);
        book.fit();
        stream
    }

    /// Keeps a stream's result after its event `event`.
    fn keep(&self, stream: u64, event: u64, result: Shown) {
        let mut book = self.lock();
        let Book { streams, held, .. } = &mut *book;
        let Some(kept) = streams.get_mut(&stream) else {
            return;
        };
        *held += result.len();
        kept.results.push_back((event, result));
        if kept.results.len() > RESUME_EVENTS
            && let Some((_, old)) = kept.results.pop_front()
        {
            *held -= old.len();
        }
        book.fit();
    }

    /// A stream's listener ended: its results stay for [`RESUME_WINDOW`].
    fn close(&self, now: SystemTime, stream: u64) {
        let mut book = self.lock();
        book.ended.push_back((stream, now));
        book.expire(now);
    }

    /// The result behind a token, if this caller may resume from it for this target.
    fn result(&self, token: ResumeToken, caller: &Caller, target: &ListenTarget) -> Option<Shown> {
        let book = self.lock();
        let kept = book.streams.get(&token.stream)?;
        if kept.caller != *caller || kept.target != *target {
            return None;
        }
        kept.results
            .iter()
            .find(|(event, _)| *event == token.event)
            .map(|(_, result)| result.clone())
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let book = self.lock();
        (book.streams.len(), book.held)
    }
}

impl Book {
    fn forget(&mut self, stream: u64) {
        if let Some(kept) = self.streams.remove(&stream) {
            self.held -= kept.results.iter().map(|(_, r)| r.len()).sum::<usize>();
        }
    }

    /// Forgets the streams that ended more than [`RESUME_WINDOW`] ago.
    fn expire(&mut self, now: SystemTime) {
        while let Some(&(stream, at)) = self.ended.front() {
            if now.duration_since(at).unwrap_or_default() < RESUME_WINDOW {
                break;
            }
            self.ended.pop_front();
            self.forget(stream);
        }
        if self.opened.len() > 2 * self.streams.len() + 64 {
            let streams = &self.streams;
            self.opened.retain(|s| streams.contains_key(s));
        }
    }

    /// Within the budget: the oldest streams' older results go first, then whole streams.
    fn fit(&mut self) {
        while self.held > RESUME_BUDGET {
            let Some(&oldest) = self.opened.front() else {
                return;
            };
            let Some(kept) = self.streams.get_mut(&oldest) else {
                self.opened.pop_front();
                continue;
            };
            if kept.results.len() > 1
                && let Some((_, old)) = kept.results.pop_front()
            {
                self.held -= old.len();
                continue;
            }
            self.opened.pop_front();
            self.forget(oldest);
        }
    }
}

#[cfg(test)]
mod tests;
