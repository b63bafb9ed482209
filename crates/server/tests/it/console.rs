//! The web console's assets under `/console/`: served from the binary with a strict
//! Content-Security-Policy, `no-cache` and a content `ETag`; every module the page imports is
//! there; anything else — unknown names, `..` in any spelling — is a 404 in the JSON error shape
//! that reveals no file.

use axum::body::Body;
use axum::http::Request;

use crate::util::{Resp, TestApp};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

async fn get(app: &TestApp, uri: &str, headers: &[(&str, &str)]) -> Resp {
    let mut request = Request::builder().uri(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    app.raw(request.body(Body::empty()).unwrap()).await
}

#[track_caller]
fn assert_secured(r: &Resp) {
    assert_eq!(
        r.header("content-security-policy"),
        Some(CSP),
        "{:?}",
        r.headers
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_revalidated_by_content_hash() {
    let app = TestApp::new();
    let r = get(&app, "/console", &[]).await;
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("/console/"));

    let r = get(&app, "/console/", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_secured(&r);
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(
        r.text
            .contains(r#"<script type="module" src="js/main.js">"#)
    );
    // No inline script or style anywhere in the page (the policy would block them).
    assert!(
        !r.text.contains("<script>") && !r.text.contains("style="),
        "{}",
        r.text
    );
    let etag = r.etag();
    assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");

    // The same content: 304 without a body; a stale tag: the file again.
    let again = get(&app, "/console/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    assert_eq!(again.etag(), etag);
    assert_secured(&again);
    let stale = get(&app, "/console/index.html", &[("if-none-match", "\"0\"")]).await;
    assert_eq!((stale.status.as_u16(), stale.etag()), (200, etag.clone()));

    let css = get(&app, "/console/console.css", &[]).await;
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_ne!(css.etag(), etag, "each file has its own tag");
}

/// The relative modules a JavaScript file imports (`from './x.js'`, `import('./x.js')`).
fn imports(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ["'./", "\"./"] {
        let mut rest = source;
        while let Some(at) = rest.find(quote) {
            rest = &rest[at + quote.len()..];
            let end = rest.find(['\'', '"']).unwrap();
            let name = &rest[..end];
            if name.ends_with(".js") {
                out.push(name.to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn every_module_the_page_loads_is_served_as_javascript() {
    let app = TestApp::new();
    let mut todo = vec!["js/main.js".to_string()];
    let mut seen = Vec::new();
    while let Some(name) = todo.pop() {
        if seen.contains(&name) {
            continue;
        }
        let r = get(&app, &format!("/console/{name}"), &[]).await;
        assert_eq!(r.status, 200, "{name}: {}", r.text);
        assert_eq!(
            r.header("content-type"),
            Some("text/javascript; charset=utf-8"),
            "{name}"
        );
        assert_secured(&r);
        for import in imports(&r.text) {
            todo.push(format!("js/{import}"));
        }
        seen.push(name);
    }
    // main.js reaches every page and the modules they share.
    for page in [
        "documents",
        "query",
        "rules",
        "playground",
        "users",
        "audit",
        "health",
    ] {
        assert!(seen.contains(&format!("js/{page}.js")), "{seen:?}");
    }
    assert!(seen.contains(&"js/values.js".to_string()), "{seen:?}");
}

#[tokio::test]
async fn unknown_names_and_traversal_are_404_revealing_nothing() {
    let app = TestApp::new();
    for uri in [
        "/console/nope.js",
        "/console/js/",
        "/console/js",
        "/console/../Cargo.toml",
        "/console/..%2FCargo.toml",
        "/console/%2e%2e/%2e%2e/Cargo.toml",
        "/console/js/../index.html",
        "/console/js/%2e%2e/index.html",
        "/console//etc/passwd",
        "/console/%2Fetc%2Fpasswd",
        "/console/..\\..\\Cargo.toml",
        "/console/index.html%00.js",
        "/console/INDEX.HTML",
        "/console/js/main.js/",
    ] {
        let r = get(&app, uri, &[]).await;
        let message = r.error(404, "not-found");
        assert!(
            !r.text.contains("[package]") && !r.text.contains("root:"),
            "{uri}: {}",
            r.text
        );
        assert!(!message.is_empty(), "{uri}");
        if uri.starts_with("/console/") && r.header("content-security-policy").is_some() {
            assert_secured(&r);
        }
    }
    // A file of the console under a name that is not its own is not served either.
    let r = get(&app, "/console/./index.html", &[]).await;
    r.error(404, "not-found");
}

#[tokio::test]
async fn the_sign_in_screen_learns_the_login_providers() {
    // No sign-in configured: none, still in the JSON shape and with the policy.
    let app = TestApp::new();
    let r = get(&app, "/console/login-providers", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json, serde_json::json!({"providers": []}));
    assert_secured(&r);
    assert_eq!(r.header("cache-control"), Some("no-store"));
}
