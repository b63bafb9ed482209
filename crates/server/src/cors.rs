//! Cross-origin resource sharing: which browser origins may call claimdb and read its answers.
//! One layer ([`layer`]) for the whole API, answering preflights before routing, knows two kinds
//! of origin:
//!
//! - **trusted origins** ([`TrustedOrigins`]: `public_url`'s and `app_redirects`') get CORS
//!   *with credentials*, so an app there can send the session cookie
//!   (`fetch(url, {credentials: "include"})`) and read the answer;
//! - **app origins** ([`AppOrigins`]: `cors_origins`, or every origin in an emulator) get CORS
//!   *without credentials*: bearer-token requests, such as the Firebase SDKs' (which never ask
//!   for credentials). A browser does not attach cookies to a request it could not read the
//!   answer of here, and a cookie-authenticated write from such an origin still meets the CSRF
//!   check ([`crate::csrf`]), which trusts only the trusted origins.
//!
//! Requests from any other origin (or with none) never reach the CORS machinery: they get no
//! `Access-Control-*` header (only `Vary`), their preflights are routed like any OPTIONS
//! request, and browsers keep other origins' pages from reading claimdb's answers.
//!
//! Allowed request headers ([`header_allowed`]): what claimdb's API reads and what the Firebase
//! web SDKs send (`x-goog-*`, `google-cloud-resource-prefix`, `x-firebase-*`, …). Never the
//! admin key: it is a static, long-lived root credential, and a browser page holding it would
//! hand it to every script that page runs; an operator's console in a browser signs in and uses
//! a bearer token with an `admin_roles` role instead (or is served from claimdb's own origin,
//! where no CORS applies). A preflight from an allowed origin asking for any other header is
//! answered 403 with the header named (and no CORS headers, so the browser refuses).
//!
//! It does not decide who may read or write what: that is the credential's and the rules' job.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use tower::{Layer, Service};
use tower_http::cors::{self, AllowHeaders, AllowOrigin, Cors, CorsLayer};

use crate::csrf::{TrustedOrigins, origin_of};
use crate::error::ApiError;

/// The origins allowed to call claimdb cross-origin without credentials (`cors_origins`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AppOrigins {
    /// No origin (the default): only the trusted origins get CORS.
    #[default]
    None,
    /// These origins (`scheme://host[:port]`, lowercase, default port left out), in order.
    List(Vec<String>),
    /// Every origin: for an emulator, or `cors_origins = ["*"]`.
    Any,
}

impl AppOrigins {
    /// From configuration entries: origins such as `https://app.example.com` (a trailing `/`
    /// is allowed; a path, query or user is not), or `*` alone for every origin. Entries are
    /// normalized as browsers send `Origin` (lowercase, default port left out).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AppOrigins, String> {
        let entries: Vec<&str> = entries.iter().map(|e| e.as_ref().trim()).collect();
        if entries.contains(&"*") {
            if entries.len() > 1 {
                return Err(
                    "\"*\" allows every origin; list it alone or list the origins".to_string(),
                );
            }
            return Ok(AppOrigins::Any);
        }
        let mut list: Vec<String> = Vec::new();
        for entry in entries {
            let bare = entry.strip_suffix('/').unwrap_or(entry);
            let origin = origin_of(bare)
                .filter(|_| !bare.contains('@'))
                .filter(|o| bare.eq_ignore_ascii_case(o) || port_is_default(bare, o))
                .ok_or_else(|| {
                    format!(
                        "{entry:?} is not an origin: write scheme://host[:port] (http or https, \
                         no path), for example \"https://app.example.com\""
                    )
                })?;
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        Ok(if list.is_empty() {
            AppOrigins::None
        } else {
            AppOrigins::List(list)
        })
    }

    /// Every origin (an emulator's setting).
    pub fn any() -> AppOrigins {
        AppOrigins::Any
    }

    fn allows(&self, origin: &HeaderValue) -> bool {
        match self {
            AppOrigins::None => false,
            AppOrigins::Any => true,
            AppOrigins::List(list) => list.iter().any(|o| o.as_bytes() == origin.as_bytes()),
        }
    }
}

/// `https://host:443` written out: its origin leaves the default port out.
fn port_is_default(written: &str, origin: &str) -> bool {
    let lower = written.to_ascii_lowercase();
    [":443", ":80"]
        .iter()
        .any(|p| lower.strip_suffix(p) == Some(origin))
}

/// Request headers a cross-origin page may send: the ones claimdb's API reads, and the metadata
/// the Firebase web SDKs send (which claimdb ignores).
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    crate::extract::REQUEST_ID,
    "google-cloud-resource-prefix",
    "x-client-version",
];

