//! The web console (`/console/`) in a real browser: `js/console_drive.mjs` drives Debian's
//! Chromium with playwright-core against the real binary, as an operator — sign in with the admin
//! key, create a typed document as user `ada`, see another client's writes appear without a
//! reload, be denied a read, find the denial in the audit log and open it in the playground, fail
//! to publish rules that do not compile (the error at line and column), publish fixed rules and
//! see the same request allowed, set a custom claim, run a rules test file, read the health page,
//! sign out. Then this test checks the result on the server side (the document's typed values,
//! the rules version, the claim, the audit line), that the page logged no console error beyond
//! the refusals the scenario provokes, and that every control had an accessible name.
//! Screenshots of every step are kept under `<target>/tmp/console-browser/`.
//!
//! npm `playwright-core` (pinned) is installed once under the target directory, and Debian's
//! `chromium` with apt-get when `/usr/bin/chromium` is missing. Without them the test prints a
//! SKIPPED banner and passes, except with `CI=true`, where it fails.

use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::external::{chromium, npm_install, skipped};
use crate::firestore_sdk::write_beside_modules;
use crate::util::{Server, json as parse, request};

const PLAYWRIGHT: &str = "playwright-core@1.65.2";
const DRIVER: &str = include_str!("js/console_drive.mjs");
const KEY: &str = "console-browser-admin-key-0123456789";

const RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{db}/documents {
    match /notes/{id} {
      allow read, write: if request.auth != null;
    }
    match /secret/{id} {
      allow read: if request.auth.token.level >= 2;
    }
  }
}
";

fn admin(server: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, text) = request(
        method,
        &server.url(path),
        body,
        &[("x-claimdb-admin-key", KEY)],
    )
    .unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn step<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .map(|s| &s["value"])
        .unwrap_or_else(|| panic!("no step {name}: {report:#}"))
}

