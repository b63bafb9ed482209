//! Acknowledged writes survive `kill -9` and a graceful SIGTERM, on both backends.
//!
//! The crash-cycle tests run the real binary through cycles of: start over the same data,
//! concurrent writers (single PUTs, and 10-write batches that each also overwrite their
//! writer's marker document) until a `kill -9` at a random moment, then a restart that checks
//! every write acknowledged in that cycle: present with its value, its `allow` decision in the
//! audit log, no batch partially applied (every batch's documents are all there or none are,
//! and the marker names a whole batch no older than the last acknowledged one). A final restart
//! checks every cycle's writes again. `cargo test` runs a few cycles per backend; set
//! `CLAIMDB_CRASH_CYCLES=120` for an endurance run (and `CLAIMDB_CRASH_SEED` to repeat the kill
//! moments of a failed run, which prints its seed). PostgreSQL runs use
//! `CLAIMDB_TEST_POSTGRES_URL` (a private schema per test; see `pg.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use crate::pg;
use crate::util::{Server, json, request};

/// Cycles per backend in the normal test suite.
const DEFAULT_CYCLES: usize = 3;
const SINGLE_WRITERS: usize = 4;
const BATCH_WRITERS: usize = 3;
const BATCH_SIZE: usize = 10;

/// Where the documents live, and how a node is started over it.
enum Backend {
    Sqlite,
    Postgres(pg::Schema),
}

impl Backend {
    fn start(&self, data_dir: &Path) -> Server {
        match self {
            Backend::Sqlite => Server::start(data_dir),
            Backend::Postgres(schema) => Server::start_env(
                data_dir,
                &[
                    ("CLAIMDB_STORAGE", "postgres"),
                    ("CLAIMDB_POSTGRES_URL", &schema.url),
                    ("CLAIMDB_POSTGRES_SCHEMA", &schema.name),
                    ("CLAIMDB_POSTGRES_POOL_SIZE", "8"),
                ],
            ),
        }
    }
}

/// What the writers of one cycle got acknowledged, and what they tried.
#[derive(Default)]
struct Outcome {
    /// Single writes: path → the `n` it was written with.
    singles: Vec<(String, u64)>,
    /// Acknowledged batches, by id.
    batches: HashSet<String>,
    /// Per batch writer, the sequence number of its last acknowledged batch.
    last_batch: HashMap<usize, u64>,
    /// A writer's unexpected answer (anything but 2xx before the kill).
    failures: Vec<String>,
}

fn singles_collection(cycle: usize) -> String {
    format!("crash-s{cycle}")
}

fn batches_collection(cycle: usize) -> String {
    format!("crash-b{cycle}")
}

fn batch_id(cycle: usize, writer: usize, k: u64) -> String {
    format!("c{cycle}-w{writer}-b{k:06}")
}

