//! The pruner: one task per node that deletes history older than the node's retention
//! ([`claimdb_store::history`]) every [`PRUNE_INTERVAL`], in bounded batches (each one
//! statement, its own transaction), and raises `meta.history_from` past what a batch deleted in
//! the same statement — so a read at a time whose versions are gone is refused, whichever
//! node's retention pruned them. It takes a pooled connection only when one is free at once,
//! so it never makes a request wait, and it never touches the counter row unless it deleted
//! something. Commits never delete history: the write path stays bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use claimdb_store::history::{PRUNE_BATCH, PRUNE_INTERVAL, retention_micros};
use deadpool_postgres::{Pool, Timeouts};
use tokio::sync::watch;

use crate::PgOptions;
use crate::error::Failure;
use crate::schema::Sql;

/// Most batches one pass deletes; what is left waits for the next pass.
const MAX_BATCHES_PER_PASS: usize = 16;

/// Starts the pruner; it stops when `stop` changes or its sender is dropped.
pub(crate) fn spawn(
    pool: Pool,
    sql: Arc<Sql>,
    options: PgOptions,
    mut stop: watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(f) = pass(&pool, &sql, &options).await {
                let now = Instant::now();
                if last_error.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
                    last_error = Some(now);
                    tracing::warn!("pruning the history of past versions failed: {}", f.error);
                }
            }
        }
    });
}

/// One pass: batches until one deletes less than a full batch (or the pass's limit).
async fn pass(pool: &Pool, sql: &Sql, options: &PgOptions) -> Result<(), Failure> {
    let free_now = Timeouts {
        wait: Some(Duration::ZERO),
        ..pool.timeouts()
    };
    // A busy pool: the requests go first, the next pass prunes.
    let Ok(c) = pool.timeout_get(&free_now).await else {
        return Ok(());
    };
    let stmt = c.prepare_cached(&sql.history_prune).await?;
    let retention = retention_micros(options.history_retention);
    let batch = i64::try_from(PRUNE_BATCH).unwrap_or(i64::MAX);
    for _ in 0..MAX_BATCHES_PER_PASS {
        let row = c.query_one(&stmt, &[&retention, &batch]).await?;
        let deleted: i64 = row.try_get(0)?;
        if deleted < batch {
            break;
        }
    }
    Ok(())
}