#[test]
fn an_operator_uses_the_console_in_chromium() {
    let started = Instant::now();
    let dir = match npm_install(&[PLAYWRIGHT]) {
        Ok(dir) => dir,
        Err(why) => return skipped("the console browser test", &why),
    };
    let chromium = match chromium() {
        Ok(path) => path,
        Err(why) => return skipped("the console browser test", &why),
    };
    let home = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &home.path().join("data"),
        None,
        &[("CLAIMDB_ADMIN_KEY", KEY)],
    );
    let (status, body) = admin(
        &server,
        "PUT",
        "/v1/admin/rules",
        Some(&json!({"source": RULES}).to_string()),
    );
    assert_eq!((status, &body["version"]), (200, &json!(1)), "{body}");
    let (status, minted) = admin(&server, "POST", "/v1/admin/users/writer/tokens", Some("{}"));
    assert_eq!(status, 200, "{minted}");

    let shots = format!("{}/console-browser", env!("CARGO_TARGET_TMPDIR"));
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let driver = write_beside_modules(&dir, "console-drive", DRIVER);
    let params = json!({
        "base": server.base,
        "key": KEY,
        "writerToken": minted["id_token"],
        "shots": shots,
    });
    let output = Command::new("node")
        .arg(format!("{dir}/{driver}"))
        .args([chromium, &params.to_string()])
        .current_dir(&dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("{dir}/{driver}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|text| serde_json::from_str(text).unwrap())
        .unwrap_or_else(|| {
            panic!(
                "the driver printed no result ({}):\n{stdout}\n{stderr}",
                output.status
            )
        });
    let context = format!("{report:#}\n{stderr}\nscreenshots: {shots}");
    assert!(
        output.status.success() && report.get("driverError").is_none(),
        "the driver failed ({}): {context}",
        output.status
    );

    // Signing in: the skip link comes first, a wrong key is refused, the right one kept.
    let signin = step(&report, "signin");
    assert_eq!(signin["focused"], "Admin key", "{context}");
    assert_eq!(signin["skip"], "Skip to content", "{context}");
    assert_eq!(signin["afterSkip"], "main", "{context}");
    assert!(
        signin["refused"]
            .as_str()
            .unwrap()
            .contains("the admin key is not valid"),
        "{context}"
    );
    assert_eq!(signin["kept"], true, "{context}");
    assert!(
        step(&report, "act-as")
            .as_str()
            .unwrap()
            .contains("user ada"),
        "{context}"
    );

    // The document, as written through the console's typed editor, read back through the API.
    let token = {
        let (status, minted) = admin(&server, "POST", "/v1/admin/users/reader/tokens", Some("{}"));
        assert_eq!(status, 200);
        minted["id_token"].as_str().unwrap().to_string()
    };
    let bearer = format!("Bearer {token}");
    let (status, text) = request(
        "GET",
        &server.url("/v1/docs/notes/n1"),
        None,
        &[("authorization", &bearer)],
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    let doc = parse(&text);
    let data = &doc["data"];
    assert_eq!(data["title"], "changed elsewhere", "{doc}");
    // Edited in the console after the other client's change: every other field kept its type
    // through the editor's round trip.
    assert_eq!(data["count"], 3, "{doc}");
    // 2 entered as a double stays a double (2.0 on the wire), the rest keep their types.
    assert!(text.contains("\"ratio\":2.0"), "{text}");
    assert_eq!(
        data["when"],
        json!({"$timestamp": "2026-01-02T03:04:05.000006Z"})
    );
    assert_eq!(data["owner"], json!({"$ref": "users/ada"}));
    assert_eq!(data["place"], json!({"$geo": [48.85, 2.35]}));
    assert_eq!(data["blob"], json!({"$bytes": "AAEC"}));
    assert!(
        data["at"]["$timestamp"].is_string(),
        "the server timestamp was set: {doc}"
    );
    assert!(
        step(&report, "create")
            .as_str()
            .unwrap()
            .contains("Hello, console"),
        "{context}"
    );

    // The other client's writes appeared without a reload.
    let live = step(&report, "live");
    assert_eq!(live["noReload"], true, "{context}");
    assert!(
        live["status"]
            .as_str()
            .unwrap()
            .starts_with("Updated: version"),
        "{context}"
    );

    assert_eq!(
        step(&report, "edit").as_str().unwrap(),
        format!("Saved: version {}", doc["version"]),
        "{context}"
    );
    let query = step(&report, "query");
    assert_eq!(query["results"], json!(["notes/n1"]), "{context}");
    assert!(
        query["status"].as_str().unwrap().starts_with("1 document"),
        "{context}"
    );
    assert!(
        !step(&report, "delete").as_str().unwrap().contains("n2"),
        "{context}"
    );
    let (status, _) = request(
        "GET",
        &server.url("/v1/docs/notes/n2"),
        None,
        &[("authorization", &bearer)],
    )
    .unwrap();
    assert_eq!(status, 404, "the console deleted notes/n2");

    // Denied, found in the audit log, tried in the playground: denied, then allowed once fixed.
    let denied = step(&report, "denied").as_str().unwrap();
    assert!(
        denied.contains("permission-denied") && denied.contains("playground"),
        "{context}"
    );
    let audit = step(&report, "audit").as_str().unwrap();
    assert!(audit.contains("deny") && audit.contains("get"), "{context}");
    let pg = step(&report, "playground-denied");
    assert_eq!(
        pg["filled"],
        json!({"method": "get", "path": "secret/s1", "uid": "ada"}),
        "{context}"
    );
    assert!(
        pg["decision"].as_str().unwrap().starts_with("DENIED"),
        "{context}"
    );
    assert!(
        pg["marked"].as_u64().unwrap() >= 2,
        "the matched lines are marked: {context}"
    );
    let broken = step(&report, "rules-error");
    assert!(
        broken["error"].as_str().unwrap().starts_with("line 8:"),
        "{context}"
    );
    assert!(
        broken["status"]
            .as_str()
            .unwrap()
            .starts_with("Not published"),
        "{context}"
    );
    assert_eq!(broken["focused"], "rules-source", "{context}");
    assert!(
        step(&report, "rules-publish")
            .as_str()
            .unwrap()
            .contains("version 2 is in force"),
        "{context}"
    );
    let allowed = step(&report, "playground-allowed");
    assert!(
        allowed["decision"]
            .as_str()
            .unwrap()
            .starts_with("ALLOWED by the allow at line 8"),
        "{context}"
    );
    assert_eq!(allowed["granted"], 1, "{context}");
    let (_, rules) = admin(&server, "GET", "/v1/admin/rules", None);
    assert_eq!(
        rules["version"], 2,
        "the broken draft was never published: {rules}"
    );
    assert!(
        rules["source"]
            .as_str()
            .unwrap()
            .contains("request.auth.uid == 'ada'"),
        "{rules}"
    );
    let (_, audit) = admin(
        &server,
        "GET",
        "/v1/admin/audit?deny=true&uid=ada&path=secret/s1",
        None,
    );
    assert_eq!(audit["events"][0]["method"], "get", "{audit}");
    assert_eq!(audit["events"][0]["path"], "secret/s1", "{audit}");

    // The claim, with the byte count the console showed.
    let claims = step(&report, "claims");
    assert_eq!(claims["counter"], "11 / 1000 bytes", "{context}");
    let (_, stored) = admin(&server, "GET", "/v1/admin/users/ada/claims", None);
    assert_eq!(stored["claims"], json!({"level": 2}), "{stored}");

    // The rules test file ran with coverage; health names the issuer's key.
    let tests = step(&report, "rules-tests");
    assert_eq!(
        tests["verdict"].as_str().unwrap().split(" (").next(),
        Some("2 passed, 0 failed"),
        "{context}"
    );
    assert_eq!(tests["coverage"], 2, "{context}");
    let (_, jwks) = request("GET", &server.url("/.well-known/jwks.json"), None, &[])
        .map(|(s, t)| (s, parse(&t)))
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap();
    let health = step(&report, "health");
    assert!(health["keys"].as_str().unwrap().contains(kid), "{context}");
    assert_eq!(health["ready"], "Ready", "{context}");
    let out = step(&report, "signout");
    assert_eq!(out, &json!({"key": null, "navHidden": true}), "{context}");

    // Every control had a name; nothing went wrong in the page but the refusals the scenario
    // provokes (the wrong key; the denied list and read of `secret`), each logged once by
    // Chromium.
    assert_eq!(report["unlabeled"], json!([]), "{context}");
    assert_eq!(report["pageErrors"], json!([]), "{context}");
    // The list and the read of `secret` start together: in either order.
    let mut failed: Vec<(u64, String)> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["status"].as_u64().unwrap(),
                f["url"].as_str().unwrap().replace(&server.base, ""),
            )
        })
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            (401, "/v1/admin/status".to_string()),
            (403, "/v1/listen?path=secret%2Fs1".to_string()),
            (
                403,
                "/v1/listen?query=%7B%22collection%22%3A%22secret%22%2C%22limit%22%3A100%7D"
                    .to_string()
            ),
        ],
        "{context}"
    );
    let console: Vec<&str> = report["console"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(console.len(), 3, "{context}");
    for text in console {
        assert!(
            text.starts_with("Failed to load resource: the server responded with a status of 40"),
            "unexpected console message {text:?}: {context}"
        );
    }
    for name in [
        "signin",
        "create",
        "live",
        "audit",
        "playground-denied",
        "rules-error",
        "playground-allowed",
        "claims",
        "health",
    ] {
        let png = std::fs::read(format!("{shots}/console-{name}.png")).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 1_000, "{name}");
    }
    eprintln!(
        "console browser test: {:.1} s; screenshots in {shots}",
        started.elapsed().as_secs_f64()
    );
}

