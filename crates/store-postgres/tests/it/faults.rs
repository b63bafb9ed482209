//! Faults: PostgreSQL restarting under load and connections killed while idle (on a throwaway
//! cluster of our own, never the machine's shared server), an exhausted connection pool, and
//! nodes migrating one schema at once.

use claimdb_store::Documents;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use claimdb_model::{DocPath, Map, Value};
use claimdb_store::{Store, StoreError, Write, WriteOp};
use claimdb_store_postgres::{PgOptions, PostgresStore};

use crate::support;

/// A private PostgreSQL cluster in a temporary directory, on a free port; stopped (immediately)
/// and removed on drop.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The PostgreSQL server binaries: `CLAIMDB_TEST_PG_BIN`, else the newest
/// /usr/lib/postgresql/*/bin holding initdb.
fn pg_bin() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("CLAIMDB_TEST_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    found.pop()
}

/// Runs a server binary, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_command(bin: &Path, tool: &str) -> Command {
    let program = bin.join(tool);
    // Our uid through `id -u` (no libc binding needed for one check).
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run_ok(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// Starts a cluster, or returns `None` (loudly) when no PostgreSQL binaries are installed
    /// and this is not CI.
    fn start() -> Option<Cluster> {
        let Some(bin) = pg_bin() else {
            assert!(
                !ci(),
                "CI=true and no PostgreSQL server binaries (initdb) found"
            );
            support::skipped_banner("a throwaway cluster", &"no initdb found");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // The postgres user must own the directory when we run as root.
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .output();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut init = pg_command(&bin, "initdb");
        init.args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(dir.path().join("data"));
        run_ok(init, "initdb");
        let cluster = Cluster { bin, dir, port };
        cluster.pg_ctl_start();
        Some(cluster)
    }

    fn pg_ctl_start(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {} -c max_connections=40",
                self.port,
                self.dir.path().display()
            ))
            .args(["-w", "start"]);
        run_ok(c, "pg_ctl start");
    }

    /// Stops the server the hard way: no checkpoint, recovery from the WAL on the next start.
    fn crash(&self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"]);
        run_ok(c, "pg_ctl stop");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let mut c = pg_command(&self.bin, "pg_ctl");
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"]);
        let _ = c.output();
    }
}

fn set(path: &str, n: u64) -> Write {
    let mut data = Map::new();
    data.insert("n".into(), Value::Int(n as i64));
    Write::new(
        DocPath::parse(path).unwrap(),
        WriteOp::Set {
            data,
            transforms: vec![],
        },
    )
}

