//! The listeners' tests: what wakes a listener, cancel safety, resuming, the diff.

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

fn notes_query() -> ListenTarget {
    ListenTarget::Query(Box::new(Query::collection(
        claimdb_model::CollectionPath::parse("notes").unwrap(),
    )))
}

fn owned(owner: &str) -> Map {
    let mut data = Map::new();
    data.insert("owner".into(), Value::String(owner.into()));
    data
}

async fn next_event(listener: &mut Listener) -> ListenEvent {
    tokio::time::timeout(Duration::from_secs(5), listener.next())
        .await
        .expect("an event")
        .unwrap()
}

/// A client that resumes gets only the changes from the result it last received to the
/// result now — from its latest event or from an earlier one it got before losing the
/// rest — and they turn what it had into what there is.
#[tokio::test]
async fn resuming_gives_only_what_was_missed() {
    let (engine, store, _dir) = open_engine();
    set(&*store, "notes/a", owned("alice")).await;
    set(&*store, "notes/b", owned("bob")).await;
    let mut listener = engine
        .listen(RequestContext::new("r"), notes_query())
        .await
        .unwrap();
    let ListenEvent::Snapshot { documents: first } = listener.snapshot() else {
        unreachable!()
    };
    let at_first = listener.resume_token();
    set(&*store, "notes/c", owned("carol")).await;
    let ListenEvent::Changes { changes } = next_event(&mut listener).await else {
        unreachable!()
    };
    let second = apply(&first, &changes);
    let at_second = listener.resume_token();
    assert_ne!(at_first, at_second);
    drop(listener);
    // While away: b changes, a goes, d comes.
    set(&*store, "notes/b", owned("bobby")).await;
    store
        .commit(
            vec![Write::new(
                DocPath::parse("notes/a").unwrap(),
                WriteOp::Delete,
            )]
            .into(),
        )
        .await
        .unwrap();
    set(&*store, "notes/d", owned("dan")).await;
    let now: Vec<String> = ["b", "c", "d"]
        .iter()
        .map(|d| format!("notes/{d}"))
        .collect();
    let names = |docs: &[Document]| docs.iter().map(|d| d.path.to_string()).collect::<Vec<_>>();

    let (resumed, event) = engine
        .resume(RequestContext::new("r"), notes_query(), &at_second)
        .await
        .unwrap();
    let ListenEvent::Changes { changes } = event else {
        panic!("resumed: {event:?}")
    };
    let kinds: Vec<(ChangeKind, String)> = changes
        .iter()
        .map(|c| (c.kind, c.document.path.to_string()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ChangeKind::Removed, "notes/a".into()),
            (ChangeKind::Modified, "notes/b".into()),
            (ChangeKind::Added, "notes/d".into()),
        ]
    );
    assert_eq!(names(&apply(&second, &changes)), now);
    // From the earlier event too (its later events lost on the way).
    let (_, event) = engine
        .resume(RequestContext::new("r"), notes_query(), &at_first)
        .await
        .unwrap();
    let ListenEvent::Changes { changes } = event else {
        panic!("resumed: {event:?}")
    };
    assert_eq!(names(&apply(&first, &changes)), now);
    // Nothing missed: no change, and a token to go on from.
    let (_, event) = engine
        .resume(
            RequestContext::new("r"),
            notes_query(),
            &resumed.resume_token(),
        )
        .await
        .unwrap();
    assert_eq!(event, ListenEvent::Changes { changes: vec![] });
}

/// A token that cannot be used — malformed, unknown, for another target or another
/// caller — starts over with a whole snapshot, never a diff against someone else's result.
#[tokio::test]
async fn a_token_not_ones_own_starts_over() {
    let rules = claimdb_rules::Ruleset::compile(
        "rules_version = '2'; service cloud.firestore { match /databases/{d}/documents { \
         match /{doc=**} { allow read, write: if true; } } }",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(claimdb_store::SqliteStore::open(dir.path()).unwrap());
    let mut options = EngineOptions::new(rules, "test");
    options.emulator = true;
    let engine = Arc::new(Engine::new(store.clone(), options));
    set(&*store, "notes/a", owned("alice")).await;
    let owner =
        || RequestContext::new("r").with_credential(crate::Credential::Bearer("owner".into()));
    let listener = engine.listen(owner(), notes_query()).await.unwrap();
    let token = listener.resume_token();
    let is_snapshot =
        |e: &ListenEvent| matches!(e, ListenEvent::Snapshot { documents } if documents.len() == 1);
    for bad in ["", "x", "1.2.3", "ffffffffffffffff.1", &format!("{token}0")] {
        let (_, event) = engine.resume(owner(), notes_query(), bad).await.unwrap();
        assert!(is_snapshot(&event), "{bad:?}: {event:?}");
    }
    let other_target = ListenTarget::Document(DocPath::parse("notes/a").unwrap());
    let (_, event) = engine.resume(owner(), other_target, &token).await.unwrap();
    assert!(is_snapshot(&event), "another target: {event:?}");
    let (_, event) = engine
        .resume(RequestContext::new("r"), notes_query(), &token)
        .await
        .unwrap();
    assert!(is_snapshot(&event), "another caller: {event:?}");
    let (_, event) = engine.resume(owner(), notes_query(), &token).await.unwrap();
    assert_eq!(event, ListenEvent::Changes { changes: vec![] }, "its own");
}

/// An ended listener's results are kept for the resume window, then forgotten; the book
/// holds at most the last few results of each listener.
#[tokio::test]
async fn kept_results_are_bounded_in_number_and_time() {
    let rules = claimdb_rules::Ruleset::compile(
        "rules_version = '2'; service cloud.firestore { match /databases/{d}/documents { \
         match /{doc=**} { allow read, write: if true; } } }",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(claimdb_store::SqliteStore::open(dir.path()).unwrap());
    let clock = Arc::new(claimdb_identity::io::ManualClock::new(SystemTime::now()));
    let mut options = EngineOptions::new(rules, "test");
    options.clock = crate::Clock::new(clock.clone());
    let engine = Arc::new(Engine::new(store.clone(), options));
    set(&*store, "notes/a", owned("alice")).await;
    let mut listener = engine
        .listen(RequestContext::new("r"), notes_query())
        .await
        .unwrap();
    let first = listener.resume_token();
    for i in 0..RESUME_EVENTS + 3 {
        set(&*store, "notes/a", owned(&format!("v{i}"))).await;
        next_event(&mut listener).await;
    }
    assert_eq!(engine.resume_book.held(), (1, RESUME_EVENTS));
    let last = listener.resume_token();
    drop(listener);
    let (_, event) = engine
        .resume(RequestContext::new("r"), notes_query(), &first)
        .await
        .unwrap();
    assert!(
        matches!(event, ListenEvent::Snapshot { .. }),
        "too old: {event:?}"
    );
    let (resumed, event) = engine
        .resume(RequestContext::new("r"), notes_query(), &last)
        .await
        .unwrap();
    assert_eq!(event, ListenEvent::Changes { changes: vec![] });
    drop(resumed);
    clock.advance(RESUME_WINDOW + Duration::from_secs(1));
    let (_, event) = engine
        .resume(RequestContext::new("r"), notes_query(), &last)
        .await
        .unwrap();
    assert!(
        matches!(event, ListenEvent::Snapshot { .. }),
        "expired: {event:?}"
    );
    assert_eq!(engine.resume_book.held().0, 1, "only the live listener's");
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