const LOGIN_DRIVER: &str = include_str!("js/console_login_drive.mjs");

/// Runs a driver script with its params; returns its report.
fn drive(dir: &str, chromium: &str, stem: &str, script: &str, params: &Value) -> Value {
    let driver = write_beside_modules(dir, stem, script);
    let output = Command::new("node")
        .arg(format!("{dir}/{driver}"))
        .args([chromium, &params.to_string()])
        .current_dir(dir)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(format!("{dir}/{driver}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|text| serde_json::from_str(text).unwrap())
        .unwrap_or_else(|| {
            panic!(
                "the driver printed no result ({}):\n{stdout}\n{stderr}",
                output.status
            )
        });
    assert!(
        output.status.success() && report.get("driverError").is_none(),
        "the driver failed ({}): {report:#}\n{stderr}",
        output.status
    );
    report
}

/// An operator whose login (through an OpenID provider) maps to one of `admin_roles` uses the
/// console with the session cookie alone: the admin API, and data requests as themselves —
/// including a write, which the cookie's origin check lets through from claimdb's own origin.
#[test]
fn an_admin_signs_in_to_the_console_through_a_login() {
    use crate::signin::{CLIENT_SECRET, OIDC_PROVIDER_VERSION, Op};
    let dir = match npm_install(&[PLAYWRIGHT]) {
        Ok(dir) => dir,
        Err(why) => return skipped("the console login browser test", &why),
    };
    if let Err(why) = npm_install(&[&format!("oidc-provider@{OIDC_PROVIDER_VERSION}")]) {
        return skipped("the console login browser test", &why);
    }
    let chromium = match chromium() {
        Ok(path) => path,
        Err(why) => return skipped("the console login browser test", &why),
    };
    // The port first: the provider must know the callback URL before claimdb starts.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let op = Op::start_for(&format!("{base}/v1/login/op/callback"));
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("claimdb.toml");
    std::fs::write(
        &config,
        format!(
            r#"admin_key = "{KEY}"
public_url = "{base}"
app_redirects = ["{base}/console/"]
admin_roles = ["claimdb-admin"]

[[providers]]
name = "op"
issuer = "{issuer}"
discovery = "{issuer}/.well-known/openid-configuration"
audience = "claimdb"
algorithms = ["RS256"]
client_id = "claimdb"
scopes = ["openid", "email"]

[[providers.roles]]
role = "claimdb-admin"
claim = "email"
equals = "root@example.com"
"#,
            issuer = op.issuer
        ),
    )
    .unwrap();
    let server = Server::spawn_on(
        &format!("127.0.0.1:{port}"),
        &home.path().join("data"),
        Some(&config),
        &[("CLAIMDB_PROVIDER_OP_CLIENT_SECRET", CLIENT_SECRET)],
    );
    server.wait_ready(std::time::Duration::from_secs(20));
    assert_eq!(server.base, base);
    let (status, body) = admin(
        &server,
        "PUT",
        "/v1/admin/rules",
        Some(&json!({"source": RULES}).to_string()),
    );
    assert_eq!(status, 200, "{body}");

    let shots = format!("{}/console-browser", env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&shots).unwrap();
    let params = json!({"base": base, "user": "root", "shots": shots});
    let report = drive(&dir, chromium, "console-login-drive", LOGIN_DRIVER, &params);
    let context = format!("{report:#}\nscreenshots: {shots}");

    let login = step(&report, "login");
    assert_eq!(
        login["who"], "Signed in as root (login session)\nSign out",
        "{context}"
    );
    assert!(
        login["cookies"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "claimdb_session", "httpOnly": true})),
        "{context}"
    );
    assert!(
        step(&report, "admin")
            .as_str()
            .unwrap()
            .starts_with("Compiles"),
        "{context}"
    );
    assert_eq!(step(&report, "write")["runsAs"], "session", "{context}");
    // The write was the session user's, decided by the rules and audited as theirs.
    let (_, audit) = admin(
        &server,
        "GET",
        "/v1/admin/audit?path=notes/by-session&uid=root",
        None,
    );
    let create = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == "create")
        .unwrap_or_else(|| panic!("no create: {audit}"));
    assert_eq!(
        (&create["decision"], &create["provider"]),
        (&json!("allow"), &json!("op")),
        "{audit}"
    );
    let out = step(&report, "signout");
    assert!(
        !out["cookies"]
            .as_array()
            .unwrap()
            .contains(&json!("claimdb_session")),
        "{context}"
    );
    // Nothing failed on claimdb's side, and the console's pages logged nothing.
    let ours: Vec<&Value> = report["failed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["url"].as_str().unwrap().starts_with(&base))
        .collect();
    assert!(ours.is_empty(), "{context}");
    assert_eq!(report["pageErrors"], json!([]), "{context}");
    let console: Vec<&Value> = report["console"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["page"].as_str().unwrap().starts_with(&base))
        .collect();
    assert!(console.is_empty(), "{context}");
    drop(op);
}
