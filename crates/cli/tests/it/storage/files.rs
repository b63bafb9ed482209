//! Every file and directory `serve` and `export` create is owner-only, and `serve` warns about
//! claimdb files an earlier version (or an operator) left readable by others.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Captured, claimdb};
use crate::util::{OPEN_RULES, Server, request};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Every entry below `dir` (recursively) but the rules file the test harness writes itself.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().is_some_and(|n| n == "test-open.rules") {
            continue;
        }
        if path.is_dir() {
            out.extend(entries(&path));
        }
        out.push(path);
    }
    out
}

fn assert_owner_only(data_dir: &Path) {
    assert_eq!(mode(data_dir), 0o700, "{}", data_dir.display());
    let all = entries(data_dir);
    for path in &all {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), want, "{}", path.display());
    }
    for name in [
        "claimdb.sqlite3",
        "claimdb.sqlite3-wal",
        "claimdb.sqlite3-shm",
        "claimdb.lock",
        "audit",
        "issuer",
    ] {
        assert!(
            all.contains(&data_dir.join(name)),
            "no {name} in the data directory"
        );
    }
}

/// Documents, sessions and refresh records were readable by any local user: the data directory
/// was 0755 and `claimdb.sqlite3`, `-wal` and `-shm` 0644. Everything `serve` creates — the
/// directory, the database and its companions, the lock file, the audit log, the issuer's keys
/// — must be owner-only, and so must an export.
#[test]
fn serve_and_export_create_only_owner_only_files() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    // The rules live outside: the data directory must be claimdb's own creation.
    let rules = parent.path().join("open.rules");
    std::fs::write(&rules, OPEN_RULES).unwrap();
    let server = Server::start_with(&dir, None, &[("CLAIMDB_RULES", rules.to_str().unwrap())]);
    for i in 0..20 {
        let (status, _) = request(
            "PUT",
            &server.url(&format!("/v1/docs/c/d{i}")),
            Some("{\"a\": 1}"),
            &[],
        )
        .unwrap();
        assert_eq!(status, 201);
    }
    assert_owner_only(&dir);
    assert!(server.stop_with("TERM").success());
    assert_owner_only(&dir);
    let out = parent.path().join("backup.jsonl");
    let (code, _, stderr) = claimdb(&["export", "-o", out.to_str().unwrap()], &dir);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(mode(&out), 0o600, "a new export file");
    // An existing file given to --output is tightened too: it now holds every document.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, stderr) = claimdb(&["export", "-o", out.to_str().unwrap()], &dir);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(mode(&out), 0o600, "an existing export file");
    let backup = std::fs::read_to_string(&out).unwrap();
    let documents = backup
        .lines()
        .filter(|l| l.contains("\"path\":\"c/d"))
        .count();
    assert_eq!(documents, 20, "{backup}");
}

/// Data directories created before files were owner-only keep their modes (claimdb does not
/// change an operator's choice), but each such file gets one warning at start naming the fix.
#[test]
fn serve_warns_about_each_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);
    assert!(server.stop_with("TERM").success());
    let set = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    set(&data, 0o755);
    set(&data.join("claimdb.sqlite3"), 0o644);
    set(&data.join("claimdb.lock"), 0o640);
    let mut server = Captured::spawn(&data, &[]);
    let d = data.display().to_string();
    for (path, want) in [
        (d.clone(), "chmod 700"),
        (format!("{d}/claimdb.sqlite3"), "chmod 600"),
        (format!("{d}/claimdb.lock"), "chmod 600"),
    ] {
        let line = server.wait_line(&[&format!("{want} {path}`")]);
        assert!(
            line.contains("WARN") && line.contains("other local users"),
            "{line}"
        );
    }
    // One line per path; besides those above, only the `-wal`/`-shm` files SQLite derives from
    // the database file's mode may be named.
    let lines = server.stop();
    let mut warned: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            Some(
                l.split("run `chmod ")
                    .nth(1)?
                    .split_once(' ')?
                    .1
                    .to_string(),
            )
        })
        .collect();
    let count = warned.len();
    warned.sort();
    warned.dedup();
    assert_eq!(
        warned.len(),
        count,
        "a path was named twice:\n{}",
        lines.join("\n")
    );
    let named = [
        d.clone(),
        format!("{d}/claimdb.sqlite3"),
        format!("{d}/claimdb.lock"),
    ];
    for path in &warned {
        let path = path.trim_end_matches('`');
        assert!(
            named.iter().any(|n| n == path) || path.starts_with(&format!("{d}/claimdb.sqlite3-")),
            "{path}"
        );
    }
}
