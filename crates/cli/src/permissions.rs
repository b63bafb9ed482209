//! Owner-only files. `main` sets the process umask to 077 so that every file and directory any
//! command creates — the data directory, the database and the `-wal`/`-shm` files SQLite adds,
//! the lock file, the audit log, the issuer's keys, `export` output — is readable by its owner
//! only (the store, the audit log and the key storage also create theirs with explicit modes).
//! Files an older version (or an operator) created wider are not changed, but `serve` warns
//! about each at start, naming the `chmod` that fixes it.

use std::path::{Path, PathBuf};

/// Makes every file and directory this process creates owner-only.
pub(crate) fn restrict_umask() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Logs one warning per claimdb file or directory in `data_dir` that group or others may access.
pub(crate) fn warn_if_open(data_dir: &Path) {
    for open in open_to_others(data_dir) {
        tracing::warn!(
            "{path} can be read by other local users (mode {mode:03o}); it holds documents, \
             sessions, keys or audit records: run `chmod {want:o} {path}`",
            path = open.path.display(),
            mode = open.mode,
            want = open.want,
        );
    }
}

/// A file or directory whose mode is wider than owner-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Open {
    pub path: PathBuf,
    pub mode: u32,
    /// The mode it should have: 0700 for a directory, 0600 for a file.
    pub want: u32,
}

/// claimdb's own entries of `data_dir` open to group or others: the directory itself, the
/// database and its companions (`claimdb.*`), and the `audit` and `issuer` directories with
/// their files. Other files an operator keeps there are not claimdb's business.
pub(crate) fn open_to_others(data_dir: &Path) -> Vec<Open> {
    let mut found = Vec::new();
    check(data_dir, &mut found);
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return found;
    };
    let mut names: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("claimdb.") {
            check(&path, &mut found);
        } else if name == "audit" || name == "issuer" {
            check(&path, &mut found);
            if let Ok(inner) = std::fs::read_dir(&path) {
                let mut inner: Vec<_> = inner.filter_map(Result::ok).map(|e| e.path()).collect();
                inner.sort();
                for file in inner {
                    check(&file, &mut found);
                }
            }
        }
    }
    found
}

#[cfg(unix)]
fn check(path: &Path, found: &mut Vec<Open>) {
    use std::os::unix::fs::PermissionsExt;
    // Not followed: a link's target is not ours to judge.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        found.push(Open {
            path: path.to_path_buf(),
            mode,
            want: if meta.is_dir() { 0o700 } else { 0o600 },
        });
    }
}

#[cfg(not(unix))]
fn check(_: &Path, _: &mut Vec<Open>) {}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn finds_claimdb_entries_open_to_others_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let set = |p: &Path, mode: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        std::fs::create_dir_all(data.join("audit")).unwrap();
        for (name, mode) in [
            ("claimdb.sqlite3", 0o644),
            ("claimdb.sqlite3-wal", 0o600),
            ("claimdb.lock", 0o640),
            ("notes.txt", 0o644),
            ("audit/audit-20261123T140000.000000Z.jsonl", 0o604),
        ] {
            std::fs::write(data.join(name), b"").unwrap();
            set(&data.join(name), mode);
        }
        set(&data, 0o755);
        set(&data.join("audit"), 0o700);
        let found: Vec<(String, u32, u32)> = open_to_others(&data)
            .into_iter()
            .map(|o| {
                let rel = o
                    .path
                    .strip_prefix(dir.path())
                    .unwrap()
                    .display()
                    .to_string();
                (rel, o.mode, o.want)
            })
            .collect();
        assert_eq!(
            found,
            [
                ("data".to_string(), 0o755, 0o700),
                (
                    "data/audit/audit-20261123T140000.000000Z.jsonl".into(),
                    0o604,
                    0o600
                ),
                ("data/claimdb.lock".into(), 0o640, 0o600),
                ("data/claimdb.sqlite3".into(), 0o644, 0o600),
            ]
        );
        assert!(open_to_others(&dir.path().join("missing")).is_empty());
    }
}
