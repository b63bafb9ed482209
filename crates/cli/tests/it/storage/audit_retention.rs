//! Audit retention by size and age (`audit_max_bytes`, `audit_retention_days`), never by the
//! number of restarts; `claimdb audit` reads every retained file; `/metrics` says what is kept.

use std::time::{Duration, SystemTime};

use super::claimdb;
use crate::util::{Server, request};

/// Each start opens a new audit file and only the newest 20 were kept: after 101 restarts the
/// audit lines of 218,391 committed writes were gone from a 16 MB directory. 31 restarts under
/// the size bound must keep every line, `claimdb audit` must read them all, and `/metrics` must
/// say what is kept and by which limits.
#[test]
fn thirty_one_restarts_keep_every_audit_line() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CLAIMDB_AUDIT_MAX_BYTES", "50000000")];
    let mut written = 0;
    for run in 0..31 {
        let server = Server::start_env(dir.path(), &env);
        for i in 0..2 {
            let (status, _) = request(
                "PUT",
                &server.url(&format!("/v1/docs/runs/r{run}-{i}")),
                Some("{}"),
                &[],
            )
            .unwrap();
            assert_eq!(status, 201);
            written += 1;
        }
        if run < 30 {
            assert!(server.stop_with("TERM").success());
            continue;
        }
        let (status, metrics) = server.get("/metrics").unwrap();
        assert_eq!(status, 200);
        let gauge = |name: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"))
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(gauge("claimdb_audit_retained_files"), 31.0);
        assert!(gauge("claimdb_audit_retained_bytes") > 0.0);
        assert_eq!(gauge("claimdb_audit_max_bytes"), 50_000_000.0);
        assert_eq!(gauge("claimdb_audit_max_age_seconds"), 90.0 * 86_400.0);
        let oldest = gauge("claimdb_audit_oldest_event_timestamp_seconds");
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(oldest > now - 3600.0 && oldest < now, "{oldest}");
        assert!(server.stop_with("TERM").success());
    }
    let (code, stdout, stderr) = claimdb(
        &["audit", "--path", "runs", "--json", "--limit", "100000"],
        dir.path(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        written,
        "audit lines were lost:\n{stdout}"
    );
}

/// `audit_retention_days`: a file whose events are all older than the limit is deleted at start
/// (here: a run that ended 100 days ago); a younger one stays.
#[test]
fn audit_files_older_than_audit_retention_days_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    let day = Duration::from_secs(86_400);
    for (id, days) in [("old", 100u32), ("young", 10)] {
        let when = SystemTime::now() - day * days;
        let stamp = claimdb_audit::format_time(when);
        // audit-YYYYMMDDTHHMMSS.ffffffZ.jsonl
        let name = format!("audit-{}.jsonl", stamp.replace(['-', ':'], ""));
        let path = audit.join(name);
        std::fs::write(
            &path,
            format!(
                "{{\"time\":\"{stamp}\",\"request_id\":\"{id}\",\"uid\":null,\"provider\":null,\
                 \"method\":\"get\",\"path\":\"p/{id}\",\"decision\":\"allow\",\"rule\":null,\
                 \"reason\":null}}\n"
            ),
        )
        .unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(when + Duration::from_secs(1)).unwrap();
    }
    let server = Server::start_env(dir.path(), &[("CLAIMDB_AUDIT_RETENTION_DAYS", "30")]);
    let (code, stdout, stderr) = claimdb(&["audit", "--path", "p", "--json"], dir.path());
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("\"young\"") && !stdout.contains("\"old\""),
        "{stdout}"
    );
    drop(server);
}
