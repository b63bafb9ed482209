//! Cookies and cross-site request forgery: reading a cookie from the `Cookie` headers, and the
//! origin check a cookie-authenticated request must pass when it is not a GET or HEAD — its
//! `Origin` (or, without one, its `Referer`) must be claimdb's public URL's origin or one of
//! `app_redirects`' origins. A bearer token needs no such check: a browser never attaches one
//! by itself. SameSite=Lax already keeps the cookie off cross-site POSTs; this also covers
//! same-site origins (a sibling subdomain) and browsers that ignore SameSite.
//!
//! The same trusted origins get CORS with credentials ([`TrustedOrigins::cors`]), so an app on
//! one of them can call claimdb from the browser with its session cookie (or a bearer token)
//! and read the answers. A request from any other origin (or with none) never reaches the CORS
//! layer, so it gets no `Access-Control-*` header at all — its preflight is routed like any
//! OPTIONS request — and browsers keep its pages from reading claimdb's responses or sending
//! preflighted requests. Every response still says `Vary: origin, …`, so a cache never hands one
//! origin's answer to another.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri, header,
};
use tower::{Layer, Service};
use tower_http::cors::{self, AllowOrigin, Cors, CorsLayer};

use crate::error::ApiError;

/// The origins (`scheme://host[:port]`, lowercase, default port omitted) allowed to send
/// cookie-authenticated writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedOrigins(Vec<String>);

impl TrustedOrigins {
    /// From the public URL and the app redirect URLs (entries that are not http(s) URLs are
    /// skipped; configuration validated them already).
    pub fn from_urls<'a>(urls: impl IntoIterator<Item = &'a str>) -> TrustedOrigins {
        let mut list: Vec<String> = Vec::new();
        for u in urls {
            if let Some(o) = origin_of(u)
                && !list.contains(&o)
            {
                list.push(o);
            }
        }
        TrustedOrigins(list)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// CORS for the trusted origins, with credentials; `None` when there are none. Requests
    /// from other origins pass it untouched (no CORS headers).
    pub fn cors(&self) -> Option<TrustedCorsLayer> {
        let origins: Vec<HeaderValue> = self
            .0
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        if origins.is_empty() {
            return None;
        }
        let request_id = HeaderName::from_static(crate::extract::REQUEST_ID);
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.clone()))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                request_id.clone(),
            ])
            .expose_headers([header::ETAG, header::LOCATION, request_id])
            .max_age(Duration::from_secs(600));
        Some(TrustedCorsLayer {
            cors,
            origins: origins.into(),
        })
    }

    /// Refuses (403) a request whose `Origin`, or `Referer` when there is no `Origin`, is not
    /// a trusted origin; a request with neither is refused too.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let (seen, from) = match (text(header::ORIGIN), text(header::REFERER)) {
            (Some(o), _) => (origin_of(o), "Origin"),
            (None, Some(r)) => (origin_of(r), "Referer"),
            (None, None) => {
                return Err(refused(
                    "a request authenticated by the session cookie must carry an Origin or Referer header naming a trusted origin",
                ));
            }
        };
        match seen {
            Some(o) if self.0.contains(&o) => Ok(()),
            Some(o) => Err(refused(&format!(
                "the {from} {o} is not a trusted origin for requests authenticated by the session cookie (trusted: {}); send a bearer token, or list the app in app_redirects",
                self.0.join(", ")
            ))),
            None => Err(refused(&format!(
                "the {from} header is not an http(s) origin; requests authenticated by the session cookie must come from a trusted origin"
            ))),
        }
    }
}

/// CORS ([`Cors`]) for requests whose `Origin` is trusted; every other request goes straight to
/// the inner service, gaining only a `Vary` header.
#[derive(Clone)]
pub struct TrustedCorsLayer {
    cors: CorsLayer,
    origins: Arc<[HeaderValue]>,
}

impl<S: Clone> Layer<S> for TrustedCorsLayer {
    type Service = TrustedCors<S>;

    fn layer(&self, inner: S) -> TrustedCors<S> {
        TrustedCors {
            cors: self.cors.layer(inner.clone()),
            plain: inner,
            origins: self.origins.clone(),
        }
    }
}

