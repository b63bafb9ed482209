//! The outside programs some end-to-end tests drive, fetched once through their ordinary
//! clients: npm packages (the Firebase SDK, oidc-provider, esbuild, playwright-core) and PyPI
//! packages (Google's Firestore client), installed under the target directory per pinned set,
//! and Debian's Chromium (`apt-get`).
//!
//! It does not decide what a test does without them: a test that can run without the tool
//! calls [`skipped`] (a loud banner, and a failure with `CI=true`); one that cannot panics.

use std::path::Path;
use std::process::Command;

/// Installs `packages` (each `name@version`, pinned) with npm into one directory under the
/// target directory, once: later calls, in this process or another, find it there. Returns
/// the directory, whose `node_modules` resolves imports of scripts written into it; `Err` says
/// why npm could not install them.
pub(crate) fn npm_install(packages: &[&str]) -> Result<String, String> {
    // Tests run on threads of one process, so the install directory's name (unique per process)
    // does not keep two tests of this process apart: one installs at a time.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let name: Vec<String> = packages.iter().map(|p| p.replace('/', "_")).collect();
    let dir = format!("{}/npm-{}", env!("CARGO_TARGET_TMPDIR"), name.join("+"));
    let installed = |dir: &str| {
        packages.iter().all(|p| {
            // `@scope/name@1.2.3` → `@scope/name`.
            let at = p.rfind('@').filter(|&i| i > 0).unwrap_or(p.len());
            Path::new(&format!("{dir}/node_modules/{}/package.json", &p[..at])).exists()
        })
    };
    if installed(&dir) {
        return Ok(dir);
    }
    // Installed beside, then renamed into place: other test processes may be installing too.
    let tmp = format!("{dir}.tmp{}", std::process::id());
    std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {tmp}: {e}"))?;
    std::fs::write(
        format!("{tmp}/package.json"),
        r#"{"private":true,"type":"module"}"#,
    )
    .map_err(|e| format!("cannot write {tmp}/package.json: {e}"))?;
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .args(packages)
        .current_dir(&tmp)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!(
            "npm could not install {} (Node 20 + npm and the npm registry are required): \
             {status:?}",
            packages.join(" ")
        ));
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process got there first.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if installed(&dir) {
        Ok(dir)
    } else {
        Err(format!("{dir} lacks a package after npm install"))
    }
}

/// Installs `package` (`name==version`, pinned) with pip into one directory under the target
/// directory, once; returns the directory for `PYTHONPATH`. `probe` is a Python import line
/// that succeeds once it is installed. `Err` says why pip could not install it.
pub(crate) fn pip_install(package: &str, probe: &str) -> Result<String, String> {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = format!(
        "{}/pydeps/{}",
        env!("CARGO_TARGET_TMPDIR"),
        package.replace("==", "-")
    );
    let works = |dir: &str| {
        Command::new("python3")
            .args(["-c", probe])
            .env("PYTHONPATH", dir)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works(&dir) {
        return Ok(dir);
    }
    // Installed beside, then renamed into place: other test processes may be installing too.
    let tmp = format!("{dir}.tmp{}", std::process::id());
    let _ = std::fs::remove_dir_all(&tmp);
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--target", &tmp, package])
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(format!(
            "pip could not install {package} (python3 with pip and PyPI are required): {status:?}"
        ));
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if works(&dir) {
        Ok(dir)
    } else {
        Err(format!("{dir}: `{probe}` fails after pip install"))
    }
}

/// Debian's Chromium: `/usr/bin/chromium`, installed with `apt-get` when missing (as root;
/// `apt-get update` first only if the first attempt fails). `Err` says why it cannot be had.
pub(crate) fn chromium() -> Result<&'static str, String> {
    const CHROMIUM: &str = "/usr/bin/chromium";
    if Path::new(CHROMIUM).exists() {
        return Ok(CHROMIUM);
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    eprintln!("installing Debian's chromium with apt-get (once)");
    let install = ["install", "-y", "chromium"];
    let installed = apt(&install) || (apt(&["update"]) && apt(&install));
    if !installed {
        return Err(format!(
            "{CHROMIUM} is missing and `apt-get install -y chromium` failed (it needs root and \
             Debian's package archive)"
        ));
    }
    if Path::new(CHROMIUM).exists() {
        Ok(CHROMIUM)
    } else {
        Err(format!(
            "apt-get installed chromium, but {CHROMIUM} is missing"
        ))
    }
}

/// A test that cannot run here: with `CI=true` it fails with `why`; otherwise it prints a
/// SKIPPED banner (so nobody mistakes the pass for a run) and the caller returns.
pub(crate) fn skipped(test: &str, why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} cannot run (CI=true): {why}"
    );
    eprintln!(
        "\n=============== SKIPPED: {test} ===============\n{why}\n\
         ==============================================================\n"
    );
}
