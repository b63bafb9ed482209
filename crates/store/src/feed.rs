//! The change feed: every commit a store acknowledges is announced once, in commit order, with
//! what it changed — the basis of realtime listeners. A backend holds a [`Feed`] and announces
//! each commit after it is durable and before its caller is answered (a failed commit is never
//! announced); callers get a [`Subscription`] from [`crate::Documents::subscribe`].
//!
//! Memory is bounded: the feed is one ring of [`FEED_CAPACITY`] commits shared by every
//! subscriber (a `tokio::sync::broadcast` channel), so a subscriber costs a cursor, not a copy.
//! A subscriber that falls more than the ring behind loses the oldest commits and is told so
//! ([`FeedEvent::Lagged`]); it must then reread what it watches (a reset), and goes on with the
//! commits still in the ring. This module does not know where commits come from: the SQLite
//! backend announces its own; the PostgreSQL backend announces what its feed reader reads back
//! from the database, which includes the other nodes' commits.

use std::sync::Arc;

use claimdb_model::{DocPath, Timestamp};
use tokio::sync::broadcast;

use crate::{CommitResult, Document};

/// Commits the feed keeps for subscribers that have not read them yet.
pub const FEED_CAPACITY: usize = 1024;

/// What one commit did to one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub path: DocPath,
    /// Whether the document existed before the commit.
    pub existed: bool,
    /// The document after the commit (its version is the commit's); `None`: it is absent.
    pub document: Option<Document>,
}

/// One commit as the feed announces it.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// The commit's version: strictly increasing in commit order (with gaps: a restore moves
    /// the counter without a commit, and on PostgreSQL commits can be trimmed off the feed).
    pub version: u64,
    pub commit_time: Timestamp,
    /// One entry per document the commit changed, in the order the commit first wrote each. A
    /// document written several times appears once, with its state before and after the whole
    /// commit; a delete of a missing document changes nothing and is left out.
    pub changes: Vec<Change>,
}

impl Changes {
    /// What a commit changed, from its result.
    pub fn of(result: &CommitResult) -> Changes {
        let mut changes: Vec<Change> = Vec::with_capacity(result.results.len());
        for r in &result.results {
            match changes.iter_mut().find(|c| c.path == r.path) {
                Some(change) => change.document = r.document.clone(),
                None => changes.push(Change {
                    path: r.path.clone(),
                    existed: r.existed,
                    document: r.document.clone(),
                }),
            }
        }
        changes.retain(|c| c.existed || c.document.is_some());
        Changes {
            version: result.version,
            commit_time: result.commit_time,
            changes,
        }
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// The next commit, in commit order.
    Commit(Arc<Changes>),
    /// The subscriber fell behind and `missed` commits were dropped for it: what it derived
    /// from the feed may be stale, so it must start over from a fresh read. The next event is
    /// the oldest commit still kept.
    Lagged { missed: u64 },
}

/// A subscriber's end of the feed.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Changes>>,
}

impl Subscription {
    /// The next event; `None` once the store is gone.
    pub async fn next(&mut self) -> Option<FeedEvent> {
        match self.rx.recv().await {
            Ok(changes) => Some(FeedEvent::Commit(changes)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(FeedEvent::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is waiting, without waiting.
    pub fn try_next(&mut self) -> Option<FeedEvent> {
        match self.rx.try_recv() {
            Ok(changes) => Some(FeedEvent::Commit(changes)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(FeedEvent::Lagged { missed })
            }
            Err(_) => None,
        }
    }
}

/// A backend's sending end of the feed.
#[derive(Debug, Clone)]
pub struct Feed {
    tx: broadcast::Sender<Arc<Changes>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed::new()
    }
}

impl Feed {
    /// A feed keeping [`FEED_CAPACITY`] commits.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        Feed { tx }
    }

    /// A new subscriber, which sees the commits announced from now on.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
        }
    }

    /// Announces one commit to every subscriber (nobody listening is fine).
    pub fn announce(&self, changes: Changes) {
        if self.is_watched() {
            let _ = self.tx.send(Arc::new(changes));
        }
    }

    /// Whether anyone subscribes: with nobody, a backend need not build announcements.
    pub fn is_watched(&self) -> bool {
        self.tx.receiver_count() > 0
    }
}

#[cfg(test)]
mod tests {
    use claimdb_model::Map;

    use super::*;
    use crate::WriteResult;

    fn doc(path: &str, version: u64) -> Document {
        let t = Timestamp::from_micros(1).unwrap();
        Document {
            path: DocPath::parse(path).unwrap(),
            data: Map::new(),
            create_time: t,
            update_time: t,
            version,
        }
    }

    fn result(path: &str, existed: bool, document: Option<Document>) -> WriteResult {
        WriteResult {
            path: DocPath::parse(path).unwrap(),
            document,
            existed,
        }
    }

    #[test]
    fn a_commit_announces_each_document_once_with_its_net_change() {
        let commit = CommitResult {
            commit_time: Timestamp::from_micros(5).unwrap(),
            version: 7,
            results: vec![
                result("c/a", false, Some(doc("c/a", 7))),
                result("c/gone", false, None),
                result("c/b", true, None),
                result("c/a", true, Some(doc("c/a", 7))),
                result("c/tmp", false, Some(doc("c/tmp", 7))),
                result("c/tmp", true, None),
            ],
        };
        let changes = Changes::of(&commit);
        assert_eq!(changes.version, 7);
        let seen: Vec<(&str, bool, bool)> = changes
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.existed, c.document.is_some()))
            .collect();
        assert_eq!(seen, [("c/a", false, true), ("c/b", true, false)]);
    }
}
