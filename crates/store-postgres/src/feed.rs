//! The change feed across nodes. A commit's transaction stores what it changed in `changes`
//! (one row per commit: version, commit time, the changes as JSON text — see [`FeedRows`]) and
//! sends `NOTIFY claimdb_feed, '<version>'`, which PostgreSQL delivers only once the
//! transaction committed. The payload stays a number, far under NOTIFY's 8 KB limit, whatever
//! the commit's size.
//!
//! Each node runs one [`Reader`]: a connection of its own that LISTENs; on a notification (or
//! every [`POLL`], in case one was missed) it reads the rows after the last version it
//! announced, in version order, and announces each on the node's [`Feed`]. Version order is
//! commit order, and a row is never visible before the rows of lower versions: every commit
//! holds the counter row's lock from taking its version until it committed (see `schema`).
//! When the connection fails, the reader reconnects and goes on after the last version it
//! announced; rows older than the retention are trimmed by the readers.

use std::sync::Arc;
use std::time::Duration;

use claimdb_model::json::{decode_document, encode_document};
use claimdb_model::{DocPath, Timestamp};
use claimdb_store::feed::Feed;
use claimdb_store::{Change, Changes, CommitResult, Document, StoreError};
use tokio::sync::{Notify, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Statement};

use crate::error;
use crate::schema::{FEED_CHANNEL, Sql, quote_ident};

/// How often the reader looks for new rows without a notification.
const POLL: Duration = Duration::from_secs(5);
/// How often a reader trims rows past the retention.
const TRIM_EVERY: Duration = Duration::from_secs(60);
/// Rows read per query.
const PAGE: i64 = 256;
/// The wait before reconnecting after the connection failed.
const RECONNECT: Duration = Duration::from_millis(500);

/// The feed rows of a group of commits, as the parameters of `Sql::feed_insert`.
#[derive(Default)]
pub(crate) struct FeedRows {
    versions: Vec<i64>,
    times: Vec<i64>,
    bodies: Vec<String>,
    /// The NOTIFY payload: the last version.
    notify: String,
}

impl FeedRows {
    /// Adds the row of one commit that applied.
    pub(crate) fn push(&mut self, result: &CommitResult) -> Result<(), StoreError> {
        let version = i64::try_from(result.version)
            .map_err(|_| StoreError::Internal("version counter overflow".into()))?;
        self.versions.push(version);
        self.times.push(result.commit_time.micros());
        self.bodies.push(encode(&Changes::of(result))?);
        self.notify = version.to_string();
        Ok(())
    }

    /// The statement's parameters: the rows, and the last version as the NOTIFY payload.
    pub(crate) fn params(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.versions, &self.times, &self.bodies, &self.notify]
    }
}

/// The JSON text of a commit's changes: `[{"p": path, "e": existed, "d": data or null, "c":
/// create time in µs}]` (the version and update time are the commit's own).
fn encode(changes: &Changes) -> Result<String, StoreError> {
    let list: Vec<serde_json::Value> = changes
        .changes
        .iter()
        .map(|c| {
            serde_json::json!({
                "p": c.path.as_str(),
                "e": c.existed,
                "d": c.document.as_ref().map(|d| encode_document(&d.data)),
                "c": c.document.as_ref().map(|d| d.create_time.micros()),
            })
        })
        .collect();
    serde_json::to_string(&list)
        .map_err(|e| StoreError::Internal(format!("encoding a feed row: {e}")))
}

/// A feed row read back.
fn decode(version: i64, commit_us: i64, body: &str) -> Result<Changes, StoreError> {
    let bad = |what: &str| StoreError::Internal(format!("feed row {version}: {what}"));
    let version = u64::try_from(version).map_err(|_| bad("negative version"))?;
    let commit_time = Timestamp::from_micros(commit_us).map_err(|e| bad(&e.to_string()))?;
    let list: Vec<serde_json::Value> =
        serde_json::from_str(body).map_err(|e| bad(&e.to_string()))?;
    let mut changes = Vec::with_capacity(list.len());
    for item in &list {
        let path = item["p"].as_str().ok_or_else(|| bad("no path"))?;
        let path = DocPath::parse(path).map_err(|e| bad(&e.to_string()))?;
        let document = match &item["d"] {
            serde_json::Value::Null => None,
            data => {
                let create_us = item["c"].as_i64().ok_or_else(|| bad("no create time"))?;
                Some(Document {
                    path: path.clone(),
                    data: decode_document(data).map_err(|e| bad(&e.to_string()))?,
                    create_time: Timestamp::from_micros(create_us)
                        .map_err(|e| bad(&e.to_string()))?,
                    update_time: commit_time,
                    version,
                })
            }
        };
        changes.push(Change {
            path,
            existed: item["e"].as_bool().unwrap_or(false),
            document,
        });
    }
    Ok(Changes {
        version,
        commit_time,
        changes,
    })
}

