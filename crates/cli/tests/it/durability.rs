//! Acknowledged writes survive `kill -9` and a graceful SIGTERM: writers hammer the server, the
//! process dies mid-load, and after a restart every write that got a 2xx is there, intact.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{Server, json, request};

/// Runs `writers` threads doing sequential PUTs until `stop` returns true; returns the
/// acknowledged (path, n) pairs.
fn load(server: &Server, writers: usize, until: Instant) -> Arc<Mutex<Vec<(String, u64)>>> {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for w in 0..writers {
        let base = server.base.clone();
        let acked = acked.clone();
        handles.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while Instant::now() < until {
                let path = format!("load/w{w}-{n}");
                let body = format!(r#"{{"writer":{w},"n":{n},"pad":"{}"}}"#, "x".repeat(200));
                match request("PUT", &format!("{base}/v1/docs/{path}"), Some(&body), &[]) {
                    Ok((status, _)) if status == 200 || status == 201 => {
                        acked.lock().unwrap().push((path, n))
                    }
                    Ok((status, text)) => panic!("write refused with {status}: {text}"),
                    Err(_) => return, // the server is gone
                }
                n += 1;
            }
        }));
    }
    // Detach: the caller kills the server while these run; they end on the transport error.
    std::mem::drop(handles);
    acked
}

fn check_all_present(server: &Server, acked: &[(String, u64)]) {
    assert!(
        !acked.is_empty(),
        "no write was acknowledged before the stop"
    );
    for (path, n) in acked {
        let (status, text) = server.get(&format!("/v1/docs/{path}")).unwrap();
        assert_eq!(
            status, 200,
            "acknowledged write {path} lost after restart: {text}"
        );
        assert_eq!(json(&text)["data"]["n"], *n, "{path} has the wrong content");
    }
}

#[test]
fn acknowledged_writes_survive_kill_9_mid_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let acked = load(&server, 8, Instant::now() + Duration::from_secs(60));
    // Kill while writes are in flight: wait for a good number of acknowledgements first.
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    server.kill9();
    // Let writer threads observe the dead socket; anything acknowledged after this is impossible.
    std::thread::sleep(Duration::from_millis(200));
    let acked = acked.lock().unwrap().clone();
    let server = Server::start(dir.path());
    check_all_present(&server, &acked);
    check_all_audited(dir.path(), &acked);
}

/// Every acknowledged write has its `allow` decision in the audit log (the events of writes
/// are committed with them, in the store's journal, and moved to the log at startup).
fn check_all_audited(data_dir: &std::path::Path, acked: &[(String, u64)]) {
    let mut allowed = std::collections::HashSet::new();
    for entry in std::fs::read_dir(data_dir.join("audit")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        // A torn last line (the kill) is not JSON: skipped, as the reader does.
        for line in text.lines() {
            if let Ok(event) = serde_json::from_str::<serde_json::Value>(line)
                && event["decision"] == "allow"
                && let Some(path) = event["path"].as_str()
            {
                allowed.insert(path.to_string());
            }
        }
    }
    for (path, _) in acked {
        assert!(
            allowed.contains(path.as_str()),
            "acknowledged write {path} has no audit event after the crash"
        );
    }
}

#[test]
fn sigterm_stops_gracefully_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let acked = load(&server, 4, Instant::now() + Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let data_dir = server.data_dir.clone();
    let status = server.stop_with("TERM");
    assert!(status.success(), "claimdb exited with {status} on SIGTERM");
    std::thread::sleep(Duration::from_millis(200));
    let acked = acked.lock().unwrap().clone();
    let server = Server::start(&data_dir);
    check_all_present(&server, &acked);
}
