//! The data directory end to end: owner-only files, damage found and contained, the
//! write-ahead log's bound, and audit retention — against the real binary.

mod audit_retention;
mod damage;
mod files;
mod wal;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{BIN, OPEN_RULES, Server, request};

/// Runs `claimdb ARGS --data-dir DIR`; returns (exit code, stdout, stderr).
pub(crate) fn claimdb(args: &[&str], data_dir: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("CLAIMDB_CONFIG")
        .env_remove("CLAIMDB_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `claimdb serve` over `data_dir` (open rules) with its stderr captured line by line.
pub(crate) struct Captured {
    pub child: Child,
    pub stderr: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Captured {
    pub(crate) fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Captured {
        std::fs::create_dir_all(data_dir).unwrap();
        let rules = data_dir.join("test-open.rules");
        std::fs::write(&rules, OPEN_RULES).unwrap();
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env_remove("CLAIMDB_CONFIG")
            .env_remove("CLAIMDB_ADMIN_KEY")
            .env("CLAIMDB_RULES", &rules)
            .env("CLAIMDB_LOG", "warn");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let keep = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        Captured {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// Kills the process and returns everything it wrote on stderr.
    pub(crate) fn stop(&mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the process exits (failing after `within`), returning its exit code.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.reader.take() {
                    reader.join().unwrap();
                }
                return status.code();
            }
            assert!(Instant::now() < deadline, "claimdb serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until stderr has a line containing every one of `words` (failing after 20 s).
    pub(crate) fn wait_line(&self, words: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| words.iter().all(|w| l.contains(w)))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {words:?} on stderr:\n{}",
                self.stderr.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` documents of about 400 bytes in `coll`, written in batches of 250.
pub(crate) fn fill(server: &Server, coll: &str, n: usize) {
    for start in (0..n).step_by(250) {
        let writes: Vec<serde_json::Value> = (start..(start + 250).min(n))
            .map(|i| {
                serde_json::json!({"op": "set", "path": format!("{coll}/d{i:06}"),
                    "data": {"n": i, "text": "x".repeat(400)}})
            })
            .collect();
        let body = serde_json::json!({ "writes": writes }).to_string();
        let (status, text) = request("POST", &server.url("/v1/batch"), Some(&body), &[]).unwrap();
        assert_eq!(status, 200, "{text}");
    }
}

/// Overwrites the middle third of a database file with garbage, page-aligned (as a failing
/// disk or a stray write would), leaving its header intact.
pub(crate) fn corrupt_middle(file: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(file).unwrap().len();
    let page = 4096;
    let (start, end) = (len / 3 / page * page, len * 2 / 3 / page * page);
    assert!(
        end > start + page,
        "the database is too small to corrupt ({len} bytes)"
    );
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let garbage: Vec<u8> = (start..end)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(start)).unwrap();
    f.write_all(&garbage).unwrap();
    f.sync_all().unwrap();
}

/// The file's bytes (`None` if it does not exist): compared before and after, to prove that
/// nothing was written.
pub(crate) fn contents(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}
