//! Running Python for the tests that check claimdb's tokens against an independent JWT
//! implementation (PyJWT): the system's `python3` if it can `import jwt`, otherwise one with
//! PyJWT installed once from PyPI under the target directory. It never skips: when PyJWT cannot
//! be had, the test fails with the install command.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// A `python3` command that can `import jwt`: the system's, or one with PyJWT installed (once,
/// from PyPI) under the target directory on its `PYTHONPATH`.
fn python() -> Command {
    static PYTHONPATH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let probe = |path: Option<&str>| {
        let mut c = Command::new("python3");
        c.args(["-c", "import jwt, cryptography"]);
        if let Some(p) = path {
            c.env("PYTHONPATH", p);
        }
        matches!(c.output(), Ok(o) if o.status.success())
    };
    let path = PYTHONPATH.get_or_init(|| {
        if probe(None) {
            return None;
        }
        let dir = format!("{}/pydeps", env!("CARGO_TARGET_TMPDIR"));
        if !probe(Some(&dir)) {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--target", &dir, "PyJWT[crypto]==2.*"])
                .status();
            assert!(
                matches!(status, Ok(s) if s.success()) && probe(Some(&dir)),
                "PyJWT is required for the independent-implementation tests and could not be \
                 installed: run `python3 -m pip install 'PyJWT[crypto]==2.*'` ({status:?})"
            );
        }
        Some(dir)
    });
    let mut c = Command::new("python3");
    if let Some(p) = path {
        c.env("PYTHONPATH", p);
    }
    c
}

/// Runs a Python `script` (with PyJWT importable) on `stdin`; returns its standard output.
pub(crate) fn run_python(script: &str, stdin: &str) -> String {
    let mut child = python()
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
