//! Two `claimdb serve` processes on one PostgreSQL schema: a write through one is read through
//! the other, seen by the other's listeners, and `If-Match` races across the nodes have exactly
//! one winner.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::pg;
use crate::util::{Server, json, request};

fn node(schema: &pg::Schema, dir: &std::path::Path) -> Server {
    Server::start_env(
        dir,
        &[
            ("CLAIMDB_STORAGE", "postgres"),
            ("CLAIMDB_POSTGRES_URL", &schema.url),
            ("CLAIMDB_POSTGRES_SCHEMA", &schema.name),
            ("CLAIMDB_POSTGRES_POOL_SIZE", "8"),
        ],
    )
}

#[test]
fn a_write_through_one_node_is_read_and_queried_through_the_other() {
    let Some(schema) = pg::schema("nodes") else {
        return;
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&schema, da.path());
    let b = node(&schema, db.path());
    let (status, _) = request(
        "PUT",
        &a.url("/v1/docs/movies/m1"),
        Some(r#"{"title":"Up","year":2009}"#),
        &[],
    )
    .unwrap();
    assert_eq!(status, 201);
    let (status, text) = b.get("/v1/docs/movies/m1").unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(json(&text)["data"]["title"], "Up");
    // An update through B is seen by A, with B's version.
    let (status, text) = request(
        "PATCH",
        &b.url("/v1/docs/movies/m1"),
        Some(r#"{"year":2010}"#),
        &[],
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let version = json(&text)["version"].clone();
    let (_, text) = a.get("/v1/docs/movies/m1").unwrap();
    assert_eq!(json(&text)["data"]["year"], 2010);
    assert_eq!(json(&text)["version"], version);
    // A delete through A is gone for B.
    let (status, _) = request("DELETE", &a.url("/v1/docs/movies/m1"), None, &[]).unwrap();
    assert!(status == 200 || status == 204, "{status}");
    assert_eq!(b.get("/v1/docs/movies/m1").unwrap().0, 404);
}

#[test]
fn if_match_races_across_nodes_have_exactly_one_winner() {
    let Some(schema) = pg::schema("race") else {
        return;
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let nodes = Arc::new([node(&schema, da.path()), node(&schema, db.path())]);
    for round in 0..5 {
        let path = format!("/v1/docs/race/r{round}");
        let (status, _) = request("PUT", &nodes[0].url(&path), Some(r#"{"n":0}"#), &[]).unwrap();
        assert_eq!(status, 201);
        let (_, text) = nodes[1].get(&path).unwrap();
        let etag = format!("\"{}\"", json(&text)["version"]);
        let wins = Arc::new(AtomicUsize::new(0));
        let losses = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (nodes, path, etag) = (nodes.clone(), path.clone(), etag.clone());
                let (wins, losses) = (wins.clone(), losses.clone());
                std::thread::spawn(move || {
                    let url = nodes[i % 2].url(&path);
                    let body = format!(r#"{{"n":{}}}"#, i + 1);
                    let (status, text) =
                        request("PUT", &url, Some(&body), &[("if-match", &etag)]).unwrap();
                    match status {
                        200 => wins.fetch_add(1, Ordering::SeqCst),
                        412 => losses.fetch_add(1, Ordering::SeqCst),
                        other => panic!("unexpected {other}: {text}"),
                    };
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1, "round {round}: one winner");
        assert_eq!(losses.load(Ordering::SeqCst), 7);
        // Both nodes agree on the winner's document.
        let (_, ta) = nodes[0].get(&path).unwrap();
        let (_, tb) = nodes[1].get(&path).unwrap();
        assert_eq!(json(&ta), json(&tb));
        assert_ne!(json(&ta)["data"]["n"], 0);
    }
}

#[test]
fn a_write_through_one_node_reaches_a_listener_on_the_other() {
    let Some(schema) = pg::schema("listen") else {
        return;
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = node(&schema, da.path());
    let b = node(&schema, db.path());
    let doc = crate::listen::Stream::open(&b, "path=movies/m1", "").unwrap();
    assert_eq!(doc.next().0, "snapshot");
    let query: String = url::form_urlencoded::byte_serialize(
        br#"{"collection": "movies", "order_by": [["year", "desc"]], "limit": 1}"#,
    )
    .collect();
    let newest = crate::listen::Stream::open(&b, &format!("query={query}"), "").unwrap();
    assert_eq!(newest.next().0, "snapshot");
    let started = std::time::Instant::now();
    let (status, _) = request(
        "PUT",
        &a.url("/v1/docs/movies/m1"),
        Some(r#"{"title":"Up","year":2009}"#),
        &[],
    )
    .unwrap();
    assert_eq!(status, 201);
    assert_eq!(doc.changes(), ["added:m1@0"]);
    assert_eq!(newest.changes(), ["added:m1@0"]);
    eprintln!(
        "node A's write reached node B's listeners after {:?}",
        started.elapsed()
    );
    let (status, _) = request(
        "PUT",
        &a.url("/v1/docs/movies/m2"),
        Some(r#"{"title":"Soul","year":2020}"#),
        &[],
    )
    .unwrap();
    assert_eq!(status, 201);
    assert_eq!(newest.changes(), ["removed:m1@null", "added:m2@0"]);
}
