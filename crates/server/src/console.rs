//! The web console at `/console/`: plain JavaScript modules, CSS and one HTML page under
//! `crates/server/console/`, embedded in the binary at build time (`include_bytes!`), served
//! from an exact table of names — a path that is not in the table is a 404, so nothing outside
//! it (`..`, encoded or not) can ever be read — with a strict Content-Security-Policy (only
//! this origin's scripts, styles and connections; no inline script, no framing), `nosniff`, and
//! `Cache-Control: no-cache` with an `ETag` of the content (a hash), so a browser revalidates and
//! an upgraded binary is never mixed with cached assets of the old one.
//!
//! The console holds no privilege of its own: it calls the public API (`/v1/docs`, `/v1/query`,
//! `/v1/listen`, `/v1/rules/explain`, the admin API, Firestore's `:listCollectionIds`) with the
//! credential the operator gives it — the admin key in `X-Claimdb-Admin-Key`, or the session
//! cookie of a login whose user has an admin role — exactly as any other client would.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;
use crate::error::ApiError;

/// The policy of every console response: this origin only, no inline script or style, no
/// plugins, no framing, no `<base>`, forms only to this origin.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// One embedded file.
struct Asset {
    /// Its path below `/console/`.
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $type:expr),* $(,)?) => {
        &[$(Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../console/", $name)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the console has; nothing else is served under `/console/`.
static ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "console.css" => "text/css; charset=utf-8",
    "js/main.js" => JS,
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/json.js" => JS,
    "js/values.js" => JS,
    "js/documents.js" => JS,
    "js/query.js" => JS,
    "js/rules.js" => JS,
    "js/playground.js" => JS,
    "js/users.js" => JS,
    "js/audit.js" => JS,
    "js/health.js" => JS,
];

/// The routes of the console.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route(
            "/console/",
            get(|headers: HeaderMap| async move { serve("index.html", &headers) }),
        )
        .route("/console/login-providers", get(login_providers))
        .route("/console/{*path}", get(asset))
}

/// `GET /console/login-providers`: the providers a browser can sign in through
/// (`/v1/login/{name}`), for the sign-in screen; public, as those login URLs are.
async fn login_providers(State(state): State<AppState>) -> Response {
    let providers = state
        .sign_in
        .as_ref()
        .map(|s| s.login_providers())
        .unwrap_or_default();
    let mut r = Json(serde_json::json!({ "providers": providers })).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    secure(h);
    r
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// FNV-1a (64 bits) of `bytes`: a content hash for the `ETag`, not a security measure.
fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `ETag` of every asset, in [`ASSETS`]' order, computed once.
fn etags() -> &'static [String] {
    static ETAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:016x}\"", content_hash(a.body)))
            .collect()
    })
}

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((i, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.name == path) else {
        let mut r = ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "the console has no such file",
        )
        .quiet()
        .into_response();
        secure(r.headers_mut());
        return r;
    };
    let etag = etags().get(i).map(String::as_str).unwrap_or("\"0\"");
    let mut r = if matches(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = asset.body.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        r
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secure(h);
    r
}

/// The security headers of every console response, errors included.
fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Same-origin requests keep their Referer (the session cookie's origin check may use it);
    // no other site learns a console URL.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_named_once_and_has_content() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(
                ASSETS.iter().skip(i + 1).all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
        assert_eq!(etags().len(), ASSETS.len());
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(matches(&h, "\"b\""));
        assert!(!matches(&h, "\"c\""));
    }
}
