//! Group commit: commits queued together share one PostgreSQL transaction, yet each keeps the
//! semantics of a lone commit — all or nothing, its own checks against the commits before it,
//! its own strictly increasing version and commit time, its own error — including when
//! PostgreSQL refuses one commit's changes.
//!
//! To queue commits deterministically, the tests hold the counter row from a connection of their
//! own: the committer's first group waits for it, and every commit sent meanwhile queues behind;
//! releasing the row lets the first group through and the queued ones form the next group.

use claimdb_store::Documents;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use claimdb_model::{DocPath, Map, Value};
use claimdb_store::{CommitResult, Precondition, ReadCheck, Store, StoreError, Write, WriteOp};
use claimdb_store_postgres::{PostgresStore, quote_ident};

use crate::support;

type Pending = Pin<Box<dyn Future<Output = Result<CommitResult, StoreError>> + Send>>;

fn path(p: &str) -> DocPath {
    DocPath::parse(p).unwrap()
}

fn set(p: &str, n: i64) -> Write {
    let mut data = Map::new();
    data.insert("n".into(), Value::Int(n));
    Write::new(
        path(p),
        WriteOp::Set {
            data,
            transforms: vec![],
        },
    )
}

fn set_data(p: &str, data: Map) -> Write {
    Write::new(
        path(p),
        WriteOp::Set {
            data,
            transforms: vec![],
        },
    )
}

/// Starts a commit and polls it once, so it is queued at the committer before this returns
/// (unconstrained by tokio's cooperative budget, which could otherwise make that one poll return
/// before sending).
fn queue(
    store: &std::sync::Arc<PostgresStore>,
    checks: Vec<ReadCheck>,
    writes: Vec<Write>,
) -> Pending {
    let store = store.clone();
    let mut fut: Pending = Box::pin(tokio::task::unconstrained(async move {
        store
            .commit(claimdb_store::Commit::new(writes).with_checks(checks))
            .await
    }));
    let polled = futures_poll_once(&mut fut);
    assert!(
        polled.is_none(),
        "the commit finished while the counter row was held"
    );
    fut
}

fn futures_poll_once(fut: &mut Pending) -> Option<Result<CommitResult, StoreError>> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(r) => Some(r),
        Poll::Pending => None,
    }
}

/// A connection of the test's own holding the counter row until it rolls back.
struct RowHolder {
    client: tokio_postgres::Client,
    driver: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    schema: String,
}

impl RowHolder {
    async fn take(url: &str, schema: &str) -> RowHolder {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "BEGIN; SELECT * FROM {}.meta FOR UPDATE",
                quote_ident(schema)
            ))
            .await
            .unwrap();
        RowHolder {
            client,
            driver,
            schema: schema.to_owned(),
        }
    }

    /// Waits until a claimdb connection is blocked on the counter row.
    async fn wait_for_a_waiter(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // This connection is inside its transaction, where statistics views would show the
            // snapshot taken at their first read.
            self.client
                .batch_execute("SELECT pg_stat_clear_snapshot()")
                .await
                .unwrap();
            let row = self
                .client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = 'claimdb' AND wait_event_type = 'Lock'
                       AND query LIKE '%' || $1 || '%'",
                    &[&quote_ident(&self.schema)],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) > 0 {
                return;
            }
            if Instant::now() > deadline {
                let rows = self
                    .client
                    .query(
                        "SELECT coalesce(wait_event_type, ''), coalesce(wait_event, ''), state, query
                         FROM pg_stat_activity WHERE application_name = 'claimdb'",
                        &[],
                    )
                    .await
                    .unwrap();
                let seen: Vec<(String, String, String, String)> = rows
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect();
                panic!("no commit ever waited for the counter row: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn release(self) -> tokio_postgres::Client {
        self.client.batch_execute("ROLLBACK").await.unwrap();
        let _ = &self.driver;
        self.client
    }
}

