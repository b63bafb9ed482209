//! The log's files on disk: names (`audit-20261123T140000.123456Z.jsonl`, the UTC time the file
//! was started, fixed width so names sort by time), listing, and owner-only creation.
//!
//! Invariant kept by the writer: every event in a file is older than the next file's name. A
//! reader may therefore skip a whole file when the next one's name is not after `since`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use claimdb_model::Timestamp;

use super::AuditError;

const PREFIX: &str = "audit-";
const SUFFIX: &str = ".jsonl";

/// One log file: the start time in its name (µs since the epoch) and its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogFile {
    pub micros: i64,
    pub path: PathBuf,
}

/// `audit-20261123T140000.123456Z.jsonl` for the given time.
pub(crate) fn file_name(micros: i64) -> Option<String> {
    let ts = Timestamp::from_micros(micros).ok()?;
    let compact: String = ts
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    Some(format!("{PREFIX}{compact}{SUFFIX}"))
}

/// The time in a log file's name, or `None` for any other file.
pub(crate) fn parse_file_name(name: &str) -> Option<i64> {
    let compact = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    // YYYYMMDDTHHMMSS.ffffffZ
    if compact.len() != 23 || !compact.is_ascii() {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}",
        &compact[0..4],
        &compact[4..6],
        &compact[6..8],
        &compact[9..11],
        &compact[11..13],
        &compact[13..]
    );
    let micros = Timestamp::parse(&rfc3339).ok()?.micros();
    // Only the canonical spelling counts, so one time has exactly one name.
    (file_name(micros).as_deref() == Some(name)).then_some(micros)
}

/// The log files in `dir`, oldest first. Other files are ignored.
pub(crate) fn list(dir: &Path) -> Result<Vec<LogFile>, AuditError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            AuditError::NotFound(dir.to_path_buf())
        } else {
            AuditError::io("cannot list", dir, &e)
        }
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io("cannot list", dir, &e))?;
        if let Some(micros) = entry.file_name().to_str().and_then(parse_file_name) {
            files.push(LogFile {
                micros,
                path: entry.path(),
            });
        }
    }
    files.sort_by_key(|f| f.micros);
    Ok(files)
}

/// Creates `dir` (and missing parents) and makes it owner-only (0700): the log names users and
/// explains denials.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), AuditError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| AuditError::io("cannot create the audit directory", dir, &e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AuditError::io("cannot make owner-only", dir, &e))?;
    }
    Ok(())
}

/// Creates a new, empty, owner-only (0600) file; never opens an existing one, so nothing is ever
/// appended after a possibly torn last line. Opened in append mode, so after the writer cuts a
/// failed group off with `set_len` the next write lands at the new end, not after a hole.
pub(crate) fn create_new(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Makes a new directory entry durable (the file's own fdatasync does not cover its name).
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_time() {
        let t = Timestamp::parse("2026-11-23T14:00:00.123456Z")
            .unwrap()
            .micros();
        let name = file_name(t).unwrap();
        assert_eq!(name, "audit-20261123T140000.123456Z.jsonl");
        assert_eq!(parse_file_name(&name), Some(t));
        let later = file_name(t + 1).unwrap();
        assert!(later > name);
        let next_day = file_name(t + 86_400_000_000).unwrap();
        assert!(next_day > later);
        for other in [
            "audit-20261123T140000.123456Z.json",
            "audit-20261123T140000Z.jsonl",
            "audit-2026-11-23T14:00:00.123456Z.jsonl",
            "audit-20261323T140000.123456Z.jsonl",
            "notes.txt",
            "audit-20261123T140000.12345éZ.jsonl",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
    }
}
