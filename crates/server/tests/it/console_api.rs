//! The admin endpoints the web console added: `GET /v1/admin/status`, `POST
//! /v1/admin/rules/check`, `POST /v1/admin/rules/test` and `GET /v1/admin/users?prefix=`. Each
//! refuses a request without the admin credential (and with a wrong key) before doing anything,
//! and answers what it says it does.

use claimdb_server::ServerConfig;
use serde_json::{Value as Json, json};

use crate::util::{Resp, TestApp};

const KEY: &str = "console-test-admin-key-0123456789";

fn app() -> TestApp {
    let mut options = crate::util::open_rules();
    options.admin_key_sha256 = Some(claimdb_engine::admin_key::sha256(KEY));
    TestApp::with_options(
        options,
        ServerConfig {
            store_description: "data in a test directory".into(),
            ..ServerConfig::default()
        },
    )
}

async fn admin(app: &TestApp, method: &str, uri: &str, body: Option<&Json>) -> Resp {
    app.send(method, uri, &[("x-claimdb-admin-key", KEY)], body)
        .await
}

/// Without a credential: 401; with a wrong key: 403; the endpoint never runs.
async fn refuses_without_the_admin_credential(
    app: &TestApp,
    method: &str,
    uri: &str,
    body: Option<&Json>,
) {
    let r = app.send(method, uri, &[], body).await;
    assert!(
        r.status == 401 || r.status == 403,
        "{method} {uri} without a credential: {} {}",
        r.status,
        r.text
    );
    assert!(r.json["error"]["code"].is_string(), "{}", r.text);
    let r = app
        .send(
            method,
            uri,
            &[("x-claimdb-admin-key", "not-the-key-0123456789")],
            body,
        )
        .await;
    assert!(
        r.status == 401 || r.status == 403,
        "{method} {uri} with a wrong key: {}",
        r.text
    );
}

#[tokio::test]
async fn every_console_endpoint_needs_the_admin_credential() {
    let app = app();
    let rules = json!({"source": "rules_version = '2';"});
    let test = json!({"cases": []});
    refuses_without_the_admin_credential(&app, "GET", "/v1/admin/status", None).await;
    refuses_without_the_admin_credential(&app, "POST", "/v1/admin/rules/check", Some(&rules)).await;
    refuses_without_the_admin_credential(&app, "POST", "/v1/admin/rules/test", Some(&test)).await;
    refuses_without_the_admin_credential(&app, "GET", "/v1/admin/users?prefix=a", None).await;
}

#[tokio::test]
async fn status_says_what_the_server_runs_on() {
    let app = app();
    let r = admin(&app, "GET", "/v1/admin/status", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = &r.json;
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["ready"], true, "{s:#}");
    assert_eq!(s["not_ready_reason"], Json::Null);
    assert_eq!(s["store"]["description"], "data in a test directory");
    assert_eq!(s["store"]["ok"], true);
    assert_eq!(s["store"]["shared_across_nodes"], false);
    assert_eq!(s["rules"]["origin"], "test (open)");
    assert_eq!(s["rules"]["managed_in"], "database");
    assert_eq!(s["firestore_project"], "demo-claimdb");
    assert_eq!(s["emulator"], false);
    // No providers, sign-in or audit log in this app: said so, not invented.
    assert_eq!(s["providers"], json!([]));
    assert_eq!(s["issuer"], Json::Null);
    assert_eq!(s["audit"], Json::Null);
    assert!(s["uptime_secs"].as_f64().unwrap() >= 0.0);
    assert!(s["started"].as_str().unwrap().ends_with('Z'));
}

const GOOD: &str = "rules_version = '2';\nservice cloud.firestore {\n  match /databases/{db}/documents {\n    match /notes/{id} {\n      allow read: if request.auth != null;\n      allow write: if request.auth.uid == request.resource.data.owner;\n    }\n  }\n}\n";

