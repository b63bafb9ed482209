//! The change feed across nodes: two stores on one schema stand for two `claimdb serve` nodes; a
//! commit on either reaches the other's subscribers through LISTEN/NOTIFY within a second, and
//! every node sees all commits in one order.

use std::time::{Duration, Instant};

use claimdb_model::{DocPath, Map, Value};
use claimdb_store::{Documents, FeedEvent, Store, Write, WriteOp};
use claimdb_store_postgres::{PgOptions, PostgresStore};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_reach_other_nodes_within_a_second_in_commit_order() {
    let Some((a, guard)) = support::store(support::options()).await else {
        return;
    };
    let options = PgOptions {
        schema: Some(guard.schema.clone()),
        ..support::options()
    };
    let b = PostgresStore::connect(&guard.url, options).await.unwrap();
    assert!(b.capabilities().feed_across_processes);
    let mut on_b = b.subscribe();
    let mut on_a = a.subscribe();

    // One commit on A, seen on B within a second, with the document.
    let started = Instant::now();
    let r = a.commit(vec![set("x/one", 1)].into()).await.unwrap();
    let seen = match tokio::time::timeout(Duration::from_secs(1), on_b.next()).await {
        Ok(Some(FeedEvent::Commit(c))) => c,
        other => panic!("node B saw {other:?} within a second of node A's commit"),
    };
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(seen.version, r.version);
    assert_eq!(seen.changes[0].document, r.results[0].document);

    // Commits alternating between the nodes: each node announces all of them, in version order.
    let mut versions = vec![r.version];
    for i in 0..20 {
        let node = if i % 2 == 0 { &b } else { &a };
        versions.push(
            node.commit(vec![set(&format!("x/d{i}"), i)].into())
                .await
                .unwrap()
                .version,
        );
    }
    // Node B already took the first commit off its subscription above.
    for (sub, expected) in [(&mut on_a, &versions[..]), (&mut on_b, &versions[1..])] {
        let mut got = Vec::new();
        while got.len() < expected.len() {
            match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
                Ok(Some(FeedEvent::Commit(c))) => got.push(c.version),
                other => panic!("got {other:?} after {got:?}"),
            }
        }
        assert_eq!(got, expected);
    }
    b.close().await.unwrap();
    a.close().await.unwrap();
}