/// The PostgreSQL transaction ids that last wrote each document (`xmin`): equal ids mean one
/// transaction.
async fn writers(client: &tokio_postgres::Client, schema: &str, paths: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        let row = client
            .query_one(
                &format!(
                    "SELECT xmin::text FROM {}.docs WHERE path = $1",
                    quote_ident(schema)
                ),
                &[p],
            )
            .await
            .unwrap();
        out.push(row.get(0));
    }
    out
}

/// Commits queued together are one transaction, and each still behaves as if alone: a later
/// commit sees an earlier one's writes (a create-only write and a read check fail because of
/// it), a failing batch changes nothing and names its write, and versions and commit times
/// strictly increase in queue order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_commits_share_one_transaction_and_keep_their_own_semantics() {
    let Some((store, guard)) = support::store(support::options()).await else {
        return;
    };
    let store = std::sync::Arc::new(store);
    let holder = RowHolder::take(&guard.url, &guard.schema).await;
    let mut first = queue(&store, vec![], vec![set("g/first", 0)]);
    holder.wait_for_a_waiter().await;
    let queued = vec![
        queue(&store, vec![], vec![set("g/b", 1)]),
        queue(
            &store,
            vec![],
            vec![set("g/c", 2).with_precondition(Precondition::Missing)],
        ),
        // Same path, create-only: the commit before it in the group created it.
        queue(
            &store,
            vec![],
            vec![set("g/c", 3).with_precondition(Precondition::Missing)],
        ),
        // Read check "g/b is absent": the first commit of the group wrote it.
        queue(
            &store,
            vec![ReadCheck {
                path: path("g/b"),
                version: None,
            }],
            vec![set("g/e", 4)],
        ),
        // A batch whose second write fails: nothing of it may appear.
        queue(
            &store,
            vec![],
            vec![
                set("g/f", 5),
                set("g/missing", 6).with_precondition(Precondition::Exists),
            ],
        ),
        queue(&store, vec![], vec![set("g/g", 7)]),
    ];
    let client = holder.release().await;
    let first = (&mut first).await.unwrap();
    let mut results = Vec::new();
    for fut in queued {
        results.push(fut.await);
    }
    let ok: Vec<&CommitResult> = [0, 1, 5]
        .iter()
        .map(|&i| results[i].as_ref().unwrap())
        .collect();
    assert!(
        matches!(results[2], Err(StoreError::FailedPrecondition(_))),
        "{:?}",
        results[2]
    );
    assert!(
        matches!(results[3], Err(StoreError::Aborted(_))),
        "{:?}",
        results[3]
    );
    let err = results[4].as_ref().unwrap_err();
    assert_eq!(err.write_index(), Some(1), "{err:?}");
    assert!(store.get(&path("g/f")).await.unwrap().is_none());
    assert!(store.get(&path("g/e")).await.unwrap().is_none());
    assert_eq!(
        store
            .get(&path("g/c"))
            .await
            .unwrap()
            .unwrap()
            .data
            .get("n"),
        Some(&Value::Int(2))
    );
    // Strictly increasing, in queue order, after the first group's.
    let mut last = (first.version, first.commit_time);
    for r in &ok {
        assert!(r.version > last.0, "{} after {}", r.version, last.0);
        assert!(r.commit_time > last.1);
        last = (r.version, r.commit_time);
    }
    for (r, p) in ok.iter().zip(["g/b", "g/c", "g/g"]) {
        let doc = store.get(&path(p)).await.unwrap().unwrap();
        assert_eq!((doc.version, doc.update_time), (r.version, r.commit_time));
    }
    // One transaction for the queued commits (the first one's group takes them in too, as they
    // were queued when it got the row).
    let x = writers(&client, &guard.schema, &["g/b", "g/c", "g/g"]).await;
    assert!(x.iter().all(|t| *t == x[0]), "{x:?}");
    // The counter row holds the group's last stamp: the next commit follows it.
    let next = store.commit(vec![set("g/next", 8)].into()).await.unwrap();
    assert!(next.version > last.0 && next.commit_time > last.1);
}

