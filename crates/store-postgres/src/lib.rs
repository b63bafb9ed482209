//! claimdb's PostgreSQL backend of [`Store`]: several stateless `claimdb serve` nodes share one
//! PostgreSQL database (or schema), which holds everything they must agree on — documents, the
//! single-field index, system records and the version counter.
//!
//! The semantics are the embedded backend's, from the same shared pieces: the planner
//! ([`claimdb_store::query`]) chooses how to reach candidates and evaluates them, writes go
//! through [`claimdb_store::apply_write`], index entries come from [`claimdb_store::index`].
//! Commits from every node are serialized by the counter row (see `schema`); on each node one
//! task, the group committer (see `group`), applies all the commits queued at a moment as one
//! PostgreSQL transaction, so they share one lock acquisition and one WAL flush. Reads need no
//! lock: a point read or a query is one statement, hence one snapshot.
//!
//! Faults: while the server is down or restarting, calls fail with
//! [`StoreError::Unavailable`] and the pool replaces dead connections by itself once it is back
//! (an attempt that met a connection which had died, or a serialization failure, and certainly
//! changed nothing, is retried on a fresh connection, at most three attempts in all); a
//! pool that stays fully busy past `acquire_timeout` fails with
//! [`StoreError::ResourceExhausted`] instead of waiting forever. A commit is acknowledged only
//! after PostgreSQL's COMMIT returned, so with the server's default `synchronous_commit = on` no
//! acknowledged write is lost.
//!
//! The change feed crosses nodes: each commit stores what it changed in the `changes` table and
//! sends a NOTIFY carrying only its version, in its own transaction; each node's feed reader
//! (see `feed`) listens, reads the rows after the last one it announced, in version order, and
//! announces them to its subscribers — its own node's commits included, so every node sees one
//! order.
//!
//! It does not do TLS: connect over a trusted network or a local socket.

mod codec;
mod error;
mod feed;
mod past;
mod read;
mod schema;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use claimdb_model::{CollectionPath, DocPath, Timestamp};
use claimdb_store::children::ChildScan;
use claimdb_store::feed::Feed;
use claimdb_store::query::PreparedQuery;
use claimdb_store::{
    Capabilities, Child, Commit, CommitResult, Document, Documents, PageRequest, Query, QueryPage,
    Record, RecordCondition, Records, Store, StoreError, Subscription,
};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::NoTls;

use error::Failure;
use schema::Sql;
pub use schema::{SCHEMA_VERSION, quote_ident};

/// How to connect.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections this node keeps open.
    pub pool_size: usize,
    /// How long a call waits for a free connection before failing with `ResourceExhausted`.
    pub acquire_timeout: Duration,
    /// The PostgreSQL schema holding claimdb's tables, created if missing; `None` uses the
    /// connection's `current_schema()` (normally `public`, or what the URL's
    /// `options=-csearch_path=...` says).
    pub schema: Option<String>,
    /// How long the versions this node's commits replace are kept for reads at a past time
    /// ([`claimdb_store::history`]); zero keeps none (and makes every node's reads at a past
    /// time fail until the nodes agree again). This node prunes older ones.
    pub history_retention: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            acquire_timeout: Duration::from_secs(5),
            schema: None,
            history_retention: claimdb_store::history::DEFAULT_HISTORY_RETENTION,
        }
    }
}

/// How long connecting may take before the server counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts of one operation when a connection dies under it or a transaction is aborted by a
/// serialization failure or deadlock.
const ATTEMPTS: usize = 3;