/// A node's feed reader task.
pub(crate) struct Reader {
    config: Config,
    sql: Arc<Sql>,
    feed: Feed,
    /// The last version announced.
    last: i64,
}

impl Reader {
    /// Connects, notes the last version committed so far (the feed starts after it), and
    /// starts the reader; it stops when `stop` changes or its sender is dropped.
    pub(crate) async fn start(
        config: Config,
        sql: Arc<Sql>,
        feed: Feed,
        stop: watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let mut reader = Reader {
            config,
            sql,
            feed,
            last: 0,
        };
        let (client, woken) = reader.listen().await?;
        let row = client
            .query_one(&reader.sql.feed_last, &[])
            .await
            .map_err(|e| error::map(&e))?;
        reader.last = row.try_get(0).map_err(|e| error::map(&e))?;
        tokio::spawn(reader.run(client, woken, stop));
        Ok(())
    }

    /// A connection of its own that LISTENs on the feed's channel, and what its notifications
    /// wake.
    async fn listen(&self) -> Result<(Client, Arc<Notify>), StoreError> {
        let (client, mut connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| error::map(&e))?;
        let woken = Arc::new(Notify::new());
        let wake = woken.clone();
        tokio::spawn(async move {
            // Drives the connection; ends (and so fails the client's calls) when it does.
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => wake.notify_one(),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            wake.notify_one();
        });
        client
            .batch_execute(&format!("LISTEN {}", quote_ident(FEED_CHANNEL)))
            .await
            .map_err(|e| error::map(&e))?;
        Ok((client, woken))
    }

    async fn run(mut self, client: Client, woken: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let mut connection = Some((client, woken));
        // The reading statement, prepared once per connection.
        let mut prepared: Option<Statement> = None;
        let mut last_trim = tokio::time::Instant::now();
        loop {
            let (client, woken) = match connection.take() {
                Some(c) => c,
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep(RECONNECT) => {}
                        _ = stop.changed() => return,
                    }
                    match self.listen().await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::debug!(error = %e, "the change feed cannot reconnect yet");
                            continue;
                        }
                    }
                }
            };
            let stmt = match prepared.take() {
                Some(stmt) => stmt,
                None => match client.prepare(&self.sql.feed_after).await {
                    Ok(stmt) => stmt,
                    Err(e) => {
                        tracing::debug!(error = %e, "the change feed's connection failed");
                        continue;
                    }
                },
            };
            // Rows committed while there was no connection are read first.
            if let Err(e) = self.read(&client, &stmt).await {
                tracing::debug!(error = %e, "the change feed's connection failed; reconnecting");
                continue;
            }
            if last_trim.elapsed() >= TRIM_EVERY {
                last_trim = tokio::time::Instant::now();
                if let Err(e) = client.execute(&self.sql.feed_trim, &[]).await {
                    tracing::debug!(error = %e, "trimming the change feed's log failed");
                }
            }
            tokio::select! {
                _ = woken.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
            if client.is_closed() {
                continue;
            }
            prepared = Some(stmt);
            connection = Some((client, woken));
        }
    }

    /// Announces every row after the last one announced, in version order.
    async fn read(
        &mut self,
        client: &Client,
        stmt: &Statement,
    ) -> Result<(), tokio_postgres::Error> {
        loop {
            let rows = client.query(stmt, &[&self.last, &PAGE]).await?;
            for row in &rows {
                let (version, commit_us, body): (i64, i64, String) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                match decode(version, commit_us, &body) {
                    Ok(changes) => self.feed.announce(changes),
                    Err(e) => tracing::error!("skipping a change feed row: {e}"),
                }
                self.last = version;
            }
            if rows.len() < PAGE as usize {
                return Ok(());
            }
        }
    }
}