/// A string no compression can shrink, so PostgreSQL's index row limit applies to its length.
fn noise(len: usize, seed: u64) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

/// A document whose index entry is over PostgreSQL's B-tree row limit (a long nested field path
/// and a long value): SQLite stores it, PostgreSQL refuses it.
fn unindexable() -> Map {
    let mut inner = Map::new();
    inner.insert(noise(1_400, 1), Value::String(noise(1_500, 2)));
    let mut data = Map::new();
    data.insert(noise(1_400, 3), Value::Map(inner));
    data
}

/// PostgreSQL refusing one commit's changes in a group fails that commit alone, with its own
/// error (`InvalidArgument`); the others in the group succeed, in
/// order, and those away from it still share a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_postgres_refuses_fails_alone_in_its_group() {
    let Some((store, guard)) = support::store(support::options()).await else {
        return;
    };
    let store = std::sync::Arc::new(store);
    // Alone, it is refused as invalid.
    let err = store
        .commit(vec![set_data("h/alone", unindexable())].into())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument(_)), "{err:?}");

    let holder = RowHolder::take(&guard.url, &guard.schema).await;
    let mut first = queue(&store, vec![], vec![set("h/first", 0)]);
    holder.wait_for_a_waiter().await;
    let queued = vec![
        queue(&store, vec![], vec![set("h/a", 1)]),
        queue(
            &store,
            vec![],
            vec![set("h/b", 2), set_data("h/bad", unindexable())],
        ),
        queue(&store, vec![], vec![set("h/c", 3)]),
        queue(&store, vec![], vec![set("h/d", 4)]),
        queue(&store, vec![], vec![set("h/e", 5)]),
        queue(&store, vec![], vec![set("h/f", 6)]),
    ];
    let client = holder.release().await;
    (&mut first).await.unwrap();
    let mut results = Vec::new();
    for fut in queued {
        results.push(fut.await);
    }
    let err = results[1].as_ref().unwrap_err();
    assert!(
        matches!(err.root(), StoreError::InvalidArgument(_)),
        "{err:?}"
    );
    assert!(store.get(&path("h/b")).await.unwrap().is_none());
    assert!(store.get(&path("h/bad")).await.unwrap().is_none());
    let mut last: Option<&CommitResult> = None;
    for (i, p) in [(0, "h/a"), (2, "h/c"), (3, "h/d"), (4, "h/e"), (5, "h/f")] {
        let r = results[i].as_ref().unwrap_or_else(|e| panic!("{p}: {e:?}"));
        assert!(store.get(&path(p)).await.unwrap().is_some(), "{p}");
        // Still strictly increasing in queue order.
        if let Some(before) = last {
            assert!(r.version > before.version && r.commit_time > before.commit_time);
        }
        last = Some(r);
    }
    // The refused commit was found by halving: the commits of the half without it still went
    // through together, in one transaction.
    let x = writers(&client, &guard.schema, &["h/d", "h/e", "h/f"]).await;
    assert!(x.iter().all(|t| *t == x[0]), "{x:?}");
}