/// See [`TrustedCorsLayer`].
#[derive(Clone)]
pub struct TrustedCors<S> {
    cors: Cors<S>,
    plain: S,
    origins: Arc<[HeaderValue]>,
}

/// What `tower-http` sends as `Vary` with CORS, sent on every response so a cache keeps the
/// answers to different origins apart.
const CORS_VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

impl<S> Service<Request<Body>> for TrustedCors<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Unpin,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = TrustedCorsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        match self.cors.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let trusted = request
            .headers()
            .get(header::ORIGIN)
            .is_some_and(|o| self.origins.contains(o));
        if trusted {
            TrustedCorsFuture::Cors(Box::pin(self.cors.call(request)))
        } else {
            TrustedCorsFuture::Plain(self.plain.call(request))
        }
    }
}

/// The response future of [`TrustedCors`].
pub enum TrustedCorsFuture<F> {
    /// A trusted origin's request (rare: boxed to keep the common path unboxed).
    Cors(Pin<Box<cors::ResponseFuture<F>>>),
    Plain(F),
}

impl<F, E> Future for TrustedCorsFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>> + Unpin,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            TrustedCorsFuture::Cors(f) => f.as_mut().poll(cx),
            TrustedCorsFuture::Plain(f) => match Pin::new(f).poll(cx) {
                Poll::Ready(Ok(mut response)) => {
                    response.headers_mut().append(header::VARY, CORS_VARY);
                    Poll::Ready(Ok(response))
                }
                other => other,
            },
        }
    }
}

fn refused(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "permission-denied", message)
        .with_detail("reason", "cross-origin-request".into())
}

/// `scheme://host[:port]` of an absolute http(s) URL (or of an `Origin` value), lowercase,
/// with the scheme's default port left out; `None` for anything else (including `null`).
pub fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = uri.authority()?;
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(match authority.port_u16() {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The value of cookie `name` from the request's `Cookie` headers (the first one sent).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_are_normalized() {
        assert_eq!(
            origin_of("https://App.Example.com/after?x=1").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("https://app.example.com:443").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8787/").as_deref(),
            Some("http://127.0.0.1:8787")
        );
        for bad in [
            "null",
            "",
            "/relative",
            "ftp://x.example",
            "app.example.com",
        ] {
            assert_eq!(origin_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_trusted_origins_pass() {
        let t = TrustedOrigins::from_urls(["https://db.example.com", "https://app.example.com/"]);
        let ok = |h: HeaderMap| t.check(&h).is_ok();
        assert!(ok(headers(&[(header::ORIGIN, "https://app.example.com")])));
        assert!(ok(headers(&[(header::ORIGIN, "https://db.example.com")])));
        assert!(ok(headers(&[(
            header::REFERER,
            "https://app.example.com/page"
        )])));
        for evil in [
            headers(&[(header::ORIGIN, "https://evil.example")]),
            headers(&[(header::ORIGIN, "null")]),
            headers(&[(header::ORIGIN, "https://app.example.com.evil.example")]),
            headers(&[(header::ORIGIN, "http://app.example.com")]),
            headers(&[(header::ORIGIN, "https://app.example.com:8443")]),
            // The Origin decides when both are sent.
            headers(&[
                (header::ORIGIN, "https://evil.example"),
                (header::REFERER, "https://app.example.com/"),
            ]),
            headers(&[(
                header::REFERER,
                "https://evil.example/https://app.example.com/",
            )]),
            HeaderMap::new(),
        ] {
            let err = t.check(&evil).unwrap_err();
            assert_eq!(err.status, StatusCode::FORBIDDEN, "{evil:?}");
            assert_eq!(err.details["reason"], "cross-origin-request");
        }
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let h = headers(&[
            (header::COOKIE, "a=1; claimdb_session_x=no"),
            (header::COOKIE, "claimdb_session=yes; b=2"),
        ]);
        assert_eq!(cookie(&h, "claimdb_session").as_deref(), Some("yes"));
        assert_eq!(cookie(&h, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
