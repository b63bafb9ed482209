//! The audit log's error type: opening, writing and reading the log, and the time inputs of a
//! query.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An [`AuditConfig`](super::AuditConfig) value is out of range.
    #[error("invalid audit configuration: {0}")]
    Config(String),
    /// A file or directory operation failed (the message carries the OS error).
    #[error("{action} {}: {message}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        message: String,
    },
    /// There is no audit log directory to read.
    #[error("no audit log at {}: the directory does not exist", .0.display())]
    NotFound(PathBuf),
    /// Writing or syncing a group of events failed; those events may be lost. The log keeps
    /// trying with the next group (and a new file) and reports itself unhealthy meanwhile.
    #[error("audit log write failed: {0}")]
    Write(String),
    /// The log was closed; nothing more is accepted.
    #[error("the audit log is closed")]
    Closed,
    /// A complete line in the middle of a file is not a valid event. The writer never produces
    /// one (it only ever tears the final line of a file, which readers skip), so this is
    /// corruption or tampering and is reported rather than skipped.
    #[error("corrupt audit log line {}:{line}: {message}", file.display())]
    Corrupt {
        file: PathBuf,
        line: u64,
        message: String,
    },
    /// A `--since`/`--until` input that is neither a duration nor an RFC 3339 time.
    #[error("{0}")]
    TimeSpec(String),
}

impl AuditError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, err: &std::io::Error) -> Self {
        AuditError::Io {
            action,
            path: path.into(),
            message: err.to_string(),
        }
    }
}
