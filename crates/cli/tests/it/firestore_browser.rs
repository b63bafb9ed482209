//! The Firebase lite SDK in a real browser: the scenario of `js/firestore_lite_scenario.mjs`
//! (the one `firestore_sdk.rs` runs in Node) bundled with esbuild and run in Debian's Chromium,
//! driven by playwright-core, against the real binary — from a page on another origin than
//! claimdb's, so every SDK request is a CORS request with a preflight, allowed because that
//! origin is in `cors_origins`. The same page from an origin not listed must be refused by the
//! browser itself. Console errors are collected (only the expected 401/403 answers of the
//! denied steps may appear), and a screenshot of the page is kept at
//! `<target>/tmp/firestore-browser.png`.
//!
//! npm `firebase`, `esbuild` and `playwright-core` (pinned) are installed once under the target
//! directory, and Debian's `chromium` with apt-get when `/usr/bin/chromium` is missing. Without
//! them the test prints a SKIPPED banner and passes, except with `CI=true`, where it fails.

use std::process::Command;
use std::time::Instant;

use axum::http::header;
use axum::routing::get;
use serde_json::Value;

use crate::external::{chromium, npm_install, skipped};
use crate::firestore_sdk::{FIREBASE, SCENARIO, SdkWorld, write_beside_modules};

const ESBUILD: &str = "esbuild@0.28.2";
const PLAYWRIGHT: &str = "playwright-core@1.65.2";

/// The bundle's entry: the scenario, shown on the page as it runs, as `globalThis.claimdb`.
const ENTRY: &str = r#"
import { scenario, probe } from './SCENARIO_FILE';
const log = (text, ok) => {
  const li = document.createElement('li');
  li.textContent = text;
  li.style.color = ok ? 'green' : 'crimson';
  document.getElementById('log').append(li);
};
globalThis.claimdb = {
  async scenario(params) {
    document.getElementById('server').textContent = `http://${params.host}:${params.port}`;
    try {
      const result = await scenario(params);
      for (const check of result.checks) log(`✓ ${check}`, true);
      log('ALL CHECKS PASSED', true);
      return result;
    } catch (e) {
      log(`✗ ${e.message}`, false);
      throw e;
    }
  },
  probe,
};
"#;

const INDEX: &str = r#"<!doctype html>
<html lang="en"><meta charset="utf-8"><link rel="icon" href="data:,"><title>claimdb: Firebase lite SDK in the browser</title>
<body style="font: 16px system-ui, sans-serif; margin: 2em">
<h1>Firebase lite SDK → claimdb</h1>
<p>This page's origin: <code id="origin"></code>, claimdb's: <code id="server"></code></p>
<ul id="log"></ul>
<script>document.getElementById('origin').textContent = location.origin;</script>
<script src="/bundle.js"></script>
</body></html>
"#;

const DRIVER: &str = include_str!("js/playwright_drive.mjs");

/// The page and its bundle, served on two loopback ports: two origins.
struct Site {
    allowed: String,
    denied: String,
}

impl Site {
    fn start(bundle: Vec<u8>) -> Site {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let app = axum::Router::new()
                    .route(
                        "/",
                        get(|| async { ([(header::CONTENT_TYPE, "text/html")], INDEX) }),
                    )
                    .route(
                        "/bundle.js",
                        get(move || async move {
                            ([(header::CONTENT_TYPE, "text/javascript")], bundle)
                        }),
                    );
                let mut origins = Vec::new();
                let mut serving = Vec::new();
                for _ in 0..2 {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    origins.push(format!("http://{}", listener.local_addr().unwrap()));
                    serving.push(tokio::spawn(
                        axum::serve(listener, app.clone()).into_future(),
                    ));
                }
                tx.send(origins).unwrap();
                for s in serving {
                    let _ = s.await;
                }
            });
        });
        let mut origins = rx.recv().unwrap();
        let denied = origins.pop().unwrap();
        let allowed = origins.pop().unwrap();
        Site { allowed, denied }
    }
}