/// The PostgreSQL-backed [`Store`].
pub struct PostgresStore {
    pool: Pool,
    sql: Arc<Sql>,
    options: PgOptions,
    closed: AtomicBool,
    /// The group committer, which applies every commit.
    committer: mpsc::Sender<group::Msg>,
    /// The change feed, fed by the feed reader task.
    feed: Feed,
    /// Stops the feed reader and the history pruner when sent to or dropped.
    stop_feed: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.sql.schema)
            .field("pool_size", &self.options.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user[:password]@host[:port]/database[?options]`, or the
    /// key=value form), then creates or migrates the schema. Fails with `Unavailable` when the
    /// server cannot be reached and `InvalidArgument` for a malformed URL or options.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        if options.pool_size == 0 {
            return Err(StoreError::InvalidArgument(
                "the PostgreSQL pool size must be at least 1".into(),
            ));
        }
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::InvalidArgument(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("claimdb");
        let (mut client, connection) = config.connect(NoTls).await.map_err(|e| error::map(&e))?;
        let driver = tokio::spawn(connection);
        let schema = match &options.schema {
            Some(s) if s.is_empty() || s.len() > 63 => {
                return Err(StoreError::InvalidArgument(format!(
                    "PostgreSQL schema name {s:?} must be 1 to 63 bytes"
                )));
            }
            Some(s) => s.clone(),
            None => {
                let row = client
                    .query_one("SELECT current_schema()", &[])
                    .await
                    .map_err(|e| error::map(&e))?;
                let current: Option<String> = row.try_get(0).map_err(|e| error::map(&e))?;
                current.ok_or_else(|| {
                    StoreError::InvalidArgument(
                        "the PostgreSQL connection has no current schema (its search_path names \
                         none that exists); set postgres_schema"
                            .into(),
                    )
                })?
            }
        };
        let sql = Arc::new(Sql::new(&schema));
        let migrated = async {
            schema::migrate(&mut client, &schema).await?;
            // The history is complete from now on if this node keeps it (and from earlier, if
            // every commit since kept it); a node keeping none makes past reads fail.
            let keep = !options.history_retention.is_zero();
            client.execute(&sql.history_start, &[&keep]).await?;
            Ok::<_, Failure>(())
        }
        .await;
        drop(client);
        let _ = driver.await;
        migrated.map_err(|f| f.error)?;
        let feed_config = config.clone();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Internal(format!("building the connection pool: {e}")))?;
        tracing::info!(
            schema,
            pool_size = options.pool_size,
            "PostgreSQL store ready"
        );
        let committer = group::Committer::spawn(pool.clone(), sql.clone(), options.clone());
        let feed = Feed::new();
        let (stop_feed, stopped) = tokio::sync::watch::channel(false);
        prune::spawn(
            pool.clone(),
            sql.clone(),
            options.clone(),
            stop_feed.subscribe(),
        );
        feed::Reader::start(feed_config, sql.clone(), feed.clone(), stopped).await?;
        Ok(PostgresStore {
            pool,
            sql,
            options,
            closed: AtomicBool::new(false),
            committer,
            feed,
            stop_feed,
        })
    }

    /// The PostgreSQL schema holding this store's tables.
    pub fn schema(&self) -> &str {
        &self.sql.schema
    }

    /// A pooled connection, or why there is none.
    async fn client(&self) -> Result<Object, Failure> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed().into());
        }
        pooled(&self.pool, &self.options).await
    }
}

/// A connection from `pool`, or why there is none.
async fn pooled(pool: &Pool, options: &PgOptions) -> Result<Object, Failure> {
    pool.get()
        .await
        .map_err(|e| error::pool(e, options.pool_size, options.acquire_timeout))
}

/// Runs `$body` (which uses the pooled connection `$c`) and runs it again on a fresh connection
/// when an attempt failed in a way that changed nothing and may pass next time (a connection
/// that died while idle in the pool, a serialization failure).
macro_rules! with_retry {
    ($store:expr, $c:ident => $body:expr) => {{
        let mut attempt = 1;
        loop {
            let result: Result<_, Failure> = match $store.client().await {
                Ok(mut $c) => {
                    let r = $body;
                    if r.as_ref().is_err_and(|f: &Failure| f.retry) {
                        // A connection that failed is never handed back to the pool.
                        let _ = deadpool_postgres::Object::take($c);
                    }
                    r
                }
                Err(f) => Err(f),
            };
            match result {
                Err(f) if f.retry && attempt < ATTEMPTS => {
                    tracing::debug!(attempt, error = %f.error, "retrying a PostgreSQL operation");
                    attempt += 1;
                }
                other => break other.map_err(|f| f.error),
            }
        }
    }};
}
// After `with_retry`, which it uses.
mod group;
mod prune;

fn closed() -> StoreError {
    StoreError::Unavailable("the store is closed".into())
}

/// Drops a schema and everything in it: for tests and for removing a claimdb database that
/// lives in its own schema. Irreversible.
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::InvalidArgument(format!("invalid PostgreSQL URL: {e}")))?;
    let (client, connection) = config.connect(NoTls).await.map_err(|e| error::map(&e))?;
    let driver = tokio::spawn(connection);
    let result = client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quote_ident(schema)
        ))
        .await
        .map_err(|e| error::map(&e));
    drop(client);
    let _ = driver.await;
    result
}

/// Namespaces and keys are 1 to 1024 bytes (as in every backend); PostgreSQL text cannot hold
/// U+0000, so no part of a record may either.
fn check_record(namespace: &str, key: &str, value: Option<&str>) -> Result<(), StoreError> {
    for (what, s) in [("namespace", namespace), ("key", key)] {
        if s.is_empty() || s.len() > 1024 {
            return Err(StoreError::InvalidArgument(format!(
                "a record {what} must be 1 to 1024 bytes, not {}",
                s.len()
            )));
        }
    }
    if [Some(namespace), Some(key), value]
        .into_iter()
        .flatten()
        .any(|s| s.contains('\0'))
    {
        return Err(StoreError::InvalidArgument(
            "a record cannot contain the character U+0000".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl Documents for PostgresStore {
    async fn get(&self, path: &DocPath) -> Result<Option<Document>, StoreError> {
        let key = path.sort_key();
        with_retry!(self, c => read::get(&mut c, &self.sql, &key).await)
    }

    async fn get_many(&self, paths: &[DocPath]) -> Result<Vec<Option<Document>>, StoreError> {
        with_retry!(self, c => read::get_many(&mut c, &self.sql, paths).await)
    }

    async fn commit(&self, commit: Commit) -> Result<CommitResult, StoreError> {
        claimdb_store::check_write_count(commit.writes.len())?;
        if !commit.journal.is_empty() {
            return Err(StoreError::Internal("this store keeps no journal".into()));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let (reply, answer) = oneshot::channel();
        let job = group::Job {
            checks: commit.checks,
            writes: commit.writes,
            reply,
        };
        self.committer
            .send(group::Msg::Commit(job))
            .await
            .map_err(|_| closed())?;
        // No answer: the committer stopped (the store was closed) before reaching this commit.
        answer.await.map_err(|_| closed())?
    }

    async fn query(&self, query: &Query, page: &PageRequest) -> Result<QueryPage, StoreError> {
        let prepared = PreparedQuery::new(query, page)?;
        with_retry!(self, c => read::query(&mut c, &self.sql, &prepared).await)
    }

    async fn scan(
        &self,
        after: Option<&DocPath>,
        limit: usize,
    ) -> Result<Vec<Document>, StoreError> {
        let after = after.map(DocPath::sort_key).unwrap_or_default();
        with_retry!(self, c => read::scan(&mut c, &self.sql, &after, limit).await)
    }

    async fn restore(&self, documents: Vec<Document>) -> Result<(), StoreError> {
        with_retry!(self, c => write::restore(&mut c, &self.sql, &documents).await)
    }

    async fn collection_ids(
        &self,
        parent: Option<&DocPath>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let scan = ChildScan::collections(parent);
        let steps = with_retry!(self, c => read::children(&mut c, &self.sql, &scan, after, limit, false).await)?;
        Ok(steps.into_iter().map(|(step, _)| step.id).collect())
    }

    async fn list_with_missing(
        &self,
        collection: &CollectionPath,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Child>, StoreError> {
        let scan = ChildScan::documents(collection);
        let steps = with_retry!(self, c => read::children(&mut c, &self.sql, &scan, after, limit, true).await)?;
        steps
            .into_iter()
            .map(|(step, doc)| match doc {
                Some(doc) => Ok(Child::Document(doc)),
                None => Ok(Child::Missing(collection.doc(&step.id)?)),
            })
            .collect()
    }

    async fn get_at(
        &self,
        paths: &[DocPath],
        time: Timestamp,
    ) -> Result<Vec<Option<Document>>, StoreError> {
        let retention = self.options.history_retention;
        with_retry!(self, c => past::get_at(&mut c, &self.sql, paths, time, retention).await)
    }

    async fn query_at(
        &self,
        query: &Query,
        page: &PageRequest,
        time: Timestamp,
    ) -> Result<QueryPage, StoreError> {
        let prepared = PreparedQuery::new(query, page)?;
        let retention = self.options.history_retention;
        with_retry!(self, c => past::query_at(&mut c, &self.sql, &prepared, time, retention).await)
    }

    async fn collection_ids_at(
        &self,
        parent: Option<&DocPath>,
        after: Option<&str>,
        limit: usize,
        time: Timestamp,
    ) -> Result<Vec<String>, StoreError> {
        let at = (time, self.options.history_retention);
        with_retry!(self, c => past::collection_ids_at(&mut c, &self.sql, parent, after, limit, at).await)
    }

    async fn list_with_missing_at(
        &self,
        collection: &CollectionPath,
        after: Option<&str>,
        limit: usize,
        time: Timestamp,
    ) -> Result<Vec<Child>, StoreError> {
        let at = (time, self.options.history_retention);
        with_retry!(self, c => past::list_with_missing_at(&mut c, &self.sql, collection, after, limit, at).await)
    }

    fn subscribe(&self) -> Subscription {
        self.feed.subscribe()
    }
}

#[async_trait]
impl Records for PostgresStore {
    async fn get_record(&self, namespace: &str, key: &str) -> Result<Option<String>, StoreError> {
        with_retry!(self, c => read::get_record(&mut c, &self.sql, namespace, key).await)
    }

    async fn list_records(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        with_retry!(self, c => read::list_records(&mut c, &self.sql, namespace, after, limit).await)
    }

    async fn put_record(
        &self,
        namespace: &str,
        key: &str,
        value: Option<String>,
        condition: RecordCondition,
    ) -> Result<bool, StoreError> {
        check_record(namespace, key, value.as_deref())?;
        if let RecordCondition::Equals(v) = &condition
            && v.contains('\0')
        {
            return Ok(false);
        }
        with_retry!(self, c => write::put_record(&mut c, &self.sql, namespace, key, value.as_deref(), &condition).await)
    }

    async fn scan_records(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        with_retry!(self, c => read::scan_records(&mut c, &self.sql, after, limit).await)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            journal: false,
            feed_across_processes: true,
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        with_retry!(self, c => read::ping(&mut c).await)
    }

    async fn close(&self) -> Result<(), StoreError> {
        // New calls are refused from here on; commits already queued are finished (and so
        // acknowledged, or refused, by the committer) before the pool closes. Other in-flight
        // calls finish on the connections they hold.
        self.closed.store(true, Ordering::Release);
        let (reply, done) = oneshot::channel();
        if self.committer.send(group::Msg::Close(reply)).await.is_ok() {
            let _ = done.await;
        }
        let _ = self.stop_feed.send(true);
        self.pool.close();
        Ok(())
    }
}
