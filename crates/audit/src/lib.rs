//! The audit log: every authorization decision (and admin operation) appended to rotating
//! JSON-lines files in one directory, `<data_dir>/audit/audit-<UTC start time>.jsonl`, and read
//! back with filters.
//!
//! - Writing ([`AuditLog`]): the request path hands each [`AuditEvent`] to a background writer
//!   thread through a bounded queue — a lock and a move, no IO, no encoding, no wakeup per
//!   event. The writer appends groups and fdatasyncs each group.
//!   [`record`](AuditLog::record) events are on disk within `flush_interval` (default 50 ms);
//!   [`record_durable`](AuditLog::record_durable) resolves only once the event's group is synced
//!   (for writes: audit before acknowledging).
//! - With a store that keeps a journal, the events of allowed writes are committed with the
//!   writes instead of synced per write ([`journal`]).
//! - Reading ([`query`], [`parse_time_spec`]): streams the files, skipping whole files older than
//!   `since`, tolerating the torn last line a crash (or a concurrent append) leaves.
//!
//! Not here: deciding anything (the engine calls this after rules decide), HTTP (`server`
//! mounts `/v1/admin/audit` and exposes [`AuditStats`] at `/metrics`), printing (`cli`).

mod encode;
mod error;
mod event;
mod files;
pub mod journal;
mod log;
mod query;
mod retention;
mod scan;
mod timespec;
mod writer;

pub use error::AuditError;
pub use event::{AuditEvent, Decision, decode_line, encode_line, format_time};
pub use log::{
    AuditConfig, AuditLog, AuditStats, DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, MIN_MAX_BYTES,
};
pub use query::{AuditFilter, DEFAULT_QUERY_LIMIT, query};
pub use timespec::parse_time_spec;

/// The audit directory inside a data directory.
pub fn audit_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("audit")
}

#[cfg(test)]
mod tests;