/// esbuild: the scenario and [`ENTRY`] as one browser script.
fn bundle(dir: &str) -> Vec<u8> {
    let scenario = write_beside_modules(dir, "scenario", SCENARIO);
    let entry = write_beside_modules(
        dir,
        "browser-entry",
        &ENTRY.replace("SCENARIO_FILE", &scenario),
    );
    let out = format!("{dir}/bundle-{}.js", std::process::id());
    let output = Command::new(format!("{dir}/node_modules/.bin/esbuild"))
        .arg(&entry)
        .args(["--bundle", "--format=iife", "--platform=browser"])
        .arg(format!("--outfile={out}"))
        .args(["--log-level=warning"])
        .current_dir(dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("{dir}/{scenario}"));
    let _ = std::fs::remove_file(format!("{dir}/{entry}"));
    assert!(
        output.status.success(),
        "esbuild failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    bytes
}

#[test]
fn the_firebase_lite_sdk_runs_in_chromium_from_another_origin() {
    let started = Instant::now();
    let dir = match npm_install(&[FIREBASE, ESBUILD, PLAYWRIGHT]) {
        Ok(dir) => dir,
        Err(why) => return skipped("the Firebase SDK browser test", &why),
    };
    let chromium = match chromium() {
        Ok(path) => path,
        Err(why) => return skipped("the Firebase SDK browser test", &why),
    };
    let installed = started.elapsed();
    let site = Site::start(bundle(&dir));
    let world = SdkWorld::start(&format!("cors_origins = [\"{}\"]", site.allowed));
    assert_ne!(
        site.allowed, world.server.base,
        "the page must be cross-origin"
    );

    let driver = write_beside_modules(&dir, "drive", DRIVER);
    let screenshot = format!("{}/firestore-browser.png", env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::remove_file(&screenshot);
    let output = Command::new("node")
        .arg(format!("{dir}/{driver}"))
        .args([
            chromium,
            &format!("{}/", site.allowed),
            &format!("{}/", site.denied),
            &screenshot,
            &world.params().to_string(),
        ])
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("{dir}/{driver}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| {
            panic!(
                "the driver printed no result ({}):\n{stdout}\n{stderr}",
                output.status
            )
        });
    let context = format!("{report:#}\n{stderr}");
    assert!(
        output.status.success() && report.get("driverError").is_none(),
        "the driver failed ({}): {context}",
        output.status
    );

    // The scenario passed in the page, every step.
    assert_eq!(report["origin"], site.allowed.as_str(), "{context}");
    assert_eq!(report["run"]["ok"], true, "{context}");
    let checks = report["run"]["value"]["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 11, "{context}");
    // Chromium sent CORS preflights to claimdb (the SDK's requests carry Authorization and
    // x-goog-* headers), and claimdb allowed them.
    let preflights: Vec<&str> = report["preflights"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["page"] == "allowed")
        .filter_map(|p| p["url"].as_str())
        .collect();
    for rpc in [
        "documents:commit",
        "documents:batchGet",
        ":runQuery",
        ":runAggregationQuery",
    ] {
        assert!(
            preflights
                .iter()
                .any(|u| u.starts_with(&world.server.base) && u.contains(rpc)),
            "no preflight for {rpc}: {context}"
        );
    }
    // Every answer of 400 or above was an expected one — the five denials by the rules (403),
    // the forged token (401) and transaction commits that lost a race and were retried (400,
    // FAILED_PRECONDITION) — and never a preflight's; the console says nothing else.
    let failed: Vec<(u64, &str, &str)> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["page"] == "allowed")
        .map(|f| {
            (
                f["status"].as_u64().unwrap(),
                f["type"].as_str().unwrap_or(""),
                f["url"].as_str().unwrap_or(""),
            )
        })
        .collect();
    for (status, kind, url) in &failed {
        assert!(
            *kind != "Preflight"
                && (*status == 401
                    || *status == 403
                    || (*status == 400 && url.contains("documents:commit"))),
            "unexpected answer {status} ({kind}) from {url}: {context}"
        );
    }
    let count = |want: u64| failed.iter().filter(|(s, _, _)| *s == want).count();
    assert_eq!((count(403), count(401)), (5, 1), "{context}");
    assert_eq!(report["pageErrors"], Value::Array(vec![]), "{context}");
    for e in report["console"].as_array().unwrap() {
        let text = e["text"].as_str().unwrap_or("");
        assert!(
            e["page"] != "allowed"
                || ["400", "401", "403"]
                    .iter()
                    .any(|s| text.starts_with(&format!(
                        "Failed to load resource: the server responded with a status of {s}"
                    ))),
            "unexpected console error {text:?}: {context}"
        );
    }

    // The same page from an origin claimdb does not allow: the browser refuses the read.
    assert_eq!(report["deniedOrigin"], site.denied.as_str(), "{context}");
    assert_eq!(report["probe"]["ok"], false, "{context}");
    assert!(
        report["console"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["page"] == "denied"
                && e["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("CORS policy"))),
        "the browser did not report a CORS refusal: {context}"
    );

    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 1_000);
    world.check_written();
    eprintln!(
        "browser test: {:.1} s (installs {:.1} s); screenshot {screenshot}",
        started.elapsed().as_secs_f64(),
        installed.as_secs_f64()
    );
}