/// Families of Firebase / Google client metadata headers (`x-goog-api-client`,
/// `x-goog-request-params`, `x-firebase-gmpid`, `x-firebase-appcheck`, …).
const ALLOWED_HEADER_PREFIXES: &[&str] = &["x-goog-", "x-firebase-"];

/// Whether a cross-origin page may send the request header `name` (lowercase).
pub(crate) fn header_allowed(name: &str) -> bool {
    ALLOWED_HEADERS.contains(&name)
        || ALLOWED_HEADER_PREFIXES
            .iter()
            .any(|p| name.len() > p.len() && name.starts_with(p))
}

/// The one CORS layer: credentials for `trusted`, none for `apps`; `None` when neither allows
/// an origin.
pub fn layer(trusted: &TrustedOrigins, apps: &AppOrigins) -> Option<CorsPolicyLayer> {
    let trusted: Vec<HeaderValue> = trusted
        .as_slice()
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if trusted.is_empty() && *apps == AppOrigins::None {
        return None;
    }
    Some(CorsPolicyLayer {
        with_credentials: base().allow_credentials(true),
        without_credentials: base(),
        origins: Arc::new(Origins {
            trusted,
            apps: apps.clone(),
        }),
    })
}

/// What both kinds of origin get. The origin is reflected: [`CorsPolicy`] already decided that
/// it is allowed, and the headers are mirrored only after every one was found allowed.
fn base() -> CorsLayer {
    let request_id = header::HeaderName::from_static(crate::extract::REQUEST_ID);
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([header::ETAG, header::LOCATION, request_id])
        .max_age(Duration::from_secs(600))
}

struct Origins {
    trusted: Vec<HeaderValue>,
    apps: AppOrigins,
}

enum Kind {
    Trusted,
    App,
    Other,
}

impl Origins {
    fn kind(&self, headers: &HeaderMap) -> Kind {
        match headers.get(header::ORIGIN) {
            Some(o) if self.trusted.contains(o) => Kind::Trusted,
            Some(o) if self.apps.allows(o) => Kind::App,
            _ => Kind::Other,
        }
    }
}

/// The first header a preflight asks for that is not allowed.
fn refused_header(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        let Ok(text) = value.to_str() else {
            return Some("(not visible ASCII)".to_string());
        };
        if let Some(name) = text
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .find(|name| !name.is_empty() && !header_allowed(name))
        {
            return Some(name);
        }
    }
    None
}

/// See [`layer`].
#[derive(Clone)]
pub struct CorsPolicyLayer {
    with_credentials: CorsLayer,
    without_credentials: CorsLayer,
    origins: Arc<Origins>,
}

impl<S: Clone> Layer<S> for CorsPolicyLayer {
    type Service = CorsPolicy<S>;

    fn layer(&self, inner: S) -> CorsPolicy<S> {
        CorsPolicy {
            with_credentials: self.with_credentials.layer(inner.clone()),
            without_credentials: self.without_credentials.layer(inner.clone()),
            plain: inner,
            origins: self.origins.clone(),
        }
    }
}

/// See [`layer`].
#[derive(Clone)]
pub struct CorsPolicy<S> {
    with_credentials: Cors<S>,
    without_credentials: Cors<S>,
    plain: S,
    origins: Arc<Origins>,
}

/// What `tower-http` sends as `Vary` with CORS, sent on every response so a cache keeps the
/// answers to different origins apart.
const CORS_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

impl<S> Service<Request<Body>> for CorsPolicy<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Unpin,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = CorsPolicyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        match self.with_credentials.poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        match self.without_credentials.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let kind = self.origins.kind(request.headers());
        if matches!(kind, Kind::Other) {
            return CorsPolicyFuture::Plain(self.plain.call(request));
        }
        if request.method() == Method::OPTIONS
            && let Some(name) = refused_header(request.headers())
        {
            let mut response = ApiError::new(
                StatusCode::FORBIDDEN,
                "permission-denied",
                format!(
                    "the request header {name:?} is not allowed cross-origin (allowed: {}, \
                     x-goog-*, x-firebase-*); the admin key never is: use a bearer token with \
                     an admin role",
                    ALLOWED_HEADERS.join(", ")
                ),
            )
            .with_detail("reason", "cors-header-not-allowed".into())
            .into_response();
            response.headers_mut().append(header::VARY, CORS_VARY);
            return CorsPolicyFuture::Refused(Some(response));
        }
        let cors = match kind {
            Kind::Trusted => &mut self.with_credentials,
            _ => &mut self.without_credentials,
        };
        CorsPolicyFuture::Cors(Box::pin(cors.call(request)))
    }
}

