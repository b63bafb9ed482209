//! Reading the log: [`query`] picks the files of a log directory that can hold matches (skipping
//! whole files older than `since` by their successor's name) and streams them through `scan.rs`
//! — oldest first from the front, newest first from the back, stopping at the limit, so memory
//! and time follow the limit rather than the log. Usable while a server is writing the same
//! directory.
//!
//! Order is log order: the order the writer appended events, which is time order up to the
//! jitter between concurrent callers taking their timestamps.

use std::path::Path;
use std::time::SystemTime;

use super::event::micros_since_epoch;
use super::files::{self, LogFile};
use super::scan;
use super::{AuditError, AuditEvent, Decision};

/// Which events [`query`] returns. `Default` is every event, oldest first, at most 1,000.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only denials.
    pub deny_only: bool,
    /// Events at or after this time.
    pub since: Option<SystemTime>,
    /// Events before this time.
    pub until: Option<SystemTime>,
    /// Only this caller's events.
    pub uid: Option<String>,
    /// Only events on this path or below it, segment-wise: `movies` matches `movies` and
    /// `movies/m1`, not `movies2/x`. Leading and trailing `/` are ignored.
    pub path: Option<String>,
    /// At most this many events (0 returns none).
    pub limit: usize,
    /// The newest `limit` matching events, newest first; otherwise the oldest, oldest first.
    pub newest_first: bool,
}

/// Default for [`AuditFilter::limit`].
pub const DEFAULT_QUERY_LIMIT: usize = 1000;

impl Default for AuditFilter {
    fn default() -> Self {
        AuditFilter {
            deny_only: false,
            since: None,
            until: None,
            uid: None,
            path: None,
            limit: DEFAULT_QUERY_LIMIT,
            newest_first: false,
        }
    }
}

impl AuditFilter {
    /// Whether `event` passes every condition.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        if self.deny_only && event.decision != Decision::Deny {
            return false;
        }
        if self.since.is_some_and(|since| event.time < since) {
            return false;
        }
        if self.until.is_some_and(|until| event.time >= until) {
            return false;
        }
        if let Some(uid) = &self.uid
            && event.uid.as_deref() != Some(uid.as_str())
        {
            return false;
        }
        if let Some(prefix) = &self.path
            && !path_within(&event.path, prefix)
        {
            return false;
        }
        true
    }
}

/// Whether `path` is `prefix` or below it, comparing whole segments.
fn path_within(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_matches('/');
    let path = path.trim_matches('/');
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The events of the log in `dir` that pass `filter`.
pub fn query(dir: &Path, filter: &AuditFilter) -> Result<Vec<AuditEvent>, AuditError> {
    let files = files::list(dir)?;
    if filter.limit == 0 {
        return Ok(Vec::new());
    }
    let candidates = &files[first_candidate(&files, filter.since)..];
    let mut out = Vec::new();
    if filter.newest_first {
        // Newest file first, each read from its end: the cost follows the limit, not the log.
        for file in candidates.iter().rev() {
            scan::backward(file, filter, |event| {
                out.push(event);
                out.len() < filter.limit
            })?;
            if out.len() == filter.limit {
                break;
            }
        }
    } else {
        for file in candidates {
            scan::forward(file, filter, |event| {
                out.push(event);
                out.len() < filter.limit
            })?;
            if out.len() == filter.limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Index of the first file that may hold an event at or after `since`: every event in a file is
/// older than the next file's name, so a file followed by one named at or before `since` is
/// entirely older.
fn first_candidate(files: &[LogFile], since: Option<SystemTime>) -> usize {
    let Some(since) = since else { return 0 };
    let since = micros_since_epoch(since);
    files
        .windows(2)
        .position(|pair| pair[1].micros > since)
        .unwrap_or(files.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefix_is_segment_wise() {
        assert!(path_within("movies/m1", "movies"));
        assert!(path_within("movies", "movies"));
        assert!(path_within("movies/m1/reviews/r1", "movies/m1"));
        assert!(path_within("movies/m1", "/movies/"));
        assert!(path_within("anything", ""));
        assert!(!path_within("movies2/x", "movies"));
        assert!(!path_within("movie", "movies"));
        assert!(!path_within("movies/m10", "movies/m1"));
    }
}