#[tokio::test]
async fn check_reports_errors_at_line_and_column_and_installs_nothing() {
    let app = app();
    let r = admin(
        &app,
        "POST",
        "/v1/admin/rules/check",
        Some(&json!({"source": GOOD})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["ok"], true);
    assert_eq!(r.json["errors"], json!([]));
    assert_eq!(r.json["allow_statements"], 2);

    // A typo on line 5, column 27: `!==`.
    let bad = GOOD.replace("request.auth != null", "request.auth !== null");
    let r = admin(
        &app,
        "POST",
        "/v1/admin/rules/check",
        Some(&json!({"source": bad})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["ok"], false);
    let first = &r.json["errors"][0];
    assert_eq!(first["line"], 5, "{first}");
    assert!(first["column"].as_u64().unwrap() >= 27, "{first}");
    assert_eq!(
        first["source_line"],
        "      allow read: if request.auth !== null;"
    );
    assert!(first["message"].as_str().unwrap().len() > 3, "{first}");
    assert_eq!(r.json["allow_statements"], 0);

    // The text form (as PUT /v1/admin/rules takes it) reads the same.
    let r = app
        .send(
            "POST",
            "/v1/admin/rules/check",
            &[("x-claimdb-admin-key", KEY)],
            None,
        )
        .await;
    assert_eq!(
        r.status, 200,
        "an empty body is an empty source: {}",
        r.text
    );
    assert_eq!(r.json["ok"], false);

    // Checking never changed the rules in force: the open rules still allow this write.
    let w = app.put("/v1/docs/notes/n1", &json!({"owner": "x"})).await;
    assert_eq!(w.status, 201, "{}", w.text);
    let active = admin(&app, "GET", "/v1/admin/rules", None).await;
    assert_eq!(active.json["origin"], "test (open)");
}

#[tokio::test]
async fn a_test_run_decides_every_case_with_coverage() {
    let app = app();
    let cases = json!({"cases": [
        {"name": "signed in reads", "auth": {"uid": "ada", "token": {}}, "method": "get", "path": "notes/n1", "expect": "allow"},
        {"name": "nobody reads", "auth": null, "method": "get", "path": "notes/n1", "expect": "deny"},
        {"name": "wrong owner writes", "auth": {"uid": "ada", "token": {}}, "method": "create", "path": "notes/n2", "data": {"owner": "bob"}, "expect": "allow"},
    ]});
    let r = admin(
        &app,
        "POST",
        "/v1/admin/rules/test",
        Some(&json!({"source": GOOD, "cases": cases})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = &r.json;
    assert_eq!(
        (j["passed"].as_u64(), j["failed"].as_u64(), &j["all_passed"]),
        (Some(2), Some(1), &json!(false)),
        "{j:#}"
    );
    assert_eq!(j["rules"], "request");
    assert_eq!(j["cases"][0]["granted_by_line"], 5);
    assert_eq!(j["cases"][2]["passed"], false);
    assert_eq!(j["cases"][2]["decision"], "deny");
    assert!(
        j["cases"][2]["explanation"]
            .as_str()
            .unwrap()
            .contains("line 6"),
        "{j:#}"
    );
    let coverage = j["coverage"].as_array().unwrap();
    assert_eq!(coverage.len(), 2);
    assert_eq!(
        (coverage[0]["line"].as_u64(), &coverage[0]["complete"]),
        (Some(5), &json!(true))
    );
    assert_eq!(
        (coverage[1]["line"].as_u64(), &coverage[1]["ever_true"]),
        (Some(6), &json!(false))
    );
    assert!(
        j["report"].as_str().unwrap().contains("2 passed, 1 failed"),
        "{j:#}"
    );

    // The same file as YAML text, against the rules in force (open: everything allowed).
    let yaml = "cases:\n  - name: nobody reads\n    auth: null\n    method: get\n    path: notes/n1\n    expect: deny\n";
    let r = admin(
        &app,
        "POST",
        "/v1/admin/rules/test",
        Some(&json!({"cases": yaml})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["rules"], "test (open)");
    assert_eq!(r.json["cases"][0]["decision"], "allow");
    assert_eq!(r.json["all_passed"], false);
}

#[tokio::test]
async fn bad_test_runs_are_refused_with_the_reason() {
    let app = app();
    let case = json!({"name": "x", "method": "get", "path": "a/b", "expect": "allow"});
    let run = |body: Json| {
        let app = &app;
        async move { admin(app, "POST", "/v1/admin/rules/test", Some(&body)).await }
    };
    let m = run(json!({"source": "rules_version = '2'; service", "cases": [case]}))
        .await
        .error(400, "invalid-argument");
    assert!(m.contains("do not compile") && m.contains("line 1:"), "{m}");
    let m =
        run(json!({"cases": [{"name": "x", "method": "fly", "path": "a/b", "expect": "allow"}]}))
            .await
            .error(400, "invalid-argument");
    assert!(m.contains("method must be"), "{m}");
    let m = run(json!({"cases": "cases: [unclosed"}))
        .await
        .error(400, "invalid-argument");
    assert!(m.contains("YAML"), "{m}");
    let m = run(json!({"cases": vec![case.clone(); 1001]}))
        .await
        .error(400, "invalid-argument");
    assert!(m.contains("at most 1000"), "{m}");
    let m = run(json!({"case": []}))
        .await
        .error(400, "invalid-argument");
    assert!(m.contains("unknown field"), "{m}");
}

#[tokio::test]
async fn users_are_found_by_uid_prefix_a_page_at_a_time() {
    let app = app();
    for uid in ["al", "alex", "alice", "alicia", "bob", "a"] {
        let r = admin(
            &app,
            "PUT",
            &format!("/v1/admin/users/{uid}/claims"),
            Some(&json!({"n": 1})),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let uids = |r: &Resp| -> Vec<String> {
        r.json["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["uid"].as_str().unwrap().to_string())
            .collect()
    };
    let r = admin(&app, "GET", "/v1/admin/users?prefix=al", None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(uids(&r), ["al", "alex", "alice", "alicia"]);
    assert_eq!(r.json.get("next_page_token"), None);

    // Pages of two: the prefix itself first, then on from the token.
    let r = admin(&app, "GET", "/v1/admin/users?prefix=al&page_size=2", None).await;
    assert_eq!(uids(&r), ["al", "alex"]);
    let token = r.json["next_page_token"].as_str().unwrap().to_string();
    let r = admin(
        &app,
        "GET",
        &format!("/v1/admin/users?prefix=al&page_size=2&page_token={token}"),
        None,
    )
    .await;
    assert_eq!(uids(&r), ["alice", "alicia"]);
    let r = admin(&app, "GET", "/v1/admin/users?prefix=ali&page_size=1", None).await;
    assert_eq!(uids(&r), ["alice"]);
    let r = admin(&app, "GET", "/v1/admin/users?prefix=zed", None).await;
    assert_eq!(uids(&r), Vec::<String>::new());
    // Without a prefix, every user as before.
    let r = admin(&app, "GET", "/v1/admin/users", None).await;
    assert_eq!(uids(&r), ["a", "al", "alex", "alice", "alicia", "bob"]);
}
