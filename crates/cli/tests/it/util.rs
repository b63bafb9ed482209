//! Test support: start/stop the real binary, and a small HTTP helper.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_claimdb");

/// Rules that allow every request.
pub(crate) const OPEN_RULES: &str = "rules_version = '2';\nservice cloud.firestore { match /databases/{db}/documents { match /{doc=**} { allow read, write: if true; } } }\n";

/// A running `claimdb serve`.
pub(crate) struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    /// What the server printed on stdout after its first line.
    printed: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts the server on 127.0.0.1:0 over `data_dir` and waits until it is ready.
    pub(crate) fn start(data_dir: &Path) -> Server {
        Server::start_env(data_dir, &[])
    }

    /// [`Server::start`] (rules that allow everything) with extra environment variables
    /// (e.g. `CLAIMDB_STORAGE`).
    pub(crate) fn start_env(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        // Storage tests run with rules that allow everything (kept in the data directory).
        std::fs::create_dir_all(data_dir).unwrap();
        let rules = data_dir.join("test-open.rules");
        std::fs::write(&rules, OPEN_RULES).unwrap();
        let mut all = vec![("CLAIMDB_RULES", rules.to_str().unwrap())];
        all.extend_from_slice(env);
        Server::start_with(data_dir, None, &all)
    }

    /// Starts the server over `data_dir` with a config file and extra environment.
    pub(crate) fn start_with(
        data_dir: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Server {
        let server = Server::spawn(data_dir, config, env);
        server.wait_ready(Duration::from_secs(20));
        server
    }

    /// Polls `/readyz` until it answers 200.
    pub(crate) fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = self.get("/readyz")
                && r.0 == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "server not ready in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server and returns once it listens, without waiting until it is ready.
    pub(crate) fn spawn(data_dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Server {
        Server::spawn_on("127.0.0.1:0", data_dir, config, env)
    }

    /// [`Server::spawn`] on the address `listen` (for a test that must know its port before
    /// the server starts, such as a login callback URL registered at an IdP).
    pub(crate) fn spawn_on(
        listen: &str,
        data_dir: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--listen", listen, "--data-dir"])
            .arg(data_dir)
            .env_remove("CLAIMDB_CONFIG")
            .env_remove("CLAIMDB_RULES")
            .env_remove("CLAIMDB_ADMIN_KEY");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        for (k, v) in env {
            command.env(k, v);
        }
        Server::launch(command, data_dir)
    }

    /// Starts `claimdb emulator --listen 127.0.0.1:0` with extra arguments and waits until it
    /// is ready (its data is temporary unless `--data-dir` is among `args`).
    pub(crate) fn emulator(args: &[&str]) -> Server {
        let mut command = Command::new(BIN);
        command
            .args(["emulator", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "warn");
        let server = Server::launch(command, Path::new(""));
        server.wait_ready(Duration::from_secs(20));
        server
    }

    /// Runs `command` (a server command line), reads the address from its first line and
    /// keeps draining its output.
    fn launch(mut command: Command, data_dir: &Path) -> Server {
        let mut child = command
            .env("CLAIMDB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn claimdb");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("claimdb printed nothing").unwrap();
        let addr = first
            .strip_prefix("claimdb listening on ")
            .or_else(|| first.strip_prefix("claimdb emulator listening on "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_string();
        // Keep draining stdout so the child never blocks on a full pipe.
        let printed = Arc::new(Mutex::new(Vec::new()));
        let keep = printed.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            base: addr,
            data_dir: data_dir.to_path_buf(),
            printed,
        }
    }

    /// The lines printed on stdout after the first, so far.
    pub(crate) fn printed(&self) -> Vec<String> {
        self.printed.lock().unwrap().clone()
    }

    /// Waits (a few seconds at most) for a printed line starting with `prefix`.
    pub(crate) fn wait_printed(&self, prefix: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(line) = self.printed().into_iter().find(|l| l.starts_with(prefix)) {
                return Some(line);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub(crate) fn get(&self, path: &str) -> Result<(u16, String), ureq::Error> {
        request("GET", &self.url(path), None, &[])
    }

    /// `kill -9`: no chance to flush or clean up.
    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends `signal` (e.g. "TERM") and returns the exit status.
    pub(crate) fn stop_with(mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not stop after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// One request; returns (status, body). Transport errors are returned, not panicked on, because
/// the durability test expects them when it kills the server.
pub(crate) fn request(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, String), ureq::Error> {
    let (status, _, text) = request_with_headers(method, url, body, headers)?;
    Ok((status, text))
}

/// Response headers as (lowercase name, value) pairs.
pub(crate) type Headers = Vec<(String, String)>;

/// [`request`], also returning the response headers.
pub(crate) fn request_with_headers(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, Headers, String), ureq::Error> {
    let agent = agent();
    let mut builder = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = match body {
        Some(b) => agent.run(
            builder
                .header("content-type", "application/json")
                .body(b.to_string())
                .unwrap(),
        )?,
        None => agent.run(builder.body(()).unwrap())?,
    };
    let status = response.status().as_u16();
    let response_headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let text = response.into_body().read_to_string()?;
    Ok((status, response_headers, text))
}

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
