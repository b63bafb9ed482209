//! `claimdb audit` end to end: events written with the engine's audit library into a temporary
//! data directory, read back by the real binary.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use claimdb_audit::{AuditConfig, AuditEvent, AuditLog, Decision, audit_dir};

use crate::util::BIN;

fn event(n: u64, ago: Duration, uid: &str, path: &str, decision: Decision) -> AuditEvent {
    AuditEvent {
        time: SystemTime::now() - ago,
        request_id: format!("req-{n}"),
        uid: Some(uid.to_string()),
        provider: Some("auth0".into()),
        method: "update".into(),
        path: path.to_string(),
        decision,
        rule: Some(format!("firestore.rules:{n}:5")),
        reason: (decision == Decision::Deny)
            .then(|| "the token has no claim `moderator`".to_string()),
    }
}

/// Writes the fixture: three hours of decisions by alice and bob, one with a hostile uid.
fn write_fixture(data_dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let log = AuditLog::open(&audit_dir(data_dir), AuditConfig::default()).unwrap();
        let h = |n: u64| Duration::from_secs(n * 3600);
        for e in [
            event(1, h(3), "alice", "movies/m1", Decision::Deny),
            event(2, h(2), "bob", "movies/m2", Decision::Allow),
            event(
                3,
                Duration::from_secs(600),
                "alice",
                "movies2/x",
                Decision::Deny,
            ),
            event(
                4,
                Duration::from_secs(300),
                "bob",
                "movies/m3",
                Decision::Deny,
            ),
            event(
                5,
                Duration::from_secs(60),
                "evil\u{1b}[2J",
                "movies/m4",
                Decision::Deny,
            ),
        ] {
            log.record_durable(e).await.unwrap();
        }
        log.close().await.unwrap();
    });
}

fn audit(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("audit")
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CLAIMDB_CONFIG")
        .env_remove("CLAIMDB_DATA_DIR")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// The request ids in JSON-lines output, in order.
fn ids(out: &Output) -> Vec<String> {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    stdout(out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["request_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn audit_prints_a_table_of_the_newest_decisions_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path());
    let out = audit(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    for header in [
        "TIME", "DECISION", "UID", "METHOD", "PATH", "RULE", "REASON",
    ] {
        assert!(lines[0].contains(header), "{}", lines[0]);
    }
    assert!(lines[1].contains("deny") && lines[1].contains("alice"));
    assert!(lines[1].contains("movies/m1") && lines[1].contains("firestore.rules:1:5"));
    assert!(lines[1].ends_with("the token has no claim `moderator`"));
    assert!(lines[2].contains("allow") && lines[2].ends_with(" -"));
    // Columns line up: every row has PATH at the header's offset.
    let path_at = lines[0].find("PATH").unwrap();
    assert!(lines[1][path_at..].starts_with("movies/m1"), "{text}");
    // A uid carrying a terminal escape is shown escaped, never raw.
    assert!(!text.contains('\u{1b}'));
    assert!(lines[5].contains("evil\\u{1b}[2J"), "{}", lines[5]);
    // --limit keeps the newest.
    let out = audit(dir.path(), &["--limit", "2", "--json"]);
    assert_eq!(ids(&out), ["req-4", "req-5"]);
}

#[test]
fn audit_filters_deny_since_until_uid_and_path() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path());
    let d = dir.path();
    assert_eq!(
        ids(&audit(d, &["--deny", "--json"])),
        ["req-1", "req-3", "req-4", "req-5"]
    );
    assert_eq!(
        ids(&audit(d, &["--deny", "--since", "1h", "--json"])),
        ["req-3", "req-4", "req-5"]
    );
    assert_eq!(
        ids(&audit(d, &["--since", "150m", "--until", "30m", "--json"])),
        ["req-2"]
    );
    assert_eq!(
        ids(&audit(d, &["--uid", "alice", "--json"])),
        ["req-1", "req-3"]
    );
    assert_eq!(
        ids(&audit(d, &["--path", "movies", "--json"])),
        ["req-1", "req-2", "req-4", "req-5"]
    );
    let since = "2000-01-01T00:00:00Z";
    assert_eq!(ids(&audit(d, &["--since", since, "--json"])).len(), 5);
    // JSON lines are the log's own lines, with the hostile uid escaped by JSON.
    let out = audit(d, &["--uid", "evil\u{1b}[2J", "--json"]);
    let text = stdout(&out);
    assert!(text.contains("\"uid\":\"evil\\u001b[2J\""), "{text}");
    // Nothing matching is not an error.
    let out = audit(d, &["--uid", "nobody"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("no audit events match"));
}

#[test]
fn audit_usage_and_operational_errors_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    write_fixture(dir.path());
    let out = audit(dir.path(), &["--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--since") && err.contains("neither a duration"),
        "{err}"
    );
    let out = audit(dir.path(), &["--until", "5y"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown unit"), "{}", stderr(&out));
    let out = audit(dir.path(), &["--limit", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let out = audit(dir.path(), &["--since", "1h", "--until", "2h"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--since must be before --until"));
    // A data directory without an audit log.
    let empty = tempfile::tempdir().unwrap();
    let out = audit(empty.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("no audit log at") && err.contains("audit"),
        "{err}"
    );
    // Corruption in the middle of a file names the file and line.
    let file = std::fs::read_dir(audit_dir(dir.path()))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("garbage\n{text}")).unwrap();
    let out = audit(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(":1: "), "{}", stderr(&out));
}

#[test]
fn audit_finds_the_data_dir_through_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_fixture(&data);
    let config = dir.path().join("claimdb.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["audit", "--json", "--uid", "bob", "--config"])
        .arg(&config)
        .env_remove("CLAIMDB_DATA_DIR")
        .output()
        .unwrap();
    assert_eq!(ids(&out), ["req-2", "req-4"]);
}
