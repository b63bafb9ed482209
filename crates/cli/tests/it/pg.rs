//! PostgreSQL for the black-box tests: the server named by `CLAIMDB_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), one fresh schema per test, dropped afterwards.
//! Without a reachable server the tests are skipped loudly, or fail under `CI=true`.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub(crate) fn url() -> String {
    std::env::var("CLAIMDB_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_string())
}

/// Runs `f` on a throwaway runtime (the tests here are synchronous).
pub(crate) fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A schema of its own for one test, dropped when this is dropped.
pub(crate) struct Schema {
    pub url: String,
    pub name: String,
}

impl Schema {
    /// The URL with claimdb's `schema=` parameter naming this schema.
    pub(crate) fn spec(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}schema={}", self.url, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = block_on(claimdb_store_postgres::drop_schema(&self.url, &self.name));
    }
}

/// A fresh schema name on a reachable server, or `None` (after a loud banner) when there is no
/// server and this is not CI.
pub(crate) fn schema(prefix: &str) -> Option<Schema> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let url = url();
    let reachable = block_on(async {
        let config: tokio_postgres::Config = url.parse().unwrap();
        config.connect(tokio_postgres::NoTls).await.map(|_| ())
    });
    if let Err(e) = reachable {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("CI=true and PostgreSQL at {url} cannot be reached: {e}");
        }
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            let _ = write!(
                std::io::stderr(),
                "\n=============== SKIPPED: claimdb PostgreSQL tests ===============\n\
                 PostgreSQL at {url} cannot be reached ({e}).\n\
                 These tests pass without running. Set CLAIMDB_TEST_POSTGRES_URL to a server\n\
                 to run them; with CI=true they fail instead.\n\
                 =================================================================\n\n"
            );
        }
        return None;
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Some(Schema {
        url,
        name: format!(
            "claimdb_cli_{prefix}_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ),
    })
}