/// `close` finishes the commits queued before it (they are acknowledged and there), and refuses
/// later ones with `Unavailable`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_finishes_queued_commits_first() {
    let Some((store, guard)) = support::store(support::options()).await else {
        return;
    };
    let store = std::sync::Arc::new(store);
    let holder = RowHolder::take(&guard.url, &guard.schema).await;
    let first = queue(&store, vec![], vec![set("k/first", 0)]);
    holder.wait_for_a_waiter().await;
    let second = queue(&store, vec![], vec![set("k/second", 1)]);
    let closing = tokio::spawn({
        let store = store.clone();
        async move { store.close().await }
    });
    // Once the close has begun (reads are refused at once), commits are refused too, while the
    // close itself waits for the queued commits, which wait for the row.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(
        store.get(&path("k/first")).await,
        Err(StoreError::Unavailable(_))
    ) {
        assert!(Instant::now() < deadline, "the store never closed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let late = store.commit(vec![set("k/late", 2)].into()).await;
    assert!(matches!(late, Err(StoreError::Unavailable(_))), "{late:?}");
    assert!(!closing.is_finished());
    holder.release().await;
    first.await.unwrap();
    second.await.unwrap();
    closing.await.unwrap().unwrap();
    let check = PostgresStore::connect(
        &guard.url,
        claimdb_store_postgres::PgOptions {
            schema: Some(guard.schema.clone()),
            ..support::options()
        },
    )
    .await
    .unwrap();
    assert!(check.get(&path("k/first")).await.unwrap().is_some());
    assert!(check.get(&path("k/second")).await.unwrap().is_some());
    assert!(check.get(&path("k/late")).await.unwrap().is_none());
}

/// Versions made and replaced inside one group never reach `docs`, yet each is kept in the
/// history (encoded by the group, where the version it replaced first is copied from `docs`),
/// and a read at each commit's time sees that commit's version; so does a delete and re-create
/// within the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_replaced_within_a_group_are_each_kept() {
    let Some((store, guard)) = support::store(support::options()).await else {
        return;
    };
    let store = std::sync::Arc::new(store);
    let before = store.commit(vec![set("h/x", 0)].into()).await.unwrap();
    let holder = RowHolder::take(&guard.url, &guard.schema).await;
    let mut first = queue(&store, vec![], vec![set("h/first", 0)]);
    holder.wait_for_a_waiter().await;
    let queued = vec![
        queue(&store, vec![], vec![set("h/x", 1)]),
        queue(&store, vec![], vec![set("h/x", 2)]),
        queue(
            &store,
            vec![],
            vec![Write::new(path("h/x"), WriteOp::Delete)],
        ),
        queue(&store, vec![], vec![set("h/x", 4)]),
    ];
    let client = holder.release().await;
    (&mut first).await.unwrap();
    let mut results = Vec::new();
    for fut in queued {
        results.push(fut.await.unwrap());
    }
    let ids = writers(&client, &guard.schema, &["h/x", "h/first"]).await;
    assert_eq!(ids[0], ids[1], "one group");
    let n_at = |time: claimdb_model::Timestamp| {
        let store = store.clone();
        async move {
            store.get_at(&[path("h/x")], time).await.unwrap()[0]
                .as_ref()
                .map(|d| d.data.get("n").cloned())
        }
    };
    let just_before = |r: &CommitResult| {
        claimdb_model::Timestamp::from_micros(r.commit_time.micros() - 1).unwrap()
    };
    assert_eq!(n_at(before.commit_time).await, Some(Some(Value::Int(0))));
    assert_eq!(
        n_at(just_before(&results[0])).await,
        Some(Some(Value::Int(0)))
    );
    assert_eq!(
        n_at(results[0].commit_time).await,
        Some(Some(Value::Int(1)))
    );
    assert_eq!(
        n_at(results[1].commit_time).await,
        Some(Some(Value::Int(2)))
    );
    assert_eq!(
        n_at(just_before(&results[2])).await,
        Some(Some(Value::Int(2)))
    );
    assert_eq!(n_at(results[2].commit_time).await, None, "deleted");
    assert_eq!(n_at(just_before(&results[3])).await, None);
    let recreated = store
        .get_at(&[path("h/x")], results[3].commit_time)
        .await
        .unwrap();
    let recreated = recreated[0].as_ref().unwrap();
    assert_eq!(recreated.create_time, results[3].commit_time);
    let row = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.history",
                quote_ident(&guard.schema)
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3, "versions 0, 1 and 2 kept");
}