/// Starts the writers of `cycle`; they run until the server stops answering.
fn start_writers(server: &Server, cycle: usize, out: &Arc<Mutex<Outcome>>) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    for w in 0..SINGLE_WRITERS {
        let (base, out) = (server.base.clone(), out.clone());
        handles.push(std::thread::spawn(move || {
            for n in 0u64.. {
                let path = format!("{}/w{w}-{n:06}", singles_collection(cycle));
                let body = json!({"writer": w, "n": n, "pad": "x".repeat(200)}).to_string();
                match request("PUT", &format!("{base}/v1/docs/{path}"), Some(&body), &[]) {
                    Ok((200 | 201, _)) => out.lock().unwrap().singles.push((path, n)),
                    Ok((status, text)) => {
                        let failure = format!("PUT {path} answered {status}: {text}");
                        out.lock().unwrap().failures.push(failure);
                        return;
                    }
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    for w in 0..BATCH_WRITERS {
        let (base, out) = (server.base.clone(), out.clone());
        handles.push(std::thread::spawn(move || {
            for k in 0u64.. {
                let id = batch_id(cycle, w, k);
                let mut writes: Vec<Value> = (0..BATCH_SIZE)
                    .map(|j| {
                        json!({"op": "set", "path": format!("{}/{id}-{j}", batches_collection(cycle)),
                               "data": {"batch": id, "j": j, "size": BATCH_SIZE}})
                    })
                    .collect();
                writes.push(json!({"op": "set", "path": format!("crash-markers/w{w}"),
                                   "data": {"batch": id, "cycle": cycle, "k": k}}));
                let body = json!({ "writes": writes }).to_string();
                match request("POST", &format!("{base}/v1/batch"), Some(&body), &[]) {
                    Ok((200, _)) => {
                        let mut out = out.lock().unwrap();
                        out.batches.insert(id);
                        out.last_batch.insert(w, k);
                    }
                    Ok((status, text)) => {
                        let failure = format!("batch {id} answered {status}: {text}");
                        out.lock().unwrap().failures.push(failure);
                        return;
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    handles
}

/// Every document of a collection, following `next_page_token`.
fn list_all(server: &Server, collection: &str) -> Vec<Value> {
    let mut docs = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!("/v1/docs/{collection}?page_size=300");
        if let Some(t) = &token {
            url.push_str(&format!("&page_token={t}"));
        }
        let (status, text) = server.get(&url).unwrap();
        assert_eq!(status, 200, "listing {collection}: {text}");
        let page = json(&text);
        docs.extend(page["documents"].as_array().unwrap().iter().cloned());
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => return docs,
        }
    }
}

/// Checks one cycle's acknowledged writes on a restarted server; returns the batch ids found.
fn check_cycle(server: &Server, cycle: usize, out: &Outcome) -> HashSet<String> {
    let singles: HashMap<String, Value> = list_all(server, &singles_collection(cycle))
        .into_iter()
        .map(|d| (d["path"].as_str().unwrap().to_owned(), d["data"].clone()))
        .collect();
    for (path, n) in &out.singles {
        let data = singles
            .get(path)
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged write {path} lost"));
        assert_eq!(data["n"], *n, "cycle {cycle}: {path} has the wrong content");
    }
    let mut batches: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for d in list_all(server, &batches_collection(cycle)) {
        let id = d["data"]["batch"].as_str().unwrap().to_owned();
        batches
            .entry(id)
            .or_default()
            .push(d["data"]["j"].as_u64().unwrap());
    }
    for (id, parts) in &batches {
        assert_eq!(
            parts.len(),
            BATCH_SIZE,
            "cycle {cycle}: batch {id} is partial: writes {parts:?} of {BATCH_SIZE}"
        );
    }
    for id in &out.batches {
        assert!(
            batches.contains_key(id),
            "cycle {cycle}: acknowledged batch {id} lost"
        );
    }
    batches.into_keys().collect()
}

/// Each batch writer's marker names a whole batch, no older than its last acknowledged one.
fn check_markers(server: &Server, complete: &HashSet<String>, last: &HashMap<usize, (usize, u64)>) {
    for (w, (cycle, k)) in last {
        let (status, text) = server.get(&format!("/v1/docs/crash-markers/w{w}")).unwrap();
        assert_eq!(status, 200, "marker of writer {w} lost: {text}");
        let marker = json(&text)["data"].clone();
        let id = marker["batch"].as_str().unwrap();
        assert!(
            complete.contains(id),
            "marker of writer {w} names batch {id}, which is not wholly present"
        );
        let at = (
            marker["cycle"].as_u64().unwrap() as usize,
            marker["k"].as_u64().unwrap(),
        );
        assert!(
            at >= (*cycle, *k),
            "marker of writer {w} went back to {at:?}; batch {:?} was acknowledged",
            (cycle, k)
        );
    }
}

/// Every path has an `allow` decision in the audit log (the events of writes are committed
/// with them and reach the log at the latest at the next start).
fn check_all_audited(data_dir: &Path, paths: impl Iterator<Item = String>) {
    let mut allowed = HashSet::new();
    for entry in std::fs::read_dir(data_dir.join("audit")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // A torn last line (the kill) is not JSON: skipped, as the reader does.
        for line in text.lines() {
            if let Ok(event) = serde_json::from_str::<Value>(line)
                && event["decision"] == "allow"
                && let Some(path) = event["path"].as_str()
            {
                allowed.insert(path.to_string());
            }
        }
    }
    for path in paths {
        assert!(
            allowed.contains(path.as_str()),
            "acknowledged write {path} has no audit event after the crash"
        );
    }
}

fn cycles() -> usize {
    std::env::var("CLAIMDB_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CYCLES)
}

fn seed() -> u64 {
    std::env::var("CLAIMDB_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        })
}

fn crash_cycles(name: &str, backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (cycles, seed) = (cycles(), seed());
    eprintln!("{name}: {cycles} crash cycles, CLAIMDB_CRASH_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut server = backend.start(dir.path());
    let mut all: Vec<(usize, Outcome)> = Vec::new();
    let mut last_batch: HashMap<usize, (usize, u64)> = HashMap::new();
    // Every batch found whole so far: a marker may name one of an earlier cycle.
    let mut whole: HashSet<String> = HashSet::new();
    let (mut acked_writes, started) = (0usize, Instant::now());
    for cycle in 0..cycles {
        let out = Arc::new(Mutex::new(Outcome::default()));
        let writers = start_writers(&server, cycle, &out);
        // Under load first (some writes of each kind acknowledged), then at a random moment.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let o = out.lock().unwrap();
            if o.singles.len() >= 20 && !o.batches.is_empty() || !o.failures.is_empty() {
                break;
            }
            drop(o);
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..500)));
        server.kill9();
        for w in writers {
            w.join().unwrap();
        }
        let out = Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap();
        assert!(out.failures.is_empty(), "cycle {cycle}: {:?}", out.failures);
        for (&w, &k) in &out.last_batch {
            last_batch.insert(w, (cycle, k));
        }
        acked_writes += out.singles.len() + out.batches.len() * (BATCH_SIZE + 1);
        server = backend.start(dir.path());
        whole.extend(check_cycle(&server, cycle, &out));
        check_markers(&server, &whole, &last_batch);
        let batch_paths = out.batches.iter().flat_map(|id| {
            (0..BATCH_SIZE).map(move |j| format!("{}/{id}-{j}", batches_collection(cycle)))
        });
        check_all_audited(
            dir.path(),
            out.singles
                .iter()
                .map(|(p, _)| p.clone())
                .chain(batch_paths),
        );
        all.push((cycle, out));
    }
    // Nothing acknowledged in an earlier cycle was lost by a later crash or restart.
    server.kill9();
    let server = backend.start(dir.path());
    let mut complete = HashSet::new();
    for (cycle, out) in &all {
        complete.extend(check_cycle(&server, *cycle, out));
    }
    check_markers(&server, &complete, &last_batch);
    eprintln!(
        "{name}: {cycles} cycles, {acked_writes} acknowledged writes checked, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(acked_writes > 0, "no write was acknowledged in any cycle");
}

/// Regression guard for the durability contract (README "Durability"): acknowledged = survives
/// `kill -9`, batches are all-or-nothing, and audited — embedded SQLite.
#[test]
fn crash_cycles_keep_every_acknowledged_write_sqlite() {
    crash_cycles("sqlite", &Backend::Sqlite);
}

/// The same contract on PostgreSQL (one node at a time over a private schema).
#[test]
fn crash_cycles_keep_every_acknowledged_write_postgres() {
    let Some(schema) = pg::schema("crash") else {
        return;
    };
    crash_cycles("postgres", &Backend::Postgres(schema));
}

#[test]
fn sigterm_stops_gracefully_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let out = Arc::new(Mutex::new(Outcome::default()));
    let writers = start_writers(&server, 0, &out);
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.lock().unwrap().singles.len() < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let data_dir = server.data_dir.clone();
    let status = server.stop_with("TERM");
    assert!(status.success(), "claimdb exited with {status} on SIGTERM");
    for w in writers {
        w.join().unwrap();
    }
    let out = Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap();
    // A request that arrives while the server stops may be refused as unavailable.
    assert!(
        out.failures.iter().all(|f| f.contains(" answered 503")),
        "{:?}",
        out.failures
    );
    assert!(
        !out.singles.is_empty(),
        "no write was acknowledged before the stop"
    );
    let server = Server::start(&data_dir);
    let complete = check_cycle(&server, 0, &out);
    let last: HashMap<usize, (usize, u64)> =
        out.last_batch.iter().map(|(&w, &k)| (w, (0, k))).collect();
    check_markers(&server, &complete, &last);
}
