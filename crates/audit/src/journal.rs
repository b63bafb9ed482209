//! The audit events of allowed writes, made durable by the store's journal instead of a sync of
//! the log's own per write.
//!
//! With a store that keeps a journal (`Capabilities::journal`, the embedded backend), the engine
//! queues a write's events in the log as usual (on disk within the flush interval) and commits
//! their encoded lines in the same transaction as the write: the record of an applied write is
//! exactly as durable as the write, at the cost of a row insert instead of an fdatasync of a
//! second file per group (that second sync cost ~15 % of write throughput). Then:
//!
//! - [`spawn_trimmer`]: every `every`, notes the journal's last line, waits until the log has
//!   synced every event queued so far ([`AuditLog::flush`]) — each journaled event was queued
//!   before its commit, so before the line was seen — and deletes the journal through it.
//! - [`recover`] at startup: lines a previous run committed but may not have synced to its log
//!   (a crash) are appended to the log durably, then deleted. An event can thus appear twice in
//!   the log after a crash (at-least-once, like a retried group), never be missing.

use std::sync::Arc;
use std::time::Duration;

use claimdb_store::{Store, StoreError};

use super::{AuditError, AuditLog, decode_line};

/// Lines moved per round of [`recover`].
const RECOVER_PAGE: usize = 1000;

/// Why journal recovery failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("reading or trimming the audit journal: {0}")]
    Store(#[from] StoreError),
    #[error("writing recovered audit events: {0}")]
    Log(#[from] AuditError),
}

/// Appends the journal's lines to the log (durably) and deletes them; returns how many were
/// moved. A line that does not parse is kept in the log's place by an error log, not lost
/// silently, and deleted with the rest so it cannot block recovery forever.
pub async fn recover(store: &dyn Store, log: &AuditLog) -> Result<u64, JournalError> {
    let mut moved = 0u64;
    let mut after = 0;
    loop {
        let lines = store.journal(after, RECOVER_PAGE).await?;
        let Some(&(last, _)) = lines.last() else {
            break;
        };
        for (seq, line) in &lines {
            match decode_line(line.as_bytes()) {
                Ok(event) => log.record(event).await?,
                Err(e) => {
                    tracing::error!(seq, "an audit journal line does not parse ({e}): {line}")
                }
            }
        }
        log.flush().await?;
        store.trim_journal(last).await?;
        moved += lines.len() as u64;
        after = last;
    }
    if moved > 0 {
        tracing::warn!(
            moved,
            "audit events of writes the previous run committed were moved from the journal to the log"
        );
    }
    Ok(moved)
}

/// Trims the journal behind the log every `every` (see the module docs). Stops when the log
/// closes.
pub fn spawn_trimmer(
    store: Arc<dyn Store>,
    log: AuditLog,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = trim_once(&*store, &log).await {
                if matches!(e, JournalError::Log(AuditError::Closed)) {
                    return;
                }
                tracing::warn!("trimming the audit journal: {e}");
            }
        }
    })
}

/// One round of the trimmer: deletes the journal lines whose events the log has synced.
pub async fn trim_once(store: &dyn Store, log: &AuditLog) -> Result<(), JournalError> {
    let last = store.journal_last().await?;
    if last == 0 {
        return Ok(());
    }
    log.flush().await?;
    store.trim_journal(last).await?;
    Ok(())
}