/// The response future of [`CorsPolicy`].
pub enum CorsPolicyFuture<F> {
    /// An allowed origin's request (rare: boxed to keep the common path unboxed).
    Cors(Pin<Box<cors::ResponseFuture<F>>>),
    Plain(F),
    /// A preflight asking for a header that is not allowed.
    Refused(Option<Response<Body>>),
}

impl<F, E> Future for CorsPolicyFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>> + Unpin,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            CorsPolicyFuture::Cors(f) => f.as_mut().poll(cx),
            CorsPolicyFuture::Plain(f) => match Pin::new(f).poll(cx) {
                Poll::Ready(Ok(mut response)) => {
                    response.headers_mut().append(header::VARY, CORS_VARY);
                    Poll::Ready(Ok(response))
                }
                other => other,
            },
            CorsPolicyFuture::Refused(response) => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| StatusCode::FORBIDDEN.into_response()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt as _;

    const APP: &str = "http://127.0.0.1:5173";
    const TRUSTED: &str = "https://app.example.com";

    /// What the Firebase lite SDK asks for before `POST …/documents:commit`, as Chromium sends it.
    const FIRESTORE_HEADERS: &str = "authorization,content-type,google-cloud-resource-prefix,\
        x-firebase-gmpid,x-goog-api-client,x-goog-request-params,x-firebase-appcheck";

    /// The one layer over a service that answers 200 and says it was reached.
    async fn send(apps: &AppOrigins, request: Request<Body>) -> Response<Body> {
        let trusted =
            TrustedOrigins::from_urls(["https://db.example.com", "https://app.example.com/"]);
        // A ready future: the layer needs an `Unpin` one, as the router's is.
        let inner = tower::service_fn(|_: Request<Body>| {
            let mut r = Response::new(Body::from("reached"));
            r.headers_mut()
                .insert(header::ETAG, HeaderValue::from_static("\"v1\""));
            std::future::ready(Ok::<_, Infallible>(r))
        });
        let service = layer(&trusted, apps).unwrap().layer(inner);
        service.oneshot(request).await.unwrap()
    }

    fn preflight(origin: &str, headers: &str) -> Request<Body> {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/projects/p/databases/(default)/documents:commit")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, headers)
            .body(Body::empty())
            .unwrap()
    }

    fn post(origin: &str) -> Request<Body> {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/projects/p/databases/(default)/documents:commit")
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Body::from("{}"))
            .unwrap()
    }

    fn get(r: &Response<Body>, name: header::HeaderName) -> Option<&str> {
        r.headers().get(name).map(|v| v.to_str().unwrap())
    }

    fn cors_headers(r: &Response<Body>) -> Vec<String> {
        r.headers()
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .map(|k| k.to_string())
            .collect()
    }

    async fn text(r: Response<Body>) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn apps() -> AppOrigins {
        AppOrigins::parse(&[APP]).unwrap()
    }

    #[tokio::test]
    async fn an_app_origins_preflight_is_answered_with_its_origin_and_the_sdk_headers() {
        let r = send(&apps(), preflight(APP, FIRESTORE_HEADERS)).await;
        assert!(r.status().is_success(), "{:?}", r);
        assert_eq!(get(&r, header::ACCESS_CONTROL_ALLOW_ORIGIN), Some(APP));
        let allowed = get(&r, header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap();
        for name in FIRESTORE_HEADERS.split(',') {
            assert!(allowed.contains(name), "{name} not in {allowed}");
        }
        let methods = get(&r, header::ACCESS_CONTROL_ALLOW_METHODS).unwrap();
        for m in ["GET", "POST", "PATCH", "DELETE"] {
            assert!(methods.contains(m), "{methods}");
        }
        assert_eq!(get(&r, header::ACCESS_CONTROL_MAX_AGE), Some("600"));
        // Bearer tokens only: never credentials for an app origin.
        assert_eq!(get(&r, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        assert!(get(&r, header::VARY).unwrap().contains("origin"));
        // Answered by the layer: the preflight never reached the routes.
        assert_ne!(text(r).await, "reached");
    }

    #[tokio::test]
    async fn an_app_origins_request_reads_the_answer_without_credentials() {
        let r = send(&apps(), post(APP)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(get(&r, header::ACCESS_CONTROL_ALLOW_ORIGIN), Some(APP));
        assert_eq!(get(&r, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        let exposed = get(&r, header::ACCESS_CONTROL_EXPOSE_HEADERS).unwrap();
        assert!(
            exposed.contains("etag") && exposed.contains("x-request-id"),
            "{exposed}"
        );
        assert_eq!(text(r).await, "reached");
    }

    #[tokio::test]
    async fn trusted_origins_keep_credentials() {
        for request in [preflight(TRUSTED, FIRESTORE_HEADERS), post(TRUSTED)] {
            let r = send(&apps(), request).await;
            assert_eq!(get(&r, header::ACCESS_CONTROL_ALLOW_ORIGIN), Some(TRUSTED));
            assert_eq!(
                get(&r, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
                Some("true")
            );
        }
        // Also with no app origins configured.
        let r = send(&AppOrigins::None, post(TRUSTED)).await;
        assert_eq!(
            get(&r, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some("true")
        );
    }

    #[tokio::test]
    async fn unknown_origins_get_no_cors_headers() {
        for origin in [
            "https://evil.example",
            "null",
            "http://127.0.0.1:5174",
            "https://127.0.0.1:5173",
            "http://127.0.0.1:5173.evil.example",
        ] {
            let r = send(&apps(), preflight(origin, FIRESTORE_HEADERS)).await;
            assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}");
            assert!(get(&r, header::VARY).unwrap().contains("origin"));
            // Routed like any OPTIONS request.
            assert_eq!(text(r).await, "reached");
            let r = send(&apps(), post(origin)).await;
            assert_eq!(cors_headers(&r), Vec::<String>::new(), "{origin}");
        }
        let mut no_origin = post(APP);
        no_origin.headers_mut().remove(header::ORIGIN);
        let r = send(&apps(), no_origin).await;
        assert_eq!(cors_headers(&r), Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_admin_key_and_unknown_headers_are_refused_in_a_preflight() {
        for (origin, headers) in [
            (APP, "content-type,x-claimdb-admin-key"),
            (TRUSTED, "x-claimdb-admin-key"),
            (APP, "authorization, X-Custom"),
            (APP, "x-goog-"),
        ] {
            let r = send(&apps(), preflight(origin, headers)).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers}");
            assert_eq!(cors_headers(&r), Vec::<String>::new(), "{headers}");
            let body: serde_json::Value = serde_json::from_str(&text(r).await).unwrap();
            assert_eq!(
                body["error"]["details"]["reason"],
                "cors-header-not-allowed"
            );
        }
        let r = send(&apps(), preflight(APP, "content-type,x-claimdb-admin-key")).await;
        assert!(text(r).await.contains("x-claimdb-admin-key"));
    }

    #[tokio::test]
    async fn every_origin_in_an_emulator_but_never_with_credentials() {
        for origin in ["https://anything.example", "http://localhost:3000"] {
            let r = send(&AppOrigins::any(), preflight(origin, FIRESTORE_HEADERS)).await;
            assert_eq!(get(&r, header::ACCESS_CONTROL_ALLOW_ORIGIN), Some(origin));
            assert_eq!(get(&r, header::ACCESS_CONTROL_ALLOW_CREDENTIALS), None);
        }
        // The trusted origins keep theirs.
        let r = send(&AppOrigins::any(), post(TRUSTED)).await;
        assert_eq!(
            get(&r, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some("true")
        );
    }

    #[test]
    fn no_layer_without_origins() {
        assert!(layer(&TrustedOrigins::default(), &AppOrigins::None).is_none());
        assert!(layer(&TrustedOrigins::default(), &AppOrigins::any()).is_some());
    }

    #[test]
    fn origins_are_parsed_and_normalized() {
        assert_eq!(
            AppOrigins::parse(&[
                "https://App.Example.com/",
                "http://localhost:80",
                "https://app.example.com"
            ]),
            Ok(AppOrigins::List(vec![
                "https://app.example.com".into(),
                "http://localhost".into()
            ]))
        );
        assert_eq!(AppOrigins::parse::<&str>(&[]), Ok(AppOrigins::None));
        assert_eq!(AppOrigins::parse(&[" * "]), Ok(AppOrigins::Any));
        for bad in [
            "https://a.example/app",
            "*.example.com",
            "https://a.example#x",
            "",
            "file:///x",
        ] {
            assert!(AppOrigins::parse(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_headers() {
        for ok in [
            "authorization",
            "content-type",
            "x-goog-api-client",
            "x-firebase-gmpid",
            "x-request-id",
            "if-match",
        ] {
            assert!(header_allowed(ok), "{ok}");
        }
        for no in [
            "x-claimdb-admin-key",
            "cookie",
            "x-goog-",
            "x-custom",
            "x-googl",
        ] {
            assert!(!header_allowed(no), "{no}");
        }
    }
}