/// While PostgreSQL crashes and comes back under load, every failing call fails with
/// `Unavailable`, calls succeed again by themselves once it is back, and every acknowledged
/// write is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_is_unavailable_then_recovers_losing_nothing() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let options = PgOptions {
        pool_size: 6,
        acquire_timeout: Duration::from_secs(5),
        schema: None,
        ..PgOptions::default()
    };
    let store = Arc::new(
        PostgresStore::connect(&cluster.url(), options)
            .await
            .unwrap(),
    );
    let acked = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (store, acked, unavailable, stop) = (
            store.clone(),
            acked.clone(),
            unavailable.clone(),
            stop.clone(),
        );
        tasks.spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let path = format!("load/w{w}-{n}");
                match store.commit(vec![set(&path, n)].into()).await {
                    Ok(_) => acked.lock().unwrap().push((path, n)),
                    Err(StoreError::Unavailable(_)) => {
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => panic!("a write failed with something other than Unavailable: {e:?}"),
                }
                n += 1;
            }
        });
    }
    {
        let (store, unavailable, stop) = (store.clone(), unavailable.clone(), stop.clone());
        tasks.spawn(async move {
            let path = DocPath::parse("load/w0-0").unwrap();
            while !stop.load(Ordering::Relaxed) {
                match store.get(&path).await {
                    Ok(_) => {}
                    Err(StoreError::Unavailable(_)) => {
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => panic!("a read failed with something other than Unavailable: {e:?}"),
                }
            }
        });
    }
    let wait_for = async |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    wait_for("writes before the crash", &|| {
        acked.lock().unwrap().len() >= 100
    })
    .await;
    tokio::task::spawn_blocking({
        let c = (cluster.bin.clone(), cluster.dir.path().to_path_buf());
        move || {
            let mut cmd = pg_command(&c.0, "pg_ctl");
            cmd.arg("-D")
                .arg(c.1.join("data"))
                .args(["-m", "immediate", "-w", "stop"]);
            run_ok(cmd, "pg_ctl stop");
        }
    })
    .await
    .unwrap();
    wait_for("Unavailable while the server is down", &|| {
        unavailable.load(Ordering::Relaxed) >= 20
    })
    .await;
    let before_restart = acked.lock().unwrap().len();
    tokio::task::block_in_place(|| cluster.pg_ctl_start());
    wait_for("writes to succeed again after the restart", &|| {
        acked.lock().unwrap().len() >= before_restart + 100
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    for (path, n) in &acked {
        let doc = store
            .get(&DocPath::parse(path).unwrap())
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged write {path} was lost"));
        assert_eq!(doc.data.get("n"), Some(&Value::Int(*n as i64)), "{path}");
    }
    store.close().await.unwrap();
    cluster.crash();
}

/// Every pooled connection busy past the acquire timeout: a clear `ResourceExhausted`, quickly,
/// and the held-up call still completes once the connection is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_is_resource_exhausted_without_hanging() {
    let options = PgOptions {
        pool_size: 1,
        acquire_timeout: Duration::from_millis(300),
        schema: None,
        ..PgOptions::default()
    };
    let Some((store, guard)) = support::store(options).await else {
        return;
    };
    let store = Arc::new(store);
    // Hold the counter row from outside, so a commit blocks on it holding the only connection.
    let (mut blocker, conn) = tokio_postgres::connect(&guard.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let tx = blocker.transaction().await.unwrap();
    tx.execute(
        &format!(
            "SELECT * FROM {}.meta FOR UPDATE",
            claimdb_store_postgres::quote_ident(&guard.schema)
        ),
        &[],
    )
    .await
    .unwrap();
    let held = tokio::spawn({
        let store = store.clone();
        async move { store.commit(vec![set("c/held", 1)].into()).await }
    });
    // Let the commit take the connection and block.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let started = Instant::now();
        match store.get(&DocPath::parse("c/x").unwrap()).await {
            Err(StoreError::ResourceExhausted(m)) => {
                assert!(m.contains("all 1 PostgreSQL connections"), "{m}");
                assert!(
                    started.elapsed() < Duration::from_secs(3),
                    "waited {:?} for a connection",
                    started.elapsed()
                );
                break;
            }
            Ok(_) => {
                assert!(Instant::now() < deadline, "the pool never filled up");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("expected ResourceExhausted, got {e:?}"),
        }
    }
    tx.rollback().await.unwrap();
    held.await.unwrap().unwrap();
    assert!(
        store
            .get(&DocPath::parse("c/held").unwrap())
            .await
            .unwrap()
            .is_some()
    );
    drop(blocker);
    let _ = driver.await;
}

/// Nodes starting together on a new schema apply each migration exactly once, and all work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let url = support::url();
    let schema = support::unique_schema("claimdb_test_mig");
    let _guard = support::SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let options = PgOptions {
        schema: Some(schema.clone()),
        ..support::options()
    };
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (url, options) = (url.clone(), options.clone());
        starts.spawn(async move { PostgresStore::connect(&url, options).await });
    }
    let mut stores = Vec::new();
    while let Some(r) = starts.join_next().await {
        match r.unwrap() {
            Ok(s) => stores.push(s),
            Err(StoreError::Unavailable(e)) if !ci() => {
                support::skipped_banner(&url, &e);
                return;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let r = stores[0].commit(vec![set("c/a", 1)].into()).await.unwrap();
    for s in &stores {
        assert_eq!(
            s.get(&DocPath::parse("c/a").unwrap())
                .await
                .unwrap()
                .unwrap()
                .version,
            r.version
        );
    }
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let rows = client
        .query(
            &format!(
                "SELECT version FROM {}.claimdb_migrations",
                claimdb_store_postgres::quote_ident(&schema)
            ),
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        versions,
        (1..=claimdb_store_postgres::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    drop(client);
    let _ = driver.await;
}

/// Connections that died while idle in the pool (here: terminated by the server) are replaced
/// without the caller seeing an error: a group of commits that meets a dead connection before
/// sending anything that could apply is run again on a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_while_idle_are_replaced_without_an_error() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let options = PgOptions {
        pool_size: 4,
        acquire_timeout: Duration::from_secs(5),
        schema: None,
        ..PgOptions::default()
    };
    let store = Arc::new(
        PostgresStore::connect(&cluster.url(), options)
            .await
            .unwrap(),
    );
    // Fill the pool with idle connections.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .commit(vec![set(&format!("idle/a{i}"), i)].into())
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let (admin, conn) = tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(conn);
    let killed: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = 'claimdb') t",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 1, "no claimdb connection to kill");
    for i in 0..8 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .commit(vec![set(&format!("idle/b{i}"), i)].into())
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    for i in 0..8 {
        assert!(
            store
                .get(&DocPath::parse(&format!("idle/b{i}")).unwrap())
                .await
                .unwrap()
                .is_some()
        );
    }
    drop(admin);
    let _ = driver.await;
    store.close().await.unwrap();
    cluster.crash();
}
