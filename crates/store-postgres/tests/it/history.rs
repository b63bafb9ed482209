//! The history of past versions on PostgreSQL beyond the conformance suite: nodes configured
//! differently (one keeping no history makes every node's past reads fail until the others
//! commit again, never answer wrongly), pruning past the retention with `history_from` moving
//! past what went, and the migration of a schema from before history existed.

use std::time::Duration;

use claimdb_model::{DocPath, Map, Timestamp, Value};
use claimdb_store::{CommitResult, Documents, Store, StoreError, Write, WriteOp};
use claimdb_store_postgres::{PgOptions, PostgresStore, quote_ident};

use crate::support;

fn set(path: &str, n: i64) -> Write {
    Write::new(
        DocPath::parse(path).unwrap(),
        WriteOp::Set {
            data: Map::from([("n".to_string(), Value::Int(n))]),
            transforms: vec![],
        },
    )
}

async fn commit(store: &PostgresStore, writes: Vec<Write>) -> CommitResult {
    tokio::time::sleep(Duration::from_millis(2)).await;
    store.commit(writes.into()).await.unwrap()
}

fn before(t: Timestamp) -> Timestamp {
    Timestamp::from_micros(t.micros() - 1).unwrap()
}

async fn n_at(
    store: &PostgresStore,
    path: &str,
    time: Timestamp,
) -> Result<Option<i64>, StoreError> {
    let got = store.get_at(&[DocPath::parse(path).unwrap()], time).await?;
    Ok(got[0].as_ref().and_then(|d| match d.data.get("n") {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }))
}

/// Counts `history` rows and reads `meta.history_from` with a connection of the test's own.
async fn on_disk(url: &str, schema: &str) -> (i64, Option<i64>) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let s = quote_ident(schema);
    let rows: i64 = client
        .query_one(&format!("SELECT count(*) FROM {s}.history"), &[])
        .await
        .unwrap()
        .get(0);
    let from: Option<i64> = client
        .query_one(&format!("SELECT history_from FROM {s}.meta"), &[])
        .await
        .unwrap()
        .get(0);
    drop(client);
    let _ = driver.await;
    (rows, from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeping_no_history_makes_past_reads_fail_until_history_resumes() {
    let Some((a, guard)) = support::store(support::options()).await else {
        return;
    };
    let c1 = commit(&a, vec![set("n/x", 1)]).await;
    let c2 = commit(&a, vec![set("n/x", 2)]).await;
    assert_eq!(
        n_at(&a, "n/x", before(c2.commit_time)).await.unwrap(),
        Some(1)
    );
    let b = PostgresStore::connect(
        &guard.url,
        PgOptions {
            schema: Some(guard.schema.clone()),
            history_retention: Duration::ZERO,
            ..support::options()
        },
    )
    .await
    .unwrap();
    // B's commit replaces version 2 without keeping it: a read before it would be wrong.
    let c3 = commit(&b, vec![set("n/x", 3)]).await;
    for node in [&a, &b] {
        let refused = n_at(node, "n/x", before(c3.commit_time)).await.unwrap_err();
        assert!(
            matches!(refused, StoreError::FailedPrecondition(_)),
            "{refused:?}"
        );
    }
    // (B's pruner, keeping nothing, also deletes what A kept.)
    assert_eq!(on_disk(&guard.url, &guard.schema).await.1, None);
    // A commits again: history is complete from just after B's last commit.
    let c4 = commit(&a, vec![set("n/x", 4)]).await;
    assert_eq!(
        n_at(&a, "n/x", before(c4.commit_time)).await.unwrap(),
        Some(3)
    );
    assert_eq!(n_at(&a, "n/x", c4.commit_time).await.unwrap(), Some(4));
    assert!(
        n_at(&a, "n/x", c3.commit_time).await.is_err(),
        "B's commit time itself"
    );
    assert!(n_at(&a, "n/x", c1.commit_time).await.is_err());
    let (_, from) = on_disk(&guard.url, &guard.schema).await;
    assert_eq!(from, Some(c3.commit_time.micros() + 1));
    b.close().await.unwrap();
    a.close().await.unwrap();
}

/// The pruner deletes rows older than the retention (within a second or two) and moves
/// `history_from` past them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_past_the_retention_is_pruned() {
    let options = PgOptions {
        history_retention: Duration::from_secs(1),
        ..support::options()
    };
    let Some((store, guard)) = support::store(options).await else {
        return;
    };
    commit(&store, vec![set("p/x", 1)]).await;
    let c2 = commit(&store, vec![set("p/x", 2)]).await;
    assert_eq!(on_disk(&guard.url, &guard.schema).await.0, 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (rows, from) = on_disk(&guard.url, &guard.schema).await;
        if rows == 0 {
            assert_eq!(
                from,
                Some(c2.commit_time.micros()),
                "history_from past the pruned row"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = n_at(&store, "p/x", c2.commit_time).await.unwrap_err();
    assert!(
        matches!(&refused, StoreError::FailedPrecondition(m) if m.contains("1 second")),
        "{refused:?}"
    );
    let c3 = commit(&store, vec![set("p/x", 3)]).await;
    assert_eq!(
        n_at(&store, "p/x", before(c3.commit_time)).await.unwrap(),
        Some(2)
    );
    store.close().await.unwrap();
}

/// A schema at version 2 (before history) with documents in it migrates: the table and
/// `history_from` appear, the documents stay, and history is kept from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_from_before_history_migrates() {
    let Some((store, guard)) = support::store(support::options()).await else {
        return;
    };
    let c1 = commit(&store, vec![set("m/x", 1)]).await;
    store.close().await.unwrap();
    drop(store);
    {
        let (client, conn) = tokio_postgres::connect(&guard.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let s = quote_ident(&guard.schema);
        client
            .batch_execute(&format!(
                "DROP TABLE {s}.history; ALTER TABLE {s}.meta DROP COLUMN history_from;
                 DELETE FROM {s}.claimdb_migrations WHERE version = 3;"
            ))
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
    }
    let options = PgOptions {
        schema: Some(guard.schema.clone()),
        ..support::options()
    };
    let store = PostgresStore::connect(&guard.url, options).await.unwrap();
    let (rows, from) = on_disk(&guard.url, &guard.schema).await;
    assert_eq!(rows, 0);
    assert!(from.unwrap() > c1.commit_time.micros());
    assert!(
        n_at(&store, "m/x", c1.commit_time).await.is_err(),
        "before the history"
    );
    let c2 = commit(&store, vec![set("m/x", 2)]).await;
    assert_eq!(
        n_at(&store, "m/x", before(c2.commit_time)).await.unwrap(),
        Some(1)
    );
    store.close().await.unwrap();
}
