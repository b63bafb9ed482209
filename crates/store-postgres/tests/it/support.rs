//! Finding PostgreSQL for the tests, and one fresh schema per test.
//!
//! The server is `CLAIMDB_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`. When it cannot be reached, the tests fail under
//! `CI=true` and are otherwise skipped with a banner on stderr (they pass, loudly).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use claimdb_store_postgres::{PgOptions, PostgresStore};

pub(crate) const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub(crate) fn url() -> String {
    std::env::var("CLAIMDB_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// A schema name no other test or run uses.
pub(crate) fn unique_schema(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops the test's schema when the test ends (also when it fails).
pub(crate) struct SchemaGuard {
    pub url: String,
    pub schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with
        // its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Err(e) = rt.block_on(claimdb_store_postgres::drop_schema(&url, &schema)) {
                eprintln!("could not drop test schema {schema}: {e}");
            }
        })
        .join();
    }
}

/// A store on a fresh schema of the test server, or `None` (after a loud banner) when there is
/// no server and this is not CI.
pub(crate) async fn store(options: PgOptions) -> Option<(PostgresStore, SchemaGuard)> {
    let url = url();
    let schema = unique_schema("claimdb_test");
    let options = PgOptions {
        schema: Some(schema.clone()),
        ..options
    };
    match PostgresStore::connect(&url, options).await {
        Ok(store) => Some((store, SchemaGuard { url, schema })),
        Err(e) if matches!(e, claimdb_store::StoreError::Unavailable(_)) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("CI=true and PostgreSQL at {url} cannot be reached: {e}");
            }
            skipped_banner(&url, &e);
            None
        }
        Err(e) => panic!("connecting to PostgreSQL at {url}: {e}"),
    }
}

pub(crate) fn options() -> PgOptions {
    PgOptions {
        pool_size: 8,
        acquire_timeout: Duration::from_secs(10),
        schema: None,
        ..PgOptions::default()
    }
}

/// Says once per test binary, on the real stderr (the test harness captures `eprintln!` of
/// passing tests), that the PostgreSQL tests were skipped and why.
pub(crate) fn skipped_banner(url: &str, e: &dyn std::fmt::Display) {
    use std::io::Write as _;
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SAID.swap(true, Ordering::Relaxed) {
        return;
    }
    let _ = write!(
        std::io::stderr(),
        "\n==================== SKIPPED: PostgreSQL tests ====================\n\
         PostgreSQL at {url} cannot be reached ({e}).\n\
         These tests pass without running. Set CLAIMDB_TEST_POSTGRES_URL to a server to run\n\
         them; with CI=true they fail instead.\n\
         ===================================================================\n\n"
    );
}
